"""Before anything is sent: a call's estimate (catalog prices, store hits) and its spend limits.

`prepare` is what the front ends call: `plan` (validate, build requests), then
`price` (estimate from the catalog, counting what the store will serve as free),
then the `max_cost` / `budget` check. A catalog that cannot be read never blocks
a call: its prices are unknown (refused only when a limit needs them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .catalog import ImageModel, fetch_records
from .cost import Estimate, check_limits, estimate, ledger
from .edits import check_capabilities
from .errors import MeshImageError
from .generate import Plan, plan
from .store import Store


def _cached_rows(call: Plan) -> set[int]:
    """Rows the store will answer (cache on or replay, not --fresh): they cost nothing."""
    settings = call.settings
    if settings.cache == "off" or call.fresh:
        return set()
    if settings.cache == "replay":
        return {r.row for r in call.requests}  # never calls the API: a miss fails, unbilled
    store = Store.for_settings(settings)
    rows = set()
    for request in call.requests:
        found = store.lookup(request, settings.base_url)
        # A partly stored answer is priced whole: the estimate may be high, never low.
        if found is not None and not found.missing:
            rows.add(request.row)
    return rows


async def aprice(call: Plan) -> Plan:
    """`call` with its estimate and per-model prices (on the engine loop)."""
    cached = await asyncio.to_thread(_cached_rows, call)
    models: list[ImageModel] = []
    error: str | None = None
    if any(r.row not in cached for r in call.requests):
        try:
            models = await fetch_records(call.settings)
        except MeshImageError as exc:
            error = f"the model list could not be read: {exc.message}"
    check_capabilities([r for r in call.requests if r.row not in cached], models)
    found: Estimate = estimate(call.requests, models, cached, error)
    prices = {line.model: line.price for line in found.lines}
    return replace(call, estimate=found, prices=prices)


def price(call: Plan) -> Plan:
    """`aprice` from sync code."""
    from .engine.loop import engine

    return engine().run(aprice(call))


def check(call: Plan) -> Plan:
    """Refuse (CostLimitError) a call over `max_cost` or the session's `budget`."""
    if call.estimate is not None:
        settings = call.settings
        check_limits(call.estimate, max_cost=settings.max_cost, budget=settings.budget, spent=ledger().total)
    return call


def prepare(prompts: str | Sequence[str], options: Mapping[str, Any] | None = None) -> Plan:
    """Validate, estimate and check a call; nothing is sent (raises InvalidOptionError)."""
    return check(price(plan(prompts, options)))


async def aprepare(prompts: str | Sequence[str], options: Mapping[str, Any] | None = None) -> Plan:
    return check(await aprice(plan(prompts, options)))
