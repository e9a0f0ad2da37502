"""Memory: peak RSS of a 100-image `generate_many` run, over a process that only starts the server."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

from benchmarks.bench_common import HERE, PYTHON, Row, clean_env, log

PROBE = HERE / "bench_memory_probe.py"


def _probe(images: int) -> dict:
    store = tempfile.mkdtemp(prefix="mesh-bench-mem-")
    try:
        out = subprocess.run(
            [PYTHON, str(PROBE), str(images), store],
            capture_output=True,
            text=True,
            env=clean_env(),
            check=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(images: int = 100) -> list[Row]:
    log(f"  memory: baseline process, 1-image run, {images}-image generate_many run")
    base = _probe(0)
    one = _probe(1)
    many = _probe(images)
    if many.get("received") != images or many.get("errors"):
        raise RuntimeError(f"memory run got {many.get('received')} images, {many.get('errors')} errors")
    peak_delta_kib = many["maxrss_kib"] - base["maxrss_kib"]
    per_image_kib = peak_delta_kib / images
    marginal_kib = (many["maxrss_kib"] - one["maxrss_kib"]) / (images - 1)
    decoded_kib = many["width"] * many["height"] * 4 / 1024  # RGBA pixels, as Pillow holds them
    encoded_kib = many["image_bytes"] / 1024
    extra = {
        "baseline": base,
        "one_image": one,
        "run": many,
        "decoded_rgba_kib": decoded_kib,
        "encoded_kib": round(encoded_kib, 1),
        "per_image_kib": round(per_image_kib, 1),
        "marginal_per_image_kib": round(marginal_kib, 1),
    }
    return [
        Row(
            "memory",
            f"peak RSS, {images}-image generate_many vs server-only process",
            many["maxrss_kib"] / 1024,
            "MiB",
            "imports + server",
            base["maxrss_kib"] / 1024,
            "informational",
            note=f"delta {peak_delta_kib / 1024:.1f} MiB; results kept alive",
            extra=extra,
        ),
        Row(
            "memory",
            "peak RSS added per image vs one decoded image",
            per_image_kib,
            "KiB",
            "decoded 1024x1024 RGBA",
            decoded_kib,
            "< 1.00x",
            met=per_image_kib < decoded_kib,
            note=f"(peak - baseline peak) / {images}, one-time costs included; images stay encoded",
        ),
        Row(
            "memory",
            "marginal RSS per image vs its encoded PNG size",
            marginal_kib,
            "KiB",
            "PNG bytes per image",
            encoded_kib,
            "informational",
            note=f"(peak {images} - peak 1) / {images - 1}; each result keeps its full-resolution bytes",
        ),
    ]
