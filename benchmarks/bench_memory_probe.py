"""Child process for the memory benchmark: `python bench_memory_probe.py IMAGES STORE_DIR`.

Imports mesh_magic, starts the loopback MeshServer in-process, then (IMAGES > 0) runs
`generate_many` over IMAGES prompts and keeps the results alive; prints peak (VmHWM) and current
RSS as JSON. IMAGES=0 is the baseline: imports and starts the server only.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time

KEY = "rsk_bench_0123456789abcdef"
PROMPT = "benchmark memory: a lighthouse on a cliff at dawn"


def status_kib(field: str = "VmRSS") -> int:
    """Current RSS (VmRSS) or peak RSS (VmHWM) of this process, from /proc.

    VmHWM rather than ru_maxrss: a child's ru_maxrss starts at its parent's size when the
    parent is larger (it survives fork + exec), which would hide a small child's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib() -> int:
    return status_kib("VmRSS")


def main() -> None:
    images, store = int(sys.argv[1]), sys.argv[2]
    import mesh_magic
    from mesh_magic.server import MeshServer

    server = MeshServer(api_key=KEY).start()
    os.environ.update(MESHAPI_API_KEY=KEY, MESHAPI_BASE_URL=server.base_url, MESHIMG_STORE_DIR=store)
    report: dict[str, object] = {"images": images}
    start_rss = rss_kib()
    if images:
        start = time.perf_counter()
        # resume=False keeps the default cache=off: every image is a real request, stored on disk.
        results = mesh_magic.generate_many(
            [PROMPT] * images, size="1024x1024", params={"seed": 1}, resume=False, progress=False
        )
        report["seconds"] = time.perf_counter() - start
        got = sum(len(r) for r in results)
        report["received"] = got
        report["errors"] = sum(len(r.errors) for r in results)
        report["bytes_held"] = sum(len(im.data) for r in results for im in r)
        report["image_bytes"] = len(results[0][0].data) if got else 0
        report["width"] = results[0][0].width if got else 0
        report["height"] = results[0][0].height if got else 0
        gc.collect()
        report["rss_holding_kib"] = rss_kib()
        del results
        gc.collect()
        report["rss_released_kib"] = rss_kib()
    report["rss_start_kib"] = start_rss
    report["maxrss_kib"] = status_kib("VmHWM")
    report["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
