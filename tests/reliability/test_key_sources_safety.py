"""Key safety for the sources after the environment: a Colab secret, the keyring, the key file.

For each source the sentinel key is put only there (no session key, no env var), then
magics and the Python API generate, fail with a server that echoes the key, show the
config, remember and forget. Every output, log record, error text and file under the
test's folders is searched for the key; the only place allowed to hold it is the source
itself (the keyring's file, or the key file). Colab is also run in a real kernel
(nbclient) with the stand-in `google.colab` on its PYTHONPATH.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core import config as _config, key_sources
from mesh_magic.core.errors import MeshImageError
from mesh_magic.core.keys import ApiKey
from mesh_magic.server import Fault, MeshServer
from tests.reliability.report import REPORT
from tests.support.key_places import colab_environment
from tests.support.published import Publications
from tests.support.sentinel import SENTINEL_KEY
from tests.support.shell import run

pytestmark = pytest.mark.usefixtures("cheap_images", "fast_backoff")

SOURCES = ["colab secret", "keyring", "file"]


def _check(where: str, *blobs: Any) -> None:
    found = sum(REPORT.scan(blob, where) for blob in blobs)
    assert found == 0, f"the key leaked into {where}"


def _scan_tree_except(root: Path, where: str, allowed: set[Path]) -> int:
    files = 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in allowed:
            files += 1
            _check(f"{where}:{path.relative_to(root)}", path.read_bytes(), str(path))
    return files


@pytest.fixture
def key_in(request: pytest.FixtureRequest, sentinel_server: MeshServer) -> tuple[str, set[Path]]:
    """Put SENTINEL_KEY in one source only; return the source and the files allowed to hold it."""
    source = request.param
    _config.session().set_api_key(None)  # the sentinel_server fixture set a session key
    allowed: set[Path] = set()
    if source == "colab secret":
        request.getfixturevalue("colab").share(SENTINEL_KEY)
    elif source == "keyring":
        ring = request.getfixturevalue("file_keyring")
        assert key_sources.remember(ApiKey(SENTINEL_KEY))[0] == "keyring"
        allowed.add(ring.path)
    else:
        place, path = key_sources.remember(ApiKey(SENTINEL_KEY))
        assert place == "file" and path is not None
        allowed.add(path)
    return source, allowed


@pytest.mark.parametrize("key_in", SOURCES, indirect=True)
def test_a_key_from_each_source_is_used_and_never_shown(
    key_in: tuple[str, set[Path]],
    sentinel_server: MeshServer,
    shell: Any,
    published: Publications,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, allowed = key_in
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mesh_magic"):
        caplog.set_level(logging.DEBUG, logger=name)
    table = run(shell, "%meshimg_config")
    assert ("api_key", f"rsk_…{SENTINEL_KEY[-4:]}", source) in table.rows
    result = run(shell, f"%%meshimg -n 2 -s 64x64 --save {tmp_path / 'saved'}\na fox from {source}")
    python_result = mesh_magic.generate("a python fox", size="64x64")
    assert len(result) == 2 and len(python_result) == 1
    assert all(r.headers["authorization"] == f"Bearer {SENTINEL_KEY}" for r in sentinel_server.requests)

    sentinel_server.add_fault(Fault("status", status=401, message=f"bad key {SENTINEL_KEY}"))
    with pytest.raises(MeshImageError) as failed:
        run(shell, "%meshimg -s 64x64 a fox the server refuses")
    err = failed.value
    _check(f"error ({source})", str(err), repr(err), "".join(traceback.format_exception(err)))
    _check(f"rendered traceback ({source})", "\n".join(err._render_traceback_()))

    if source != "colab secret":
        run(shell, "%meshimg_config --forget")
        assert key_sources.remembered_key() == (None, "not set")
    shell.run_cell("%config MeshImg")
    _check(
        f"displays and reprs ({source})",
        *(json.dumps(shown.data) + json.dumps(shown.metadata) for shown in published),
        repr(table),
        table._repr_html_(),
        repr(_config.resolve()),
        repr(result),
        json.dumps(result._repr_mimebundle_(), default=str),
    )
    out, errors = capsys.readouterr()
    _check(f"stdout/stderr ({source})", out, errors)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        _check(f"log {record.name} ({source})", formatter.format(record), repr(record.args))
    assert _scan_tree_except(tmp_path, f"files ({source})", allowed) >= 4, "store and --save were searched"
    assert REPORT.keys.places == [], REPORT.keys.places


COLAB_CELLS = [
    "%load_ext mesh_magic",
    "%meshimg_config",
    "%%meshimg -n 2 -s 64x64\nA lighthouse in a Colab notebook",
    "import mesh_magic\nmesh_magic.generate('a harbor', size='64x64')",
]


def _run_notebook(cells: list[str], env: dict[str, str], tmp_path: Path) -> tuple[Any, bytes]:
    import nbformat

    from tests.support.notebooks import code_notebook, run_notebook

    nb = run_notebook(code_notebook(*cells), tmp_path, allow_errors=True, env=env)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return nb, path.read_bytes()


def _kernel_env(sentinel_server: MeshServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHAPI_", "MESH_API_"))}
    env.update(MESHAPI_BASE_URL=sentinel_server.base_url, MESHIMG_STORE_DIR=str(tmp_path / "nb-store"))
    env.update(extra)
    return env


def test_colab_secret_in_a_real_kernel(sentinel_server: MeshServer, tmp_path: Path) -> None:
    env = _kernel_env(sentinel_server, tmp_path, **colab_environment({"MESHAPI_API_KEY": SENTINEL_KEY}))
    nb, text = _run_notebook(COLAB_CELLS, env, tmp_path)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] == "error"] == []
    shown = json.dumps(outputs)
    assert "colab secret" in shown, "%meshimg_config names the source"
    assert sum("<img" in o.get("data", {}).get("text/html", "") for o in outputs) >= 2
    assert sum(
        1 for r in sentinel_server.requests if r.headers.get("authorization") == f"Bearer {SENTINEL_KEY}"
    )
    _check("the executed Colab notebook", text)
    REPORT.scan_tree(tmp_path / "nb-store", "the Colab notebook's store")
    assert REPORT.keys.places == []


@pytest.mark.parametrize("unshared", [False, True], ids=["missing", "not shared"])
def test_a_missing_or_unshared_colab_secret_in_a_kernel_is_quiet(
    sentinel_server: MeshServer, tmp_path: Path, unshared: bool
) -> None:
    secrets = {"MESHAPI_API_KEY": SENTINEL_KEY} if unshared else {}
    colab = colab_environment(secrets, unshared="MESHAPI_API_KEY" if unshared else "")
    env = _kernel_env(sentinel_server, tmp_path, **colab)
    asked = "sorted(__import__('sys').modules['google.colab.userdata'].calls)"
    nb, text = _run_notebook([*COLAB_CELLS[:2], asked], env, tmp_path)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] in ("error", "stream")] == [], "no traceback, no noise"
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "['MESHAPI_API_KEY']", "Colab was asked, once"
    table = next(
        o["data"]["text/plain"] for o in outputs if "api_key" in o.get("data", {}).get("text/plain", "")
    )
    assert "(not set)" in table and "colab secret" not in table
    _check("the executed notebook without a shared secret", text)
