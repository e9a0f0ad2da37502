"""The official SDK (PyPI meshapi, pinned) as a client of the project's server.

Every answer goes through the SDK's own pydantic models (its calls validate what
they return; raw bodies are validated here too), so the server speaks the shapes
the real service is typed with: `ModelInfo` with `is_free` and string prices,
`ImageGenerationResponse` with the SDK's `usage`, `ImageGenerationChunk` for
streams, and `MeshAPIError` with status, code, request id, details and
`retry_after_seconds` for errors.
"""

from __future__ import annotations

import io

import httpx
import pytest
from meshapi import MeshAPI, MeshAPIError
from meshapi._types import (
    ImageGenerationChunk,
    ImageGenerationParams,
    ImageGenerationResponse,
    ModelInfo,
)
from PIL import Image

from mesh_magic.server import MODELS, Fault, MeshServer

from .conftest import Ledger

IMAGE_MODELS = [m for m in MODELS if "image" in m["output_modalities"]]
CAPABILITY_FLAGS = [
    f"supports_image_{op}"
    for op in ("edit", "inpaint", "outpaint", "mix", "reframe", "upscale", "remove_background", "reference")
]


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- models -------------------------------------------------------------------------------


def test_models_list_image_validates_every_entry(sdk: MeshAPI, ledger: Ledger) -> None:
    ledger.call("models.list")
    found = sdk.models.list(type="image")
    ledger.count("ModelInfo", len(found))
    assert sorted(m.id for m in found) == sorted(m["id"] for m in IMAGE_MODELS)
    for model in found:
        assert isinstance(model.is_free, bool)
        assert model.model_type == "image" and model.output_modalities == ["image"]
        assert all(getattr(model, flag) is not None for flag in CAPABILITY_FLAGS)
        if model.pricing is not None and model.pricing.image_output_usd_per_image is not None:
            float(model.pricing.image_output_usd_per_image)  # a numeric string, as the SDK types it


def test_the_catalog_mixes_priced_free_and_unpriced_models(sdk: MeshAPI, ledger: Ledger) -> None:
    ledger.call("models.list")
    found = {m.id: m for m in sdk.models.list(type="image")}
    ledger.count("ModelInfo", len(found))
    free = [m for m in found.values() if m.is_free]
    unpriced = [m for m in found.values() if m.pricing is None and not m.is_free]
    priced = [
        m
        for m in found.values()
        if m.pricing
        and m.pricing.image_output_usd_per_image
        and float(m.pricing.image_output_usd_per_image) > 0
    ]
    assert free and unpriced and len(priced) >= 3
    # Capabilities differ from model to model.
    assert len({tuple(getattr(m, f) for f in CAPABILITY_FLAGS) for m in found.values()}) >= 4


def test_models_list_filters(sdk: MeshAPI, ledger: Ledger) -> None:
    for kwargs in ({}, {"free": True}, {"free": False}, {"provider": "openai"}, {"type": "text"}):
        ledger.call("models.list")
        found = sdk.models.list(**kwargs)
        ledger.count("ModelInfo", len(found))
        assert found, kwargs
        if "free" in kwargs:
            assert all(m.is_free is kwargs["free"] for m in found)
        if "provider" in kwargs:
            assert {m.provider for m in found} == {"openai"}
        if kwargs.get("type") == "text":
            assert all("text" in (m.output_modalities or []) for m in found)
    assert len(sdk.models.list()) == len(MODELS)


def test_models_get_keeps_the_slash_and_404s(sdk: MeshAPI, ledger: Ledger) -> None:
    ledger.call("models.get")
    model = sdk.models.get("openai/gpt-image-1")
    ledger.count("ModelInfo")
    assert model.id == "openai/gpt-image-1" and model.supports_image_edit is True
    ledger.call("models.get")
    with pytest.raises(MeshAPIError) as caught:
        sdk.models.get("nobody/no-such-model")
    assert caught.value.status == 404 and caught.value.error_code == "not_found"


def test_raw_model_bodies_validate(server: MeshServer, ledger: Ledger) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    listed = httpx.get(f"{server.base_url}/v1/models", headers=headers).json()
    for entry in listed:
        ledger.validate(ModelInfo, entry)
        assert not {"max_n", "b64_only", "url_style", "preview_style", "revises_prompt"} & set(entry)


# -- generations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "response_format", "kind"),
    [
        ("openai/gpt-image-1", None, "b64_json"),  # answers base64 whatever is asked
        ("google/imagen-4", "b64_json", "b64_json"),
        ("google/imagen-4", "url", "url"),
        ("meshapi/data-uri-preview", None, "data_uri"),
    ],
)
def test_images_generate(
    sdk: MeshAPI, ledger: Ledger, model: str, response_format: str | None, kind: str
) -> None:
    params = ImageGenerationParams(
        prompt="a lighthouse", model=model, n=2, size="256x256", response_format=response_format
    )  # type: ignore[arg-type]
    ledger.call("images.generate")
    answer = sdk.images.generate(params)
    ledger.count("ImageGenerationResponse")
    assert len(answer.data) == 2
    assert answer.usage is not None and answer.usage.total_tokens == (
        answer.usage.prompt_tokens + answer.usage.completion_tokens
    )
    for item in answer.data:
        if kind == "url":
            assert item.url and item.url.startswith("http")
            data = httpx.get(item.url).content  # no key: image links are public
        else:
            assert (item.b64_json is not None) == (kind == "b64_json")
            data = item.image_bytes()
        assert decoded(data).size == (256, 256)


def test_raw_generation_bodies_validate(server: MeshServer, ledger: Ledger) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    for model in ("openai/dall-e-3", "black-forest-labs/flux-schnell", "meshapi/data-uri-preview"):
        body = {"prompt": "a fox", "model": model, "size": "64x64"}
        raw = httpx.post(f"{server.base_url}/v1/images/generations", json=body, headers=headers)
        parsed = ledger.validate(ImageGenerationResponse, raw.json())
        assert parsed.created > 0 and parsed.data


@pytest.mark.parametrize("model", ["google/imagen-4", "openai/gpt-image-1", "meshapi/data-uri-preview"])
def test_images_stream_chunks_validate(sdk: MeshAPI, ledger: Ledger, model: str) -> None:
    params = ImageGenerationParams(prompt="a kite", model=model, size="128x128")
    ledger.call("images.stream")
    chunks = list(sdk.images.stream(params))
    ledger.count("ImageGenerationChunk", len(chunks))
    assert all(isinstance(c, ImageGenerationChunk) and c.created > 0 for c in chunks)
    assert chunks[0].status == "processing" and chunks[-1].status == "completed"
    item = chunks[-1].data[0]
    data = httpx.get(item.url).content if item.url and item.url.startswith("http") else item.image_bytes()
    assert decoded(data).size == (128, 128)


def test_a_stream_error_event_is_a_mesh_api_error(sdk: MeshAPI, server: MeshServer, ledger: Ledger) -> None:
    server.add_fault(Fault("stream_error", message="the provider fell over"))
    ledger.call("images.stream")
    with pytest.raises(MeshAPIError) as caught:
        list(sdk.images.stream(ImageGenerationParams(prompt="x", model="google/imagen-4")))
    assert caught.value.error_code == "upstream_error"
    assert "fell over" in str(caught.value)


# -- errors -------------------------------------------------------------------------------

ERROR_CASES = [
    (400, "invalid_request"),
    (401, "unauthorized"),
    (402, "spend_limit_exceeded"),
    (403, "forbidden"),
    (404, "model_not_found"),
    (429, "rate_limit_exceeded"),
    (500, "upstream_error"),
    (501, "not_implemented"),
    (502, "upstream_error"),
    (503, "upstream_error"),
    (504, "upstream_error"),
]


@pytest.mark.parametrize(("status", "code"), ERROR_CASES)
def test_error_statuses_give_mesh_api_errors(
    sdk: MeshAPI, server: MeshServer, ledger: Ledger, status: int, code: str
) -> None:
    retry_after = "7" if status == 429 else None
    server.add_fault(Fault("status", status=status, envelope="mesh", retry_after=retry_after))
    ledger.call("images.generate")
    with pytest.raises(MeshAPIError) as caught:
        sdk.images.generate(ImageGenerationParams(prompt="x", model="google/imagen-4"))
    err = caught.value
    assert (err.status, err.error_code) == (status, code)
    assert err.request_id.startswith("req_")
    assert err.request_id == server.requests[-1].request_id  # the one the server answered with
    assert err.retry_after_seconds == (7 if status == 429 else None)


def test_validation_details_reach_the_sdk(sdk: MeshAPI, ledger: Ledger) -> None:
    ledger.call("images.generate")
    with pytest.raises(MeshAPIError) as caught:
        sdk.images.generate(ImageGenerationParams(prompt="x", model="google/imagen-4", size="12x12"))
    err = caught.value
    assert (err.status, err.error_code) == (422, "validation_error")
    assert err.details and err.details[0]["loc"] == ["body", "size"]
    assert "unsupported size" in err.details[0]["msg"]


def test_a_capability_refusal_names_the_field(sdk: MeshAPI, ledger: Ledger) -> None:
    ledger.call("images.generate")
    with pytest.raises(MeshAPIError) as caught:
        sdk.images.generate(ImageGenerationParams(prompt="x", model="openai/dall-e-3", n=3))
    err = caught.value
    assert (err.status, err.error_code) == (400, "model_capability_not_supported")
    assert err.details[0]["loc"] == ["body", "n"]


def test_a_bad_key_is_unauthorized(server: MeshServer, ledger: Ledger) -> None:
    sdk = MeshAPI(base_url=server.base_url, token="rsk_wrong_key_000000", max_retries=0)
    ledger.call("models.list")
    with pytest.raises(MeshAPIError) as caught:
        sdk.models.list(type="image")
    assert (caught.value.status, caught.value.error_code) == (401, "unauthorized")
