"""The one exception hierarchy of mesh_magic, and the mapping from HTTP outcomes to it.

Every failure a user can meet is a `MeshImageError`; `error_from_response` is the
only place that turns an HTTP status and body into one of them.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

__all__ = [
    "MeshImageError",
    "InvalidOptionError",
    "AuthenticationError",
    "InsufficientBalanceError",
    "PermissionDeniedError",
    "ModelNotFoundError",
    "InvalidRequestError",
    "RateLimitError",
    "ServerError",
    "UnsupportedModelError",
    "APIConnectionError",
    "APITimeoutError",
    "ResponseError",
    "CacheMissError",
    "error_from_response",
    "parse_retry_after",
]


class MeshImageError(Exception):
    """Base of every mesh_magic error: a message a person can act on, plus HTTP facts."""

    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}{', ' + self.code if self.code else ''})")
        if self.request_id:
            parts.append(f"[request {self.request_id}]")
        return " ".join(parts)

    def _render_traceback_(self) -> list[str]:
        # IPython protocol: a short, key-free error instead of a long traceback.
        lines = [f"{type(self).__name__}: {self}"]
        if self.hint:
            lines.append(self.hint)
        return lines

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps errors picklable (multiprocessing, nbclient) despite keyword-only init.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[MeshImageError], message: str, state: dict[str, Any]) -> MeshImageError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InvalidOptionError(MeshImageError, ValueError):
    """Bad input caught before any request is sent (empty prompt, n out of range, ...)."""


class AuthenticationError(MeshImageError):
    hint = (
        "Check your key: set MESHAPI_API_KEY (or MESH_API_KEY) in the environment, "
        "or run %meshimg_config --login."
    )


class InsufficientBalanceError(MeshImageError):
    hint = "Your MeshAPI balance or spend cap is exhausted: top up or raise the cap in the dashboard."


class PermissionDeniedError(MeshImageError):
    hint = "This key is suspended or not allowed to do this: check it in the MeshAPI dashboard."


class ModelNotFoundError(MeshImageError):
    hint = "Run %meshimg_models (or mesh_magic.models()) to see the image model ids."


class InvalidRequestError(MeshImageError):
    hint = "Fix the option named above and run the cell again."

    def __init__(self, message: str, *, field_errors: list[dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field_errors = field_errors or []


class RateLimitError(MeshImageError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.hint = f"Rate limited: retry after {retry_after:.0f} s."
        else:
            self.hint = "Rate limited: wait a little, or lower MeshImg.concurrency."


class ServerError(MeshImageError):
    hint = "The provider failed. Retry later (this was not retried automatically: it may be billed)."


class UnsupportedModelError(MeshImageError):
    hint = "This model cannot generate images: pick one from %meshimg_models."


class APIConnectionError(MeshImageError):
    hint = "Could not reach the API: check MESHAPI_BASE_URL / MeshImg.base_url and your network."


class APITimeoutError(APIConnectionError):
    hint = "The request timed out: raise --timeout / MeshImg.timeout, or try a smaller size."


class ResponseError(MeshImageError):
    hint = "The server answered something that is not a usable image response; retry, or try another model."


class CacheMissError(MeshImageError):
    hint = (
        "cache='replay' never calls the API: run once with cache='on' (and a key) to fill the store, "
        "or set MeshImg.cache = 'on'."
    )


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


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _field_errors(detail: list[Any]) -> list[dict[str, Any]]:
    errors = []
    for item in detail:
        if isinstance(item, dict):
            loc = item.get("loc") or []
            field = ".".join(str(p) for p in loc if p != "body") or "body"
            errors.append({"field": field, "message": str(item.get("msg", "invalid"))})
    return errors


def error_from_response(
    status: int,
    headers: Any,
    body: bytes,
    *,
    redact: tuple[str, ...] = (),
) -> MeshImageError:
    """Translate a non-2xx response into the matching `MeshImageError`.

    Understands the MeshAPI envelope, FastAPI's `detail` (string or list) and
    non-JSON bodies such as a proxy's HTML page. `redact` holds secrets that
    must never reach a message even if a server echoes them.
    """
    request_id = headers.get("x-request-id") if headers is not None else None
    code: str | None = None
    message: str | None = None
    field_errors: list[dict[str, Any]] = []
    retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None

    payload: Any = None
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None

    if isinstance(payload, dict):
        request_id = payload.get("request_id") or request_id
        err = payload.get("error")
        detail = payload.get("detail")
        if isinstance(err, dict):
            code = _as_text(err.get("code"))
            message = _as_text(err.get("message"))
            details = err.get("details")
            if isinstance(details, list):
                field_errors = _field_errors(details)
            if retry_after is None and isinstance(err.get("retry_after_seconds"), (int, float)):
                retry_after = float(err["retry_after_seconds"])
        elif isinstance(err, str):
            message = err
        elif isinstance(detail, str):
            message = detail
        elif isinstance(detail, list):
            field_errors = _field_errors(detail)
            # loc ["body"] means the whole body: the message alone reads better than "body: ...".
            message = "; ".join(
                e["message"] if e["field"] == "body" else f"{e['field']}: {e['message']}"
                for e in field_errors
            ) or None
    elif body:
        kind = "an HTML page" if b"<html" in body[:2048].lower() else "a non-JSON body"
        message = f"{_DEFAULT_MESSAGES.get(status, 'HTTP error')} (the server sent {kind})"

    message = message or _DEFAULT_MESSAGES.get(status, f"HTTP error {status}")
    for secret in redact:
        if secret:
            # Servers echo input: scrub every text that reaches the error, not just the message.
            message = message.replace(secret, "***")
            code = code.replace(secret, "***") if code else code
            field_errors = [{k: v.replace(secret, "***") for k, v in e.items()} for e in field_errors]
    if len(message) > 300:
        message = message[:297] + "..."

    kwargs: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else MeshImageError
    if cls is InvalidRequestError:
        return InvalidRequestError(message, field_errors=field_errors, **kwargs)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    err = cls(message, **kwargs)
    if cls is ServerError and status in (502, 503, 504):
        err.hint = "The gateway is temporarily unavailable (retried already): try again shortly."
    return err


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)
