"""Exercise mesh_magic.server over real loopback HTTP (plain httpx) and in-process."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from mesh_magic.server import (
    MODELS,
    OFFLINE_BASE_URL,
    Fault,
    MeshServer,
    create_app,
    offline_transport,
    render_preview,
)
from tests.support.paths import REPO
from tests.support.servers import free_port

GEN = "/v1/images/generations"
SMALL = "256x256"


@pytest.fixture
def client(server: MeshServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as c:
        yield c


def _gen(client: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("prompt", "a lighthouse on a cliff at dusk")
    body.setdefault("size", SMALL)
    return client.post(GEN, json=body)


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _sse_events(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        events.append((event, "\n".join(data)))
    return events


# --- generations ------------------------------------------------------------------


def test_gpt_image_1_always_answers_b64(client: httpx.Client) -> None:
    r = _gen(client, response_format="url", n=2)
    assert r.status_code == 200
    assert r.headers["x-request-id"].startswith("req_")
    body = r.json()
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert "url" not in item and item["revised_prompt"]
        assert _image(base64.b64decode(item["b64_json"])).size == (256, 256)
    assert body["size"] == SMALL and body["output_format"] == "png"
    assert body["usage"]["images"] == 2
    assert body["usage"]["total_tokens"] == (body["usage"]["input_tokens"] + body["usage"]["output_tokens"])


def test_url_images_live_on_the_image_host_without_auth(server: MeshServer, client: httpx.Client) -> None:
    r = _gen(client, model="google/imagen-4", output_format="jpeg")
    url = r.json()["data"][0]["url"]
    assert url.startswith(f"http://localhost:{server.port}/v1/files/") and url.endswith(".jpeg")
    download = httpx.get(url)  # no Authorization header, like a CDN link
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    assert _image(download.content).format == "JPEG"
    assert "x-request-id" in download.headers
    assert "authorization" not in server.requests[-1].headers


def test_default_response_format_is_url(client: httpx.Client) -> None:
    assert "url" in _gen(client, model="stability/sd-3.5-large").json()["data"][0]


def test_data_uri_model(client: httpx.Client) -> None:
    r = _gen(client, model="meshapi/data-uri-preview", output_format="webp")
    url = r.json()["data"][0]["url"]
    assert url.startswith("data:image/webp;base64,")
    assert _image(base64.b64decode(url.split(",", 1)[1])).format == "WEBP"


def test_same_prompt_and_seed_give_the_same_image(client: httpx.Client) -> None:
    def image(seed: int) -> str:
        return _gen(client, seed=seed, response_format="b64_json").json()["data"][0]["b64_json"]

    assert image(7) == image(7)
    assert image(7) != image(8)


def test_extra_fields_pass_through(client: httpx.Client, server: MeshServer) -> None:
    r = _gen(client, background="transparent", aspect_ratio="1:1", guidance_scale=3)
    assert r.status_code == 200
    assert server.requests[-1].json["guidance_scale"] == 3


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer rsk_wrong", "rsk_test_0123456789abcdef"])
def test_bad_or_missing_key_is_401(server: MeshServer, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = httpx.post(server.base_url + GEN, json={"prompt": "x"}, headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"] == "Missing or invalid API key"
    assert body["request_id"] == r.headers["x-request-id"]


def test_unknown_model_is_404(client: httpx.Client) -> None:
    r = _gen(client, model="acme/nope-1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert "acme/nope-1" in r.json()["error"]["message"]


def test_text_model_is_501(client: httpx.Client) -> None:
    r = _gen(client, model="openai/gpt-4o-mini")
    assert r.status_code == 501 and r.json()["error"]["code"] == "not_implemented"


def test_single_image_model_rejects_n_above_1(client: httpx.Client) -> None:
    r = _gen(client, model="openai/dall-e-3", n=2)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "model_capability_not_supported"
    assert "n must be 1" in r.json()["error"]["message"]


@pytest.mark.parametrize("size", ["12x12", "5000x1024", "big", "1024"])
def test_bad_size_is_a_422_with_the_reason_in_details(client: httpx.Client, size: str) -> None:
    r = _gen(client, size=size)
    error = r.json()["error"]
    assert r.status_code == 422 and error["code"] == "validation_error"
    assert error["message"] == "Validation failed."  # generic, as the real gateway's
    assert error["details"][0]["loc"] == ["body", "size"]
    assert "unsupported size" in error["details"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"n": 1}, ["body", "prompt"]),
        ({"prompt": "   "}, ["body", "prompt"]),
        ({"prompt": 5}, ["body", "prompt"]),
        ({"prompt": "x", "n": 11}, ["body", "n"]),
        ({"prompt": "x", "n": "two"}, ["body", "n"]),
        ({"prompt": "x", "quality": "ultra"}, ["body", "quality"]),
        ({"prompt": "x", "response_format": "file"}, ["body", "response_format"]),
        ({"prompt": "x", "output_format": "gif"}, ["body", "output_format"]),
        ({"prompt": "x", "stream": "yes"}, ["body", "stream"]),
        ([1, 2], ["body"]),
    ],
)
def test_validation_errors_are_fastapi_422(client: httpx.Client, body: Any, loc: list[str]) -> None:
    r = client.post(GEN, json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == loc and detail[0]["msg"] and detail[0]["type"]


@pytest.mark.parametrize("raw", [b"{not json", b'{"prompt": "x", "n": NaN}', b""])
def test_unparseable_body_is_422(client: httpx.Client, raw: bytes) -> None:
    r = client.post(GEN, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] in {"json_invalid", "missing"}


# --- models -----------------------------------------------------------------------


def test_models_listing_and_filter(server: MeshServer, client: httpx.Client) -> None:
    everything = client.get("/v1/models").json()
    images = client.get("/v1/models", params={"type": "image"}).json()
    assert {m["id"] for m in everything} == {m["id"] for m in MODELS}
    assert "openai/gpt-4o-mini" not in {m["id"] for m in images}
    assert all(m["output_modalities"] == ["image"] for m in images)
    imagen = next(m for m in images if m["id"] == "google/imagen-4")
    assert imagen["pricing"]["image_output_usd_per_image"] == "0.03" and imagen["name"]
    assert imagen["is_free"] is False and imagen["supports_image_upscale"] is True
    assert not {"max_n", "b64_only", "url_style", "preview_style"} & set(imagen)  # private
    free = client.get("/v1/models", params={"free": "true"}).json()
    assert free and all(m["is_free"] for m in free)
    assert {m["provider"] for m in client.get("/v1/models", params={"provider": "google"}).json()} == {
        "google"
    }
    assert httpx.get(server.base_url + "/v1/models").status_code == 401


def test_one_model_by_id(client: httpx.Client) -> None:
    r = client.get("/v1/models/black-forest-labs/flux-schnell")
    assert r.status_code == 200 and r.json()["id"] == "black-forest-labs/flux-schnell"
    missing = client.get("/v1/models/acme/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "Model not found"}


# --- streaming --------------------------------------------------------------------


def test_meshapi_stream(server: MeshServer, client: httpx.Client) -> None:
    server.latency = 0.25
    r = _gen(client, model="google/imagen-4", stream=True, response_format="b64_json")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [data for _, data in _sse_events(r.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len([c for c in chunks if c["status"] == "processing"]) >= 2
    final = chunks[-1]
    assert final["status"] == "completed" and final["object"] == "image.chunk"
    assert _image(base64.b64decode(final["data"][0]["b64_json"])).size == (256, 256)
    assert final["usage"]["images"] == 1


def test_openai_stream_with_partials(client: httpx.Client) -> None:
    r = _gen(client, stream=True, partial_images=2)
    events = _sse_events(r.text)
    assert [e for e, _ in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    partials = [json.loads(d) for _, d in events[:2]]
    assert [p["partial_image_index"] for p in partials] == [0, 1]
    final = json.loads(events[-1][1])
    assert final["type"] == "image_generation.completed" and final["size"] == SMALL
    sizes = {_image(base64.b64decode(p["b64_json"])).size for p in [*partials, final]}
    assert sizes == {(256, 256)}
    assert partials[0]["b64_json"] != final["b64_json"]


# --- faults -----------------------------------------------------------------------


def test_status_fault_with_retry_after(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("status", status=429, retry_after="2"))
    r = _gen(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    body = r.json()
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["error"]["retry_after_seconds"] == 2
    assert body["request_id"] == r.headers["x-request-id"]
    assert _gen(client).status_code == 200  # times=1: used up


@pytest.mark.parametrize(
    ("envelope", "status", "check"),
    [
        ("fastapi", 500, lambda r: r.json() == {"detail": "The upstream provider returned an error."}),
        (None, 422, lambda r: r.json()["detail"][0]["loc"] == ["body"]),
        (
            "html",
            502,
            lambda r: r.headers["content-type"].startswith("text/html") and "502 Bad Gateway" in r.text,
        ),
        ("empty", 503, lambda r: r.content == b""),
        ("mesh", 402, lambda r: r.json()["error"]["code"] == "spend_limit_exceeded"),
    ],
)
def test_status_fault_envelopes(
    server: MeshServer, client: httpx.Client, envelope: str | None, status: int, check: Any
) -> None:
    server.add_fault(Fault("status", status=status, envelope=envelope))
    r = _gen(client)
    assert r.status_code == status and check(r)
    assert r.headers["x-request-id"].startswith("req_")


def test_fault_filters_by_model_and_counts_times(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("status", status=503, model="google/imagen-4", times=2))
    assert _gen(client).status_code == 200
    assert _gen(client, model="google/imagen-4").status_code == 503
    assert _gen(client, model="google/imagen-4").status_code == 503
    assert _gen(client, model="google/imagen-4").status_code == 200


def test_seeded_probability_is_reproducible(server: MeshServer, client: httpx.Client) -> None:
    def pattern() -> list[int]:
        server.reset()
        server.add_fault(Fault("status", status=500, times=-1, probability=0.5, seed=3, path="/v1/models"))
        return [client.get("/v1/models").status_code for _ in range(12)]

    first = pattern()
    assert first == pattern() and {200, 500} == set(first)


def test_latency_fault_delays_headers(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("latency", delay=1.0))
    with pytest.raises(httpx.ReadTimeout):
        client.post(GEN, json={"prompt": "x", "size": SMALL}, timeout=0.2)
    deadline = time.monotonic() + 2
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.in_flight == 0  # the hang-up cancelled the simulated work


def test_slow_body_fault(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("slow_body", delay=0.4))
    start = time.monotonic()
    with client.stream("POST", GEN, json={"prompt": "x", "size": SMALL}) as r:
        headers_at = time.monotonic() - start
        r.read()
    assert headers_at < 0.3 and time.monotonic() - start >= 0.35
    assert r.json()["data"][0]["b64_json"]


def test_malformed_and_non_json(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("malformed_json"))
    r = _gen(client)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        r.json()
    server.add_fault(Fault("non_json"))
    r = _gen(client)
    assert r.headers["content-type"].startswith("text/plain") and r.text == "OK"
    server.add_fault(Fault("non_json", envelope="html"))
    assert _gen(client).headers["content-type"].startswith("text/html")


def test_empty_data_and_missing_fields(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("empty_data"))
    body = _gen(client).json()
    assert body["data"] == [] and "created" in body
    server.add_fault(Fault("missing_fields"))
    item = _gen(client).json()["data"][0]
    assert "url" not in item and "b64_json" not in item and item["revised_prompt"]


def test_corrupt_b64(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("corrupt_b64"))
    with pytest.raises(binascii.Error):
        base64.b64decode(_gen(client).json()["data"][0]["b64_json"], validate=True)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("not_image", Image.UnidentifiedImageError),
        ("truncated_image", OSError),
        ("huge_image", Image.DecompressionBombError),
    ],
)
def test_bad_image_bytes(server: MeshServer, client: httpx.Client, kind: str, error: type[Exception]) -> None:
    server.add_fault(Fault(kind))
    data = base64.b64decode(_gen(client).json()["data"][0]["b64_json"], validate=True)
    assert len(data) < 1_000_000
    with pytest.raises(error):
        _image(data)


def test_bad_image_bytes_behind_a_url(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("not_image"))
    url = _gen(client, model="google/imagen-4").json()["data"][0]["url"]
    with pytest.raises(Image.UnidentifiedImageError):
        _image(httpx.get(url).content)


def test_huge_body_is_chunked(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("huge_body", size_mb=2))
    received = 0
    with client.stream("POST", GEN, json={"prompt": "x"}) as r:
        assert "content-length" not in r.headers
        for chunk in r.iter_bytes():
            received += len(chunk)
            if received > 1_000_000:
                break  # what a careful client does
    assert received > 1_000_000


def test_reset_is_a_protocol_error_not_a_short_body(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("reset"))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _gen(client)
    assert _gen(client).status_code == 200


def test_stream_break_and_error(server: MeshServer, client: httpx.Client) -> None:
    server.add_fault(Fault("stream_break"))
    assert _gen(client).status_code == 200  # stream-only kinds skip plain requests
    events = [d for _, d in _sse_events(_gen(client, model="google/imagen-4", stream=True).text)]
    assert events and "[DONE]" not in events
    assert all(json.loads(d)["status"] == "processing" for d in events)

    server.add_fault(Fault("stream_break"))
    events = _sse_events(_gen(client, stream=True, partial_images=2).text)
    assert [e for e, _ in events] == ["image_generation.partial_image"]

    server.add_fault(Fault("stream_error", message="provider exploded"))
    events = [d for _, d in _sse_events(_gen(client, model="google/imagen-4", stream=True).text)]
    assert json.loads(events[-1])["error"] == {"code": "upstream_error", "message": "provider exploded"}


def test_image_download_faults(server: MeshServer, client: httpx.Client) -> None:
    url = _gen(client, model="google/imagen-4").json()["data"][0]["url"]
    original = httpx.get(url).content

    server.add_fault(Fault("status", status=404, path="/v1/files"))
    assert httpx.get(url).status_code == 404

    server.add_fault(Fault("non_json", path="/v1/files"))
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")

    server.add_fault(Fault("truncated_image", path="/v1/files"))
    assert httpx.get(url).content == original[: len(original) // 2]

    server.add_fault(Fault("latency", delay=1.0, path="/v1/files"))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=0.2)

    server.add_fault(Fault("redirect", path="/v1/files", times=-1))
    r = httpx.get(url)
    assert r.status_code == 302 and r.headers["location"].startswith("http://localhost:")
    assert httpx.get(url, follow_redirects=True).content == original


def test_fault_round_trips_as_json() -> None:
    fault = Fault("status", status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    again = Fault(**json.loads(json.dumps(dataclasses.asdict(fault))))
    assert again == fault
    with pytest.raises(ValueError):
        Fault("nonsense")


# --- control routes, concurrency --------------------------------------------------


def test_control_routes(server: MeshServer, client: httpx.Client) -> None:
    base = server.base_url
    faults = [
        {"kind": "status", "status": 503, "times": 1},
        {"kind": "status", "status": 500, "path": "/v1/models"},
    ]
    assert httpx.post(base + "/_mesh/faults", json=faults).status_code == 200
    assert len(httpx.get(base + "/_mesh/faults").json()) == 2
    assert _gen(client).status_code == 503
    assert client.get("/v1/models").status_code == 500
    logged = httpx.get(base + "/_mesh/requests").json()
    assert [e["path"] for e in logged] == [GEN, "/v1/models"]
    assert logged[0]["headers"]["authorization"] == f"Bearer {server.api_key}"
    assert logged[0]["json"]["prompt"]
    assert httpx.get(base + "/_mesh/stats").json()["requests"] == 2
    assert httpx.post(base + "/_mesh/latency", json={"latency": 0.05}).json() == {"latency": 0.05}
    assert server.latency == 0.05
    assert httpx.post(base + "/_mesh/faults", json={"kind": "bogus"}).status_code == 400
    httpx.post(base + "/_mesh/reset")
    assert httpx.get(base + "/_mesh/stats").json() == {"max_in_flight": 0, "in_flight": 0, "requests": 0}


def test_max_in_flight_under_latency(server: MeshServer) -> None:
    server.latency = 1.0  # long enough that all four overlap even on a loaded machine

    async def burst() -> list[int]:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as c:
            rs = await asyncio.gather(
                *(c.post(GEN, json={"prompt": f"p{i}", "size": "64x64"}) for i in range(4))
            )
        return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * 4
    # The server counts a request done after its last byte is sent, which the client may
    # read first: wait for the count to settle rather than race it.
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.max_in_flight == 4 and server.in_flight == 0


# --- in-process, rendering, CLI ---------------------------------------------------


def test_offline_transport() -> None:
    async def run() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=offline_transport(), base_url=OFFLINE_BASE_URL) as c:
            r = await c.post(GEN, json={"prompt": "offline fox", "model": "google/imagen-4", "size": SMALL})
            return r, await c.get(r.json()["data"][0]["url"])

    generated, image = asyncio.run(run())
    assert generated.status_code == 200 and generated.headers["x-request-id"]
    assert generated.json()["data"][0]["url"].startswith(OFFLINE_BASE_URL + "/v1/files/")
    assert _image(image.content).size == (256, 256)


def test_offline_stream_without_a_key() -> None:
    async def run() -> str:
        async with httpx.AsyncClient(transport=offline_transport(), base_url=OFFLINE_BASE_URL) as c:
            r = await c.post(
                GEN,
                json={
                    "prompt": "fox",
                    "model": "black-forest-labs/flux-schnell",
                    "size": "64x64",
                    "stream": True,
                },
            )
            return r.text

    events = [d for _, d in _sse_events(asyncio.run(run()))]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["status"] == "completed"


def test_import_is_light() -> None:
    code = (
        "import sys, mesh_magic.server; "
        "print([m for m in ('IPython', 'starlette', 'uvicorn', 'PIL') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=20,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_in_process_reset_raises_an_httpx_error() -> None:
    app = create_app()
    app.add_fault(Fault("reset"))

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OFFLINE_BASE_URL) as c:
            await c.post(GEN, json={"prompt": "x"})

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(run())


def test_render_preview() -> None:
    data = render_preview("a red kite", model="openai/gpt-image-1", seed=1, index=0, width=1024, height=768)
    img = _image(data)
    assert img.format == "PNG" and img.size == (1024, 768)
    assert data == render_preview(
        "a red kite", model="openai/gpt-image-1", seed=1, index=0, width=1024, height=768
    )
    other = render_preview("a red kite", model="google/imagen-4", seed=1, index=0, width=1024, height=768)
    assert other != data
    jpeg = render_preview("tiny", model="x/unknown", seed=None, index=2, width=64, height=64, fmt="jpeg")
    assert _image(jpeg).format == "JPEG"


def test_cli_serves_until_terminated() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MESHAPI_API_KEY": "rsk_cli_key"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh_magic.server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == (f"MeshAPI-compatible server on http://127.0.0.1:{port} (key check: on)")
        r = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer rsk_cli_key"})
        assert r.status_code == 200 and r.json()
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_cli_refuses_a_public_host() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mesh_magic.server", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert done.returncode == 2 and "--allow-remote" in done.stderr
