"""Searching everything a scenario produced for the key, or any 12-character piece of it.

A piece is enough to count: a key split by a stray newline, or cut by a repr's
length limit, still leaks. Every search also feeds the reliability table's key
sightings (`tests.reliability.report.REPORT`).
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.adversarial.tally import TALLY
from tests.reliability.report import REPORT
from tests.support.sentinel import SENTINEL_KEY, as_bytes

PIECE = 12
# Which row of the tally's search table a blob counts in, by the first word found in `where`.
KINDS = (
    ("pytest", "pytest --showlocals output (subprocess)"),
    ("kernel", "kernel output after %xmode (nbclient)"),
    ("log", "DEBUG logs (httpx, httpcore)"),
    ("pickle", "pickles of errors"),
    ("frame locals", "frame locals and tracebacks with locals"),
    ("traceback", "frame locals and tracebacks with locals"),
    ("store", "store and saved files"),
    ("state", "panel widget state"),
    ("display", "displays and results"),
    ("result", "displays and results"),
)


def kind_of(where: str) -> str:
    lowered = where.lower()
    return next((kind for word, kind in KINDS if word in lowered), "error texts and other outputs")


def pieces(key: str, size: int = PIECE) -> list[bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) <= size:
        return [raw]
    return sorted({raw[i : i + size] for i in range(len(raw) - size + 1)})


@dataclass
class Hunt:
    """Where the key (or a piece of it) was seen; `check()` fails the test if anywhere."""

    key: str = field(default=SENTINEL_KEY, repr=False)
    seen: list[str] = field(default_factory=list)
    searched: int = 0

    def scan(self, data: Any, where: str) -> None:
        blob = as_bytes(data)
        self.searched += len(blob)
        REPORT.scan(blob, where)  # the whole key, for the suite's table
        found = any(p in blob for p in pieces(self.key))
        TALLY.searched(kind_of(where), len(blob), int(found))
        if found:
            self.seen.append(where)

    def scan_all(self, items: Iterable[tuple[str, Any]]) -> None:
        for where, data in items:
            self.scan(data, where)

    def scan_tree(self, root: Path, where: str) -> None:
        if not root.exists():
            return
        for path in sorted(root.rglob("*")):
            self.scan(str(path), f"{where}:name")
            if path.is_file():
                self.scan(path.read_bytes(), f"{where}:{path.name}")

    def check(self) -> None:
        assert self.searched > 0, "nothing was searched"
        assert self.seen == [], f"the key (or a piece of it) was seen in: {self.seen}"


def frame_locals(tb: Any) -> list[str]:
    """`repr` of every local of every frame of a traceback, as `pytest -l` would show them."""
    shown = []
    while tb is not None:
        for name, value in tb.tb_frame.f_locals.items():
            try:
                shown.append(f"{name}={value!r}")
            except Exception as exc:  # noqa: BLE001 - a broken repr shows as such
                shown.append(f"{name}=<repr failed: {exc!r}>")
        tb = tb.tb_next
    return shown


def error_views(err: BaseException) -> list[tuple[str, Any]]:
    """Every way a user, a log or a tool could see `err`: texts, attributes, frames, a pickle."""
    views: list[tuple[str, Any]] = [
        ("str", str(err)),
        ("repr", repr(err)),
        ("args", repr(err.args)),
        ("vars", repr(vars(err))),
        ("traceback", "".join(traceback.format_exception(err))),
        (
            "traceback with locals",
            "".join(traceback.TracebackException.from_exception(err, capture_locals=True).format()),
        ),
        ("frame locals", "\n".join(frame_locals(err.__traceback__))),
    ]
    render = getattr(err, "_render_traceback_", None)
    if render is not None:
        views.append(("_render_traceback_", "\n".join(render())))
    try:
        views.append(("pickle", pickle.dumps(err)))
    except Exception as exc:  # noqa: BLE001 - an unpicklable error is itself a finding
        views.append(("pickle failed", f"{type(exc).__name__}: {exc}"))
    return views


def assert_detached(err: BaseException) -> None:
    """No chained exception and no httpx object behind a raised error."""
    assert err.__cause__ is None, f"__cause__ is {err.__cause__!r}"
    assert err.__context__ is None, f"__context__ is {err.__context__!r}"
    for name, value in vars(err).items():
        assert "httpx" not in type(value).__module__, f"{name} holds an httpx {type(value).__name__}"
    for value in err.args:
        assert "httpx" not in type(value).__module__, f"args hold an httpx {type(value).__name__}"


def hunt_error(hunt: Hunt, err: BaseException, where: str) -> None:
    for view, data in error_views(err):
        hunt.scan(data, f"{where}:{view}")
    assert_detached(err)
