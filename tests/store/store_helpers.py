"""Helpers for the store tests: list a store's files, run notebooks in real kernels, read outputs."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx

GENERATIONS = "/v1/images/generations"
_DATA_URI = re.compile(r'src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"')


class NoNetwork(httpx.AsyncBaseTransport):
    """Records every request the engine tries to send, and fails it like a dead network."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts.append(f"{request.method} {request.url}")
        raise httpx.ConnectError("no network in this test", request=request)


def generations(server: Any) -> list[dict[str, Any]]:
    """Bodies of the generation requests a MeshServer received."""
    return [r.json for r in server.requests if r.path == GENERATIONS]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_images(root: Path) -> list[Path]:
    """Image files (not sidecars, not temp files) under a store's images/ folder."""
    return [p for p in all_files(root / "images")
            if p.suffix in (".png", ".jpg", ".webp", ".gif") and not p.name.startswith(".")]


def part_files(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.endswith(".part")]


def html_images(html: str) -> list[tuple[str, bytes]]:
    """(mime, bytes) of every data-URI <img> in an HTML string."""
    return [(mime, base64.b64decode(b64)) for mime, b64 in _DATA_URI.findall(html)]


def output_images(nb: Any) -> list[bytes]:
    """Bytes of every image shown in a notebook's outputs (data URIs in HTML and image/*)."""
    found: list[bytes] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                found += [raw for _, raw in html_images(_text(data["text/html"]))]
            for mime in ("image/png", "image/jpeg"):
                if mime in data:
                    found.append(base64.b64decode(_text(data[mime])))
    return found


def error_outputs(nb: Any) -> list[Any]:
    return [out for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "error"]


def stream_text(nb: Any) -> str:
    return "".join(_text(out.get("text", "")) for cell in nb.cells for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def run_notebook(nb: Any, cwd: Path, timeout: int = 60) -> Any:
    """Execute `nb` in a fresh python3 kernel (inheriting os.environ) with `cwd` as its folder."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def code_notebook(*sources: str) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb
