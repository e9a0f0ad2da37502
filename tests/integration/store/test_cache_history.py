"""The store through the magics: every image kept, cache on / --fresh / replay, and history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic import CacheMissError, ImageResult, configure
from mesh_magic.core.config import session
from mesh_magic.core.store import Store
from mesh_magic.server import MeshServer
from tests.support.published import Publications
from tests.support.servers import generations
from tests.support.shell import run

CELL = "%%meshimg -m google/imagen-4 -n 2 -s 128x128 -p seed=11\na lighthouse in fog"


def test_every_image_is_stored_with_a_sidecar(
    shell: Any, server: MeshServer, published: Publications, clean_environment: Path
) -> None:
    result = run(shell, CELL)
    for image in result:
        assert image.path is not None
        assert image.path.is_relative_to(clean_environment)
        assert image.path.read_bytes() == image.data
        meta = json.loads(image.path.with_suffix(".json").read_text())
        assert meta["prompt"] == "a lighthouse in fog"
        assert meta["model"] == "google/imagen-4"
        assert meta["request_id"] == image.request_id
        assert meta["params"]["seed"] == 11
        assert meta["base_url"].startswith("http://127.0.0.1:")
        assert "stored_at" in meta
        assert server.api_key not in image.path.with_suffix(".json").read_text()


def test_cache_off_by_default(shell: Any, server: MeshServer, published: Publications) -> None:
    run(shell, CELL)
    run(shell, CELL)
    assert len(generations(server)) == 2


def test_cache_on_serves_identical_request_from_store(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    run(shell, "%meshimg_config cache=on")
    first = run(shell, CELL)
    assert len(generations(server)) == 1
    seen = len(server.requests)  # the generation and its image downloads (url answers)
    second = run(shell, CELL)
    assert len(generations(server)) == 1
    assert len(server.requests) == seen  # no new HTTP request of any kind
    assert [im.data for im in second] == [im.data for im in first]
    assert all(im.cached for im in second) and not any(im.cached for im in first)
    assert [im.request_id for im in second] == [im.request_id for im in first]
    assert "cached" in published.html


def test_cache_on_misses_when_anything_changes(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    configure(cache="on")
    run(shell, CELL)
    run(shell, CELL.replace("seed=11", "seed=12"))
    run(shell, CELL.replace("-n 2", "-n 1"))
    run(shell, CELL.replace("fog", "rain"))
    run(shell, CELL + " ")  # the prompt is stripped: same request
    assert len(generations(server)) == 4


def test_cache_from_environment(
    shell: Any, server: MeshServer, published: Publications, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHIMG_CACHE", "on")
    run(shell, CELL)
    run(shell, CELL)
    assert len(generations(server)) == 1


def test_fresh_bypasses_the_cache(shell: Any, server: MeshServer, published: Publications) -> None:
    configure(cache="on")
    run(shell, CELL)
    fresh = run(shell, CELL.replace("%%meshimg", "%%meshimg --fresh"))
    assert len(generations(server)) == 2
    assert not any(im.cached for im in fresh)
    again = run(shell, CELL)
    assert len(generations(server)) == 2
    assert all(im.cached for im in again)


def test_replay_with_empty_store_is_a_clear_error(
    shell: Any, server: MeshServer, published: Publications, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(cache="replay")
    with pytest.raises(CacheMissError) as info:
        run(shell, CELL)
    assert server.requests == []
    assert "a lighthouse in fog" in str(info.value)
    assert "google/imagen-4" in str(info.value)
    shown = capsys.readouterr()
    assert "cache='replay' never calls the API" in shown.out + shown.err
    assert "Traceback" not in shown.out + shown.err


def test_replay_serves_stored_images_without_key_or_server(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    configure(cache="on")
    first = run(shell, CELL)
    server.reset()
    # Elsewhere (CI): another base URL, no key, cache=replay -> served from the store.
    session().set_api_key(None)
    configure(cache="replay", base_url="https://api.meshapi.ai")
    replayed = run(shell, CELL)
    assert server.requests == []
    assert [im.data for im in replayed] == [im.data for im in first]


def test_fresh_and_replay_conflict(shell: Any, server: MeshServer, published: Publications) -> None:
    configure(cache="replay")
    with pytest.raises(UsageError, match="--fresh needs the API"):
        run(shell, CELL.replace("%%meshimg", "%%meshimg --fresh"))
    assert server.requests == []


def test_history_magic(shell: Any, server: MeshServer, published: Publications) -> None:
    run(shell, "%%meshimg -s 128x128 --no-display\na red fox")
    run(shell, "%%meshimg -m google/imagen-4 -n 2 -s 128x128 --no-display\na blue whale")
    history = run(shell, "%meshimg_history")
    assert isinstance(history, ImageResult)
    assert [im.prompt for im in history][:2] == ["a blue whale", "a blue whale"]
    assert sorted(im.prompt for im in history) == ["a blue whale", "a blue whale", "a red fox"]
    assert len(run(shell, "%meshimg_history 1")) == 1
    assert [im.prompt for im in run(shell, "%meshimg_history fox")] == ["a red fox"]
    assert [im.prompt for im in run(shell, "%meshimg_history 5 whale")] == ["a blue whale"] * 2
    html = published.html
    assert "a blue whale" in html and "a red fox" in html
    assert html.count("<img ") >= 3


def test_history_across_a_fresh_store_object(
    shell: Any, server: MeshServer, published: Publications, clean_environment: Path
) -> None:
    result = run(shell, "%%meshimg -n 2 -s 128x128 --no-display\na red fox")
    fresh = Store(clean_environment)
    stored = fresh.history()
    assert sorted(im.data for im in stored) == sorted(im.data for im in result)
    assert {im.request_id for im in stored} == set(result.request_ids)
    api = mesh_magic.history()
    assert len(api) == 2 and api.rows == [("a red fox", "openai/gpt-image-1")]
    assert len(mesh_magic.history(1)) == 1
    assert mesh_magic.history(text="whale").rows == []


def test_history_of_an_empty_store(shell: Any, server: MeshServer, published: Publications) -> None:
    empty = run(shell, "%meshimg_history")
    assert len(empty) == 0
    assert re.search(r"No (stored )?images", published.html)
