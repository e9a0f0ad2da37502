"""The HTML grid of a result: thumbnails, captions, error tiles, escaping and metadata."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from mesh_magic.core.errors import RateLimitError, ResponseError
from mesh_magic.core.results import ImageResult, ItemError
from mesh_magic.render.grid import MIME_METADATA_KEY, render_result, result_html, result_text
from tests.support.images import html_images
from tests.support.mock_api import MOCK_KEY
from tests.support.results import grid, image


def decoded_thumbnails(html: str) -> list[tuple[str, tuple[int, int]]]:
    out = []
    for mime, data in html_images(html):
        with Image.open(io.BytesIO(data)) as img:
            out.append((mime, img.size))
    return out


def test_html_has_one_thumbnail_per_image_within_max_px() -> None:
    big = [
        image(0, 0, width=300, height=150),
        image(0, 1, width=100, height=400),
        image(1, 0, width=30, height=30, mode="RGBA"),
    ]
    result = ImageResult(big, display_max_px=64)
    html = result_html(result)
    thumbs = decoded_thumbnails(html)
    assert len(thumbs) == 3 == html.count("<img ")
    assert [size for _, size in thumbs] == [(64, 32), (16, 64), (30, 30)]
    assert all(max(size) <= 64 for _, size in thumbs)
    assert thumbs[0][0] == "image/jpeg"
    # Full resolution stays in the result.
    assert (result[0].width, result[0].height) == (300, 150)


def test_html_captions_and_error_tiles() -> None:
    result = ImageResult(
        [image(0, 0, revised="a red fox, detailed illustration"), image(1, 0, model="m/b")],
        [ItemError("a red fox", "m/c", RateLimitError("slow down", status=429, retry_after=4), row=2)],
        rows=[("a red fox", "m/a"), ("a red fox", "m/b"), ("a red fox", "m/c")],
    )
    html = result_html(result)
    assert html.count("<figure") == 3
    assert "<b>m/a</b>" in html and "<b>m/b</b>" in html
    assert "40x20" in html
    assert "a red fox, detailed illustration" in html
    assert "slow down" in html and "HTTP 429" in html
    assert "retry after 4 s" in html
    assert html.count("<img ") == 2
    text = result_text(result)
    assert "m/c ERROR slow down" in text and "m/a 40x20 image/png" in text


def test_html_escapes_prompts_and_shows_notes() -> None:
    nasty = image(prompt='<script>alert("x")</script>', revised="<b>bold</b> & more")
    result = ImageResult([nasty], notes=["m/a makes one image per request"], interrupted=True)
    html = result_html(result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "one image per request" in html
    assert "Interrupted" in html


def test_unfinished_rows_and_empty_result() -> None:
    result = ImageResult([image(0)], rows=[("a red fox", "m/a"), ("other", "m/b")], interrupted=True)
    assert "not finished" in result_html(result)
    assert "No images" in result_html(ImageResult())


def test_metadata_has_facts_and_never_a_key() -> None:
    data, metadata = grid()._repr_mimebundle_()
    assert set(data) == {"text/html", "text/plain"}
    meta = metadata[MIME_METADATA_KEY]
    assert meta["rows"][0] == {"prompt": "a red fox", "model": "m/a"}
    assert meta["request_ids"] == ["req_1", "req_2", "req_3"]
    first = meta["images"][0]
    assert first["model"] == "m/a"
    assert first["request_id"] == "req_1"
    assert first["params"]["seed"] == 3
    assert first["row"] == 0
    assert meta["errors"] == [
        {"row": 2, "model": "m/c", "message": "provider died", "status": 500, "request_id": "req_3"}
    ]
    dumped = json.dumps(metadata)
    assert "rsk_" not in dumped and MOCK_KEY not in dumped
    assert "api_key" not in dumped and "authorization" not in dumped.lower()


def test_single_image_display() -> None:
    data, metadata = image(revised="better")._repr_mimebundle_()
    assert data["text/html"].count("<img ") == 1
    assert "better" in data["text/html"]
    assert metadata[MIME_METADATA_KEY]["images"][0]["revised_prompt"] == "better"


def test_render_result_matches_parts() -> None:
    result = grid()
    data, metadata = render_result(result)
    expected: dict[str, Any] = {"text/html": result_html(result), "text/plain": result_text(result)}
    assert data == expected
    assert metadata[MIME_METADATA_KEY]["rows"] == [{"prompt": p, "model": m} for p, m in result.rows]


def test_error_tile_is_visible_when_display_max_px_is_0() -> None:
    """display_max_px=0 means 'full resolution'; the error tile must not collapse to 0 px."""
    error = ItemError("p", "m/x", ResponseError("boom"), row=0)
    html = result_html(ImageResult([], [error], rows=[("p", "m/x")], display_max_px=0))
    assert "width:0px" not in html and "boom" in html
