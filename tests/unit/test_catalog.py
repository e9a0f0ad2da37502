"""The model catalog: prices, image models, matching, and the per-source cache (core.catalog)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mesh_magic.core import catalog as _catalog
from mesh_magic.core.catalog import (
    CATALOG_TTL,
    Catalog,
    ModelEntry,
    is_image_model,
    matching,
    price_per_image,
)
from mesh_magic.core.engine.loop import engine
from mesh_magic.core.errors import AuthenticationError
from mesh_magic.core.settings import Settings
from tests.support.mock_api import API_BASE, json_response

# -- price_per_image -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "price"),
    [
        ({"image_output_usd_per_image": 0.04}, 0.04),
        ({"price_per_image": 1}, 1.0),
        ({"usd_per_image": 0.5}, 0.5),
        ({"price_per_image": 0}, 0.0),
        ({"pricing": {"usd_per_image": 0.02}}, 0.02),
        # The first field in order wins.
        ({"usd_per_image": 9, "image_output_usd_per_image": 0.01}, 0.01),
        # `pricing` (the SDK's place for it) beats a top-level field (SPEC 9).
        ({"price_per_image": 0.1, "pricing": {"price_per_image": 0.2}}, 0.2),
        ({"image_output_usd_per_image": 0.1, "pricing": {"prompt_usd_per_1m": "2"}}, 0.1),
        # is_free means 0, whatever else is there.
        ({"is_free": True, "pricing": {"image_output_usd_per_image": "0.04"}}, 0.0),
    ],
)
def test_price_from_numbers(entry: dict[str, Any], price: float) -> None:
    found = price_per_image(entry)
    assert found == price
    assert isinstance(found, float)


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"id": "m/x"},
        {"price_per_image": True},
        {"price_per_image": None},
        {"price_per_image": [0.1]},
        {"pricing": "cheap"},
        {"pricing": {"prompt": 0.001}},
        {"cost": 0.04},
    ],
)
def test_no_price(entry: dict[str, Any]) -> None:
    assert price_per_image(entry) is None


@pytest.mark.parametrize(
    ("entry", "price"),
    [
        ({"price_per_image": "0.04"}, 0.04),
        ({"pricing": {"usd_per_image": "0.02"}}, 0.02),
        ({"pricing": {"image_output_usd_per_image": " 0.0300 "}}, 0.03),
        ({"pricing": {"image_output_usd_per_image": "free"}}, None),
        ({"pricing": {"image_output_usd_per_image": "-1"}}, None),
        ({"pricing": {"image_output_usd_per_image": "nan"}}, None),
        ({"pricing": {"image_output_usd_per_image": "inf"}}, None),
    ],
)
def test_numeric_strings_are_prices(entry: dict[str, Any], price: float | None) -> None:
    assert price_per_image(entry) == price


def test_a_string_price_does_not_hide_a_numeric_one_in_pricing() -> None:
    assert price_per_image({"price_per_image": "0.04", "pricing": {"price_per_image": 0.05}}) == 0.05


# -- is_image_model and matching -------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "image"),
    [
        ({"id": "a"}, True),
        ({"id": "a", "output_modalities": ["image"]}, True),
        ({"id": "a", "output_modalities": ["text", "image"]}, True),
        ({"id": "a", "output_modalities": ["text"]}, False),
        ({"id": "a", "output_modalities": []}, False),
        ({"id": "a", "output_modalities": None}, True),
        ({"id": "a", "output_modalities": "text"}, True),  # not a list: unknown shape, kept
    ],
)
def test_is_image_model(entry: dict[str, Any], image: bool) -> None:
    assert is_image_model(entry) is image


ENTRIES: list[ModelEntry] = [
    {"id": "openai/gpt-image-1", "name": "GPT Image 1"},
    {"id": "google/imagen-4", "name": "Imagen 4", "output_modalities": ["image"]},
    {"id": "openai/gpt-4o", "name": "GPT-4o", "output_modalities": ["text"]},
    {"id": "black-forest-labs/flux-pro", "name": "FLUX Pro"},
    {"id": "stability/sdxl"},
]


def ids(entries: list[ModelEntry]) -> list[str]:
    return [str(m["id"]) for m in entries]


def test_matching_without_text_lists_image_models_sorted() -> None:
    assert ids(matching(ENTRIES, None)) == [
        "black-forest-labs/flux-pro",
        "google/imagen-4",
        "openai/gpt-image-1",
        "stability/sdxl",
    ]
    assert ids(matching(ENTRIES, "")) == ids(matching(ENTRIES, None))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("openai", ["openai/gpt-image-1"]),  # gpt-4o is a text model
        ("IMAGEN", ["google/imagen-4"]),
        ("flux pro", ["black-forest-labs/flux-pro"]),  # the name matches
        ("image", ["google/imagen-4", "openai/gpt-image-1"]),
        ("sdxl", ["stability/sdxl"]),
        ("nothing-like-it", []),
    ],
)
def test_matching_filters_by_id_or_name(text: str, found: list[str]) -> None:
    assert ids(matching(ENTRIES, text)) == found


def test_matching_does_not_change_its_input() -> None:
    entries = list(ENTRIES)
    matching(entries, "o")
    assert entries == ENTRIES


# -- Catalog ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, *answers: list[ModelEntry] | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> list[ModelEntry]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_models_are_fetched_once_per_source_within_ttl() -> None:
    clock = Clock()
    cat = Catalog(ttl=60, clock=clock)
    first = Fetcher([{"id": "a"}])

    async def go() -> None:
        assert await cat.models("s1", first) == [{"id": "a"}]
        clock.now += 59
        assert await cat.models("s1", first) == [{"id": "a"}]

    asyncio.run(go())
    assert first.calls == 1
    assert cat.cached("s1") == [{"id": "a"}]


def test_sources_are_cached_apart() -> None:
    cat = Catalog(clock=Clock())
    one, two = Fetcher([{"id": "a"}]), Fetcher([{"id": "b"}])

    async def go() -> None:
        assert await cat.models("https://one#1", one) == [{"id": "a"}]
        assert await cat.models("https://two#1", two) == [{"id": "b"}]
        assert await cat.models("https://one#1", two) == [{"id": "a"}]

    asyncio.run(go())
    assert (one.calls, two.calls) == (1, 1)
    assert cat.cached("https://three#1") is None


def test_refetched_after_ttl() -> None:
    clock = Clock()
    cat = Catalog(ttl=60, clock=clock)
    fetch = Fetcher([{"id": "old"}], [{"id": "new"}])

    async def go() -> None:
        await cat.models("s", fetch)
        clock.now += 60  # exactly the ttl: still fresh
        assert cat.cached("s") == [{"id": "old"}]
        clock.now += 0.5
        assert cat.cached("s") is None
        assert await cat.models("s", fetch) == [{"id": "new"}]
        clock.now += 30  # the new answer is timed from its own fetch
        assert await cat.models("s", fetch) == [{"id": "new"}]

    asyncio.run(go())
    assert fetch.calls == 2


def test_errors_propagate_and_are_not_cached() -> None:
    cat = Catalog(clock=Clock())
    fetch = Fetcher(AuthenticationError("bad key"), [{"id": "a"}])

    async def go() -> None:
        with pytest.raises(AuthenticationError, match="bad key"):
            await cat.models("s", fetch)
        assert cat.cached("s") is None
        assert await cat.models("s", fetch) == [{"id": "a"}]

    asyncio.run(go())
    assert fetch.calls == 2


def test_an_error_after_expiry_keeps_nothing_stale() -> None:
    clock = Clock()
    cat = Catalog(ttl=10, clock=clock)
    fetch = Fetcher([{"id": "a"}], RuntimeError("down"))

    async def go() -> None:
        await cat.models("s", fetch)
        clock.now += 11
        with pytest.raises(RuntimeError, match="down"):
            await cat.models("s", fetch)

    asyncio.run(go())
    assert cat.cached("s") is None


def test_clear_forgets_everything() -> None:
    cat = Catalog(clock=Clock())
    fetch = Fetcher([{"id": "a"}], [{"id": "b"}])

    async def go() -> None:
        await cat.models("s", fetch)
        cat.clear()
        assert cat.cached("s") is None
        assert await cat.models("s", fetch) == [{"id": "b"}]

    asyncio.run(go())
    assert fetch.calls == 2


def test_default_ttl_and_session_catalog() -> None:
    assert Catalog().ttl == CATALOG_TTL == 300.0
    assert _catalog.catalog() is _catalog.catalog()


def test_image_models_through_the_engine(settings: Callable[..., Settings]) -> None:
    seen: list[httpx.Request] = []
    models = [
        {"id": "m/zeta", "name": "Zeta"},
        {"id": "m/alpha", "name": "Alpha", "pricing": {"usd_per_image": 0.01}},
        {"id": "m/chat", "output_modalities": ["text"]},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response({"data": models})

    engine().set_transport(httpx.MockTransport(handler))
    _catalog.catalog().clear()
    try:
        found = _catalog.image_models(settings())
        assert ids(found) == ["m/alpha", "m/zeta"]
        assert ids(_catalog.image_models(settings(), _catalog.ModelQuery("zet"))) == ["m/zeta"]
        assert found[0].price == 0.01 and found[0]["pricing"] == {"usd_per_image": 0.01}
        assert len(seen) == 1  # the second call came from the session catalog
        assert str(seen[0].url) == f"{API_BASE}/v1/models?type=image"
        _catalog.image_models(settings(api_key="rsk_another_key_0000000000"))
        assert len(seen) == 2  # another key is another source
    finally:
        _catalog.catalog().clear()
