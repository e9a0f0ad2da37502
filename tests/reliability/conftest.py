"""Reliability suite plumbing: the session collector's table and JSON, Prism, speed fixtures.

The table (faults tried, bad inputs tried, load requests, items lost, key
sightings) is printed at the end of the run and written to
test-artifacts/reliability.json, only when tests of this folder ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.report import REPORT, Report, cheap_render
from tests.support.paths import ARTIFACTS, REPO
from tests.support.servers import free_port

PRISM_BIN = REPO / "node_modules" / ".bin" / "prism"
# The wire spec lives in the repository: a user's clone has everything the tests read.
WIRE_SPEC = REPO / "spec" / "meshapi-openapi.yaml"
_prism: dict[str, Any] = {}


def _start_prism() -> None:
    """Start Prism in the background as soon as a contract test is selected (it takes ~3-5 s)."""
    if _prism or not PRISM_BIN.exists() or not WIRE_SPEC.exists():
        return
    port = free_port()
    log = open(ARTIFACTS.joinpath("prism.log") if ARTIFACTS.exists() else os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(PRISM_BIN), "mock", "-h", "127.0.0.1", "-p", str(port), str(WIRE_SPEC)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _prism.update(proc=proc, port=port, log=log)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if any(item.nodeid.split("::")[0].endswith("reliability/test_contract_prism.py") for item in items):
        ARTIFACTS.mkdir(exist_ok=True)
        _start_prism()


def _stop_prism() -> None:
    proc = _prism.get("proc")
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what we started
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    _prism["log"].close()


@pytest.fixture(scope="session")
def prism_process() -> dict[str, Any]:
    """The Prism mock of the wire spec, or {"missing": why}: the test then fails, never skips."""
    if not PRISM_BIN.exists():
        return {
            "missing": (
                "Prism is not installed (node_modules/.bin/prism is missing): run scripts/setup or "
                "`npm install --no-audit --no-fund` in the repo root. The wire-contract test needs it."
            )
        }
    if not WIRE_SPEC.exists():
        return {"missing": f"The wire spec is missing: expected {WIRE_SPEC}."}
    _start_prism()
    return _prism


@pytest.fixture(scope="session")
def report() -> Report:
    """The session's collector (also importable as tests.reliability.report.REPORT)."""
    return REPORT


def _write_artifact() -> None:
    if not REPORT.used:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "reliability.json").write_text(json.dumps(REPORT.as_dict(), indent=2) + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _stop_prism()
    _write_artifact()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not REPORT.used:
        return
    terminalreporter.section("mesh_magic reliability")
    for line in REPORT.table():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(details: {ARTIFACTS.relative_to(REPO)}/reliability.json)")


@pytest.fixture
def cheap_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server renders a tiny PNG tagged with its prompt instead of a ~70 ms preview."""
    from mesh_magic.server import _images

    monkeypatch.setattr(_images, "render_preview", cheap_render)
    monkeypatch.setattr(_images, "render_partial", cheap_render)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff without Retry-After: 10-20 ms, 20-40 ms, ... so retry tests stay fast."""
    from mesh_magic.core.http import retry

    monkeypatch.setattr(retry, "BACKOFF_BASE", 0.02)


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The image store on tmpfs when there is one: the store fsyncs every file it writes."""
    import shutil
    import tempfile

    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tmp_path
    root = Path(tempfile.mkdtemp(prefix="mesh-rel-", dir=base))
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)
