"""Who a bearer token belongs to, remembered between requests.

Looking a token up costs a connection checkout and two round trips on every request, more than
many requests' own work (a heartbeat, a claim). So the answer is kept in process. Any change to a
token (a revoke) marks the ``tokens`` topic: this process empties the cache when the transaction
commits, other replicas when they hear the NOTIFY, and every replica when its listener reconnects
(which fires every topic, so a notification missed while it was away cannot leave a revoked token
in use). The TTL is a backstop only. An unknown or revoked token is never cached: each such
request asks the database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from hq.schemas.common import Role
from hq.server.notify import Notifier

TOPIC = "tokens"


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def scope_token_id(self) -> str | None:
        """The token an agent's rows must belong to; None for an admin, who may act for any
        agent."""
        return None if self.is_admin else self.token_id


class PrincipalCache:
    def __init__(self, *, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._ttl = ttl_seconds
        self._max = max_entries
        self.generation = 0  # bumped by clear(); a lookup that raced a clear is not stored

    def get(self, token_hash: str) -> Principal | None:
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        principal, expires = hit
        if time.monotonic() >= expires:
            del self._entries[token_hash]
            return None
        return principal

    def put(self, token_hash: str, principal: Principal, *, generation: int) -> None:
        """Remember ``principal`` if no token changed since ``generation`` was read."""
        if generation != self.generation:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[token_hash] = (principal, time.monotonic() + self._ttl)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    async def follow(self, notifier: Notifier) -> None:
        """Empty the cache whenever the ``tokens`` topic fires; runs until cancelled."""
        while True:
            await notifier.watch(TOPIC).wait()
            self.clear()

    def start(self, notifier: Notifier) -> asyncio.Task[None]:
        return asyncio.create_task(self.follow(notifier), name="hq-token-cache")
