"""Child process: start a bare IPython shell, optionally `%load_ext mesh_magic`, report as JSON.

`python bench_import_probe.py bare|load|first` (first: load, then time the imports that
the first generation pays).
"""

from __future__ import annotations

import json
import sys
import time

WATCH = (
    "ipywidgets",
    "PIL",
    "httpx",
    "httpx_sse",
    "starlette",
    "uvicorn",
    "platformdirs",
    "mesh_magic._panel",
    "mesh_magic._engine",
    "mesh_magic.server._app",
)


def rss_kib(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    mode = sys.argv[1]
    t0 = time.perf_counter()
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    t1 = time.perf_counter()
    rss_before = rss_kib()
    modules_before = set(sys.modules)
    if mode in ("load", "first"):
        shell.run_line_magic("load_ext", "mesh_magic")
        assert "meshimg" in shell.magics_manager.magics["cell"]
    t2 = time.perf_counter()
    rss_after = rss_kib()
    new = sorted(set(sys.modules) - modules_before)
    imported = {name: name in sys.modules for name in WATCH}
    deferred = 0.0
    if mode == "first":
        # What the first generation pays instead: the engine (asyncio, httpx) and Pillow.
        t3 = time.perf_counter()
        import PIL.Image  # noqa: F401

        import mesh_magic.core.engine.loop  # noqa: F401

        deferred = time.perf_counter() - t3
    print(
        json.dumps(
            {
                "shell_s": t1 - t0,
                "load_s": t2 - t1,
                "rss_before_kib": rss_before,
                "rss_after_kib": rss_after,
                "peak_rss_kib": rss_kib("VmHWM"),
                "new_modules": len(new),
                "imported": imported,
                "deferred_s": deferred,
            }
        )
    )


if __name__ == "__main__":
    main()
