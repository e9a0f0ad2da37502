"""Class 4 over loopback: one bad answer in a three-model comparison fails that model alone.

The project's server answers one model with a bad item (`patch_item` fault) while
another model's request is slow (`latency` fault). The other two models' images must
be returned, stored and shown, and the slow request must finish (the server's request
log says whether each answer was sent in full or the client hung up). The same through
the Python API, `%%meshimg` and the panel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core.errors import MeshImageError
from mesh_magic.server import Fault, MeshServer
from tests.support.images import inline_images
from tests.support.published import Publications
from tests.support.servers import FAST_MODEL, OTHER_MODEL, SINGLE_IMAGE_MODEL, TINY, generations
from tests.support.shell import run
from tests.support.store_files import stored_images

pytestmark = pytest.mark.usefixtures("cheap_images")

BAD, SLOW, THIRD = FAST_MODEL, OTHER_MODEL, SINGLE_IMAGE_MODEL
MODELS = f"{BAD},{SLOW},{THIRD}"
SLOW_DELAY = 0.6

BAD_PATCHES = [
    {"b64_json": None, "url": "http://[::1/x.png"},
    {"b64_json": None, "url": "https://example.test:99999/x.png"},
    {"b64_json": None, "url": "https://exa mple.test/x.png"},
    {"b64_json": None, "url": "http://127.0.0.1:1/x.png"},
    {"b64_json": None, "url": "ftp://example.test/x.png"},
    {"b64_json": None, "url": "data:image/png;base64,@@@"},
    {"b64_json": None, "url": "data:text/plain;base64,aGVsbG8="},
    {"b64_json": 5, "url": None},
    {"b64_json": [1, 2], "url": None},
    {"b64_json": {"nested": True}, "url": None},
    {"b64_json": "aGVsbG8gd29ybGQ=", "url": None},
    {"b64_json": None, "url": None},
]
PATCH_IDS = [json.dumps(p)[:48] for p in BAD_PATCHES]


def _faults(server: MeshServer, patch: dict[str, Any]) -> None:
    server.add_fault(Fault("patch_item", model=BAD, patch=patch))
    server.add_fault(Fault("latency", model=SLOW, delay=SLOW_DELAY))


def _outcomes(server: MeshServer, model: str) -> list[str]:
    """How the server's answers to `model` ended, once each has ended (polled, not timed)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            r.outcome for r in generations(server) if isinstance(r.json, dict) and r.json["model"] == model
        ]
        if found and all(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _check(result: mesh_magic.ImageResult, server: MeshServer, store: Path, tally: Any) -> None:
    arrived = {image.model for image in result}
    if arrived != {SLOW, THIRD}:
        tally.bad("arrived_lost", len({SLOW, THIRD} - arrived))
    assert arrived == {SLOW, THIRD}
    (failure,) = result.errors
    assert failure.model == BAD and isinstance(failure.error, MeshImageError)
    assert _outcomes(server, SLOW) == ["finished"], "the slow request was cut off"
    assert len(stored_images(store)) == 2


@pytest.mark.adversarial("4")
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("patch", BAD_PATCHES, ids=PATCH_IDS)
def test_api_comparison_keeps_the_other_models(
    server: MeshServer, store: Path, patch: dict[str, Any], stream: bool, tally: Any
) -> None:
    _faults(server, patch)
    try:
        result = mesh_magic.generate("a lighthouse", model=MODELS, size=TINY, stream=stream)
    except BaseException:
        tally.bad("raw_escapes")
        raise
    _check(result, server, store, tally)


@pytest.fixture
def magic_shell(shell: Any, server: MeshServer) -> Iterator[Any]:
    yield shell


@pytest.mark.adversarial("4")
@pytest.mark.parametrize("patch", BAD_PATCHES[:6], ids=PATCH_IDS[:6])
def test_magic_comparison_shows_and_binds_the_other_models(
    magic_shell: Any,
    published: Publications,
    server: MeshServer,
    store: Path,
    patch: dict[str, Any],
    tally: Any,
) -> None:
    _faults(server, patch)
    run(magic_shell, f"%%meshimg -m {MODELS} -s {TINY} -o r\na lighthouse")
    result = magic_shell.user_ns["r"]
    _check(result, server, store, tally)
    grid = published.grids[-1].html
    assert len(inline_images(grid)) == 2  # both arrived images are shown, and decode
    assert BAD in grid


@pytest.mark.adversarial("4")
@pytest.mark.parametrize(
    "patch",
    [
        {"created": 1e20},
        {"created": 10**20},
        {"created": -5},
        {"created": "yesterday"},
        {"created": None},
        {"usage": [1]},
        {"size": 7},
    ],
    ids=[
        "created-1e20",
        "created-10**20",
        "created-negative",
        "created-text",
        "created-null",
        "usage-list",
        "size-number",
    ],
)
def test_odd_answer_fields_change_nothing(server: MeshServer, store: Path, patch: dict[str, Any]) -> None:
    server.add_fault(Fault("patch_body", model=BAD, patch=patch))
    result = mesh_magic.generate("a lighthouse", model=MODELS, size=TINY)
    assert {image.model for image in result} == {BAD, SLOW, THIRD} and not result.errors
    assert all(image.created is not None and image.created < 253_402_300_799 for image in result)
    assert len(stored_images(store)) == 3
    # ... and the store reads them back (history sorts and dates by `created`).
    assert len(mesh_magic.history()) == 3


@pytest.mark.adversarial("4")
@pytest.mark.parametrize(
    "sidecar", ["[1, 2]", '"text"', "7", "null", "{}", '{"mime_type": 5}', "[" * 100_000]
)
def test_a_malformed_cache_entry_is_a_miss_not_a_crash(server: MeshServer, store: Path, sidecar: str) -> None:
    first = mesh_magic.generate("a lighthouse", model=SLOW, size=TINY, cache="on")
    (image,) = first
    assert image.path is not None
    image.path.with_suffix(".json").write_text(sidecar)
    again = mesh_magic.generate("a lighthouse", model=SLOW, size=TINY, cache="on")
    (fresh,) = again
    assert not fresh.cached and len(generations(server)) == 2  # sent again, not replayed
    assert any("Skipped 1 unreadable or malformed entry" in note for note in again.notes)


@pytest.mark.adversarial("4")
def test_generate_many_keeps_every_other_prompt(server: MeshServer, store: Path) -> None:
    server.add_fault(
        Fault("patch_item", model=BAD, patch={"b64_json": None, "url": "http://[::1/x.png"}, times=2)
    )
    results = mesh_magic.generate_many(["one", "two", "three", "four"], model=BAD, size=TINY)
    assert [len(r) for r in results].count(1) == 2 and [len(r.errors) for r in results].count(1) == 2
    assert len(stored_images(store)) == 2


@pytest.mark.adversarial("4")
def test_panel_shows_the_models_that_answered(server: MeshServer, store: Path, tally: Any) -> None:
    from mesh_magic.widget_panel import panel

    _faults(server, {"b64_json": None, "url": "http://[::1/x.png"})
    p = panel()
    try:
        p.prompt.value = "a lighthouse"
        p.model.value = MODELS
        p.size.value = TINY
        p.generate_button.click()
        result = p.wait(20)
        assert result is not None
        _check(result, server, store, tally)
        assert len(p.gallery.children) == 2
        assert BAD in p.errors.value
    finally:
        p.close()


EDITOR = "meshapi/data-uri-preview"  # takes every edit operation on the test server
EDIT_PATCHES = [
    ("patch_item", {"b64_json": None, "url": "http://[::1/x.png"}),
    ("patch_item", {"b64_json": [1], "url": None}),
    ("patch_body", {"created": 10**20}),
    ("corrupt_image", None),
]


@pytest.mark.adversarial("4")
@pytest.mark.parametrize(
    ("kind", "patch"), EDIT_PATCHES, ids=[f"{k}-{json.dumps(p)[:30]}" for k, p in EDIT_PATCHES]
)
def test_edit_with_a_bad_answer_keeps_the_other_image(
    server: MeshServer, store: Path, kind: str, patch: dict[str, Any] | None, tally: Any
) -> None:
    from tests.support.images import make_png

    server.add_fault(Fault(kind, path="/v1/images/edits", patch=patch))
    try:
        result = mesh_magic.edit(make_png(64, 64), "warmer light", model=EDITOR, n=2, size="256x256")
    except MeshImageError:  # the fault hits every item of the one answer: nothing arrived
        assert kind != "patch_body" and stored_images(store) == []
        return
    except BaseException:
        tally.bad("raw_escapes")
        raise
    assert kind == "patch_body"  # an odd `created` changes nothing
    assert len(result) == 2 and not result.errors
    assert all(image.path is not None for image in result)


@pytest.mark.adversarial("4")
@pytest.mark.parametrize(
    "raised", [RuntimeError, TypeError, AttributeError, OverflowError, KeyError, ValueError]
)
def test_a_bug_deep_in_the_client_fails_one_item_without_the_key(raised: type[Exception]) -> None:
    import pickle

    import httpx

    from tests.support.images import b64, make_png
    from tests.support.mock_api import MOCK_KEY, json_response, use_mock

    good = make_png(8, 8)

    def handle(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["prompt"] == "bug":
            raise raised(f"broken while holding Bearer {MOCK_KEY}")
        return json_response({"data": [{"b64_json": b64(good)}]})

    use_mock(handle)
    result = mesh_magic.generate(["fine", "bug"], model="m/a,m/b", cache="off")  # type: ignore[arg-type]
    assert len(result) == 2 and {im.prompt for im in result} == {"fine"}
    assert len(result.errors) == 2 and all(e.prompt == "bug" for e in result.errors)
    for item in result.errors:
        error = item.error
        assert isinstance(error, MeshImageError) and raised.__name__ in str(error)
        assert MOCK_KEY not in str(error) and MOCK_KEY.encode() not in pickle.dumps(error)
        assert error.__cause__ is None and error.__context__ is None
