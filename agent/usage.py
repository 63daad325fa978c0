"""What every job measures: wall time, CPU seconds and peak memory of its container.

The engine removes a container's cgroup when it ends, so the counters are read while it runs:
from the cgroup files when the agent can see them (it shares the host's PID namespace and
``/sys/fs/cgroup``: cgroup v2 ``memory.peak`` and ``cpu.stat``, v1 ``memory.max_usage_in_bytes``
and ``cpuacct.usage``), read every ``SAMPLE_SECONDS`` (from 1 ms at the start, doubling) and
once more the moment the container's last process exits (a pidfd wakes the sampler); else from
the engine's stats API (``max_usage``, or the largest ``usage`` seen, and the CPU total), every
``STATS_SECONDS``. The sampler starts before the container and finds its cgroup by the
container's id the moment it exists, so a job over in milliseconds (before an inspect could
answer) is measured too. Both counters are cumulative from the container's start, so a
container adopted after an agent restart still measures whole. Wall time is the engine's
StartedAt to FinishedAt. A warm job is measured from its hand-over: wall time from then, CPU
time less what the container had used by then (its interpreter's start and the preload, read
from the cgroup just before the hand-over; with the stats API, from its first sample). Its
peak memory is the container's, preload included: the job runs with those modules in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.docker_runner import ContainerGone, DockerRunner
from hq.schemas.common import Metric

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
SAMPLE_SECONDS = 0.2
FIRST_SAMPLE_SECONDS = 0.001  # then doubling to SAMPLE_SECONDS: a job over in 20 ms is read
STATS_SECONDS = 0.5
FIND_POLL_SECONDS = 0.002  # looking for a new container's cgroup
FIND_INSPECT_SECONDS = 0.1  # and asking the engine for its pid
WALL_METRIC = "hq_wall_s"
CPU_METRIC = "hq_cpu_s"
MEMORY_METRIC = "hq_peak_memory_mb"
USAGE_METRICS = (WALL_METRIC, CPU_METRIC, MEMORY_METRIC)


@dataclass
class Usage:
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_memory_bytes: int | None = None

    def metrics(self) -> dict[str, Metric]:
        """As metrics: seconds to the millisecond, memory in MiB to a tenth."""
        out: dict[str, Metric] = {}
        if self.wall_s is not None:
            out[WALL_METRIC] = round(self.wall_s, 3)
        if self.cpu_s is not None:
            out[CPU_METRIC] = round(self.cpu_s, 3)
        if self.peak_memory_bytes is not None:
            out[MEMORY_METRIC] = round(self.peak_memory_bytes / 1024**2, 1)
        return out


def _read_int(path: Path, key: str | None = None) -> int | None:
    """An integer file (``memory.peak``), or one ``key value`` line of a flat file."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        return int(text.strip()) if text.strip().isdigit() else None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def container_cpu_s(container_id: str, root: Path = CGROUP_ROOT) -> float | None:
    """A running container's CPU seconds so far, from its cgroup; None where none is visible."""
    files = CgroupFiles.for_container(container_id, root)
    return files.read()[0] if files is not None else None


class CgroupFiles:
    """The memory and CPU counter files of one process's cgroup (v1 controllers first, as a
    hybrid host keeps memory there, then the v2 unified tree)."""

    def __init__(self, memory: Path | None, cpu: Path | None, *, v2_cpu: bool) -> None:
        self.memory = memory
        self.cpu = cpu
        self.v2_cpu = v2_cpu

    @classmethod
    def for_pid(cls, pid: int, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        v1: dict[str, str] = {}
        unified: str | None = None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                unified = path.lstrip("/")
            for name in controllers.split(","):
                v1[name] = path.lstrip("/")
        return cls._found(v1, unified, root)

    @classmethod
    def for_container(cls, container_id: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
        """A container's cgroup by its id, where the engine's drivers put it (cgroupfs:
        ``docker/<id>``, systemd: ``system.slice/docker-<id>.scope``); None until it exists."""
        for rel in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
            found = None
            if (root / "memory" / rel).is_dir():
                found = cls._found({"memory": rel, "cpuacct": rel}, None, root)
            elif (root / rel / "cgroup.procs").exists():
                found = cls._found({}, rel, root)
            if found is not None and found.memory and found.cpu:  # both made by now
                return found
        return None

    @classmethod
    def _found(cls, v1: dict[str, str], unified: str | None, root: Path) -> CgroupFiles | None:
        memory = cpu = None
        v2_cpu = False
        if "memory" in v1:
            memory = root / "memory" / v1["memory"] / "memory.max_usage_in_bytes"
        elif unified is not None:
            memory = root / unified / "memory.peak"
        if "cpuacct" in v1:
            mounts = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
            found = [root / m / v1["cpuacct"] / "cpuacct.usage" for m in mounts]
            cpu = next((f for f in found if f.exists()), None)
        elif unified is not None:
            cpu, v2_cpu = root / unified / "cpu.stat", True
        memory = memory if memory is not None and memory.exists() else None
        cpu = cpu if cpu is not None and cpu.exists() else None
        return cls(memory, cpu, v2_cpu=v2_cpu) if memory or cpu else None

    def first_pid(self) -> int | None:
        """A process of the cgroup (its ``cgroup.procs``); None once it has none."""
        counter = self.memory or self.cpu
        assert counter is not None
        try:
            first = (counter.parent / "cgroup.procs").read_text().split()[:1]
        except OSError:
            return None
        return int(first[0]) if first and first[0].isdigit() else None

    def read(self) -> tuple[float | None, int | None]:
        """(CPU seconds, peak memory bytes) now; None for a file that is gone."""
        cpu_s = None
        if self.cpu is not None:
            if self.v2_cpu:
                usec = _read_int(self.cpu, "usage_usec")
                cpu_s = None if usec is None else usec / 1e6
            else:
                nsec = _read_int(self.cpu)
                cpu_s = None if nsec is None else nsec / 1e9
        peak = _read_int(self.memory) if self.memory is not None else None
        return cpu_s, peak


def stats_usage(stats: dict[str, Any]) -> tuple[float | None, int | None]:
    """(CPU seconds, memory bytes) from one answer of the stats API; None where it has none
    (a container that ended answers with zeros)."""
    total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = stats.get("memory_stats") or {}
    peak = memory.get("max_usage") or memory.get("usage")
    return (total / 1e9 if total else None), (int(peak) if peak else None)


def _seconds(started: str, finished: str) -> float | None:
    """Seconds between two engine timestamps (nanosecond ISO 8601); None before the end."""
    try:
        a = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
        b = datetime.fromisoformat(finished[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    if b.year < 2000:  # 0001-01-01: not finished
        return None
    return max(0.0, (b - a).total_seconds())


class UsageSampler:
    """Samples one container from ``start()`` until ``stop()``, which returns its ``Usage``."""

    def __init__(
        self,
        runner: DockerRunner,
        container_id: str,
        *,
        cgroup_root: Path = CGROUP_ROOT,
        from_now: bool = False,
        cpu_base_s: float | None = None,
    ) -> None:
        """``from_now`` (a warm job's): the wall time is from ``start()`` to ``stop()`` and the
        CPU time from ``cpu_base_s``, the container's CPU seconds at the hand-over (None: its
        first sample), not from the container's start."""
        self.runner = runner
        self.from_now = from_now
        self._cpu_base = cpu_base_s
        self._began = time.monotonic()
        self.container_id = container_id
        self.cgroup_root = cgroup_root
        self.usage = Usage()
        self.source = "none"
        self._stop = threading.Event()
        self._stop_fd = os.eventfd(0)  # wakes a sampler waiting on its pidfd at once on stop
        self._thread = threading.Thread(target=self._run, name="usage", daemon=True)

    def start(self) -> None:
        self._began = time.monotonic()
        self._thread.start()

    def stop(self) -> Usage:
        """Stop sampling (the container has ended) and add its wall time."""
        if self._stop.is_set():
            return self.usage
        self._stop.set()
        os.eventfd_write(self._stop_fd, 1)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else it is still polling the fd: left open
            os.close(self._stop_fd)
        if self.from_now:
            self.usage.wall_s = time.monotonic() - self._began
            return self.usage
        try:
            info = self.runner.process_info(self.container_id)
            self.usage.wall_s = _seconds(info.started_at, info.finished_at)
        except ContainerGone:
            pass
        return self.usage

    def _note(self, cpu_s: float | None, peak: int | None) -> None:
        if cpu_s is not None:
            if self.from_now and self._cpu_base is None:
                self._cpu_base = cpu_s
            cpu_s -= self._cpu_base or 0.0
            self.usage.cpu_s = max(cpu_s, self.usage.cpu_s or 0.0)
        if peak is not None:
            self.usage.peak_memory_bytes = max(peak, self.usage.peak_memory_bytes or 0)

    def _run(self) -> None:
        try:
            files, pid = self._find()
            if files is not None:
                self.source = "cgroup"
                self._sample_files(files, pid)
            elif pid:
                self.source = "stats"
                self._sample_stats()
        except ContainerGone:
            pass
        except Exception:  # measuring must never fail a job
            log.exception("sampling the container's usage failed")

    def _find(self) -> tuple[CgroupFiles | None, int | None]:
        """The container's cgroup files and a process in it, as soon as it has started. By id
        at first (started before the container, that sees a job that is over in milliseconds);
        by the engine's pid now and then, for a cgroup elsewhere or none visible (an agent in a
        container). (None, None): it ended unseen, or was never started."""
        next_inspect = time.monotonic() + FIND_INSPECT_SECONDS
        while not self._stop.is_set():
            files = CgroupFiles.for_container(self.container_id, self.cgroup_root)
            if files is not None:
                return files, files.first_pid()
            if time.monotonic() >= next_inspect:
                info = self.runner.process_info(self.container_id)
                if info.pid:
                    return CgroupFiles.for_pid(info.pid, self.cgroup_root), info.pid
                if _seconds(info.started_at, info.finished_at) is not None:
                    break  # it has already ended
                next_inspect = time.monotonic() + FIND_INSPECT_SECONDS
            self._stop.wait(FIND_POLL_SECONDS)
        return None, None

    def _sample_files(self, files: CgroupFiles, pid: int | None) -> None:
        """Read the counters every ``SAMPLE_SECONDS`` and the moment the watched process exits.
        One that exits while others remain in the cgroup (runc's own, at the start) hands the
        watch to the next; the last read is when none is left."""
        while not self._stop.is_set():
            pidfd: int | None = None
            if pid:
                with contextlib.suppress(OSError):
                    pidfd = os.pidfd_open(pid)
            try:
                exited = self._watch(files, pidfd)
            finally:
                if pidfd is not None:
                    os.close(pidfd)
            if exited:
                pid = files.first_pid()
                if pid is None:
                    return

    def _watch(self, files: CgroupFiles, pidfd: int | None) -> bool:
        """Sample until ``pidfd``'s process exits (True) or the sampler is stopped (False): 1 ms
        after the start, then twice as long each time up to ``SAMPLE_SECONDS``. The read at
        the exit can come too late (the engine removes the cgroup at once), so a short job is
        measured by the reads while it runs."""
        poller = select.poll()
        poller.register(self._stop_fd, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        wait_s = FIRST_SAMPLE_SECONDS
        while not self._stop.is_set():
            ready = {fd for fd, _ in poller.poll(wait_s * 1000)}
            wait_s = min(wait_s * 2, SAMPLE_SECONDS)
            self._note(*files.read())
            if pidfd is not None and pidfd in ready:
                return True
        return False

    def _sample_stats(self) -> None:
        while not self._stop.is_set():
            self._note(*stats_usage(self.runner.stats_once(self.container_id)))
            self._stop.wait(STATS_SECONDS)
