"""Import cost: `%load_ext mesh_magic` in a fresh IPython, over bare IPython startup."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time

from benchmarks.bench_common import HERE, PYTHON, Row, clean_env, log, median

PROBE = HERE / "bench_import_probe.py"


def _probe(mode: str, env: dict[str, str]) -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        [PYTHON, str(PROBE), mode], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["process_s"] = time.perf_counter() - start
    return report


def run(repeats: int = 7) -> list[Row]:
    # Bytecode caching on (a user's second session); PYTHONDONTWRITEBYTECODE would make every
    # run compile mesh_magic from source. IPYTHONDIR keeps the user's profile out of it.
    ipython_dir = tempfile.mkdtemp(prefix="mesh-bench-ipython-")
    env = clean_env(IPYTHONDIR=ipython_dir)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for mode in ("bare", "load"):
        _probe(mode, env)  # warm-up: writes .pyc files and warms the OS file cache
    log(f"  import: {repeats} fresh IPython processes each, bare and with %load_ext mesh_magic")
    runs: dict[str, list[dict]] = {"bare": [], "load": []}
    for _ in range(repeats):
        for mode in ("bare", "load"):
            runs[mode].append(_probe(mode, env))
    bare, load = runs["bare"], runs["load"]
    first = [_probe("first", env) for _ in range(2)]
    shutil.rmtree(ipython_dir, ignore_errors=True)
    load_ms = median([r["load_s"] for r in load]) * 1000
    bare_process_ms = median([r["process_s"] for r in bare]) * 1000
    load_process_ms = median([r["process_s"] for r in load]) * 1000
    rss_delta = median([r["rss_after_kib"] - r["rss_before_kib"] for r in load]) / 1024
    bare_rss = median([r["rss_after_kib"] for r in bare]) / 1024
    imported = {name: any(r["imported"][name] for r in load) for name in load[0]["imported"]}
    extra = {
        "repeats": repeats,
        "load_ext_ms_each": [round(r["load_s"] * 1000, 1) for r in load],
        "bare_process_ms": round(bare_process_ms, 1),
        "load_process_ms": round(load_process_ms, 1),
        "imported_at_load": imported,
        "deferred_to_first_use_ms": round(median([r["deferred_s"] for r in first]) * 1000, 1),
        "new_modules": median([r["new_modules"] for r in load]),
    }
    widgets = imported["ipywidgets"]
    return [
        Row(
            "import",
            "%load_ext mesh_magic time vs bare IPython startup",
            load_ms,
            "ms",
            "bare IPython process",
            bare_process_ms,
            "< 150 ms",
            met=load_ms < 150,
            extra=extra,
        ),
        Row(
            "import",
            "%load_ext mesh_magic RSS added vs bare IPython RSS",
            rss_delta,
            "MiB",
            "bare IPython RSS",
            bare_rss,
            "informational",
        ),
        Row(
            "import",
            "ipywidgets imported at load (0 = no)",
            float(widgets),
            "bool",
            target="no",
            met=not widgets,
            note=f"PIL imported at load: {'yes' if imported['PIL'] else 'no'}; "
            f"httpx: {'yes' if imported['httpx'] else 'no'}",
        ),
    ]
