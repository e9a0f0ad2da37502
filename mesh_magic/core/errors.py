"""The one exception hierarchy of mesh_magic.

Every failure a user can meet is a `MeshImageError` with a message a person can
act on, the HTTP facts (`status`, `code`, `request_id`) and a `hint`. Errors
are built complete where the failure is understood; a caller that knows more
(the request id, a partial image) makes a new error with `with_context`, never
patches an existing one. HTTP outcomes become these classes in one place:
`core.http.outcomes.error_from_response`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

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
    "MeshImageWarning",
    "StoreError",
    "MissingDependencyError",
]

E = TypeVar("E", bound="MeshImageError")


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
        partial_image: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        # A stream's last partial image, kept when the stream failed before the final one.
        self.partial_image = partial_image
        if hint is not None:
            self.hint = hint

    def with_context(self: E, **changes: Any) -> E:
        """A copy of this error with more facts (`request_id=...`, `message=...`)."""
        clone = copy.copy(self)
        clone.__dict__.update(changes)
        clone.args = (clone.message,)
        clone.__traceback__ = None
        return clone

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
    """400/422: the request was refused as invalid; `field_errors` names the fields."""

    hint = "Fix the option named above and run the cell again."

    def __init__(
        self, message: str, *, field_errors: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.field_errors = field_errors or []

    def rejects(self, field: str) -> bool:
        """True when the server named `field` (e.g. "n") among the invalid fields."""
        return any(e.get("field") == field for e in self.field_errors)


class RateLimitError(MeshImageError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        if "hint" not in kwargs or kwargs["hint"] is None:
            kwargs["hint"] = (
                f"Rate limited: retry after {retry_after:.0f} s."
                if retry_after is not None
                else "Rate limited: wait a little, or lower MeshImg.concurrency."
            )
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(MeshImageError):
    hint = "The provider failed. Retry later (this was not retried automatically: it may be billed)."


class UnsupportedModelError(MeshImageError):
    hint = "This model cannot generate images: pick one from %meshimg_models."


class APIConnectionError(MeshImageError):
    """The API could not be reached, or the connection broke.

    `before_send` is True when connecting failed, so nothing reached the server:
    only such a failure is safe to retry (a generation is billed once it is sent).
    """

    hint = "Could not reach the API: check MESHAPI_BASE_URL / MeshImg.base_url and your network."

    def __init__(self, message: str, *, before_send: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.before_send = before_send


class APITimeoutError(APIConnectionError):
    hint = "The request timed out: raise --timeout / MeshImg.timeout, or try a smaller size."


class ResponseError(MeshImageError):
    hint = "The server answered something that is not a usable image response; retry, or try another model."


class StoreError(MeshImageError):
    hint = "Restore the store folder (store_dir / MESHIMG_STORE_DIR), or generate the image again."


class MissingDependencyError(MeshImageError, ImportError):
    hint = ""


class CacheMissError(MeshImageError):
    hint = (
        "cache='replay' never calls the API: run once with cache='on' (and a key) to fill the store, "
        "or set MeshImg.cache = 'on'."
    )


class MeshImageWarning(UserWarning):
    """Something went wrong after the images arrived (a failed --save): they are still returned."""


def unexpected_error(exc: BaseException, what: str, scrub: Callable[[str], str]) -> ResponseError:
    """An exception outside the hierarchy, met while handling one item, as that item's error.

    The engine's one rule: an item fails with a `MeshImageError`, the others go on. The
    original is not chained (its frames and arguments may hold the answer or the key) and
    its text is bounded and passed through `scrub` (the known keys' scrubber).
    """
    text = scrub(str(exc) or type(exc).__name__)
    if len(text) > 200:
        text = text[:199] + "…"
    return ResponseError(
        f"{what} failed unexpectedly ({type(exc).__name__}: {text}).",
        hint="This is a bug in mesh_magic or a very odd answer: the other images are kept; "
        "run the cell again for this one.",
    )
