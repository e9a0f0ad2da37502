"""The key never leaves the Authorization header of API requests.

A server that only accepts a sentinel key runs a representative set of magics;
everything they produce (display data, stdout/stderr, log records, exception
text, reprs, saved files, the store) is searched for the sentinel.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic import MeshImageError, configure
from mesh_magic.core import config as _config
from mesh_magic.server import Fault, MeshServer
from tests.support.published import Publications
from tests.support.servers import file_requests, generations
from tests.support.shell import run


class Evidence:
    """Everything a user, a log file or a saved notebook could end up holding."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        text = value if isinstance(value, str) else repr(value)
        self.items.append((where, text))

    def add_tree(self, where: str, folder: Path) -> int:
        count = 0
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                count += 1
                data = path.read_bytes()
                assert self.key.encode() not in data, f"key written to {path}"
                self.add(f"{where}:{path.name}", data.decode("latin-1"))
                self.add(f"{where}:name", str(path))
        return count

    def check(self) -> None:
        leaks = [where for where, text in self.items if self.key in text]
        assert leaks == [], f"the key leaked into: {leaks}"
        # Even a fragment long enough to identify it must not appear.
        middle = self.key[4:-4]
        fragments = [where for where, text in self.items if middle in text]
        assert fragments == [], f"part of the key leaked into: {fragments}"


@pytest.fixture
def evidence(sentinel_server: MeshServer) -> Evidence:
    assert sentinel_server.api_key is not None
    return Evidence(sentinel_server.api_key)


def collect_error(evidence: Evidence, where: str, err: BaseException) -> None:
    evidence.add(f"{where}:str", str(err))
    evidence.add(f"{where}:repr", repr(err))
    evidence.add(f"{where}:args", err.args)
    evidence.add(f"{where}:vars", vars(err))
    if isinstance(err, MeshImageError):
        evidence.add(f"{where}:tb", "\n".join(err._render_traceback_()))
        evidence.add(f"{where}:pickle", pickle.dumps(err).decode("latin-1"))


def test_successful_magics_never_show_the_key(
    shell: Any,
    sentinel_server: MeshServer,
    published: Publications,
    evidence: Evidence,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    clean_environment: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = evidence.key
    save_dir = tmp_path / "saved"

    result = run(shell, f"%%meshimg -n 2 -s 128x128 --save {save_dir} -o fox\na red fox")
    url_result = run(shell, "%%meshimg -m google/imagen-4 --response-format url -s 96x96\nurl fox")
    streamed = run(shell, "%%meshimg -m google/imagen-4 --stream -s 96x96\nstreamed fox")
    data_uri = run(shell, "%meshimg -m meshapi/data-uri-preview --response-format url -s 96x96 dx")
    run(shell, "%meshimg_config cache=on")
    cached = run(shell, "%%meshimg -n 2 -s 128x128\na red fox")
    history = run(shell, "%meshimg_history")
    config_table = run(shell, "%meshimg_config")
    models = run(shell, "%meshimg_models")
    run(shell, "%config MeshImg")
    python_result = mesh_magic.generate("python fox", size="96x96")

    assert len(result) == 2 and len(url_result) == 1 and len(streamed) == 1
    assert len(data_uri) == 1 and all(im.cached for im in cached) and len(history) >= 4

    # The key did travel where it must: to the API, in the header.
    for request in generations(sentinel_server):
        assert request.headers["authorization"] == f"Bearer {key}"
    downloads = file_requests(sentinel_server)
    assert len(downloads) == 2  # the url answer, and the stream's (imagen links by default)
    for download in downloads:
        assert "authorization" not in download.headers
        assert key not in json.dumps(download.headers) + download.path + download.query
    for request in sentinel_server.requests:
        assert key not in json.dumps(request.json) + request.path + request.query

    for shown in published:
        evidence.add("display", json.dumps(shown.data))
        evidence.add("display-metadata", json.dumps(shown.metadata))
    for name, value in [
        ("result", result),
        ("url", url_result),
        ("stream", streamed),
        ("cached", cached),
        ("history", history),
        ("python", python_result),
    ]:
        evidence.add(f"{name}:repr", repr(value))
        evidence.add(f"{name}:bundle", json.dumps(value._repr_mimebundle_(), default=str))
        for image in value:
            evidence.add(f"{name}:image", repr(image))
            evidence.add(f"{name}:meta", json.dumps(image.metadata(), default=str))
    evidence.add("config-table", repr(config_table))
    evidence.add("config-html", config_table._repr_html_())
    evidence.add("models", repr(models) + models._repr_html_())
    settings = _config.resolve()
    evidence.add("settings", repr(settings))
    evidence.add("settings-str", str(settings))
    evidence.add("session", repr(_config.session()))
    evidence.add("session-traits", repr(_config.session().trait_values()))
    evidence.add("session-values", repr(_config.session().session_values()))
    evidence.add("shell-config", repr(shell.config))
    evidence.add("user_ns", repr({k: v for k, v in shell.user_ns.items() if not k.startswith("_")}))
    with pytest.raises(TypeError):
        pickle.dumps(settings)
    captured = capsys.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    evidence.add("logs", "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records))
    assert evidence.add_tree("saved", save_dir) == 4
    assert evidence.add_tree("store", clean_environment) >= 8
    evidence.check()


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=401),
        Fault(kind="status", status=500, times=-1),
        Fault(kind="status", status=502, envelope="html", times=-1),
        Fault(kind="status", status=422, envelope="fastapi_list", times=-1),
        Fault(kind="status", status=429, retry_after="1", times=-1),
        Fault(kind="malformed_json"),
        Fault(kind="stream_error"),
    ],
    ids=lambda f: f"{f.kind}-{f.status or ''}",
)
def test_errors_never_show_the_key(
    shell: Any,
    sentinel_server: MeshServer,
    published: Publications,
    evidence: Evidence,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    clean_environment: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    configure(max_retries=0)
    sentinel_server.add_fault(fault)
    stream = "--stream " if fault.kind == "stream_error" else ""
    with pytest.raises(MeshImageError) as info:
        run(shell, f"%%meshimg {stream}-s 96x96\na red fox")
    collect_error(evidence, "magic", info.value)
    for shown in published:
        evidence.add("display", json.dumps(shown.data) + json.dumps(shown.metadata))
    captured = capsys.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    evidence.add("logs", "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records))
    if clean_environment.exists():
        evidence.add_tree("store", clean_environment)
    evidence.check()


def test_a_server_echoing_the_key_is_redacted(
    shell: Any,
    sentinel_server: MeshServer,
    published: Publications,
    evidence: Evidence,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = evidence.key
    sentinel_server.add_fault(Fault(kind="status", status=400, message=f"Key {key} may not use this model"))
    sentinel_server.add_fault(
        Fault(kind="status", status=500, model="google/imagen-4", message=f"upstream rejected Bearer {key}")
    )
    with pytest.raises(MeshImageError) as info:
        run(shell, "%%meshimg -s 96x96\na red fox")
    assert "***" in str(info.value)
    collect_error(evidence, "echo", info.value)
    mixed = run(shell, "%%meshimg -m openai/gpt-image-1,google/imagen-4 -s 96x96\na red fox")
    assert len(mixed.errors) == 1
    collect_error(evidence, "tile", mixed.errors[0].error)
    for shown in published:
        evidence.add("display", json.dumps(shown.data) + json.dumps(shown.metadata))
    captured = capsys.readouterr()
    evidence.add("out", captured.out + captured.err)
    evidence.check()


def test_wrong_key_error_does_not_echo_the_sent_key(
    shell: Any,
    sentinel_server: MeshServer,
    published: Publications,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "rsk_WRONG_but_still_secret_0123456789"
    _config.session().set_api_key(wrong)
    with pytest.raises(mesh_magic.AuthenticationError) as info:
        run(shell, "%%meshimg -s 96x96\na red fox")
    captured = capsys.readouterr()
    text = str(info.value) + "\n".join(info.value._render_traceback_()) + captured.out + captured.err
    assert wrong not in text and wrong[4:-4] not in text
    assert "MESHAPI_API_KEY" in text


def test_key_in_environment_is_not_shown(
    shell: Any,
    sentinel_server: MeshServer,
    published: Publications,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    evidence: Evidence,
) -> None:
    _config.session().set_api_key(None)
    monkeypatch.setenv("MESHAPI_API_KEY", evidence.key)
    result = run(shell, "%%meshimg -s 96x96\nenv fox")
    assert len(result) == 1
    table = run(shell, "%meshimg_config")
    assert ("api_key", "rsk_…51b8", "env MESHAPI_API_KEY") in table.rows
    evidence.add("table", repr(table) + table._repr_html_())
    for shown in published:
        evidence.add("display", json.dumps(shown.data) + json.dumps(shown.metadata))
    captured = capsys.readouterr()
    evidence.add("out", captured.out + captured.err)
    evidence.check()
