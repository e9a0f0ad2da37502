"""The panel in a real JupyterLab, in headless Chromium: generate, stay responsive, cancel.

Opens notebooks/panel.ipynb (copied to a throw-away root), runs it, then uses
the panel like a person: type a prompt, click Generate, see the images; with
the server slowed down, run another cell while a generation is in flight and
see it answer, then Cancel. Leaves a screenshot in test-artifacts/panel.png;
with MESH_MAGIC_UPDATE_DOCS=1 it also refreshes docs/panel.png (the README's).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import pytest

from tests.support.paths import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

SLOW = 4.0  # seconds per generation once the server is slowed down
LONG = 30_000  # ms: generous upper bound for anything involving the kernel


def _run_all_cells(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def test_panel_generates_stays_responsive_and_cancels(page: Any, jupyter_lab: Any, mesh_process: Any) -> None:
    mesh_process.control("/_mesh/latency", {"latency": 0.0})
    page.goto(jupyter_lab.lab_url("panel.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LONG)
    # Fold the file browser away: the notebook (and the screenshot) get the width.
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    jupyter_lab.wait_kernel_idle()

    _run_all_cells(page)
    panel = page.locator(".mesh-panel")
    gallery_images = panel.locator(".mesh-panel-gallery img")
    status = panel.locator(".mesh-panel-status")
    # The notebook's own "drive it from code" cells make the first two images and edit them.
    gallery_images.nth(3).wait_for(timeout=LONG)
    jupyter_lab.wait_kernel_idle()
    assert gallery_images.count() == 4

    # A person types a prompt and clicks Generate: two more images (the panel has n=2).
    panel.locator(".mesh-panel-prompt textarea").fill("A paper boat on a pond, ink sketch")
    panel.locator(".mesh-panel-generate").click()
    gallery_images.nth(5).wait_for(timeout=LONG)
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-status').innerText.includes('Done')", timeout=LONG
    )
    sent = [r for r in mesh_process.control("/_mesh/requests") if r["path"] == "/v1/images/generations"]
    assert sent[-1]["json"]["prompt"] == "A paper boat on a pond, ink sketch"

    # Slow generation: the kernel still runs another cell while it is in flight.
    mesh_process.control("/_mesh/latency", {"latency": SLOW})
    started = time.monotonic()
    panel.locator(".mesh-panel-generate").click()
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-status').innerText.includes('Generating')", timeout=LONG
    )
    assert panel.locator(".mesh-panel-generate").is_disabled()
    probe = page.locator(".jp-CodeCell", has_text="kernel answered")
    probe.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    probe.locator(".jp-OutputArea-output", has_text="busy=True").wait_for(timeout=LONG)
    assert time.monotonic() - started < SLOW, "the cell only answered after the generation"
    assert "Generating" in status.inner_text()

    # Cancel: the status says so at once and the button comes back.
    panel.locator(".mesh-panel-cancel").click()
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-status').innerText.includes('Cancelled')", timeout=5_000
    )
    assert time.monotonic() - started < SLOW, "Cancel only took effect when the work ended"
    assert panel.locator(".mesh-panel-generate").is_enabled()
    assert gallery_images.count() == 6
    mesh_process.control("/_mesh/latency", {"latency": 0.0})

    ARTIFACTS.mkdir(exist_ok=True)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "panel.png"))
    if os.environ.get("MESH_MAGIC_UPDATE_DOCS") == "1":
        shutil.copy(ARTIFACTS / "panel.png", REPO / "docs" / "panel.png")
