"""Logs go out while the job runs (followable with `hq job logs -f`), and inputs come through
the host's content-addressed cache, fetched once for all the jobs that read them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.agent import AgentProcess, publish_inline, script_metrics, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
TICKER = """
import sys, time
for i in range(8):
    print(f"tick {i}", flush=True)
    if i == 3:
        print("halfway", file=sys.stderr, flush=True)
    time.sleep(0.5)
"""


def test_hq_job_logs_follow_shows_lines_while_the_job_runs(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    publish_inline(live_server, base_image, name="ticker", code=TICKER)
    client = live_server.client("submitter")
    job = client.submit_job(script="ticker")
    env = {**os.environ, "HQ_URL": live_server.url, "HQ_TOKEN": live_server.token("viewer")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "hq", "job", "logs", "-f", job.id],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    seen: list[tuple[str, str]] = []  # (line, job status when it arrived)
    for line in follower.stdout:
        seen.append((line.rstrip("\n"), client.get_job(job.id).status))
    assert follower.wait(timeout=30) == 0
    ticks = [line for line, _ in seen if "tick " in line]
    assert [t.split("tick ")[1] for t in ticks] == [str(i) for i in range(8)]
    first_status = next(status for line, status in seen if "tick 0" in line)
    assert first_status == "running", "the first line should arrive while the job runs"
    assert any("halfway" in line for line, _ in seen)
    assert wait_status(client, job.id, ENDED).status == "succeeded"


READER = """
import hashlib, json
data = open("/hq/inputs/table/shared.csv", "rb").read()
json.dump({"metrics": {"bytes": len(data)}}, open("/hq/outputs/results.json", "w"))
"""


def test_jobs_reading_the_same_dataset_share_one_verified_cache_file(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage, tmp_path: Path
) -> None:
    data = b"a,b\n" + b"1,2\n" * 1000
    source = tmp_path / "shared.csv"
    source.write_bytes(data)
    client = live_server.client("submitter")
    client.upload_dataset(name="shared", path=source)
    publish_inline(
        live_server, base_image, name="reader", code=READER, inputs={"table": {"required": True}}
    )
    cached = live_agent.work_dir / "cache" / "sha256" / hashlib.sha256(data).hexdigest()
    first = client.submit_job(script="reader", inputs={"table": "shared"})
    assert wait_status(client, first.id, ENDED).status == "succeeded"
    before = cached.stat()
    second = client.submit_job(script="reader", inputs={"table": "shared"}, params={})
    assert wait_status(client, second.id, ENDED).status == "succeeded"
    after = cached.stat()
    assert after.st_ino == before.st_ino  # not fetched again: a fetch renames a new file in
    assert after.st_mtime_ns > before.st_mtime_ns  # its use is recorded, for LRU eviction
    assert cached.read_bytes() == data
    assert script_metrics(client.job_result(second.id).metrics) == {"bytes": float(len(data))}
    assert [p.name for p in cached.parent.iterdir() if not p.name.startswith(".")] == [cached.name]


def test_an_idle_agent_runs_a_new_job_at_once(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    """Pickup is a long poll: a job submitted to an idle agent starts within a second."""
    publish_inline(live_server, base_image, name="quick", code="print('hi')")
    client = live_server.client("submitter")
    time.sleep(1)  # the agent sits in its long poll
    started = time.monotonic()
    job = client.submit_job(script="quick", wait_s=30)
    assert job.status == "succeeded"
    assert time.monotonic() - started < 3.0


def test_a_chatty_job_loses_no_line(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    code = "for i in range(20000):\n    print(f'line {i:05d} ' + 'x' * 200)\n"
    publish_inline(live_server, base_image, name="chatty", code=code)
    client = live_server.client("submitter")
    job = client.submit_job(script="chatty")
    assert wait_status(client, job.id, ENDED, timeout_s=120).status == "succeeded"
    lines = [x for x in client.job_logs(job.id).splitlines() if "line " in x and "xxx" in x]
    assert len(lines) == 20000
    assert "line 19999 " in lines[-1]


def test_output_with_nul_and_invalid_utf8_ships_as_replacement_characters(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    """HQ stores no NUL (PostgreSQL refuses it) and no lone surrogate: the agent sends U+FFFD
    for both, and the lines around them arrive."""
    code = (
        "import sys\n"
        "print('before', flush=True)\n"
        "sys.stdout.buffer.write(b'nul:\\x00: bad:\\xed\\xa0\\x80:\\n')\n"
        "sys.stdout.flush()\n"
        "print('after', flush=True)\n"
    )
    publish_inline(live_server, base_image, name="nul-out", code=code)
    client = live_server.client("submitter")
    job = client.submit_job(script="nul-out")
    assert wait_status(client, job.id, ENDED, timeout_s=120).status == "succeeded"
    logs = client.job_logs(job.id)
    assert "before" in logs and "after" in logs, logs
    assert "nul:\ufffd: bad:" in logs and "\x00" not in logs, logs
