"""Light notebooks: what one displayed 1024x1024 image adds to a saved .ipynb, thumbnails vs full.

Prints the measured bytes (run with -s to see them). The growth is measured on the
real path: the magic's display output, captured from the shell and written into a
notebook with nbformat exactly as Jupyter saves it.
"""

from __future__ import annotations

import functools
import io
import random
from typing import Any

import nbformat
import pytest
from PIL import Image, ImageFilter

from mesh_magic.core.results import GeneratedImage, ImageResult
from tests.support.images import html_images


@functools.lru_cache(maxsize=1)
def photo_like_png(side: int = 1024, seed: int = 5) -> bytes:
    """A noisy, photo-like PNG: PNG of real photos is large for the same reason (fine detail)."""
    rng = random.Random(seed)
    bands = []
    for shift in (0, 60, 120):
        noise = Image.frombytes("L", (side, side), rng.randbytes(side * side))
        ramp = Image.linear_gradient("L").resize((side, side)).rotate(shift)
        bands.append(Image.blend(ramp, noise, 0.35).filter(ImageFilter.GaussianBlur(0.8)))
    out = io.BytesIO()
    Image.merge("RGB", bands).save(out, format="PNG")
    return out.getvalue()


def growth(outputs: list[dict[str, Any]]) -> int:
    """Bytes a saved notebook grows by when one cell gets these outputs."""
    cell = nbformat.v4.new_code_cell("%%meshimg -s 1024x1024\nA prompt")
    empty = nbformat.writes(nbformat.v4.new_notebook(cells=[cell]))
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=o["data"], metadata=o["metadata"]) for o in outputs
    ]
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    return len(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])).encode()) - len(empty.encode())


def capture(shell: Any) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []

    def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, **kw: Any) -> None:
        shown.append({"data": data, "metadata": metadata or {}})

    shell.display_pub.publish = publish
    return shown


def offline_growth(shell: Any, max_px: int | None) -> tuple[int, bytes, list[tuple[str, bytes]]]:
    shown = capture(shell)
    if max_px is not None:
        shell.run_line_magic("meshimg_config", f"display_max_px={max_px}")
    shell.run_cell("%%meshimg -s 1024x1024 -o r\nA futuristic city skyline at sunset, digital art")
    assert len(shown) == 1
    original = shell.user_ns["r"][0].data
    return growth(shown), original, html_images(shown[0]["data"]["text/html"])


def result_growth(shell: Any, data: bytes, max_px: int) -> tuple[int, list[tuple[str, bytes]]]:
    shown = capture(shell)
    shell.user_ns["r"] = ImageResult(
        [
            GeneratedImage(
                data=data,
                mime_type="image/png",
                width=1024,
                height=1024,
                prompt="A harbour at dusk, photo",
                model="openai/gpt-image-1",
            )
        ],
        display_max_px=max_px,
    )
    shell.run_cell("r")
    assert len(shown) == 1
    return growth(shown), html_images(shown[0]["data"]["text/html"])


def test_default_thumbnails_are_far_smaller_than_full_resolution(shell: Any, store: Any) -> None:
    shell.run_line_magic("meshimg_config", "base_url=offline")
    default, original, thumbs = offline_growth(shell, None)
    full, _, fulls = offline_growth(shell, 0)
    ((mime, thumb),) = thumbs
    assert mime == "image/jpeg"
    with Image.open(io.BytesIO(thumb)) as img:
        assert max(img.size) == 512
    assert fulls == [("image/png", original)]  # display_max_px=0 embeds the original bytes

    photo = photo_like_png()
    photo_default, photo_thumbs = result_growth(shell, photo, 512)
    photo_full, photo_fulls = result_growth(shell, photo, 0)
    assert photo_thumbs[0][0] == "image/jpeg" and photo_fulls == [("image/png", photo)]

    print(
        "\nnotebook growth per displayed 1024x1024 image (bytes):"
        f"\n  offline preview ({len(original)} B png): default {default}, display_max_px=0 {full}"
        f" ({full / default:.1f}x)"
        f"\n  photo-like ({len(photo)} B png):      default {photo_default}, display_max_px=0 "
        f"{photo_full} ({photo_full / photo_default:.1f}x)"
    )
    assert default * 5 <= full
    assert photo_default * 5 <= photo_full
    assert default < 80_000 and photo_default < 150_000


@pytest.mark.parametrize("max_px", [256, 384])
def test_display_max_px_bounds_the_thumbnail(shell: Any, max_px: int) -> None:
    _, thumbs = result_growth(shell, photo_like_png(), max_px)
    with Image.open(io.BytesIO(thumbs[0][1])) as img:
        assert max(img.size) == max_px and img.format == "JPEG"
