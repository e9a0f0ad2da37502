"""mesh_magic benchmarks: every number is a ratio against a baseline measured in the same run.

Run with `scripts/bench` (it prepares `.venv-bench` with openai, pyinstrument and nbformat).
Prints a table and writes test-artifacts/benchmarks.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_common import REPO, Row, log, machine, scrub_environ, server_process

GROUPS = ("per-request", "fan-out", "display", "import", "memory", "bulk")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bool":
        return "yes" if value else "no"
    digits = 2 if abs(value) < 100 else 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f} {unit}"


def table(rows: list[Row]) -> str:
    header = ["benchmark", "mesh_magic", "baseline", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        baseline = f"{_fmt(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline_name else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = "-" if row.met is None else ("yes" if row.met else "**NO**")
        lines.append(
            f"| {row.group}: {row.name} | {_fmt(row.value, row.unit)} | {baseline} | {ratio} | "
            f"{row.target or '-'} | {met} |"
        )
    return "\n".join(lines)


def performance_markdown(report: dict[str, Any], rows: list[Row]) -> str:
    m = report["machine"]
    return f"""## Performance

Measured by `scripts/bench` on {time.strftime("%Y-%m-%d", time.gmtime(report["finished"]))}: \
{m["nproc"]} cores ({m["cpu"]}), Python {m["python"]} ({m["platform"]}). \
Each number is compared with a baseline measured in the same run on the same machine, \
so the ratios hold even on a busy box (load average at start: \
{", ".join(str(x) for x in m["loadavg_at_start"])}); absolute times will differ on yours. \
The whole run took {report["seconds"]:.0f} s.

{table(rows)}

What the rows mean:

- **per-request** — 200 sequential requests per variant, interleaved, median: the same JSON
  body (checked in the server's request log) to the project's `MeshServer` in a separate
  process on loopback, zero latency, one cached 1024x1024 PNG (~190 KB, ~260 KB as
  base64) per answer. *bare httpx* is `httpx.Client.post` + `base64.b64decode`; *openai SDK*
  is `OpenAI(base_url=…/v1).images.generate`; *AsyncClient on a loop thread* is mesh_magic's
  design without mesh_magic (an `httpx.AsyncClient` on a background event loop, called from
  sync code). `generate()` runs with its defaults: cache
  off, and every image written to the store (a temp dir) as image + JSON sidecar, both
  fsync'd, plus one cache-index entry. That is real work the others skip, so it is compared against bare
  httpx doing the equivalent durable save (image + sidecar, temp file + fsync + rename), and
  the client alone (`run_requests(..., store=None)`: same engine, HTTP client, parsing and
  image checks) is compared against bare httpx and the SDK.
- **fan-out** — 4 prompts x 2 models x n=2 = 16 images in 8 requests with 500 ms server
  latency, via `generate_many(..., resume=False)`, after one warm-up run so the server's
  preview drawing is cached; compared with one request at the same latency and with the
  same 16 images at `concurrency=1`.
- **display** — image bytes to the rendered grid (`inspect_image`, `ImageResult`,
  `render_result`): the default thumbnail, and full embedding (`display_max_px=0`), against
  a plain Pillow decode of the same image. The notebook row is the size an `nbformat`
  notebook grows by when the grid output of one image is saved in it.
- **import** — a fresh process starts a bare IPython `InteractiveShell`, then
  `%load_ext mesh_magic` is timed inside it (7 processes each way, median, warm bytecode
  cache); RSS is read from /proc before and after; `sys.modules` is checked after load.
- **memory** — peak RSS (`VmHWM` from /proc) of a process that imports mesh_magic, starts the
  server in-process and runs `generate_many` over 100 prompts (results kept alive),
  against one that only imports and starts the server; per image: (peak − baseline peak) /
  100, and the marginal (100-image run − 1-image run) / 99.

What the numbers say (see `benchmarks/README.md` for the method):

{_client_finding(rows)}
- With the store on, the disk is the biggest cost after the network: the image and its
  sidecar are fsync'd (every paid image is kept before it is shown), one cache-index entry
  is written (with the cache off too: that is what lets a shipped store replay), and the
  writes run on a worker thread so they never stall other requests. The index entries are
  no longer fsync'd (an entry lost in a crash is only a cache miss), which saved about 0.5 ms
  of 13 ms per call here (A/B in one run), more when the disk is busy; the index write and
  the worker-thread hop are what remain between `generate()` and a bare call that saves the
  same two files durably.
- `%load_ext` no longer imports asyncio, httpx or the engine (`_generate` imports them on
  first use): about 90 ms before and 25 ms after on a quiet moment of this machine, and the
  first run of this benchmark, under heavy load, had missed the 150 ms target (367 ms). The
  first generation pays those imports instead ("deferred_to_first_use_ms" in the JSON).
  Neither ipywidgets nor Pillow is imported at load.
- Per displayed image the thumbnail was the cost (53.9 ms in the first run: a full PNG decode,
  a copy, then LANCZOS from full size). It now box-reduces by the whole factor before LANCZOS
  (`reducing_gap=1`) and resizes in place: about the cost of the decode alone (0.97x a plain
  Pillow decode, 16.6 ms here). The saved notebook stays small (a JPEG of a few tens of KB).

Re-run: `scripts/bench` (creates `.venv-bench` on first use; the run takes about a minute). The table is
printed and written with every sample to `test-artifacts/benchmarks.json`;
`scripts/bench --profile` also writes pyinstrument profiles of the per-request path to
`test-artifacts/`. Details: `benchmarks/README.md`.
"""


def _client_finding(rows: list[Row]) -> str:
    """The per-request finding, with this run's numbers (empty if that group did not run)."""
    extra = next((r.extra for r in rows if r.group == "per-request" and "cpu_median_ms" in r.extra), None)
    if not extra:
        return ""
    wall, cpu = extra["median_ms"], extra["cpu_median_ms"]
    bare, loop_thread, mine = "bare httpx", "bare httpx.AsyncClient on a loop thread", "mesh_magic (no store)"
    return (
        f"- The client itself (no store) takes {wall[mine]:.1f} ms per call against "
        f"{wall[loop_thread]:.1f} ms for a bare `httpx.AsyncClient` driven from sync code through a "
        f"loop thread, and {cpu[mine] - cpu[loop_thread]:.1f} ms more CPU: mesh_magic's own code "
        "(planning, parsing, image checks, results) is cheap. The gap to a plain synchronous "
        f"`httpx.Client` ({wall[bare]:.1f} ms) is that design, which the spec asks for (an async "
        "engine under a sync facade, so Ctrl-C really cancels and the magic, panel and bulk "
        "runs share one engine): two thread hand-offs per call plus the async HTTP stack "
        f"(httpcore + anyio), {cpu[loop_thread] - cpu[bare]:.1f} ms of CPU per call here. Each "
        "hand-off waits for a time slice when other jobs keep both cores busy, so the wall-time "
        "ratio grows with machine load. The openai SDK (synchronous, pydantic models) lands "
        f"in the same place ({wall['openai SDK']:.1f} ms)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", choices=GROUPS, help="run only this group (repeatable)")
    parser.add_argument("--requests", type=int, default=200, help="requests per per-request variant")
    parser.add_argument("--json", type=Path, default=REPO / "test-artifacts" / "benchmarks.json")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="also write the '## Performance' section here (e.g. docs/performance.md)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write pyinstrument profiles of the per-request path to test-artifacts/",
    )
    parser.add_argument(
        "--bulk-rounds", type=int, default=3, help="rounds of the 200-prompt bulk comparisons (median)"
    )
    parser.add_argument(
        "--bulk-counts",
        type=int,
        nargs="+",
        default=[2_000, 10_000],
        help="run sizes for the bulk scaling rows (200 is always the reference)",
    )
    args = parser.parse_args(argv)
    groups = args.only or list(GROUPS)

    scrub_environ()
    started = time.time()
    info = machine()
    log(f"mesh_magic benchmarks on {info['nproc']} x {info['cpu']}, Python {info['python']}")
    rows: list[Row] = []
    if "per-request" in groups or "fan-out" in groups:
        with server_process() as server:
            if "per-request" in groups:
                from benchmarks import bench_overhead

                profile_dir = args.json.parent if args.profile else None
                rows += bench_overhead.run(server, args.requests, profile_dir)
            if "fan-out" in groups:
                from benchmarks import bench_fanout

                rows += bench_fanout.run(server)
    if "display" in groups:
        from benchmarks import bench_display

        rows += bench_display.run()
    if "import" in groups:
        from benchmarks import bench_import

        rows += bench_import.run()
    if "memory" in groups:
        from benchmarks import bench_memory

        rows += bench_memory.run()
    if "bulk" in groups:
        from benchmarks import bench_bulk

        counts = tuple(sorted({200, *args.bulk_counts}))
        rows += bench_bulk.run(rounds=args.bulk_rounds, counts=counts)

    finished = time.time()
    report = {
        "machine": info,
        "started": started,
        "finished": finished,
        "seconds": round(finished - started, 1),
        "rows": [row.to_json() for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows))
    missed = [row for row in rows if row.met is False]
    print(
        f"\n{len(rows)} rows in {report['seconds']:.0f} s; targets met: "
        f"{sum(1 for r in rows if r.met)}, missed: {len(missed)}. JSON: {args.json}"
    )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(performance_markdown(report, rows))
        print(f"Markdown: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
