"""The client fixes for the real gateway, over loopback against the project's server (issue 11).

String prices under `pricing`, bodies that carry only what was set, field reasons
from `error.details`, the capability code's own hint, `retry_after_seconds` from
the body, and `max_retry_wait` (fail at once past it; a countdown while waiting).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mesh_magic import InvalidRequestError, RateLimitError, configure
from mesh_magic.server import Fault, MeshServer
from tests.support.published import Publications
from tests.support.servers import generations
from tests.support.shell import run

CELL = "%%meshimg -m google/imagen-4 -s 96x96\na fox in the snow"


def test_string_prices_free_and_unknown_in_the_model_table(shell: Any, server: MeshServer) -> None:
    rows = {model: price for model, _, price in run(shell, "%meshimg_models").rows}
    assert rows["openai/gpt-image-1"] == 0.04  # "0.04" under pricing, as the SDK types it
    assert rows["stability/sdxl-turbo"] == 0.0  # is_free
    assert rows["meshapi/data-uri-preview"] is None  # no pricing at all
    text = repr(run(shell, "%meshimg_models sdxl"))
    assert "free" in text


def test_the_body_carries_only_what_was_set(shell: Any, server: MeshServer, published: Publications) -> None:
    configure(size="512x512")  # session
    run(shell, "%%meshimg -m google/imagen-4 -q high\na kite")
    run(shell, "%%meshimg -m google/imagen-4 --response-format b64_json -n 1\na kite")
    first, second = (r.json for r in generations(server))
    assert first == {"prompt": "a kite", "model": "google/imagen-4", "size": "512x512", "quality": "high"}
    assert second == {
        "prompt": "a kite",
        "model": "google/imagen-4",
        "n": 1,
        "size": "512x512",
        "response_format": "b64_json",
    }


def test_validation_details_reach_the_error_text(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        run(shell, "%%meshimg -m google/imagen-4 -s 32x32\nfox")  # below the server's 64 px
    err = info.value
    assert (err.status, err.code) == (422, "validation_error")
    assert "size: unsupported size for this model" in str(err)
    assert err.rejects("size")


def test_the_capability_code_has_its_own_hint(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    server.add_fault(
        Fault(
            "status",
            status=400,
            code="model_capability_not_supported",
            message="background=transparent is not supported by this model",
        )
    )
    with pytest.raises(InvalidRequestError) as info:
        run(shell, CELL)
    assert "background=transparent" in str(info.value)
    assert "does not support" in info.value.hint and "%meshimg_models" in info.value.hint


def test_retry_after_seconds_in_the_body_is_waited(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    server.add_fault(Fault("status", status=429, retry_after="1", retry_after_in="body"))
    started = time.monotonic()
    result = run(shell, CELL)
    first, second = generations(server)
    assert len(result) == 1 and time.monotonic() - started >= 1.0
    assert second.time - first.time >= 0.95

    configure(max_retries=0)
    server.add_fault(Fault("status", status=429, retry_after="7", retry_after_in="body"))
    with pytest.raises(RateLimitError) as info:
        run(shell, CELL)
    assert info.value.retry_after == 7


def test_past_max_retry_wait_the_call_fails_at_once(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    server.add_fault(Fault("status", status=429, retry_after="30", times=-1))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        run(shell, CELL)
    assert time.monotonic() - started < 2, "a Retry-After: 30 must not block the cell"
    assert len(generations(server)) == 1
    assert info.value.message.startswith("Rate limited; try again in 30 s")
    assert info.value.retry_after == 30 and "max_retry_wait (20 s)" in info.value.hint


def test_max_retry_wait_is_a_budget_for_all_the_waits(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    configure(max_retry_wait=1.0, max_retries=5)
    server.add_fault(Fault("status", status=429, retry_after="0.6", times=-1))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        run(shell, CELL)
    # 0.6 s waited once; a second 0.6 s would make 1.2 s, over the budget of 1 s.
    assert len(generations(server)) == 2
    assert 0.55 <= time.monotonic() - started < 2
    assert "try again in 1 s" in info.value.message


def test_the_progress_box_counts_down_to_the_retry(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    server.add_fault(Fault("status", status=429, retry_after="2"))
    result = run(shell, CELL)
    assert len(result) == 1
    waiting = [p.html for p in published.progress if "next retry in" in p.html]
    assert waiting, "no progress update showed the wait"
    assert any("rate limited: retrying in" in html for html in waiting)
    counts = {html.split("next retry in ")[1].split(" s")[0] for html in waiting}
    assert counts & {"0", "1"}, counts  # it counted down while waiting
