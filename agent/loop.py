"""The agent's main loop: register, settle what an earlier life left, claim and run jobs, drain.

One thread per running job (a slot) and one claimer thread that long-polls ``claim`` for as many
jobs as there are free slots. A drain (SIGTERM, or HQ's answer to a claim after
``POST /agents/{id}/drain``) stops claiming; the agent exits once its running jobs are reported.
A long poll in flight at that point is cut (its socket shut down, see ``agent.abortable``): HQ
checks the connection before it hands out work, so nothing new is claimed. With a free-host
policy, ``agent.busy.FreeHostGuard`` stops the claimer (and cuts its poll) while the host is busy.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from agent.busy import FreeHostGuard
from agent.cache import InputCache
from agent.context import AgentContext
from agent.docker_runner import (
    ATTEMPT_LABEL,
    JOB_LABEL,
    LEASE_LABEL,
    DockerRunner,
    ExitState,
    JobContainer,
)
from agent.final import Final, final_from_exit
from agent.job import JobRun
from agent.report import cleanup
from agent.settings import AgentSettings
from agent.warm.container import exit_status
from agent.warm.pool import WarmPools
from agent.warm.recover import recover_warm
from agent.workspace import Workspace
from hq import errors
from hq.client import HQClient
from hq.schemas.agents import AgentCreate, Lease

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
SIGNAL_POLL_SECONDS = 0.2


class Agent:
    def __init__(
        self,
        *,
        settings: AgentSettings,
        client: HQClient,
        runner: DockerRunner,
        claim_client: HQClient | None = None,
        abort_claims: Callable[[], None] | None = None,
    ) -> None:
        """``claim_client`` (default ``client``) long-polls; ``abort_claims`` cuts its poll in
        flight when the agent drains (see ``agent.abortable``)."""
        self.settings = settings
        self._claim_client = claim_client or client
        self._abort_claims = abort_claims
        self.ctx = AgentContext(
            settings=settings,
            client=client,
            runner=runner,
            cache=InputCache(settings.cache_dir, max_bytes=settings.agent_cache_max_bytes),
            stopping=threading.Event(),
        )
        if settings.agent_warm_pool:
            self.ctx.warm = WarmPools(settings=settings, runner=runner, report=self._report_warm)
        self.agent_id = ""
        self.draining = threading.Event()
        self._slots: dict[str, threading.Thread] = {}
        self._runs: dict[str, JobRun] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._signals = 0
        self.guard = FreeHostGuard(
            settings=settings,
            client=client,
            agent_id=lambda: self.agent_id,
            runs=self._running_jobs,
            abort_claims=abort_claims,
            warm=self.ctx.warm,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a counter: taking a lock here could deadlock with the interrupted main thread.
        self._signals += 1

    def _check_signals(self) -> None:
        """Act on signals, from the main thread's normal flow."""
        if self._signals >= 1 and not self.draining.is_set():
            log.info("signal: draining (finish running jobs, claim nothing new)")
            self.drain()
        if self._signals >= 2 and not self.ctx.stopping.is_set():
            log.warning("second signal: stopping now; running jobs are settled on next start")
            self.ctx.stopping.set()

    def _pause(self, seconds: float) -> None:
        """Sleep in short steps, minding signals; returns early on a drain."""
        deadline = time.monotonic() + seconds
        while not self.draining.is_set() and time.monotonic() < deadline:
            self._check_signals()
            self.draining.wait(min(SIGNAL_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        self._check_signals()

    def drain(self) -> None:
        self.draining.set()
        if self._abort_claims is not None:  # a long poll in flight must not claim anything
            self._abort_claims()
        with self._changed:
            self._changed.notify_all()

    def run(self) -> int:
        """Run until drained; the process exit code."""
        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        if not self._register():
            return 1
        self.recover()
        if self.ctx.warm is not None:
            self.ctx.warm.start()
        guard_stop = threading.Event()  # not the drain: paused jobs must resume to finish
        self.guard.start(guard_stop)
        claimer = threading.Thread(target=self._claim_loop, name="claimer", daemon=True)
        claimer.start()
        while True:
            self._check_signals()
            with self._changed:
                if self.draining.is_set() and (not self._slots or self.ctx.stopping.is_set()):
                    break
                self._changed.wait(timeout=SIGNAL_POLL_SECONDS)
        guard_stop.set()
        if self.ctx.warm is not None:  # nothing more is claimed: no container waits in vain
            self.ctx.warm.close()
        log.info("drained: exiting", extra={"agent_id": self.agent_id})
        return 0

    def _register(self) -> bool:
        s = self.settings
        request = AgentCreate(
            name=s.agent_name,
            labels=s.labels,
            capacity=s.agent_capacity,
            gpus=s.agent_gpus,
            queues=s.queues,
        )
        delay = FIRST_RETRY_SECONDS
        while not self.draining.is_set():
            try:
                agent = self.ctx.client.register_agent(request)
            except (errors.TransportError, errors.Unavailable) as exc:
                log.warning("cannot register with HQ, retrying in %.1f s: %s", delay, exc)
            else:
                self.agent_id = agent.id
                log.info(
                    "registered as %s (%s)", agent.name, agent.id, extra={"agent_id": agent.id}
                )
                return True
            self._pause(delay)
            delay = min(delay * 2, s.retry_max_s)
        return False

    def _report_warm(self, waiting: dict[str, int]) -> None:
        if self.agent_id:
            self.ctx.client.report_warm(self.agent_id, waiting)

    # -- claiming -------------------------------------------------------------------------
    def _running_jobs(self) -> list[JobRun]:
        with self._lock:
            return list(self._runs.values())

    def _free_slots(self) -> int:
        with self._lock:
            return self.settings.agent_capacity - len(self._slots)

    def _claim_loop(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self.draining.is_set():
            if not self.guard.free.is_set():  # the host is not free: no claim, no long poll
                self.guard.free.wait(timeout=SIGNAL_POLL_SECONDS * 5)
                continue
            free = self._free_slots()
            if free <= 0:
                with self._changed:
                    self._changed.wait(timeout=1.0)
                continue
            try:
                answer = self._claim_client.claim(
                    self.agent_id, capacity=free, wait_s=self.settings.claim_wait_s
                )
            except errors.NotFound:  # HQ forgot this agent (e.g. a wiped database)
                log.warning("HQ does not know this agent: registering again")
                self._register()
                continue
            except errors.HQError as exc:
                if self.draining.is_set():  # the drain cut this long poll on purpose
                    break
                if not self.guard.free.is_set():  # the host turned busy: cut on purpose too
                    continue
                log.warning("claim failed, retrying in %.1f s: %s", delay, exc)
                self.draining.wait(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            delay = FIRST_RETRY_SECONDS
            for lease in answer.leases:  # held leases are run even if a drain came meanwhile
                self._start_slot(lease, lambda run: run.run())
            if answer.drain:
                log.info("HQ asked this agent to drain")
                self.drain()

    def _start_slot(self, lease: Lease, body: Callable[[JobRun], None]) -> None:
        ws = Workspace.for_lease(self.settings.jobs_dir, lease)
        run = JobRun(ctx=self.ctx, lease=lease, workspace=ws)
        key = f"{lease.job_id}-{lease.attempt}"

        def slot() -> None:
            try:
                body(run)
            finally:
                with self._changed:
                    self._slots.pop(key, None)
                    self._runs.pop(key, None)
                    self._changed.notify_all()

        # Daemon: after a second signal the agent exits without waiting; what ran is settled
        # on its next start from the container and the job folder.
        thread = threading.Thread(target=slot, name=f"job-{key}", daemon=True)
        with self._changed:
            self._slots[key] = thread
            self._runs[key] = run
        log.info(
            "running job %s attempt %s", lease.job_id, lease.attempt, extra={"job_id": lease.job_id}
        )
        thread.start()

    # -- recovery -------------------------------------------------------------------------
    def recover(self) -> None:
        """Settle containers and job folders left by an earlier life of this agent."""
        runner = self.ctx.runner
        seen: set[str] = set()
        warm = recover_warm(settings=self.settings, runner=runner)
        for container, ws in warm:
            seen.add(ws.root.name)
            self._recover_container(container, ws)
        for container in runner.job_containers(agent_name=self.settings.agent_name):
            key = f"{container.labels.get(JOB_LABEL)}-{container.labels.get(ATTEMPT_LABEL)}"
            seen.add(key)
            self._recover_container(container, Workspace(self.settings.jobs_dir / key))
        for folder in sorted(self.settings.jobs_dir.iterdir()):
            if folder.name in seen or not folder.is_dir():
                continue
            ws = Workspace(folder)
            lease, final = ws.lease(), ws.final()
            if lease is not None and final is not None:
                log.info("reporting job %s, finished in an earlier life", lease.job_id)
                self._start_slot(lease, _settler(final, None))
            else:  # never started: its lease expires and HQ requeues it
                ws.remove()

    def _recover_container(self, container: JobContainer, ws: Workspace) -> None:
        runner = self.ctx.runner
        lease = ws.lease()
        token = container.labels.get(LEASE_LABEL, "")
        job_id = container.labels.get(JOB_LABEL, "")
        if lease is None or lease.lease_token != token:
            log.warning(
                "container %s of job %s has no folder: removing it", container.id[:12], job_id
            )
            runner.kill(container.id)
            cleanup(ctx=self.ctx, ws=ws, container_id=container.id)
            return
        if container.running:
            try:
                self.ctx.client.lease(job_id, token=token).heartbeat()
            except (errors.Conflict, errors.NotFound) as exc:
                log.warning(
                    "job %s is no longer leased to this agent (%s): killing its container",
                    job_id,
                    exc,
                    extra={"job_id": job_id},
                )
                runner.kill(container.id)
                cleanup(ctx=self.ctx, ws=ws, container_id=container.id)
                return
            except errors.HQError as exc:
                log.warning("cannot check job %s with HQ (%s): watching it again", job_id, exc)
            started = _parse_docker_time(container.started_at)
            log.info("adopting the running container of job %s", job_id)
            cid = container.id
            self._start_slot(lease, lambda run: run.adopt(cid, started))
            return
        final = ws.final()
        if final is None:
            status = exit_status(ws)  # a warm job's, written by its runner before it stayed
            state = runner.exit_state(container.id) if status is None else ExitState(status, False)
            final = final_from_exit(exit_code=state.exit_code, oom_killed=state.oom_killed)
        log.info("reporting job %s, which ended while the agent was away", job_id)
        self._start_slot(lease, _settler(final, container.id))


def _settler(final: Final, container_id: str | None) -> Callable[[JobRun], None]:
    def body(run: JobRun) -> None:
        run.settle(final, container_id)

    return body


def _parse_docker_time(value: str) -> datetime:
    """Docker's ``2026-01-01T00:00:00.123456789Z`` (nanoseconds) as an aware datetime."""
    try:
        head, _, frac = value.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)
