"""Helpers shared by the unit tests (imported as `unit_helpers`; tests/unit is on sys.path)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx

# Not loopback, so the client treats it as a real remote API (nothing leaves: MockTransport).
API_BASE = "https://api.example.test"
UNIT_KEY = "rsk_unit_0123456789abcd1a2b"


def make_image(width: int = 40, height: int = 20, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    from PIL import Image

    color: Any = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(payload).encode(),
                          headers={"content-type": "application/json", **(headers or {})})


def generation_body(*images: bytes, revised: str | None = None) -> dict[str, Any]:
    data = []
    for image in images:
        item: dict[str, Any] = {"b64_json": b64(image)}
        if revised:
            item["revised_prompt"] = revised
        data.append(item)
    return {"created": 1700000000, "data": data, "usage": {"total_tokens": 10}}
