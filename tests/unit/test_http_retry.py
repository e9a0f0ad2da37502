"""The retry policy: what is retried, how long to wait, and the error when it gives up."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from mesh_magic.core.constants import BACKOFF_BASE, BACKOFF_CAP, MAX_RETRY_WAIT, RETRY_STATUSES
from mesh_magic.core.errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
)
from mesh_magic.core.http.retry import RetryableStatus, RetryPolicy, backoff_delay, is_retryable_status
from tests.support.mock_api import MOCK_KEY as UNIT_KEY

GATEWAY = (502, 503, 504)


def retryable(
    status: int, retry_after: str | None = None, body_wait: float | None = None, message: str = ""
) -> RetryableStatus:
    headers = httpx.Headers({"retry-after": retry_after} if retry_after is not None else {})
    error: dict[str, object] = {"code": f"c{status}", "message": message or f"failed {status}"}
    if body_wait is not None:
        error["retry_after_seconds"] = body_wait
    body = json.dumps({"error": error, "request_id": f"req_{status}"}).encode()
    return RetryableStatus(status, headers, body)


def policy(max_retries: int = 3, seed: int = 1) -> RetryPolicy:
    return RetryPolicy(max_retries, rng=random.Random(seed))


def test_retryable_statuses() -> None:
    assert sorted(RETRY_STATUSES) == [429, 502, 503, 504]
    assert all(is_retryable_status(s) for s in (429, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 404, 408, 500, 501, 505))


# -- should_retry ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, *GATEWAY])
def test_statuses_are_retried_until_max_retries(status: int) -> None:
    p = policy(max_retries=2)
    failure = retryable(status)
    assert p.should_retry(failure, 0)
    assert p.should_retry(failure, 1)
    assert not p.should_retry(failure, 2)
    assert not p.should_retry(failure, 5)


@pytest.mark.parametrize("status", [429, *GATEWAY])
def test_max_retries_zero_never_retries(status: int) -> None:
    assert not policy(max_retries=0).should_retry(retryable(status), 0)


@pytest.mark.parametrize(
    ("retry_after", "body_wait", "retried"),
    [
        ("5", None, True),
        (None, 5.0, True),
        (str(MAX_RETRY_WAIT), None, True),  # exactly the longest wait: still waited for
        (str(MAX_RETRY_WAIT + 1), None, False),
        (None, MAX_RETRY_WAIT + 1, False),
        ("120", 1.0, False),  # the header beats the body
        ("1", 120.0, True),
        ("soon", 2.0, True),  # an unreadable header: the body decides
        ("soon", None, True),  # nothing readable: back off on our own
    ],
)
def test_waits_over_max_wait_are_refused(
    retry_after: str | None, body_wait: float | None, retried: bool
) -> None:
    for status in (429, 503):
        failure = retryable(status, retry_after, body_wait)
        p = policy()
        assert p.should_retry(failure, 0)  # the kind is retryable; the budget decides
        assert p.within_budget(0.0, p.retry_timeout(failure, 0)) is retried


def test_custom_max_wait() -> None:
    p = RetryPolicy(3, max_wait=2.0)
    assert p.within_budget(0.0, p.retry_timeout(retryable(429, "2"), 0))
    assert not p.within_budget(0.0, p.retry_timeout(retryable(429, "2.5"), 0))


def test_the_budget_counts_every_wait_of_the_request() -> None:
    p = RetryPolicy(5, max_wait=20.0)
    assert p.within_budget(0.0, 8.0) and p.within_budget(8.0, 8.0)
    assert not p.within_budget(16.0, 8.0)  # a third 8 s wait would make 24 s
    assert p.within_budget(16.0, 4.0)


def test_connection_failures_before_send_are_retried_after_send_not() -> None:
    p = policy(max_retries=1)
    before = APIConnectionError("Could not connect", before_send=True)
    after = APIConnectionError("The connection broke during the response")
    assert p.should_retry(before, 0)
    assert not p.should_retry(before, 1)
    assert not p.should_retry(after, 0)
    assert not p.should_retry(APITimeoutError("timed out"), 0)


@pytest.mark.parametrize(
    "failure",
    [ServerError("boom", status=500), InvalidRequestError("bad", status=400), ValueError("x"), KeyError("k")],
)
def test_other_failures_are_not_retried(failure: BaseException) -> None:
    assert not policy().should_retry(failure, 0)


# -- retry_timeout ---------------------------------------------------------------------------


def test_retry_timeout_uses_the_server_wait() -> None:
    p = policy()
    assert p.retry_timeout(retryable(429, "7"), 0) == 7.0
    assert p.retry_timeout(retryable(503, None, 3.5), 2) == 3.5
    assert p.retry_timeout(retryable(429, "0"), 0) == 0.0
    assert p.retry_timeout(retryable(429, "-5"), 0) == 0.0


def test_retry_timeout_backs_off_without_a_wait() -> None:
    p = policy(seed=7)
    expected = backoff_delay(1, random.Random(7))
    assert p.retry_timeout(retryable(502), 1) == expected
    for attempt in range(6):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        wait = p.retry_timeout(APIConnectionError("x", before_send=True), attempt)
        assert ceiling / 2 <= wait <= ceiling


def test_retry_timeout_ignores_a_negative_body_wait() -> None:
    wait = policy(seed=3).retry_timeout(retryable(429, None, -4.0), 0)
    assert BACKOFF_BASE / 2 <= wait <= BACKOFF_BASE


# -- backoff_delay ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(0, 12))
def test_backoff_delay_bounds(attempt: int) -> None:
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    rng = random.Random(attempt)
    waits = [backoff_delay(attempt, rng) for _ in range(200)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert max(waits) - min(waits) > ceiling / 10  # jittered, not constant


def test_backoff_delay_grows_then_caps() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    tops = [backoff_delay(a, Top()) for a in range(8)]
    assert tops[:4] == [0.5, 1.0, 2.0, 4.0]
    assert tops[-1] == BACKOFF_CAP
    assert tops == sorted(tops)


def test_backoff_delay_without_rng_uses_the_module_random() -> None:
    state = random.getstate()
    try:
        first = backoff_delay(2)
        random.setstate(state)
        assert backoff_delay(2) == first
    finally:
        random.setstate(state)


# -- give_up ---------------------------------------------------------------------------------


def test_give_up_passes_other_failures_through() -> None:
    failure = APIConnectionError("broke")
    assert policy().give_up(failure, 2) is failure
    other = ValueError("x")
    assert policy().give_up(other, 0) is other


def test_give_up_on_429_after_retries() -> None:
    error = policy(max_retries=2).give_up(retryable(429, "5"), 2)
    assert isinstance(error, RateLimitError)
    assert error.status == 429
    assert error.retry_after == 5.0
    assert error.request_id == "req_429"
    assert "asks to wait" not in error.message
    assert error.hint == "Rate limited: retry after 5 s."


def test_give_up_on_429_with_a_refused_wait() -> None:
    error = policy().give_up(retryable(429, "600"), 0, refused_wait=600.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 600.0
    assert error.message == "Rate limited; try again in 600 s (failed 429)."
    assert "max_retry_wait" in error.hint


def test_give_up_on_429_with_a_refused_body_wait() -> None:
    error = policy().give_up(retryable(429, None, 90.0), 0, refused_wait=90.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 90.0
    assert error.message.startswith("Rate limited; try again in 90 s")


@pytest.mark.parametrize("status", GATEWAY)
def test_give_up_on_a_gateway_status_after_retries(status: int) -> None:
    error = policy(max_retries=3).give_up(retryable(status), 3)
    assert isinstance(error, ServerError)
    assert error.status == status
    assert error.hint == "The gateway is temporarily unavailable (retried already): try again shortly."


def test_give_up_on_a_gateway_status_with_max_retries_zero() -> None:
    error = policy(max_retries=0).give_up(retryable(503), 0)
    assert isinstance(error, ServerError)
    assert "not retried: max_retries is 0" in error.hint


def test_give_up_on_503_with_a_refused_wait() -> None:
    error = policy().give_up(retryable(503, "3600"), 0, refused_wait=3600.0)
    assert isinstance(error, ServerError)
    assert error.message == "failed 503 (the server asks to wait 3600 s)"
    assert error.hint == "The gateway is temporarily unavailable: try again shortly."


def test_give_up_scrubs_the_key() -> None:
    error = policy().give_up(retryable(429, message=f"slow down {UNIT_KEY}"), 3)
    assert isinstance(error, RateLimitError)
    assert UNIT_KEY not in str(error)
    assert "slow down ***" in error.message


def test_retryable_status_facts() -> None:
    failure = retryable(429, "4")
    assert str(failure) == "HTTP 429"
    assert failure.retry_after == 4.0
    assert retryable(502).retry_after is None
