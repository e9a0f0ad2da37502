"""The model catalog the local MeshAPI-compatible server pretends to offer, in the SDK's shapes.

Listed entries are the official SDK's `ModelInfo`: `id`, `name`, `is_free`,
`pricing` (string prices), `brand`, `provider`, `model_type`, modalities and
the `supports_image_*` capability flags. The catalog mixes priced, free and
unpriced models with differing capabilities, as the real one does.

Fields beyond the public listing drive the server's behaviour and are never listed:
  max_n           -- most images one request may ask for
  revises_prompt  -- data items carry a revised_prompt
  b64_only        -- answers b64_json whatever response_format says (like the real one)
  url_style       -- "https": url items link to /v1/files; "data": url items are data: URIs
  preview_style   -- which look the offline preview renderer gives its images
"""

from __future__ import annotations

from typing import Any

DEFAULT_MODEL = "openai/gpt-image-1"
OPERATIONS = ("edit", "inpaint", "outpaint", "mix", "reframe", "upscale", "remove_background")
CAPABILITIES = (*OPERATIONS, "reference")
PRIVATE_FIELDS = frozenset({"max_n", "revises_prompt", "b64_only", "url_style", "preview_style"})


def _image_model(
    model_id: str,
    name: str,
    brand: str,
    *,
    price: str | None,
    can: tuple[str, ...] = (),
    free: bool = False,
    max_n: int = 4,
    style: str = "dusk",
    **behaviour: Any,
) -> dict[str, Any]:
    """One image model: public ModelInfo fields, then the server's private behaviour."""
    unknown = set(can) - set(CAPABILITIES)
    assert not unknown, f"unknown capabilities {unknown}"
    return {
        "id": model_id,
        "name": name,
        "is_free": free,
        "pricing": None if price is None else {"image_output_usd_per_image": price, "pricing_unit": "image"},
        "brand": brand,
        "provider": model_id.split("/", 1)[0],
        "model_type": "image",
        "input_modalities": ["text", "image"] if can else ["text"],
        "output_modalities": ["image"],
        **{f"supports_image_{cap}": cap in can for cap in CAPABILITIES},
        "max_n": max_n,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "https",
        "preview_style": style,
        **behaviour,
    }


MODELS: list[dict[str, Any]] = [
    _image_model(
        "openai/gpt-image-1",
        "OpenAI: GPT Image 1",
        "OpenAI",
        price="0.04",
        can=("edit", "inpaint", "mix", "reference"),
        max_n=10,
        revises_prompt=True,
        b64_only=True,
    ),
    _image_model(
        "openai/dall-e-3",
        "OpenAI: DALL-E 3",
        "OpenAI",
        price="0.04",
        max_n=1,
        revises_prompt=True,
        style="painterly",
    ),
    _image_model(
        "google/imagen-4", "Google: Imagen 4", "Google", price="0.03", can=("upscale",), style="pastel"
    ),
    _image_model(
        "black-forest-labs/flux-1.1-pro",
        "Black Forest Labs: FLUX 1.1 [pro]",
        "Black Forest Labs",
        price="0.04",
        can=("reference",),
        max_n=1,
        style="cinematic",
    ),
    _image_model(
        "black-forest-labs/flux-kontext-pro",
        "Black Forest Labs: FLUX.1 Kontext [pro]",
        "Black Forest Labs",
        price="0.04",
        can=("edit", "mix", "reframe", "reference"),
        max_n=1,
        style="cinematic",
    ),
    _image_model(
        "black-forest-labs/flux-schnell",
        "Black Forest Labs: FLUX.1 [schnell]",
        "Black Forest Labs",
        price="0.003",
        style="flat",
    ),
    _image_model(
        "stability/sd-3.5-large",
        "Stability AI: Stable Diffusion 3.5 Large",
        "Stability AI",
        price="0.065",
        can=("inpaint", "outpaint", "upscale", "remove_background"),
        style="neon",
    ),
    _image_model(
        "stability/sdxl-turbo",
        "Stability AI: SDXL Turbo (free)",
        "Stability AI",
        price="0",
        free=True,
        style="flat",
    ),
    _image_model(
        "meshapi/data-uri-preview",
        "MeshAPI: Data-URI Preview",
        "MeshAPI",
        price=None,
        can=CAPABILITIES,
        max_n=10,
        url_style="data",
        style="blueprint",
    ),
    {
        "id": "openai/gpt-4o-mini",
        "name": "OpenAI: GPT-4o mini",
        "is_free": False,
        "pricing": {"prompt_usd_per_1m": "0.15", "completion_usd_per_1m": "0.6", "pricing_unit": "token"},
        "brand": "OpenAI",
        "provider": "openai",
        "model_type": "text",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "context_length": 128000,
    },
]

_BY_ID: dict[str, dict[str, Any]] = {m["id"]: m for m in MODELS}


def find_model(model_id: str) -> dict[str, Any] | None:
    """The catalog entry for `model_id`, or None when the server doesn't know it."""
    return _BY_ID.get(model_id)


def is_image_model(entry: dict[str, Any]) -> bool:
    return "image" in entry.get("output_modalities", ())


def public(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as GET /v1/models lists it (the SDK's ModelInfo fields only)."""
    return {k: v for k, v in entry.items() if k not in PRIVATE_FIELDS}


def listed(
    kind: str | None = None, free: str | None = None, provider: str | None = None
) -> list[dict[str, Any]]:
    """GET /v1/models with its filters: `type` (an output modality), `free`, `provider`."""
    found = [m for m in MODELS if kind is None or kind in m.get("output_modalities", ())]
    if free is not None:
        found = [m for m in found if bool(m.get("is_free")) == (free.lower() == "true")]
    if provider is not None:
        found = [m for m in found if m.get("provider") == provider]
    return [public(m) for m in found]


def uses_openai_stream(model_id: str) -> bool:
    # OpenAI's own image API streams typed events rather than MeshAPI's chunks.
    return model_id.startswith("openai/")
