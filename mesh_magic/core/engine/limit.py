"""The adaptive concurrency gate: halves on rate limiting, grows back one step per success."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque

# Which window of the gate the current request started in (see AdaptiveLimit.throttle).
_window: contextvars.ContextVar[int] = contextvars.ContextVar("mesh_magic_window", default=-1)


class AdaptiveLimit:
    """A concurrency gate that halves on rate limiting and grows back one step per success.

    Bulk runs meet 429 storms; backing off here (not only per request) stops a
    run of hundreds from hammering a server that already said "slow down". As in
    TCP, one burst of 429s answering requests sent together counts as one signal:
    only a request started after the last cut can cut again. `throttles`,
    `lowest` and `limit` are there to be looked at (progress display, tests).

    Waiters queue in FIFO order and a freed slot is handed to exactly one of them
    (O(1) per release): waking every queued task on each release, as a
    `Condition.notify_all` does, made a 10,000-prompt run quadratic.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.active = 0
        self.lowest = ceiling
        self.throttles = 0
        self.window = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # resolved by _wake, which has already counted this request as active
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Handed a slot in the same step it was cancelled: pass the slot on.
                    self.active -= 1
                    self._wake()
                raise
        _window.set(self.window)

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the oldest waiters (a cancelled waiter is skipped)."""
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    def throttle(self) -> bool:
        """Halve the limit, once per window; True if this call cut it."""
        started = _window.get()
        if 0 <= started < self.window or self.limit == 1:
            return False  # sent before the last cut (that cut answered it), or nothing to cut
        self.window += 1
        self.throttles += 1
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        return True

    def rejoin(self) -> None:
        """The current request's next attempt goes out in the current window."""
        _window.set(self.window)

    async def recover(self) -> None:
        if self.limit < self.ceiling:
            self.limit += 1
            self._wake()

    @property
    def throttled(self) -> bool:
        return self.limit < self.ceiling

    def describe(self) -> str:
        """A short note for progress displays ("" unless the gate has backed off)."""
        return f" · rate limited: {self.limit}/{self.ceiling} parallel" if self.throttles else ""
