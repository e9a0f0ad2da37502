"""The README's settings table is generated from the settings table in the code, and stays so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mesh_magic.core.settings import SETTINGS, settings_markdown

REPO = Path(__file__).resolve().parents[2]


def test_readme_settings_table_matches_the_code() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings_markdown() in readme, "run scripts/update_readme.py"


def test_every_setting_has_a_row() -> None:
    table = settings_markdown()
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in table
        if setting.env:
            assert f"`{setting.env}`" in table


def test_the_check_command_agrees() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "update_readme.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
