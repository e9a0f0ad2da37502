"""The HTTP client: auth, retries, limits, streaming and image download for one API.

This is the edge where httpx exceptions become `MeshImageError`s. The key is
attached per request and only to URLs under the configured API root; image
URLs (often on a CDN host) are fetched without it. The `httpx.AsyncClient` is
injected, so tests can hand in a MockTransport and the offline backend an ASGI
transport.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import ipaddress
import os
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._config import Settings
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidOptionError,
    MeshImageError,
    RateLimitError,
    ResponseError,
    ServerError,
    error_from_response,
    parse_retry_after,
)
from ._images import inspect_image
from ._parsing import (
    ParsedGeneration,
    RawItem,
    StreamEvent,
    classify_event,
    decode_b64,
    decode_data_uri,
    load_json,
    parse_generation,
)
from ._request import ImageRequest
from ._results import GeneratedImage

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A Retry-After longer than this fails fast (with the wait in the error) instead of blocking a cell.
MAX_RETRY_WAIT = 60.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
MAX_IMAGE_BYTES = 64 * 1024 * 1024
USER_AGENT = "mesh-magic/0.1"
ALLOW_HTTP_ENV = "MESHIMG_ALLOW_INSECURE_HTTP"

EventCallback = Callable[[StreamEvent], None]

# Set around one exchange with the API; `_materialise` flips it once the answer is in.
_ANSWERED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "mesh_magic_answered", default=None
)
_SENT_HINT = (
    "The connection broke after the request was sent, so it was not retried automatically "
    "(it may have been billed). Run it again if you need the image."
)


def max_body_bytes(n: int) -> int:
    """Largest JSON body accepted: room for n base64 images, but not unbounded."""
    return 16 * 1024 * 1024 + n * 48 * 1024 * 1024


def is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: uniform(ceiling / 2, ceiling), ceiling = base * 2**attempt, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass
class Generation:
    """What one generation request produced: images, per-image failures and facts."""

    images: list[GeneratedImage] = field(default_factory=list)
    errors: list[MeshImageError] = field(default_factory=list)
    request_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    retries: int = 0


class MeshClient:
    """Talks to one MeshAPI-compatible root with one key, through an injected AsyncClient."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_retry: Callable[[MeshImageError, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.root = settings.api_root.rstrip("/")
        self._sleep = sleep
        self._on_retry = on_retry
        self._key = settings.api_key.reveal() if settings.api_key else None
        self._check_transport_security()

    def _require_key(self) -> None:
        """No key for a remote API: say so before sending anything (loopback servers may not need one)."""
        host = urlsplit(self.root).hostname or ""
        if not self._key and not self.settings.offline and not is_loopback(host):
            raise AuthenticationError(
                f"No API key is set for {host}.",
                hint="Set MESHAPI_API_KEY (or MESH_API_KEY), or run %meshimg_config --login "
                "(mesh_magic.login()). To try without a key, use base_url='offline'.",
            )

    def _check_transport_security(self) -> None:
        parts = urlsplit(self.root)
        if (
            self._key
            and parts.scheme == "http"
            and not self.settings.offline
            and not is_loopback(parts.hostname or "")
            and os.environ.get(ALLOW_HTTP_ENV) != "1"
        ):
            raise InvalidOptionError(
                f"Refusing to send the API key over plain http:// to {parts.hostname}. "
                f"Use https://, or set {ALLOW_HTTP_ENV}=1 if you really mean it."
            )

    def _auth_headers(self, url: str) -> dict[str, str]:
        # Only URLs under the API root get the key, so no other host ever sees it.
        if self._key and (url == self.root or url.startswith(self.root + "/")):
            return {"Authorization": f"Bearer {self._key}"}
        return {}

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # -- public operations -------------------------------------------------

    async def generate(self, request: ImageRequest, on_event: EventCallback | None = None
                       ) -> Generation:
        """POST one generation (retrying where safe) and return its images."""
        self._require_key()
        url = f"{self.root}/images/generations"
        body = request.body()
        limit = max_body_bytes(request.n)
        attempt = 0
        while True:
            try:
                return await self._within_timeout(
                    self._generate_once(url, body, request, limit, on_event)
                )
            except _Retryable as retry:
                wait = retry.wait if retry.wait is not None else backoff_delay(attempt)
                if attempt >= self.settings.max_retries:
                    if isinstance(retry.error, ServerError) and attempt == 0:
                        retry.error.hint = (
                            "The gateway is temporarily unavailable (not retried: max_retries "
                            "is 0): try again shortly."
                        )
                    raise retry.error from None
                if wait > MAX_RETRY_WAIT:
                    retry.error.message += f" (the server asks to wait {wait:.0f} s)"
                    if isinstance(retry.error, RateLimitError):
                        retry.error.retry_after = wait
                    raise retry.error from None
                attempt += 1
                if self._on_retry:
                    self._on_retry(retry.error, wait)
                await self._sleep(wait)
            except asyncio.TimeoutError:
                raise APITimeoutError(
                    f"No complete answer within {self.settings.timeout:g} s from {request.model}."
                ) from None

    async def _within_timeout(self, work: Coroutine[Any, Any, Generation]) -> Generation:
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
            done, _ = await asyncio.wait({task}, timeout=self.settings.timeout)
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

    async def list_models(self, kind: str | None = "image") -> list[dict[str, Any]]:
        self._require_key()
        url = f"{self.root}/models"
        params = {"type": kind} if kind else None
        try:
            response = await self.http.get(
                url, params=params, headers=self._headers(url), timeout=min(self.settings.timeout, 60)
            )
        except httpx.TimeoutException:
            raise APITimeoutError("Listing models timed out.") from None
        except httpx.HTTPError as exc:
            raise APIConnectionError(self._redact(f"Could not list models: {_describe(exc)}")) from None
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.headers, response.content, redact=self._secrets
            )
        if response.status_code >= 300:  # never followed: the key must not go to another host
            raise ResponseError(
                f"The API redirected (HTTP {response.status_code}); set base_url to the final address.",
                status=response.status_code, request_id=response.headers.get("x-request-id"),
            )
        payload = load_json(response.content, what="model list")
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]  # OpenAI-style list envelope
        if not isinstance(payload, list):
            raise ResponseError("The model list is not a JSON array.")
        return [m for m in payload if isinstance(m, dict) and m.get("id")]

    async def download(self, url: str) -> bytes:
        """Fetch an image URL with no Authorization header, bounded in size."""
        try:
            async with self.http.stream(
                "GET", url, headers={"User-Agent": USER_AGENT}, follow_redirects=True,
                timeout=min(self.settings.timeout, 120),
            ) as response:
                if response.status_code >= 400:
                    raise ResponseError(
                        f"The image URL answered HTTP {response.status_code}.",
                        status=response.status_code,
                    )
                return await _read_limited(response, MAX_IMAGE_BYTES, "image download")
        except httpx.TimeoutException:
            raise ResponseError("Downloading the image URL timed out.") from None
        except httpx.HTTPError as exc:
            raise ResponseError(f"Downloading the image URL failed: {_describe(exc)}") from None

    # -- internals ---------------------------------------------------------

    @property
    def _secrets(self) -> tuple[str, ...]:
        return (self._key,) if self._key else ()

    def _headers(self, url: str) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json", **self._auth_headers(url)}

    async def _generate_once(
        self, url: str, body: dict[str, Any], request: ImageRequest, limit: int,
        on_event: EventCallback | None,
    ) -> Generation:
        headers = self._headers(url)
        if request.stream:
            headers["Accept"] = "text/event-stream"
        sent = False
        request_id: str | None = None
        try:
            async with self.http.stream(
                "POST", url, json=body, headers=headers, timeout=self.settings.timeout,
                follow_redirects=False,
            ) as response:
                sent = True
                request_id = response.headers.get("x-request-id")
                status = response.status_code
                if status >= 300:
                    raw = await _read_limited(response, 1024 * 1024, "error body", truncate=True)
                    error = (
                        error_from_response(status, response.headers, raw, redact=self._secrets)
                        if status >= 400
                        else ResponseError(
                            f"The API redirected (HTTP {status}); set base_url to the final address.",
                            status=status, request_id=request_id,
                        )
                    )
                    if status in RETRY_STATUSES:
                        wait = getattr(error, "retry_after", None)
                        if wait is None:  # 502/503/504 may send Retry-After too
                            wait = parse_retry_after(response.headers.get("retry-after"))
                        raise _Retryable(error, wait)
                    raise error
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" in content_type:
                    return await self._read_stream(response, request, request_id, on_event, limit)
                raw = await _read_limited(response, limit, "response")
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the server, so retrying cannot bill twice.
            if not sent:
                raise _Retryable(APIConnectionError(self._redact(
                    f"Could not connect to {urlsplit(url).netloc}: {_describe(exc)}")), None
                ) from None
            raise APIConnectionError(self._redact(_describe(exc)), hint=_SENT_HINT) from None
        except httpx.TimeoutException:
            raise APITimeoutError(
                f"The request to {request.model} timed out after {self.settings.timeout:g} s."
            ) from None
        except httpx.HTTPError as exc:
            raise APIConnectionError(
                self._redact(f"The connection broke during the response: {_describe(exc)}"),
                request_id=request_id, hint=_SENT_HINT,
            ) from None
        try:
            parsed = parse_generation(load_json(raw))
        except ResponseError as exc:
            exc.request_id = request_id
            raise
        return await self._materialise(parsed, request, request_id)

    async def _read_stream(
        self, response: httpx.Response, request: ImageRequest, request_id: str | None,
        on_event: EventCallback | None, limit: int,
    ) -> Generation:
        """Read MeshAPI `image.chunk` or OpenAI `image_generation.*` events to the end.

        What arrived before a failure is kept: images already completed come back
        with the failure in `Generation.errors`; with none, the raised error
        carries the last partial image (`error.partial_image`).
        """
        from httpx_sse import EventSource

        final: dict[str, Any] | None = None
        completed: list[RawItem] = []
        usage: dict[str, Any] = {}
        created: int | None = None
        partial: bytes | None = None
        failure: MeshImageError | None = None
        received = 0
        try:
            async for sse in EventSource(response).aiter_sse():
                received += len(sse.data)
                if received > limit:  # the same bound as a plain body: a stream is no way around it
                    raise ResponseError(
                        f"The stream exceeded the {limit // (1024 * 1024)} MiB limit; refusing to load it.",
                        request_id=request_id,
                    )
                event = classify_event(sse.event, sse.data)
                if event.kind == "done":
                    break
                if event.kind == "error":
                    err = event.payload["error"]
                    message = err.get("message") if isinstance(err, dict) else str(err)
                    code = err.get("code") if isinstance(err, dict) else None
                    failure = ServerError(  # servers echo input: scrub the code as well
                        self._redact(f"The stream failed: {message or 'unknown error'}"),
                        code=self._redact(str(code)) if code else None,
                        request_id=event.payload.get("request_id") or request_id,
                    )
                    break
                if event.kind == "final":
                    final = event.payload
                elif event.kind == "image" and event.b64:
                    completed.append(RawItem(index=len(completed), b64=event.b64))
                    if isinstance(event.payload.get("usage"), dict):
                        usage = event.payload["usage"]
                    stamp = event.payload.get("created")
                    if isinstance(stamp, int) and not isinstance(stamp, bool):
                        created = stamp
                elif event.kind == "partial" and event.b64:
                    partial = _try_b64(event.b64)
                if on_event and event.kind != "ignore":
                    on_event(event)
        except MeshImageError as exc:
            failure = exc
        except httpx.HTTPError as exc:
            failure = APIConnectionError(
                self._redact(f"The stream broke: {_describe(exc)}"), request_id=request_id,
                hint="The connection dropped mid-stream (not retried: it may be billed). "
                "Images that arrived are kept; run the cell again for the rest.",
            )
        try:
            if final is not None:
                # The result is complete; a hiccup after it (no [DONE]) changes nothing.
                failure = None
                parsed = parse_generation(final)
            elif completed:
                parsed = ParsedGeneration(created, completed, [], usage, {})
            else:
                raise failure or ResponseError(
                    "The stream ended before the image arrived.", request_id=request_id
                )
        except MeshImageError as exc:
            exc.partial_image = partial  # type: ignore[attr-defined]
            raise exc from None
        generation = await self._materialise(parsed, request, request_id, source="stream")
        if failure is not None and len(completed) < request.n:
            failure.message += f" ({len(completed)} of {request.n} images had arrived)"
            generation.errors.append(failure)
        return generation

    async def _materialise(
        self, parsed: ParsedGeneration, request: ImageRequest, request_id: str | None,
        source: str | None = None,
    ) -> Generation:
        """Turn raw items into checked images; a bad item fails alone, the others survive."""
        answered = _ANSWERED.get()
        if answered is not None:
            answered[0] = True  # the API part is over: downloads have their own timeouts
        result = Generation(request_id=request_id, usage=dict(parsed.usage))
        for _, exc in parsed.item_errors:
            exc.request_id = request_id
            result.errors.append(exc)
        created = parsed.created or int(time.time())
        outcomes = await asyncio.gather(
            *(self._item_bytes(item) for item in parsed.items), return_exceptions=True
        )
        for item, outcome in zip(parsed.items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, MeshImageError):
                    raise outcome
                outcome.request_id = outcome.request_id or request_id
                result.errors.append(outcome)
                continue
            try:
                info = inspect_image(outcome, what=f"image {item.index + 1} from {request.model}")
            except ResponseError as exc:
                exc.request_id = request_id
                result.errors.append(exc)
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


def _canonical_b64(text: str) -> bytes | None:
    """Decode base64 that needs no clean-up (no whitespace, padded), else None.

    The common case, and it skips `decode_b64`'s whitespace-stripping copies of a
    multi-megabyte string; anything else (or an error) goes through `decode_b64`.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _try_b64(text: str) -> bytes | None:
    try:
        return decode_b64(text)
    except ResponseError:
        return None


class _Retryable(Exception):
    def __init__(self, error: MeshImageError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


async def _read_limited(
    response: httpx.Response, limit: int, what: str, *, truncate: bool = False
) -> bytes:
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


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text

