"""The grid, captions, progress box, tables and panel, legible in every front end.

One notebook (a %%meshimg grid, a model comparison with a failing model, the config and
model tables, the panel) runs in JupyterLab's light theme, its dark theme and Notebook 7,
in headless Chromium. In each: the progress box shows while the server is slow, the grid
and the error tile arrive, the panel generates (and shows an error) when clicked, and every
text inside mesh_magic's output has enough contrast against what it really sits on (WCAG
ratio >= 3, composited through translucent backgrounds and opacity). Screenshots land in
test-artifacts/frontend-<front end>-{grid,panel}.png; with MESH_MAGIC_UPDATE_DOCS=1 the
light and dark grids are put side by side in docs/themes.png (the README's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.notebooks import code_notebook
from tests.support.paths import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

LONG = 60_000  # ms: anything involving the kernel
LEGIBLE = 3.0  # WCAG contrast ratio: large-text AA; body text of these outputs is 12-13 px bold/normal
CONTRAST_JS = (Path(__file__).parent / "legibility.js").read_text()
NOTEBOOK = "frontends.ipynb"
CELLS = [
    "%load_ext mesh_magic",
    "%%meshimg -n 2 -s 256x256\nA lighthouse on a cliff at dawn, watercolor",
    "%%meshimg -m google/imagen-4,no/such-model -s 192x192\nA paper boat on a pond, ink sketch",
    "%meshimg_config",
    "%meshimg_models flux",
    "import mesh_magic\np = mesh_magic.panel(n=1, size='256x256')\np",
]
FRONT_ENDS = {
    "lab-light": ("lab", "JupyterLab Light"),
    "lab-dark": ("lab", "JupyterLab Dark"),
    "notebook7": ("notebook7", "JupyterLab Light"),
}


def _write_notebook(root: Path) -> None:
    nbformat.write(code_notebook(*CELLS), root / NOTEBOOK)


def _run_all_cells(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def _contrast(locator: Any) -> dict[str, Any]:
    found: dict[str, Any] = locator.evaluate(CONTRAST_JS)
    return found


def _open(page: Any, jupyter_lab: Any, app: str) -> None:
    url = jupyter_lab.lab_url(NOTEBOOK) if app == "lab" else jupyter_lab.notebook7_url(NOTEBOOK)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LONG)
    if app == "lab":  # fold the file browser away: the notebook gets the width
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    jupyter_lab.wait_kernel_idle()


def _drive_the_panel(page: Any) -> Any:
    panel = page.locator(".mesh-panel")
    panel.wait_for(timeout=LONG)
    panel.locator(".mesh-panel-prompt textarea").fill("A red fox in fresh snow, woodcut")
    panel.locator(".mesh-panel-generate").click()
    panel.locator(".mesh-panel-gallery img").first.wait_for(timeout=LONG)
    page.wait_for_function(
        "() => document.querySelector('.mesh-panel-status').innerText.includes('Done')", timeout=LONG
    )
    model = panel.locator(".mesh-panel-model input")
    model.fill("no/such-model")
    panel.locator(".mesh-panel-generate").click()
    panel.locator(".mesh-panel-error").wait_for(timeout=LONG)
    return panel


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_outputs_and_panel_are_legible(
    page: Any, jupyter_lab: Any, mesh_process: Any, front_end: str
) -> None:
    app, theme = FRONT_ENDS[front_end]
    jupyter_lab.theme(theme)
    _write_notebook(jupyter_lab.root)
    mesh_process.control("/_mesh/latency", {"latency": 1.5})  # long enough for the progress box
    try:
        _open(page, jupyter_lab, app)
        _run_all_cells(page)
        # The box is redrawn a few times a second: find and measure it in one step.
        measured = page.wait_for_function(
            f"""() => {{
                const box = document.querySelector('.mesh-magic-progress');
                if (!box || !box.innerText.includes('Generating')) return null;
                box.scrollIntoView();
                const found = ({CONTRAST_JS})(box);
                return found.texts ? found : null;
            }}""",
            timeout=LONG,
        )
        seen = {"progress box": measured.json_value()}
        results = page.locator(".mesh-magic-result")
        page.locator(".mesh-magic-result img").nth(2).wait_for(timeout=LONG)
        assert page.locator(".mesh-magic-progress").count() == 0, "the grid replaced the progress box"
        mesh_process.control("/_mesh/latency", {"latency": 0.0})
        panel = _drive_the_panel(page)
        jupyter_lab.wait_kernel_idle()
    finally:
        mesh_process.control("/_mesh/latency", {"latency": 0.0})

    assert results.count() == 2
    grid, comparison = results.nth(0), results.nth(1)
    assert grid.locator("img").count() == 2 and grid.locator("figcaption").count() == 2
    assert comparison.locator("img").count() == 1 and "no/such-model" in comparison.inner_text()
    assert all(
        page.evaluate("(img) => img.complete && img.naturalWidth > 0", handle)
        for handle in page.locator(".mesh-magic-result img").element_handles()
    ), "every thumbnail decoded"
    tables = page.locator(".jp-OutputArea-output table")
    assert tables.count() >= 2
    seen |= {
        "grid with captions": _contrast(grid),
        "comparison with error tile": _contrast(comparison),
        "config table": _contrast(tables.nth(0)),
        "model table": _contrast(tables.nth(1)),
        "panel": _contrast(panel),
    }
    dark = theme.endswith("Dark")
    page_luminance = sum(int(c) for c in seen["panel"]["here"][4:-1].split(",")) / 3
    assert (page_luminance < 80) if dark else (page_luminance > 200), seen["panel"]["here"]
    failing = {
        where: found for where, found in seen.items() if found["ratio"] < LEGIBLE or found["texts"] == 0
    }
    assert failing == {}, f"{front_end}: text below {LEGIBLE}:1 contrast (or no text found): {failing}"

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"frontend-{front_end}-contrast.json").write_text(json.dumps(seen, indent=2))
    grid.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"frontend-{front_end}-grid.png"))
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / f"frontend-{front_end}-panel.png"))
    jupyter_lab.theme("JupyterLab Light")
    if front_end == "lab-dark" and os.environ.get("MESH_MAGIC_UPDATE_DOCS") == "1":
        _docs_image()


def _docs_image() -> None:
    """docs/themes.png: the light and the dark grid side by side."""
    from PIL import Image

    shots = [Image.open(ARTIFACTS / f"frontend-lab-{name}-grid.png") for name in ("light", "dark")]
    width = min(s.width for s in shots)
    height = min(s.height for s in shots)
    joined = Image.new("RGB", (width * 2, height))
    for i, shot in enumerate(shots):
        joined.paste(shot.crop((0, 0, width, height)), (i * width, 0))
    joined.thumbnail((1600, 1600))
    joined.save(REPO / "docs" / "themes.png", optimize=True)
