"""Folders of the repository that tests read from or write to."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOKS = REPO / "notebooks"
