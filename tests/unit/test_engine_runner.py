"""The fan-out of one call: cache, gate, HTTP, store and progress (core.engine.runner)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh_magic.core.engine.loop import engine
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.core.engine.runner import makes_one_image_per_request, run_requests
from mesh_magic.core.errors import (
    CacheMissError,
    InvalidRequestError,
    MeshImageError,
    RateLimitError,
    ServerError,
)
from mesh_magic.core.http.client import MeshClient
from mesh_magic.core.http.factory import build_http_client
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.results import ImageResult
from mesh_magic.core.settings import Settings
from mesh_magic.core.store import Store
from tests.support.engine_calls import Api, Handler, call, error, prompts
from tests.support.images import b64, make_image
from tests.support.mock_api import generation_body, json_response

# -- concurrency -----------------------------------------------------------------------------


def test_concurrency_is_bounded_by_the_setting(settings: Callable[..., Settings]) -> None:
    api = Api(delay=0.01).install()
    result, progress, _ = call(prompts(*[f"p{i}" for i in range(9)]), settings(concurrency=3))
    assert api.peak == 3
    assert len(api.bodies) == 9
    assert [im.row for im in result] == list(range(9))
    assert progress.counts() == {"done": 9, "failed": 0, "running": 0, "images": 9}
    assert result.ok


def test_a_given_client_is_used(settings: Callable[..., Settings]) -> None:
    api = Api()
    s = settings()

    async def go() -> ImageResult:
        async with build_http_client("network", httpx.MockTransport(api)) as http:
            reqs = prompts("a fox")
            return await run_requests(reqs, s, CallProgress(reqs), client=MeshClient(s, http))

    result = asyncio.run(go())
    assert len(result) == 1 and len(api.bodies) == 1


# -- the store -------------------------------------------------------------------------------


def test_new_images_are_stored_and_a_cache_hit_sends_nothing(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    api = Api().install()
    first, _, _ = call(prompts("a fox", n=2), settings(cache="on"), store=store)
    assert len(api.bodies) == 1
    assert all(im.path is not None and im.path.is_relative_to(store.root) for im in first)
    assert not any(im.cached for im in first)

    again, progress, _ = call(prompts("a fox", n=2), settings(cache="on"), store=store)
    assert len(api.bodies) == 1  # nothing new was sent
    assert [im.cached for im in again] == [True, True]
    assert [im.data for im in again] == [im.data for im in first]
    assert progress.items[0].status == "done"


def test_fresh_or_cache_off_skips_the_lookup(settings: Callable[..., Settings], tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    api = Api().install()
    call(prompts("a fox"), settings(cache="on"), store=store)
    call(prompts("a fox"), settings(cache="on"), store=store, fresh=True)
    call(prompts("a fox"), settings(cache="off"), store=store)
    assert len(api.bodies) == 3


def test_a_hit_served_from_a_store_needs_no_client(settings: Callable[..., Settings], tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    Api().install()
    call(prompts("a fox"), settings(cache="on"), store=store)
    # This base URL would be refused by a client (a key over plain http): replay never builds one.
    replay = settings(cache="replay", base_url="http://elsewhere.example.test")
    result, _, _ = call(prompts("a fox"), replay, store=store)
    assert len(result) == 1 and result[0].cached and result.ok


def test_replay_miss_is_a_cache_miss_per_item_and_sends_nothing(
    settings: Callable[..., Settings], tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    api = Api().install()
    call(prompts("a stored fox"), settings(cache="on"), store=store)
    result, progress, _ = call(
        prompts("a stored fox", "a cat", "a dog"), settings(cache="replay"), store=store
    )
    assert len(api.bodies) == 1  # only the first call's
    assert [im.row for im in result] == [0]
    assert [e.row for e in result.errors] == [1, 2]
    assert all(isinstance(e.error, CacheMissError) for e in result.errors)
    assert "Nothing was sent" in str(result.errors[0].error)
    assert [i.status for i in progress.items] == ["done", "failed", "failed"]


def test_a_store_that_cannot_be_written_is_a_note(settings: Callable[..., Settings], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    Api().install()
    result, _, _ = call(prompts("a fox"), settings(), store=Store(blocker))
    assert len(result) == 1 and result[0].path is None
    assert len(result.notes) == 1 and result.notes[0].startswith(f"Could not write to the store {blocker}")


# -- one image per request -------------------------------------------------------------------


def one_image_only(png: bytes) -> Handler:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["n"] > 1:
            details = [{"loc": ["body", "n"], "msg": "n must be 1", "type": "value_error"}]
            return error(400, "Validation failed", details=details)
        return json_response(generation_body(png), headers={"x-request-id": f"req_{body.get('seed')}"})

    return handler


def test_a_model_refusing_n_is_sent_n_single_requests_with_spread_seeds(
    settings: Callable[..., Settings], png: bytes
) -> None:
    api = Api(one_image_only(png)).install()
    result, _, _ = call(prompts("a fox", model="m/one", n=3, seed=7, style="x"), settings())
    assert [b["n"] for b in api.bodies] == [3, 1, 1, 1]
    assert sorted(b["seed"] for b in api.bodies[1:]) == [7, 8, 9]
    assert all(b["style"] == "x" for b in api.bodies)
    assert [im.index for im in result] == [0, 1, 2]
    assert sorted(im.request_id or "" for im in result) == ["req_7", "req_8", "req_9"]
    assert result.ok
    assert result.notes == ["m/one makes one image per request: sent 3 requests (seeds 7-9)."]


@pytest.mark.parametrize("seed", [None, True, "7"])
def test_singles_without_an_integer_seed_keep_the_params(
    settings: Callable[..., Settings], png: bytes, seed: Any
) -> None:
    params = {} if seed is None else {"seed": seed}
    api = Api(one_image_only(png)).install()
    result, _, _ = call(prompts("a fox", model="m/one", n=2, **params), settings())
    assert [b["n"] for b in api.bodies] == [2, 1, 1]
    assert [b.get("seed") for b in api.bodies[1:]] == [seed, seed]
    assert len(result) == 2
    assert result.notes == ["m/one makes one image per request: sent 2 requests."]


def test_a_failing_single_fails_alone(settings: Callable[..., Settings], png: bytes) -> None:
    single = one_image_only(png)
    api = Api(lambda body: error(500, "boom") if body.get("seed") == 2 else single(body)).install()
    result, progress, _ = call(prompts("a fox", model="m/one", n=3, seed=1), settings())
    assert len(api.bodies) == 4
    assert [im.index for im in result] == [0, 2]
    assert len(result.errors) == 1 and isinstance(result.errors[0].error, ServerError)
    assert progress.items[0].status == "done"


def test_other_400s_are_not_fanned_out(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(
        lambda body: error(400, "bad size", details=[{"loc": ["body", "size"], "msg": "bad"}])
    ).install()
    result, _, _ = call(prompts("a fox", n=3), settings())
    assert len(api.bodies) == 1
    (item,) = result.errors
    assert isinstance(item.error, InvalidRequestError) and not makes_one_image_per_request(item.error)


def test_n_equal_one_refused_for_n_is_an_error(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(lambda body: error(400, "n", details=[{"loc": ["body", "n"], "msg": "no"}])).install()
    result, _, _ = call(prompts("a fox", n=1), settings())
    assert len(api.bodies) == 1 and len(result.errors) == 1


def test_makes_one_image_per_request() -> None:
    assert makes_one_image_per_request(
        InvalidRequestError("x", field_errors=[{"field": "n", "message": "1"}])
    )
    assert not makes_one_image_per_request(InvalidRequestError("x", field_errors=[{"field": "size"}]))
    assert not makes_one_image_per_request(ServerError("n"))


# -- rate limiting ---------------------------------------------------------------------------


def limited_first(times: int, png: bytes, retry_after: float = 0) -> Handler:
    seen: dict[str, int] = {}

    def handler(body: dict[str, Any]) -> httpx.Response:
        seen[body["prompt"]] = seen.get(body["prompt"], 0) + 1
        if seen[body["prompt"]] <= times:
            return error(429, "slow down", retry_after=retry_after)
        return json_response(generation_body(png))

    return handler


def test_a_bulk_run_requeues_a_rate_limited_request(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(limited_first(2, png)).install()
    result, progress, changes = call(prompts("a fox"), settings(max_retries=0), rate_limit_rounds=2)
    assert len(api.bodies) == 3
    assert result.ok and len(result) == 1
    assert (0, "queued", "rate limited: waiting its turn") in changes
    assert progress.limit is not None and progress.limit.throttles == 2


def test_without_rounds_a_429_fails_the_item(settings: Callable[..., Settings], png: bytes) -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["prompt"] == "p0":
            return error(429, "slow down", retry_after=0)
        return json_response(generation_body(png))

    api = Api(handler).install()
    result, progress, _ = call(prompts("p0", "p1"), settings(max_retries=0))
    assert len(api.bodies) == 2
    assert [e.row for e in result.errors] == [0] and isinstance(result.errors[0].error, RateLimitError)
    assert [im.row for im in result] == [1]
    assert [i.status for i in progress.items] == ["failed", "done"]


def test_rounds_run_out(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(limited_first(99, png)).install()
    result, _, _ = call(prompts("a fox"), settings(max_retries=0), rate_limit_rounds=2)
    assert len(api.bodies) == 3
    assert isinstance(result.errors[0].error, RateLimitError)


def test_a_long_wait_is_not_requeued(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(limited_first(1, png, retry_after=3600)).install()
    result, _, _ = call(prompts("a fox"), settings(max_retries=3), rate_limit_rounds=3)
    assert len(api.bodies) == 1
    (item,) = result.errors
    assert isinstance(item.error, RateLimitError) and item.error.retry_after == 3600


def test_a_retried_429_throttles_the_gate(settings: Callable[..., Settings], png: bytes) -> None:
    api = Api(limited_first(1, png)).install()
    result, progress, _ = call(prompts("a fox"), settings(max_retries=2, concurrency=4))
    assert len(api.bodies) == 2 and result.ok
    gate = progress.limit
    assert gate is not None
    assert (gate.throttles, gate.lowest, gate.limit) == (1, 2, 3)  # halved, then one step back
    assert progress.rate_note() == " · rate limited: 3/4 parallel"


# -- failures --------------------------------------------------------------------------------


def test_an_item_failure_does_not_sink_the_others(settings: Callable[..., Settings], png: bytes) -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["prompt"] == "bad":
            return error(500, "provider down")
        return json_response(generation_body(png))

    api = Api(handler).install()
    result, progress, _ = call(prompts("good", "bad", "also good"), settings())
    assert len(api.bodies) == 3
    assert [im.prompt for im in result] == ["good", "also good"]
    (item,) = result.errors
    assert (item.row, item.prompt) == (1, "bad") and isinstance(item.error, ServerError)
    assert [i.status for i in progress.items] == ["done", "failed", "done"]
    assert progress.items[1].message.startswith("provider down")


def test_a_failed_stream_keeps_its_partial_image(settings: Callable[..., Settings]) -> None:
    partial = make_image(24, 24)
    events = [
        {"type": "image_generation.partial_image", "b64_json": b64(partial), "partial_image_index": 0},
        {"error": {"message": "the provider hung up"}},
    ]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
    Api(
        lambda body: httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
    ).install()
    request = ImageRequest("a fox", "m/a", stream=True)
    result, progress, _ = call([request], settings(stream=True))
    (image,) = result
    assert image.partial and image.data == partial and image.source == "stream"
    (item,) = result.errors
    assert "the provider hung up" in str(item.error)
    assert progress.items[0].partial == partial
    assert progress.items[0].status == "failed"


def test_an_unexpected_error_fails_alone_and_the_slower_request_completes(
    settings: Callable[..., Settings], png: bytes
) -> None:
    finished: list[str] = []

    async def handler(body: dict[str, Any]) -> httpx.Response:
        if body["prompt"] == "bug":
            await asyncio.sleep(0.01)
            raise RuntimeError("a bug, not an API failure")
        await asyncio.sleep(0.2)  # still in flight when the other one fails
        finished.append(body["prompt"])
        return json_response(generation_body(png))

    Api(handler).install()
    reqs = prompts("slow", "bug")
    progress = CallProgress(reqs)
    result = engine().run(run_requests(reqs, settings(), progress))
    assert finished == ["slow"]
    assert [item.status for item in progress.items] == ["done", "failed"]
    (image,) = result
    assert image.prompt == "slow" and image.data == png
    (failure,) = result.errors
    assert isinstance(failure.error, MeshImageError) and "a bug, not an API failure" in str(failure.error)
