"""The panel's estimate: what the form would send would cost, and whether a limit refuses it.

Recomputed as the inputs change, from the catalog the model picker loaded (no
request of its own). Over `max_cost` or `budget` (or with no known price while a
limit is set), or while the form cannot run yet (an edit without its image or
prompt), Generate is disabled and the line says why.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..core.cost import CostLimitError, check_limits, estimate, ledger
from ..core.errors import InvalidOptionError
from ..core.generate import plan
from ..render.html import status_html
from .models import ModelPicker

GENERATE_TIP = "Send the request (disabled while one is in flight)"


class EstimateView:
    """One line under the form: "Estimated: ~$0.12 for 3 images", or why Generate is off."""

    def __init__(
        self,
        picker: ModelPicker,
        prompt: Callable[[], str],
        options: Callable[[], dict[str, Any]],
        widget: widgets.HTML,
        not_ready: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.picker = picker
        self.prompt = prompt
        self.options = options
        self.not_ready = not_ready
        self.widget = widget
        self.widget.add_class("mesh-panel-estimate")
        self.blocked: str | None = None  # why a limit refuses what the form would send
        self.text = ""

    def update(self, generate: widgets.Button | None = None, *, idle: bool = True) -> None:
        """Recompute; when idle, `generate` is disabled (its tooltip the reason) while refused."""
        self._estimate()
        if generate is not None and idle:
            generate.disabled = self.blocked is not None
            generate.tooltip = self.blocked or GENERATE_TIP

    def _estimate(self) -> None:
        reason = self.not_ready()
        if reason is not None:
            self._show("", reason)
            return
        try:
            call = plan(self.prompt().strip() or "a prompt", self.options())
        except InvalidOptionError:
            self._show("", None)  # the form's own error shows when Generate is pressed
            return
        found = estimate(call.requests, self.picker.records, None, self.picker.error)
        settings = call.settings
        try:
            check_limits(found, max_cost=settings.max_cost, budget=settings.budget, spent=ledger().total)
        except CostLimitError as refusal:
            self._show(f"Estimated: {found.text()}", refusal.message)
            return
        self._show(f"Estimated: {found.text()}", None)

    def _show(self, text: str, blocked: str | None) -> None:
        self.text, self.blocked = text, blocked
        if blocked is None:
            self.widget.value = f'<span style="font-size:12px;opacity:.8">{html.escape(text)}</span>'
        elif not text:
            self.widget.value = status_html(f"Not ready: {blocked}.", "warn")
        else:
            self.widget.value = status_html(f"{text} — not sent: {blocked}", "warn")
