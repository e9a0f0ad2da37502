"""Child process of the bulk benchmark: `python bench_bulk_probe.py CONTENDER N SIZE URL KEY DIR`.

Runs N prompts (all distinct) at concurrency 8 through one contender, writing every image under
DIR/run, after an untimed warm-up of 8 other prompts (into DIR/warm-up) so that no contender's
measurement includes its first call's imports and set-up. Prints one JSON line: wall seconds, CPU
seconds of this process (every thread) during the run, images received and peak RSS (VmHWM).
Contenders: `mesh_magic` (`generate_many`, defaults: store on, resume on), `bare` (asyncio +
httpx.AsyncClient: POST, decode, write + fsync) and `openai` (AsyncOpenAI: images.generate,
decode, write + fsync).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CONCURRENCY = 8
MODEL = "openai/gpt-image-1"


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


WARM_UP = 8  # untimed prompts first, so no contender's timed run pays its first-call imports


def prompts(count: int, what: str = "bulk benchmark") -> list[str]:
    return [f"{what} {i}: a lighthouse on a cliff at dawn" for i in range(count)]


def durable_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


async def bare(count: int, size: str, url: str, key: str, folder: Path, what: str = "bulk benchmark") -> int:
    import httpx

    gate = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(trust_env=False, timeout=120, limits=limits) as client:

        async def one(i: int, prompt: str) -> int:
            body = {"prompt": prompt, "model": MODEL, "n": 1, "size": size, "response_format": "b64_json"}
            async with gate:
                response = await client.post(f"{url}/v1/images/generations", json=body, headers=headers)
            response.raise_for_status()
            data = base64.b64decode(response.json()["data"][0]["b64_json"])
            durable_write(folder / f"{i}.png", data)
            return 1

        return sum(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts(count, what)))))


async def sdk(count: int, size: str, url: str, key: str, folder: Path, what: str = "bulk benchmark") -> int:
    import openai

    gate = asyncio.Semaphore(CONCURRENCY)
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)

    async def one(i: int, prompt: str) -> int:
        async with gate:
            answer: Any = await client.images.generate(
                model=MODEL, prompt=prompt, n=1, size=size, response_format="b64_json"
            )
        data = base64.b64decode(answer.data[0].b64_json)
        durable_write(folder / f"{i}.png", data)
        return 1

    try:
        return sum(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts(count, what)))))
    finally:
        await client.close()


def mesh(count: int, size: str, url: str, key: str, folder: Path, what: str = "bulk benchmark") -> int:
    import mesh_magic

    os.environ.update(MESHAPI_API_KEY=key, MESHAPI_BASE_URL=url)
    results = mesh_magic.generate_many(
        prompts(count, what), size=size, concurrency=CONCURRENCY, progress=False, store_dir=str(folder)
    )
    errors = [e for r in results for e in r.errors]
    if errors:
        raise RuntimeError(f"{len(errors)} errors, first: {errors[0]}")
    return sum(len(r) for r in results)


def data(count: int, store: Path) -> dict[str, Any]:
    """Results as data on the store a bulk run left: history, to_pandas, export, and baselines."""
    import shutil
    import tempfile

    import mesh_magic

    os.environ["MESHIMG_STORE_DIR"] = str(store)
    start = time.perf_counter()
    metas = [json.loads(p.read_bytes()) for p in store.glob("images/*/*.json")]
    sidecars_s = time.perf_counter() - start
    start = time.perf_counter()
    history = mesh_magic.history(count)
    history_s = time.perf_counter() - start
    start = time.perf_counter()
    frame = history.to_pandas()  # type: ignore[attr-defined]
    to_pandas_s = time.perf_counter() - start
    out = Path(tempfile.mkdtemp(prefix="mesh-bench-export-"))
    copies = Path(tempfile.mkdtemp(prefix="mesh-bench-copy-"))
    try:
        start = time.perf_counter()
        history.export(out / "set")  # type: ignore[attr-defined]
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        for i, image in enumerate(store.glob("images/*/*.png")):
            shutil.copyfile(image, copies / f"{i}.png")
        copy_s = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(copies, ignore_errors=True)
    return {
        "rows": len(frame),
        "sidecars": len(metas),
        "sidecars_s": sidecars_s,
        "history_s": history_s,
        "to_pandas_s": to_pandas_s,
        "export_s": export_s,
        "copy_s": copy_s,
        "maxrss_kib": status_kib("VmHWM"),
    }


def run(contender: str, n: int, size: str, url: str, key: str, folder: Path, what: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    if contender == "mesh_magic":
        return mesh(n, size, url, key, folder, what)
    return asyncio.run((bare if contender == "bare" else sdk)(n, size, url, key, folder, what))


def main() -> None:
    contender, count, size, url, key, folder = sys.argv[1:7]
    n, target = int(count), Path(folder)
    if contender == "data":
        print(json.dumps(data(n, target)))
        return
    # Imports first, so the run measures the bulk work itself.
    if contender == "mesh_magic":
        import mesh_magic  # noqa: F401
        from mesh_magic.core.engine import runner  # noqa: F401
    elif contender == "bare":
        import httpx  # noqa: F401
    else:
        import openai  # noqa: F401
    run(contender, WARM_UP, size, url, key, target / "warm-up", "warm-up")
    gc.collect()
    rss_before = status_kib("VmRSS")
    start, start_cpu = time.perf_counter(), time.process_time()
    got = run(contender, n, size, url, key, target / "run", "bulk benchmark")
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    report = {
        "contender": contender,
        "prompts": n,
        "size": size,
        "images": got,
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_before_kib": rss_before,
        "maxrss_kib": status_kib("VmHWM"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
