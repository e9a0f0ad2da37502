"""Watch every path a process opens or lists; note those outside the allowed folders.

Installed in the test run's own process by tests/support/outside_repo.py, and in every
Python process the tests start (kernels, servers, JupyterLab, scripts) because that
plugin puts this folder first on PYTHONPATH: Python imports `sitecustomize` at start-up.
It does nothing unless MESH_MAGIC_GUARD_LOG names the log to append to; the allowed
folders are in MESH_MAGIC_GUARD_ALLOW (os.pathsep-separated): the repository, the temp
folder, the Python installation and the system's own folders.
"""

from __future__ import annotations

import os
import sys
import threading

LOG_ENV = "MESH_MAGIC_GUARD_LOG"
ALLOW_ENV = "MESH_MAGIC_GUARD_ALLOW"
_EVENTS = {"open", "os.listdir", "os.scandir"}
_busy = threading.local()


def outside(path: str, allowed: tuple[str, ...]) -> bool:
    return not any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in allowed)


def install(log: str, allowed: tuple[str, ...]) -> None:
    def hook(event: str, args: tuple[object, ...]) -> None:
        if event not in _EVENTS or not args or getattr(_busy, "on", False):
            return
        target = args[0]
        if not isinstance(target, str | bytes | os.PathLike):
            return  # a file descriptor
        try:
            path = os.path.abspath(os.fsdecode(target))
        except (TypeError, ValueError, OSError):
            return
        if not outside(path, allowed):
            return
        _busy.on = True
        try:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {event} {path} :: {' '.join(sys.argv)[:160]}\n")
        except OSError:
            pass
        finally:
            _busy.on = False

    sys.addaudithook(hook)


if os.environ.get(LOG_ENV) and not getattr(sys, "_mesh_magic_guard", False):
    sys._mesh_magic_guard = True  # type: ignore[attr-defined]
    install(os.environ[LOG_ENV], tuple(p for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p))
