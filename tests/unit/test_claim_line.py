"""The claim line: idle claims are woken one per queued job, oldest first, and a wake-up that
its waiter could not use passes to the next older waiter, never round and round."""

from __future__ import annotations

from hq.server.notify import ClaimLine


def woken(waiters: list[object]) -> list[int]:
    return [i for i, w in enumerate(waiters) if w.woken]  # type: ignore[attr-defined]


async def test_n_queued_jobs_wake_the_n_oldest_waiters_only() -> None:
    line = ClaimLine()
    waiters = [line.join() for _ in range(4)]
    line.wake(2)
    assert woken(waiters) == [0, 1]
    assert all(w.event.is_set() for w in waiters[:2])
    assert not waiters[2].event.is_set()


async def test_waking_everyone_wakes_everyone_waiting() -> None:
    line = ClaimLine()
    waiters = [line.join() for _ in range(3)]
    line.wake(None)
    assert woken(waiters) == [0, 1, 2]


async def test_a_waiter_that_left_is_never_woken() -> None:
    line = ClaimLine()
    gone, staying = line.join(), line.join()
    line.leave(gone)
    line.wake(1)
    assert not gone.woken and staying.woken


async def test_a_passed_on_wake_up_visits_each_earlier_waiter_once_then_stops() -> None:
    line = ClaimLine()
    first, second = line.join(), line.join()
    line.wake(1)
    assert first.woken and not second.woken
    again = line.join()  # the first claims nothing and waits again, behind the others
    line.pass_on(first)
    assert second.woken and not again.woken
    later = line.join()
    line.pass_on(second)  # nobody left who was waiting when the job was queued
    assert not again.woken and not later.woken


async def test_a_wake_up_passes_on_once() -> None:
    line = ClaimLine()
    first, second, third = line.join(), line.join(), line.join()
    line.wake(1)
    line.pass_on(first)
    line.pass_on(first)  # twice by mistake: the second does nothing
    assert woken([first, second, third]) == [1]  # the first gave its wake-up away
