"""The retry policy: which failures are retried, and how long to wait before the next attempt.

Only what cannot bill twice is retried: 429 (never billed), 502/503/504 (the
gateway did not get an answer) and a connection that failed before the request
left. Waits are exponential with jitter unless the server names one
(`Retry-After` or `retry_after_seconds`); waits that would pass the request's
budget (`max_retry_wait`) fail the call at once instead of blocking a cell.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..constants import BACKOFF_BASE, BACKOFF_CAP, MAX_RETRY_WAIT, RETRY_STATUSES
from ..errors import APIConnectionError, MeshImageError
from .outcomes import CallHistory, error_from_response, retry_after_of


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: uniform(ceiling / 2, ceiling), ceiling = base * 2**attempt."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    return (rng or random).uniform(ceiling / 2, ceiling)


class RetryableStatus(Exception):
    """A response whose status may be retried; the error is built only once we give up."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def retry_after(self) -> float | None:
        return retry_after_of(self.headers, self.body)

    def error(self, history: CallHistory) -> MeshImageError:
        return error_from_response(self.status, self.headers, self.body, history=history)


def is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


@dataclass
class RetryPolicy:
    """Decides, attempt by attempt, whether to try again and after how long.

    `max_wait` bounds the seconds one request spends waiting between its retries,
    in all (`max_retry_wait`): a wait that would pass it fails the call at once,
    saying when to try again, instead of blocking a cell.
    """

    max_retries: int
    max_wait: float = MAX_RETRY_WAIT
    rng: random.Random | None = field(default=None, repr=False)

    def should_retry(self, failure: BaseException, attempt: int) -> bool:
        """Whether `failure` may be retried; `attempt` counts the retries already made."""
        if attempt >= self.max_retries:
            return False
        if isinstance(failure, APIConnectionError):
            return failure.before_send
        return isinstance(failure, RetryableStatus)

    def retry_timeout(self, failure: BaseException, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1`: the server's word, else backoff."""
        wait = failure.retry_after if isinstance(failure, RetryableStatus) else None
        return wait if wait is not None else backoff_delay(attempt, self.rng)

    def within_budget(self, waited: float, wait: float) -> bool:
        return waited + wait <= self.max_wait

    def give_up(
        self, failure: BaseException, attempt: int, *, refused_wait: float | None = None
    ) -> BaseException:
        """The error to raise when `failure` is not retried (again)."""
        if not isinstance(failure, RetryableStatus):
            return failure
        history = CallHistory(
            attempts=attempt + 1,
            max_retries=self.max_retries,
            refused_wait=refused_wait,
            max_wait=self.max_wait,
        )
        return failure.error(history)
