"""Shared pieces of the benchmark: machine facts, a server in its own process, timing helpers.

Nothing here is a pytest test (see conftest.py): the benchmark is run by `scripts/bench`.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable
BENCH_KEY = "rsk_bench_0123456789abcdef"
ENV_PREFIXES = ("MESHAPI_", "MESH_API_", "MESHIMG_")


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any mesh_magic setting from the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(extra)
    return env


def scrub_environ() -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            del os.environ[name]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


@dataclass
class Row:
    """One line of the table: a measurement, its same-run baseline and their ratio."""

    group: str
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 5
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each function `rounds` times, round-robin with a rotating order.

    Interleaving spreads machine noise (other jobs on a shared box) evenly over the
    variants, which is what makes same-run ratios meaningful. Returns wall-clock and
    process CPU seconds per call (CPU of this process only: every thread, not the server).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            fn = fns[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return wall, cpu


class ServerProcess:
    """A `MeshServer` on loopback in a child process, so its CPU is not billed to the client.

    Talks over stdin: `latency SECONDS` sets `MeshServer.latency`; EOF stops it.
    """

    def __init__(self, latency: float = 0.0, *, fixed: bool = False) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "bench_serve.py"), BENCH_KEY, str(latency), *(["--fixed"] if fixed else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.base_url = line
        self.api_key = BENCH_KEY

    def set_latency(self, seconds: float) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"latency {seconds}\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()  # "ok"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def server_process(latency: float = 0.0, *, fixed: bool = False) -> Iterator[ServerProcess]:
    srv = ServerProcess(latency, fixed=fixed)
    try:
        yield srv
    finally:
        srv.stop()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
