"""What an image store holds on disk: its files, its images, half-written leftovers."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_images(root: Path) -> list[Path]:
    """Image files (not sidecars, not temp files) under a store's images/ folder."""
    return [
        p
        for p in all_files(root / "images")
        if p.suffix in (".png", ".jpg", ".webp", ".gif") and not p.name.startswith(".")
    ]


def part_files(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.endswith(".part")]
