"""What else happens when jobs reach a final status, in the transaction that ends them.

A pipeline's next step or a webhook's delivery must not be lost when a process dies between a
job's end and the reaction to it, so reactions run inside the same transaction. The queue must
not import the services that react, so they register here once at start-up
(``on_end(listener)``) and every final write (``finish``, ``Finishes.write``, a memoised
submission) calls ``ended(session, jobs)`` after its rows are written. A listener flushes but
never commits, like every service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from hq.server.db.models import Job

Listener = Callable[[AsyncSession, Sequence[Job]], Awaitable[None]]
_listeners: list[Listener] = []


def on_end(listener: Listener) -> Listener:
    """Register ``listener`` (once: registering it again changes nothing)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


async def ended(session: AsyncSession, jobs: Sequence[Job]) -> None:
    """Tell every listener that ``jobs`` (already in their final status) have ended."""
    if not jobs:
        return
    for listener in list(_listeners):
        await listener(session, jobs)
