"""Transport failures into `MeshImageError`s: the one `with` block every exchange runs in.

Modelled on httpx's own `map_httpcore_exceptions`: whatever httpx raises while a
request is built, sent or read becomes a connection, timeout or response error
that says what was being done, with the key scrubbed. `Exchange.sent` records
whether the request may have reached the server, which decides whether a retry
could bill twice.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ParamSpec, TypeVar

import httpx

from ..errors import APIConnectionError, APITimeoutError, MeshImageError, ResponseError
from ..keys import SECRETS, detached

P = ParamSpec("P")
R = TypeVar("R")

SENT_HINT = (
    "The connection broke after the request was sent, so it was not retried automatically "
    "(it may have been billed). Run it again if you need the image."
)
STREAM_HINT = (
    "The connection dropped mid-stream (not retried: it may be billed). "
    "Images that arrived are kept; run the cell again for the rest."
)
# Failures that happen before any byte of the request left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Requests refused before anything was sent (a bad header value, an unusable URL).
_UNSENDABLE = (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL)


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


@dataclass
class Exchange:
    """One request to a host, and what to call it in an error.

    `what` names the action for messages ("The request to openai/gpt-image-1",
    "Listing models", "Downloading image 2"). A `download` is of an image URL
    after the API answered: its failures are that image's, not the API's.
    """

    what: str
    host: str
    timeout: float
    download: bool = False
    streaming: bool = False
    sent: bool = False
    request_id: str | None = None

    def __enter__(self) -> Exchange:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Never swallows: a transport failure is re-raised as what it means, the rest as is.
        if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
            error = self.translate(exc)
            _disarm(exc)
            raise error from None

    @staticmethod
    def scrub(text: str) -> str:
        return SECRETS.scrub(text)

    def translate(self, exc: BaseException) -> MeshImageError:
        """The error a user sees for `exc`, raised while doing this exchange."""
        detail = self.scrub(describe(exc))
        if self.download:
            if isinstance(exc, httpx.TimeoutException):
                return ResponseError(f"{self.what} timed out after {self.timeout:g} s.")
            return ResponseError(f"{self.what} failed: {detail}")
        if isinstance(exc, _NOT_SENT) and not self.sent:
            return APIConnectionError(f"Could not connect to {self.host}: {detail}", before_send=True)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"{self.what} timed out after {self.timeout:g} s.", request_id=self.request_id
            )
        if self.streaming:
            return APIConnectionError(
                f"The stream broke: {detail}", request_id=self.request_id, hint=STREAM_HINT
            )
        if isinstance(exc, _UNSENDABLE):
            return APIConnectionError(f"{self.what} could not be sent: {detail}")
        return APIConnectionError(
            f"The connection broke during the response: {detail}",
            request_id=self.request_id,
            hint=SENT_HINT,
        )


def _disarm(exc: BaseException) -> None:
    """Strip an httpx error of what could hold the key: its request, frames and chain.

    It stays as the translated error's `__context__` until `detaches_errors` drops it.
    """
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    exc.args = (SECRETS.scrub(str(exc)),)
    if hasattr(exc, "_request"):
        exc._request = None


def detaches_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The client's public calls raise errors with no traceback below them and no chain.

    httpx builds the request headers (the key among them) in its own frames; a
    traceback or `__context__` leading there would let `pytest -l`, `%xmode
    Verbose` or a pickle show the key.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except MeshImageError as exc:
            error = exc
        raise detached(error)

    return wrapper
