"""The MeshAPI-compatible Starlette app: API routes, image files and /_mesh control routes."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from . import _images
from ._edit_validation import validate_edit
from ._edits import EditMaker
from ._faults import Fault
from ._generate import mesh_stream, openai_stream
from ._middleware import FAULT_KEY, MeshMiddleware, quiet_injected_resets
from ._models import find_model, listed, public, uses_openai_stream
from ._references import generation_references, image_maker
from ._responses import (
    REQUEST_ID_KEY,
    ApiError,
    Receive,
    Scope,
    Send,
    ValidationFailed,
    loads,
    mesh_envelope,
)
from ._state import MeshState, RecordedRequest
from ._validation import parse_body, validate


def _request_id(request: Request) -> str:
    return str(request.scope[REQUEST_ID_KEY])


def _fault(request: Request) -> Fault | None:
    return request.scope.get(FAULT_KEY)


def _mesh_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = mesh_envelope(code, message, _request_id(request), details=details)
    return JSONResponse(body, status_code=status, headers=headers)


class _Routes:
    """Route handlers bound to one server's state."""

    def __init__(self, state: MeshState) -> None:
        self.state = state

    def _unauthorized(self, request: Request) -> JSONResponse | None:
        key = self.state.api_key
        if key is None:
            return None  # offline / open mode: any token, or none, will do
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() == key:
            return None
        return _mesh_error(
            request,
            401,
            "unauthorized",
            "Missing or invalid API key",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _base_url(self, request: Request) -> str:
        return self.state.image_base_url or str(request.base_url).rstrip("/")

    async def generations(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        try:
            body = parse_body(await request.body())
            gen = validate(body)
            references = (
                await anyio.to_thread.run_sync(generation_references, body, gen) if "image" in body else ()
            )
        except ValidationFailed as exc:
            return JSONResponse({"detail": exc.errors}, status_code=422)
        except ApiError as exc:
            return _mesh_error(request, exc.status, exc.code, exc.message, exc.details)
        fault = _fault(request)
        # MeshAPI's image.chunk stream, as the official SDK types it; OpenAI's typed events
        # only when partial images are asked of an OpenAI model (the client reads both).
        openai_style = uses_openai_stream(gen.model) and gen.partial_images > 0
        maker = image_maker(
            gen,
            references,
            label=self._label(),
            file_base_url=self._base_url(request),
            store=self.state.images,
            force_b64=gen.stream and openai_style,
        )
        message = (
            fault.message
            if fault and fault.message
            else "The upstream provider failed while generating the image."
        )
        if gen.stream:
            stream = (openai_stream if openai_style else mesh_stream)(
                maker, self.state.latency, fault, message
            )
            return StreamingResponse(
                stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        await anyio.sleep(self.state.latency)
        items = await maker.items(fault)
        return JSONResponse(maker.body(items, fault))

    async def edits(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        raw = await request.body()
        try:
            # Decoding the images is CPU work: off the event loop, like rendering.
            edit = await anyio.to_thread.run_sync(validate_edit, raw)
        except ValidationFailed as exc:
            return JSONResponse({"detail": exc.errors}, status_code=422)
        except ApiError as exc:
            return _mesh_error(request, exc.status, exc.code, exc.message, exc.details)
        fault = _fault(request)
        maker = EditMaker(
            edit,
            label=self._label(),
            file_base_url=self._base_url(request),
            store=self.state.images,
        )
        await anyio.sleep(self.state.latency)
        items = await maker.items(fault)
        return JSONResponse(maker.body(items, fault))

    def _label(self) -> str:
        return "OFFLINE PREVIEW" if self.state.offline else "TEST SERVER PREVIEW"

    async def models(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        query = request.query_params
        return JSONResponse(listed(query.get("type"), query.get("free"), query.get("provider")))

    async def model(self, request: Request) -> Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        entry = find_model(request.path_params["model_id"])
        if entry is None:  # FastAPI's shape, as the real GET /v1/models/{id} answers
            return JSONResponse({"detail": "Model not found"}, status_code=404)
        return JSONResponse(public(entry))

    async def file(self, request: Request) -> Response:
        name = request.path_params["name"]
        stored = self.state.images.get(name)
        fault = _fault(request)
        kind = fault.kind if fault else None
        if kind == "redirect":
            # By default to an alias of the same image, so following it still works.
            target = fault.location if fault and fault.location else f"{self._base_url(request)}/cdn/{name}"
            return RedirectResponse(target, status_code=302)
        if kind == "not_image":
            return Response(_images.not_an_image(), media_type="image/png")
        if kind == "huge_image":
            return Response(_images.decompression_bomb(), media_type="image/png")
        if kind == "truncated_image":
            data = stored[0][: len(stored[0]) // 2] if stored else _images.truncated_png()
            return Response(data, media_type=stored[1] if stored else "image/png")
        return self._serve_file(request, stored)

    async def cdn_file(self, request: Request) -> Response:
        return self._serve_file(request, self.state.images.get(request.path_params["name"]))

    def _serve_file(self, request: Request, stored: tuple[bytes, str, str] | None) -> Response:
        if stored is None:
            return _mesh_error(
                request, 404, "file_not_found", "This image link has expired or never existed."
            )
        data, mime, _ = stored
        return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    # --- control routes (no auth: only tests talk to them) ---

    async def list_requests(self, request: Request) -> Response:
        return JSONResponse([r.to_dict() for r in list(self.state.requests)])

    async def list_faults(self, request: Request) -> Response:
        return JSONResponse([f.to_dict() for f in self.state.faults.pending()])

    async def add_faults(self, request: Request) -> Response:
        try:
            payload = loads(await request.body())
            entries = payload if isinstance(payload, list) else [payload]
            faults = [Fault.from_dict(entry) for entry in entries]
        except (ValueError, TypeError) as exc:
            return _mesh_error(request, 400, "invalid_fault", str(exc))
        for fault in faults:
            self.state.add_fault(fault)
        return JSONResponse([f.to_dict() for f in self.state.faults.pending()])

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def set_latency(self, request: Request) -> Response:
        try:
            latency = float(loads(await request.body())["latency"])
        except (ValueError, TypeError, KeyError) as exc:
            return _mesh_error(request, 400, "invalid_latency", f'expected {{"latency": seconds}}: {exc}')
        self.state.latency = max(0.0, latency)
        return JSONResponse({"latency": self.state.latency})


async def _http_error(request: Request, exc: Exception) -> Response:
    # FastAPI's shape for unknown paths and methods, as the real service answers them.
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class MeshApp:
    """The ASGI app. `state_log` is its MeshState: request log, faults, in-flight counts."""

    def __init__(self, state: MeshState) -> None:
        self.state_log = state
        routes = _Routes(state)
        self.starlette = Starlette(
            routes=[
                Route("/v1/images/generations", routes.generations, methods=["POST"]),
                Route("/v1/images/edits", routes.edits, methods=["POST"]),
                Route("/v1/models", routes.models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", routes.model, methods=["GET"]),
                Route("/v1/files/{name}", routes.file, methods=["GET"]),
                Route("/cdn/{name}", routes.cdn_file, methods=["GET"]),
                Route("/_mesh/requests", routes.list_requests, methods=["GET"]),
                Route("/_mesh/faults", routes.list_faults, methods=["GET"]),
                Route("/_mesh/faults", routes.add_faults, methods=["POST"]),
                Route("/_mesh/reset", routes.reset, methods=["POST"]),
                Route("/_mesh/stats", routes.stats, methods=["GET"]),
                Route("/_mesh/latency", routes.set_latency, methods=["POST"]),
            ],
            exception_handlers={HTTPException: _http_error},
        )
        self._asgi = MeshMiddleware(self.starlette, state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state_log.requests

    @property
    def max_in_flight(self) -> int:
        return self.state_log.max_in_flight

    @property
    def latency(self) -> float:
        return self.state_log.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.state_log.latency = value

    def add_fault(self, fault: Fault) -> None:
        self.state_log.add_fault(fault)

    def reset(self) -> None:
        self.state_log.reset()


def create_app(
    *,
    api_key: str | None = None,
    latency: float = 0.0,
    image_base_url: str | None = None,
    offline: bool = False,
) -> MeshApp:
    """A MeshAPI-compatible ASGI app; api_key None accepts any or no Authorization."""
    quiet_injected_resets()
    state = MeshState(api_key=api_key, latency=latency, image_base_url=image_base_url, offline=offline)
    return MeshApp(state)
