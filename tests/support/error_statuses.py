"""The SPEC 1 error statuses and what the user must see for each: one table for every suite."""

from __future__ import annotations

from mesh_magic.core.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MeshImageError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnsupportedModelError,
)

# status -> (error class, a phrase its hint must contain)
STATUSES: dict[int, tuple[type[MeshImageError], str]] = {
    400: (InvalidRequestError, "Fix the option"),
    401: (AuthenticationError, "MESHAPI_API_KEY"),
    402: (InsufficientBalanceError, "top up"),
    403: (PermissionDeniedError, "suspended"),
    404: (ModelNotFoundError, "%meshimg_models"),
    422: (InvalidRequestError, "Fix the option"),
    429: (RateLimitError, "Rate limited"),
    500: (ServerError, "not retried automatically"),
    501: (UnsupportedModelError, "%meshimg_models"),
    502: (ServerError, "temporarily unavailable"),
    503: (ServerError, "temporarily unavailable"),
    504: (ServerError, "temporarily unavailable"),
}
