"""Classes 1 and 3, end to end: every byte `pytest --showlocals` and a `%xmode Verbose` kernel print.

A subprocess runs a file of failing calls under pytest with locals shown (several
traceback styles, DEBUG logs of httpx/httpcore captured, a pickle printed), and a
real kernel (nbclient) runs the same kind of calls after `%xmode Verbose` with
DEBUG logging on stdout. The key is only in the child's environment; everything
they print (and the JUnit XML, and the executed notebook) is searched for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mesh_magic.server import Fault, MeshServer
from tests.reliability.adversarial.leaks import Hunt
from tests.reliability.adversarial.tally import count_examples
from tests.support.paths import REPO
from tests.support.sentinel import SENTINEL_KEY as KEY

INNER = textwrap.dedent(
    """
    import logging, os, pickle
    import pytest
    import mesh_magic
    from mesh_magic import MeshImageError
    from mesh_magic.server import Fault, MeshServer

    @pytest.fixture(scope="module")
    def wrong():  # accepts another key: ours gets a 401
        with MeshServer(api_key="rsk_another_key_0000000000000000") as srv:
            yield srv

    @pytest.fixture(scope="module")
    def echo():  # accepts ours, then echoes it in its faults
        with MeshServer(api_key=os.environ["MESHAPI_API_KEY"]) as srv:
            yield srv

    def point(srv):
        mesh_magic.configure(base_url=srv.base_url, max_retries=0)

    def test_401(wrong):
        point(wrong)
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")

    def test_401_with_debug_logs(wrong, caplog):
        caplog.set_level(logging.DEBUG, logger="httpcore")
        caplog.set_level(logging.DEBUG, logger="httpx")
        point(wrong)
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")

    def test_500_echoing_the_key(echo):
        point(echo)
        echo.add_fault(Fault("status", status=500, message="upstream got " + os.environ["MESHAPI_API_KEY"]))
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")

    def test_stream_break(echo):
        point(echo)
        echo.add_fault(Fault("stream_break"))
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64", stream=True)

    def test_connection_refused():
        mesh_magic.configure(base_url="http://127.0.0.1:1", max_retries=0)
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")

    def test_models_401(wrong):
        point(wrong)
        mesh_magic.models()

    def test_login_smart_quote():
        mesh_magic.login(os.environ["MESHAPI_API_KEY"] + "\\u201d")

    def test_login_newline():
        mesh_magic.login(os.environ["MESHAPI_API_KEY"][:12] + "\\n" + os.environ["MESHAPI_API_KEY"][12:])

    def test_env_key_with_a_smart_quote(echo, monkeypatch):
        point(echo)
        monkeypatch.setenv("MESHAPI_API_KEY", os.environ["MESHAPI_API_KEY"] + "\\u201d")
        mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")

    def test_call_key_with_a_newline(echo):
        point(echo)
        mesh_magic.generate("a cat", model="google/imagen-4", api_key=os.environ["MESHAPI_API_KEY"] + "\\n1")

    def test_error_shown_in_an_assert(wrong):
        point(wrong)
        with pytest.raises(MeshImageError) as info:
            mesh_magic.generate("a cat", model="google/imagen-4", size="64x64")
        assert info.value is None, (info.value, vars(info.value), pickle.dumps(info.value))
    """
)
INNER_TESTS = INNER.count("\ndef test_")

STYLES = {
    "showlocals long": ["--showlocals", "--tb=long"],
    "showlocals auto": ["-l", "--tb=auto"],
    "showlocals short": ["-l", "--tb=short"],
    "showlocals full trace": ["--showlocals", "--full-trace"],
    "native": ["-l", "--tb=native"],
}


def _child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHAPI_", "MESH_API_"))}
    env["MESHAPI_API_KEY"] = KEY
    env["MESHIMG_STORE_DIR"] = str(tmp_path / "store")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.mark.adversarial("1 key in frame locals and chains")
@pytest.mark.parametrize("style", sorted(STYLES))
def test_pytest_showlocals_prints_no_key(style: str, tmp_path: Path) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER)
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(inner), "-p", "no:cacheprovider", "-rA", "-vv"]
        + ["--rootdir", str(tmp_path), f"--junitxml={junit}", "-o", "log_level=DEBUG", *STYLES[style]],
        cwd=tmp_path,
        env=_child_env(tmp_path),
        capture_output=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert f"{INNER_TESTS} failed".encode() in out, out[-3000:].decode(errors="replace")
    for name in (b"AuthenticationError", b"APIConnectionError", b"InvalidOptionError", b"ServerError"):
        assert name in out, name
    if style != "native":
        assert b"httpcore" in out, "the DEBUG logs were captured and printed"
    count_examples("1 key in frame locals and chains", INNER_TESTS)
    hunt = Hunt()
    hunt.scan(out, f"pytest {style} output")
    hunt.scan(junit.read_bytes(), f"pytest {style} junit xml")
    hunt.scan_tree(tmp_path / "store", "store")
    hunt.check()


KERNEL_CELLS = [
    "import logging, os, pickle, sys\nimport mesh_magic\n%load_ext mesh_magic",
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)",
    "mesh_magic.configure(base_url=os.environ['WRONG_URL'], max_retries=0)",
    "mesh_magic.generate('a cat', model='google/imagen-4', size='64x64')",
    "%%meshimg -s 64x64 -m google/imagen-4\na cat",
    "%meshimg_models",
    "mesh_magic.configure(base_url=os.environ['ECHO_URL'])",
    "mesh_magic.generate('a cat', model='google/imagen-4', size='64x64')",
    "%%meshimg -s 64x64 --stream -m google/imagen-4\na cat",
    "r = mesh_magic.generate('a cat', model='google/imagen-4', size='64x64')\nr, r[0].metadata()",
    "mesh_magic.configure(base_url='http://127.0.0.1:1')\nmesh_magic.generate('a cat', size='64x64')",
    "mesh_magic.login(os.environ['MESHAPI_API_KEY'] + '\\u201d')",
    "mesh_magic.login(os.environ['MESHAPI_API_KEY'][:12] + '\\n' + os.environ['MESHAPI_API_KEY'][12:])",
    "%meshimg_config " + "{key_word}",
    "%meshimg_config",
    "try:\n    mesh_magic.generate('a cat', size='64x64')\nexcept Exception as e:\n    err = e\n"
    "print(repr(err), vars(err), pickle.dumps(err))",
    "raise RuntimeError('a user error after the calls: Verbose shows this frame')",
]


@pytest.mark.adversarial("1 key in frame locals and chains")
@pytest.mark.parametrize("xmode", ["Verbose", "Context"])
def test_a_kernel_in_verbose_mode_shows_no_key(
    xmode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat

    from tests.support.notebooks import code_notebook, run_notebook

    with (
        MeshServer(api_key="rsk_another_key_0000000000000000") as wrong,
        MeshServer(api_key=KEY, image_host="localhost") as echo,
    ):
        echo.add_fault(Fault("status", status=500, message=f"upstream got Bearer {KEY}"))
        echo.add_fault(Fault("stream_error", message=f"stream failed for {KEY}"))
        for name, value in _child_env(tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WRONG_URL", wrong.base_url)
        monkeypatch.setenv("ECHO_URL", echo.base_url)
        cells = [f"%xmode {xmode}", *KERNEL_CELLS]
        # A key-shaped word typed into the config magic: built here, so it is in the source
        # only as a *different* key (the sentinel must not be in the notebook at all).
        cells = [c.replace("{key_word}", "rsk_typed_in_the_wrong_place_0123456789") for c in cells]
        nb = run_notebook(code_notebook(*cells), tmp_path, timeout=90, allow_errors=True)
        assert any(r.headers.get("authorization") == f"Bearer {KEY}" for r in echo.requests)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    names = {o["ename"] for o in outputs if o["output_type"] == "error"}
    assert {"AuthenticationError", "ServerError", "APIConnectionError", "InvalidOptionError"} <= names, names
    assert "RuntimeError" in names, "the last cell ran"
    text = json.dumps(outputs)
    assert f"Exception reporting mode: {xmode}" in text
    assert "httpcore" in text, "DEBUG logs of httpcore reached the outputs"
    assert "rsk_typed_in_the_wrong_place" not in text, "the config magic repeated a key-shaped word"
    hunt = Hunt()
    hunt.scan(nbformat.writes(nb), f"kernel {xmode} notebook")
    hunt.scan_tree(tmp_path / "store", "kernel store")
    hunt.check()
