"""Helpers for the concurrency suite: capture what a shell displays, decode inline images."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# Tiny images keep the server's rendering (CPU, shared with the client) out of the timings.
TINY = "64x64"
FAST_MODEL = "google/imagen-4"
OTHER_MODEL = "black-forest-labs/flux-schnell"
SINGLE_IMAGE_MODEL = "openai/dall-e-3"  # max_n 1 on the test server
OPENAI_MODEL = "openai/gpt-image-1"  # streams OpenAI-style events, partials included

_DATA_URI = re.compile(r'src="data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=]+)"')


@dataclass
class Published:
    """One call of display_pub.publish: a new display or an update of one (display id)."""

    data: dict[str, Any]
    metadata: dict[str, Any]
    display_id: str | None
    update: bool

    @property
    def html(self) -> str:
        return str(self.data.get("text/html", ""))

    @property
    def is_progress(self) -> bool:
        return "mesh-magic-progress" in self.html

    @property
    def is_grid(self) -> bool:
        return "mesh-magic-result" in self.html


@dataclass
class Publications:
    items: list[Published] = field(default_factory=list)

    def __iter__(self) -> Iterator[Published]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def grids(self) -> list[Published]:
        return [p for p in self.items if p.is_grid]

    @property
    def progress(self) -> list[Published]:
        return [p for p in self.items if p.is_progress]


@pytest.fixture
def published(shell: Any, monkeypatch: pytest.MonkeyPatch) -> Publications:
    """Everything the shell publishes from now on (display_pub.publish is replaced)."""
    seen = Publications()

    def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, source: Any = None,
                *, transient: dict[str, Any] | None = None, update: bool = False,
                **kwargs: Any) -> None:
        seen.items.append(Published(dict(data), dict(metadata or {}),
                                    (transient or {}).get("display_id"), update))

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    return seen


def inline_images(html: str) -> list[Any]:
    """Every data: URI image in an HTML output, decoded and loaded with Pillow."""
    from PIL import Image

    found = []
    for _mime, b64 in _DATA_URI.findall(html):
        image = Image.open(io.BytesIO(base64.b64decode(b64)))
        image.load()
        found.append(image)
    return found


def generation_requests(server: Any) -> list[Any]:
    return [r for r in server.requests if r.path == "/v1/images/generations"]
