"""The quickstart exported to HTML (nbconvert's lab template, light and dark) still shows its images.

nbconvert exports the saved, executed notebooks/quickstart.ipynb as `scripts/demo` does;
Chromium opens the file with every request off the machine refused (the export links
MathJax and fonts on a CDN: the page must not need them). Every thumbnail must decode,
there must be as many as the notebook holds, and the text inside mesh_magic's output must
be legible in both themes. Screenshots: test-artifacts/exported-quickstart-{light,dark}.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbconvert import HTMLExporter

from tests.support.paths import ARTIFACTS, NOTEBOOKS

pytestmark = pytest.mark.browser

CONTRAST_JS = (Path(__file__).parent / "legibility.js").read_text()
LEGIBLE = 3.0


def _images_in(nb: Any) -> int:
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            count += output.get("data", {}).get("text/html", "").count("<img ")
    return count


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_exported_quickstart_renders_its_images(page: Any, tmp_path: Path, theme: str) -> None:
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    expected = _images_in(nb)
    assert expected >= 10, "the saved quickstart is executed, with its grids"
    body, _ = HTMLExporter(template_name="lab", theme=theme).from_notebook_node(nb)
    target = tmp_path / f"quickstart-{theme}.html"
    target.write_text(body, encoding="utf-8")

    refused: list[str] = []

    def local_only(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(target.as_uri(), wait_until="load")
    images = page.locator(".mesh-magic-result img")
    assert images.count() == expected
    broken = page.evaluate(
        "() => [...document.querySelectorAll('.mesh-magic-result img')]"
        ".filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.alt)"
    )
    assert broken == []
    results = page.locator(".mesh-magic-result")
    measured = [results.nth(i).evaluate(CONTRAST_JS) for i in range(results.count())]
    worst = min(measured, key=lambda found: found["ratio"])
    assert worst["ratio"] >= LEGIBLE, worst
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    dark = sum(int(c) for c in background[4:-1].split(",")[:3]) / 3 < 80
    assert dark == (theme == "dark"), background
    ARTIFACTS.mkdir(exist_ok=True)
    results.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"exported-quickstart-{theme}.png"))
    (ARTIFACTS / f"exported-quickstart-{theme}-contrast.json").write_text(
        json.dumps({"worst": worst, "refused_requests": refused}, indent=2)
    )
