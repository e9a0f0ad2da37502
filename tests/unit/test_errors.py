"""The error hierarchy and `error_from_response`, the one place HTTP outcomes become errors."""

from __future__ import annotations

import email.utils
import json
import pickle
import time

import httpx
import pytest

from mesh_magic.core.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    CacheMissError,
    InsufficientBalanceError,
    InvalidOptionError,
    InvalidRequestError,
    MeshImageError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    UnsupportedModelError,
)
from mesh_magic.core.http import outcomes as _outcomes
from mesh_magic.core.http.outcomes import error_from_response, parse_retry_after
from tests.support.error_statuses import STATUSES

HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def headers(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_mesh_envelope(status: int) -> None:
    cls, hint = STATUSES[status]
    body = json.dumps(
        {
            "error": {"code": f"code_{status}", "message": f"Message for {status}"},
            "request_id": "req_from_body",
        }
    ).encode()
    err = error_from_response(status, headers(x_request_id="req_from_header"), body)
    assert type(err) is cls
    assert err.status == status
    assert err.code == f"code_{status}"
    assert err.request_id == "req_from_body"  # the body's id wins over the header's
    assert err.message == f"Message for {status}"
    assert hint in err.hint
    text = str(err)
    assert f"Message for {status}" in text
    assert f"HTTP {status}, code_{status}" in text
    assert "req_from_body" in text


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_fastapi_detail_string(status: int) -> None:
    cls, hint = STATUSES[status]
    err = error_from_response(
        status, headers(x_request_id="req_h1"), json.dumps({"detail": "Something specific"}).encode()
    )
    assert type(err) is cls
    assert (err.status, err.code, err.request_id) == (status, None, "req_h1")
    assert err.message == "Something specific"
    assert hint in err.hint


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_fastapi_detail_list(status: int) -> None:
    cls, _ = STATUSES[status]
    detail = [
        {"loc": ["body", "n"], "msg": "Input should be less than or equal to 10", "type": "le"},
        {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"},
        "not a dict",
    ]
    err = error_from_response(status, headers(x_request_id="req_h2"), json.dumps({"detail": detail}).encode())
    assert type(err) is cls
    assert err.request_id == "req_h2"
    assert "n: Input should be less than or equal to 10" in err.message
    assert "prompt: Field required" in err.message
    if isinstance(err, InvalidRequestError):
        assert err.field_errors == [
            {"field": "n", "message": "Input should be less than or equal to 10"},
            {"field": "prompt", "message": "Field required"},
        ]


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_html_body(status: int) -> None:
    cls, hint = STATUSES[status]
    err = error_from_response(status, headers(x_request_id="req_h3"), HTML_PAGE)
    assert type(err) is cls
    assert err.status == status
    assert err.request_id == "req_h3"
    assert err.code is None
    assert "HTML page" in err.message
    assert "<html" not in err.message and "nginx" not in err.message
    assert hint in err.hint


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_empty_and_plain_bodies(status: int) -> None:
    cls, _ = STATUSES[status]
    empty = error_from_response(status, headers(), b"")
    assert type(empty) is cls
    assert empty.message == _outcomes._DEFAULT_MESSAGES[status]
    assert empty.request_id is None
    plain = error_from_response(status, headers(), b"upstream connect error")
    assert type(plain) is cls
    assert "non-JSON body" in plain.message


def test_error_envelope_with_string_error_and_field_details() -> None:
    err = error_from_response(400, headers(), json.dumps({"error": "bad thing"}).encode())
    assert isinstance(err, InvalidRequestError) and err.message == "bad thing"
    body = {
        "error": {
            "code": "validation_error",
            "message": "invalid",
            "details": [{"loc": ["body", "size"], "msg": "bad size"}],
        }
    }
    err = error_from_response(422, headers(), json.dumps(body).encode())
    assert isinstance(err, InvalidRequestError)
    assert err.field_errors == [{"field": "size", "message": "bad size"}]


def test_unknown_statuses() -> None:
    teapot = error_from_response(418, headers(), b"")
    assert type(teapot) is MeshImageError
    assert teapot.message == "HTTP error 418"
    storage = error_from_response(507, headers(), b"")
    assert type(storage) is ServerError


def test_retry_after_seconds_header() -> None:
    err = error_from_response(429, headers(retry_after="7"), b"")
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 7.0
    assert "retry after 7 s" in err.hint


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = error_from_response(429, headers(retry_after=when), b"")
    assert isinstance(err, RateLimitError)
    assert err.retry_after is not None and 27 <= err.retry_after <= 31


def test_retry_after_from_body_when_no_header() -> None:
    body = json.dumps(
        {"error": {"code": "rate_limit_exceeded", "message": "slow down", "retry_after_seconds": 12}}
    ).encode()
    err = error_from_response(429, headers(), body)
    assert isinstance(err, RateLimitError) and err.retry_after == 12.0
    # The header wins over the body.
    err = error_from_response(429, headers(retry_after="3"), body)
    assert isinstance(err, RateLimitError) and err.retry_after == 3.0


def test_rate_limit_without_retry_after() -> None:
    err = error_from_response(429, headers(), b"")
    assert isinstance(err, RateLimitError)
    assert err.retry_after is None
    assert "concurrency" in err.hint


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    past = email.utils.formatdate(1_000_000, usegmt=True)
    assert parse_retry_after(past) == 0.0
    now = 2_000_000.0
    future = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(future, now=now) == pytest.approx(90, abs=1)


def test_echoed_key_is_redacted() -> None:
    key = "rsk_secret_key_abcdef123456"
    body = json.dumps({"error": {"code": "invalid_api_key", "message": f"Key {key} is not valid"}}).encode()
    err = error_from_response(401, headers(), body, redact=(key,))
    assert key not in err.message
    assert key not in str(err)
    assert key not in "\n".join(err._render_traceback_())
    assert "***" in err.message
    detail = json.dumps({"detail": f"bad bearer {key}"}).encode()
    assert key not in str(error_from_response(403, headers(), detail, redact=(key, "")))


def test_long_messages_are_cut() -> None:
    err = error_from_response(400, headers(), json.dumps({"detail": "x" * 5000}).encode())
    assert len(err.message) == 300
    assert err.message.endswith("...")


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_render_traceback_is_short_and_has_the_hint(status: int) -> None:
    body = json.dumps({"error": {"code": "c", "message": "m"}, "request_id": "req_1"}).encode()
    err = error_from_response(status, headers(retry_after="5"), body)
    lines = err._render_traceback_()
    assert 1 <= len(lines) <= 3
    assert lines[0].startswith(f"{type(err).__name__}: m")
    assert lines[-1] == err.hint
    assert "Traceback" not in "\n".join(lines)


def test_hierarchy() -> None:
    for cls in (
        AuthenticationError,
        InsufficientBalanceError,
        PermissionDeniedError,
        ModelNotFoundError,
        InvalidRequestError,
        RateLimitError,
        ServerError,
        UnsupportedModelError,
        APIConnectionError,
        APITimeoutError,
        ResponseError,
        CacheMissError,
        InvalidOptionError,
    ):
        assert issubclass(cls, MeshImageError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(InvalidOptionError, ValueError)
    assert APITimeoutError("x").hint != APIConnectionError("x").hint
    assert "--timeout" in APITimeoutError("x").hint


def test_errors_survive_pickling() -> None:
    err = error_from_response(
        429,
        headers(retry_after="4", x_request_id="req_p"),
        json.dumps({"error": {"code": "rate_limit_exceeded", "message": "slow"}}).encode(),
    )
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimitError
    assert (clone.status, clone.code, clone.request_id, clone.retry_after) == (
        429,
        "rate_limit_exceeded",
        "req_p",
        4.0,
    )
    assert str(clone) == str(err)
    assert clone.hint == err.hint
    field = pickle.loads(pickle.dumps(InvalidRequestError("m", field_errors=[{"field": "n"}])))
    assert field.field_errors == [{"field": "n"}]


def test_str_without_status() -> None:
    assert str(APIConnectionError("Could not connect")) == "Could not connect"
    err = MeshImageError("boom", hint="do this")
    assert err._render_traceback_() == ["MeshImageError: boom", "do this"]
