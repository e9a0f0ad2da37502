"""Plain `ipython` in a terminal (a pty, no kernel, no notebook): generations print a summary.

The summary names each image's file in the store (files that exist), shows the failures,
and never dumps an image's bytes: no base64, no data: URI, no HTML.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

IPYTHON = Path(sys.executable).with_name("ipython")
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")
PROMPT = re.compile(r"In \[(\d+)\]:")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")


class Terminal:
    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 1

    def run(self, *lines: str) -> str:
        """Type a cell line by line; return what it printed, up to the next numbered prompt."""
        for line in lines[:-1]:
            self.child.send(line + "\r")
            self.child.expect(r"\.\.\.:")  # the continuation prompt of a multi-line cell
        self.child.send(lines[-1] + "\r")
        self.count += 1
        self.child.expect(rf"In \[{self.count}\]:")
        return ANSI.sub("", self.child.before)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHAPI_", "MESH_API_", "MESHIMG_"))}
    env.update(
        MESHAPI_BASE_URL="offline",
        MESHIMG_STORE_DIR=str(tmp_path / "store"),
        TERM="xterm-256color",
        COLUMNS="160",
        LINES="50",
        PROMPT_TOOLKIT_NO_CPR="1",  # the pty answers no cursor-position requests
    )
    child = pexpect.spawn(
        str(IPYTHON),
        ["--no-banner", "--colors=nocolor", "--HistoryManager.enabled=False"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(50, 160),
        timeout=60,
    )
    child.expect(PROMPT)
    yield Terminal(child)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()


def test_a_generation_in_plain_ipython_prints_a_readable_summary(terminal: Terminal, tmp_path: Path) -> None:
    terminal.run("%load_ext mesh_magic")
    shown = terminal.run("%meshimg -n 2 -s 64x64 a red fox in fresh snow")
    shown += terminal.run("%meshimg -m google/imagen-4,openai/dall-e-3 -s 64x64 a lighthouse at dawn")
    shown += terminal.run("import mesh_magic; r = mesh_magic.generate('a harbor', size='64x64'); r")
    shown += terminal.run("%meshimg -m no/such-model -s 64x64 a model that does not exist")

    assert shown.count("mesh_magic: 2 images, 0 failed") == 2, shown
    assert "mesh_magic: 1 image, 0 failed" in shown
    assert "'a red fox in fresh snow'" in shown and "'a lighthouse at dawn'" in shown
    assert "google/imagen-4  64x64" in shown and "openai/dall-e-3  64x64" in shown
    stored = re.findall(r"(/\S+/store/images/\S+\.(?:png|jpeg|webp))", shown)
    assert len(stored) == 5, shown
    assert all(Path(p).is_file() and Path(p).is_relative_to(tmp_path / "store") for p in stored)
    assert "ModelNotFoundError" in shown or "not found" in shown.lower()
    assert "Traceback" not in shown, "an error is one short message, not a traceback"
    for junk in ("base64", "data:image", "<img", "<div", "b64_json"):
        assert junk not in shown, f"{junk!r} printed in the terminal"
    assert BASE64_RUN.search(shown) is None, "image bytes printed"
    assert len(shown) < 4000, "a summary, not a dump"
