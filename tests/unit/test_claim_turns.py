"""A claim's turns in the line (``services.claims.claim_line``): a wake-up the claim did not
turn into a lease reaches the next waiter however the claim ends; one it used does not."""

from __future__ import annotations

import pytest

from hq.server.notify import ClaimLine
from hq.server.services.claims import claim_line


def test_a_wake_up_left_unused_by_a_failing_claim_goes_to_the_next_waiter() -> None:
    line = ClaimLine()
    with pytest.raises(RuntimeError), claim_line(line) as turns, turns.place():
        other = line.join()  # another claim, waiting behind this one
        line.wake(1)  # a job is queued: this claim, the oldest, is woken
        raise RuntimeError("the claim's query failed")
    assert other.woken


def test_a_wake_up_used_by_a_claim_that_found_work_stays_used() -> None:
    line = ClaimLine()
    with claim_line(line) as turns:
        with turns.place():
            other = line.join()
            line.wake(1)
        turns.used()  # the query after the wake-up leased the job
    assert not other.woken


def test_a_query_that_found_nothing_passes_the_wake_up_on_at_once() -> None:
    line = ClaimLine()
    with claim_line(line) as turns:
        with turns.place():
            other = line.join()
            line.wake(1)
        turns.pass_on()  # the next query found nothing: the next waiter tries, now
        assert other.woken
