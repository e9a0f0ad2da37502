"""Build the error bodies and raw ASGI responses the server sends, in the real API's shapes."""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST_ID_KEY = "mesh.request_id"

DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "The request is invalid."),
    401: ("unauthorized", "Missing or invalid API key"),
    402: ("spend_limit_exceeded", "Insufficient balance or spend cap reached."),
    403: ("forbidden", "This API key is suspended."),
    404: ("model_not_found", "Model not found."),
    408: ("request_timeout", "The request timed out."),
    409: ("conflict", "Conflicting request."),
    413: ("payload_too_large", "Request body too large."),
    422: ("validation_error", "Request validation failed."),
    429: ("rate_limit_exceeded", "Rate limit exceeded. Slow down and retry later."),
    500: ("upstream_error", "The upstream provider returned an error."),
    501: ("not_implemented", "This model cannot generate images."),
    502: ("upstream_error", "Bad gateway: the upstream provider could not be reached."),
    503: ("upstream_error", "The service is temporarily unavailable."),
    504: ("upstream_error", "The upstream provider timed out."),
}

_REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """An error answer in the MeshAPI envelope, raised from deep inside a handler."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class ValidationFailed(Exception):
    """A FastAPI-style 422 with a list of field errors."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def loads(raw: bytes | str) -> Any:
    """Strict JSON: NaN and infinities are refused, so anything parsed can be echoed back."""
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def mesh_envelope(
    code: str, message: str, request_id: str, *, details: Any = None, retry_after: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    seconds = _as_seconds(retry_after)
    if seconds is not None:
        error["retry_after_seconds"] = seconds
    return {"error": error, "request_id": request_id}


def _as_seconds(retry_after: str | None) -> int | float | None:
    if retry_after is None:
        return None
    try:
        value = float(retry_after)
    except ValueError:
        return None  # an HTTP date: only the header carries it
    return int(value) if value.is_integer() else value


def html_error_page(status: int) -> bytes:
    title = f"{status} {_REASONS.get(status, 'Error')}"
    # What a reverse proxy in front of the API sends when it, not the app, answers.
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def error_body(
    status: int,
    request_id: str,
    *,
    envelope: str | None = None,
    code: str | None = None,
    message: str | None = None,
    retry_after: str | None = None,
) -> tuple[bytes, str | None]:
    """(body, content type) of an error in one of the shapes the real service uses."""
    default_code, default_message = DEFAULT_ERRORS.get(status, ("error", f"HTTP {status}"))
    code = code or default_code
    message = message or default_message
    envelope = envelope or ("fastapi_list" if status == 422 else "mesh")
    if envelope == "mesh":
        body = mesh_envelope(code, message, request_id, retry_after=retry_after)
        return dumps(body), "application/json"
    if envelope == "fastapi":
        return dumps({"detail": message}), "application/json"
    if envelope == "fastapi_list":
        detail = [{"loc": ["body"], "msg": message, "type": code}]
        return dumps({"detail": detail}), "application/json"
    if envelope == "html":
        return html_error_page(status), "text/html"
    return b"", None


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    raw = [(b"content-length", str(len(body)).encode())]
    if content_type:
        raw.append((b"content-type", content_type.encode()))
    raw.extend((k.lower().encode(), v.encode("latin-1")) for k, v in headers or [])
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
