"""Class 1: the key in frame locals, chained exceptions and pickles of raised errors.

Every way a call can fail (HTTP statuses, retries given up, connections refused or
cut, timeouts, bad bodies, downloads) is raised through the Python API and the
magic, and the error is searched the way `pytest -l` and `%xmode Verbose` would
show it: every local of every frame of its traceback, the stdlib's traceback with
locals, its chain (`__cause__`, `__context__`: both must be None), its attributes
and its pickle. The key is only in the environment, so no test frame holds it.
The subprocess and kernel runs that print the real thing are in test_keys_outputs.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

import mesh_magic
from mesh_magic import MeshImageError
from tests.reliability.adversarial.hostile import HostileServer, Reply, Seen, sse
from tests.reliability.adversarial.leaks import Hunt, hunt_error
from tests.support.images import b64, tagged_png
from tests.support.sentinel import SENTINEL_KEY as KEY

pytestmark = [
    pytest.mark.adversarial("1 key in frame locals and chains"),
    pytest.mark.usefixtures("fast_backoff"),
]

GEN = "/v1/images/generations"


def status(code: int, **headers: str) -> Callable[[Seen], Reply]:
    return lambda s: Reply(code, {"error": {"code": "x", "message": f"HTTP {code}"}}, list(headers.items()))


FAILURES: dict[str, Callable[[Seen], Reply]] = {
    **{f"HTTP {code}": status(code) for code in (400, 401, 402, 403, 404, 409, 413, 418, 422, 501)},
    "HTTP 429 with a long wait": status(429, **{"Retry-After": "3600"}),
    "HTTP 500": status(500),
    "HTTP 502 after retries": status(502),
    "HTTP 503 after retries": status(503),
    "HTTP 504 after retries": status(504),
    "redirect": lambda s: Reply(302, b"", [("Location", "https://elsewhere.example/v1")]),
    "body cut short": lambda s: Reply(200, b'{"data": [', short_by=500),
    "error body cut short": lambda s: Reply(500, b'{"error": ', short_by=500),
    "html page": lambda s: Reply(200, "<html>proxy</html>", [("Content-Type", "text/html")]),
    "invalid json": lambda s: Reply(200, b"{not json", [("Content-Type", "application/json")]),
    "empty data": lambda s: Reply(200, {"data": []}),
    "no data": lambda s: Reply(200, {"images": []}),
    "bad base64": lambda s: Reply(200, {"data": [{"b64_json": "!!!not base64!!!"}]}),
    "not an image": lambda s: Reply(200, {"data": [{"b64_json": b64(b"plain text, not a PNG")}]}),
    "url that 404s": lambda s: Reply(200, {"data": [{"url": f"http://{s.headers['Host']}/missing-404"}]}),
    "url refused": lambda s: Reply(200, {"data": [{"url": "http://127.0.0.1:1/x.png"}]}),
    "stream error event": lambda s: sse({"error": {"message": "upstream failed", "code": "x"}}),
    "stream cut short": lambda s: Reply(
        200,
        b'data: {"object": "image.chunk", "status": "processing"}\n\n',
        [("Content-Type", "text/event-stream")],
        short_by=400,
    ),
    "stream with no image": lambda s: sse({"object": "image.chunk", "status": "processing"}),
    "slow answer": lambda s: Reply(200, {"data": [{"b64_json": b64(tagged_png("late"))}]}, delay=2.0),
}


def _script(server: HostileServer, case: str) -> None:
    reply = FAILURES[case]

    def script(seen: Seen) -> Reply | None:
        if seen.path.startswith("/missing-404"):
            return Reply(404, b"gone")
        return reply(seen) if seen.path.startswith(GEN) else None

    server.script = script


@pytest.fixture
def failing(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> HostileServer:
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    monkeypatch.setenv("MESHAPI_BASE_URL", hostile.base_url)
    mesh_magic.configure(max_retries=2, max_retry_wait=1.0, timeout=0.6)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return hostile


def _errors_of(call: Callable[[], Any]) -> list[MeshImageError]:
    """The error raised, else the per-item errors of the result (one of them must exist)."""
    try:
        result = call()
    except MeshImageError as exc:
        return [exc]
    errors = [item.error for item in result.errors]
    assert errors, f"the call did not fail: {result!r}"
    return errors


def _search(errors: list[MeshImageError], caplog: pytest.LogCaptureFixture, where: str) -> None:
    hunt = Hunt()
    for err in errors:
        hunt_error(hunt, err, where)
    hunt.scan(caplog.text, f"{where}:debug log")
    hunt.check()


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_api_errors_hold_no_key(case: str, failing: HostileServer, caplog: pytest.LogCaptureFixture) -> None:
    _script(failing, case)
    stream = case.startswith("stream")
    errors = _errors_of(lambda: mesh_magic.generate("a cat", model="google/imagen-4", stream=stream))
    sent = [r.headers.get("Authorization") for r in failing.requests if r.path.startswith(GEN)]
    assert sent and set(sent) == {f"Bearer {KEY}"}, "the server really had the key"
    _search(errors, caplog, f"api/{case}")


MAGIC_CASES = [
    "HTTP 401",
    "HTTP 500",
    "HTTP 503 after retries",
    "body cut short",
    "stream cut short",
    "slow answer",
]


@pytest.mark.parametrize("case", MAGIC_CASES)
def test_magic_errors_hold_no_key(
    case: str, shell: Any, failing: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    _script(failing, case)
    flags = "--stream " if case.startswith("stream") else ""
    errors = _errors_of(lambda: shell.run_cell(f"%%meshimg {flags}-m google/imagen-4\na cat").result)
    _search(errors, caplog, f"magic/{case}")


@pytest.mark.parametrize("port", [1, 9])
def test_connection_refused_holds_no_key(
    port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    mesh_magic.configure(base_url=f"http://127.0.0.1:{port}", max_retries=1, max_retry_wait=1.0)
    caplog.set_level(logging.DEBUG, logger="httpcore")
    errors = _errors_of(lambda: mesh_magic.generate("a cat", model="google/imagen-4"))
    assert type(errors[0]).__name__ == "APIConnectionError"
    _search(errors, caplog, f"refused/{port}")


def test_model_list_failure_holds_no_key(failing: HostileServer, caplog: pytest.LogCaptureFixture) -> None:
    failing.script = lambda s: Reply(401, {"error": {"message": "no"}}) if "/models" in s.path else None
    errors = _errors_of(lambda: mesh_magic.models())
    _search(errors, caplog, "models")


def test_a_comparison_with_one_failing_model_holds_no_key(
    failing: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    def script(seen: Seen) -> Reply | None:
        if seen.path.startswith(GEN) and b"flux" in seen.body:
            return Reply(500, {"error": {"message": "boom"}})
        return None

    failing.script = script
    result = mesh_magic.generate("a cat", model="google/imagen-4,black-forest-labs/flux-schnell")
    assert len(result) == 1 and len(result.errors) == 1
    _search([e.error for e in result.errors], caplog, "compare")


@pytest.mark.parametrize("blocker", ["config folder is a file", "key file is a folder"])
def test_a_failed_remember_holds_no_key(
    blocker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing the key failed: the error (and its frames, chain, pickle) must not hold its bytes."""
    from mesh_magic.core import key_sources

    target = key_sources.key_file()
    if blocker == "config folder is a file":
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        target.parent.write_text("not a folder")
    else:
        target.mkdir(parents=True)
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    mesh_magic.login(KEY[:4] + KEY[4:])  # built inline: no test frame holds it
    errors = _errors_of(lambda: mesh_magic.login(KEY, remember=True))
    assert type(errors[0]).__name__ == "InvalidOptionError", errors
    _search(errors, caplog, f"remember/{blocker}")


def _chain(err: BaseException | None) -> list[BaseException]:
    found: list[BaseException] = []
    while err is not None and err not in found:
        found.append(err)
        err = err.__cause__ or err.__context__
    return found


def _echoing_answer(stream: bool) -> Callable[[Seen], Reply | None]:
    answer = {"data": [{"b64_json": b64(tagged_png("x")), "revised_prompt": KEY}], "note": KEY}
    reply = sse({"object": "image.chunk", "status": "completed", **answer}) if stream else Reply(200, answer)
    return lambda seen: reply if seen.path.startswith(GEN) else None


@pytest.mark.parametrize("where", ["inspect_image", "parse_generation", "stream"])
def test_a_bug_inside_the_client_shows_no_echoed_key_in_its_frames(
    where: str, failing: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw exception (a bug) deep in the client, while the answer held an echoed key.

    Whatever the engine makes of it, no frame of the traceback (nor of its chain) may hold
    the answer's unscrubbed bytes: bodies are scrubbed as soon as they are read.
    """
    import traceback

    from mesh_magic.core.http import client

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    if where == "stream":
        from mesh_magic.core.http import streaming

        monkeypatch.setattr(streaming._StreamState, "feed", broken)
    else:
        monkeypatch.setattr(client, where, broken)
    failing.script = _echoing_answer(stream=where == "stream")  # built there: this frame holds no key
    with pytest.raises(BaseException) as info:  # noqa: PT011 - any type: its frames are what matters
        result = mesh_magic.generate("a cat", model="google/imagen-4")
        raise AssertionError(f"no error: {result!r} {[e.error for e in result.errors]}")
    hunt = Hunt()
    for err in _chain(info.value):
        shown = traceback.TracebackException.from_exception(err, capture_locals=True).format()
        hunt.scan("".join(shown), f"{where}: {type(err).__name__} with locals")
    hunt.check()
