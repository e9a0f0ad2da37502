"""Fixtures for browser tests: a mesh server process, a JupyterLab process and headless Chromium.

Every process is started by these fixtures with its PID held, and stopped in a
finalizer even when the test fails. One mesh server, one Jupyter server and one
Chromium serve every browser test of the run (JupyterLab at /lab, Notebook 7 at
/notebooks, the same server); they are package-scoped, so they stop when the browser
tests are done (Playwright's sync API holds an event loop on the main thread, which
would break later tests that call asyncio.run). JupyterLab gets throw-away config, data, runtime,
settings and workspace folders, so nothing of the machine's own Jupyter setup
leaks in (or gets written to); `jupyter_lab.theme(name)` switches its theme.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ARTIFACTS, NOTEBOOKS
from tests.support.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
API_KEY = "rsk_browser_test_key_0123456789"
START_TIMEOUT = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium")


@dataclass
class MeshProcess:
    base_url: str
    api_key: str

    def control(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        """Call one of the server's /_mesh control routes (latency, requests, reset)."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


@dataclass
class JupyterLab:
    url: str
    token: str
    root: Path
    log: Path

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        return f"{self.url}/notebooks/{notebook}?token={self.token}"

    def theme(self, name: str) -> None:
        """Make `name` ("JupyterLab Light" / "JupyterLab Dark") the theme of pages opened from now on."""
        raw = json.dumps({"theme": name, "adaptive-theme": False})
        request = urllib.request.Request(
            f"{self.url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
            data=json.dumps({"raw": raw}).encode(),
            method="PUT",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 204), response.status

    def shutdown_kernels(self) -> None:
        """Stop every kernel, so the next test's notebook starts on a fresh one."""
        headers = {"Authorization": f"token {self.token}"}
        with urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/api/sessions", headers=headers), timeout=10
        ) as response:
            sessions = json.loads(response.read())
        for session in sessions:
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", method="DELETE", headers=headers
            )
            with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(request, timeout=10):
                pass

    def wait_kernel_idle(self, timeout: float = START_TIMEOUT) -> None:
        """Until the server reports a kernel session whose kernel is idle."""
        deadline = time.monotonic() + timeout
        state = "no session"
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/api/sessions?token={self.token}", timeout=5) as response:
                sessions = json.loads(response.read())
            states = [s["kernel"]["execution_state"] for s in sessions if s.get("kernel")]
            state = ", ".join(states) or "no session"
            if states and all(st == "idle" for st in states):
                return
            time.sleep(0.1)
        pytest.fail(f"kernel not idle after {timeout} s ({state})")


def _stop(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process, then SIGKILL its own process group (kernels it spawned) if needed."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    # The group was created for this process alone (start_new_session), so it holds only
    # what it spawned: a kernel left behind by a crashed server goes with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


@pytest.fixture(scope="package")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
            "scripts/setup (or: apt-get install -y chromium chromium-driver). "
            "Do not use `playwright install`.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="package")
def mesh_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcess]:
    """`python -m mesh_magic.server` on a port it picks itself (no race for a free port)."""
    log = tmp_path_factory.mktemp("mesh") / "server.err"
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "mesh_magic.server", "--port", "0", "--api-key", API_KEY],
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline().decode() if ready else ""
        if "http://" not in line:
            pytest.fail(f"mesh server did not start: {line!r} {log.read_text()[-2000:]}")
        base_url = line.split("http://", 1)[1].split()[0]
        yield MeshProcess(f"http://{base_url}", API_KEY)
    finally:
        _stop(process, grace=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="package")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory, mesh_process: MeshProcess) -> Iterator[JupyterLab]:
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "panel.ipynb", root / "panel.ipynb")
    settings = home / "lab-settings"
    _write_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "MESH_", "MESHAPI_", "MESHIMG_")) or k.startswith("MESH_MAGIC_GUARD")
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        # The kernel inherits these: the notebook reaches the test server like a user's would.
        MESHAPI_BASE_URL=mesh_process.base_url,
        MESHAPI_API_KEY=mesh_process.api_key,
        MESHIMG_STORE_DIR=str(home / "store"),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        XDG_DATA_HOME=str(home / "xdg-data"),
        IPYTHONDIR=str(home / "ipython"),
    )
    log = home / "jupyterlab.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/api/status?token={token}", process, log)
        yield JupyterLab(url, token, root, log)
    finally:
        _stop(process)


def _write_settings(folder: Path) -> None:
    """User settings that keep pop-ups out of the way and every cell rendered."""
    overrides = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        # Without windowing, cells below the fold stay in the DOM for the test to find;
        # the preferred kernel starts without a "Select Kernel" dialog.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
            "windowingMode": "none",
            "autoStartDefaultKernel": True,
        },
    }
    for name, values in overrides.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_ready(status_url: str, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"JupyterLab not ready in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[Any]:
    """One headless Chromium for the run (Debian's, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own context; a screenshot lands in test-artifacts if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = getattr(item, "funcargs", {}).get("page")
        if page is not None:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):  # the browser may be what failed
                page.screenshot(path=str(ARTIFACTS / f"{item.name}-failure.png"))


@pytest.fixture(autouse=True)
def one_kernel_per_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kernels a test started are stopped after it (the server is shared by the whole run)."""
    yield
    if "jupyter_lab" in request.fixturenames:
        request.getfixturevalue("jupyter_lab").shutdown_kernels()
