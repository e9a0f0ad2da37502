"""The project's client against answers built from the official SDK's own models.

Every fixture body here is an SDK pydantic object dumped to JSON (`ModelInfo`
with string prices under `pricing`, `ImageGenerationResponse` with its `usage`),
or an error envelope with the fields `MeshAPIError` reads, so what the client
parses is what the real service is typed to send. HTTP is an httpx MockTransport.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import pytest
from meshapi._types import (
    ImageGenerationResponse,
    ImageItem,
    ImageUsage,
    ModelInfo,
    ModelPricing,
)
from PIL import Image

import mesh_magic
from mesh_magic.core.engine.loop import engine
from mesh_magic.core.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MeshImageError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnsupportedModelError,
)
from mesh_magic.render.tables import ModelTable
from tests.support.mock_api import with_catalog

from .conftest import Ledger

BASE = "https://api.example.test"
KEY = "rsk_conformance_0123456789abcdef"


def png(width: int = 32, height: int = 24) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


def sdk_models() -> list[ModelInfo]:
    flags = dict.fromkeys(
        [
            f"supports_image_{op}"
            for op in (
                "edit",
                "inpaint",
                "outpaint",
                "mix",
                "reframe",
                "upscale",
                "remove_background",
                "reference",
            )
        ],
        False,
    )
    return [
        ModelInfo(
            id="openai/gpt-image-1",
            name="GPT Image 1",
            is_free=False,
            brand="OpenAI",
            provider="openai",
            model_type="image",
            output_modalities=["image"],
            pricing=ModelPricing(image_output_usd_per_image="0.04", request_usd="0"),
            **{**flags, "supports_image_edit": True, "supports_image_reference": True},
        ),
        ModelInfo(
            id="stability/free-one",
            name="A free one",
            is_free=True,
            brand="Stability AI",
            provider="stability",
            model_type="image",
            output_modalities=["image"],
            pricing=ModelPricing(image_output_usd_per_image=None),
            **flags,
        ),
        ModelInfo(
            id="acme/unpriced",
            name="No price yet",
            is_free=False,
            provider="acme",
            model_type="image",
            output_modalities=["image"],
            pricing=None,
            **flags,
        ),
        ModelInfo(
            id="google/discounted",
            name="Discounted",
            is_free=False,
            provider="google",
            model_type="image",
            output_modalities=["image"],
            pricing=ModelPricing(image_output_usd_per_image="0.0300", discount_pct="10"),
            **{**flags, "supports_image_upscale": True},
        ),
        ModelInfo(
            id="openai/gpt-4o",
            name="GPT-4o",
            is_free=False,
            model_type="text",
            output_modalities=["text"],
            pricing=ModelPricing(prompt_usd_per_1m="2.5"),
        ),
    ]


def serve(handler: Any) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    engine().set_transport(httpx.MockTransport(record))
    mesh_magic.configure(base_url=BASE, max_retries=0)
    with pytest.warns(UserWarning):
        mesh_magic.configure(api_key=KEY)
    return seen


def test_model_prices_from_the_sdk_shapes(ledger: Ledger) -> None:
    body = [m.model_dump(mode="json") for m in sdk_models()]
    serve(lambda request: httpx.Response(200, json=body))
    ledger.count("ModelInfo (fixture)", len(body))
    found = {m["id"]: m for m in mesh_magic.models()}
    assert "openai/gpt-4o" not in found  # not an image model
    table = ModelTable(list(found.values()))
    prices = {model_id: price for model_id, _, price in table.rows}
    assert prices == {
        "openai/gpt-image-1": 0.04,
        "stability/free-one": 0.0,
        "acme/unpriced": None,
        "google/discounted": 0.03,
    }
    text = repr(table)
    assert "$0.040" in text and "free" in text and "—" in text and "$0.030" in text


def test_a_generation_answer_built_by_the_sdk(ledger: Ledger) -> None:
    image = png(40, 30)
    answer = ImageGenerationResponse(
        created=1_790_000_000,
        data=[
            ImageItem(b64_json=base64.b64encode(image).decode(), revised_prompt="a red fox, detailed"),
            ImageItem(url="data:image/png;base64," + base64.b64encode(image).decode()),
        ],
        usage=ImageUsage(prompt_tokens=5, completion_tokens=272, total_tokens=277),
        size="40x30",
        quality="low",
        output_format="png",
    )
    ledger.count("ImageGenerationResponse (fixture)")
    seen = serve(
        lambda request: httpx.Response(
            200, json=answer.model_dump(mode="json"), headers={"x-request-id": "req_sdk_1"}
        )
    )
    result = mesh_magic.generate("a red fox", n=2)
    assert [(im.width, im.height) for im in result] == [(40, 30), (40, 30)]
    assert result[0].revised_prompt == "a red fox, detailed"
    assert result[0].request_id == "req_sdk_1" and result[0].created == 1_790_000_000
    assert result.usage == {"prompt_tokens": 5, "completion_tokens": 272, "total_tokens": 277}
    (post,) = [r for r in seen if r.method == "POST"]
    assert json.loads(post.content) == {"prompt": "a red fox", "model": "openai/gpt-image-1", "n": 2}


ENVELOPES = [
    (400, "invalid_request", InvalidRequestError),
    (400, "model_capability_not_supported", InvalidRequestError),
    (401, "unauthorized", AuthenticationError),
    (402, "spend_limit_exceeded", InsufficientBalanceError),
    (403, "forbidden", PermissionDeniedError),
    (404, "model_not_found", ModelNotFoundError),
    (422, "validation_error", InvalidRequestError),
    (429, "rate_limit_exceeded", RateLimitError),
    (500, "upstream_error", ServerError),
    (501, "not_implemented", UnsupportedModelError),
    (503, "upstream_error", ServerError),
]


@pytest.mark.parametrize(("status", "code", "cls"), ENVELOPES)
def test_error_envelopes_as_the_sdk_reads_them(status: int, code: str, cls: type[MeshImageError]) -> None:
    details = [{"loc": ["body", "size"], "msg": "unsupported size for this model", "type": "value_error"}]
    error: dict[str, Any] = {"code": code, "message": "Validation failed.", "details": details}
    if status == 429:
        error["retry_after_seconds"] = 90  # in the body only: no Retry-After header
    body = {"error": error, "request_id": "req_body_7"}
    serve(lambda request: httpx.Response(status, json=body, headers={"x-request-id": "req_header"}))
    with pytest.raises(cls) as caught:
        mesh_magic.generate("a fox", size="1024x1024")
    err = caught.value
    assert (err.status, err.code, err.request_id) == (status, code, "req_body_7")
    assert "size: unsupported size for this model" in str(err)
    if status == 429:
        assert isinstance(err, RateLimitError) and err.retry_after == 90
    if code == "model_capability_not_supported":
        assert "does not support" in err.hint


def test_retry_after_seconds_in_the_body_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh_magic.core.http import client as client_module

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    original = client_module.MeshClient.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "sleep": sleep})

    monkeypatch.setattr(client_module.MeshClient, "__init__", recording_init)
    answers = iter(
        [
            httpx.Response(
                429,
                json={
                    "error": {"code": "rate_limit_exceeded", "message": "slow down", "retry_after_seconds": 4}
                },
            ),
            httpx.Response(
                200, json={"created": 1, "data": [{"b64_json": base64.b64encode(png()).decode()}]}
            ),
        ]
    )
    seen = serve(with_catalog(lambda request: next(answers)))
    mesh_magic.configure(max_retries=2)
    result = mesh_magic.generate("a fox")
    posts = [r for r in seen if r.method == "POST"]
    assert len(result) == 1 and len(posts) == 2 and waits == [4]
