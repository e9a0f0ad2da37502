"""A partly failed request resumes only its missing images (core.engine.runner with core.store)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh_magic.core.engine.loop import engine
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.core.engine.runner import run_requests
from mesh_magic.core.errors import CacheMissError
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.settings import Settings
from mesh_magic.core.store import Store, cache_key
from tests.support.engine_calls import Api, call, error, prompts
from tests.support.images import b64, make_image
from tests.support.mock_api import json_response
from tests.support.waiting import wait_until


def answer_with_holes(holes: set[int]) -> Callable[[dict[str, Any]], httpx.Response]:
    """n images per request; on the first request the items at `holes` are not decodable."""
    sent = {"count": 0}

    def handler(body: dict[str, Any]) -> httpx.Response:
        first = sent["count"] == 0
        sent["count"] += 1
        data = [
            {"b64_json": "%%% not base64 %%%" if first and i in holes else b64(make_image(30 + i, 20))}
            for i in range(body["n"])
        ]
        return json_response({"created": 1700000000, "data": data})

    return handler


def test_a_partly_failed_request_resumes_only_its_missing_images(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    api = Api(answer_with_holes({1, 3})).install()
    first, _, _ = call(prompts("a fox", n=4), settings(cache="on"), store=store)
    assert [im.index for im in first] == [0, 2]
    assert len(first.errors) == 2
    entries = [json.loads(p.read_text()) for p in (store.root / "cache").glob("*.json")]
    assert [(e["n"], e["indices"], e["complete"]) for e in entries] == [(4, [0, 2], False)]

    again, progress, _ = call(prompts("a fox", n=4), settings(cache="on"), store=store)
    assert [b["n"] for b in api.bodies] == [4, 2]  # only the two that failed were asked for again
    assert sorted(im.index for im in again) == [0, 1, 2, 3]
    assert {im.index: im.cached for im in again} == {0: True, 1: False, 2: True, 3: False}
    assert again.ok and progress.items[0].status == "done"
    assert [im.data for im in again if im.cached] == [im.data for im in first]

    third, _, _ = call(prompts("a fox", n=4), settings(cache="on"), store=store)
    assert len(api.bodies) == 2  # now complete: answered from the store alone
    assert sorted(im.index for im in third) == [0, 1, 2, 3] and all(im.cached for im in third)


def test_single_image_model_resends_only_the_failed_seeds(
    settings: Callable[..., Settings], tmp_path: Path, png: bytes
) -> None:
    failing = {8, 10}

    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["n"] > 1:
            details = [{"loc": ["body", "n"], "msg": "n must be 1", "type": "value_error"}]
            return error(400, "Validation failed", details=details)
        if body["seed"] in failing:
            return error(400, "This prompt was refused by the safety system.")
        return json_response({"created": 1700000000, "data": [{"b64_json": b64(png)}]})

    store = Store(tmp_path / "store")
    api = Api(handler).install()
    first, _, _ = call(prompts("a fox", model="m/one", n=4, seed=7), settings(cache="on"), store=store)
    assert sorted(im.index for im in first) == [0, 2] and len(first.errors) == 2
    failing.clear()
    api.bodies.clear()

    again, _, _ = call(prompts("a fox", model="m/one", n=4, seed=7), settings(cache="on"), store=store)
    singles = sorted(b["seed"] for b in api.bodies if b["n"] == 1)
    assert singles == [8, 10]  # seeds 7 and 9 are in the store
    assert sorted(im.index for im in again) == [0, 1, 2, 3] and again.ok
    assert again.notes == ["m/one makes one image per request: sent 2 requests (seeds 8, 10)."]


def test_replay_of_a_partly_failed_request_shows_what_was_stored(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    api = Api(answer_with_holes({0})).install()
    call(prompts("a fox", n=3), settings(cache="on"), store=store)
    replayed, progress, _ = call(prompts("a fox", n=3), settings(cache="replay"), store=store)
    assert len(api.bodies) == 1  # replay sends nothing
    assert [im.index for im in replayed] == [1, 2] and all(im.cached for im in replayed)
    (miss,) = replayed.errors
    assert isinstance(miss.error, CacheMissError)
    assert "only 2 of the 3 images stored" in str(miss.error)


def test_an_index_entry_of_an_older_store_still_answers(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path)
    request = ImageRequest("a red fox", "m/a", n=2)
    base_url = settings().base_url
    Api().install()
    call([request], settings(cache="on"), store=store)
    (path,) = (store.root / "cache").glob("*.json")
    entry = json.loads(path.read_text())
    path.unlink()
    # As written before entries kept indices and named their base URL: under both keys.
    old = json.dumps({k: entry[k] for k in ("model", "prompt", "images")})
    for with_host in (True, False):
        (store.root / "cache" / f"{cache_key(request, base_url, with_host=with_host)}.json").write_text(old)
    found = store.lookup(request, base_url)
    assert found is not None and found.missing == ()
    assert [im.index for im in found.images] == [0, 1]
    assert store.lookup(request, "https://elsewhere.example") is None  # unnamed: not for cache=on
    assert store.lookup(request, "https://elsewhere.example", any_host=True) is not None


def test_a_partial_entry_with_unusable_indices_is_a_miss_not_a_double_purchase(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    Api(answer_with_holes({1})).install()
    call(prompts("a fox", n=3), settings(cache="on"), store=store)
    (path,) = (store.root / "cache").glob("*.json")
    entry = json.loads(path.read_text())
    request = prompts("a fox", n=3)[0]
    for junk in (["0", "2"], [0, 0], [-1, 2], [0], None):
        path.write_text(json.dumps({**entry, "indices": junk}))
        assert store.lookup(request, settings().base_url) is None, junk
    path.write_text(json.dumps(entry))
    found = store.lookup(request, settings().base_url)
    assert found is not None and found.missing == (1,)


def test_an_interrupted_fan_out_keeps_the_singles_that_arrived(
    settings: Callable[..., Settings], tmp_path: Path, png: bytes
) -> None:
    async def slow_for_late_seeds(body: dict[str, Any]) -> httpx.Response:
        if body["n"] > 1:
            details = [{"loc": ["body", "n"], "msg": "n must be 1", "type": "value_error"}]
            return error(400, "Validation failed", details=details)
        if body["seed"] >= 9:
            await asyncio.sleep(30)  # still in flight when the run is interrupted
        return json_response({"created": 1700000000, "data": [{"b64_json": b64(png)}]})

    store = Store(tmp_path / "store")
    Api(slow_for_late_seeds).install()
    requests = prompts("a fox", model="m/one", n=4, seed=7)
    progress = CallProgress(requests)
    running = engine().submit(run_requests(requests, settings(cache="on"), progress, store=store))
    assert wait_until(lambda: len(list(store.root.glob("images/*/*.json"))) >= 2, 10)
    running.cancel()  # what Ctrl-C does to a run; the loop unwinds it a moment later
    with pytest.raises(concurrent.futures.CancelledError):
        running.result(timeout=5)
    wait_until(lambda: len(progress.result()), 5)
    # The two singles that arrived are shown, and indexed as a partial answer.
    assert sorted(im.index for im in progress.result()) == [0, 1]
    (path,) = (store.root / "cache").glob("*.json")
    entry = json.loads(path.read_text())
    assert (entry["indices"], entry["complete"]) == ([0, 1], False)

    api = Api(one_image_only_answer(png)).install()
    again, _, _ = call(prompts("a fox", model="m/one", n=4, seed=7), settings(cache="on"), store=store)
    assert sorted(b["seed"] for b in api.bodies if b["n"] == 1) == [9, 10]  # only the two cut off
    assert sorted(im.index for im in again) == [0, 1, 2, 3] and again.ok


def one_image_only_answer(png: bytes) -> Callable[[dict[str, Any]], httpx.Response]:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["n"] > 1:
            details = [{"loc": ["body", "n"], "msg": "n must be 1", "type": "value_error"}]
            return error(400, "Validation failed", details=details)
        return json_response({"created": 1700000000, "data": [{"b64_json": b64(png)}]})

    return handler
