"""Cost you can trust, over loopback: estimates, limits that send nothing, spend, the catalog.

The test server's catalog has priced models (gpt-image-1 $0.04, imagen-4 $0.03,
flux-schnell $0.003), a free one (sdxl-turbo) and an unpriced one (data-uri-preview).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import mesh_magic
from mesh_magic import InvalidOptionError, configure
from mesh_magic.core.catalog import catalog
from mesh_magic.core.cost import CostLimitError, ledger
from mesh_magic.core.pricing import prepare
from mesh_magic.server import Fault, MeshServer
from tests.support.servers import generations

PRICED, FREE, UNPRICED = "openai/gpt-image-1", "stability/sdxl-turbo", "meshapi/data-uri-preview"
URL_PRICED, URL_PRICE = "google/imagen-4", 0.03  # answers url items, served from /v1/files


def listings(server: MeshServer) -> list[Any]:
    return [r for r in server.requests if r.path == "/v1/models"]


def test_estimates_for_priced_free_and_unpriced_models(server: MeshServer) -> None:
    call = prepare(["a fox", "a hen"], {"model": f"{PRICED},{FREE}", "n": 2, "size": "64x64"})
    assert call.estimate is not None
    assert call.estimate.usd == pytest.approx(2 * 2 * 0.04)  # the free model adds nothing
    assert call.estimate.text() == "~$0.16 for 8 images"
    mixed = prepare("a fox", {"model": f"{PRICED},{UNPRICED}", "size": "64x64"}).estimate
    assert mixed is not None and mixed.usd is None and mixed.unpriced == [UNPRICED]
    assert mixed.text() == f"~$0.04 + unknown (no price for {UNPRICED}) for 2 images"
    single = prepare("a fox", {"model": "black-forest-labs/flux-schnell", "size": "64x64"}).estimate
    assert single is not None and single.text() == "$0.003"
    assert generations(server) == []  # estimating sends no generation


def test_results_carry_their_cost_and_sidecars_keep_it(server: MeshServer) -> None:
    result = mesh_magic.generate("a fox", model=f"{PRICED},{FREE},{UNPRICED}", size="64x64")
    costs = {im.model: im.cost for im in result}
    assert costs == {PRICED: 0.04, FREE: 0.0, UNPRICED: None}
    assert result.cost is None  # one price unknown
    assert (
        "cost unknown (no price for meshapi/data-uri-preview)" in result._repr_mimebundle_()[0]["text/html"]
    )
    priced = next(im for im in result if im.model == PRICED)
    assert priced.path is not None
    assert json.loads(priced.path.with_suffix(".json").read_text())["cost"] == 0.04
    alone = mesh_magic.generate("a hen", model=PRICED, n=3, size="64x64")
    assert alone.cost == pytest.approx(0.12)
    assert "Cost: $0.12 for 3 images" in alone._repr_mimebundle_()[0]["text/html"]


def test_max_cost_refuses_before_sending(server: MeshServer) -> None:
    configure(max_cost=0.10)
    with pytest.raises(CostLimitError) as info:
        mesh_magic.generate("a fox", model=PRICED, n=3, size="64x64")
    message = str(info.value)
    assert "~$0.12 for 3 images" in message and "max_cost $0.10" in message
    assert "%meshimg_config max_cost=" in message
    assert generations(server) == []  # nothing was sent
    assert len(mesh_magic.generate("a fox", model=PRICED, n=2, size="64x64")) == 2  # $0.08 fits


def test_a_limit_refuses_a_model_without_a_known_price(server: MeshServer) -> None:
    configure(budget=5)
    with pytest.raises(CostLimitError, match=f"No known price for {UNPRICED}"):
        mesh_magic.generate("a fox", model=f"{PRICED},{UNPRICED}", size="64x64")
    assert generations(server) == []
    configure(budget=None)
    assert len(mesh_magic.generate("a fox", model=UNPRICED, size="64x64")) == 1  # no limit: sent


def test_the_budget_counts_what_the_session_spent(server: MeshServer) -> None:
    configure(budget=0.10)
    mesh_magic.generate("one", model=PRICED, n=2, size="64x64")  # $0.08
    before = len(generations(server))
    with pytest.raises(CostLimitError) as info:
        mesh_magic.generate("two", model=PRICED, size="64x64")  # $0.04 more: $0.12
    assert "would take the session's spend to $0.12, over budget $0.10 ($0.08 spent)" in str(info.value)
    assert len(generations(server)) == before
    mesh_magic.generate("free", model=FREE, size="64x64")  # a free model still fits


def test_generate_many_checks_the_whole_run_first(server: MeshServer) -> None:
    configure(max_cost=0.10)
    with pytest.raises(CostLimitError, match="~\\$0.20 for 5 images"):
        mesh_magic.generate_many(
            [f"prompt {i}" for i in range(5)], model=PRICED, size="64x64", progress=False
        )
    assert generations(server) == []


def test_cache_hits_cost_nothing_and_say_so(server: MeshServer) -> None:
    configure(cache="on")
    first = mesh_magic.generate("a lantern", model=PRICED, n=2, size="64x64")
    again = prepare("a lantern", {"model": PRICED, "n": 2, "size": "64x64"})
    assert again.estimate is not None and again.estimate.usd == 0
    assert again.estimate.text() == "$0 (2 images from the cache)"
    configure(max_cost=0.01)  # the cached call is under any limit
    second = mesh_magic.generate("a lantern", model=PRICED, n=2, size="64x64")
    assert first.cost == pytest.approx(0.08) and second.cost == 0
    assert all(im.cached and im.cost == 0 for im in second)
    assert "Cost: $0 (from the cache)" in second._repr_mimebundle_()[0]["text/html"]
    (row,) = mesh_magic.spend().rows
    assert (row.model, row.images, row.usd, row.cached) == (PRICED, 2, pytest.approx(0.08), 2)


def test_a_partly_stored_answer_is_priced_whole_and_bills_only_what_is_sent(server: MeshServer) -> None:
    configure(cache="on")
    server.add_fault(Fault("not_image", path="/v1/files", times=1))
    first = mesh_magic.generate("a kite", model=URL_PRICED, n=2, size="64x64", response_format="url")
    assert len(first) == 1 and len(first.errors) == 1
    again = prepare("a kite", {"model": URL_PRICED, "n": 2, "size": "64x64", "response_format": "url"})
    assert again.estimate is not None and again.estimate.usd == pytest.approx(2 * URL_PRICE)  # never low
    second = mesh_magic.generate("a kite", model=URL_PRICED, n=2, size="64x64", response_format="url")
    assert [im.cached for im in sorted(second, key=lambda im: im.index)].count(True) == 1
    assert second.cost == pytest.approx(URL_PRICE)  # only the missing image was bought


def test_spend_across_the_store(server: MeshServer) -> None:
    mesh_magic.generate("a fox", model=PRICED, n=2, size="64x64")
    mesh_magic.generate("a fox", model="google/imagen-4", size="64x64")
    ledger().clear()  # as if a new session: only the store remembers
    assert mesh_magic.spend().rows == []
    everything = mesh_magic.spend(all=True)
    assert {r.model: (r.images, round(r.usd, 3)) for r in everything.rows} == {
        PRICED: (2, 0.08),
        "google/imagen-4": (1, 0.03),
    }
    assert everything.total == pytest.approx(0.11)
    assert "Spent in the store at" in repr(everything)


def test_the_catalog_is_read_once_per_session_and_again_after_its_lifetime(
    server: MeshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for prompt in ("one", "two", "three"):
        mesh_magic.generate(prompt, model=PRICED, size="64x64")
    mesh_magic.models()
    assert len(listings(server)) == 1
    monkeypatch.setattr(catalog(), "ttl", 0.2)
    time.sleep(0.3)
    mesh_magic.generate("four", model=PRICED, size="64x64")
    assert len(listings(server)) == 2


def test_a_catalog_failure_leaves_generation_working(server: MeshServer) -> None:
    server.add_fault(Fault("status", status=503, path="/v1/models", times=-1))
    result = mesh_magic.generate("a fox", model=PRICED, size="64x64")
    assert len(result) == 1 and result[0].cost is None  # the price is unknown
    configure(max_cost=1.0)  # ... and a limit then refuses, saying why
    with pytest.raises(CostLimitError, match="model list could not be read"):
        mesh_magic.generate("a hen", model=PRICED, size="64x64")


def test_limits_are_validated() -> None:
    with pytest.raises(InvalidOptionError, match="US dollars"):
        configure(max_cost="a lot")
    configure(budget="$2.50")
    assert mesh_magic.MeshImg is not None and mesh_magic.configure().budget == 2.5
