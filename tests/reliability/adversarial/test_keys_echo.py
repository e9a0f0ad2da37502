"""Class 3: a server that echoes the key back, in every place an answer can carry text.

Each scenario scripts the hostile server to put SENTINEL_KEY in one field (an error
message, a request id, a revised prompt, an image URL, a stream event, a header
httpcore logs at DEBUG, a model name), runs a real call over loopback, and searches
everything that came out: the raised error (texts, attributes, frame locals, pickle),
the result and its HTML, item errors, the store's files, DEBUG logs of httpx and
httpcore, stdout and stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic import MeshImageError
from tests.reliability.adversarial.hostile import HostileServer, Reply, Seen, png_answer, sse
from tests.reliability.adversarial.leaks import Hunt, hunt_error
from tests.support.images import b64, tagged_png
from tests.support.sentinel import SENTINEL_KEY as KEY

pytestmark = pytest.mark.adversarial("3 secrets echoed by the server")

GEN = "/v1/images/generations"
LOGGERS = ("httpx", "httpcore", "mesh_magic")


def on_generation(reply: Callable[[Seen], Reply]) -> Callable[[Seen], Reply | None]:
    return lambda seen: reply(seen) if seen.path.startswith(GEN) else None


def envelope(status: int, **error: Any) -> Reply:
    return Reply(status, {"error": {"code": "bad", "message": "no", **error}, "request_id": "req_1"})


ERROR_ECHOES: dict[str, Callable[[Seen], Reply]] = {
    "400 message": lambda s: envelope(400, message=f"bad key {KEY}"),
    "401 message": lambda s: envelope(401, message=f"key {KEY} is not valid"),
    "402 message": lambda s: envelope(402, message=f"{KEY} has no balance"),
    "403 message": lambda s: envelope(403, message=f"{KEY} suspended"),
    "404 message": lambda s: envelope(404, message=f"no model for {KEY}"),
    "422 message": lambda s: envelope(422, message=f"Bearer {KEY}"),
    "429 message": lambda s: envelope(429, message=f"slow down {KEY}", retry_after_seconds=999),
    "500 message": lambda s: envelope(500, message=f"upstream said Bearer {KEY}"),
    "501 message": lambda s: envelope(501, message=f"{KEY} cannot"),
    "502 message": lambda s: envelope(502, message=f"gateway {KEY}"),
    "503 message": lambda s: envelope(503, message=f"down {KEY}"),
    "400 code": lambda s: envelope(400, code=KEY),
    "401 code": lambda s: envelope(401, code=f"invalid_{KEY}"),
    "400 request_id in body": lambda s: Reply(400, {"error": {"message": "x"}, "request_id": KEY}),
    "500 request_id in body": lambda s: Reply(500, {"error": {"message": "x"}, "request_id": f"r-{KEY}"}),
    "400 x-request-id header": lambda s: Reply(400, {"error": {"message": "x"}}, [("x-request-id", KEY)]),
    "503 x-request-id header": lambda s: Reply(503, b"", [("x-request-id", f"id-{KEY}")]),
    "422 details": lambda s: envelope(
        422, details=[{"loc": ["body", KEY], "msg": f"bad {KEY}", "type": "value_error"}]
    ),
    "422 fastapi detail list": lambda s: Reply(422, {"detail": [{"loc": ["body", "n"], "msg": KEY}]}),
    "400 fastapi detail string": lambda s: Reply(400, {"detail": f"echo {KEY}"}),
    "400 error as a string": lambda s: Reply(400, {"error": f"echo {KEY}"}),
    "500 html page": lambda s: Reply(
        500, f"<html><body>Bearer {KEY}</body></html>", [("Content-Type", "text/html")]
    ),
    "500 plain text": lambda s: Reply(500, f"Authorization: Bearer {KEY}", [("Content-Type", "text/plain")]),
    "401 json-escaped key": lambda s: Reply(401, json.dumps({"error": {"message": KEY}}).encode()),
    "302 location": lambda s: Reply(302, b"", [("Location", f"https://evil.example/{KEY}")]),
    "307 location": lambda s: Reply(307, b"", [("Location", f"http://127.0.0.1:1/?k={KEY}")]),
    "400 header echo": lambda s: Reply(
        400, {"error": {"message": "x"}}, [("X-Echo", s.headers["Authorization"])]
    ),
    "429 retry-after": lambda s: Reply(429, {"error": {"message": "x"}}, [("Retry-After", KEY)]),
}

SUCCESS_ECHOES: dict[str, Callable[[Seen], Reply]] = {
    "revised_prompt": lambda s: Reply(200, png_answer(revised_prompt=f"a cat, key {KEY}")),
    "revised_prompt only the key": lambda s: Reply(200, png_answer(revised_prompt=KEY)),
    "x-request-id header": lambda s: Reply(200, png_answer(), [("x-request-id", KEY)]),
    "request_id in body": lambda s: Reply(200, {**png_answer(), "request_id": KEY}),
    "usage": lambda s: Reply(200, {**png_answer(), "usage": {"note": KEY, "total_tokens": 1}}),
    "size field": lambda s: Reply(200, {**png_answer(), "size": KEY, "quality": KEY}),
    "response header echo": lambda s: Reply(200, png_answer(), [("X-Echo", s.headers["Authorization"])]),
    "set-cookie": lambda s: Reply(200, png_answer(), [("Set-Cookie", f"k={KEY}")]),
    "url on this server with the key": lambda s: Reply(
        200,
        {"created": 1, "data": [{"url": f"http://127.0.0.1:{s.headers['Host'].split(':')[1]}/img?t={KEY}"}]},
    ),
    "url that refuses, with the key": lambda s: Reply(
        200, {"created": 1, "data": [{"url": f"http://127.0.0.1:1/{KEY}.png"}]}
    ),
    "unusable url with the key": lambda s: Reply(200, {"created": 1, "data": [{"url": f"ftp://{KEY}"}]}),
    "data uri with the key": lambda s: Reply(
        200, {"created": 1, "data": [{"url": f"data:image/png;base64,{KEY}"}]}
    ),
    "second item echoes": lambda s: Reply(
        200,
        {
            "created": 1,
            "data": [{"b64_json": b64(tagged_png("a"))}, {"b64_json": KEY, "revised_prompt": KEY}],
        },
    ),
    "extra item fields": lambda s: Reply(200, png_answer(note=KEY, **{KEY: KEY})),
}

STREAM_ECHOES: dict[str, Callable[[Seen], Reply]] = {
    "error event message": lambda s: sse({"error": {"message": f"failed for {KEY}", "code": "x"}}),
    "error event code": lambda s: sse({"error": {"message": "failed", "code": KEY}}),
    "error event request_id": lambda s: sse({"error": {"message": "f"}, "request_id": KEY}),
    "error as a string": lambda s: sse({"error": f"boom {KEY}"}),
    "final chunk revised_prompt": lambda s: sse(
        {"object": "image.chunk", "status": "completed", **png_answer(revised_prompt=KEY)}, "[DONE]"
    ),
    "openai completed then error": lambda s: sse(
        {"type": "image_generation.completed", "b64_json": b64(tagged_png("s")), "usage": {"k": KEY}},
        {"error": {"message": KEY}},
    ),
    "partial then error": lambda s: sse(
        {
            "type": "image_generation.partial_image",
            "b64_json": b64(tagged_png("p")),
            "partial_image_index": KEY,
        },
        {"error": {"message": f"cut {KEY}"}},
    ),
    "not json": lambda s: sse(f"{{not json {KEY}"),
    "progress with the key": lambda s: sse(
        {"object": "image.chunk", "status": KEY}, {"error": {"message": KEY}}
    ),
    "stream header echo": lambda s: Reply(
        200,
        f"data: {json.dumps({'error': {'message': 'x'}})}\n\n",
        [("Content-Type", "text/event-stream"), ("X-Echo", s.headers["Authorization"])],
    ),
}


@pytest.fixture
def key_set(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    """The key in the environment only (no test frame holds it), the base URL at the server."""
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    monkeypatch.setenv("MESHAPI_BASE_URL", hostile.base_url)
    mesh_magic.configure(max_retries=0, max_retry_wait=0.5)
    return hostile


def _attempt(call: Callable[[], Any]) -> tuple[Any, MeshImageError | None]:
    try:
        return call(), None
    except MeshImageError as exc:
        return None, exc


def hunt_everything(
    result: Any, error: MeshImageError | None, store: Path, caplog: Any, capsys: Any, where: str
) -> Hunt:
    hunt = Hunt()
    if error is not None:
        hunt_error(hunt, error, f"{where}:raised")
    if result is not None:
        hunt.scan(repr(result), f"{where}:result repr")
        hunt.scan(json.dumps(result._repr_mimebundle_(), default=str), f"{where}:result display")
        for i, image in enumerate(result):
            hunt.scan(json.dumps(image.metadata(), default=str), f"{where}:image {i} metadata")
            hunt.scan(repr(image), f"{where}:image {i} repr")
        for item in result.errors:
            hunt_error(hunt, item.error, f"{where}:item error")
    hunt.scan_tree(store, f"{where}:store")
    hunt.scan("\n".join(caplog.messages), f"{where}:log messages")
    hunt.scan(caplog.text, f"{where}:log text")
    captured = capsys.readouterr()
    hunt.scan(captured.out + captured.err, f"{where}:stdout/stderr")
    return hunt


def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def _run_case(
    script: Callable[[Seen], Reply],
    server: HostileServer,
    store: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    **options: Any,
) -> Hunt:
    _debug_logs(caplog)
    server.script = on_generation(script)
    result, error = _attempt(lambda: mesh_magic.generate("a cat", model="google/imagen-4", **options))
    assert result is not None or error is not None
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore logged nothing at DEBUG"
    hunt = hunt_everything(result, error, store, caplog, capsys, "generate")
    for seen in server.requests:  # the key goes out only in the Authorization header
        others = {k: v for k, v in seen.headers.items() if k.lower() != "authorization"}
        hunt.scan(f"{seen.method} {seen.path} {others}", "a request's line and other headers")
        hunt.scan(seen.body, "a request body")
    return hunt


@pytest.mark.parametrize("case", sorted(ERROR_ECHOES))
def test_error_answers_echoing_the_key(
    case: str, key_set: HostileServer, store: Path, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    _run_case(ERROR_ECHOES[case], key_set, store, caplog, capsys).check()


@pytest.mark.parametrize("case", sorted(SUCCESS_ECHOES))
def test_successful_answers_echoing_the_key(
    case: str, key_set: HostileServer, store: Path, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    _run_case(SUCCESS_ECHOES[case], key_set, store, caplog, capsys, save=str(store / "saved")).check()


@pytest.mark.parametrize("case", sorted(STREAM_ECHOES))
def test_streams_echoing_the_key(
    case: str, key_set: HostileServer, store: Path, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    _run_case(STREAM_ECHOES[case], key_set, store, caplog, capsys, stream=True).check()


def test_the_key_did_reach_the_server_only_in_the_header(key_set: HostileServer) -> None:
    """The scenarios above mean something: the server really had the key to echo."""
    mesh_magic.generate("a cat", model="google/imagen-4")
    assert key_set.sent_keys()[-1] == f"Bearer {KEY}"
    assert all(KEY.encode() not in r.body for r in key_set.requests)


def test_model_list_echoing_the_key(
    key_set: HostileServer, store: Path, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    _debug_logs(caplog)
    models = [{"id": f"evil/{KEY}", "name": f"Model {KEY}", "type": "image", "description": KEY}]
    key_set.script = lambda s: Reply(200, models) if s.path.startswith("/v1/models") else None
    found = mesh_magic.models()
    hunt = hunt_everything(None, None, store, caplog, capsys, "models")
    hunt.scan(repr(found), "models repr")
    hunt.scan(repr([m.raw for m in found]), "models raw")
    hunt.check()


def test_magics_with_an_echoing_server(
    shell: Any,
    key_set: HostileServer,
    published: Any,
    store: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: Any,
) -> None:
    """The same echoes through %%meshimg: every display the shell published is searched."""
    _debug_logs(caplog)
    hunt = Hunt()
    for case in (
        "400 message",
        "500 html page",
        "revised_prompt",
        "x-request-id header",
        "error event message",
    ):
        script = {**ERROR_ECHOES, **SUCCESS_ECHOES, **STREAM_ECHOES}[case]
        key_set.script = on_generation(script)
        flags = "--stream " if case.startswith("error event") else ""
        try:
            shell.run_cell(f"%%meshimg {flags}-m google/imagen-4\na cat")
        except MeshImageError as exc:
            hunt_error(hunt, exc, f"magic {case}")
    for shown in published:
        hunt.scan(json.dumps(shown.data, default=str) + json.dumps(shown.metadata, default=str), "display")
    rest = hunt_everything(None, None, store, caplog, capsys, "magic")
    hunt.seen += rest.seen
    hunt.check()
