"""Reference images on POST /v1/images/generations (`image`): capability, validation, a visible effect."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from mesh_magic.server import MeshServer
from tests.unit.server.edit_bodies import bare, data_url, envelope_detail, flat, mean

GEN = "/v1/images/generations"
REFERENCE_MODEL = "openai/gpt-image-1"  # supports_image_reference; answers b64_json
NO_REFERENCES = "google/imagen-4"
BLUE = flat((0, 0, 250), (64, 64))


@pytest.fixture
def client(server: MeshServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as c:
        yield c


def generate(client: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("prompt", "a lighthouse at dusk")
    body.setdefault("model", REFERENCE_MODEL)
    body.setdefault("size", "128x128")
    body.setdefault("seed", 4)
    return client.post(GEN, json=body)


def picture(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text[:300]
    img = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    img.load()
    return img.convert("RGB")


@pytest.mark.parametrize("image", [data_url(BLUE), [bare(BLUE)], [{"url": data_url(BLUE)}, bare(BLUE)]])
def test_a_reference_visibly_shapes_the_generation(client: httpx.Client, image: Any) -> None:
    plain = picture(generate(client))
    guided = picture(generate(client, image=image))
    assert guided.size == plain.size == (128, 128)
    assert mean(guided)[2] > mean(plain)[2] + 30  # bluer, like the reference


def test_no_references_change_nothing(client: httpx.Client) -> None:
    assert picture(generate(client, image=[])) == picture(generate(client))


def test_a_model_without_references_refuses_them(client: httpx.Client) -> None:
    response = generate(client, model=NO_REFERENCES, image=data_url(BLUE))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_capability_not_supported"
    assert envelope_detail(response)["loc"] == ["body", "image"]


@pytest.mark.parametrize(
    ("image", "loc", "words"),
    [
        ("https://example.com/style.png", ["body", "image"], "remote URLs are not accepted"),
        (["https://example.com/style.png"], ["body", "image", 0], "remote URLs are not accepted"),
        ([bare(BLUE), "%%%"], ["body", "image", 1], "not valid base64"),
        (5, ["body", "image"], "a reference image is"),
    ],
)
def test_bad_references_are_422s(client: httpx.Client, image: Any, loc: list[Any], words: str) -> None:
    response = generate(client, image=image)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    detail = envelope_detail(response)
    assert detail["loc"] == loc and words in detail["msg"]


def _streamed(client: httpx.Client, **body: Any) -> Image.Image:
    response = generate(client, model="meshapi/data-uri-preview", stream=True, **body)
    chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    url = chunks[-1]["data"][0]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def test_a_streamed_generation_uses_its_reference(client: httpx.Client) -> None:
    red = flat((250, 0, 0), (64, 64))
    assert mean(_streamed(client, image=data_url(red)))[0] > mean(_streamed(client))[0] + 30
