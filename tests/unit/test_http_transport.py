"""Transport failures into MeshImageErrors: the Exchange every request runs in (core.http.transport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mesh_magic.core.errors import (
    APIConnectionError,
    APITimeoutError,
    MeshImageError,
    ResponseError,
    ServerError,
)
from mesh_magic.core.http.factory import build_http_client
from mesh_magic.core.http.transport import SENT_HINT, STREAM_HINT, Exchange, describe
from mesh_magic.core.keys import ApiKey
from tests.support.mock_api import API_BASE, MOCK_KEY as UNIT_KEY

HOST = "api.example.test"
ApiKey(UNIT_KEY)  # a key made is a key known: scrubbed from whatever a server sends back


def exchange(sent: bool = False, streaming: bool = False, request_id: str | None = None) -> Exchange:
    return Exchange("The request to m/x", HOST, 30.0, sent=sent, streaming=streaming, request_id=request_id)


def raised(ex: Exchange, exc: BaseException) -> BaseException:
    """What leaves `with ex:` when `exc` is raised inside it."""
    with pytest.raises(BaseException) as info, ex:
        raise exc
    return info.value


# -- before anything was sent ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_not_sent_failures_are_connection_errors_before_send(cls: type[httpx.HTTPError]) -> None:
    error = raised(exchange(), cls("refused"))
    assert type(error) is APIConnectionError
    assert error.before_send is True
    assert error.message == f"Could not connect to {HOST}: {cls.__name__}: refused"


@pytest.mark.parametrize("cls", [httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL])
def test_unsendable_requests(cls: type[Exception]) -> None:
    error = raised(exchange(), cls("bad header value"))
    assert type(error) is APIConnectionError
    assert error.before_send is False
    assert error.message == f"The request to m/x could not be sent: {cls.__name__}: bad header value"


# -- timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [httpx.ReadTimeout, httpx.WriteTimeout])
def test_timeouts(cls: type[httpx.TimeoutException]) -> None:
    ex = exchange(sent=True, request_id="req_t")
    error = raised(ex, cls("slow"))
    assert type(error) is APITimeoutError
    assert error.message == "The request to m/x timed out after 30 s."
    assert error.request_id == "req_t"
    assert error.before_send is False


def test_connect_timeout_after_send_is_a_timeout_not_a_before_send_failure() -> None:
    error = raised(exchange(sent=True), httpx.ConnectTimeout("slow"))
    assert type(error) is APITimeoutError
    assert error.before_send is False


def test_timeout_mid_stream_is_a_timeout() -> None:
    error = raised(exchange(sent=True, streaming=True), httpx.ReadTimeout("slow"))
    assert type(error) is APITimeoutError


# -- after sending ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("reset by peer"),
        httpx.WriteError("broken pipe"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ProxyError("proxy said no"),
        httpx.DecodingError("bad gzip"),
        httpx.TooManyRedirects("loop"),
    ],
)
def test_broken_connections_are_not_retryable(exc: httpx.HTTPError) -> None:
    ex = exchange(sent=True, request_id="req_b")
    error = raised(ex, exc)
    assert type(error) is APIConnectionError
    assert error.before_send is False
    assert error.message == f"The connection broke during the response: {type(exc).__name__}: {exc}"
    assert error.hint == SENT_HINT
    assert error.request_id == "req_b"


def test_a_connect_error_after_send_is_a_broken_connection() -> None:
    error = raised(exchange(sent=True), httpx.ConnectError("reset"))
    assert type(error) is APIConnectionError
    assert error.before_send is False
    assert error.hint == SENT_HINT


def test_a_read_error_before_the_answer_may_still_be_billed() -> None:
    # Not yet `sent` (no response headers), but the request may have left: never before_send.
    error = raised(exchange(), httpx.ReadError("reset"))
    assert type(error) is APIConnectionError
    assert error.before_send is False
    assert error.hint == SENT_HINT


@pytest.mark.parametrize("exc", [httpx.ReadError("reset"), httpx.RemoteProtocolError("incomplete")])
def test_streaming_failures(exc: httpx.HTTPError) -> None:
    error = raised(exchange(sent=True, streaming=True, request_id="req_s"), exc)
    assert type(error) is APIConnectionError
    assert error.message.startswith("The stream broke: ")
    assert error.hint == STREAM_HINT
    assert error.request_id == "req_s"


# -- downloads -------------------------------------------------------------------------------


def download(sent: bool = False, streaming: bool = False) -> Exchange:
    what = "Downloading the image URL"
    return Exchange(what, "cdn.example.test", 120.0, download=True, streaming=streaming, sent=sent)


@pytest.mark.parametrize("cls", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_download_timeouts_fail_that_image(cls: type[httpx.TimeoutException]) -> None:
    error = raised(download(), cls("slow"))
    assert type(error) is ResponseError
    assert error.message == "Downloading the image URL timed out after 120 s."


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.InvalidURL("x")]
)
def test_download_failures_fail_that_image(exc: Exception) -> None:
    expected = f"Downloading the image URL failed: {type(exc).__name__}: {exc}"
    error = raised(download(sent=True, streaming=True), exc)
    assert type(error) is ResponseError
    assert error.message == expected


# -- scrubbing, passing through, describe ----------------------------------------------------


def test_the_key_in_an_exception_text_is_scrubbed() -> None:
    for exc in (
        httpx.ConnectError(f"bad Authorization: Bearer {UNIT_KEY}"),
        httpx.ReadError(f"echo {UNIT_KEY} {UNIT_KEY}"),
        httpx.LocalProtocolError(f"Illegal header value b'Bearer {UNIT_KEY}\\n'"),
    ):
        error = raised(exchange(sent=isinstance(exc, httpx.ReadError)), exc)
        assert UNIT_KEY not in str(error)
        assert "***" in str(error)
    error = raised(download(), httpx.ReadError(UNIT_KEY))
    assert UNIT_KEY not in str(error)


def test_scrub_leaves_other_text() -> None:
    assert Exchange("x", HOST, 1.0).scrub("text") == "text"
    assert exchange().scrub(f"a{UNIT_KEY}b") == "a***b"


def test_the_original_exception_is_not_chained() -> None:
    error = raised(exchange(), httpx.ConnectError(f"key {UNIT_KEY}"))
    assert error.__cause__ is None
    assert error.__suppress_context__ is True


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("plain"),
        KeyError("k"),
        ServerError("already mapped"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
    ],
)
def test_other_exceptions_pass_through_unchanged(exc: BaseException) -> None:
    assert raised(exchange(), exc) is exc


def test_no_exception_nothing_happens() -> None:
    outer = exchange()
    with outer as ex:
        ex.sent = True
    assert ex is outer and outer.sent


def test_describe() -> None:
    assert describe(httpx.ReadError("reset")) == "ReadError: reset"
    assert describe(httpx.ReadError("")) == "ReadError"
    assert describe(ValueError("ValueError")) == "ValueError"


# -- through a real client -------------------------------------------------------------------


def test_exchange_around_an_httpx_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def go() -> BaseException:
        async with build_http_client("network", httpx.MockTransport(handler)) as http:
            try:
                with exchange():
                    await http.get(f"{API_BASE}/v1/models")
            except MeshImageError as exc:
                return exc
        raise AssertionError("no error")

    error = asyncio.run(go())
    assert isinstance(error, APIConnectionError) and error.before_send
    assert error.message == f"Could not connect to {HOST}: ConnectError: connection refused"


def test_an_invalid_url_is_translated() -> None:
    async def go() -> BaseException:
        async with build_http_client("network", httpx.MockTransport(lambda r: httpx.Response(200))) as http:
            try:
                with exchange():
                    await http.get("https://api.example.test/v1/\x00")
            except MeshImageError as exc:
                return exc
        raise AssertionError("no error")

    error = asyncio.run(go())
    assert type(error) is APIConnectionError
    assert "could not be sent" in error.message
