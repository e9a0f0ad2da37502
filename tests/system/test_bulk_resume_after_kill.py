"""A bulk run in a real kernel, killed mid-run (SIGKILL), resumes in a new kernel.

The server's request log is the witness: the second run sends exactly the prompts
the first one had not finished (stored), and none of the finished ones again.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from mesh_magic.server import Fault
from tests.support.kernels import running_kernel
from tests.support.servers import FAST_MODEL, TINY, generations
from tests.support.waiting import wait_until

PROMPTS = [f"A paper boat, fold {i}" for i in range(16)]
RUN = (
    "import mesh_magic\n"
    f"prompts = {PROMPTS!r}\n"
    f"results = mesh_magic.generate_many(prompts, model={FAST_MODEL!r}, size={TINY!r}, concurrency=2, "
    "progress=False)\n"
)
REPORT = (
    "import json\n"
    "print(json.dumps([[r.rows[0][0], len(r), len(r.errors), [im.cached for im in r]] for r in results]))\n"
)


def _finished(store: Path) -> set[str]:
    """Prompts whose answer the store holds (a cache entry: written after the image and sidecar)."""
    entries = [json.loads(p.read_text()) for p in (store / "cache").glob("*.json")]
    return {e["prompt"] for e in entries if e.get("complete", True)}


def test_killed_bulk_run_resumes_without_resending_finished_prompts(
    server: Any, clean_environment: Path
) -> None:
    store = clean_environment
    server.add_fault(Fault(kind="latency", delay=0.3, times=-1))  # 16 prompts, 2 at a time: ~2.4 s
    with running_kernel(server, store) as (manager, client):
        client.execute(RUN)
        assert wait_until(lambda: len(_finished(store)) >= 5, 30), "the first run never got going"
        manager.signal_kernel(signal.SIGKILL)
        assert wait_until(lambda: not manager.is_alive(), 10)
    finished = _finished(store)
    assert wait_until(lambda: server.in_flight == 0, 5)
    first_run = [r.json["prompt"] for r in generations(server)]
    assert 5 <= len(finished) < len(PROMPTS), "killed too late to show a resume"
    assert finished <= set(first_run)

    server.reset()
    with running_kernel(server, store) as (_, client):
        lines: list[str] = []
        reply = client.execute_interactive(
            RUN + REPORT,
            timeout=60,
            output_hook=lambda m: lines.append(m["content"]["text"]) if m["msg_type"] == "stream" else None,
        )
        assert reply["content"]["status"] == "ok"
    resent = [r.json["prompt"] for r in generations(server)]
    print(
        f"\nfirst run: {len(first_run)} requests sent, {len(finished)} prompts finished before SIGKILL; "
        f"second run sent {len(resent)}"
    )
    # The log: every unfinished prompt once, no finished one.
    assert sorted(resent) == sorted(set(PROMPTS) - finished)
    report = json.loads("".join(lines))
    assert [row[0] for row in report] == PROMPTS
    assert all(count == 1 and errors == 0 for _, count, errors, _ in report)
    assert {prompt for prompt, _, _, cached in report if cached == [True]} == finished
