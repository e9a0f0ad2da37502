"""Run notebooks/quickstart.ipynb in a real kernel and export it (the body of scripts/demo).

    .venv/bin/python scripts/demo_run.py                  # -> demo-output/quickstart.{ipynb,html}
    .venv/bin/python scripts/demo_run.py --offline        # ignore any key, use the offline backend
    .venv/bin/python scripts/demo_run.py --update-notebook  # maintainers: refresh the saved outputs

Without MESHAPI_API_KEY / MESH_API_KEY in the environment the notebook runs against the
built-in offline backend (MESHAPI_BASE_URL=offline): local preview images, nothing billed.
With a key it calls the real API, and every image is billed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
KEY_VARS = ("MESHAPI_API_KEY", "MESH_API_KEY")
_IMG_RE = re.compile(r'<img src="data:image/[a-z]+;base64,')


def count_images(output: dict[str, Any]) -> int:
    """Images shown by one output: inline <img> data URIs in HTML, or image/* bundles."""
    data = output.get("data") or {}
    found = len(_IMG_RE.findall(str(data.get("text/html", ""))))
    return found + sum(1 for mime in data if mime.startswith("image/"))


def read_clean(notebook: Path) -> Any:
    """The notebook without its saved outputs, so a run that stops early shows only its own."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def execute(nb: Any, workdir: Path, env: dict[str, str], timings: dict[str, float], *,
            timeout: int, record_timing: bool = True) -> None:
    """Execute `nb` in place with cwd `workdir` and kernel environment `env`.

    On failure `nb` holds the outputs as far as it got. `timings` receives the total
    seconds and the seconds from kernel start to the first cell that showed an image.
    """
    from nbclient import NotebookClient

    started = time.monotonic()

    def on_cell_executed(cell: Any, **_: Any) -> None:
        if "first_image" not in timings and any(count_images(o) for o in cell.get("outputs", [])):
            timings["first_image"] = time.monotonic() - timings.get("kernel_ready", started)

    def on_kernel_ready(**_: Any) -> None:
        timings["kernel_ready"] = time.monotonic()

    # This venv's kernel first: a personal "python3" kernelspec (searched before the
    # environment's) could point at a Python without mesh_magic.
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")) if p)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout, record_timing=record_timing,
        # Quiets ipykernel's start-up notice about TCP transport; errors still show.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(workdir)}},
        on_cell_executed=on_cell_executed, on_notebook_start=on_kernel_ready,
    )
    try:
        client.execute(env=env)
    finally:
        timings["total"] = time.monotonic() - started
        timings.pop("kernel_ready", None)


def kernel_env(base: dict[str, str], *, offline: bool, store: Path | None) -> dict[str, str]:
    env = dict(base)
    if offline:
        for name in KEY_VARS:
            env.pop(name, None)
        env["MESHAPI_BASE_URL"] = "offline"
    if store is not None:
        env["MESHIMG_STORE_DIR"] = str(store)
    env.pop("MESHIMG_CACHE", None)
    return env


def export_html(nb: Any, target: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def summarise(nb: Any) -> tuple[int, int, int]:
    """(code cells, images shown, error outputs)."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    images = sum(count_images(o) for c in cells for o in c.get("outputs", []))
    errors = sum(1 for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error")
    return len(cells), images, errors


def update_notebook(timeout: int, notebook: Path = NOTEBOOK) -> int:
    """Re-execute a notebook of the repository offline, in a scratch folder, and save it in place.

    The scratch folder is a copy of notebooks/ (so a shipped store such as teaching_store/
    is beside the notebook, as for a student).

    A scratch HOME makes the default store (~/.local/share/mesh_magic/store) empty, so
    history shows only this run; the scratch folder is then written as `~` in the outputs,
    so no machine path is saved. No execution timestamps are recorded.
    """
    with tempfile.TemporaryDirectory(prefix="mesh-quickstart-") as tmp:
        scratch = Path(tmp)
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("MESHAPI_", "MESH_API_", "MESHIMG_", "XDG_"))}
        base["HOME"] = str(scratch)
        workdir = scratch / "notebooks"
        shutil.copytree(notebook.parent, workdir, ignore=shutil.ignore_patterns("*.ipynb"))
        nb = read_clean(notebook)
        timings: dict[str, float] = {}
        execute(nb, workdir, kernel_env(base, offline=True, store=None), timings,
                timeout=timeout, record_timing=False)
    import nbformat

    _abbreviate_home(nb, str(scratch))
    cells, images, errors = summarise(nb)
    if errors:
        print(f"{errors} cell(s) ended in an error: not saving.", file=sys.stderr)
        return 1
    nbformat.write(nb, notebook)
    size = notebook.stat().st_size
    print(f"Saved {notebook.relative_to(REPO)}: {cells} code cells, {images} images, "
          f"{size / 1024:.0f} KB, executed in {timings['total']:.1f} s.")
    return 0


def _abbreviate_home(nb: Any, home: str) -> None:
    """Write `home` as `~` in every text output (images are base64 and cannot contain it)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = output["text"].replace(home, "~")
            for mime, value in (output.get("data") or {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = value.replace(home, "~")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "demo-output"), help="output folder")
    parser.add_argument("--offline", action="store_true",
                        help="use the offline backend even if a key is set")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--update-notebook", nargs="*", metavar="NAME",
                        help="re-execute notebooks/NAME.ipynb (default: quickstart) offline "
                        "and save it in place")
    args = parser.parse_args(argv)
    if args.update_notebook is not None:
        names = args.update_notebook or ["quickstart"]
        return max(update_notebook(args.timeout, REPO / "notebooks" / f"{name}.ipynb")
                   for name in names)

    key_var = next((name for name in KEY_VARS if os.environ.get(name, "").strip()), None)
    offline = args.offline or key_var is None
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = Path(os.environ["MESHIMG_STORE_DIR"]) if os.environ.get("MESHIMG_STORE_DIR") \
        else out / "store"

    if offline:
        why = "--offline given" if args.offline else "no MESHAPI_API_KEY or MESH_API_KEY set"
        print(f"mesh_magic demo: offline backend ({why}). Images are local previews; "
              "nothing is sent or billed.")
    else:
        custom = os.environ.get("MESHAPI_BASE_URL", "").strip()
        where = f"the API at {custom} (MESHAPI_BASE_URL)" if custom else \
            "the real MeshAPI (https://api.meshapi.ai)"
        print(f"mesh_magic demo: calling {where} with the key from ${key_var}. "
              "Each of the ~17 generated images is billed; use --offline to avoid that.")
    print(f"Executing {NOTEBOOK.relative_to(REPO)} in a python3 kernel ...", flush=True)

    env = kernel_env(dict(os.environ), offline=offline, store=store)
    nb = read_clean(NOTEBOOK)
    failure: BaseException | None = None
    timings: dict[str, float] = {}
    try:
        execute(nb, out, env, timings, timeout=args.timeout)
    except Exception as exc:  # CellExecutionError, timeouts, a dead kernel
        failure = exc
    import nbformat

    nbformat.write(nb, out / "quickstart.ipynb")
    export_html(nb, out / "quickstart.html")

    cells, images, errors = summarise(nb)
    ran = sum(1 for c in nb.cells if c.cell_type == "code" and c.execution_count)
    rel = _shown_path(out)
    if failure is not None:
        print(f"\nThe notebook stopped with an error:\n{_short_error(failure)}", file=sys.stderr)
    print()
    print(f"Executed {ran} of {cells} code cells in {timings.get('total', 0):.1f} s: "
          f"{images} images shown, {errors} error outputs"
          + (f"; first image {timings['first_image']:.1f} s after the kernel started."
             if "first_image" in timings else "."))
    looks = [(f"{rel}/quickstart.html", "open it in a browser (the notebook as rendered)"),
             (f"{rel}/quickstart.ipynb", f"the executed notebook (jupyter lab {rel}/quickstart.ipynb)")]
    saved = out / "quickstart_images"
    if saved.is_dir():
        count = len(list(saved.glob("*.json")))
        looks.append((f"{rel}/quickstart_images/",
                      f"{count} full-resolution image{'s' * (count != 1)} written by --save"))
    stored = len(list((store / "images").glob("*/*.json")))
    looks.append((f"{_shown_path(store)}/",
                  f"the image store: {stored} images at full resolution, each with a JSON sidecar"))
    width = max(len(path) for path, _ in looks)
    print("Look at:")
    for path, what in looks:
        print(f"  {path.ljust(width)}  {what}")
    return 1 if failure is not None or errors else 0


def _shown_path(path: Path) -> str:
    """Relative to the current folder when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = text.splitlines()
    return "\n".join(lines[-15:]) if len(lines) > 15 else text


if __name__ == "__main__":
    sys.exit(main())
