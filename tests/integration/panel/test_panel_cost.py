"""The panel's estimate for what the form would send, and Generate off while a limit refuses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesh_magic.core import config as _config
from mesh_magic.server import MeshServer
from mesh_magic.widget_panel import ImagePanel
from tests.support.servers import generations


def shown(widget: Any) -> str:
    import re

    return re.sub(r"<[^>]+>", "", widget.value)


def test_the_estimate_follows_the_form(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Any
) -> None:
    p = make_panel(model="google/imagen-4")
    wait_for(lambda: len(p.model.options) > 1, 5, "the model list")
    p.prompt.value = "a red kite"
    assert shown(p.estimate_line) == "Estimated: $0.03"
    p.n.value = 3
    assert shown(p.estimate_line) == "Estimated: ~$0.09 for 3 images"
    p.model.value = "google/imagen-4,stability/sdxl-turbo"
    assert shown(p.estimate_line) == "Estimated: ~$0.09 for 6 images"
    p.model.value = "meshapi/data-uri-preview"
    assert "unknown (no price for meshapi/data-uri-preview)" in shown(p.estimate_line)
    assert not p.generate_button.disabled  # no limit set: an unknown price is fine


def test_over_max_cost_generate_is_off_and_says_why(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Any
) -> None:
    _config.configure(max_cost=0.10)
    p = make_panel(model="openai/gpt-image-1", size="64x64")
    wait_for(lambda: len(p.model.options) > 1, 5, "the model list")
    p.prompt.value = "a lighthouse"
    p.n.value = 2
    assert not p.generate_button.disabled  # $0.08
    p.n.value = 3
    assert p.generate_button.disabled
    assert "over max_cost $0.10" in p.generate_button.tooltip
    assert "not sent" in shown(p.estimate_line) and "~$0.12 for 3 images" in shown(p.estimate_line)
    p.generate_button.click()  # a disabled button in a browser sends nothing; from code, neither
    assert generations(server) == []
    p.n.value = 1
    assert not p.generate_button.disabled
    p.generate_button.click()
    result = p.wait(10)
    assert result is not None and len(result) == 1 and result.cost == 0.04
    assert len(generations(server)) == 1


def test_the_budget_turns_generate_off_after_spending(
    make_panel: Callable[..., ImagePanel], server: MeshServer, wait_for: Any
) -> None:
    _config.configure(budget=0.05)
    p = make_panel(model="openai/gpt-image-1", size="64x64")
    wait_for(lambda: len(p.model.options) > 1, 5, "the model list")
    p.prompt.value = "a bridge"
    assert not p.generate_button.disabled
    p.generate_button.click()
    p.wait(10)
    # $0.04 spent: another $0.04 would pass the $0.05 budget.
    assert p.generate_button.disabled
    assert "over budget $0.05 ($0.04 spent)" in p.generate_button.tooltip
