"""What a shell publishes for display, captured instead of shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Published:
    """One call of display_pub.publish: a new display or an update of one (display id)."""

    data: dict[str, Any]
    metadata: dict[str, Any]
    display_id: str | None = None
    update: bool = False

    @property
    def html(self) -> str:
        return str(self.data.get("text/html", ""))

    @property
    def is_progress(self) -> bool:
        return "mesh-magic-progress" in self.html

    @property
    def is_grid(self) -> bool:
        return "mesh-magic-result" in self.html


class Publications(list[Published]):
    """Every display_pub.publish call of the shell, in order."""

    @property
    def html(self) -> str:
        return "\n".join(p.html for p in self)

    @property
    def grids(self) -> list[Published]:
        return [p for p in self if p.is_grid]

    @property
    def progress(self) -> list[Published]:
        return [p for p in self if p.is_progress]


@pytest.fixture
def published(shell: Any, monkeypatch: pytest.MonkeyPatch) -> Publications:
    """Everything the shell publishes from now on (display_pub.publish is replaced)."""
    seen = Publications()

    def publish(
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        seen.append(Published(dict(data), dict(metadata or {}), (transient or {}).get("display_id"), update))

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    return seen
