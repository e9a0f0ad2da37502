"""HTTP outcomes into errors with the call's history (core.http.outcomes)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mesh_magic.core.errors import (
    AuthenticationError,
    InvalidRequestError,
    MeshImageError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from mesh_magic.core.http.outcomes import CallHistory, error_from_response, read_envelope, retry_after_of
from tests.support.mock_api import MOCK_KEY as UNIT_KEY


def body(**error: Any) -> bytes:
    request_id = error.pop("request_id", None)
    payload: dict[str, Any] = {"error": error}
    if request_id is not None:
        payload["request_id"] = request_id
    return json.dumps(payload).encode()


def hdrs(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


# -- gateway hints ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize(
    ("history", "hint"),
    [
        (None, "The gateway is temporarily unavailable: try again shortly."),
        (CallHistory(), "The gateway is temporarily unavailable: try again shortly."),
        (
            CallHistory(attempts=1, max_retries=3),
            "The gateway is temporarily unavailable: try again shortly.",
        ),
        (CallHistory(attempts=2, max_retries=3), "(retried already)"),
        (CallHistory(attempts=4, max_retries=3), "(retried already)"),
        (CallHistory(attempts=1, max_retries=0), "(not retried: max_retries is 0)"),
        # Attempts beat max_retries: a retried call was retried, whatever the setting says now.
        (CallHistory(attempts=2, max_retries=0), "(retried already)"),
    ],
)
def test_gateway_hints(status: int, history: CallHistory | None, hint: str) -> None:
    error = error_from_response(status, hdrs(), body(message="upstream down"), history=history)
    assert type(error) is ServerError
    assert hint in error.hint
    assert error.message == "upstream down"


def test_gateway_default_messages() -> None:
    assert error_from_response(502, None, b"").message == "Bad gateway"
    assert error_from_response(503, None, b"").message == "Service unavailable"
    assert error_from_response(504, None, b"").message == "Gateway timeout"


def test_500_is_not_a_gateway_status() -> None:
    error = error_from_response(500, None, b"", history=CallHistory(attempts=3))
    assert type(error) is ServerError
    assert "gateway" not in error.hint
    assert "it may be billed" in error.hint


# -- refused waits ---------------------------------------------------------------------------


def test_refused_wait_on_429() -> None:
    error = error_from_response(
        429,
        hdrs(retry_after="5"),
        body(message="Slow down."),
        history=CallHistory(refused_wait=300, max_wait=20),
    )
    assert isinstance(error, RateLimitError)
    assert error.message == "Rate limited; try again in 300 s (Slow down)."
    assert error.retry_after == 300  # the refused wait is the one to report
    assert "max_retry_wait (20 s)" in error.hint


def test_refused_wait_on_503() -> None:
    error = error_from_response(503, hdrs(), b"", history=CallHistory(refused_wait=120.4))
    assert type(error) is ServerError
    assert error.message == "Service unavailable (the server asks to wait 120 s)"


@pytest.mark.parametrize("status", [400, 401, 500, 501])
def test_refused_wait_is_only_for_retryable_statuses(status: int) -> None:
    error = error_from_response(status, None, b"", history=CallHistory(refused_wait=99))
    assert "asks to wait" not in error.message


def test_429_waits_without_a_refusal() -> None:
    from_header = error_from_response(429, hdrs(retry_after="7"), body(retry_after_seconds=3))
    assert isinstance(from_header, RateLimitError) and from_header.retry_after == 7.0
    from_body = error_from_response(429, hdrs(), body(retry_after_seconds=3))
    assert isinstance(from_body, RateLimitError) and from_body.retry_after == 3.0
    neither = error_from_response(429, hdrs(), b"")
    assert isinstance(neither, RateLimitError) and neither.retry_after is None
    assert neither.message == "Rate limit exceeded"
    assert "concurrency" in neither.hint


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_errors(status: int) -> None:
    error = error_from_response(
        status,
        hdrs(location="https://elsewhere.test/v1", x_request_id="req_r"),
        body(message="ignored", request_id="req_body"),
    )
    assert type(error) is ResponseError
    assert error.status == status
    assert error.message == f"The API redirected (HTTP {status}); set base_url to the final address."
    assert error.request_id == "req_r"  # a redirect's body is not read
    assert error.code is None


# -- field errors ----------------------------------------------------------------------------


def test_field_errors_are_appended_to_a_generic_message() -> None:
    details = [
        {"loc": ["body", "n"], "msg": "n must be 1 for this model", "type": "value_error"},
        {"loc": ["body", "size"], "msg": "unsupported size", "type": "value_error"},
    ]
    error = error_from_response(
        400, None, body(code="validation_error", message="Validation failed.", details=details)
    )
    assert isinstance(error, InvalidRequestError)
    assert error.message == "Validation failed: n: n must be 1 for this model; size: unsupported size"
    assert error.field_errors == [
        {"field": "n", "message": "n must be 1 for this model"},
        {"field": "size", "message": "unsupported size"},
    ]
    assert error.rejects("n") and error.rejects("size") and not error.rejects("prompt")
    assert error.code == "validation_error"


def test_field_errors_already_in_the_message_are_not_repeated() -> None:
    details = [{"loc": ["body", "n"], "msg": "n must be 1"}]
    error = error_from_response(422, None, body(message="Invalid: n must be 1", details=details))
    assert error.message == "Invalid: n must be 1"
    assert isinstance(error, InvalidRequestError) and error.rejects("n")


def test_field_error_shapes() -> None:
    details = [
        {"loc": ["body"], "msg": "JSON decode error"},  # the whole body: message alone
        {"loc": "seed", "msg": "must be an integer"},  # a bare loc
        {"loc": ["body", "extra", 0, "x"], "msg": "bad"},
        {"msg": "no loc at all"},
        "not a dict",
    ]
    error = error_from_response(400, None, body(message="Bad request", details=details))
    assert isinstance(error, InvalidRequestError)
    assert [e["field"] for e in error.field_errors] == ["body", "seed", "extra.0.x", "body"]
    assert (
        error.message
        == "Bad request: JSON decode error; seed: must be an integer; extra.0.x: bad; no loc at all"
    )


def test_details_that_are_not_a_list_are_ignored() -> None:
    error = error_from_response(400, None, body(message="Nope.", details={"n": "bad"}))
    assert isinstance(error, InvalidRequestError)
    assert error.field_errors == [] and error.message == "Nope."


# -- request ids -----------------------------------------------------------------------------


def test_request_id_from_the_body_beats_the_header() -> None:
    error = error_from_response(
        401, hdrs(x_request_id="req_header"), body(message="x", request_id="req_body")
    )
    assert isinstance(error, AuthenticationError)
    assert error.request_id == "req_body"


def test_request_id_falls_back_to_the_header() -> None:
    assert (
        error_from_response(401, hdrs(x_request_id="req_header"), body(message="x")).request_id
        == "req_header"
    )
    assert error_from_response(401, hdrs(X_Request_Id="req_case"), b"").request_id == "req_case"
    assert error_from_response(401, None, b"").request_id is None


def test_a_numeric_request_id_becomes_text() -> None:
    assert error_from_response(500, None, json.dumps({"request_id": 12345}).encode()).request_id == "12345"


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_are_scrubbed_from_every_field() -> None:
    details = [{"loc": ["body", UNIT_KEY], "msg": f"bad value {UNIT_KEY}"}]
    raw = body(
        code=f"code_{UNIT_KEY}",
        message=f"Key {UNIT_KEY} is not valid.",
        details=details,
        request_id=f"req_{UNIT_KEY}",
    )
    error = error_from_response(400, hdrs(x_request_id=UNIT_KEY), raw, redact=(UNIT_KEY,))
    assert isinstance(error, InvalidRequestError)
    assert UNIT_KEY not in str(error)
    assert UNIT_KEY not in repr(error.__dict__)
    assert error.request_id == "req_***"
    assert error.code == "code_***"
    assert error.message.startswith("Key *** is not valid")
    assert error.field_errors == [{"field": "***", "message": "bad value ***"}]


def test_secrets_are_scrubbed_from_a_header_request_id_and_a_redirect() -> None:
    error = error_from_response(302, hdrs(x_request_id=f"id-{UNIT_KEY}"), b"", redact=(UNIT_KEY,))
    assert error.request_id == "id-***"
    error = error_from_response(503, hdrs(x_request_id=f"id-{UNIT_KEY}"), b"", redact=(UNIT_KEY, ""))
    assert error.request_id == "id-***"


# -- the rest --------------------------------------------------------------------------------


def test_unknown_statuses() -> None:
    assert type(error_from_response(418, None, b"")) is MeshImageError
    assert error_from_response(418, None, b"").message == "HTTP error 418"
    assert type(error_from_response(599, None, b"")) is ServerError


def test_long_messages_are_cut_before_the_refused_wait() -> None:
    error = error_from_response(429, None, body(message="x" * 1000), history=CallHistory(refused_wait=90))
    assert error.message.startswith("Rate limited; try again in 90 s (" + "x" * 297 + "...")
    error = error_from_response(503, None, body(message="x" * 1000), history=CallHistory(refused_wait=90))
    assert error.message.startswith("x" * 297 + "...")
    assert error.message.endswith(" (the server asks to wait 90 s)")


def test_read_envelope_shapes() -> None:
    assert read_envelope(500, b"").message is None
    assert read_envelope(502, b"<html>oops</html>").message == "Bad gateway (the server sent an HTML page)"
    assert (
        read_envelope(500, b"plain text").message
        == "Upstream provider error (the server sent a non-JSON body)"
    )
    assert read_envelope(400, json.dumps({"error": "bad thing"}).encode()).message == "bad thing"
    assert (
        read_envelope(400, json.dumps([1, 2]).encode()).message
        == "The request was rejected as invalid (the server sent a non-JSON body)"
    )
    found = read_envelope(429, body(retry_after_seconds=True))
    assert found.retry_after is None  # a boolean is not a wait


def test_retry_after_of() -> None:
    assert retry_after_of(hdrs(retry_after="3"), body(retry_after_seconds=9)) == 3.0
    assert retry_after_of(hdrs(), body(retry_after_seconds=9)) == 9.0
    assert retry_after_of(hdrs(), body(retry_after_seconds=-1)) is None
    assert retry_after_of(hdrs(), b"") is None
    assert retry_after_of(hdrs(retry_after="later"), b"not json") is None


def test_field_errors_reach_the_message_when_the_envelope_has_no_message() -> None:
    details = [{"loc": ["body", "n"], "msg": "n must be 1 for this model"}]
    raw = json.dumps({"error": {"code": "validation_error", "details": details}}).encode()
    error = error_from_response(400, None, raw)
    assert isinstance(error, InvalidRequestError) and error.rejects("n")
    assert "n must be 1 for this model" in error.message
