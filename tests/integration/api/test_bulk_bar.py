"""Long bulk runs show a tqdm bar (text in a terminal); short ones keep the live table."""

from __future__ import annotations

from typing import Any

import pytest

import mesh_magic
from mesh_magic.render import progress as _progress
from tests.support.servers import FAST_MODEL, TINY


def test_a_long_run_shows_a_tqdm_bar_and_a_summary(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    count = _progress.BAR_THRESHOLD + 6
    results = mesh_magic.generate_many(
        [f"A pebble, view {i}" for i in range(count)], model=FAST_MODEL, size=TINY
    )
    assert sum(len(r) for r in results) == count
    err = capsys.readouterr().err
    assert "mesh_magic" in err and f"{count}/{count}" in err  # tqdm's text bar, finished
    assert f"Done: {count}/{count} requests succeeded, {count} images, 0 failed" in err


def test_a_short_run_keeps_the_table(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real_bar, real_table = _progress.BarProgress, _progress.ProgressDisplay
    monkeypatch.setattr(_progress, "BarProgress", lambda call: made.append("bar") or real_bar(call))
    monkeypatch.setattr(
        _progress, "ProgressDisplay", lambda call, **kw: made.append("table") or real_table(call, **kw)
    )
    mesh_magic.generate_many(["A pebble"] * 3, model=FAST_MODEL, size=TINY)
    mesh_magic.generate_many([f"A shell {i}" for i in range(30)], model=FAST_MODEL, size=TINY)
    assert made == ["table", "bar"]
