"""Counts adversarial scenarios per class and writes test-artifacts/adversarial.md.

A scenario is one test item marked `@pytest.mark.adversarial("class-name")`
(each parametrized case is one item). Hypothesis tests also add the examples
they tried with `count_examples("class-name", n)` (or `example("class-name")`
inside the test body), shown in their own column: a scenario passes or fails
as a whole, the examples say how many inputs it tried.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER = "adversarial"

# The robustness scenarios name their class by its number in issue 12.
CLASS_NAMES = {
    "4": "4 raw exceptions and what arrived kept",
    "5": "5 images that are not images",
    "6": "6 a failed save",
    "7": "7 concurrent saves",
}
# What must stay zero, counted by the scenarios that look for it.
ZERO_COUNTS = ("raw_escapes", "arrived_lost", "corrupt_accepted")


def full_name(name: str) -> str:
    return CLASS_NAMES.get(name, name)


@dataclass
class ClassCounts:
    scenarios: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    examples: int = 0


@dataclass
class Tally:
    """Per class: scenarios run, passed, failed, skipped; hypothesis examples tried."""

    classes: dict[str, ClassCounts] = field(default_factory=dict)
    # Key searches by kind of output: [blobs, bytes, sightings].
    searches: dict[str, list[int]] = field(default_factory=dict)
    zeros: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ZERO_COUNTS, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _counts(self, name: str) -> ClassCounts:
        return self.classes.setdefault(full_name(name), ClassCounts())

    def outcome(self, name: str, outcome: str) -> None:
        with self._lock:
            counts = self._counts(name)
            counts.scenarios += 1
            if outcome == "passed":
                counts.passed += 1
            elif outcome == "skipped":
                counts.skipped += 1
            else:
                counts.failed += 1

    def examples(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts(name).examples += n

    def tried(self, name: str, n: int = 1) -> None:
        """`n` generated inputs tried by one scenario of class `name`."""
        self.examples(name, n)

    def bad(self, what: str, n: int = 1) -> None:
        """Something that must stay zero happened `n` times (the scenario also fails)."""
        with self._lock:
            self.zeros[what] += n

    def zeros_markdown(self) -> str:
        rows = ["| must stay zero | count |", "|---|---:|"]
        rows += [f"| {what} | {count} |" for what, count in self.zeros.items()]
        return "\n".join(rows) + "\n"

    def searched(self, kind: str, size: int, sightings: int) -> None:
        with self._lock:
            counts = self.searches.setdefault(kind, [0, 0, 0])
            counts[0] += 1
            counts[1] += size
            counts[2] += sightings

    def search_markdown(self) -> str:
        rows = ["| searched for the key | blobs | bytes | sightings |", "|---|---:|---:|---:|"]
        for kind in sorted(self.searches):
            blobs, size, seen = self.searches[kind]
            rows.append(f"| {kind} | {blobs} | {size:,} | {seen} |")
        return "\n".join(rows) + "\n"

    def markdown(self) -> str:
        rows = [
            "| class | scenarios | passed | failed | skipped | hypothesis examples |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        total = ClassCounts()
        for name in sorted(self.classes):
            c = self.classes[name]
            rows.append(f"| {name} | {c.scenarios} | {c.passed} | {c.failed} | {c.skipped} | {c.examples} |")
            total.scenarios += c.scenarios
            total.passed += c.passed
            total.failed += c.failed
            total.skipped += c.skipped
            total.examples += c.examples
        rows.append(
            f"| **total** | **{total.scenarios}** | **{total.passed}** | **{total.failed}** "
            f"| **{total.skipped}** | **{total.examples}** |"
        )
        return "\n".join(rows) + "\n"

    def as_dict(self) -> dict[str, object]:
        return {
            "classes": {name: vars(counts) for name, counts in sorted(self.classes.items())},
            "key_searches": {
                kind: {"blobs": b, "bytes": n, "sightings": s}
                for kind, (b, n, s) in sorted(self.searches.items())
            },
        }

    def write(self, path: Path) -> None:
        """The tables as markdown at `path`, and as JSON beside it (same name, .json)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".json").write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        head = "# Adversarial scenarios (issue 12)\n\nWritten by tests/reliability/adversarial/tally.py.\n\n"
        searches = f"\n{self.search_markdown()}" if self.searches else ""
        path.write_text(head + self.markdown() + f"\n{self.zeros_markdown()}" + searches)


TALLY = Tally()


def count_examples(name: str, n: int) -> None:
    """Add `n` hypothesis examples tried to class `name`."""
    TALLY.examples(name, n)


def example(name: str) -> None:
    """One more example tried for class `name` (call it inside a @given body)."""
    TALLY.examples(name, 1)


def class_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if not marker.args or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{MARKER} needs the class name")
    return full_name(marker.args[0])


def outcome_of(reports: list[pytest.TestReport]) -> str:
    """One outcome for an item from its setup, call and teardown reports."""
    if any(r.failed for r in reports):
        return "failed"
    if any(r.skipped for r in reports):
        return "skipped"
    return "passed"
