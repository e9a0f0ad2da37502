"""Fault injection against the project's MeshServer over loopback: one test per fault.

Each test asserts what the user sees: the error class, its message and hint,
what was kept, how many requests reached the server (= what was retried) and
how long the call took.
"""

from __future__ import annotations

import email.utils
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import mesh_magic
from mesh_magic.core import config as _config
from mesh_magic.core.constants import MAX_RETRY_WAIT, max_body_bytes
from mesh_magic.core.engine.loop import engine
from mesh_magic.core.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    MeshImageError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from mesh_magic.server import Fault
from mesh_magic.server._responses import DEFAULT_ERRORS
from tests.reliability.report import REPORT, rss_peak
from tests.support.error_statuses import STATUSES as HINTS
from tests.support.images import tagged_png
from tests.support.mock_api import with_catalog
from tests.support.servers import free_port, generations

pytestmark = pytest.mark.usefixtures("cheap_images", "fast_backoff")

GENERATIONS = "/v1/images/generations"
URL_MODEL = "google/imagen-4"  # answers url items (served from /v1/files on the image host)


@dataclass
class Outcome:
    result: Any = None
    error: MeshImageError | None = None
    requests: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def generations(self) -> list[Any]:
        return [r for r in self.requests if r.path == GENERATIONS]

    @property
    def downloads(self) -> list[Any]:
        return [r for r in self.requests if r.path != GENERATIONS]


def attempt(
    server: Any,
    label: str,
    faults: list[Fault] | tuple[Fault, ...] = (),
    prompt: str | None = None,
    **options: Any,
) -> Outcome:
    """Inject `faults`, call mesh_magic.generate once, and record what happened."""
    server.reset()
    for fault in faults:
        server.add_fault(fault)
    options.setdefault("size", "64x64")
    started = time.perf_counter()
    out = Outcome()
    try:
        out.result = mesh_magic.generate(prompt or f"fault injection: {label}", **options)
    except MeshImageError as exc:
        out.error = exc
    out.seconds = time.perf_counter() - started
    # The catalog read for the call's cost estimate is not part of the fault under test.
    out.requests = [r for r in server.requests if r.path != "/v1/models"]
    if out.error is not None:
        outcome = f"{type(out.error).__name__}: {out.error.message}"
    else:
        outcome = f"{len(out.result)} image(s), {len(out.result.errors)} item error(s)"
    REPORT.fault(label, outcome, len(out.requests), out.seconds)
    return out


def _bind(server: Any, max_retries: int = 3) -> None:
    _config.configure(base_url=server.base_url, max_retries=max_retries)


# --- every error status of SPEC 1, in each envelope ----------------------------------

RETRIED = {429, 502, 503, 504}


@pytest.mark.parametrize("envelope", ["mesh", "fastapi", "fastapi_list", "html"])
@pytest.mark.parametrize("status", sorted(HINTS))
def test_error_status(server: Any, status: int, envelope: str) -> None:
    _bind(server, max_retries=1)
    retry_after = "0.05" if status == 429 else None
    out = attempt(
        server,
        f"HTTP {status} ({envelope})",
        [Fault("status", status=status, envelope=envelope, times=-1, retry_after=retry_after)],
    )
    cls, hint = HINTS[status]
    err = out.error
    assert type(err) is cls, f"{status}/{envelope}: got {type(err).__name__}: {err}"
    assert err.status == status
    assert hint in err.hint
    assert f"HTTP {status}" in str(err)
    assert (err.request_id or "").startswith("req_"), "every answer carries X-Request-Id"
    if envelope == "html":
        assert "HTML page" in err.message and "<html" not in err.message
    else:
        server_text = DEFAULT_ERRORS[status][1]
        assert err.message == server_text, f"the server's own words reach the user: {err.message!r}"
    if envelope == "mesh":
        assert err.code == DEFAULT_ERRORS[status][0]
    if status == 429:
        assert err.retry_after == pytest.approx(0.05)
    # Only 429/502/503/504 are retried (max_retries=1 -> 2 requests); others may be billed.
    assert len(out.generations) == (2 if status in RETRIED else 1)
    assert out.seconds < 2.0


def test_invalid_param_is_named_and_not_retried(server: Any) -> None:
    out = attempt(server, "HTTP 400 naming a bad -p field", [], stream=True, params={"partial_images": 9})
    assert isinstance(out.error, InvalidRequestError) and out.error.status == 400
    assert "partial_images" in out.error.message and "Fix the option" in out.error.hint
    assert len(out.generations) == 1


def test_magic_shows_short_error_with_hint(server: Any, shell: Any, capsys: Any) -> None:
    server.reset()
    server.add_fault(Fault("status", status=401))
    with pytest.raises(AuthenticationError):
        shell.run_cell("%meshimg -s 64x64 a lighthouse in fog")
    shown = capsys.readouterr().out
    REPORT.fault("HTTP 401 through %meshimg", "short message + hint", len(server.requests), 0.0)
    assert "AuthenticationError: Missing or invalid API key" in shown
    assert "MESHAPI_API_KEY" in shown and "--login" in shown
    assert "Traceback" not in shown and len(shown.strip().splitlines()) <= 3


# --- 200 answers that are not usable --------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options", "expected"),
    [
        (Fault("non_json"), {}, "invalid JSON (not JSON at all"),
        (Fault("non_json", envelope="html"), {}, "HTML page"),
        (Fault("malformed_json"), {}, "invalid JSON (malformed or cut off)"),
        (Fault("empty_data"), {}, "contains no images"),
        (Fault("missing_fields"), {"n": 2}, "neither b64_json nor url"),
        (Fault("corrupt_b64"), {}, "not valid base64"),
        (Fault("corrupt_b64"), {"model": "meshapi/data-uri-preview"}, "not valid base64"),
        (Fault("not_image"), {}, "is not an image"),
        (Fault("truncated_image"), {}, "truncated"),
        (Fault("huge_image"), {}, "too large to open safely"),
    ],
    ids=[
        "non_json",
        "html_200",
        "malformed_json",
        "empty_data",
        "missing_fields",
        "corrupt_b64",
        "corrupt_data_uri",
        "not_image",
        "truncated_image",
        "huge_image",
    ],
)
def test_unusable_200(server: Any, fault: Fault, options: dict[str, Any], expected: str) -> None:
    with rss_peak() as rss:
        out = attempt(
            server,
            f"200 with {fault.kind}{' ' + fault.envelope if fault.envelope else ''}"
            f"{' via ' + options['model'] if 'model' in options else ''}",
            [fault],
            **options,
        )
    err = out.error
    assert isinstance(err, ResponseError), out
    assert expected in err.message, err.message
    assert "retry, or try another model" in err.hint
    assert (err.request_id or "").startswith("req_")
    assert len(out.generations) == 1, "a 200 may be billed: never retried"
    assert rss["delta"] < 64 * 1024 * 1024, "a decompression bomb must not be decoded"


def test_one_bad_image_of_two_keeps_the_other(server: Any) -> None:
    out = attempt(
        server,
        "n=2, image 1 of 2 is not an image",
        [Fault("not_image", path="/v1/files", times=1)],
        n=2,
        model=URL_MODEL,
        response_format="url",
    )
    assert out.error is None
    result = out.result
    assert len(result) == 1 and len(result.errors) == 1
    item = result.errors[0]
    assert "is not an image" in str(item.error) and item.model == URL_MODEL
    assert item.error.request_id == result[0].request_id, "the error is per item, same request"
    assert result[0].to_pil().size == (8, 8)
    assert len(out.generations) == 1 and len(out.downloads) == 2


def test_one_corrupt_b64_item_of_two_keeps_the_other() -> None:
    """The server corrupts every item of a response, so this one case uses a MockTransport."""
    import base64

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        good = base64.b64encode(tagged_png("two items")).decode()
        return httpx.Response(
            200,
            headers={"x-request-id": "req_pair"},
            json={"created": 1, "data": [{"b64_json": good}, {"b64_json": "!!not-base64@@"}]},
        )

    engine().set_transport(httpx.MockTransport(with_catalog(handler)))
    _config.configure(base_url="https://api.example.test")
    _config.session().set_api_key("rsk_mock_0123456789abcdef")
    started = time.perf_counter()
    result = mesh_magic.generate("two items", n=2, size="64x64")
    REPORT.fault(
        "n=2, b64 item 2 is corrupt", "1 image + 1 item error", len(seen), time.perf_counter() - started
    )
    assert len(result) == 1 and len(result.errors) == 1 and len(seen) == 1
    assert result[0].index == 0 and result[0].request_id == "req_pair"
    err = result.errors[0].error
    assert isinstance(err, ResponseError) and "image 2" in err.message and "base64" in err.message
    assert err.request_id == "req_pair"


# --- image URLs -----------------------------------------------------------------------


def test_image_url_404(server: Any) -> None:
    out = attempt(
        server,
        "image URL answers 404",
        [Fault("status", status=404, path="/v1/files")],
        model=URL_MODEL,
        response_format="url",
    )
    assert isinstance(out.error, ResponseError)
    assert "image URL answered HTTP 404" in out.error.message
    assert (out.error.request_id or "").startswith("req_"), "points at the paid generation"
    assert len(out.generations) == 1 and len(out.downloads) == 1


def test_image_url_returns_html(server: Any) -> None:
    out = attempt(
        server,
        "image URL answers an HTML page",
        [Fault("non_json", path="/v1/files")],
        model=URL_MODEL,
        response_format="url",
    )
    assert isinstance(out.error, ResponseError)
    assert "not an image (got an HTML page)" in out.error.message


def test_image_url_times_out_and_the_other_image_survives(server: Any) -> None:
    out = attempt(
        server,
        "image URL hangs (timeout 1 s), n=2",
        [Fault("latency", delay=5, path="/v1/files", times=1)],
        model=URL_MODEL,
        response_format="url",
        n=2,
        timeout=1,
    )
    assert out.error is None, out.error
    assert len(out.result) == 1 and len(out.result.errors) == 1
    err = out.result.errors[0].error
    assert isinstance(err, ResponseError) and "timed out" in err.message
    assert (err.request_id or "").startswith("req_")
    assert 0.9 < out.seconds < 3.0


def test_image_url_redirect_is_followed_without_the_key(server: Any) -> None:
    out = attempt(
        server,
        "image URL redirects (302)",
        [Fault("redirect", path="/v1/files")],
        model=URL_MODEL,
        response_format="url",
    )
    assert out.error is None and len(out.result) == 1
    paths = [r.path.split("/")[1:3] for r in out.downloads]
    assert paths == [["v1", "files"], ["cdn", out.downloads[1].path.split("/")[2]]]
    for request in out.downloads:
        assert "authorization" not in request.headers, f"key sent to {request.path}"
        assert request.headers["host"].startswith("localhost:"), "the image host is not the API host"
    assert out.generations[0].headers["authorization"] == f"Bearer {server.api_key}"


def test_image_url_huge_body_is_refused(server: Any) -> None:
    out = attempt(
        server,
        "image URL streams 80 MiB",
        [Fault("huge_body", path="/v1/files", size_mb=80)],
        model=URL_MODEL,
        response_format="url",
    )
    assert isinstance(out.error, ResponseError)
    assert "limit" in out.error.message


# --- huge bodies and bombs: refused with bounded memory --------------------------------


def test_huge_body_refused_with_bounded_memory(server: Any) -> None:
    size = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        out = attempt(server, "200 with a 200 MiB body", [Fault("huge_body", size_mb=size / 2**20)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    REPORT.faults[-1]["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
    assert isinstance(out.error, ResponseError)
    assert "MiB limit; refusing to load it" in out.error.message
    bound = max_body_bytes(1) + 16 * 1024 * 1024
    assert peak < bound and peak < size / 2, f"peak {peak / 2**20:.0f} MiB for a 200 MiB body"
    assert len(out.generations) == 1 and out.seconds < 10


def test_decompression_bomb_url_refused(server: Any) -> None:
    with rss_peak() as rss:
        out = attempt(
            server,
            "image URL is a 40000x40000 PNG bomb",
            [Fault("huge_image", path="/v1/files")],
            model=URL_MODEL,
            response_format="url",
        )
    assert isinstance(out.error, ResponseError)
    assert "too large to open safely" in out.error.message
    assert rss["delta"] < 64 * 1024 * 1024


# --- slowness -------------------------------------------------------------------------


def test_slow_headers_within_timeout(server: Any) -> None:
    out = attempt(server, "headers after 0.4 s (timeout 3 s)", [Fault("latency", delay=0.4)], timeout=3)
    assert out.error is None and len(out.result) == 1
    assert 0.4 <= out.seconds < 2.5


def test_slow_headers_beyond_timeout(server: Any) -> None:
    out = attempt(server, "headers after 5 s (timeout 0.5 s)", [Fault("latency", delay=5)], timeout=0.5)
    assert isinstance(out.error, APITimeoutError)
    assert "0.5 s" in out.error.message and "--timeout" in out.error.hint
    assert len(out.generations) == 1, "a timed-out request may be billed: not retried"
    assert 0.45 < out.seconds < 1.5


def test_slow_body_within_timeout(server: Any) -> None:
    out = attempt(
        server, "body trickles over 0.4 s (timeout 3 s)", [Fault("slow_body", delay=0.4)], timeout=3
    )
    assert out.error is None and len(out.result) == 1
    assert 0.4 <= out.seconds < 2.5


def test_slow_body_beyond_timeout(server: Any) -> None:
    out = attempt(
        server, "body trickles over 5 s (timeout 0.6 s)", [Fault("slow_body", delay=5)], timeout=0.6
    )
    assert isinstance(out.error, APITimeoutError)
    assert len(out.generations) == 1
    assert 0.55 < out.seconds < 1.6


def test_connection_reset_mid_body(server: Any) -> None:
    out = attempt(server, "connection reset mid-body", [Fault("reset")])
    err = out.error
    assert isinstance(err, APIConnectionError) and not isinstance(err, APITimeoutError)
    assert "broke" in err.message and (err.request_id or "").startswith("req_")
    assert "not retried" in err.hint, "the request was sent: retrying could bill twice"
    assert len(out.generations) == 1


def test_connect_error_is_retried_then_reported(server: Any) -> None:
    port = free_port()  # a loopback port nobody listens on
    attempts: list[str] = []

    class Counting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(str(request.url))
            return await super().handle_async_request(request)

    engine().set_transport(Counting())
    _config.configure(base_url=f"http://127.0.0.1:{port}", max_retries=2)
    started = time.perf_counter()
    with pytest.raises(APIConnectionError) as info:
        mesh_magic.generate("nobody listens", size="64x64")
    seconds = time.perf_counter() - started
    REPORT.fault("connection refused (before sending)", "APIConnectionError", len(attempts), seconds)
    generations_tried = [a for a in attempts if a.endswith("/v1/images/generations")]
    assert len(generations_tried) == 3, "connect errors are retried: nothing was sent"
    assert f"Could not connect to 127.0.0.1:{port}" in info.value.message
    assert "MESHAPI_BASE_URL" in info.value.hint
    assert seconds < 2.0


# --- retries and Retry-After ----------------------------------------------------------


def test_retry_after_seconds(server: Any) -> None:
    out = attempt(server, "429 with Retry-After: 0.3", [Fault("status", status=429, retry_after="0.3")])
    assert out.error is None and len(out.result) == 1
    assert len(out.generations) == 2
    assert 0.3 <= out.seconds < 2.0


def test_retry_after_http_date(server: Any) -> None:
    when = time.time() + 1.5
    header = email.utils.formatdate(when, usegmt=True)  # whole seconds: waits 0.5-1.5 s
    expected = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
    out = attempt(
        server, "429 with Retry-After as an HTTP date", [Fault("status", status=429, retry_after=header)]
    )
    assert out.error is None and len(out.result) == 1
    assert len(out.generations) == 2
    assert expected - 0.05 <= out.seconds < expected + 1.5


def test_retry_after_on_503_is_honoured(server: Any) -> None:
    out = attempt(server, "503 with Retry-After: 0.3", [Fault("status", status=503, retry_after="0.3")])
    assert out.error is None and len(out.result) == 1
    assert len(out.generations) == 2
    assert out.seconds >= 0.3


@pytest.mark.parametrize("how", ["seconds", "date"])
def test_retry_after_beyond_budget_fails_fast(server: Any, how: str) -> None:
    wait = 3600
    header = str(wait) if how == "seconds" else email.utils.formatdate(time.time() + wait, usegmt=True)
    out = attempt(
        server, f"429 with Retry-After {wait} s ({how})", [Fault("status", status=429, retry_after=header)]
    )
    err = out.error
    assert isinstance(err, RateLimitError)
    assert err.retry_after == pytest.approx(wait, abs=2) and err.retry_after > MAX_RETRY_WAIT
    assert "try again in 3600 s" in err.message or "try again in 3599 s" in err.message
    assert "max_retry_wait" in err.hint
    assert len(out.generations) == 1
    assert out.seconds < 1.0, "must not block the cell for an hour"


def test_503_retry_after_beyond_budget_fails_fast(server: Any) -> None:
    out = attempt(server, "503 with Retry-After 900 s", [Fault("status", status=503, retry_after="900")])
    assert isinstance(out.error, ServerError)
    assert "asks to wait 900 s" in out.error.message
    assert len(out.generations) == 1 and out.seconds < 1.0


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retries_exhausted(server: Any, status: int) -> None:
    _bind(server, max_retries=2)
    out = attempt(
        server, f"HTTP {status} forever (max_retries=2)", [Fault("status", status=status, times=-1)]
    )
    assert type(out.error) is HINTS[status][0]
    assert len(out.generations) == 3, "max_retries + 1 requests, then the error"
    # Backoff (patched to 10-20 ms, 20-40 ms) was waited between the attempts.
    assert 0.03 <= out.seconds < 2.0


def test_transient_error_then_success(server: Any) -> None:
    out = attempt(server, "502 twice, then OK", [Fault("status", status=502, times=2)])
    assert out.error is None and len(out.result) == 1
    assert len(out.generations) == 3


# --- streams --------------------------------------------------------------------------


def test_stream_error_event(server: Any) -> None:
    out = attempt(
        server, "stream sends an error event", [Fault("stream_error")], stream=True, model="openai/dall-e-3"
    )
    assert isinstance(out.error, ServerError)
    assert "The stream failed" in out.error.message
    assert len(out.generations) == 1


def test_stream_breaks(server: Any) -> None:
    out = attempt(server, "stream ends early", [Fault("stream_break")], stream=True, model="openai/dall-e-3")
    assert isinstance(out.error, ResponseError)
    assert "ended before the image arrived" in out.error.message
    assert len(out.generations) == 1


@pytest.mark.parametrize(("retries", "phrase"), [(0, "not retried"), (1, "retried already")])
def test_gateway_hint_says_whether_it_was_retried(server: Any, retries: int, phrase: str) -> None:
    server.add_fault(Fault(kind="status", status=503, times=-1))
    _config.configure(max_retries=retries)
    with pytest.raises(mesh_magic.ServerError) as caught:
        mesh_magic.generate("a gate", size="128x128")
    assert phrase in caught.value.hint
    assert len(generations(server)) == retries + 1
