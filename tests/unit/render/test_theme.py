"""Every HTML the package shows follows JupyterLab's light and dark themes.

Colours are JupyterLab theme variables with a fallback (`var(--jp-..., fallback)`);
no text is given a fixed colour of its own except through one; no element gets a
solid background. Checked on the grid (captions, error tiles, notes, interrupted),
history, the progress box, the config and model tables and the panel's HTML bits.
"""

from __future__ import annotations

import re

import pytest

from mesh_magic.core.catalog import ImageModel
from mesh_magic.core.config import resolve
from mesh_magic.core.errors import RateLimitError
from mesh_magic.core.generate import new_progress, plan
from mesh_magic.core.results import ImageResult, ItemError
from mesh_magic.render.captions import gallery_caption_html
from mesh_magic.render.grid import result_html
from mesh_magic.render.html import status_html
from mesh_magic.render.progress import progress_html
from mesh_magic.render.tables import ConfigTable, ModelTable
from mesh_magic.widget_panel.status import error_html
from tests.support.results import image

STYLE = re.compile(r"""style=(?:"([^"]*)"|'([^']*)')""")
COLOUR_PROPS = ("color", "background", "background-color", "border", "border-color")
VAR = re.compile(r"var\(--jp-[\w-]+,\s*[^()]*(?:\([^()]*\))?[^()]*\)")


def _declarations(html: str) -> list[tuple[str, str]]:
    out = []
    for match in STYLE.finditer(html):
        for item in (match.group(1) or match.group(2)).split(";"):
            if ":" in item:
                prop, value = item.split(":", 1)
                out.append((prop.strip().lower(), value.strip()))
    return out


def _samples() -> dict[str, str]:
    failing = ItemError("a fox", "m/c", RateLimitError("slow down", status=429, retry_after=4), row=1)
    result = ImageResult(
        [image(0, 0, revised="a red fox, detailed")],
        [failing],
        rows=[("a fox", "m/a"), ("a fox", "m/c")],
        notes=["m/a makes one image per request"],
        interrupted=True,
    )
    call = plan("a lighthouse", {"base_url": "offline", "n": 2})
    progress = new_progress(call)
    return {
        "grid": result_html(result),
        "progress": progress_html(progress, call.total_images),
        "config table": ConfigTable(resolve({"base_url": "offline"}))._repr_html_(),
        "model table": ModelTable(
            [ImageModel.from_entry({"id": "m/a", "name": "A", "pricing": {"image": "0.04"}})]
        )._repr_html_(),
        "panel caption": gallery_caption_html(image(0, 0)),
        "panel status": "".join(status_html("x", kind) for kind in ("ok", "warn", "error", "busy", "")),
        "panel error": error_html("Save", RateLimitError("slow down", status=429)),
    }


SAMPLES = _samples()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_colours_are_theme_variables_with_fallbacks(name: str) -> None:
    for prop, value in _declarations(SAMPLES[name]):
        if prop not in COLOUR_PROPS:
            continue
        bare = VAR.sub("", value)
        hard = re.findall(r"#[0-9a-fA-F]{3,8}\b|\brgba?\([^)]*\)|\b(?:black|white|gr[ae]y|red|green)\b", bare)
        if prop == "background" or prop == "background-color":
            # A tint may be a fixed translucent colour (it works on light and dark alike).
            hard = [h for h in hard if not re.fullmatch(r"rgba\([^)]*,\s*\.(?:0\d|1\d|2\d)\)", h)]
        elif prop.startswith("border"):
            hard = [h for h in hard if h.startswith("rgba(")]  # translucent borders read on both
            hard = [h for h in hard if not re.search(r",\s*\.\d+\)$", h)]
        assert hard == [], f"{name}: {prop}:{value} hard-codes {hard}"
        assert "var(" not in bare, f"{name}: {prop}:{value} has a var() without a fallback"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_no_solid_backgrounds_and_text_colour_only_from_the_theme(name: str) -> None:
    for prop, value in _declarations(SAMPLES[name]):
        if prop == "color":
            assert value == "inherit" or value.startswith("var(--jp-"), f"{name}: color:{value}"
        if prop in ("background", "background-color"):
            assert value.startswith("rgba(") or value.startswith("var(--jp-"), f"{name}: {prop}:{value}"


def test_the_samples_hold_what_they_should() -> None:
    grid = SAMPLES["grid"]
    assert "Interrupted" in grid and "slow down" in grid and "one image per request" in grid
    assert (
        "var(--jp-error-color1" in grid
        and "var(--jp-warn-color1" in grid
        and "var(--jp-border-color2" in grid
    )
    assert "var(--jp-success-color1" in SAMPLES["panel status"]
    assert len(_declarations(grid)) > 10
