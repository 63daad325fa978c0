"""`hq standalone`: one command brings up the API and a local agent on the embedded defaults
(SQLite and a folder under HQ_HOME), prints the URL and the admin token, runs jobs, and stops
cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hq.client import HQClient
from tests.fixtures.docker import TEST_LABELS_CSV, BaseImage
from tests.fixtures.server import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SLOW = "import time; time.sleep(3); print('done')"


def test_standalone_runs_a_job_and_stops_on_ctrl_c(
    tmp_path: Path, base_image: BaseImage, docker_cleanup: object
) -> None:
    home = tmp_path / "hq-home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HQ_")}
    env.update({"HQ_HOME": str(home), "HQ_AGENT_CONTAINER_LABELS": TEST_LABELS_CSV})
    proc = subprocess.Popen(
        [sys.executable, "-m", "hq", "standalone", "--no-dash", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            key, _, value = line.partition(":")
            if key in ("HQ API", "Token"):
                printed[key] = value.split()[0]
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert printed["HQ API"] == f"http://127.0.0.1:{port}"
        token = printed["Token"]
        assert (home / "admin.token").read_text().strip() == token
        assert oct((home / "admin.token").stat().st_mode & 0o777) == "0o600"
        assert (home / "hq.db").exists()

        with HQClient(printed["HQ API"], token) as client:
            client.publish_script_version(
                name="hello",
                image=base_image.tag,
                digest=base_image.image_id,
                manifest={"name": "hello", "command": ["python3", "-c", "print('hello')"]},
            )
            job = client.submit_job(script="hello", wait_s=60)
            assert job.status == "succeeded", job.failure_reason
            assert "hello" in client.job_logs(job.id)
            assert [a.status for a in client.list_agents()] == ["active"]
            client.publish_script_version(
                name="slow",
                image=base_image.tag,
                digest=base_image.image_id,
                manifest={"name": "slow", "command": ["python3", "-c", SLOW]},
            )
            slow = client.submit_job(script="slow")
            deadline = time.monotonic() + 60
            while client.get_job(slow.id).status != "running" and time.monotonic() < deadline:
                time.sleep(0.1)
        # One Ctrl-C under `make run` arrives twice within milliseconds (from the terminal, and
        # from make passing it on): it is one request to stop, so the running job finishes.
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.01)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        with sqlite3.connect(home / "hq.db") as db:
            [(status,)] = db.execute("SELECT status FROM jobs WHERE id = ?", (slow.id,))
        assert status == "succeeded"
        assert "Traceback" not in (home / "logs" / "server.log").read_text()
    finally:
        if proc.poll() is None:  # a failed test: stop it the way a user would, twice if needed
            for _ in range(2):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
