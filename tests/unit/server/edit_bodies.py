"""Pictures, masks and request helpers for the server's /v1/images/edits tests."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image, ImageDraw

from mesh_magic.server import render_preview

EDITS = "/v1/images/edits"
ANY_MODEL = "meshapi/data-uri-preview"  # can do every operation


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def data_url(img: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png(img)).decode()


def bare(img: Image.Image) -> str:
    return base64.b64encode(png(img)).decode()


def photo(width: int = 240, height: int = 160, seed: int = 1) -> Image.Image:
    """A busy picture (every pixel matters), as a generation would give."""
    data = render_preview(
        "a harbour at dawn", model="openai/gpt-image-1", seed=seed, index=0, width=width, height=height
    )
    return Image.open(io.BytesIO(data)).convert("RGB")


def disc(size: int = 200, background: tuple[int, int, int] = (235, 235, 235)) -> Image.Image:
    """A red disc (the subject) on a plain background."""
    img = Image.new("RGB", (size, size), background)
    ImageDraw.Draw(img).ellipse((size * 0.3, size * 0.3, size * 0.7, size * 0.7), fill=(200, 30, 30))
    return img


def flat(color: tuple[int, int, int], size: tuple[int, int] = (128, 128)) -> Image.Image:
    return Image.new("RGB", size, color)


def hole_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """Opaque everywhere but `box`, which is fully transparent (OpenAI's 'change here')."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle(box, fill=(0, 0, 0, 0))
    return mask


def post_edit(client: httpx.Client, image: Any = None, **body: Any) -> httpx.Response:
    body.setdefault("model", ANY_MODEL)
    body.setdefault("response_format", "b64_json")
    if image is not None:
        body["image"] = data_url(image) if isinstance(image, Image.Image) else image
    return client.post(EDITS, json=body)


def results(response: httpx.Response) -> list[Image.Image]:
    """The answer's images, decoded (b64_json or data: URLs)."""
    assert response.status_code == 200, response.text[:500]
    images = []
    for item in response.json()["data"]:
        raw = item.get("b64_json") or item["url"].split(",", 1)[1]
        img = Image.open(io.BytesIO(base64.b64decode(raw)))
        img.load()
        images.append(img)
    return images


def result(client: httpx.Client, image: Any, **body: Any) -> Image.Image:
    return results(post_edit(client, image, **body))[0]


def above_band(img: Image.Image, rows: int = 40) -> Image.Image:
    """The picture without its bottom `rows` (where the preview label sits)."""
    return img.crop((0, 0, img.width, img.height - rows))


def mean(img: Image.Image) -> tuple[float, ...]:
    from PIL import ImageStat

    return tuple(ImageStat.Stat(img.convert("RGB")).mean)


def envelope_detail(response: httpx.Response) -> dict[str, Any]:
    """The one field error of a MeshAPI 422/400 envelope."""
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["request_id"].startswith("req_")
    (detail,) = body["error"]["details"]
    return dict(detail)
