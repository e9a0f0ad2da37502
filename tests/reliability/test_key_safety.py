"""Key safety: SENTINEL_KEY never shows up in anything the extension produces.

Every byte these tests produce (output, error texts, full tracebacks, reprs,
log records, saved files, an executed notebook, requests to other hosts) is
searched for the key; the count goes into the suite's "key sightings" (must be 0).
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

import mesh_magic
from mesh_magic.core import config as _config
from mesh_magic.core.catalog import catalog
from mesh_magic.core.config import resolve
from mesh_magic.core.engine.loop import engine
from mesh_magic.core.errors import InvalidOptionError, MeshImageError, ResponseError
from mesh_magic.core.keys import ApiKey
from mesh_magic.render.tables import ConfigTable
from mesh_magic.server import Fault
from tests.reliability.report import REPORT
from tests.support.images import tagged_png
from tests.support.mock_api import MOCK_KEY, sse, use_mock, with_catalog
from tests.support.sentinel import SENTINEL_KEY

pytestmark = pytest.mark.usefixtures("cheap_images", "fast_backoff")

API_PATHS = ("/v1/images/generations", "/v1/models")


def _error_texts(err: BaseException) -> list[str]:
    """Every way an error can be shown, logged or stored."""
    texts = [
        str(err),
        repr(err),
        "".join(traceback.format_exception(err)),
        json.dumps(vars(err), default=repr),
        pickle.dumps(err).decode("latin-1"),
    ]
    render = getattr(err, "_render_traceback_", None)
    if render is not None:
        texts.append("\n".join(render()))
    return texts


def _check(where: str, *blobs: Any) -> None:
    found = sum(REPORT.scan(blob, where) for blob in blobs)
    assert found == 0, f"the key leaked into {where}"


def test_key_never_shown_logged_or_saved(
    sentinel_server: Any,
    shell: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = sentinel_server
    _config.session().set_api_key(SENTINEL_KEY)  # the shell fixture re-installed the session
    _config.configure(base_url=server.base_url, max_retries=1)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mesh_magic", "uvicorn", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    echo = f"invalid key {SENTINEL_KEY} (echoed by a careless server)"
    errors: list[BaseException] = []
    requests: list[Any] = []

    def reset() -> None:
        requests.extend(server.requests)
        server.reset()

    # Successes: b64, url on another host (redirected), data URI, saved with sidecars.
    results = [
        mesh_magic.generate("a lighthouse", size="64x64", n=2, save=tmp_path / "saved"),
        mesh_magic.generate("a harbor", size="64x64", model="google/imagen-4", response_format="url"),
        mesh_magic.generate("a data uri", size="64x64", model="meshapi/data-uri-preview"),
    ]
    server.add_fault(Fault("redirect", path="/v1/files"))
    results.append(
        mesh_magic.generate("a redirect", size="64x64", model="google/imagen-4", response_format="url")
    )
    # Failures, several of them echoing the key back in their bodies.
    faults = [
        Fault("status", status=401, message=echo),
        Fault("status", status=401, envelope="fastapi", message=echo),
        Fault("status", status=422, envelope="fastapi_list", message=echo),
        Fault("status", status=400, envelope="html"),
        Fault("status", status=429, retry_after="3600", message=echo),
        Fault("status", status=503, times=-1, message=echo),
        Fault("stream_error", message=echo),
        Fault("reset"),
        Fault("latency", delay=3),
        Fault("corrupt_b64"),
    ]
    for fault in faults:
        reset()
        server.add_fault(fault)
        try:
            mesh_magic.generate(
                f"fails with {fault.kind} {fault.status or ''}",
                size="64x64",
                stream=fault.kind.startswith("stream"),
                timeout=1,
            )
        except MeshImageError as exc:
            errors.append(exc)
    reset()
    server.add_fault(Fault("status", status=401, path="/v1/models", message=echo))
    catalog().clear()  # the estimates above cached the list: read it again
    with pytest.raises(MeshImageError) as listing:
        mesh_magic.models()
    errors.append(listing.value)
    # Through the magic too: IPython renders these with _render_traceback_.
    reset()
    server.add_fault(Fault("status", status=403, message=echo))
    with pytest.raises(MeshImageError) as magic_error:
        shell.run_cell("%meshimg -s 64x64 a cell that fails")
    errors.append(magic_error.value)
    shell.run_cell("%config MeshImg")
    shell.run_cell("%meshimg_config")
    shell.run_cell("%meshimg -s 64x64 -n 2 a cell that works")

    assert len(errors) == len(faults) + 2, [str(e) for e in errors]
    for err in errors:
        _check(
            f"error {type(err).__name__}", *_error_texts(err), json.dumps(getattr(err, "field_errors", None))
        )
    for result in results:
        bundle = result._repr_mimebundle_()
        _check(
            "result display",
            repr(result),
            json.dumps(bundle, default=repr),
            *(json.dumps(im.metadata(), default=str) for im in result),
            *(repr(im) for im in result),
        )
    settings = resolve()
    _check(
        "settings and config reprs",
        repr(settings),
        str(settings.api_key),
        repr(_config.session()),
        repr(ConfigTable(settings)),
        ConfigTable(settings)._repr_html_(),
        repr(server),
        json.dumps(dict(settings.sources)),
    )
    out, err_out = capsys.readouterr()
    _check("captured stdout/stderr", out, err_out)
    records = caplog.records
    assert any(r.name.startswith("httpx") for r in records), "httpx's DEBUG logs were captured"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        _check(f"log record {record.name}", formatter.format(record), repr(record.args))
    REPORT.scan_tree(tmp_path, "files under tmp")  # the store (images, sidecars, cache) and --save
    assert REPORT.keys.places == [], REPORT.keys.places
    # Requests: the key goes to the API paths only, never to the image host.
    reset()
    to_api = [r for r in requests if r.path in API_PATHS]
    elsewhere = [r for r in requests if r.path not in API_PATHS]
    assert to_api and elsewhere
    assert all(r.headers.get("authorization") == f"Bearer {SENTINEL_KEY}" for r in to_api)
    for request in elsewhere:
        _check(f"request to {request.headers.get('host')}{request.path}", json.dumps(request.to_dict()))


NOTEBOOK_CELLS = [
    "%load_ext mesh_magic",
    "%meshimg_config",
    "%config MeshImg",
    "%%meshimg -n 2 -s 64x64\nA red fox in fresh snow",
    "%meshimg -m openai/dall-e-3 -s 64x64 a harbor at dawn",
    "import mesh_magic\nr = mesh_magic.generate('a teapot', size='64x64', model='google/imagen-4', "
    "response_format='url')\nr",
    "mesh_magic.generate('a kettle', size='64x64', model='black-forest-labs/flux-schnell')",
    "%meshimg_models flux",
    "r[0].metadata()",
]


def test_executed_notebook_has_no_key(
    sentinel_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat

    from tests.support.notebooks import code_notebook, run_notebook

    server = sentinel_server
    echo = f"bad key {SENTINEL_KEY}"
    server.add_fault(Fault("status", status=401, model="openai/dall-e-3", message=echo))
    server.add_fault(
        Fault(
            "status",
            status=422,
            envelope="fastapi_list",
            model="black-forest-labs/flux-schnell",
            message=echo,
        )
    )
    monkeypatch.setenv("MESHAPI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("MESHAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(tmp_path / "nb-store"))
    nb = run_notebook(code_notebook(*NOTEBOOK_CELLS), tmp_path, allow_errors=True)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    text = path.read_bytes()
    _check("the executed notebook (.ipynb JSON)", text)
    REPORT.scan_tree(tmp_path / "nb-store", "the notebook's store")
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    errors = {o["ename"] for o in outputs if o["output_type"] == "error"}
    assert errors == {"AuthenticationError", "InvalidRequestError"}, errors
    images = [
        o
        for o in outputs
        if "image/png" in o.get("data", {})
        or "image/jpeg" in o.get("data", {})
        or "<img" in o.get("data", {}).get("text/html", "")
    ]
    assert len(images) >= 2, "the notebook really generated images"
    assert b"rsk_" in text, "the masked key is shown (and only masked)"
    assert any(r.headers.get("authorization") == f"Bearer {SENTINEL_KEY}" for r in server.requests)


# --- transport rules: http refusal, redirects, image hosts ---------------------------


def _png_body() -> dict[str, Any]:
    return {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(tagged_png("mock")).decode()}],
    }


def test_plain_http_to_a_remote_host_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_png_body())

    engine().set_transport(httpx.MockTransport(with_catalog(handler)))  # nothing can leave the process
    _config.configure(base_url="http://10.255.255.1")
    _config.session().set_api_key(SENTINEL_KEY)
    for call in (lambda: mesh_magic.generate("over http", size="64x64"), mesh_magic.models):
        with pytest.raises(InvalidOptionError) as info:
            call()
        assert "plain http://" in info.value.message and "MESHIMG_ALLOW_INSECURE_HTTP=1" in info.value.message
        _check("http refusal", *_error_texts(info.value))
    assert seen == [], "refused before any connection"
    REPORT.fault("plain http:// to 10.255.255.1", "InvalidOptionError, nothing sent", len(seen), 0.0)

    monkeypatch.setenv("MESHIMG_ALLOW_INSECURE_HTTP", "1")
    result = mesh_magic.generate("over http, allowed", size="64x64")
    assert len(result) == 1 and len(seen) == 1
    assert seen[0].url.host == "10.255.255.1" and seen[0].url.scheme == "http"
    assert seen[0].headers["authorization"] == f"Bearer {SENTINEL_KEY}"


def test_redirect_from_the_api_to_another_host_carries_no_key() -> None:
    api: list[httpx.Request] = []
    other: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.test":
            api.append(request)
            target = f"https://elsewhere.example.test{request.url.path}"
            return httpx.Response(307, headers={"location": target})
        other.append(request)
        return httpx.Response(200, json=_png_body())

    engine().set_transport(httpx.MockTransport(handler))
    _config.configure(base_url="https://api.example.test", max_retries=2)
    _config.session().set_api_key(SENTINEL_KEY)
    with pytest.raises(ResponseError) as info:
        mesh_magic.generate("redirected", size="64x64")
    assert "redirected (HTTP 307)" in info.value.message and "base_url" in info.value.message
    with pytest.raises(ResponseError) as listing:
        mesh_magic.models()
    assert "redirected (HTTP 307)" in listing.value.message
    for err in (info.value, listing.value):
        _check("redirect error", *_error_texts(err))
    assert other == [], "the other host saw nothing"
    # The estimate's catalog read, the generation, the listing: each once, none retried.
    assert [r.url.path for r in api] == ["/v1/models", "/v1/images/generations", "/v1/models"]
    REPORT.fault(
        "API answers 307 to another host", "ResponseError, other host saw nothing", len(api) + len(other), 0.0
    )


@pytest.mark.parametrize(
    "image_url", ["https://api.example.test/v1/files/a.png", "https://cdn.example.test/a.png"]
)
def test_image_urls_get_no_key(image_url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/images/generations":
            return httpx.Response(200, json={"created": 1, "data": [{"url": image_url}]})
        return httpx.Response(200, content=tagged_png("cdn"), headers={"content-type": "image/png"})

    engine().set_transport(httpx.MockTransport(with_catalog(handler)))
    _config.configure(base_url="https://api.example.test")
    _config.session().set_api_key(SENTINEL_KEY)
    result = mesh_magic.generate("an image by url", size="64x64", response_format="url")
    assert len(result) == 1 and len(seen) == 2
    assert seen[0].headers["authorization"] == f"Bearer {SENTINEL_KEY}"
    assert str(seen[1].url) == image_url
    _check(f"download request to {seen[1].url.host}", repr(dict(seen[1].headers)))


# --- a key typed into a cell -----------------------------------------------------------


def test_key_typed_in_a_cell_warns(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(UserWarning, match="notebook source") as caught:
        mesh_magic.configure(api_key=SENTINEL_KEY)
    with pytest.warns(UserWarning, match="notebook source") as caught_magic:
        shell.run_line_magic("meshimg_config", f"api_key={SENTINEL_KEY}")
    for record in [*caught, *caught_magic]:
        _check("the typed-key warning", str(record.message))
        assert "--login" in str(record.message)
    assert _config.session().api_key == ApiKey(SENTINEL_KEY)

    monkeypatch.setattr("getpass.getpass", lambda prompt="": SENTINEL_KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --login keeps the key out of the source: no warning
        shell.run_line_magic("meshimg_config", "--login")


def test_key_holder_masks_and_refuses_pickling() -> None:
    key = ApiKey(SENTINEL_KEY)
    assert repr(key) == str(key) == f"ApiKey(rsk_…{SENTINEL_KEY[-4:]})"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    settings = resolve({"api_key": SENTINEL_KEY, "base_url": "https://api.example.test"})
    _check("Settings repr", repr(settings), str(settings))
    with pytest.raises(TypeError):
        pickle.dumps(settings)


def test_stream_error_code_never_carries_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse({"error": {"code": f"echo:{MOCK_KEY}", "message": "upstream said no"}})
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    use_mock(handler)
    with pytest.raises(mesh_magic.MeshImageError) as caught:
        mesh_magic.generate("echo", stream=True)
    err = caught.value
    shown = f"{err} {err.code} {err.message} {err._render_traceback_()}"
    assert MOCK_KEY not in shown and "upstream said no" in shown
