"""The panel's edit flow in a real JupyterLab, in headless Chromium (SPEC 8).

A person opens a panel, generates a picture, presses Upscale under its tile (it
runs at once) and sees the bigger copy arrive; presses Edit under the original,
types the change, runs it and sees the edited tile, captioned with what was done.
The operation picker offers only what the chosen model can do. Leaves a
screenshot in test-artifacts/panel-edit.png; with MESH_MAGIC_UPDATE_DOCS=1 it also
refreshes docs/panel-edit.png (the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.notebooks import code_notebook
from tests.support.paths import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

LONG = 60_000  # ms: anything involving the kernel
NOTEBOOK = "panel_edit.ipynb"
EVERYTHING = "meshapi/data-uri-preview"  # every operation on the test server
CELLS = [
    "import mesh_magic",
    f"p = mesh_magic.panel(model={EVERYTHING!r}, n=1, size='256x256')\np",
]


def _write_notebook(root: Path) -> None:
    nbformat.write(code_notebook(*CELLS), root / NOTEBOOK)


def _status_has(page: Any, text: str, count: int | None = None) -> None:
    """Wait for the status line to say `text` (and, if given, the gallery to hold `count` tiles)."""
    tiles = "" if count is None else f" && document.querySelectorAll('.mesh-panel-tile').length === {count}"
    page.wait_for_function(
        f"() => document.querySelector('.mesh-panel-status').innerText.includes({text!r}){tiles}",
        timeout=LONG,
    )


def _edits(mesh_process: Any) -> list[dict[str, Any]]:
    return [r["json"] for r in mesh_process.control("/_mesh/requests") if r["path"] == "/v1/images/edits"]


def test_panel_upscales_and_edits_a_tile(page: Any, jupyter_lab: Any, mesh_process: Any) -> None:
    mesh_process.control("/_mesh/latency", {"latency": 0.0})
    earlier = len(_edits(mesh_process))  # the server is shared with the other browser tests
    _write_notebook(jupyter_lab.root)
    page.goto(jupyter_lab.lab_url(NOTEBOOK))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LONG)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    jupyter_lab.wait_kernel_idle()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    panel = page.locator(".mesh-panel")
    panel.wait_for(timeout=LONG)
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-model-note').innerText.includes('image models')",
        timeout=LONG,
    )
    operations = panel.locator(".mesh-panel-operation select option")
    assert operations.count() == 8  # this model can do everything
    panel.locator(".mesh-panel-prompt textarea").fill("A lighthouse on a cliff at dawn, watercolor")
    panel.locator(".mesh-panel-generate").click()
    _status_has(page, "Done", 1)
    tiles = panel.locator(".mesh-panel-tile")

    # Upscale runs at once on the tile's image: a second tile, twice the size.
    tiles.nth(0).locator(".mesh-panel-upscale").click()
    _status_has(page, "Done", 2)
    assert "upscale x2" in tiles.nth(0).inner_text()
    assert [body["operation"] for body in _edits(mesh_process)[earlier:]] == ["upscale"]

    # Edit fills the input: the thumbnail shows, Run waits for a prompt, then edits.
    tiles.nth(1).locator(".mesh-panel-edit").click()
    panel.locator(".mesh-panel-chip img").wait_for(timeout=LONG)
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-operation select').selectedOptions[0].text === 'Edit'",
        timeout=LONG,
    )
    prompt = panel.locator(".mesh-panel-prompt textarea")
    prompt.fill("")
    page.wait_for_function("() => document.querySelector('.mesh-panel-generate').disabled", timeout=LONG)
    assert "needs a prompt" in panel.locator(".mesh-panel-estimate").inner_text()
    prompt.fill("make the sky stormy")
    page.wait_for_function("() => !document.querySelector('.mesh-panel-generate').disabled", timeout=LONG)
    assert panel.locator(".mesh-panel-generate").inner_text().strip() == "Edit"
    panel.locator(".mesh-panel-generate").click()
    _status_has(page, "Done", 3)
    edited = tiles.nth(0)
    assert "edit of" in edited.inner_text() and "make the sky stormy" in edited.inner_text()
    sent = _edits(mesh_process)[earlier:]
    assert [body["operation"] for body in sent] == ["upscale", "edit"]
    assert sent[-1]["prompt"] == "make the sky stormy"
    assert all(
        page.evaluate("(img) => img.complete && img.naturalWidth > 0", handle)
        for handle in panel.locator(".mesh-panel-tile img").element_handles()
    ), "every tile's picture decoded"
    assert panel.locator(".mesh-panel-error").count() == 0
    jupyter_lab.wait_kernel_idle()

    ARTIFACTS.mkdir(exist_ok=True)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "panel-edit.png"))
    if os.environ.get("MESH_MAGIC_UPDATE_DOCS") == "1":
        shutil.copy(ARTIFACTS / "panel-edit.png", REPO / "docs" / "panel-edit.png")
