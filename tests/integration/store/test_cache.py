"""cache="on" answers identical requests from the store; cache="replay" never touches the network.

The loopback MeshServer's request log is the proof of "no HTTP call".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic import CacheMissError
from mesh_magic.core.engine.loop import engine
from mesh_magic.render.grid import result_html
from mesh_magic.server import Fault
from tests.support.images import html_images
from tests.support.published import Publications
from tests.support.servers import NoNetwork, generations
from tests.support.store_files import sha256, stored_images

BASE = {"size": "256x256", "n": 1}
URL_MODEL = "google/imagen-4"  # url items, served from /v1/files on the loopback server


def test_cache_on_serves_an_identical_request_without_a_call(server: Any, store: Path) -> None:
    first = mesh_magic.generate("a teapot on a shelf", cache="on", **BASE)
    assert len(generations(server)) == 1
    again = mesh_magic.generate("a teapot on a shelf", cache="on", **BASE)
    assert len(generations(server)) == 1  # no second HTTP call
    assert [im.data for im in again] == [im.data for im in first]
    assert all(im.cached for im in again) and not any(im.cached for im in first)
    assert [im.path for im in again] == [im.path for im in first]
    html = result_html(again)
    assert "cached" in html and "cached" not in result_html(first)
    # Thumbnails shown for a hit are the stored bytes (256 px is under display_max_px).
    assert [raw for _, raw in html_images(html)] == [im.data for im in first]


def test_cache_off_is_the_default_and_always_calls(server: Any) -> None:
    mesh_magic.generate("a teapot on a shelf", **BASE)
    mesh_magic.generate("a teapot on a shelf", **BASE)
    assert len(generations(server)) == 2


def test_magic_caption_says_cached_and_fresh_bypasses(
    server: Any, shell: Any, store: Path, published: Publications
) -> None:
    shell.run_line_magic("meshimg_config", "cache=on")
    cell = "%%meshimg -s 256x256 -o r{i} {flags}\nA paper boat on a quiet pond"
    shell.run_cell(cell.format(i=1, flags=""))
    shell.run_cell(cell.format(i=2, flags=""))
    assert len(generations(server)) == 1
    assert "cached" in published[-1].html and "cached" not in published[0].html
    shell.run_cell(cell.format(i=3, flags="--fresh"))
    assert len(generations(server)) == 2  # --fresh went to the API
    r1, r3 = shell.user_ns["r1"], shell.user_ns["r3"]
    assert not r3[0].cached and "cached" not in published[-1].html
    assert r3[0].path != r1[0].path and r3[0].path.exists()  # stored as a new image
    # The fresh answer now backs the cache.
    shell.run_cell(cell.format(i=4, flags=""))
    assert len(generations(server)) == 2
    assert shell.user_ns["r4"][0].path == r3[0].path


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"seed": 2}},
        {"size": "512x512"},
        {"model": "google/imagen-4"},
        {"quality": "high"},
        {"n": 2},
        {"output_format": "jpeg"},
        {"params": {"seed": 1, "background": "transparent"}},
        {"prompt": "a teapot on a shelf."},
    ],
    ids=lambda c: ",".join(f"{k}" for k in c),
)
def test_anything_that_shapes_the_images_is_a_miss(server: Any, change: dict[str, Any]) -> None:
    base = {"prompt": "a teapot on a shelf", "cache": "on", "size": "256x256", "params": {"seed": 1}}
    mesh_magic.generate(**base)
    result = mesh_magic.generate(**{**base, **change})
    assert len(generations(server)) == 2
    assert not any(im.cached for im in result)


@pytest.mark.parametrize("change", [{"stream": True}, {"response_format": "url"}])
def test_how_images_travel_is_not_part_of_the_key(server: Any, change: dict[str, Any]) -> None:
    base = {"prompt": "a teapot on a shelf", "cache": "on", "size": "256x256"}
    first = mesh_magic.generate(**base)
    again = mesh_magic.generate(**{**base, **change})
    assert len(generations(server)) == 1
    assert again[0].cached and again[0].data == first[0].data


def test_cache_on_is_per_base_url_but_replay_accepts_any(server: Any, store: Path) -> None:
    offline = mesh_magic.generate("a red kite", base_url="offline", cache="on", **BASE)
    mesh_magic.generate("a red kite", cache="on", **BASE)  # the server: another base URL, a miss
    assert len(generations(server)) == 1
    no_network = NoNetwork()
    engine().set_transport(no_network)
    replayed = mesh_magic.generate(
        "a red kite", base_url="http://127.0.0.1:9", api_key=None, cache="replay", **BASE
    )
    assert replayed[0].cached
    assert replayed[0].data in {offline[0].data, *(p.read_bytes() for p in stored_images(store))}
    assert no_network.attempts == []


def test_meshimg_cache_env_sets_the_mode(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHIMG_CACHE", "on")
    mesh_magic.generate("a quiet harbour", **BASE)
    assert mesh_magic.generate("a quiet harbour", **BASE)[0].cached
    assert len(generations(server)) == 1
    monkeypatch.setenv("MESHIMG_CACHE", "replay")
    with pytest.raises(CacheMissError):
        mesh_magic.generate("a loud harbour", **BASE)
    assert len(generations(server)) == 1


def test_replay_with_an_empty_store_fails_clearly_without_network(no_network: Any, store: Path) -> None:
    with pytest.raises(CacheMissError) as caught:
        mesh_magic.generate(
            "A castle made of clouds",
            model="google/imagen-4",
            base_url="http://127.0.0.1:9",
            cache="replay",
            size="256x256",
        )
    message = str(caught.value)
    assert "google/imagen-4" in message and "A castle made of clouds" in message
    assert "replay" in message and str(store) in message
    assert no_network.attempts == []  # never even tried to connect
    assert not store.exists() or stored_images(store) == []


def test_replay_miss_in_the_magic_is_a_short_error(shell: Any, no_network: Any) -> None:
    shell.run_line_magic("meshimg_config", "base_url=http://127.0.0.1:9 cache=replay")
    with pytest.raises(CacheMissError, match="openai/gpt-image-1.*a snowy owl"):
        shell.run_cell("%%meshimg -s 256x256\na snowy owl")
    with pytest.raises(UsageError, match="--fresh needs the API"):
        shell.run_cell("%%meshimg --fresh\na snowy owl")
    assert no_network.attempts == []


def test_replay_of_a_partly_filled_store_shows_hits_and_names_misses(server: Any, no_network: Any) -> None:
    mesh_magic.generate("a green apple", base_url="offline", cache="on", **BASE)
    result = mesh_magic.generate(
        ["a green apple", "a blue apple"], base_url="http://127.0.0.1:9", cache="replay", **BASE
    )
    assert [im.prompt for im in result] == ["a green apple"] and result[0].cached
    assert len(result.errors) == 1 and isinstance(result.errors[0].error, CacheMissError)
    assert "a blue apple" in str(result.errors[0].error)
    assert no_network.attempts == [] and generations(server) == []


def test_a_shipped_store_replays_byte_identical_from_elsewhere(
    tmp_path: Path, no_network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = tmp_path / "teacher_store"
    made = mesh_magic.generate(
        ["a fox in the snow", "a fox in the rain"],
        base_url="offline",
        cache="on",
        store_dir=str(teacher),
        n=2,
        size="256x256",
    )
    made_hashes = [sha256(im.data) for im in made]  # read now: `made` keeps its bytes in the teacher's store
    shipped = tmp_path / "student" / "course_store"
    shutil.copytree(teacher, shipped)
    shutil.rmtree(teacher)  # only the shipped copy exists now
    monkeypatch.chdir(shipped.parent)
    monkeypatch.setenv("MESHAPI_BASE_URL", "http://127.0.0.1:9")
    replayed = mesh_magic.generate(
        ["a fox in the snow", "a fox in the rain"],
        cache="replay",
        store_dir="course_store",
        n=2,
        size="256x256",
    )
    assert [sha256(im.data) for im in replayed] == made_hashes
    files = {sha256(p.read_bytes()) for p in stored_images(shipped)}
    assert {sha256(im.data) for im in replayed} == files
    assert all(im.path is not None and im.path.is_relative_to(shipped) for im in replayed)
    assert no_network.attempts == []


# --- a partly failed answer is kept, and a re-run asks only for what it lacks ------------------------


def test_cache_resumes_a_generation_that_partly_failed(server: Any) -> None:
    """n=2 where image 2 fails: a re-run with cache='on' shows the stored one and asks for 1 more."""
    server.add_fault(Fault("not_image", path="/v1/files", times=1))
    first = mesh_magic.generate(
        "a lighthouse", model=URL_MODEL, n=2, size="64x64", response_format="url", cache="on"
    )
    assert len(first) == 1 and len(first.errors) == 1
    again = mesh_magic.generate(
        "a lighthouse", model=URL_MODEL, n=2, size="64x64", response_format="url", cache="on"
    )
    sent = generations(server)
    assert [r.json["n"] for r in sent] == [2, 1], "the re-run asked for more than the missing image"
    assert len(again) == 2 and not again.errors
    assert [im.cached for im in sorted(again, key=lambda im: im.index)].count(True) == 1
    assert [im.data for im in again if im.cached] == [first[0].data]
    # The answer is complete now: a third run is served from the store alone.
    third = mesh_magic.generate(
        "a lighthouse", model=URL_MODEL, n=2, size="64x64", response_format="url", cache="on"
    )
    assert len(generations(server)) == 2 and all(im.cached for im in third)
    assert sorted(im.index for im in third) == [0, 1]
    # Two images paid for, two in the store: nothing bought twice.
    assert len(mesh_magic.history(None)) == 2
