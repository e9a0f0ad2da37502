"""Notebooks in real kernels (nbclient): build, run, and read what their cells showed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from .images import html_images
from .paths import NOTEBOOKS


def read_notebook(name: str) -> Any:
    """A notebook of the repository's notebooks/ folder."""
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4)


def code_notebook(*sources: str) -> Any:
    """A notebook of code cells for the python3 kernel (its kernelspec set, as JupyterLab wants)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb


def run_notebook(
    nb: Any,
    cwd: Path,
    timeout: int = 60,
    *,
    allow_errors: bool = False,
    env: dict[str, str] | None = None,
) -> Any:
    """Execute `nb` in a fresh python3 kernel with `cwd` as its folder.

    The kernel inherits os.environ unless `env` is given; with `allow_errors` a failing cell
    leaves its error output and the next cells still run.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(**({} if env is None else {"env": env}))  # nbclient treats env=None as no env
    return nb


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def text(value: Any) -> str:
    """A notebook output field, which nbformat may hold as a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def error_outputs(nb: Any) -> list[Any]:
    return [out for cell in nb.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def stream_text(nb_or_cell: Any) -> str:
    """The stdout/stderr text of a notebook's cells, or of one cell."""
    cells = nb_or_cell.cells if hasattr(nb_or_cell, "cells") else [nb_or_cell]
    return "".join(
        text(out.get("text", ""))
        for cell in cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def output_images(nb: Any) -> list[bytes]:
    """Bytes of every image shown in a notebook's outputs (data URIs in HTML and image/*)."""
    found: list[bytes] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                found += [raw for _, raw in html_images(text(data["text/html"]))]
            for mime in ("image/png", "image/jpeg"):
                if mime in data:
                    found.append(base64.b64decode(text(data[mime])))
    return found
