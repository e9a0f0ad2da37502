"""The MeshAPI client: one API root and one key, over an injected `httpx.AsyncClient`.

Generations (retrying where safe, streaming or not), the model list and image
downloads. Transport failures become errors in `transport.Exchange`, statuses in
`outcomes.error_from_response`, and the retry decisions are `retry.RetryPolicy`'s.
The key goes on the wire through `auth.BearerAuth`, only to URLs under the root.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..constants import (
    ALLOW_HTTP_ENV,
    DOWNLOAD_TIMEOUT,
    INLINE_CHECK_BYTES,
    MAX_ERROR_BODY,
    MAX_IMAGE_BYTES,
    MODEL_LIST_TIMEOUT,
    max_body_bytes,
)
from ..errors import (
    APITimeoutError,
    AuthenticationError,
    InvalidOptionError,
    MeshImageError,
    ResponseError,
    unexpected_error,
)
from ..images import inspect_image, sniff_mime
from ..keys import SECRETS
from ..parsing import ParsedGeneration, RawItem, decode_b64, decode_data_uri, load_json, parse_generation
from ..results import GeneratedImage, ImageParent
from ..urls import host_of, is_loopback, netloc_of
from .auth import BearerAuth
from .outcomes import error_from_response
from .retry import RetryableStatus, RetryPolicy, is_retryable_status
from .streaming import EventCallback, read_stream
from .transport import Exchange, detaches_errors

if TYPE_CHECKING:
    from ..request import ImageRequest
    from ..settings import Settings

# Set around one exchange with the API; `_materialise` flips it once the answer is in.
_ANSWERED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "mesh_magic_answered", default=None
)


@dataclass(frozen=True)
class RetryNotice:
    """Told to `on_retry` before the client sleeps and sends retry number `attempt`."""

    attempt: int
    wait: float
    rate_limited: bool


def _is_rate_limit(failure: BaseException) -> bool:
    return isinstance(failure, RetryableStatus) and failure.status == 429


@dataclass
class Generation:
    """What one generation request produced: images, per-image failures and facts."""

    images: list[GeneratedImage] = field(default_factory=list)
    errors: list[MeshImageError] = field(default_factory=list)
    request_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


class MeshClient:
    """Talks to one MeshAPI-compatible root with one key, through an injected AsyncClient."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_retry: Callable[[RetryNotice], None] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.root = settings.api_root.rstrip("/")
        self.policy = RetryPolicy(settings.max_retries, settings.max_retry_wait)
        self._auth = BearerAuth(settings.api_key, self.root)
        self._sleep = sleep
        self._on_retry = on_retry
        self._check_transport_security()

    def _require_key(self) -> None:
        """No key for a remote API: say so before sending anything (loopback servers may not need one)."""
        host = host_of(self.root)
        if self.settings.api_key is None and not self.settings.offline and not is_loopback(host):
            raise AuthenticationError(
                f"No API key is set for {host}.",
                hint="Set MESHAPI_API_KEY (or MESH_API_KEY), or run %meshimg_config --login "
                "(mesh_magic.login()). To try without a key, use base_url='offline'.",
            )

    def _check_transport_security(self) -> None:
        if (
            self.settings.api_key is not None
            and self.root.startswith("http://")
            and not self.settings.offline
            and not is_loopback(host_of(self.root))
            and os.environ.get(ALLOW_HTTP_ENV) != "1"
        ):
            raise InvalidOptionError(
                f"Refusing to send the API key over plain http:// to {host_of(self.root)}. "
                f"Use https://, or set {ALLOW_HTTP_ENV}=1 if you really mean it."
            )

    def _exchange(self, what: str, timeout: float, **kwargs: Any) -> Exchange:
        return Exchange(what, netloc_of(self.root), timeout, **kwargs)

    # -- generations -------------------------------------------------------

    @detaches_errors
    async def generate(
        self,
        request: ImageRequest,
        on_event: EventCallback | None = None,
        on_retry: Callable[[RetryNotice], None] | None = None,
    ) -> Generation:
        """POST one generation (retrying where safe) and return its images."""
        self._require_key()
        attempt, waited = 0, 0.0
        while True:
            try:
                return await self._within_timeout(
                    self._generate_once(request, on_event), self._timeout(request)
                )
            except (RetryableStatus, MeshImageError) as exc:
                failure: BaseException = exc
            except asyncio.TimeoutError:
                raise APITimeoutError(
                    f"No complete answer within {self._timeout(request):g} s from {request.model}."
                ) from None
            if not self.policy.should_retry(failure, attempt):
                raise self.policy.give_up(failure, attempt) from None
            wait = self.policy.retry_timeout(failure, attempt)
            if not self.policy.within_budget(waited, wait):
                raise self.policy.give_up(failure, attempt, refused_wait=wait) from None
            attempt, waited = attempt + 1, waited + wait
            notice = RetryNotice(attempt, wait, rate_limited=_is_rate_limit(failure))
            for hook in (self._on_retry, on_retry):
                if hook is not None:
                    hook(notice)
            await self._sleep(wait)

    def _timeout(self, request: ImageRequest) -> float:
        return request.timeout if request.timeout is not None else self.settings.timeout

    async def _within_timeout(self, work: Coroutine[Any, Any, Generation], timeout: float) -> Generation:
        """Await one exchange with the API under `timeout`; raises asyncio.TimeoutError.

        The timeout is per request: once the API has answered (`_materialise` marks
        it), image downloads run on their own timeouts, so a slow image host fails
        that image (kept per item, with the request id) instead of the whole call.
        """
        answered = [False]
        token = _ANSWERED.set(answered)
        try:
            task = asyncio.ensure_future(work)  # copies the context that holds `answered`
        finally:
            _ANSWERED.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done and answered[0]:
                await asyncio.wait({task})
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise asyncio.TimeoutError
            return task.result()
        finally:
            if not task.done():
                task.cancel()  # we were cancelled (Ctrl-C): stop the request too

    async def _generate_once(self, request: ImageRequest, on_event: EventCallback | None) -> Generation:
        url = f"{self.root}/{request.path}"
        limit = max_body_bytes(request.n)
        headers = {"Accept": "text/event-stream" if request.stream else "application/json"}
        what = (
            f"The {request.operation} by {request.model}"
            if request.is_edit
            else (f"The request to {request.model}")
        )
        exchange = self._exchange(what, self._timeout(request))
        started = time.perf_counter()  # each image's latency_s runs from here to its decoding
        with exchange:
            async with self.http.stream(
                "POST",
                url,
                json=request.body(),
                headers=headers,
                auth=self._auth,
                timeout=self._timeout(request),
            ) as response:
                exchange.sent = True
                exchange.request_id = SECRETS.scrub_optional(response.headers.get("x-request-id"))
                if response.status_code >= 300:
                    raise await self._failure(response)
                if "text/event-stream" in response.headers.get("content-type", ""):
                    outcome = await read_stream(response, exchange, limit, on_event)
                    generation = await self._materialise(
                        outcome.parsed, request, exchange.request_id, source="stream", started=started
                    )
                    if outcome.failure is not None and len(outcome.parsed.items) < request.n:
                        arrived = len(outcome.parsed.items)
                        generation.errors.append(
                            outcome.failure.with_context(
                                message=f"{outcome.failure.message} ({arrived} of {request.n} "
                                "images had arrived)"
                            )
                        )
                    return generation
                raw = SECRETS.scrub_bytes(await _read_limited(response, limit, "response"))
        try:
            parsed = parse_generation(load_json(raw))
        except ResponseError as exc:
            raise exc.with_context(request_id=exchange.request_id) from None
        return await self._materialise(parsed, request, exchange.request_id, started=started)

    async def _failure(self, response: httpx.Response) -> BaseException:
        """The exception for a non-2xx answer: retryable statuses wait for the policy."""
        raw = SECRETS.scrub_bytes(await _read_limited(response, MAX_ERROR_BODY, "error body", truncate=True))
        status = response.status_code
        if is_retryable_status(status):
            return RetryableStatus(status, response.headers, raw)
        return error_from_response(status, response.headers, raw)

    async def _materialise(
        self,
        parsed: ParsedGeneration,
        request: ImageRequest,
        request_id: str | None,
        source: str | None = None,
        started: float | None = None,
    ) -> Generation:
        """Turn raw items into checked images; a bad item fails alone, the others survive."""
        answered = _ANSWERED.get()
        if answered is not None:
            answered[0] = True  # the API part is over: downloads have their own timeouts
        result = Generation(request_id=request_id, usage=dict(parsed.usage))
        result.errors += [exc.with_context(request_id=request_id) for _, exc in parsed.item_errors]
        created = parsed.created or int(time.time())
        outcomes = await asyncio.gather(
            *(self._item_bytes(item) for item in parsed.items), return_exceptions=True
        )
        for item, outcome in zip(parsed.items, outcomes, strict=True):
            what = f"image {item.index + 1} from {request.model}"
            if isinstance(outcome, Exception) and not isinstance(outcome, MeshImageError):
                outcome = unexpected_error(outcome, what.capitalize(), SECRETS.scrub)
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, MeshImageError):
                    raise outcome  # an interrupt
                result.errors.append(outcome.with_context(request_id=outcome.request_id or request_id))
                continue
            try:
                # A small PNG's structural check costs less than a thread hop; anything else
                # (a big PNG, or a format that is decoded in full) goes off the loop.
                if len(outcome) <= INLINE_CHECK_BYTES and sniff_mime(outcome) == "image/png":
                    info = inspect_image(outcome, what=what)
                else:
                    info = await asyncio.to_thread(inspect_image, outcome, what=what)
            except ResponseError as exc:
                result.errors.append(exc.with_context(request_id=request_id))
                continue
            result.images.append(
                GeneratedImage(
                    data=outcome,
                    mime_type=info.mime_type,
                    width=info.width,
                    height=info.height,
                    prompt=request.prompt,
                    model=request.model,
                    revised_prompt=item.revised_prompt,
                    request_id=request_id,
                    created=created,
                    params=request.describe(),
                    row=request.row,
                    index=item.index,
                    source=source or item.source,
                    operation=request.operation,
                    parents=tuple(ImageParent(s.sha256, s.path, s.label, s.size) for s in request.sources),
                    latency_s=None if started is None else round(time.perf_counter() - started, 4),
                )
            )
        return result

    async def _item_bytes(self, item: RawItem) -> bytes:
        if item.b64 is not None:
            return _canonical_b64(item.b64) or decode_b64(item.b64, what=f"image {item.index + 1}")
        if item.data_uri is not None:
            return decode_data_uri(item.data_uri)
        assert item.url is not None
        try:
            return await asyncio.wait_for(self.download(item.url), timeout=self.settings.timeout)
        except asyncio.TimeoutError:
            raise ResponseError(
                f"Downloading image {item.index + 1} timed out after {self.settings.timeout:g} s."
            ) from None

    # -- models and downloads ----------------------------------------------

    @detaches_errors
    async def list_models(self, kind: str | None = "image") -> list[dict[str, Any]]:
        """The raw model entries of GET /models (a bare array, or an OpenAI-style `data` list)."""
        self._require_key()
        timeout = min(self.settings.timeout, MODEL_LIST_TIMEOUT)
        with self._exchange("Listing models", timeout):
            response = await self.http.get(
                f"{self.root}/models",
                params={"type": kind} if kind else None,
                headers={"Accept": "application/json"},
                auth=self._auth,
                timeout=timeout,
            )
        if response.status_code >= 300:  # never followed: the key must not go to another host
            raise error_from_response(response.status_code, response.headers, response.content)
        # Model ids and names are shown and kept: scrubbed like any other server text.
        payload = SECRETS.scrub_tree(load_json(response.content, what="model list"))
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]  # OpenAI-style list envelope
        if not isinstance(payload, list):
            raise ResponseError("The model list is not a JSON array.")
        return [m for m in payload if isinstance(m, dict) and m.get("id")]

    @detaches_errors
    async def download(self, url: str) -> bytes:
        """Fetch an image URL with no Authorization header, bounded in size."""
        timeout = min(self.settings.timeout, DOWNLOAD_TIMEOUT)
        with self._exchange("Downloading the image URL", timeout, download=True):
            async with self.http.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
                if response.status_code >= 400:
                    raise ResponseError(
                        f"The image URL answered HTTP {response.status_code}.", status=response.status_code
                    )
                return await _read_limited(response, MAX_IMAGE_BYTES, "image download")


def _canonical_b64(text: str) -> bytes | None:
    """Decode base64 that needs no clean-up (no whitespace, padded), else None.

    The common case, and it skips `decode_b64`'s whitespace-stripping copies of a
    multi-megabyte string; anything else (or an error) goes through `decode_b64`.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


async def _read_limited(response: httpx.Response, limit: int, what: str, *, truncate: bool = False) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit and not truncate:
        raise ResponseError(
            f"The {what} is {int(declared) // (1024 * 1024)} MiB, over the {limit // (1024 * 1024)}"
            " MiB limit; refusing to load it."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                break
            raise ResponseError(
                f"The {what} exceeded the {limit // (1024 * 1024)} MiB limit; refusing to load it."
            )
        chunks.append(chunk)
    return b"".join(chunks)
