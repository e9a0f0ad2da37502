"""Result objects and their rich display: sequence behaviour, saving, HTML grid and metadata."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mesh_magic.core.errors import RateLimitError, ServerError
from mesh_magic.core.results import GeneratedImage, ImageResult, ItemError
from mesh_magic.render.grid import MIME_METADATA_KEY, render_result, result_html, result_text
from tests.support.images import make_image
from tests.support.mock_api import MOCK_KEY

_IMG = re.compile(r'<img src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"')


def image(row: int = 0, index: int = 0, *, width: int = 40, height: int = 20, model: str = "m/a",
          prompt: str = "a red fox", request_id: str | None = "req_1", revised: str | None = None,
          mode: str = "RGB") -> GeneratedImage:
    return GeneratedImage(
        data=make_image(width, height, mode=mode), mime_type="image/png", width=width,
        height=height, prompt=prompt, model=model, revised_prompt=revised, request_id=request_id,
        created=1700000000, params={"model": model, "n": 1, "size": f"{width}x{height}", "seed": 3},
        row=row, index=index,
    )


def grid() -> ImageResult:
    images = [image(1, 1, model="m/b", request_id="req_2"), image(0, 0), image(1, 0, model="m/b",
              request_id="req_2"), image(0, 1)]
    errors = [ItemError("a red fox", "m/c", ServerError("provider died", status=500,
                                                         request_id="req_3"), row=2)]
    rows = [("a red fox", "m/a"), ("a red fox", "m/b"), ("a red fox", "m/c")]
    return ImageResult(images, errors, rows=rows, usage={"total_tokens": 9}, display_max_px=64)


def decoded_thumbnails(html: str) -> list[tuple[str, tuple[int, int]]]:
    out = []
    for mime, data in _IMG.findall(html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            out.append((mime, img.size))
    return out


def test_sequence_behaviour() -> None:
    result = grid()
    assert len(result) == 4
    assert [(im.row, im.index) for im in result] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert result[0].model == "m/a" and result[-1].model == "m/b"
    assert [im.index for im in result[1:3]] == [1, 0]
    assert result.images == list(result)
    result.images.clear()  # a copy: the result is unchanged
    assert len(result) == 4
    assert result[2] in result
    assert not result.ok
    assert repr(result) == "<ImageResult 4 images, 1 errors>"
    with pytest.raises(IndexError):
        result[9]


def test_request_ids_in_order_without_duplicates() -> None:
    assert grid().request_ids == ["req_1", "req_2", "req_3"]
    assert ImageResult([image(request_id=None)]).request_ids == []


def test_ok_and_interrupted() -> None:
    assert ImageResult([image()]).ok
    assert not ImageResult([image()], interrupted=True).ok
    assert "interrupted" in repr(ImageResult([image()], interrupted=True))


def test_rows_derived_when_not_given() -> None:
    result = ImageResult([image(1, model="m/b"), image(0)],
                         [ItemError("p2", "m/z", ServerError("x"), row=2)])
    assert result.rows == [("a red fox", "m/a"), ("a red fox", "m/b"), ("p2", "m/z")]


def test_save_writes_images_and_sidecars(tmp_path: Path) -> None:
    result = grid()
    paths = result.save(tmp_path / "out")
    assert len(paths) == 4
    assert len({p.name for p in paths}) == 4
    for path, im in zip(paths, result, strict=True):
        assert path.parent == tmp_path / "out"
        assert path.suffix == ".png"
        assert path.read_bytes() == im.data
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["prompt"] == "a red fox"
        assert meta["model"] == im.model
        assert meta["request_id"] == im.request_id
        assert meta["params"]["seed"] == 3
        assert (meta["width"], meta["height"], meta["mime_type"]) == (40, 20, "image/png")
        assert len(meta["sha256"]) == 64 and meta["bytes"] == len(im.data)
    leftovers = [p for p in (tmp_path / "out").iterdir() if p.suffix not in (".png", ".json")]
    assert leftovers == []


def test_generated_image_save_and_slug(tmp_path: Path) -> None:
    im = image(2, 1, prompt="A Red Fox! In snow?", model="openai/gpt-image-1")
    assert im.slug() == "a-red-fox-in-snow_openai-gpt-image-1_2-1"
    folder = tmp_path / "dir"
    folder.mkdir()
    saved = im.save(folder)
    assert saved == folder / f"{im.slug()}.png"
    assert saved.read_bytes() == im.data
    explicit = im.save(tmp_path / "nested" / "fox.png")
    assert explicit.read_bytes() == im.data
    assert im.to_pil().size == (40, 20)
    assert im.size == "40x20" and im.extension == "png"
    assert "bytes" in repr(im) and "data=" not in repr(im)


def test_html_has_one_thumbnail_per_image_within_max_px() -> None:
    big = [image(0, 0, width=300, height=150), image(0, 1, width=100, height=400),
           image(1, 0, width=30, height=30, mode="RGBA")]
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
        [ItemError("a red fox", "m/c", RateLimitError("slow down", status=429, retry_after=4),
                   row=2)],
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
    result = ImageResult([image(0)], rows=[("a red fox", "m/a"), ("other", "m/b")],
                         interrupted=True)
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
    assert meta["errors"] == [{"row": 2, "model": "m/c", "message": "provider died",
                               "status": 500, "request_id": "req_3"}]
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
    assert metadata[MIME_METADATA_KEY]["rows"] == [
        {"prompt": p, "model": m} for p, m in result.rows]
