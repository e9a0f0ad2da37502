"""Fan-out: 16 images (4 prompts x 2 models x n=2 = 8 requests) against 500 ms server latency."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import httpx

from benchmarks.bench_common import Row, ServerProcess, log, median

PROMPTS = [
    "benchmark fan-out: a red bicycle in the rain",
    "benchmark fan-out: a bowl of ramen, top view",
    "benchmark fan-out: an owl in a library",
    "benchmark fan-out: a glacier under the aurora",
]
MODELS = "openai/gpt-image-1,google/imagen-4"
OPTIONS = {"model": MODELS, "n": 2, "size": "1024x1024", "params": {"seed": 7}}
LATENCY = 0.5


def run(server: ServerProcess, repeats: int = 3) -> list[Row]:
    import mesh_magic
    from mesh_magic.core import config as _config

    os.environ["MESHAPI_API_KEY"] = server.api_key
    os.environ["MESHAPI_BASE_URL"] = server.base_url
    store = tempfile.mkdtemp(prefix="mesh-bench-fanout-")
    os.environ["MESHIMG_STORE_DIR"] = store
    _config.session().reset()
    default_concurrency = _config.resolve().concurrency

    def fan_out(**extra: object) -> float:
        start = time.perf_counter()
        # resume=False: no request is answered from the store; every one goes to the server.
        results = mesh_magic.generate_many(PROMPTS, resume=False, progress=False, **OPTIONS, **extra)
        elapsed = time.perf_counter() - start
        images = sum(len(r) for r in results)
        errors = sum(len(r.errors) for r in results)
        if images != 16 or errors:
            raise RuntimeError(f"fan-out produced {images} images and {errors} errors")
        return elapsed

    def single() -> float:
        start = time.perf_counter()
        result = mesh_magic.generate(
            PROMPTS[0], model=MODELS.split(",")[0], size="1024x1024", params={"seed": 7}
        )
        elapsed = time.perf_counter() - start
        assert len(result) == 1
        return elapsed

    # Warm-up at zero latency: the server renders (and caches) all 16 previews once, so the
    # timed runs measure latency + client work, not the stand-in server's drawing.
    server.set_latency(0.0)
    fan_out()
    single()
    server.set_latency(LATENCY)
    control = httpx.Client(trust_env=False)
    try:
        log(
            f"  fan-out: 1 request x{repeats}, 16 images x{repeats} (concurrency "
            f"{default_concurrency}), 16 images x1 serially, at {LATENCY * 1000:.0f} ms latency"
        )
        one = median([single() for _ in range(repeats)])
        control.post(f"{server.base_url}/_mesh/reset")
        parallel = median([fan_out() for _ in range(repeats)])
        in_flight = control.get(f"{server.base_url}/_mesh/stats").json().get("max_in_flight")
        serial = fan_out(concurrency=1)
    finally:
        server.set_latency(0.0)
        control.close()
        shutil.rmtree(store, ignore_errors=True)
    extra = {
        "latency_s": LATENCY,
        "requests": 8,
        "images": 16,
        "default_concurrency": default_concurrency,
        "one_request_s": round(one, 4),
        "fan_out_s": round(parallel, 4),
        "serial_s": round(serial, 4),
        "server_max_in_flight": in_flight,
        "repeats": repeats,
    }
    return [
        Row(
            "fan-out",
            "16 images (8 requests) vs one request",
            parallel * 1000,
            "ms",
            "one request",
            one * 1000,
            "< 1.50x",
            met=parallel / one < 1.5,
            extra=extra,
        ),
        Row(
            "fan-out",
            "16 images default concurrency vs concurrency=1",
            parallel * 1000,
            "ms",
            "concurrency=1",
            serial * 1000,
            "informational",
            note="ideal 0.125x (8 requests, one latency each)",
        ),
    ]
