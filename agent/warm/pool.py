"""The agent's warm pools: per script version, a few started containers waiting for one job each.

A version gets a pool once the agent has run it cold (the cold run's spec is the template). A
background thread keeps each pool at ``agent_warm_pool`` containers within the memory budget
(the sum of their memory limits, ``agent_warm_memory_bytes``), one container start at a time,
and empties a pool not used for ``agent_warm_idle_s``. ``take`` hands a ready container to a
claimed job and forgets it: a container is never given twice. A version whose preload fails is
marked and runs cold from then on. Everything left at the agent's exit is removed. While the
host is not free (``hold``, from the free-host guard) no container is started; those already
waiting are left waiting (idle, they use memory but no CPU) and go at the idle timeout as usual.
The same thread attaches to each container's output once it is ready, so that a hand-over does
not wait for the engine, and tells HQ how many wait once no hand-over has happened for a second.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.docker_runner import ContainerSpec, DockerRunner
from agent.settings import AgentSettings
from agent.warm.container import (
    Handed,
    NotWarmable,
    WarmContainer,
    check_warmable,
    close_stream,
    hand_over,
    install_runner,
    make_folder,
    open_handover,
    warm_spec,
)
from agent.workspace import Workspace
from hq.schemas.agents import Lease

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
# The count waiting is for people (the agents page): reported once a second has passed with no
# hand-over, so a container taken and replaced costs HQ no request, and none runs beside a job.
REPORT_QUIET_SECONDS = 1.0
PRELOAD_TICK_SECONDS = 0.02  # while a container preloads: attach soon after it is ready
# A refill waits while a job handed over less than this ago still runs: a container start and
# its imports would take CPU from the very job a warm start was for.
REFILL_DEFER_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 120.0


# Per-job values of the manifest that do not change the container: the agent times a job from
# its hand-over, and the ceilings only bound what a submission may ask for.
NOT_IN_CONTAINER = {"resources": {"timeout_s", "max_memory", "max_cpus", "max_timeout_s"}}


def version_key(lease: Lease) -> str:
    """What makes two leases start identical containers: the image and the manifest (less
    what only the agent or the submission reads)."""
    text = lease.digest + "\n" + lease.manifest.model_dump_json(exclude=NOT_IN_CONTAINER)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class Pool:
    key: str
    script: str
    template: ContainerSpec
    lease: Lease
    waiting: list[WarmContainer] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    broken: str | None = None
    warm_starts: int = 0
    cold_starts: int = 0


class WarmPools:
    """Thread-safe; ``take`` and ``note_cold`` are called from job threads."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        runner: DockerRunner,
        report: Callable[[dict[str, int]], None] = lambda waiting: None,
    ) -> None:
        """``report`` is told the containers waiting per script whenever that changes."""
        self.settings = settings
        self.runner = runner
        self._report = report
        self._reported: dict[str, int] | None = None
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runner_dir = settings.work_dir / "warm-runner"
        self._running: list[tuple[Path, float]] = []  # handed-over jobs' folders, when
        self._held = False
        self._last_take = float("-inf")

    def hold(self, held: bool) -> None:
        """Start no container while ``held`` (the host is not free)."""
        self._held = held
        if not held:
            self._wake.set()

    @property
    def enabled(self) -> bool:
        return self.settings.agent_warm_pool > 0

    def start(self) -> None:
        if not self.enabled:
            return
        self.settings.warm_dir.mkdir(parents=True, exist_ok=True)
        self._runner_dir = install_runner(self.settings)
        self._thread = threading.Thread(target=self._loop, name="warm-pools", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop refilling and remove every container still waiting."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            doomed = [wc for pool in self._pools.values() for wc in pool.waiting]
            self._pools.clear()
        for wc in doomed:
            self._discard(wc)

    # -- job threads ----------------------------------------------------------------------
    def image_for(self, lease: Lease) -> str | None:
        """The image ID of this version's waiting containers, when one is ready: the image is
        on this host (a container of it exists), so the job need not ask the engine."""
        if not self.enabled:
            return None
        with self._lock:
            pool = self._pools.get(version_key(lease))
            if pool is None or not any(w.ready() for w in pool.waiting):
                return None
            return pool.template.image_id

    def take(self, lease: Lease, spec: ContainerSpec, ws: Workspace) -> Handed | None:
        """Hand the job to a waiting container of its version; None when there is none ready
        (the job then starts cold)."""
        if not self.enabled:
            return None
        key = version_key(lease)
        while True:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    return None
                pool.last_used = time.monotonic()
                wc = next((w for w in pool.waiting if w.ready()), None)
                if wc is None:
                    pool.cold_starts += 1
                    self._wake.set()
                    return None
                pool.waiting.remove(wc)
            fd = open_handover(wc)
            if fd is None:  # its runner is gone: try the next one
                log.warning("warm container %s was not waiting: removed", wc.id[:12])
                self._discard(wc)
                continue
            try:
                handed = hand_over(wc, fd, spec=spec, ws=ws, runner=self.runner)
            except Exception:
                self._discard(wc)
                raise
            with self._lock:
                self._last_take = time.monotonic()
                pool.warm_starts += 1
                self._running.append((ws.root, time.monotonic()))
            self._wake.set()  # refill in the background, once the job is done
            return handed

    def note_cold(self, lease: Lease, spec: ContainerSpec) -> None:
        """A job of this version started cold: keep (or refresh) its pool's template."""
        if not self.enabled:
            return
        try:
            check_warmable(lease)
        except NotWarmable as exc:
            log.debug("job %s runs cold: %s", lease.job_id, exc)
            return
        key = version_key(lease)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = Pool(key=key, script=lease.manifest.name, template=spec, lease=lease)
                self._pools[key] = pool
            pool.template, pool.lease, pool.last_used = spec, lease, time.monotonic()
        self._wake.set()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per script: containers waiting, warm and cold starts (for logs and the API)."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for pool in self._pools.values():
                row = out.setdefault(pool.script, {"waiting": 0, "warm": 0, "cold": 0})
                row["waiting"] += sum(1 for w in pool.waiting if w.ready())
                row["warm"] += pool.warm_starts
                row["cold"] += pool.cold_starts
        return out

    # -- the background thread ------------------------------------------------------------
    def _loop(self) -> None:
        tick = TICK_SECONDS
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            try:
                self._tend()
                tick = PRELOAD_TICK_SECONDS if self._attach_ready() else TICK_SECONDS
                self._report_changes()
            except Exception:
                log.exception("tending the warm pools failed")

    def _report_changes(self) -> None:
        if time.monotonic() - self._last_take < REPORT_QUIET_SECONDS:
            return  # a later round reports
        waiting = {script: row["waiting"] for script, row in self.snapshot().items()}
        if waiting != self._reported:
            try:
                self._report(waiting)
            except Exception as exc:  # HQ away: it is told on a later round
                log.debug("cannot report the warm pools: %s", exc)
                return
            self._reported = waiting

    def _tend(self) -> None:
        """One round: drop idle pools and failed containers, then start one missing container."""
        now = time.monotonic()
        doomed: list[WarmContainer] = []
        with self._lock:
            for key, pool in list(self._pools.items()):
                if now - pool.last_used > self.settings.agent_warm_idle_s:
                    doomed.extend(pool.waiting)
                    del self._pools[key]
                    continue
                for wc in list(pool.waiting):
                    failure = wc.failure()
                    if failure is not None:
                        pool.broken = failure
                        log.warning("warm %s: %s; it runs cold", pool.script, failure)
                        pool.waiting.remove(wc)
                        doomed.append(wc)
            wanted = None if self._held or self._deferring(now) else self._next_to_start()
        for wc in doomed:
            self._discard(wc)
        if wanted is not None and not self._stop.is_set():
            self._start_one(wanted)
            self._wake.set()  # maybe another is missing

    def _attach_ready(self) -> bool:
        """Attach to the output of each container that became ready, so that its job's
        hand-over need not (one taken meanwhile attached itself); whether any still preloads."""
        with self._lock:
            unattached = [
                (p, w) for p in self._pools.values() for w in p.waiting if w.stream is None
            ]
        preloading = False
        for pool, wc in unattached:
            if not wc.ready():
                preloading = True
                continue
            try:
                stream = self.runner.attach(wc.id, past=False)
            except Exception as exc:  # gone: the hand-over finds out (or the idle timeout)
                log.debug("cannot attach to warm container %s: %s", wc.id[:12], exc)
                continue
            with self._lock:
                kept = wc in pool.waiting
                if kept:
                    wc.stream = stream
            if not kept:
                close_stream(stream)
        return preloading

    def _deferring(self, now: float) -> bool:
        """Whether a recent warm job still runs (its folder there, no ``final.json`` yet)."""
        self._running = [
            (root, at)
            for root, at in self._running
            if now - at < REFILL_DEFER_SECONDS
            and root.is_dir()
            and not (root / "final.json").exists()
        ]
        return bool(self._running)

    def _next_to_start(self) -> Pool | None:
        """The pool most short of containers, if the budget allows one more (lock held)."""
        used = sum(w.memory_bytes for p in self._pools.values() for w in p.waiting)
        short = [
            p
            for p in self._pools.values()
            if p.broken is None and len(p.waiting) < self.settings.agent_warm_pool
        ]
        short.sort(key=lambda p: len(p.waiting))
        for pool in short:
            if used + pool.template.memory_bytes <= self.settings.agent_warm_memory_bytes:
                return pool
        return None

    def _start_one(self, pool: Pool) -> None:
        folder = make_folder(self.settings, pool.lease)
        spec = warm_spec(
            pool.template,
            folder=folder,
            runner_dir=self._runner_dir,
            key=pool.key,
            script=pool.script,
            settings=self.settings,
        )
        try:
            cid = self.runner.create(spec)
            self.runner.start(cid)
        except Exception as exc:
            log.warning("cannot start a warm container for %s: %s", pool.script, exc)
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                pool.broken = f"cannot start: {exc}"
            return
        wc = WarmContainer(id=cid, folder=folder, key=pool.key, memory_bytes=spec.memory_bytes)
        with self._lock:
            if self._pools.get(pool.key) is pool and not self._stop.is_set():
                pool.waiting.append(wc)
                return
        self._discard(wc)

    def _discard(self, wc: WarmContainer) -> None:
        if wc.stream is not None:
            close_stream(wc.stream)
        try:
            self.runner.remove(wc.id)
        except Exception as exc:
            log.warning("cannot remove warm container %s: %s", wc.id[:12], exc)
        shutil.rmtree(wc.folder, ignore_errors=True)
