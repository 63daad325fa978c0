"""What the bench scripts share: loopback ports, child processes, fresh PostgreSQL databases and
percentiles.

Imported as ``bench.common``: the scripts run from the repository root as
``python -m bench.<name>`` (``make bench`` does).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

PG_ADMIN_URL = os.environ.get("HQ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "hq_bench-admin-token-" + uuid.uuid4().hex
STEP_TIMEOUT_S = 120.0
QUEUE_MODULE = "bench.queue_speed"

_children: list[Child] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- child processes -------------------------------------------------------------------------
class Child:
    """A subprocess in its own session, its stdout and stderr going to ``log``; ``stop_all()``
    stops every one still running by its PID: SIGTERM (to its whole process group if ``group``),
    then SIGKILL after ``grace`` seconds."""

    def __init__(
        self,
        cmd: list[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        grace: float = 10.0,
        group: bool = False,
    ) -> None:
        self.log = log
        self.grace = grace
        self.group = group
        with log.open("ab") as out:
            self.proc = self._popen(cmd, {**os.environ, **(env or {})}, out)
        _children.append(self)

    def _popen(self, cmd: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[Any]:
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                if self.group:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                else:
                    self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Talker(Child):
    """A child that talks in lines: ``send`` writes to its stdin, ``expect`` takes its next stdout
    line (all of them go to ``out`` if given); only stderr goes to the log."""

    def __init__(
        self,
        cmd: list[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        out: queue.Queue[str | None] | None = None,
    ) -> None:
        self.lines: queue.Queue[str | None] = out if out is not None else queue.Queue()
        super().__init__(cmd, log=log, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _popen(self, cmd: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[Any]:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
            env=env,
        )

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, timeout: float = STEP_TIMEOUT_S) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no answer from {self.proc.args!r} in {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"{self.proc.args!r} exited: {self.log.read_text()[-2000:]}")
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


def role(
    name: str,
    *args: str,
    log: Path,
    env: dict[str, str] | None = None,
    out: queue.Queue[str | None] | None = None,
) -> Talker:
    """bench/queue_speed.py again, in one of the child roles its ``--role`` option dispatches (its
    own HQ agents and the baselines' workers); ``-m`` in the parent's folder, as it was run."""
    cmd = [sys.executable, "-m", QUEUE_MODULE, "--role", name, *args]
    return Talker(cmd, log=log, env=env, out=out)


def split_roles(
    module: str,
    role: str,
    *,
    count: int,
    procs: int,
    args_of: Callable[[int, int], list[str]],
    logs: Path,
) -> list[Talker]:
    """``count`` threads of a child role (``python -m module --role role``) split over at most
    ``procs`` processes, each given ``args_of(first, n)`` (its first thread's number, its thread
    count); returned once each has said 'ready' (``drive_threads``)."""
    per = -(-count // procs)
    children = [
        Talker(
            [sys.executable, "-m", module, "--role", role, *args_of(p * per, n)],
            log=logs / f"{role}{p}.log",
        )
        for p in range(procs)
        if (n := min(per, count - p * per)) > 0
    ]
    for child in children:
        if child.expect() != "ready":
            raise RuntimeError(f"{role} did not start; see {child.log}")
    return children


def drive_threads(
    threads: list[threading.Thread],
    *,
    ready: threading.Barrier,
    go: threading.Event,
    stop: threading.Event,
    join_s: float,
) -> float:
    """A child role's threads: started; 'ready' printed once all have passed ``ready``; run
    from the parent's 'go' line to its 'stop' line. Returns this process's CPU seconds in
    between (making clients and registering come before: not counted)."""
    for thread in threads:
        thread.start()
    ready.wait(timeout=STEP_TIMEOUT_S)
    print("ready", flush=True)
    began = cpu_seconds(os.getpid())
    if sys.stdin.readline().strip() == "go":
        began = cpu_seconds(os.getpid())
        go.set()
        sys.stdin.readline()  # 'stop'
    stop.set()
    go.set()
    for thread in threads:
        thread.join(timeout=join_s)
    return cpu_seconds(os.getpid()) - began


def stop_all() -> None:
    while _children:
        _children.pop().stop()


# -- PostgreSQL databases --------------------------------------------------------------------
def create_database(prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


# -- statistics ------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """One of the values, no interpolation: rank ``round(pct / 100 * n + 0.5)`` (1-based, kept
    within 1..n) of the sorted values."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``): what a step cost
    the process, whatever else the machine was doing meanwhile."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
