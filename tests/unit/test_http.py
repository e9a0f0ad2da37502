"""The HTTP client over httpx.MockTransport: bodies, auth scope, retries, limits and streams."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

import mesh_magic
from mesh_magic.core.constants import BACKOFF_BASE, BACKOFF_CAP, MAX_RETRY_WAIT
from mesh_magic.core.engine.loop import engine
from mesh_magic.core.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidOptionError,
    InvalidRequestError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from mesh_magic.core.http import client as _http
from mesh_magic.core.http.client import Generation, MeshClient
from mesh_magic.core.http.factory import build_http_client
from mesh_magic.core.http.retry import backoff_delay
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.settings import Settings
from tests.support.images import b64, make_image
from tests.support.mock_api import API_BASE, MOCK_KEY, generation_body, json_response, with_catalog

T = TypeVar("T")
Handler = Callable[[httpx.Request], Any]
GEN_URL = f"{API_BASE}/v1/images/generations"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Harness:
    """A MeshClient on a MockTransport that records every request and every back-off wait."""

    def __init__(self, settings: Settings, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []
        self._handler = handler

        async def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            outcome = self._handler(request)
            if isinstance(outcome, Awaitable):
                outcome = await outcome
            return outcome

        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        self.http = build_http_client("network", httpx.MockTransport(record))
        self.client = MeshClient(settings, self.http, sleep=sleep)

    def generate(self, request: ImageRequest | None = None) -> Generation:
        async def go() -> Generation:
            try:
                return await self.client.generate(request or ImageRequest("a fox", "m/x"))
            finally:
                await self.http.aclose()

        return run(go())


def sequence(*responses: httpx.Response | Exception) -> Handler:
    """A handler answering with `responses` in turn (the last one repeats)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def ok(png: bytes, **headers: str) -> httpx.Response:
    return json_response(generation_body(png), headers={"x-request-id": "req_ok", **headers})


def status(code: int, **headers: str) -> httpx.Response:
    body = {"error": {"code": f"c{code}", "message": f"failed {code}"}, "request_id": f"req_{code}"}
    return json_response(body, status=code, headers={k.replace("_", "-"): v for k, v in headers.items()})


# -- the request ---------------------------------------------------------------------------


def test_body_headers_and_result(settings: Callable[..., Settings], png: bytes) -> None:
    harness = Harness(
        settings(),
        sequence(
            json_response(generation_body(png, revised="a detailed fox"), headers={"x-request-id": "req_abc"})
        ),
    )
    request = ImageRequest(
        prompt="a fox",
        model="m/x",
        n=1,
        fields={"size": "512x512", "quality": "high", "response_format": "b64_json", "output_format": "png"},
        params={"seed": 42, "background": "transparent", "guidance_scale": 7.5},
        row=3,
    )
    generation = harness.generate(request)
    (sent,) = harness.requests
    assert sent.method == "POST"
    assert str(sent.url) == GEN_URL
    assert json.loads(sent.content) == {
        "prompt": "a fox",
        "model": "m/x",
        "n": 1,
        "size": "512x512",
        "quality": "high",
        "response_format": "b64_json",
        "output_format": "png",
        "seed": 42,
        "background": "transparent",
        "guidance_scale": 7.5,
    }
    assert sent.headers["authorization"] == f"Bearer {MOCK_KEY}"
    assert sent.headers["user-agent"].startswith("mesh-magic/")
    assert sent.headers["accept"] == "application/json"
    assert generation.request_id == "req_abc"
    assert generation.usage == {"total_tokens": 10}
    (image,) = generation.images
    assert image.data == png
    assert (image.mime_type, image.width, image.height) == ("image/png", 40, 20)
    assert (image.prompt, image.model, image.row, image.index) == ("a fox", "m/x", 3, 0)
    assert image.revised_prompt == "a detailed fox"
    assert image.request_id == "req_abc"
    assert image.created == 1700000000
    assert image.params["seed"] == 42 and "prompt" not in image.params
    assert image.source == "b64_json"


def test_stream_request_asks_for_event_stream(settings: Callable[..., Settings], png: bytes) -> None:
    final = {"object": "image.chunk", "status": "completed", **generation_body(png)}
    stream = (
        b'data: {"object": "image.chunk", "status": "processing", "data": []}\n\n'
        + f"data: {json.dumps(final)}\n\n".encode()
        + b"data: [DONE]\n\n"
    )
    harness = Harness(
        settings(),
        sequence(httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})),
    )
    generation = harness.generate(ImageRequest("a fox", "m/x", stream=True))
    assert harness.requests[0].headers["accept"] == "text/event-stream"
    assert json.loads(harness.requests[0].content)["stream"] is True
    assert [im.source for im in generation.images] == ["stream"]
    assert generation.images[0].data == png


def test_openai_style_stream(settings: Callable[..., Settings], png: bytes) -> None:
    partial = {"type": "image_generation.partial_image", "b64_json": b64(png), "partial_image_index": 0}
    completed = {
        "type": "image_generation.completed",
        "b64_json": b64(png),
        "created": 5,
        "usage": {"total_tokens": 3},
    }
    events = (
        f"event: image_generation.partial_image\ndata: {json.dumps(partial)}\n\n"
        f"event: image_generation.completed\ndata: {json.dumps(completed)}\n\n"
    ).encode()
    seen: list[str] = []
    harness = Harness(
        settings(),
        sequence(httpx.Response(200, content=events, headers={"content-type": "text/event-stream"})),
    )

    async def go() -> Generation:
        return await harness.client.generate(
            ImageRequest("a", "openai/x", stream=True), on_event=lambda e: seen.append(e.kind)
        )

    generation = run(go())
    assert seen == ["partial", "image"]
    assert len(generation.images) == 1 and generation.images[0].created == 5
    assert generation.usage == {"total_tokens": 3}


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (b'data: {"error": {"code": "upstream_error", "message": "boom"}}\n\n', ServerError, "boom"),
        (
            b'data: {"object": "image.chunk", "status": "processing", "data": []}\n\n',
            ResponseError,
            "stream ended before",
        ),
    ],
)
def test_stream_failures(
    settings: Callable[..., Settings], body: bytes, error: type[Exception], match: str
) -> None:
    harness = Harness(
        settings(), sequence(httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    )
    with pytest.raises(error, match=match):
        harness.generate(ImageRequest("a", "m/x", stream=True))


# -- where the key goes ----------------------------------------------------------------------


def test_url_image_on_another_host_gets_no_authorization(
    settings: Callable[..., Settings], png: bytes
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example.net":
            return httpx.Response(200, content=png, headers={"content-type": "image/png"})
        return json_response({"created": 1, "data": [{"url": "https://cdn.example.net/a/img.png"}]})

    harness = Harness(settings(), handler)
    generation = harness.generate()
    api, cdn = harness.requests
    assert api.headers["authorization"] == f"Bearer {MOCK_KEY}"
    assert cdn.url.host == "cdn.example.net"
    assert "authorization" not in cdn.headers
    assert MOCK_KEY not in str(cdn.headers) and MOCK_KEY not in str(cdn.url)
    assert generation.images[0].data == png
    assert generation.images[0].source == "url"


@pytest.mark.parametrize(
    ("url", "gets_key"),
    [
        (f"{API_BASE}/v1", True),
        (f"{API_BASE}/v1/models", True),
        (f"{API_BASE}/v1/files/x.png", True),
        (f"{API_BASE}/v1evil/x.png", False),
        (f"{API_BASE}/files/x.png", False),
        ("https://api.example.test.evil.com/v1/files/x.png", False),
        ("https://cdn.example.net/v1/files/x.png", False),
        ("http://api.example.test/v1/files/x.png", False),
    ],
)
def test_authorization_only_under_the_api_root(
    settings: Callable[..., Settings], url: str, gets_key: bool
) -> None:
    client = MeshClient(settings(), httpx.AsyncClient())
    assert client._auth.covers(url) is gets_key


def test_no_key_for_a_remote_api_fails_before_sending(settings: Callable[..., Settings], png: bytes) -> None:
    harness = Harness(settings(api_key=None), sequence(ok(png)))
    with pytest.raises(AuthenticationError, match="No API key") as info:
        harness.generate()
    assert harness.requests == []
    assert "MESHAPI_API_KEY" in info.value.hint


def test_no_key_for_loopback_sends_no_authorization(settings: Callable[..., Settings], png: bytes) -> None:
    harness = Harness(settings(api_key=None, base_url="http://127.0.0.1:9"), sequence(ok(png)))
    harness.generate()
    assert "authorization" not in harness.requests[0].headers


# *.localhost resolves wherever the resolver says: only the literal name counts as loopback.
@pytest.mark.parametrize("base", ["http://api.example.test", "http://img.localhost", "http://127.1"])
def test_plain_http_to_a_remote_host_is_refused_with_a_key(
    settings: Callable[..., Settings], base: str
) -> None:
    calls: list[httpx.Request] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: calls.append(r) or ok(b"")))
    with pytest.raises(InvalidOptionError, match="plain http://") as info:
        MeshClient(settings(base_url=base), http)
    assert MOCK_KEY not in str(info.value)
    assert "MESHIMG_ALLOW_INSECURE_HTTP" in str(info.value)
    assert calls == []


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765", "http://127.3.2.1"]
)
def test_plain_http_allowed_for_loopback(settings: Callable[..., Settings], png: bytes, base: str) -> None:
    harness = Harness(settings(base_url=base), sequence(ok(png)))
    harness.generate()
    assert harness.requests[0].headers["authorization"] == f"Bearer {MOCK_KEY}"


def test_plain_http_allowed_without_key_or_when_opted_in(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    MeshClient(settings(base_url="http://api.example.test", api_key=None), httpx.AsyncClient())
    monkeypatch.setenv("MESHIMG_ALLOW_INSECURE_HTTP", "1")
    MeshClient(settings(base_url="http://api.example.test"), httpx.AsyncClient())


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retry_honours_retry_after(settings: Callable[..., Settings], png: bytes, code: int) -> None:
    harness = Harness(settings(), sequence(status(code, retry_after="2"), ok(png)))
    generation = harness.generate()
    assert len(harness.requests) == 2
    assert harness.waits == [2.0]
    assert len(generation.images) == 1
    assert harness.requests[0].content == harness.requests[1].content


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retry_backs_off_without_retry_after(
    settings: Callable[..., Settings], png: bytes, code: int
) -> None:
    harness = Harness(settings(), sequence(status(code), status(code), ok(png)))
    harness.generate()
    assert len(harness.requests) == 3
    assert len(harness.waits) == 2
    assert 0.25 <= harness.waits[0] <= 0.5
    assert 0.5 <= harness.waits[1] <= 1.0


@pytest.mark.parametrize("code", [400, 401, 402, 403, 404, 422, 500, 501])
def test_no_retry_on_other_statuses(settings: Callable[..., Settings], png: bytes, code: int) -> None:
    harness = Harness(settings(), sequence(status(code), ok(png)))
    with pytest.raises(Exception) as info:
        harness.generate()
    assert getattr(info.value, "status", None) == code
    assert len(harness.requests) == 1
    assert harness.waits == []


def test_500_is_a_server_error_not_retried(settings: Callable[..., Settings], png: bytes) -> None:
    harness = Harness(settings(), sequence(status(500), ok(png)))
    with pytest.raises(ServerError) as info:
        harness.generate()
    assert info.value.request_id == "req_500"
    assert "not retried" in info.value.hint
    assert len(harness.requests) == 1


def test_retries_exhausted_raise_the_error(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(max_retries=2), sequence(status(503, retry_after="1")))
    with pytest.raises(ServerError) as info:
        harness.generate()
    assert info.value.status == 503
    assert info.value.request_id == "req_503"
    assert len(harness.requests) == 3
    assert harness.waits == [1.0, 1.0]


def test_max_retries_zero(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(max_retries=0), sequence(status(429, retry_after="1")))
    with pytest.raises(RateLimitError):
        harness.generate()
    assert len(harness.requests) == 1 and harness.waits == []


def test_long_retry_after_fails_fast(settings: Callable[..., Settings], png: bytes) -> None:
    wait = int(MAX_RETRY_WAIT) + 60
    harness = Harness(settings(), sequence(status(429, retry_after=str(wait)), ok(png)))
    with pytest.raises(RateLimitError) as info:
        harness.generate()
    assert len(harness.requests) == 1
    assert harness.waits == []
    assert f"try again in {wait} s" in str(info.value)
    assert info.value.retry_after == wait
    assert "max_retry_wait" in info.value.hint


def test_connect_errors_are_retried(settings: Callable[..., Settings], png: bytes) -> None:
    harness = Harness(settings(), sequence(httpx.ConnectError("refused"), ok(png)))
    generation = harness.generate()
    assert len(harness.requests) == 2
    assert len(harness.waits) == 1
    assert len(generation.images) == 1


def test_connect_errors_exhausted(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(max_retries=2), sequence(httpx.ConnectError("refused")))
    with pytest.raises(APIConnectionError, match="Could not connect to api.example.test") as info:
        harness.generate()
    assert not isinstance(info.value, APITimeoutError)
    assert len(harness.requests) == 3
    assert "MESHAPI_BASE_URL" in info.value.hint


def test_read_errors_after_sending_are_not_retried(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(), sequence(httpx.ReadError("connection reset")))
    with pytest.raises(APIConnectionError, match="broke"):
        harness.generate()
    assert len(harness.requests) == 1


def test_transport_timeout(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(timeout=5), sequence(httpx.ReadTimeout("slow")))
    with pytest.raises(APITimeoutError, match="timed out after 5 s") as info:
        harness.generate()
    assert len(harness.requests) == 1
    assert "--timeout" in info.value.hint


def test_overall_timeout(settings: Callable[..., Settings], png: bytes) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return ok(png)

    harness = Harness(settings(timeout=0.2), slow)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="0.2 s"):
        harness.generate()
    assert time.monotonic() - started < 2


def test_backoff_delay_bounds() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        assert ceiling / 2 <= backoff_delay(attempt, rng) <= ceiling
    assert backoff_delay(30, rng) <= BACKOFF_CAP


# -- errors and limits -------------------------------------------------------------------------


def test_error_echoing_the_key_is_redacted(settings: Callable[..., Settings]) -> None:
    body = {"error": {"code": "invalid_api_key", "message": f"Bad key {MOCK_KEY}"}}
    harness = Harness(settings(), sequence(json_response(body, 401, {"x-request-id": "req_k"})))
    with pytest.raises(AuthenticationError) as info:
        harness.generate()
    assert MOCK_KEY not in str(info.value)
    assert info.value.request_id == "req_k"


def test_redirect_is_an_error(settings: Callable[..., Settings]) -> None:
    harness = Harness(
        settings(),
        sequence(
            httpx.Response(307, headers={"location": "https://elsewhere.example/v1/images/generations"})
        ),
    )
    with pytest.raises(ResponseError, match="redirected"):
        harness.generate()
    assert len(harness.requests) == 1


def test_huge_declared_body_refused(
    settings: Callable[..., Settings], png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "max_body_bytes", lambda n: 1024 * 1024)
    big = json.dumps({"data": [{"b64_json": "A" * (3 * 1024 * 1024)}]}).encode()
    harness = Harness(
        settings(), sequence(httpx.Response(200, content=big, headers={"content-type": "application/json"}))
    )
    with pytest.raises(ResponseError, match="over the 1 MiB limit"):
        harness.generate()


def test_huge_streamed_body_refused(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "max_body_bytes", lambda n: 1024 * 1024)
    produced: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"data": [{"b64_json": "'
        for _ in range(64):  # 4 MiB if read to the end
            produced.append(1)
            yield b"A" * 65536
        yield b'"}]}'

    harness = Harness(
        settings(),
        sequence(httpx.Response(200, content=chunks(), headers={"content-type": "application/json"})),
    )
    assert "content-length" not in httpx.Response(200, content=chunks()).headers
    with pytest.raises(ResponseError, match="exceeded the 1 MiB limit"):
        harness.generate()
    assert len(produced) < 64


def test_malformed_json_body(settings: Callable[..., Settings]) -> None:
    harness = Harness(
        settings(),
        sequence(
            httpx.Response(200, content=b'{"data": [{"b64_json": "iVBOR', headers={"x-request-id": "req_m"})
        ),
    )
    with pytest.raises(ResponseError, match="invalid JSON") as info:
        harness.generate()
    assert info.value.request_id == "req_m"


def test_one_bad_item_fails_alone(settings: Callable[..., Settings], png: bytes) -> None:
    body = {
        "created": 1,
        "data": [
            {"b64_json": b64(png)},
            {"b64_json": "!!corrupt@@"},
            {"b64_json": b64(b"not an image at all")},
            {"url": "https://cdn.example.net/gone.png"},
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example.net":
            return httpx.Response(404)
        return json_response(body, headers={"x-request-id": "req_mix"})

    harness = Harness(settings(), handler)
    generation = harness.generate()
    assert [im.index for im in generation.images] == [0]
    assert len(generation.errors) == 3
    assert all(isinstance(e, ResponseError) for e in generation.errors)
    assert all(e.request_id == "req_mix" for e in generation.errors)
    text = " | ".join(str(e) for e in generation.errors)
    assert "not valid base64" in text and "not an image" in text and "HTTP 404" in text


def test_data_uri_item(settings: Callable[..., Settings]) -> None:
    jpeg = make_image(30, 60, fmt="JPEG")
    harness = Harness(
        settings(), sequence(json_response({"data": [{"url": f"data:image/jpeg;base64,{b64(jpeg)}"}]}))
    )
    (image,) = harness.generate().images
    assert (image.mime_type, image.width, image.height, image.source) == ("image/jpeg", 30, 60, "data_uri")
    assert len(harness.requests) == 1  # nothing downloaded


# -- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [False, True])
def test_list_models(settings: Callable[..., Settings], wrap: bool) -> None:
    listed = [{"id": "a/img", "output_modalities": ["image"]}, {"name": "no id"}, "junk"]
    payload: Any = {"object": "list", "data": listed} if wrap else listed
    harness = Harness(settings(), sequence(json_response(payload)))

    async def go() -> list[dict[str, Any]]:
        return await harness.client.list_models()

    models = run(go())
    assert models == [{"id": "a/img", "output_modalities": ["image"]}]
    (sent,) = harness.requests
    assert sent.url.path == "/v1/models"
    assert sent.url.params["type"] == "image"
    assert sent.headers["authorization"] == f"Bearer {MOCK_KEY}"


def test_list_models_errors(settings: Callable[..., Settings]) -> None:
    harness = Harness(settings(), sequence(status(401)))
    with pytest.raises(AuthenticationError):
        run(harness.client.list_models())
    harness = Harness(settings(), sequence(json_response({"nope": 1})))
    with pytest.raises(ResponseError, match="not a JSON array"):
        run(harness.client.list_models())
    harness = Harness(settings(), sequence(httpx.ConnectError("refused")))
    with pytest.raises(APIConnectionError, match="Could not connect to api.example.test"):
        run(harness.client.list_models())


# -- through the engine (what the front ends use) ----------------------------------------------


def test_engine_transport_injection(png: bytes) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/generations"):
            body = json.loads(request.content)
            return json_response(
                generation_body(*[png] * body["n"]), headers={"x-request-id": f"req_{len(seen)}"}
            )
        return httpx.Response(404)

    engine().set_transport(httpx.MockTransport(with_catalog(handler)))
    result = mesh_magic.generate("a fox", model="m/a,m/b", n=2, base_url=API_BASE, api_key=MOCK_KEY)
    assert len(result) == 4
    assert sorted(json.loads(r.content)["model"] for r in seen) == ["m/a", "m/b"]
    assert all(r.headers["authorization"] == f"Bearer {MOCK_KEY}" for r in seen)
    assert [(im.row, im.index) for im in result] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(im.path is not None and im.path.exists() for im in result)


def test_engine_invalid_request_fans_out_singles(png: bytes) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        n = json.loads(request.content)["n"]
        seen.append(n)
        if n > 1:
            return json_response(
                {
                    "error": {
                        "code": "model_capability_not_supported",
                        "message": "n must be 1",
                        "details": [{"loc": ["body", "n"], "msg": "n must be 1", "type": "value_error"}],
                    }
                },
                400,
            )
        return json_response(generation_body(png))

    engine().set_transport(httpx.MockTransport(with_catalog(handler)))
    result = mesh_magic.generate("a fox", model="m/one", n=3, base_url=API_BASE, api_key=MOCK_KEY)
    assert seen == [3, 1, 1, 1]
    assert len(result) == 3
    assert [im.index for im in result] == [0, 1, 2]
    assert any("one image per request" in note for note in result.notes)
    # Other 400s are not mistaken for the capability error.
    seen.clear()
    engine().set_transport(
        httpx.MockTransport(
            with_catalog(
                lambda r: (
                    seen.append(1),
                    json_response({"error": {"code": "invalid_size", "message": "bad size"}}, 400),
                )[1]
            )
        )
    )
    with pytest.raises(InvalidRequestError, match="bad size"):
        mesh_magic.generate("a fox", model="m/one", n=3, base_url=API_BASE, api_key=MOCK_KEY)
    assert seen == [1]
