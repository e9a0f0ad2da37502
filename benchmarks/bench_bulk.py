"""Bulk: `generate_many` throughput, CPU and peak RSS against bare asyncio httpx and the openai SDK.

Every contender runs in its own child process (`bench_bulk_probe.py`) against one `MeshServer`
child that answers each size with one fixed preview, so the server's drawing is not what is
measured. All contenders send distinct prompts at concurrency 8 and keep every image on disk
(fsync'd). Rows compare with baselines measured in the same run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from typing import Any

from benchmarks.bench_common import HERE, PYTHON, Row, clean_env, log, median, server_process

PROBE = HERE / "bench_bulk_probe.py"
CONTENDERS = ("mesh_magic", "bare", "openai")
LARGE, SMALL = "1024x1024", "256x256"


def _probe(contender: str, count: int, size: str, url: str, key: str) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="mesh-bench-bulk-")
    try:
        out = subprocess.run(
            [PYTHON, str(PROBE), contender, str(count), size, url, key, folder],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=1800,
        )
        if out.returncode:
            raise RuntimeError(f"{contender} {count} {size} failed:\n{out.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        if contender == "mesh_magic" and count >= 10_000:
            report["data"] = _data_probe(f"{folder}/run", count)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if report["images"] != count:
        raise RuntimeError(f"{contender} got {report['images']} of {count} images")
    report["images_per_s"] = count / report["seconds"]
    report["cpu_ms_per_image"] = 1000 * report["cpu_s"] / count
    log(
        f"    {contender:10} {count:>6} x {size:9}: {report['images_per_s']:7.1f} img/s, "
        f"{report['cpu_ms_per_image']:6.2f} ms CPU/img, peak {report['maxrss_kib'] / 1024:6.1f} MiB"
    )
    return report


def _data_probe(store: str, count: int) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, str(PROBE), "data", str(count), "-", "-", "-", store],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,
    )
    if out.returncode:
        log(f"    data probe failed (results as data missing?): {out.stderr.strip().splitlines()[-1:]}")
        return {}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _best(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median throughput and CPU per image over rounds."""
    return {
        "images_per_s": median([r["images_per_s"] for r in runs]),
        "cpu_ms_per_image": median([r["cpu_ms_per_image"] for r in runs]),
        "maxrss_mib": median([r["maxrss_kib"] / 1024 for r in runs]),
    }


def _compare(size: str, count: int, rounds: int, url: str, key: str) -> list[Row]:
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for i in range(rounds):
        order = CONTENDERS[i % 3 :] + CONTENDERS[: i % 3]
        for contender in order:
            runs[contender].append(_probe(contender, count, size, url, key))
    got = {c: _best(r) for c, r in runs.items()}
    mine, bare, sdk = got["mesh_magic"], got["bare"], got["openai"]
    label = f"{count:,} x {size}"
    extra = {"runs": runs, "summary": got}
    return [
        Row(
            "bulk",
            f"{label}: images/s vs bare httpx + fsync",
            mine["images_per_s"],
            "img/s",
            "bare httpx + fsync",
            bare["images_per_s"],
            ">= 0.95x",
            met=mine["images_per_s"] >= 0.95 * bare["images_per_s"],
            extra=extra,
        ),
        Row(
            "bulk",
            f"{label}: CPU per image vs bare httpx + fsync",
            mine["cpu_ms_per_image"],
            "ms",
            "bare httpx + fsync",
            bare["cpu_ms_per_image"],
            "<= 1.10x",
            met=mine["cpu_ms_per_image"] <= 1.1 * bare["cpu_ms_per_image"],
        ),
        Row(
            "bulk",
            f"{label}: images/s vs openai SDK",
            mine["images_per_s"],
            "img/s",
            "AsyncOpenAI + fsync",
            sdk["images_per_s"],
            "informational",
        ),
        Row(
            "bulk",
            f"{label}: CPU per image vs openai SDK",
            mine["cpu_ms_per_image"],
            "ms",
            "AsyncOpenAI + fsync",
            sdk["cpu_ms_per_image"],
            "informational",
        ),
        Row(
            "bulk",
            f"{label}: peak RSS vs bare httpx + fsync",
            mine["maxrss_mib"],
            "MiB",
            "bare httpx + fsync",
            bare["maxrss_mib"],
            "informational",
        ),
    ]


def _scale(counts: tuple[int, ...], url: str, key: str) -> list[Row]:
    """generate_many alone at growing sizes (small images): flat throughput, CPU and memory."""
    runs = {n: _probe("mesh_magic", n, SMALL, url, key) for n in counts}
    first = counts[0]
    base = runs[first]
    rows: list[Row] = []
    for n in counts[1:]:
        run = runs[n]
        rows += [
            Row(
                "bulk",
                f"{n:,} prompts: images/s vs {first} prompts",
                run["images_per_s"],
                "img/s",
                f"{first} prompts",
                base["images_per_s"],
                ">= 0.90x",
                met=run["images_per_s"] >= 0.9 * base["images_per_s"],
            ),
            Row(
                "bulk",
                f"{n:,} prompts: CPU per image vs {first} prompts",
                run["cpu_ms_per_image"],
                "ms",
                f"{first} prompts",
                base["cpu_ms_per_image"],
                "<= 1.11x",
                met=run["cpu_ms_per_image"] <= base["cpu_ms_per_image"] / 0.9,
            ),
        ]
    for n in counts:
        run = runs[n]
        peak = run["maxrss_kib"] / 1024
        target, met = "informational", None
        if n >= 10_000:
            target, met = "< 300 MiB, <= 1.20x", peak < 300 and peak <= 1.2 * base["maxrss_kib"] / 1024
        rows.append(
            Row(
                "bulk",
                f"peak RSS, {n:,} prompts ({SMALL}) vs {first} prompts",
                peak,
                "MiB",
                f"{first} prompts",
                base["maxrss_kib"] / 1024,
                target,
                met=met,
                extra={"run": {k: v for k, v in run.items() if k != "data"}},
            )
        )
    data = runs[counts[-1]].get("data") or {}
    if data:
        rows += [
            Row(
                "bulk",
                f"to_pandas() on {data['rows']:,} history rows",
                data["to_pandas_s"] * 1000,
                "ms",
                "json.loads of every sidecar",
                data["sidecars_s"] * 1000,
                "< 2,000 ms",
                met=data["to_pandas_s"] < 2.0,
                extra=data,
            ),
            Row(
                "bulk",
                f"export() of {data['rows']:,} history rows",
                data["export_s"] * 1000,
                "ms",
                "copy of every image file",
                data["copy_s"] * 1000,
                "informational",
            ),
        ]
    return rows


def run(rounds: int = 3, counts: tuple[int, ...] = (200, 2_000, 10_000)) -> list[Row]:
    rows: list[Row] = []
    with server_process(fixed=True) as server:
        url, key = server.base_url, server.api_key
        log(f"  bulk: {LARGE} and {SMALL}, 200 prompts, {rounds} rounds per contender")
        rows += _compare(LARGE, 200, rounds, url, key)
        rows += _compare(SMALL, 200, rounds, url, key)
        log(f"  bulk: {SMALL}, 2,000 prompts, each contender once")
        rows += _compare(SMALL, 2_000, 1, url, key)
        log(f"  bulk: generate_many at {', '.join(f'{n:,}' for n in counts)} prompts ({SMALL})")
        rows += _scale(counts, url, key)
    return rows
