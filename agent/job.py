"""One attempt of one job on this agent: prepare, run the container, watch it, report it.

The order matters for never losing a result: the container's end is written to ``final.json`` in
the job's folder before anything is uploaded, and the folder and the container are removed only
once HQ has answered ``complete`` (accepted, or refused with 409 because the lease went to
another agent). An agent that dies anywhere in between finds both on its next start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from agent import figures
from agent.cache import InputUnavailable
from agent.context import AgentContext
from agent.docker_runner import (
    AGENT_LABEL,
    ATTEMPT_LABEL,
    JOB_LABEL,
    LEASE_LABEL,
    ContainerGone,
    ContainerSpec,
    ExitState,
    ImageUnavailable,
    Mount,
)
from agent.final import NO_SPACE, Final, blame_full_disk, final_from_exit, is_disk_full
from agent.heartbeat import Heartbeater
from agent.logship import LogShipper
from agent.observe import Observer
from agent.output import OutputReader
from agent.report import deliver_failure, report_result
from agent.warm.container import end_marker, exit_status
from agent.warm.endmark import EndMarks
from agent.workspace import (
    OUTPUTS_DIR,
    PARAMS_FILE,
    Workspace,
    input_target,
    script_env,
    substitute,
)
from hq import errors
from hq.schemas.agents import Lease
from hq.schemas.common import JobStatus

log = logging.getLogger(__name__)

WATCH_TICK_SECONDS = 1.0


class JobRun:
    """Runs one lease to its end. ``run`` and ``adopt`` never raise."""

    def __init__(self, *, ctx: AgentContext, lease: Lease, workspace: Workspace) -> None:
        self.ctx = ctx
        self.lease = lease
        self.ws = workspace
        self.job_id = lease.job_id
        self.wake = threading.Event()
        # The one holder of the lease token: heartbeats, logs and the report all go through it.
        self.handle = ctx.client.lease(lease.job_id, token=lease.lease_token)
        self.heart = Heartbeater(
            lease=self.handle,
            interval_s=ctx.settings.heartbeat_interval_s,
            wake=self.wake,
            paused_s=lambda: self.paused_seconds(),
        )
        self.observer = Observer(lease.manifest)  # metrics from the logs, the container's usage
        self.no_space_seen = False  # a line of the output said ENOSPC (a full disk, maybe brief)
        self.logs = LogShipper(
            lease=self.handle, flush_s=ctx.settings.log_flush_s, on_line=self._line
        )
        self.container_id: str | None = None
        self.output = OutputReader(logs=self.logs, wake=self.wake, job_id=self.job_id)
        # Free-host pauses (agent/busy.py): paused time does not count against the timeout.
        self._pause_lock = threading.Lock()
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._watching = False

    # -- entry points ---------------------------------------------------------------------
    def run(self) -> None:
        """A freshly claimed lease."""
        self._guarded(self._run_fresh)

    def adopt(self, container_id: str, started_at: datetime) -> None:
        """A container still running from an earlier life of the agent, still leased to it."""
        self.container_id = container_id
        self._guarded(lambda: self._run_adopted(started_at))

    def settle(self, final: Final, container_id: str | None) -> None:
        """A job that ended while the agent was away (or before HQ acknowledged it)."""
        self.container_id = container_id
        self._guarded(lambda: self._finish(final))

    # -- free-host pauses (called from the agent's free-host guard thread) ------------------
    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def paused_seconds(self) -> float:
        """Time spent paused so far (the watch adds it to the deadline)."""
        with self._pause_lock:
            ongoing = time.monotonic() - self._paused_at if self._paused_at is not None else 0.0
            return self._paused_total + ongoing

    def pause(self, reason: str) -> None:
        """``docker pause`` the job's container while it is being watched; idempotent. The
        lease keeps its heartbeats meanwhile."""
        with self._pause_lock:
            cid = self.container_id
            if self._paused_at is not None or cid is None or not self._watching:
                return
            if self.heart.cancel_requested or self.heart.lost:
                return
            try:
                if not self.ctx.runner.pause(cid):
                    return  # it has just ended
            except Exception as exc:
                log.warning("cannot pause: %s", exc, extra={"job_id": self.job_id})
                return
            self._paused_at = time.monotonic()
        log.info("paused: %s", reason, extra={"job_id": self.job_id})
        self.logs.note(f"paused: {reason}")

    def resume(self) -> None:
        """Unpause the container paused by ``pause``; idempotent."""
        with self._pause_lock:
            if self._paused_at is None:
                return
            cid = self.container_id
            assert cid
            try:
                self.ctx.runner.unpause(cid)
            except Exception as exc:
                log.warning("cannot resume: %s", exc, extra={"job_id": self.job_id})
                return
            took = time.monotonic() - self._paused_at
            self._paused_total += took
            self._paused_at = None
        log.info("resumed after %.1f s paused", took, extra={"job_id": self.job_id})
        self.logs.note(f"resumed after {took:.0f} s paused")

    def _line(self, stream: str, text: str) -> None:
        """Each whole output line: watched for ENOSPC, then to the observer."""
        if NO_SPACE in text:
            self.no_space_seen = True
        self.observer.line(stream, text)

    def _guarded(self, body: Callable[[], None]) -> None:
        self.heart.start()
        self.logs.start()
        try:
            body()
        except Exception as exc:
            log.exception("job failed inside the agent", extra={"job_id": self.job_id})
            self._report_agent_error(exc)
        finally:
            self.observer.ended()  # if no watch did (a lost lease, an error in the agent)
            self.heart.stop()
            self.logs.close()

    # -- phases ---------------------------------------------------------------------------
    def _run_fresh(self) -> None:
        settings = self.ctx.settings
        self.ws.prepare(self.lease, uid=settings.job_uid, gid=settings.job_gid)
        final = self._start_and_watch()
        if final is not None:
            self._finish(final)

    def _run_adopted(self, started_at: datetime) -> None:
        assert self.container_id
        self.logs.note("agent restarted: watching the running container again")
        marker = end_marker(self.ws)  # a warm job's: cut out of its output
        self.output.end_marks = EndMarks(marker) if marker else None
        if self.ctx.runner.is_paused(self.container_id):  # paused by the earlier life
            self.ctx.runner.unpause(self.container_id)  # the guard pauses it again if busy
        stream = self.ctx.runner.follow_logs(self.container_id)
        reader = self.output.follow_plain(stream)
        self.observer.started(self.ctx.runner, self.container_id)
        deadline = started_at.timestamp() + self.lease.timeout_s
        final = self._watch(deadline, reader)
        if final is not None:
            self._finish(final)

    def _start_and_watch(self) -> Final | None:
        """Resolve the image, fetch the inputs, start the container and watch it end."""
        lease, runner = self.lease, self.ctx.runner
        try:
            warm_image = self.ctx.warm.image_for(lease) if self.ctx.warm else None
            image_id = warm_image or runner.resolve_image(image=lease.image, digest=lease.digest)
        except ImageUnavailable as exc:
            self.logs.note(f"image unavailable: {exc}")
            return Final.infrastructure("image-unavailable", str(exc))
        # Inputs stay pinned in the cache until the started container's bind mounts hold them.
        with contextlib.ExitStack() as pins:
            mounts = self._mount_inputs(pins)
            if isinstance(mounts, Final):
                return mounts
            if self.heart.lost:
                return None
            if self.heart.cancel_requested:
                return Final(JobStatus.cancelled, None, "cancelled")
            extra_mounts, extra_env = figures.container_extras(
                runner,
                image_id,
                work_dir=self.ctx.settings.work_dir,
                labels=self.ctx.settings.container_labels,
            )
            spec = self._spec(image_id, [*mounts, *extra_mounts], extra_env)
            warm = self.ctx.warm.take(lease, spec, self.ws) if self.ctx.warm else None
            if warm is not None:
                self.container_id, stream = warm.container_id, warm.stream
                self.output.end_marks = EndMarks(warm.end_marker)
                self.observer.started(
                    runner, self.container_id, warm=True, cpu_base_s=warm.cpu_before_s
                )
                self.logs.note("started warm")
            else:
                try:
                    self.container_id = runner.create(spec)
                    stream = runner.attach(self.container_id)
                    self.observer.started(runner, self.container_id)  # armed before the start
                    runner.start(self.container_id)
                except Exception as exc:  # the engine's error: nothing the script did
                    self.observer.ended()
                    log.warning("container did not start: %s", exc, extra={"job_id": self.job_id})
                    self.logs.note(f"the container did not start: {exc}")
                    return Final.infrastructure("start-failed", str(exc))
                if self.ctx.warm:
                    self.ctx.warm.note_cold(lease, spec)
        reader = self.output.follow_demuxed(stream)
        return self._watch(time.time() + lease.timeout_s, reader)

    def _mount_inputs(self, pins: contextlib.ExitStack) -> list[Mount] | Final:
        """The container's mounts, each input fetched into the cache and pinned in ``pins``;
        the job's end instead when an input cannot be had."""
        ctx = self.ctx
        mounts: list[Mount] = []
        for item in self.lease.inputs:
            try:
                cached = ctx.cache.ensure(
                    sha256=item.sha256,
                    size=item.size,
                    url=item.url,
                    download=ctx.client.download_url,
                )
            except (InputUnavailable, errors.HQError, OSError) as exc:
                self.logs.note(f"input {item.name} unavailable: {exc}")
                return Final.infrastructure("input-unavailable", f"{item.name}: {exc}")
            pins.enter_context(cached)
            mounts.append(
                Mount(cached.path, input_target(item.name, item.filename), read_only=True)
            )
        mounts.append(Mount(self.ws.params_file, PARAMS_FILE, read_only=True))
        mounts.append(Mount(self.ws.outputs, OUTPUTS_DIR, read_only=False))
        return mounts

    def _spec(self, image_id: str, mounts: list[Mount], extra_env: dict[str, str]) -> ContainerSpec:
        """The hardened container of this attempt (the settings fixed in ``docker_runner``)."""
        lease, settings = self.lease, self.ctx.settings
        resources = lease.manifest.resources
        return ContainerSpec(
            image_id=image_id,
            command=substitute(lease),
            mounts=mounts,
            labels={
                **settings.container_labels,
                JOB_LABEL: lease.job_id,
                ATTEMPT_LABEL: str(lease.attempt),
                LEASE_LABEL: lease.lease_token,
                AGENT_LABEL: settings.agent_name,
            },
            memory_bytes=resources.memory_bytes,
            cpus=resources.cpus,
            pids=resources.pids,
            gpus=resources.gpus,
            uid=settings.job_uid,
            gid=settings.job_gid,
            environment={
                **script_env(lease),  # the manifest's env first: HQ's own below win
                "HQ_JOB_ID": lease.job_id,
                "HQ_ATTEMPT": str(lease.attempt),
                "HQ_OUTPUTS": OUTPUTS_DIR,
                "HQ_PARAMS": PARAMS_FILE,
                "TMPDIR": "/tmp",
                "MPLCONFIGDIR": "/tmp/matplotlib",
                "XDG_CACHE_HOME": "/tmp/.cache",
                **extra_env,
            },
            tmpfs_bytes=min(resources.memory_bytes, 1024**3),
        )

    def _watch(self, deadline: float, reader: threading.Thread) -> Final | None:
        """Wait for the container to end, killing it on cancel, timeout or a lost lease."""
        cid = self.container_id
        assert cid
        waiter = threading.Thread(target=self._wait_exit, args=(cid,), daemon=True)
        waiter.start()
        with self._pause_lock:
            self._watching = True
        try:
            return self._watch_loop(cid, deadline, reader, waiter)
        finally:
            with self._pause_lock:
                self._watching = False
            self.resume()  # a container that ended paused (killed) is thawed for removal

    def _watch_loop(
        self, cid: str, deadline: float, reader: threading.Thread, waiter: threading.Thread
    ) -> Final | None:
        why: JobStatus | None = None
        while waiter.is_alive() and not self.output.over:
            due = deadline + self.paused_seconds()
            if self.heart.lost:
                self.resume()
                self.ctx.runner.kill(cid)
                self.ctx.runner.remove(cid)
                self.ws.remove()
                log.warning("lease lost: container killed", extra={"job_id": self.job_id})
                return None
            if why is None and self.heart.cancel_requested:
                why = JobStatus.cancelled
                self.logs.note("cancel requested: killing the container")
                self.resume()  # a paused job is thawed and killed (pause refuses it from now)
                self.ctx.runner.kill(cid)
            elif why is None and not self.paused and time.time() >= due:
                why = JobStatus.timed_out
                self.logs.note(f"timeout after {self.lease.timeout_s} s: killing the container")
                self.ctx.runner.kill(cid)
            left = WATCH_TICK_SECONDS if self.paused else due - time.time()
            self.wake.wait(max(0.0, min(WATCH_TICK_SECONDS, left)))
            self.wake.clear()
        reader.join(timeout=5)
        self.observer.ended()
        status = exit_status(self.ws) if self.output.over else None
        state = self.ctx.runner.exit_state(cid) if status is None else ExitState(status, False)
        if state.oom_killed and why is None:
            self.logs.note("the container was killed for running out of memory")
        final = final_from_exit(
            exit_code=state.exit_code, oom_killed=state.oom_killed, killed_for=why
        )
        return blame_full_disk(
            final, work_dir=self.ctx.settings.work_dir, no_space_seen=self.no_space_seen
        )

    def _wait_exit(self, cid: str) -> None:
        """Block until the container ends (or is gone), then wake the watch."""
        try:
            self.ctx.runner.wait(cid)
        except ContainerGone:
            pass
        except Exception:
            log.exception("waiting for the container failed", extra={"job_id": self.job_id})
        finally:
            self.wake.set()

    # -- reporting ------------------------------------------------------------------------
    def _finish(self, final: Final) -> None:
        """Record the end on disk, then collect, upload and complete; clean up once answered."""
        self.ws.save_final(final)
        report_result(
            ctx=self.ctx,
            lease=self.handle,
            ws=self.ws,
            logs=self.logs,
            final=final,
            container_id=self.container_id,
            before_complete=self.heart.completing,
            observer=self.observer,
        )

    def _report_agent_error(self, exc: Exception) -> None:
        if self.container_id:
            self.ctx.runner.kill(self.container_id)
        deliver_failure(
            ctx=self.ctx,
            lease=self.handle,
            ws=self.ws,
            logs=self.logs,
            reason=f"{'disk-full' if is_disk_full(exc) else 'agent error'}: {exc}",
            kind="disk-full" if is_disk_full(exc) else "agent-error",
            container_id=self.container_id,
            before_complete=self.heart.completing,
        )
