"""The reliability suite's collector, and its helpers for speed and memory.

`REPORT` is the session's collector: every test adds what it tried (faults, bad
inputs, load requests, bytes searched for the key). `tests/reliability/conftest.py`
writes it to test-artifacts/reliability.json and prints it as a table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.images import tagged_png
from tests.support.sentinel import KeySearch


@dataclass
class Report:
    """What the reliability suite tried, for the summary table and the JSON artifact."""

    faults: list[dict[str, Any]] = field(default_factory=list)
    bad_inputs: dict[str, int] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    keys: KeySearch = field(default_factory=KeySearch)
    contract: dict[str, int] = field(default_factory=lambda: {"requests": 0, "violations": 0})
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)
    used: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fault(self, name: str, outcome: str, requests: int, seconds: float) -> None:
        with self._lock:
            self.used = True
            self.faults.append(
                {"fault": name, "outcome": outcome, "requests": requests, "seconds": round(seconds, 3)}
            )

    def examples(self, prop: str, count: int) -> None:
        with self._lock:
            self.used = True
            self.bad_inputs[prop] = self.bad_inputs.get(prop, 0) + count

    def tally(self, group: str, outcome: str) -> None:
        with self._lock:
            counts = self.tallies.setdefault(group, {})
            counts[outcome] = counts.get(outcome, 0) + 1

    def scan(self, data: Any, where: str) -> int:
        """Count SENTINEL_KEY in `data` (str, bytes or anything repr-able); remember where."""
        with self._lock:
            self.used = True
        return self.keys.scan(data, where)

    def scan_tree(self, root: Path, where: str) -> int:
        """Search every byte of every file under `root` for the key."""
        with self._lock:
            self.used = True
        return self.keys.scan_tree(root, where)

    def as_dict(self) -> dict[str, Any]:
        lost = self.load.get("items_lost", 0)
        return {
            "summary": {
                "faults_tried": len(self.faults),
                "bad_inputs_tried": sum(self.bad_inputs.values()),
                "load_requests": self.load.get("requests", 0),
                "items_lost": lost,
                "key_sightings": self.keys.sightings,
                "contract_requests": self.contract["requests"],
                "contract_violations": self.contract["violations"],
            },
            "faults": self.faults,
            "bad_inputs": self.bad_inputs,
            "bad_input_outcomes": self.tallies,
            "load": self.load,
            "key_scans": {**self.keys.counts(), "places": self.keys.places},
            "contract": self.contract,
        }

    def table(self) -> list[str]:
        s = self.as_dict()["summary"]
        rows = [
            ("faults tried", str(s["faults_tried"])),
            ("bad inputs tried (hypothesis examples)", str(s["bad_inputs_tried"])),
            ("requests in the load run", str(s["load_requests"])),
            ("items lost (must be 0)", str(s["items_lost"])),
            (
                "key sightings (must be 0)",
                f"{s['key_sightings']}  (in {self.keys.blobs} blobs, "
                f"{self.keys.bytes_searched:,} bytes searched)",
            ),
            ("wire-contract requests / violations", f"{s['contract_requests']} / {s['contract_violations']}"),
        ]
        width = max(len(k) for k, _ in rows)
        return [f"{k.ljust(width)}  {v}" for k, v in rows]


REPORT = Report()


def cheap_render(
    prompt: str,
    *,
    model: str,
    seed: int | None,
    index: int,
    width: int,
    height: int,
    fmt: str,
    label: str,
    **_: Any,
) -> bytes:
    return tagged_png(prompt, index)


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


@contextmanager
def rss_peak(interval: float = 0.01) -> Iterator[dict[str, int]]:
    """Sample this process's RSS while the block runs; yields {'base', 'peak', 'delta'}."""
    stats = {"base": rss_bytes(), "peak": 0, "delta": 0}
    stats["peak"] = stats["base"]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            stats["peak"] = max(stats["peak"], rss_bytes())
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        done.set()
        thread.join()
        stats["peak"] = max(stats["peak"], rss_bytes())
        stats["delta"] = stats["peak"] - stats["base"]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
