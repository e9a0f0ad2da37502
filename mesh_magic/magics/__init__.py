"""The IPython front end: `%%meshimg` / `%meshimg` and the `%meshimg_*` helper magics.

A thin layer over the core: parse flags, turn them into call options, show the
result. `register` installs the session config, the magics and the display hook.
"""

from __future__ import annotations

from typing import Any

from ..core import config as _config
from ..core.results import ImageResult
from .generate import GenerateMagics
from .session import SessionMagics

__all__ = ["GenerateMagics", "SessionMagics", "register"]


def _is_terminal(shell: Any) -> bool:
    """Plain `ipython` in a terminal (no kernel, no notebook front end)."""
    return any(cls.__name__ == "TerminalInteractiveShell" for cls in type(shell).__mro__)


def register(shell: Any) -> GenerateMagics:
    """Install the config, magics and display hook into `shell` (called by %load_ext)."""
    config = _config.MeshImg(parent=shell)
    _config.install_session(config)
    # %reload_ext: the new config (which took over the old one's values) replaces it.
    shell.configurables[:] = [c for c in shell.configurables if not isinstance(c, _config.MeshImg)]
    shell.configurables.append(config)
    magics = GenerateMagics(shell)
    shell.register_magics(magics)
    shell.register_magics(SessionMagics(shell))
    formatter = shell.display_formatter.ipython_display_formatter
    terminal = _is_terminal(shell)

    def show(result: ImageResult) -> bool | None:
        if not magics.display_result(result):
            return True  # handled: nothing to show
        if terminal:
            # Plain `ipython` shows text only: say where each image is, never its bytes.
            from ..render.grid import result_summary

            print(result_summary(result))
            return True
        from IPython.display import display

        data, metadata = result._repr_mimebundle_()
        display(data, raw=True, metadata=metadata)
        return True

    formatter.for_type(ImageResult, show)
    shell.events.register("post_run_cell", magics.clear_quiet)
    return magics
