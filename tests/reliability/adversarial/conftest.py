"""Adversarial scenarios of issue 12: the `adversarial("class")` marker and the tally.

Each marked test counts as one scenario of its class, unless it reports how many it
tried (`tally.tried("5", n)`, e.g. hypothesis examples). Tests also report what must
stay zero: raw exceptions escaping, images that arrived and were lost, corrupt images
accepted. The table is printed at the end of the run and written to
test-artifacts/adversarial.json.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.paths import ARTIFACTS, REPO

CLASSES = {
    "4": "raw exceptions / what arrived kept",
    "5": "images that are not images",
    "6": "a failed --save",
    "7": "concurrent saves",
}


@dataclass
class Tally:
    """Scenarios per class, and the counts that must be zero."""

    scenarios: dict[str, int] = field(default_factory=dict)
    zeros: dict[str, int] = field(
        default_factory=lambda: {"raw_escapes": 0, "arrived_lost": 0, "corrupt_accepted": 0}
    )
    _reported: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tried(self, cls: str, count: int = 1) -> None:
        with self._lock:
            self.scenarios[cls] = self.scenarios.get(cls, 0) + count
            self._reported.add(cls)

    def bad(self, what: str, count: int = 1) -> None:
        with self._lock:
            self.zeros[what] += count

    def table(self) -> list[str]:
        lines = [f"{'class':<6}{'what':<40}{'scenarios':>10}"]
        for cls, count in sorted(self.scenarios.items()):
            lines.append(f"{cls:<6}{CLASSES.get(cls, '?'):<40}{count:>10}")
        lines.append(f"{'':<6}{'total':<40}{sum(self.scenarios.values()):>10}")
        lines += [f"{name} (must be 0): {count}" for name, count in self.zeros.items()]
        return lines


TALLY = Tally()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "adversarial(cls): the issue-12 class an adversarial scenario tries")


@pytest.fixture
def tally() -> Tally:
    return TALLY


@pytest.fixture(autouse=True)
def _count_scenario(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("adversarial")
    cls = str(marker.args[0]) if marker and marker.args else None
    with TALLY._lock:
        TALLY._reported.discard(cls or "")
    yield
    if cls is not None and cls not in TALLY._reported:
        TALLY.tried(cls)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not TALLY.scenarios:
        return
    terminalreporter.section("mesh_magic adversarial (robustness)")
    for line in TALLY.table():
        terminalreporter.write_line(line)
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "adversarial-robustness.json"
    out.write_text(json.dumps({"scenarios": TALLY.scenarios, **TALLY.zeros}, indent=2) + "\n")
    terminalreporter.write_line(f"(details: {out.relative_to(REPO)})")
