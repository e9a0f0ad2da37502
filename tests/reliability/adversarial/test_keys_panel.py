"""Class 3 in the panel: what an echoing server sends never reaches the widgets' state.

The widget state is what a saved notebook keeps (and what JupyterLab renders), so
every widget of the panel is walked and its whole state searched after each answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.adversarial.hostile import HostileServer, Reply, Seen, png_answer, sse
from tests.reliability.adversarial.leaks import Hunt
from tests.support.sentinel import SENTINEL_KEY as KEY

pytestmark = pytest.mark.adversarial("3 secrets echoed by the server")
GEN = "/v1/images/generations"

ANSWERS: dict[str, Callable[[Seen], Reply]] = {
    "revised_prompt": lambda s: Reply(200, png_answer(revised_prompt=f"a cat {KEY}")),
    "x-request-id": lambda s: Reply(200, png_answer(), [("x-request-id", KEY)]),
    "error message": lambda s: Reply(
        400, {"error": {"message": f"bad {KEY}", "code": KEY}, "request_id": KEY}
    ),
    "server error": lambda s: Reply(500, {"error": {"message": f"upstream {KEY}"}}),
    "rate limit": lambda s: Reply(429, {"error": {"message": KEY}}, [("Retry-After", "3600")]),
    "stream error": lambda s: sse({"error": {"message": f"failed {KEY}"}, "request_id": KEY}),
    "unusable url": lambda s: Reply(200, {"data": [{"url": f"ftp://{KEY}"}]}),
}


def _walk(widget: Any) -> list[Any]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _walk(child)
    return found


@pytest.fixture
def panel_at(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[], Any]]:
    from mesh_magic.widget_panel import panel

    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    monkeypatch.setenv("MESHAPI_BASE_URL", hostile.base_url)
    monkeypatch.setenv("MESHAPI_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    made: list[Any] = []

    def build() -> Any:
        made.append(panel())
        return made[-1]

    yield build
    for p in made:
        p.close()


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_panel_state_holds_no_echoed_key(
    case: str, panel_at: Callable[[], Any], hostile: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="httpcore")
    answer = ANSWERS[case]
    hostile.script = lambda s: answer(s) if s.path.startswith(GEN) else None
    p = panel_at()
    p.prompt.value = "a cat"
    p.model.value = "google/imagen-4"
    p.generate_button.click()
    p.wait(20)
    assert any(r.path.startswith(GEN) for r in hostile.requests), "the panel sent the request"
    hunt = Hunt()
    for widget in _walk(p.root):
        hunt.scan(json.dumps(widget.get_state(), default=repr), f"{type(widget).__name__} state")
    hunt.scan(repr(p), "panel repr")
    hunt.scan(repr(p.results), "panel results")
    hunt.scan(caplog.text, "log")
    hunt.check()
