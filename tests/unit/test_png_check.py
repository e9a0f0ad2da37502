"""A PNG is judged whole from its structure (core.png_check), as strictly as a full decode."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from mesh_magic.core import png_check
from mesh_magic.core.errors import ResponseError
from mesh_magic.core.images import inspect_image
from mesh_magic.core.png_check import BrokenPNG, check_png


@pytest.fixture(autouse=True, params=["zlib-ng", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every check runs with zlib-ng (installed with the package) and with the zlib fallback."""
    if request.param == "zlib":
        monkeypatch.setattr(png_check, "_inflater", lambda: zlib)
    else:
        assert png_check._inflater().__name__ == "zlib_ng.zlib_ng"
    return str(request.param)


def png(mode: str = "RGB", size: tuple[int, int] = (37, 23)) -> bytes:
    gradient = Image.linear_gradient("L").resize(size)
    img = (
        gradient.convert("I").point(lambda v: v * 257).convert("I;16")
        if mode == "I;16"
        else gradient.convert(mode)
    )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, found = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        found.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return found


def build(parts: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in parts:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def with_idat(data: bytes, stream: bytes, pieces: int = 1) -> bytes:
    """`data` with its pixel stream replaced by `stream` (split over `pieces` IDAT chunks)."""
    parts = [(k, b) for k, b in chunks(data) if k != b"IDAT"]
    step = max(1, -(-len(stream) // pieces))
    idats = [(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step)]
    return build(parts[:-1] + idats + parts[-1:])


def raw_rows(data: bytes) -> bytes:
    return zlib.decompress(b"".join(b for k, b in chunks(data) if k == b"IDAT"))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_pngs_pillow_writes_are_whole(mode: str) -> None:
    data = png(mode)
    assert check_png(data) is True
    assert inspect_image(data).width == 37


def test_pixel_data_over_many_idat_chunks_is_whole() -> None:
    data = png()
    split = with_idat(data, zlib.compress(raw_rows(data)), pieces=9)
    assert len([k for k, _ in chunks(split) if k == b"IDAT"]) == 9
    assert check_png(split) is True


def test_interlaced_png_is_left_to_a_full_decode() -> None:
    parts = chunks(png())
    header = bytearray(parts[0][1])
    header[12] = 1  # Adam7, over a stream laid out without interlacing
    data = build([(b"IHDR", bytes(header)), *parts[1:]])
    assert check_png(data) is None
    with pytest.raises(ResponseError, match="could not be read"):
        inspect_image(data)  # Pillow's full decode judged it


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda rows: rows[:-5], "cut short"),  # too short: rows missing
        (lambda rows: rows + b"\x00" * 112, "longer|cut short"),  # a row too many
        (lambda rows: b"\x07" + rows[1:], "filter"),  # an unknown filter type
    ],
)
def test_a_pixel_stream_of_the_wrong_shape_is_broken(damage: object, reason: str) -> None:
    data = png()
    bad = with_idat(data, zlib.compress(damage(raw_rows(data))))  # type: ignore[operator]
    with pytest.raises(BrokenPNG, match=reason):
        check_png(bad)
    with pytest.raises(ResponseError, match="could not be read as image/png"):
        inspect_image(bad)


def test_garbage_pixel_data_and_a_missing_stream_end_are_broken() -> None:
    data = png()
    with pytest.raises(BrokenPNG, match="inflate"):
        check_png(with_idat(data, b"\x78\x9c" + bytes(range(200))))
    with pytest.raises(BrokenPNG, match="cut short"):
        check_png(with_idat(data, zlib.compress(raw_rows(data))[:-10]))
    with pytest.raises(BrokenPNG, match="no image data"):
        check_png(build([c for c in chunks(data) if c[0] != b"IDAT"]))


def test_structure_faults_are_broken() -> None:
    data = png()
    with pytest.raises(BrokenPNG, match="IHDR"):
        check_png(build(chunks(data)[1:]))
    header_crc_off = bytearray(data)
    header_crc_off[29] ^= 0xFF  # IHDR's CRC
    with pytest.raises(BrokenPNG, match="CRC"):
        check_png(bytes(header_crc_off))
    with pytest.raises(BrokenPNG, match="past the end|before its IEND"):
        check_png(data[:-20])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_byte_of_pixel_data_is_caught(data: st.DataObject) -> None:
    good = png(size=(19, 11))
    stream = zlib.compress(raw_rows(good))
    at = data.draw(st.integers(0, len(stream) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = bytearray(stream)
    damaged[at] ^= flip
    with pytest.raises(BrokenPNG):
        check_png(with_idat(good, bytes(damaged)))
