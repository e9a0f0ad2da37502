"""Nothing outside the repository: the guard catches a read outside it, and sources name none.

The guard itself (tests/support/outside_repo.py) fails any test during which this
process or a Python process it started opened a path outside the allowed folders.
Here: it really catches such reads (beside the clone, in the home folder) in a child
process, lets reads inside the repository through, and the notebooks and scripts name
no path outside the repository.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.outside_repo import GUARD, GUARD_DIR, allowed_roots
from tests.support.paths import NOTEBOOKS, REPO

PROBE = """
import os, sys
for path in sys.argv[1:]:
    try:
        open(path).close()
    except OSError:
        pass
"""


def test_the_guard_notes_reads_beside_the_clone_and_in_home_but_not_inside(tmp_path: Path) -> None:
    log = tmp_path / "guard.log"
    # Beside the clone, under a name nothing there has: the probe opens it, so no real file is read.
    beside = REPO.parent / f"{REPO.name}-guard-probe" / "notes.txt"
    home = Path.home() / ".mesh_magic_guard_probe"
    inside = REPO / "pyproject.toml"
    scratch = tmp_path / "scratch.txt"
    env = {
        **os.environ,
        GUARD.LOG_ENV: str(log),
        "PYTHONPATH": os.pathsep.join([str(GUARD_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-c", PROBE, str(beside), str(home), str(inside), str(scratch)],
        env=env,
        check=True,
        timeout=60,
    )
    noted = [line.split(" ", 2)[2].split(" :: ")[0] for line in log.read_text().splitlines()]
    assert str(beside) in noted and str(home) in noted
    assert str(inside) not in noted and str(scratch) not in noted


def test_the_allowed_folders_leave_out_the_clones_folder_and_home() -> None:
    allowed = allowed_roots()
    assert GUARD.outside(str(REPO.parent / "a-folder-beside-the-clone" / "notes.txt"), allowed)
    assert GUARD.outside(str(Path.home() / ".config" / "mesh_magic" / "api_key"), allowed)
    assert GUARD.outside(str(Path.home() / ".ipython" / "profile_default"), allowed)
    assert not GUARD.outside(str(REPO / "notebooks" / "quickstart.ipynb"), allowed)
    assert not GUARD.outside(str(REPO), allowed)
    assert GUARD.outside(str(REPO) + "-other/file", allowed), "a sibling with the same prefix is outside"


def test_this_run_is_guarded_and_its_kernels_read_no_user_profile() -> None:
    assert os.environ.get(GUARD.LOG_ENV), "the guard is installed for this run"
    assert str(GUARD_DIR) in os.environ["PYTHONPATH"].split(os.pathsep), "child processes get it too"
    for name in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR"):
        assert GUARD.outside(os.environ[name], (str(Path.home()),)), f"{name} is not the user's"


# An absolute path, a home path or a step up out of the folder, as a notebook would write them.
_OUTSIDE_IN_CODE = re.compile(
    r"""(?:^|[\s"'=(])(?:/(?:home|root|work|Users|mnt|opt|srv)/|~/|\.\./|[A-Z]:\\\\)"""
)


def test_notebooks_name_no_path_outside_the_repository() -> None:
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                found += [
                    f"{path.name} cell {number}: {m.group(0)!r}" for m in _OUTSIDE_IN_CODE.finditer(source)
                ]
    assert found == []


_OUTSIDE_IN_SCRIPTS = re.compile(r"\.\./|/work/|\$HOME|~/|shared/")


def _python_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a Python script, docstrings left out (they may describe a path)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_scripts_name_no_path_outside_the_repository() -> None:
    scripts = sorted(p for p in (REPO / "scripts").iterdir() if p.is_file()) + [REPO / ".ci" / "run"]
    found = []
    for path in scripts:
        if path.suffix == ".py":
            texts = _python_strings(path)
        else:
            # The shell scripts reach the repository root as "$(dirname "$0")/..": inside it.
            lines = path.read_text().replace('"$(dirname "$0")/.."', "REPO").splitlines()
            texts = [(n, line) for n, line in enumerate(lines, 1) if not line.lstrip().startswith("#")]
        found += [
            f"{path.relative_to(REPO)}:{n}: {t.strip()}" for n, t in texts if _OUTSIDE_IN_SCRIPTS.search(t)
        ]
    assert found == []
    assert len(scripts) >= 7, "the scripts were found"
