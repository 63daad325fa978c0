"""The free-host guard: checks the policy every few seconds and acts on what it finds.

While the host is not free (``agent.freehost.evaluate`` gives a reason) the claimer claims
nothing (``free`` is clear, a long poll in flight is cut), the warm pools start no container,
and with ``HQ_AGENT_WHEN_BUSY=pause`` every running job's container is docker-paused (its lease
kept alive by its heartbeats, the paused time not counted against its timeout); once the host is
free again they are unpaused. The reason and the count of paused jobs go to HQ (``PUT
/api/v1/agents/{id}/state``) on every check while not free (so a non-claiming agent still counts
as seen) and once when it turns free.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from agent.freehost import evaluate, read_host
from agent.settings import AgentSettings
from agent.warm.pool import WarmPools
from hq import errors
from hq.client import HQClient

log = logging.getLogger(__name__)


class Pausable(Protocol):
    """A running job (``agent.job.JobRun``), as the guard sees it."""

    @property
    def paused(self) -> bool: ...

    def pause(self, reason: str) -> None: ...

    def resume(self) -> None: ...


class FreeHostGuard:
    def __init__(
        self,
        *,
        settings: AgentSettings,
        client: HQClient,
        agent_id: Callable[[], str],
        runs: Callable[[], Sequence[Pausable]],
        abort_claims: Callable[[], None] | None = None,
        warm: WarmPools | None = None,
    ) -> None:
        self.settings = settings
        self.policy = settings.free_policy
        self._client = client
        self._agent_id = agent_id
        self._runs = runs
        self._abort_claims = abort_claims
        self._warm = warm
        self.free = threading.Event()  # set: claim; clear: claim nothing
        self.free.set()
        self.reason: str | None = None
        self._reported: tuple[str | None, int] | None = None
        self._warned_idle = False
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self.policy.active

    def start(self, stop: threading.Event) -> None:
        """Check once now (so the first claim obeys the policy), then every few seconds until
        ``stop`` (the agent's exit, not its drain: a drain waits for paused jobs to resume)."""
        if not self.active:
            return
        log.info("free-host policy: %s; when busy: %s", self.policy, self.settings.agent_when_busy)
        self.check()
        self._thread = threading.Thread(
            target=self._loop, args=(stop,), name="free-host", daemon=True
        )
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.agent_free_check_s):
            try:
                self.check()
            except Exception:
                log.exception("checking the free-host policy failed")

    def check(self) -> None:
        """One round: read the host, decide, act, report."""
        readings = read_host(
            policy=self.policy, readings_file=self.settings.agent_free_readings, now=time.time()
        )
        unreadable = self.policy.idle_minutes is not None and readings.idle_seconds is None
        if unreadable and not self._warned_idle:
            log.warning("keyboard/mouse idle time cannot be read here: that rule is ignored")
            self._warned_idle = True
        reason = evaluate(self.policy, readings, datetime.now(UTC))
        if reason != self.reason:
            if reason is None:
                log.info("host is free again: claiming")
            else:
                log.info("host is not free (%s): claiming nothing", reason)
        self.reason = reason
        if reason is None:
            self.free.set()
        elif self.free.is_set():
            self.free.clear()
            if self._abort_claims is not None:  # a long poll in flight must claim nothing
                self._abort_claims()
        if self._warm is not None:
            self._warm.hold(reason is not None)
        self._apply(reason)
        self._report(reason)

    def _apply(self, reason: str | None) -> None:
        if self.settings.agent_when_busy != "pause":
            return
        for run in self._runs():
            if reason is None:
                run.resume()
            else:
                run.pause(reason)

    def _report(self, reason: str | None) -> None:
        agent_id = self._agent_id()
        state = (reason, sum(1 for run in self._runs() if run.paused))
        if not agent_id or (reason is None and state == self._reported):
            return
        try:
            self._client.report_state(agent_id, not_free=state[0], paused=state[1])
        except errors.HQError as exc:  # HQ away: told on a later round
            log.debug("cannot report the agent's state: %s", exc)
            return
        self._reported = state
