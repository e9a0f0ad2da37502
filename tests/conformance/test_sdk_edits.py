"""The official SDK's `images.edit(ImageEditParams(...))` against the project's server.

Every operation goes through the SDK's own request model (extra="forbid", its
Literal of operations) and comes back validated by its `ImageGenerationResponse`;
refusals arrive as `MeshAPIError` with the status, error code and field details the
client shows.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from meshapi import MeshAPI, MeshAPIError
from meshapi._types import ImageEditParams, ImageGenerationResponse, ImageRef
from PIL import Image, ImageDraw

from mesh_magic.server import MODELS, MeshServer

from .conftest import Ledger

ANY_MODEL = "meshapi/data-uri-preview"
OPERATIONS = ("edit", "inpaint", "outpaint", "mix", "reframe", "upscale", "remove_background")


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _data_url(img: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(_png(img)).decode()


def _subject(size: int = 96) -> Image.Image:
    img = Image.new("RGB", (size, size), (230, 230, 230))
    ImageDraw.Draw(img).ellipse((size * 0.3, size * 0.3, size * 0.7, size * 0.7), fill=(200, 30, 30))
    return img


def _mask(size: int = 96) -> Image.Image:
    mask = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((10, 10, 40, 40), fill=(0, 0, 0, 0))
    return mask


SOURCE = _subject()
OPTIONS: dict[str, dict[str, Any]] = {
    "edit": {"prompt": "make it warmer"},
    "inpaint": {"mask": _data_url(_mask())},
    "outpaint": {"prompt": "a wider table", "expand_factor": 2},
    "mix": {
        "prompt": "both at once",
        "reference_images": [ImageRef(url=_data_url(Image.new("RGB", (96, 96), "navy")))],
    },
    "reframe": {"aspect_ratio": "16:9"},
    "upscale": {"upscale_factor": "x2"},
    "remove_background": {},
}
EXPECTED_SIZE = {
    "edit": (96, 96),
    "inpaint": (96, 96),
    "outpaint": (192, 192),
    "mix": (96, 96),
    "reframe": (128, 72),
    "upscale": (192, 192),
    "remove_background": (96, 96),
}


def _edit(sdk: MeshAPI, ledger: Ledger, **fields: Any) -> ImageGenerationResponse:
    fields.setdefault("model", ANY_MODEL)
    fields.setdefault("image", _data_url(SOURCE))
    ledger.call("images.edit")
    answer = sdk.images.edit(ImageEditParams(**fields))
    ledger.count("ImageGenerationResponse")
    return answer


def _refused(sdk: MeshAPI, ledger: Ledger, **fields: Any) -> MeshAPIError:
    with pytest.raises(MeshAPIError) as caught:
        _edit(sdk, ledger, **fields)
    return caught.value


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_through_the_sdk(sdk: MeshAPI, ledger: Ledger, operation: str) -> None:
    answer = _edit(sdk, ledger, operation=operation, response_format="b64_json", **OPTIONS[operation])
    assert isinstance(answer, ImageGenerationResponse) and len(answer.data) == 1
    assert answer.usage is not None and answer.usage.total_tokens > 0
    img = Image.open(io.BytesIO(answer.data[0].image_bytes()))
    assert img.format == "PNG" and img.size == EXPECTED_SIZE[operation]
    assert answer.size == "{}x{}".format(*EXPECTED_SIZE[operation])
    if operation == "remove_background":
        assert img.mode == "RGBA" and img.getchannel("A").getpixel((2, 2)) == 0
        assert answer.background == "transparent"


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_response_formats_through_the_sdk(sdk: MeshAPI, ledger: Ledger, response_format: str) -> None:
    # Stability answers real links for url; the SDK's image_bytes reads b64 and data URLs.
    answer = _edit(
        sdk, ledger, model="stability/sd-3.5-large", operation="upscale", response_format=response_format, n=2
    )
    assert len(answer.data) == 2
    for item in answer.data:
        if response_format == "url":
            assert item.url and "/v1/files/" in item.url and item.b64_json is None
            fetched = httpx.get(item.url)  # served by the server itself, without the key
            assert Image.open(io.BytesIO(fetched.content)).size == (192, 192)
        else:
            assert item.b64_json and Image.open(io.BytesIO(item.image_bytes())).size == (192, 192)


def test_an_image_ref_object_and_bare_base64(sdk: MeshAPI, ledger: Ledger) -> None:
    bare = base64.b64encode(_png(SOURCE)).decode()
    for image in (ImageRef(url=_data_url(SOURCE)), bare):
        answer = _edit(sdk, ledger, image=image, operation="upscale", response_format="b64_json")
        assert Image.open(io.BytesIO(answer.data[0].image_bytes())).size == (192, 192)


def test_the_server_takes_every_field_the_sdk_can_send(sdk: MeshAPI, ledger: Ledger) -> None:
    every = set(ImageEditParams.model_fields)
    fields = {
        "prompt": "a lantern",
        "operation": "edit",
        "mask": _data_url(_mask()),
        "reference_images": [_data_url(SOURCE)],
        "n": 1,
        "size": "auto",
        "response_format": "b64_json",
        "background": "auto",
        "upscale_factor": "2",
        "quality_tier": "standard",
        "aspect_ratio": "1:1",
        "resolution": "1K",
        "expand_factor": 1.5,
        "mask_feather": 2,
    }
    assert every == {"model", "image", *fields}
    answer = _edit(sdk, ledger, **fields)
    assert answer.quality == "standard"


# -- refusals as MeshAPIError -------------------------------------------------------------


@pytest.mark.parametrize("operation", ["edit", "outpaint", "mix"])
def test_a_missing_prompt_is_a_422(sdk: MeshAPI, ledger: Ledger, operation: str) -> None:
    error = _refused(sdk, ledger, operation=operation, reference_images=[_data_url(SOURCE)])
    assert error.status == 422 and error.error_code == "validation_error" and error.request_id


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("https://example.com/photo.png", "remote URLs are not accepted"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        (base64.b64encode(b"plain text, not a picture").decode(), "not an image"),
    ],
)
def test_bad_images_are_422_with_details(sdk: MeshAPI, ledger: Ledger, image: str, words: str) -> None:
    error = _refused(sdk, ledger, image=image, operation="upscale")
    assert error.status == 422 and error.error_code == "validation_error"
    (detail,) = error.details
    assert detail["loc"] == ["body", "image"] and words in detail["msg"]


def test_a_mask_of_another_size_is_a_422(sdk: MeshAPI, ledger: Ledger) -> None:
    error = _refused(sdk, ledger, operation="inpaint", mask=_data_url(_mask(48)))
    assert error.status == 422 and error.details[0]["loc"] == ["body", "mask"]
    assert "48x48" in error.details[0]["msg"]


def test_an_unknown_model_is_a_404(sdk: MeshAPI, ledger: Ledger) -> None:
    error = _refused(sdk, ledger, model="acme/nothing", operation="upscale")
    assert error.status == 404 and error.error_code == "model_not_found"


@pytest.mark.parametrize(
    "model",
    [m["id"] for m in MODELS if "image" in m["output_modalities"] and not m["supports_image_upscale"]],
)
def test_models_without_upscale_refuse_it(sdk: MeshAPI, ledger: Ledger, model: str) -> None:
    error = _refused(sdk, ledger, model=model, operation="upscale")
    assert error.status == 400 and error.error_code == "model_capability_not_supported"
    assert error.details[0]["loc"] == ["body", "operation"]
    assert "supports_image_upscale" in str(error)


def test_refusals_reach_the_server_once_each(sdk: MeshAPI, server: MeshServer, ledger: Ledger) -> None:
    _refused(sdk, ledger, model="google/imagen-4", operation="remove_background")
    _refused(sdk, ledger, image="https://example.com/x.png", operation="upscale")
    edits = [r for r in server.app.requests if r.path == "/v1/images/edits"]
    assert len(edits) == 2  # max_retries=0: nothing retried behind the test's back
