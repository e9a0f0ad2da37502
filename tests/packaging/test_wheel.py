"""Build the wheel, check what it holds, install it into a fresh venv with `pip install <wheel>`.

In that venv (working directory outside the repository, so nothing of the clone can
be imported) `%load_ext mesh_magic` and an offline `%%meshimg` generation must work,
and mypy must see the installed package as typed (py.typed). The wheel must hold the
package only: no tests, notebooks, docs or scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import mesh_magic
from tests.support.paths import REPO

# Run inside the fresh venv: what a person does first, in plain IPython (no kernel).
SMOKE = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image
import io

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "mesh_magic")
result = ip.run_cell("%%meshimg -n 2 -s 64x64 --no-display\nA lighthouse at dawn").result
import mesh_magic
sizes = [Image.open(io.BytesIO(im.data)).size for im in result]
print(json.dumps({
    "file": mesh_magic.__file__,
    "version": mesh_magic.__version__,
    "images": len(result),
    "sizes": sizes,
    "magics": sorted(ip.magics_manager.lsmagic()["cell"]),
    "stored": [str(im.path) for im in result],
}))
"""

TYPED = """
import mesh_magic

result: mesh_magic.ImageResult = mesh_magic.generate("a fox")
count: int = len(result)
wrong: str = mesh_magic.generate  # mypy must see the real type and refuse this
"""


def tool_env() -> dict[str, str]:
    """pip and mypy read their own caches and configuration: the outside-the-repository guard
    (tests/support/outside_repo.py) watches the project's code, not the build tools."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MESH_MAGIC_GUARD", "PYTHONPATH"))}


@dataclass
class Wheel:
    path: Path
    names: list[str]
    metadata: dict[str, list[str]]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Wheel:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
        + [str(REPO)],
        check=True,
        capture_output=True,
        timeout=120,
        env=tool_env(),
    )
    (path,) = out.glob("*.whl")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(meta_name).decode())
    metadata: dict[str, list[str]] = {}
    for key, value in message.items():
        metadata.setdefault(key, []).append(value)
    return Wheel(path, names, metadata)


@pytest.fixture(scope="module")
def venv(wheel: Wheel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv (no system site-packages) with only `pip install <wheel>` in it."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120, env=tool_env())
    python = root / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel.path)],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    yield python


def test_the_wheel_holds_the_package_and_py_typed_only(wheel: Wheel) -> None:
    assert wheel.path.name == f"mesh_magic-{mesh_magic.__version__}-py3-none-any.whl"
    assert "mesh_magic/py.typed" in wheel.names
    assert "mesh_magic/core/key_sources.py" in wheel.names
    assert "mesh_magic/server/__init__.py" in wheel.names, "the offline backend ships"
    tops = {name.split("/")[0] for name in wheel.names}
    assert tops == {"mesh_magic", f"mesh_magic-{mesh_magic.__version__}.dist-info"}, tops
    unwanted = [
        n
        for n in wheel.names
        if n.endswith((".ipynb", ".pyc", ".png"))
        or "/tests/" in n
        or "/test_" in n
        or "__pycache__" in n
        or n.startswith(("tests/", "notebooks/", "docs/", "scripts/", "benchmarks/"))
    ]
    assert unwanted == []


def test_the_wheel_metadata_declares_version_and_extras(wheel: Wheel) -> None:
    meta = wheel.metadata
    assert meta["Version"] == ["0.2.0"] == [mesh_magic.__version__]
    assert meta["Name"] == ["mesh-magic"]
    assert meta["Requires-Python"] == [">=3.10"]
    assert {"pandas", "keyring", "all", "test"} <= set(meta["Provides-Extra"])
    requires = [Requirement(r) for r in meta["Requires-Dist"]]
    for extra, name in (("pandas", "pandas"), ("keyring", "keyring"), ("all", "pandas"), ("all", "keyring")):
        assert any(r.name == name and r.marker and r.marker.evaluate({"extra": extra}) for r in requires)
    core = {r.name for r in requires if r.marker is None}
    assert core == {
        "ipython",
        "traitlets",
        "httpx",
        "httpx-sse",
        "pillow",
        "ipywidgets",
        "platformdirs",
        "starlette",
        "uvicorn",
        "sniffio",
        "tqdm",
        "zlib-ng",
    }, "no new runtime dependency sneaks in (keyring and pandas are extras)"
    assert "Typing :: Typed" in meta["Classifier"]


def test_load_ext_and_an_offline_generation_work_in_a_fresh_venv(venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH", "PYTHON", "VIRTUAL_ENV"))}
    (tmp_path / "home").mkdir()
    env.update(
        MESHAPI_BASE_URL="offline",
        MESHIMG_STORE_DIR=str(tmp_path / "store"),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    done = subprocess.run(
        [str(venv), "-c", SMOKE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = [line[line.index("{") :] for line in done.stdout.splitlines() if '{"file"' in line]
    assert found, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(found[-1])
    assert Path(report["file"]).is_relative_to(venv.parent.parent), "imported from the venv, not the clone"
    assert report["version"] == mesh_magic.__version__
    assert report["images"] == 2 and report["sizes"] == [[64, 64], [64, 64]]
    assert "meshimg" in report["magics"]
    assert all(Path(p).is_relative_to(tmp_path / "store") and Path(p).is_file() for p in report["stored"])


def test_mypy_sees_the_installed_package_as_typed(venv: Path, tmp_path: Path) -> None:
    program = tmp_path / "uses_mesh_magic.py"
    program.write_text(TYPED)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", str(venv), "--no-incremental", str(program)]
        + ["--config-file", os.devnull, "--strict"],
        cwd=tmp_path,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    # Without py.typed mypy would say "missing library stubs or py.typed marker" instead.
    assert len(lines) == 1 and "uses_mesh_magic.py:6: error: Incompatible types in assignment" in lines[0], (
        done.stdout
    )
