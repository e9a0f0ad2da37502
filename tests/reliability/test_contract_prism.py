"""Wire contract: the requests the client builds pass Prism's validation of the OpenAPI spec.

Prism (`@stoplight/prism-cli`, installed by scripts/setup from package.json) mocks
spec/meshapi-openapi.yaml and reports every way a request breaks the
spec in the `sl-violations` response header. Requests go through the real
`plan()` -> `MeshClient.generate()` path; an httpx event hook on our own
AsyncClient reads the header. Prism's mock bodies are not images (it answers
`null`), so only the request validation matters here. If Prism is missing the
test fails (never skips): see the `prism_process` fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

import httpx
import pytest

from mesh_magic.core.errors import AuthenticationError, InvalidRequestError, MeshImageError
from mesh_magic.core.generate import plan
from mesh_magic.core.http.client import MeshClient
from tests.reliability.report import REPORT

KEY = "rsk_contract_0123456789abcdef"
PROMPT = "A futuristic city skyline at sunset, vibrant colors, digital art"

# One dimension at a time around the defaults, then a few full combinations.
MATRIX: list[dict[str, Any]] = [
    {},
    *(
        {"model": m}
        for m in [
            "openai/gpt-image-1",
            "openai/dall-e-3",
            "google/imagen-4",
            "black-forest-labs/flux-1.1-pro",
            "openai/gpt-image-1,google/imagen-4",
        ]
    ),
    *({"n": n} for n in [1, 2, 4, 10]),
    *({"size": s} for s in ["auto", "1024x1024", "512x768", "1792x1024", "square", "landscape", "portrait"]),
    *({"quality": q} for q in ["auto", "low", "medium", "high", "hd", "standard"]),
    *({"response_format": r} for r in ["url", "b64_json"]),
    *({"output_format": f} for f in ["png", "jpeg", "webp"]),
    {"stream": False},
    {"stream": True},
    *(
        {"params": p}
        for p in [
            {"seed": 7},
            {"background": "transparent"},
            {"aspect_ratio": "16:9", "resolution": "2K"},
            {"output_compression": 80, "moderation": "low"},
            {"guidance_scale": 3.5, "watermark": False, "negative_prompt": "blur"},
            {"partial_images": 2, "style": {"preset": "anime", "weights": [1, 2]}},
        ]
    ),
    {
        "model": "openai/gpt-image-1",
        "n": 3,
        "size": "portrait",
        "quality": "high",
        "response_format": "b64_json",
        "output_format": "webp",
        "params": {"seed": 1, "background": "opaque"},
    },
    {
        "model": "google/imagen-4",
        "n": 10,
        "size": "2048x2048",
        "quality": "standard",
        "response_format": "url",
        "output_format": "jpeg",
        "params": {"aspect_ratio": "1:1"},
    },
]


def _wait_ready(prism: dict[str, Any], timeout: float = 45.0) -> str:
    if "missing" in prism:
        pytest.fail(prism["missing"], pytrace=False)
    proc, port = prism["proc"], prism["port"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"Prism exited with code {proc.returncode} (see test-artifacts/prism.log)", pytrace=False
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"Prism did not listen on port {port} within {timeout:.0f} s", pytrace=False)


class Recorder:
    """An httpx response hook that keeps each request body with Prism's verdict."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, response: httpx.Response) -> None:
        raw = response.headers.get("sl-violations")
        self.seen.append(
            {
                "status": response.status_code,
                "body": json.loads(response.request.content or b"null"),
                "headers": dict(response.request.headers),
                "violations": json.loads(raw) if raw else [],
            }
        )


async def _send(
    base: str, options: dict[str, Any], recorder: Recorder, headers: dict[str, str] | None = None
) -> list[MeshImageError]:
    errors: list[MeshImageError] = []
    call = plan(PROMPT, {"base_url": base, "max_retries": 0, "timeout": 20, **options})
    async with httpx.AsyncClient(
        event_hooks={"response": [recorder]}, trust_env=False, headers=headers or {}
    ) as http:
        client = MeshClient(call.settings, http)
        for request in call.requests:
            try:
                await client.generate(request)
            except MeshImageError as exc:  # Prism's mock body is `null`, not an image
                errors.append(exc)
    return errors


def test_client_requests_satisfy_the_wire_spec(prism_process: dict[str, Any]) -> None:
    base = _wait_ready(prism_process)
    recorder = Recorder()

    async def run_all() -> None:
        await asyncio.gather(*(_send(base, {"api_key": KEY, **options}, recorder) for options in MATRIX))

    asyncio.run(run_all())
    seen = recorder.seen
    bad = [s for s in seen if s["violations"]]
    REPORT.contract["requests"] += len(seen)
    REPORT.contract["violations"] += sum(len(s["violations"]) for s in bad)
    REPORT.used = True
    assert not bad, json.dumps(bad[:3], indent=2)
    expected = sum(len(plan(PROMPT, {"api_key": KEY, **o}).requests) for o in MATRIX)
    assert len(seen) == expected, "one request per prompt x model, none retried"
    # Valid requests get the spec's 200 (or 406 for the event-stream Accept: not in the spec).
    assert {s["status"] for s in seen} <= {200, 406}
    assert all(s["headers"]["authorization"] == f"Bearer {KEY}" for s in seen)
    sizes = {s["body"].get("size") for s in seen}
    assert {"1024x1024", "1536x1024", "1024x1536", "auto"} <= sizes, "aliases become WxH"
    # With nothing set, the body is the prompt and the model: no defaults the provider may refuse.
    assert {"prompt": PROMPT, "model": "openai/gpt-image-1"} in [s["body"] for s in seen]
    assert any(s["body"].get("stream") is True for s in seen)
    assert any(s["body"].get("style") == {"preset": "anime", "weights": [1, 2]} for s in seen)


def test_request_without_a_key_breaks_the_contract(prism_process: dict[str, Any]) -> None:
    """No key: the spec requires the Authorization header; Prism rejects the request.

    With this spec Prism answers 422 naming the missing header (the spec declares
    no security requirement Prism could turn into its 401). The spec's 401 itself
    is checked below by asking Prism for it (`Prefer: code=401`).
    """
    base = _wait_ready(prism_process)
    recorder = Recorder()
    errors = asyncio.run(_send(base, {}, recorder))
    assert len(recorder.seen) == 1
    seen = recorder.seen[0]
    assert "authorization" not in seen["headers"]
    assert any("authorization" in v["message"] for v in seen["violations"]), seen
    assert len(errors) == 1 and isinstance(errors[0], InvalidRequestError)

    recorder = Recorder()
    errors = asyncio.run(_send(base, {"api_key": KEY}, recorder, headers={"Prefer": "code=401"}))
    assert recorder.seen[0]["status"] == 401 and not recorder.seen[0]["violations"]
    assert len(errors) == 1 and isinstance(errors[0], AuthenticationError)
    assert "MESHAPI_API_KEY" in errors[0].hint
    REPORT.contract["requests"] += 2


def test_model_list_requests_satisfy_the_wire_spec(prism_process: dict[str, Any]) -> None:
    """GET /v1/models?type=image as the client sends it; Prism's mock answer (from the
    spec's ModelInfo schema) parses into model entries with their prices."""
    base = _wait_ready(prism_process)
    recorder = Recorder()

    async def fetch() -> list[dict[str, Any]]:
        call = plan(PROMPT, {"base_url": base, "api_key": KEY, "max_retries": 0, "timeout": 20})
        async with httpx.AsyncClient(event_hooks={"response": [recorder]}, trust_env=False) as http:
            return await MeshClient(call.settings, http).list_models("image")

    models = asyncio.run(fetch())
    REPORT.contract["requests"] += len(recorder.seen)
    REPORT.contract["violations"] += sum(len(s["violations"]) for s in recorder.seen)
    REPORT.used = True
    (seen,) = recorder.seen
    assert seen["status"] == 200 and not seen["violations"], seen
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert isinstance(models, list) and all("id" in m and "name" in m for m in models)


EDIT_MATRIX: list[dict[str, Any]] = [
    {"operation": "edit", "prompt": "warmer light"},
    {"operation": "edit", "prompt": "a hat", "region": "0.1,0.1,0.3,0.3"},
    {"operation": "inpaint", "prompt": "", "region": "0,0,16,16", "params": {"mask_feather": 4}},
    {"operation": "outpaint", "prompt": "more sea", "params": {"expand_factor": 1.5}},
    {"operation": "mix", "prompt": "both", "extra_sources": 1},
    {"operation": "reframe", "prompt": "", "params": {"aspect_ratio": "16:9"}},
    {"operation": "upscale", "prompt": "", "params": {"upscale_factor": "4"}},
    {"operation": "remove_background", "prompt": "", "params": {"background": "transparent"}},
    {"operation": "edit", "prompt": "three takes", "n": 3, "size": "512x512", "response_format": "url"},
]


def test_edit_requests_satisfy_the_wire_spec(prism_process: dict[str, Any]) -> None:
    """POST /v1/images/edits as the client builds each operation (ImageEditRequest forbids extras)."""
    from tests.support.images import make_image

    base = _wait_ready(prism_process)
    recorder = Recorder()

    async def send(case: dict[str, Any]) -> None:
        case = dict(case)
        prompt = case.pop("prompt")
        images = [make_image(64, 64)] * (1 + case.pop("extra_sources", 0))
        options = {"base_url": base, "api_key": KEY, "max_retries": 0, "timeout": 20, "image": images, **case}
        call = plan(prompt, options)
        async with httpx.AsyncClient(event_hooks={"response": [recorder]}, trust_env=False) as http:
            client = MeshClient(call.settings, http)
            for request in call.requests:
                with contextlib.suppress(MeshImageError):  # Prism's mock body is not an image
                    await client.generate(request)

    async def run_all() -> None:
        await asyncio.gather(*(send(case) for case in EDIT_MATRIX))

    asyncio.run(run_all())
    REPORT.contract["requests"] += len(recorder.seen)
    REPORT.contract["violations"] += sum(len(s["violations"]) for s in recorder.seen)
    REPORT.used = True
    bad = [s for s in recorder.seen if s["violations"]]
    assert not bad, json.dumps(bad[:2], indent=2)[:3000]
    assert len(recorder.seen) == len(EDIT_MATRIX)
    assert {s["body"]["operation"] for s in recorder.seen} == {c["operation"] for c in EDIT_MATRIX}
    assert all(s["body"]["image"].startswith("data:image/png;base64,") for s in recorder.seen)


def test_reference_images_of_a_generation_satisfy_the_wire_spec(prism_process: dict[str, Any]) -> None:
    from tests.support.images import make_image

    base = _wait_ready(prism_process)
    recorder = Recorder()
    options = {"api_key": KEY, "references": [make_image(32, 32), make_image(48, 48)], "seed": 5}
    asyncio.run(_send(base, options, recorder))
    (seen,) = recorder.seen
    assert not seen["violations"], seen["violations"]
    assert isinstance(seen["body"]["image"], list) and len(seen["body"]["image"]) == 2
    REPORT.contract["requests"] += 1
