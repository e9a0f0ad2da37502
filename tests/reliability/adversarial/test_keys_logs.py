"""Class 3 in the logs: the filter on the httpx/httpcore loggers redacts every known key.

httpcore logs response headers at DEBUG (and a server may echo the key in one);
a user who turns DEBUG logging on, with a handler anywhere (the root logger, or one
of httpcore's own child loggers), must still see no key.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

import mesh_magic
from mesh_magic.core.keys import LOGGERS, ApiKey
from tests.reliability.adversarial.hostile import HostileServer, Reply, Seen, png_answer
from tests.reliability.adversarial.leaks import Hunt
from tests.support.sentinel import SENTINEL_KEY as KEY

pytestmark = pytest.mark.adversarial("3 secrets echoed by the server")


class Attached:
    """Handlers put straight on loggers (records need not propagate); removed afterwards."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.added: list[tuple[logging.Logger, logging.Handler, int]] = []

    def attach(self, name: str) -> logging.Logger:
        logger = logging.getLogger(name)
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.added.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        return logger

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def attached() -> Iterator[Attached]:
    logs = Attached()
    yield logs
    for logger, handler, level in logs.added:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("name", LOGGERS)
def test_records_on_each_logger_are_redacted(name: str, attached: Attached) -> None:
    ApiKey(KEY)  # a key made is a key known (and the filter installed)
    logger = attached.attach(name)
    logger.debug("headers=%r", [(b"x-echo", f"Bearer {KEY}".encode())])
    logger.debug("plain %s and %s", KEY, {"k": KEY})
    logger.debug(f"pre-formatted {KEY}")
    try:
        raise RuntimeError(f"exception text {KEY}")
    except RuntimeError:
        logger.debug("with exc_info", exc_info=True)
    logger.debug("with stack info %s", KEY, stack_info=True)
    text = attached.text()
    assert text.count("***") >= 5, text
    hunt = Hunt()
    hunt.scan(text, f"handler on {name}")
    hunt.check()


def test_a_real_exchange_logged_at_debug_on_httpcore_children(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, attached: Attached
) -> None:
    for name in ("httpx", "httpcore.http11", "httpcore.connection"):
        attached.attach(name)
    monkeypatch.setenv("MESHAPI_API_KEY", KEY)
    mesh_magic.configure(base_url=hostile.base_url, max_retries=0)

    def echo(seen: Seen) -> Reply | None:
        if seen.path.startswith("/v1/images"):
            return Reply(
                200, png_answer(), [("X-Echo", seen.headers["Authorization"]), ("x-request-id", KEY)]
            )
        return None

    hostile.script = echo
    mesh_magic.generate("a cat", model="google/imagen-4")
    text = attached.text()
    assert "receive_response_headers" in text, "httpcore logged the response headers"
    assert "***" in text
    hunt = Hunt()
    hunt.scan(text, "httpcore children")
    hunt.check()
