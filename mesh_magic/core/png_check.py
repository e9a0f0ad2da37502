"""Check that a PNG is whole without decoding its pixels: chunks, CRCs, and the inflated size.

A full Pillow decode of a 1024x1024 PNG costs ~15 ms of CPU, more than everything
else a bulk run does per image. What can be wrong with a PNG's pixel data is
almost all visible in its structure: the chunks and their CRCs, the IDAT stream
inflating completely (its Adler-32 checked by zlib) to exactly height x (1 + row
bytes), and every row starting with a filter type 0-4. That is what this checks,
inflating in bounded pieces so memory stays small. Interlaced PNGs (rare) return
None: the caller decodes them in full.
"""

from __future__ import annotations

import functools
import zlib
from types import ModuleType


@functools.cache
def _inflater() -> ModuleType:
    """zlib-ng (inflates 3-5x faster, the same API) if installed, else zlib; on first use only."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # pragma: no cover - a platform without its wheels
        return zlib
    return zlib_ng


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_PIECE = 1 << 20  # inflate at most this many bytes at a time


class BrokenPNG(ValueError):
    """The PNG's structure or pixel stream is damaged (the message says how)."""


def check_png(data: bytes) -> bool | None:
    """True if `data` (a PNG) is whole; raises BrokenPNG if not; None if it must be decoded.

    None means interlaced or an unusual header: the structure walk does not cover
    it, so the caller falls back to a full decode.
    """
    header, stream = _walk_chunks(data)
    width, height, depth, colour, interlace = header
    if interlace != 0 or colour not in _CHANNELS or depth not in (1, 2, 4, 8, 16):
        return None
    row_bytes = (width * _CHANNELS[colour] * depth + 7) // 8
    _inflate_rows(stream, row_bytes + 1, height)
    return True


def _walk_chunks(data: bytes) -> tuple[tuple[int, int, int, int, int], list[memoryview]]:
    """The IHDR fields and the IDAT pieces, every chunk's CRC checked, up to IEND."""
    view = memoryview(data)
    pos, header, stream = 8, None, []
    while True:
        if pos + 12 > len(data):
            raise BrokenPNG("it ends before its IEND chunk")
        length = int.from_bytes(view[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            raise BrokenPNG("a chunk runs past the end of the file")
        kind = bytes(view[pos + 4 : pos + 8])
        # IDAT needs no CRC pass of its own: the zlib stream's Adler-32 covers the pixel data.
        if kind != b"IDAT" and zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(
            view[end - 4 : end], "big"
        ):
            raise BrokenPNG(f"its {kind.decode('latin-1')!r} chunk fails its CRC check")
        body = view[pos + 8 : pos + 8 + length]
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise BrokenPNG("it does not start with an IHDR chunk")
            raw = bytes(body)
            header = (
                int.from_bytes(raw[0:4], "big"),
                int.from_bytes(raw[4:8], "big"),
                raw[8],
                raw[9],
                raw[12],
            )
        elif kind == b"IDAT":
            stream.append(body)
        elif kind == b"IEND":
            return header, stream
        pos = end


def _inflate_rows(stream: list[memoryview], stride: int, rows: int) -> None:
    """The IDAT stream inflates to exactly `rows` rows of `stride` bytes, each with a valid filter."""
    if not stream:
        raise BrokenPNG("it has no image data (IDAT)")
    expected = stride * rows
    module = _inflater()
    inflater = module.decompressobj()
    produced = 0
    pending: bytes = b"".join(stream)
    try:
        while pending:
            out = inflater.decompress(pending, _PIECE)
            pending = inflater.unconsumed_tail
            _check_filters(out, produced, stride)
            produced += len(out)
            if produced > expected:
                raise BrokenPNG("its image data is longer than its size says")
            if not out:
                break  # no progress: the stream ended (or is stuck) with input left over
    except (zlib.error, module.error) as exc:
        raise BrokenPNG(f"its image data does not inflate ({exc})") from None
    if not inflater.eof or produced != expected:
        raise BrokenPNG(
            f"its image data is cut short ({produced:,} of the {expected:,} bytes its size needs)"
        )


def _check_filters(out: bytes, offset: int, stride: int) -> None:
    """Every row start inside `out` (at multiples of `stride` from the stream's start) is 0-4."""
    first = (-offset) % stride
    if first < len(out) and max(out[first::stride]) > 4:
        raise BrokenPNG("a row of its image data has an unknown filter type")
