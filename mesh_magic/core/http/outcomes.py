"""The one place HTTP outcomes become `MeshImageError`s: status, headers and body in, error out.

Understands the MeshAPI envelope (`error.code/message/details/retry_after_seconds`),
FastAPI's `detail` (a string or a list of field errors), redirects (never followed:
the key must not go to another host) and non-JSON bodies such as a proxy's HTML
page. The caller says how the call went (how many attempts, whether a wait was
refused), so the error is built complete, hint included.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MeshImageError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    UnsupportedModelError,
)
from ..keys import SECRETS

_STATUS_CLASSES: dict[int, type[MeshImageError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    422: InvalidRequestError,
    429: RateLimitError,
    501: UnsupportedModelError,
}

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "The request was rejected as invalid",
    401: "Missing or invalid API key",
    402: "Insufficient balance or spend cap reached",
    403: "The API key is suspended or lacks permission",
    404: "Model not found",
    422: "The request failed validation",
    429: "Rate limit exceeded",
    500: "Upstream provider error",
    501: "This model does not support image generation",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_GATEWAY_STATUSES = (502, 503, 504)
# Hints for error codes that say more than their status does.
_CODE_HINTS: dict[str, str] = {
    "model_capability_not_supported": (
        "This model does not support what was asked (see above): pick another model "
        "(%meshimg_models lists them), or drop that option."
    ),
}
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class CallHistory:
    """How the call that met this outcome went: what the error's hint and message say."""

    attempts: int = 1  # requests sent, this one included
    max_retries: int | None = None
    refused_wait: float | None = None  # a wait that would have passed the budget
    max_wait: float | None = None  # that budget (max_retry_wait)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no wait
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class _Envelope:
    """What a body says about the failure, in whichever shape it came."""

    message: str | None = None
    code: str | None = None
    request_id: str | None = None
    field_errors: list[dict[str, Any]] | None = None
    retry_after: float | None = None


def _field_errors(detail: list[Any]) -> list[dict[str, Any]]:
    errors = []
    for item in detail:
        if isinstance(item, dict):
            loc = item.get("loc") or []
            loc = loc if isinstance(loc, list) else [loc]
            field = ".".join(str(p) for p in loc if p != "body") or "body"
            errors.append({"field": field, "message": str(item.get("msg", "invalid"))})
    return errors


def _join_field_errors(errors: list[dict[str, Any]]) -> str | None:
    # loc ["body"] means the whole body: the message alone reads better than "body: ...".
    return (
        "; ".join(e["message"] if e["field"] == "body" else f"{e['field']}: {e['message']}" for e in errors)
        or None
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def read_envelope(status: int, body: bytes) -> _Envelope:
    """The failure as the body describes it (MeshAPI, FastAPI, plain text or HTML)."""
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        if not body:
            return _Envelope()
        kind = "an HTML page" if b"<html" in body[:2048].lower() else "a non-JSON body"
        return _Envelope(f"{_DEFAULT_MESSAGES.get(status, 'HTTP error')} (the server sent {kind})")
    found = _Envelope(request_id=_text(payload.get("request_id")))
    err, detail = payload.get("error"), payload.get("detail")
    if isinstance(err, dict):
        found.code = _text(err.get("code"))
        found.message = _text(err.get("message"))
        if isinstance(err.get("details"), list):
            found.field_errors = _field_errors(err["details"])
        wait = err.get("retry_after_seconds")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait >= 0:
            found.retry_after = float(wait)
    elif isinstance(err, str):
        found.message = err
    elif isinstance(detail, str):
        found.message = detail
    elif isinstance(detail, list):
        found.field_errors = _field_errors(detail)
        found.message = _join_field_errors(found.field_errors)
    return found


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Every key this process knows (`SECRETS`), and `secrets`, replaced by ***."""
    text = SECRETS.scrub(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _gateway_hint(history: CallHistory) -> str:
    if history.attempts > 1:
        return "The gateway is temporarily unavailable (retried already): try again shortly."
    if history.max_retries == 0:
        return "The gateway is temporarily unavailable (not retried: max_retries is 0): try again shortly."
    return "The gateway is temporarily unavailable: try again shortly."


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes,
    *,
    redact: tuple[str, ...] = (),
    history: CallHistory | None = None,
) -> MeshImageError:
    """Translate a non-2xx response into the matching `MeshImageError`.

    Known keys (`keys.SECRETS`) never reach a field even if a server echoes them;
    `redact` adds more secrets to scrub.
    """
    history = history or CallHistory()
    headers = headers if headers is not None else {}
    found = read_envelope(status, body) if status >= 400 else _Envelope()
    request_id = found.request_id or headers.get("x-request-id")
    request_id = _scrub(request_id, redact) if request_id else None
    if 300 <= status < 400:
        return ResponseError(
            f"The API redirected (HTTP {status}); set base_url to the final address.",
            status=status,
            request_id=request_id,
        )
    message = _scrub(found.message or _DEFAULT_MESSAGES.get(status, f"HTTP error {status}"), redact)
    field_errors = [{k: _scrub(str(v), redact) for k, v in e.items()} for e in found.field_errors or []]
    if field_errors and not any(e["message"] in message for e in field_errors):
        # The envelope's message is often generic ("Validation failed."): the reason is in details.
        message = f"{message.rstrip('.')}: {_join_field_errors(field_errors)}"
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    common: dict[str, Any] = {
        "status": status,
        "request_id": request_id,
        "code": _scrub(found.code, redact) if found.code else None,
    }
    cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else MeshImageError)
    if cls is InvalidRequestError:
        hint = _CODE_HINTS.get(found.code or "")
        return InvalidRequestError(message, field_errors=field_errors, hint=hint, **common)
    if cls is RateLimitError:
        return _rate_limited(message, headers, found, history, common)
    if status in _GATEWAY_STATUSES:
        if history.refused_wait is not None:
            message += f" (the server asks to wait {history.refused_wait:.0f} s)"
        return ServerError(message, hint=_gateway_hint(history), **common)
    return cls(message, **common)


def _rate_limited(
    message: str, headers: Mapping[str, str], found: _Envelope, history: CallHistory, common: dict[str, Any]
) -> RateLimitError:
    wait = parse_retry_after(headers.get("retry-after"))
    wait = found.retry_after if wait is None else wait
    if history.refused_wait is None:
        return RateLimitError(message, retry_after=wait, **common)
    wait = history.refused_wait
    plain = message[:-1] if message.endswith(".") and not message.endswith("...") else message
    said = "" if message == _DEFAULT_MESSAGES[429] else f" ({plain})"
    budget = f"{history.max_wait:g} s" if history.max_wait is not None else "its limit"
    hint = (
        f"Waiting {wait:.0f} s more would pass max_retry_wait ({budget}): run the cell again "
        "later, or raise MeshImg.max_retry_wait to wait longer."
    )
    return RateLimitError(
        f"Rate limited; try again in {wait:.0f} s{said}.", retry_after=wait, hint=hint, **common
    )


def retry_after_of(headers: Mapping[str, str], body: bytes) -> float | None:
    """The wait a response asks for: its Retry-After header, else `retry_after_seconds`."""
    wait = parse_retry_after(headers.get("retry-after"))
    if wait is None and body:
        wait = read_envelope(429, body).retry_after
    return wait
