"""No test, script or notebook reads a path outside the repository: a test that does fails.

A user's clone has nothing beside it, and the real user's home (their keyring, config
and data folders) is no test's business. The audit hook in guard/sitecustomize.py
notes every path opened or listed outside the allowed folders, in this process and in
every Python process the tests start (kernels running the notebooks, the servers,
JupyterLab); the autouse fixture fails the test during which a new one appeared.

Allowed: the repository, the temp folder (where tests make their own files), the
Python installation (sys.prefix, sys.base_prefix, site-packages) and the system's
folders (/usr, /lib, /etc, /proc, /sys, /dev). Not allowed: the folder the repository
sits in (anything beside the clone) and the home folder.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.paths import REPO

GUARD_DIR = Path(__file__).resolve().parent / "guard"
SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev")


def _load_guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mesh_magic_guard", GUARD_DIR / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GUARD = _load_guard()


def allowed_roots() -> tuple[str, ...]:
    roots = {str(REPO), tempfile.gettempdir(), sys.prefix, sys.base_prefix, sys.exec_prefix, *SYSTEM}
    roots |= {p for p in sysconfig.get_paths().values()}
    roots |= set(site.getsitepackages())
    # Symlinked folders (a temp folder under /private on macOS) are allowed by both names.
    return tuple(sorted(roots | {os.path.realpath(r) for r in roots}))


_log: Path | None = None


_made: list[Path] = []


def _own_ipython_and_jupyter_folders() -> None:
    """Kernels the tests start read no IPython profile (startup files!) or Jupyter config of the user."""
    home = Path(tempfile.mkdtemp(prefix="mesh-magic-test-home-"))
    _made.append(home)
    for name, folder in (
        ("IPYTHONDIR", "ipython"),
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("JUPYTER_DATA_DIR", "jupyter-data"),
    ):
        os.environ[name] = str(home / folder)


def pytest_configure(config: pytest.Config) -> None:
    global _log
    if os.environ.get(GUARD.LOG_ENV):  # a nested pytest (a test running pytest): one log
        _log = Path(os.environ[GUARD.LOG_ENV])
        return
    _own_ipython_and_jupyter_folders()
    # Registered before any shell exists, so it runs after their own atexit hooks (which
    # still write to the IPython folder's history database).
    atexit.register(_remove_made)
    _log = Path(tempfile.mkstemp(prefix="mesh-magic-outside-", suffix=".log")[1])
    _made.append(_log)
    allowed = allowed_roots()
    os.environ[GUARD.LOG_ENV] = str(_log)
    os.environ[GUARD.ALLOW_ENV] = os.pathsep.join(allowed)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH")) if p)
    GUARD.install(str(_log), allowed)


def _remove_made() -> None:
    for path in _made:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def read_log() -> list[str]:
    assert _log is not None
    try:
        return _log.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


@pytest.fixture(autouse=True)
def nothing_outside_the_repository() -> Iterator[None]:
    before = len(read_log())
    yield
    found = read_log()[before:]
    if found:
        shown = "\n  ".join(found[:20])
        pytest.fail(f"read a path outside the repository ({len(found)}):\n  {shown}", pytrace=False)
