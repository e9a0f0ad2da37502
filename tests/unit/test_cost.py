"""Estimates, limits and the spend ledger of core/cost.py, and the catalog's records and queries."""

from __future__ import annotations

import pytest

from mesh_magic.core.catalog import ImageModel, ModelQuery, cheapest_with, model_query, records
from mesh_magic.core.cost import (
    CostLimitError,
    Estimate,
    ModelCost,
    SpendLedger,
    check_limits,
    estimate,
    format_usd,
)
from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.results import GeneratedImage, ImageResult
from tests.support.images import make_image

MODELS = records(
    [
        {
            "id": "a/cheap",
            "name": "Cheap",
            "pricing": {"image_output_usd_per_image": "0.003"},
            "supports_image_upscale": True,
            "supports_image_edit": False,
        },
        {
            "id": "b/dear",
            "name": "Dear",
            "pricing": {"image_output_usd_per_image": "0.065"},
            "supports_image_upscale": True,
        },
        {"id": "c/free", "name": "Free", "is_free": True},
        {"id": "d/unpriced", "name": "Unpriced", "supports_image_upscale": True},
        {"id": "e/text", "name": "Text", "output_modalities": ["text"]},
    ]
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "$0"),
        (0.04, "$0.04"),
        (0.003, "$0.003"),
        (0.065, "$0.065"),
        (1.2, "$1.20"),
        (12, "$12.00"),
        (0.12345, "$0.1235"),
    ],
)
def test_format_usd(value: float, text: str) -> None:
    assert format_usd(value) == text


def test_records_read_prices_and_capabilities() -> None:
    by_id = {m.id: m for m in MODELS}
    assert "e/text" not in by_id
    assert by_id["a/cheap"].price == 0.003 and by_id["c/free"].price == 0.0 and by_id["c/free"].is_free
    assert by_id["a/cheap"].supports("upscale") is True
    assert by_id["a/cheap"].supports("edit") is False
    assert by_id["a/cheap"].supports("mix") is None  # the entry says nothing: unknown
    assert by_id["a/cheap"]["pricing"] == {"image_output_usd_per_image": "0.003"}  # raw at hand
    assert isinstance(by_id["b/dear"], ImageModel) and by_id["b/dear"].marks == "upscale"


def test_queries_filter_and_sort() -> None:
    assert [m.id for m in ModelQuery(sort="price").select(MODELS)] == [
        "c/free",
        "a/cheap",
        "b/dear",
        "d/unpriced",
    ]
    assert [m.id for m in ModelQuery(free=True).select(MODELS)] == ["c/free"]
    assert [m.id for m in ModelQuery(max_price=0.01).select(MODELS)] == ["a/cheap", "c/free"]
    assert [m.id for m in cheapest_with(MODELS, "upscale")] == ["a/cheap", "b/dear", "d/unpriced"]
    assert [m.id for m in cheapest_with(MODELS, "upscale", limit=1)] == ["a/cheap"]
    with pytest.raises(InvalidOptionError, match="Unknown operation"):
        model_query(operation="paint")
    with pytest.raises(InvalidOptionError, match="sort must be"):
        model_query(sort="size")
    assert model_query(max_price="$0.05").max_price == 0.05


def requests(model: str, n: int, rows: int = 1, start: int = 0) -> list[ImageRequest]:
    return [ImageRequest(f"p{i}", model, n=n, row=start + i) for i in range(rows)]


def test_estimate_lines_and_text() -> None:
    found = estimate(requests("a/cheap", 2, rows=2) + requests("c/free", 1, start=2), MODELS)
    assert found.images == 5 and found.usd == pytest.approx(0.012)
    assert found.text() == "~$0.012 for 5 images"
    cached = estimate(requests("b/dear", 2, rows=2), MODELS, cached_rows={0})
    assert (cached.images, cached.cached) == (2, 2) and cached.usd == pytest.approx(0.13)
    everything_cached = estimate(requests("b/dear", 3), MODELS, cached_rows={0})
    assert everything_cached.text() == "$0 (3 images from the cache)"
    unknown = estimate(requests("x/new", 1), MODELS)
    assert unknown.usd is None and unknown.unpriced == ["x/new"]


def test_limits() -> None:
    found = Estimate((ModelCost("b/dear", 4, 0, 0.065),))
    check_limits(found, max_cost=None, budget=None, spent=100)  # no limits: anything goes
    check_limits(found, max_cost=0.26, budget=None, spent=0)  # exactly at the limit
    with pytest.raises(CostLimitError, match=r"~\$0.26 for 4 images, over max_cost \$0.25"):
        check_limits(found, max_cost=0.25, budget=None, spent=0)
    with pytest.raises(CostLimitError, match=r"spend to \$1.26, over budget \$1.00 \(\$1.00 spent\)"):
        check_limits(found, max_cost=None, budget=1.0, spent=1.0)
    unpriced = Estimate((ModelCost("x/new", 1),), catalog_error="the model list could not be read: 503")
    with pytest.raises(CostLimitError, match="No known price for x/new .the model list could not be read"):
        check_limits(unpriced, max_cost=5, budget=None, spent=0)
    check_limits(Estimate((ModelCost("x/new", 0, 2),)), max_cost=0, budget=0, spent=0)  # all cached


def image(model: str, cost: float | None, cached: bool = False, partial: bool = False) -> GeneratedImage:
    return GeneratedImage(
        data=make_image(),
        mime_type="image/png",
        width=40,
        height=20,
        prompt="p",
        model=model,
        cost=cost,
        cached=cached,
        partial=partial,
    )


def test_the_ledger_counts_paid_unpriced_and_cached_images() -> None:
    book = SpendLedger()
    book.record(
        ImageResult(
            [
                image("a", 0.04),
                image("a", 0.04),
                image("a", 0.0, cached=True),
                image("b", None),
                image("a", 0.04, partial=True),
            ]
        )
    )
    rows = {r.model: r for r in book.rows()}
    assert (rows["a"].images, rows["a"].usd, rows["a"].cached) == (2, pytest.approx(0.08), 1)
    assert (rows["b"].images, rows["b"].unpriced_images, rows["b"].known) == (1, 1, False)
    assert book.total == pytest.approx(0.08)
    assert ImageResult([image("a", 0.04), image("b", None)]).cost is None
    assert ImageResult([image("a", 0.04), image("a", 0.0, cached=True)]).cost == pytest.approx(0.04)
