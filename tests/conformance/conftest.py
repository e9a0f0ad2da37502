"""The official MeshAPI SDK as a peer: a client of the project's server, and a source of fixtures.

`sdk` is `meshapi.MeshAPI` pointed at the loopback server. `LEDGER` counts the SDK
calls made and the responses validated by the SDK's own pydantic models; the
session ends with a table of both (and test-artifacts/conformance.json).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Ledger:
    calls: Counter[str] = field(default_factory=Counter)
    validated: Counter[str] = field(default_factory=Counter)

    def call(self, name: str) -> None:
        self.calls[name] += 1

    def validate(self, model: Any, data: Any) -> Any:
        """Validate `data` with the SDK model class `model`, and count it."""
        parsed = model.model_validate(data)
        self.validated[model.__name__] += 1
        return parsed

    def count(self, model_name: str, n: int = 1) -> None:
        """Responses the SDK validated itself (what its calls return are validated models)."""
        self.validated[model_name] += n


LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


@pytest.fixture
def sdk(server: Any) -> Iterator[Any]:
    """The official SDK against the loopback server (no retries: each status is seen as sent)."""
    from meshapi import MeshAPI

    yield MeshAPI(base_url=server.base_url, token=server.api_key, max_retries=0, timeout=30)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not LEDGER.calls:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {"sdk_calls": dict(LEDGER.calls), "validated": dict(LEDGER.validated)}
    (ARTIFACTS / "conformance.json").write_text(json.dumps(summary, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not LEDGER.calls:
        return
    terminalreporter.section("official SDK conformance")
    terminalreporter.write_line(
        f"SDK calls made: {sum(LEDGER.calls.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(LEDGER.calls.items()))})"
    )
    terminalreporter.write_line(
        f"responses validated by the SDK's models: {sum(LEDGER.validated.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(LEDGER.validated.items()))})"
    )
