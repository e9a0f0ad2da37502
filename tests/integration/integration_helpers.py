"""Helpers for the loopback integration tests (tests/integration is on sys.path)."""

from __future__ import annotations

from typing import Any

from mesh_magic.server import MeshServer, RecordedRequest

GENERATIONS = "/v1/images/generations"


class Published(list[tuple[dict[str, Any], dict[str, Any]]]):
    """Every display_pub.publish call of the shell: (data, metadata) pairs."""

    @property
    def html(self) -> str:
        return "\n".join(str(data.get("text/html", "")) for data, _ in self)


def generations(server: MeshServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path == GENERATIONS]


def file_requests(server: MeshServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.startswith("/v1/files/")]


def run(shell: Any, source: str) -> Any:
    """Run a cell and return its value (the shell re-raises errors)."""
    return shell.run_cell(source).result
