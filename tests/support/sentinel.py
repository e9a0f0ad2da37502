"""The sentinel key and the leak searcher: tests search every byte they produce for it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A key-shaped sentinel, accepted only by the `sentinel_server` fixture's server.
SENTINEL_KEY = "rsk_SENTINEL_do_not_leak_7f3a9c2e51b8"


def as_bytes(data: Any) -> bytes:
    """`data` as bytes: bytes unchanged, anything else as its str (lone surrogates kept)."""
    return data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")


@dataclass
class KeySearch:
    """Counts sightings of a key in everything it is shown; remembers where they were."""

    key: str = SENTINEL_KEY
    blobs: int = 0
    bytes_searched: int = 0
    sightings: int = 0
    places: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scan(self, data: Any, where: str) -> int:
        """Count the key in `data` (str, bytes or anything repr-able); remember `where`."""
        blob = as_bytes(data)
        found = blob.count(self.key.encode())
        with self._lock:
            self.blobs += 1
            self.bytes_searched += len(blob)
            self.sightings += found
            if found:
                self.places.append(where)
        return found

    def scan_tree(self, root: Path, where: str) -> int:
        """Search every byte of every file under `root` for the key."""
        found = 0
        for path in sorted(root.rglob("*")):
            if path.is_file():
                found += self.scan(path.read_bytes(), f"{where}:{path.relative_to(root)}")
        return found

    def counts(self) -> dict[str, int]:
        return {"blobs": self.blobs, "bytes": self.bytes_searched, "sightings": self.sightings}
