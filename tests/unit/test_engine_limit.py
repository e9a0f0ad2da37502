"""The adaptive concurrency gate (core.engine.limit)."""

from __future__ import annotations

import asyncio

import pytest

from mesh_magic.core.engine.limit import AdaptiveLimit


class Meter:
    """Counts how many tasks are inside the gate at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def hold(self, gate: AdaptiveLimit, seconds: float = 0.005) -> None:
        async with gate:
            self.now += 1
            self.peak = max(self.peak, self.now)
            assert gate.active <= gate.limit
            await asyncio.sleep(seconds)
            self.now -= 1


@pytest.mark.parametrize("ceiling", [1, 3, 8])
def test_ceiling_respected_under_concurrency(ceiling: int) -> None:
    gate = AdaptiveLimit(ceiling)
    meter = Meter()

    async def go() -> None:
        await asyncio.gather(*(meter.hold(gate) for _ in range(ceiling * 4)))

    asyncio.run(go())
    assert meter.peak == ceiling
    assert gate.active == 0


def test_the_gate_is_released_when_the_body_fails() -> None:
    gate = AdaptiveLimit(1)

    async def go() -> None:
        with pytest.raises(ValueError):
            async with gate:
                raise ValueError("boom")
        assert gate.active == 0
        await asyncio.wait_for(Meter().hold(gate), 1)  # the slot is free again

    asyncio.run(go())


def test_fresh_gate_facts() -> None:
    gate = AdaptiveLimit(6)
    assert (gate.ceiling, gate.limit, gate.lowest, gate.throttles, gate.active) == (6, 6, 6, 0, 0)
    assert not gate.throttled
    assert gate.describe() == ""


def test_throttle_halves_once_per_window() -> None:
    gate = AdaptiveLimit(8)
    cuts: list[bool] = []

    async def go() -> None:
        entered = asyncio.Event()
        release = asyncio.Event()
        count = 0

        async def request() -> None:
            nonlocal count
            async with gate:
                count += 1
                if count == 4:
                    entered.set()
                await release.wait()
                cuts.append(gate.throttle())  # all four 429s answer requests sent together

        tasks = [asyncio.ensure_future(request()) for _ in range(4)]
        await entered.wait()
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(go())
    assert cuts.count(True) == 1
    assert gate.limit == 4
    assert gate.throttles == 1
    assert gate.window == 1
    assert gate.lowest == 4
    assert gate.throttled


def test_a_request_started_after_a_cut_can_cut_again() -> None:
    gate = AdaptiveLimit(8)

    async def go() -> list[bool]:
        results = []
        async with gate:
            results.append(gate.throttle())  # window 0: cuts 8 -> 4
            results.append(gate.throttle())  # the same request again: not again
        async with gate:
            results.append(gate.throttle())  # started in window 1: cuts 4 -> 2
        return results

    assert asyncio.run(go()) == [True, False, True]
    assert (gate.limit, gate.lowest, gate.throttles) == (2, 2, 2)


def test_rejoin_lets_a_retry_cut_again() -> None:
    gate = AdaptiveLimit(8)

    async def go() -> list[bool]:
        async with gate:
            first = gate.throttle()
            gate.rejoin()  # the retry goes out in the new window
            second = gate.throttle()
            third = gate.throttle()
        return [first, second, third]

    assert asyncio.run(go()) == [True, True, False]
    assert gate.limit == 2


def test_throttle_stops_at_one() -> None:
    gate = AdaptiveLimit(3)
    # Outside any request (no window recorded), every call may cut.
    assert gate.throttle() is True
    assert gate.limit == 1
    assert gate.throttle() is False
    assert gate.limit == 1 and gate.lowest == 1 and gate.throttles == 1


def test_recover_grows_by_one_up_to_the_ceiling() -> None:
    gate = AdaptiveLimit(8)

    async def go() -> list[int]:
        gate.throttle()
        gate.throttle()
        seen = [gate.limit]
        for _ in range(8):
            await gate.recover()
            seen.append(gate.limit)
        return seen

    assert asyncio.run(go()) == [2, 3, 4, 5, 6, 7, 8, 8, 8]
    assert gate.lowest == 2  # the low-water mark stays
    assert gate.throttles == 2
    assert not gate.throttled


def test_a_lower_limit_holds_new_requests_back() -> None:
    gate = AdaptiveLimit(4)
    meter = Meter()

    async def go() -> None:
        gate.throttle()  # 4 -> 2
        gate.throttle()  # 2 -> 1
        await asyncio.gather(*(meter.hold(gate) for _ in range(5)))

    asyncio.run(go())
    assert meter.peak == 1


def test_recover_wakes_a_waiting_request() -> None:
    gate = AdaptiveLimit(2)

    async def go() -> bool:
        gate.throttle()  # 2 -> 1
        started = asyncio.Event()
        second_in = asyncio.Event()

        async def first() -> None:
            async with gate:
                started.set()
                await asyncio.wait_for(second_in.wait(), 1)

        async def second() -> None:
            await started.wait()
            async with gate:
                second_in.set()

        task = asyncio.ensure_future(first())
        waiter = asyncio.ensure_future(second())
        await started.wait()
        await asyncio.sleep(0.01)
        blocked = not second_in.is_set()
        await gate.recover()  # 1 -> 2: the second request may enter while the first holds
        await asyncio.gather(task, waiter)
        return blocked

    assert asyncio.run(go()) is True
    assert gate.limit == 2


def test_describe_after_backing_off() -> None:
    gate = AdaptiveLimit(8)
    gate.throttle()
    assert gate.describe() == " · rate limited: 4/8 parallel"

    async def go() -> None:
        for _ in range(4):
            await gate.recover()

    asyncio.run(go())
    # Once it has backed off the note stays, showing the gate is back at full width.
    assert gate.describe() == " · rate limited: 8/8 parallel"


def test_waiters_enter_in_the_order_they_queued() -> None:
    gate = AdaptiveLimit(1)
    order: list[int] = []

    async def go() -> None:
        async def request(i: int) -> None:
            async with gate:
                order.append(i)
                await asyncio.sleep(0)

        await asyncio.gather(*(request(i) for i in range(20)))

    asyncio.run(go())
    assert order == list(range(20))
    assert gate.active == 0


def test_a_release_wakes_exactly_one_waiter() -> None:
    """Each release hands its slot to one queued task; the others stay asleep (no thundering herd)."""
    gate = AdaptiveLimit(2)
    woken: list[int] = []

    async def go() -> list[int]:
        hold = asyncio.Event()

        async def holder() -> None:
            async with gate:
                await hold.wait()

        async def waiter(i: int) -> None:
            async with gate:
                woken.append(i)
                await asyncio.Event().wait()  # keeps its slot until cancelled

        holders = [asyncio.ensure_future(holder()) for _ in range(2)]
        await asyncio.sleep(0)
        waiters = [asyncio.ensure_future(waiter(i)) for i in range(50)]
        await asyncio.sleep(0.01)
        queued = len(gate._waiters)
        hold.set()  # both holders leave: exactly two waiters get in
        await asyncio.gather(*holders)
        await asyncio.sleep(0.01)
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return [queued]

    assert asyncio.run(go()) == [50]
    assert woken == [0, 1]
    assert gate.active == 0


def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    gate = AdaptiveLimit(1)
    entered: list[str] = []

    async def go() -> None:
        release = asyncio.Event()

        async def first() -> None:
            async with gate:
                await release.wait()

        async def later(name: str) -> None:
            async with gate:
                entered.append(name)

        one = asyncio.ensure_future(first())
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(later("doomed"))
        kept = asyncio.ensure_future(later("kept"))
        await asyncio.sleep(0)
        doomed.cancel()
        release.set()
        await asyncio.wait_for(asyncio.gather(one, kept), 1)
        with pytest.raises(asyncio.CancelledError):
            await doomed

    asyncio.run(go())
    assert entered == ["kept"]
    assert gate.active == 0


def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on() -> None:
    gate = AdaptiveLimit(1)
    entered: list[str] = []

    async def go() -> None:
        async def later(name: str) -> None:
            async with gate:
                entered.append(name)

        await gate.__aenter__()
        first = asyncio.ensure_future(later("first"))
        second = asyncio.ensure_future(later("second"))
        await asyncio.sleep(0)
        await gate.__aexit__()  # hands the slot to `first` ...
        first.cancel()  # ... which is cancelled before it runs again
        await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 1)

    asyncio.run(go())
    assert entered == ["second"]
    assert gate.active == 0
