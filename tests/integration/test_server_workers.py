"""``hq server --workers N``: several server processes on one port, on PostgreSQL.

Real processes on a real database: the counters of /metrics are the same whichever worker
answers, a killed worker is replaced while the others serve, SIGTERM stops them all and leaves
nothing behind, a worker that cannot start stops the server instead of restarting forever, and
SQLite refuses more than one worker with a message that says what to do.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hq.client import HQClient
from hq.schemas.agents import AgentCreate
from tests.fixtures.server import LiveServer, ServerFactory, free_port

WORKERS = 2
WAIT_SECONDS = 30.0
SCRIPT = "workers-noop"


def _workers(server: LiveServer) -> list[int]:
    assert server.process is not None
    out = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    ).stdout
    return sorted(int(pid) for pid in out.split())


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _claimed_total(server: LiveServer) -> float:
    """hq_jobs_claimed_total from a fresh connection (so any worker may answer)."""
    text = httpx.get(
        f"{server.url}/metrics",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    ).text
    found = re.search(r"^hq_jobs_claimed_total (\S+)$", text, re.MULTILINE)
    assert found is not None, text[:2000]
    return float(found.group(1))


def _publish(admin: HQClient) -> None:
    admin.publish_script_version(
        name=SCRIPT,
        image=f"127.0.0.1:5000/{SCRIPT}",
        digest="sha256:" + "0" * 64,
        manifest={"name": SCRIPT, "command": ["true"]},
    )


@pytest.mark.slow
def test_workers_share_the_port_the_counters_and_stop_together(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(db="postgresql", env={"HQ_WORKERS": str(WORKERS)})
    workers = _workers(server)
    assert len(workers) == WORKERS
    folders = {_metrics_folder(pid) for pid in workers}
    assert len(folders) == 1 and all(f is not None for f in folders)
    admin = server.client()
    _publish(admin)
    agent_token = server.token("agent")
    claims = 0
    for _ in range(12):  # a new client each time: a new connection, to whichever worker
        admin.submit_job(script=SCRIPT)
        with HQClient(server.url, agent_token) as agent:
            me = agent.register_agent(AgentCreate(name=f"w-{claims}", capacity=1))
            claims += len(agent.claim(me.id, capacity=1, wait_s=5).leases)
    assert claims == 12
    assert [_claimed_total(server) for _ in range(8)] == [12.0] * 8

    os.kill(workers[0], signal.SIGKILL)
    _wait_for(lambda: len(set(_workers(server)) - {workers[0]}) == WORKERS, "a new worker")
    assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
    assert _claimed_total(server) == 12.0  # the dead worker's counts still count

    assert server.process is not None
    parent = server.process
    every = _workers(server)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=WAIT_SECONDS) == 0
    assert not [pid for pid in every if Path(f"/proc/{pid}").exists()]
    folder = folders.pop()
    assert folder is not None and not Path(folder).exists()


def _metrics_folder(pid: int) -> str | None:
    """The folder of the worker's counter file, which it keeps mapped."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1]
        if path.endswith(f"/counter_{pid}.db"):
            return str(Path(path).parent)
    return None


def _run_server(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hq", "server"],
        env={
            **os.environ,
            "HQ_HOME": str(tmp_path),
            "HQ_PORT": str(free_port()),
            "HQ_LOG_LEVEL": "warning",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
        check=False,
    )


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens here: the migrations cannot connect
    done = _run_server(
        tmp_path,
        HQ_WORKERS="2",
        HQ_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/hq",
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "before it served; stopping HQ" in done.stderr


def test_sqlite_refuses_more_than_one_worker(tmp_path: Path) -> None:
    done = _run_server(tmp_path, HQ_WORKERS="3")
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr and "HQ_DATABASE_URL" in done.stderr
    assert not (tmp_path / "hq.db").exists()  # refused before anything was written
