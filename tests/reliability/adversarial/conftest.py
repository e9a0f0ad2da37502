"""The adversarial suite's marker and tally.

Mark every scenario `@pytest.mark.adversarial("class-name")`; at the end of the
session the counts per class go to test-artifacts/adversarial.md (only when an
adversarial test ran) and to the terminal summary.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.reliability.adversarial.hostile import hostile as hostile  # the scripted server fixture
from tests.reliability.adversarial.tally import MARKER, TALLY, Tally, class_of, outcome_of
from tests.support.paths import ARTIFACTS, REPO

ARTIFACT = ARTIFACTS / "adversarial.md"
_REPORTS = pytest.StashKey[list[pytest.TestReport]]()


@pytest.fixture
def tally() -> Tally:
    """The session's tally, for scenarios that count their inputs or what must stay zero."""
    return TALLY


@pytest.fixture(autouse=True)
def known_keys() -> Generator[None, None, None]:
    """Keys a scenario made (hypothesis makes hundreds) are forgotten after it.

    Otherwise a random 8-character "key" would be scrubbed from later tests' text.
    """
    from mesh_magic.core.keys import SECRETS

    before = SECRETS.known()
    yield
    SECRETS.restore(before)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): an issue-12 adversarial scenario of class `name` (counted in the tally)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if class_of(item) is not None:
        item.stash.setdefault(_REPORTS, []).append(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    result = yield
    name = class_of(item)
    if name is not None:
        TALLY.outcome(name, outcome_of(item.stash.get(_REPORTS, [])))
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if TALLY.classes:
        TALLY.write(ARTIFACT)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not TALLY.classes:
        return
    terminalreporter.section("mesh_magic adversarial scenarios")
    for line in (TALLY.markdown() + TALLY.zeros_markdown()).splitlines():
        terminalreporter.write_line(line)
    if TALLY.searches:
        for line in TALLY.search_markdown().splitlines():
            terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {ARTIFACT.relative_to(REPO)})")
