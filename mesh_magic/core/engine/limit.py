"""The adaptive concurrency gate: halves on rate limiting, grows back one step per success."""

from __future__ import annotations

import asyncio
import contextvars

# Which window of the gate the current request started in (see AdaptiveLimit.throttle).
_window: contextvars.ContextVar[int] = contextvars.ContextVar("mesh_magic_window", default=-1)


class AdaptiveLimit:
    """A concurrency gate that halves on rate limiting and grows back one step per success.

    Bulk runs meet 429 storms; backing off here (not only per request) stops a
    run of hundreds from hammering a server that already said "slow down". As in
    TCP, one burst of 429s answering requests sent together counts as one signal:
    only a request started after the last cut can cut again. `throttles`,
    `lowest` and `limit` are there to be looked at (progress display, tests).
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.active = 0
        self.lowest = ceiling
        self.throttles = 0
        self.window = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1
        _window.set(self.window)

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

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
        async with self._cond:
            if self.limit < self.ceiling:
                self.limit += 1
                self._cond.notify_all()

    @property
    def throttled(self) -> bool:
        return self.limit < self.ceiling

    def describe(self) -> str:
        """A short note for progress displays ("" unless the gate has backed off)."""
        return f" · rate limited: {self.limit}/{self.ceiling} parallel" if self.throttles else ""
