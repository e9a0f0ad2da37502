"""The model catalog the local MeshAPI-compatible server pretends to offer."""

from __future__ import annotations

from typing import Any

DEFAULT_MODEL = "openai/gpt-image-1"

# Flags beyond the public listing fields drive the server's behaviour:
#   max_n           -- most images one request may ask for
#   revises_prompt  -- data items carry a revised_prompt
#   b64_only        -- answers b64_json whatever response_format says (like the real one)
#   url_style       -- "https": url items link to /v1/files; "data": url items are data: URIs
#   preview_style   -- which look the offline preview renderer gives its images
MODELS: list[dict[str, Any]] = [
    {
        "id": "openai/gpt-image-1",
        "name": "OpenAI: GPT Image 1",
        "provider": "openai",
        "output_modalities": ["image"],
        "input_modalities": ["text", "image"],
        "image_output_usd_per_image": 0.04,
        "max_n": 10,
        "revises_prompt": True,
        "b64_only": True,
        "url_style": "https",
        "preview_style": "dusk",
    },
    {
        "id": "openai/dall-e-3",
        "name": "OpenAI: DALL-E 3",
        "provider": "openai",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": 0.04,
        "max_n": 1,
        "revises_prompt": True,
        "b64_only": False,
        "url_style": "https",
        "preview_style": "painterly",
    },
    {
        "id": "google/imagen-4",
        "name": "Google: Imagen 4",
        "provider": "google",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": 0.03,
        "max_n": 4,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "https",
        "preview_style": "pastel",
    },
    {
        "id": "black-forest-labs/flux-1.1-pro",
        "name": "Black Forest Labs: FLUX 1.1 [pro]",
        "provider": "black-forest-labs",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": 0.04,
        "max_n": 1,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "https",
        "preview_style": "cinematic",
    },
    {
        "id": "black-forest-labs/flux-schnell",
        "name": "Black Forest Labs: FLUX.1 [schnell]",
        "provider": "black-forest-labs",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": 0.003,
        "max_n": 4,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "https",
        "preview_style": "flat",
    },
    {
        "id": "stability/sd-3.5-large",
        "name": "Stability AI: Stable Diffusion 3.5 Large",
        "provider": "stability",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": 0.065,
        "max_n": 4,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "https",
        "preview_style": "neon",
    },
    {
        "id": "meshapi/data-uri-preview",
        "name": "MeshAPI: Data-URI Preview",
        "provider": "meshapi",
        "output_modalities": ["image"],
        "input_modalities": ["text"],
        "image_output_usd_per_image": None,
        "max_n": 10,
        "revises_prompt": False,
        "b64_only": False,
        "url_style": "data",
        "preview_style": "blueprint",
    },
    {
        "id": "openai/gpt-4o-mini",
        "name": "OpenAI: GPT-4o mini",
        "provider": "openai",
        "output_modalities": ["text"],
        "input_modalities": ["text", "image"],
        "image_output_usd_per_image": None,
        "prompt_usd_per_mtok": 0.15,
        "completion_usd_per_mtok": 0.6,
    },
]

_BY_ID: dict[str, dict[str, Any]] = {m["id"]: m for m in MODELS}


def find_model(model_id: str) -> dict[str, Any] | None:
    """The catalog entry for `model_id`, or None when the server doesn't know it."""
    return _BY_ID.get(model_id)


def is_image_model(entry: dict[str, Any]) -> bool:
    return "image" in entry.get("output_modalities", ())


def uses_openai_stream(model_id: str) -> bool:
    # OpenAI's own image API streams typed events rather than MeshAPI's chunks.
    return model_id.startswith("openai/")
