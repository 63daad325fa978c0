"""A full work folder on the agent's host is the host's failure, not the script's: the attempt
ends as ``disk-full`` (infrastructure), is retried, and succeeds once there is room again.

The agent's work folder is a small tmpfs of the test's own; the test fills it while the job runs,
so the script's own write of ``results.json`` fails, as it would on a real full disk."""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.final import blame_full_disk, final_from_exit
from tests.fixtures.agent import AgentFactory, publish_inline, script_metrics, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer, ServerFactory

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
# Sleeps, so the test can fill the disk while it runs, then writes its result.
WRITER = (
    "import json, time\n"
    "time.sleep(4)\n"
    "with open('/hq/outputs/table.csv', 'w') as f:\n"
    "    f.write('x\\n' * 32768)\n"
    "with open('/hq/outputs/results.json', 'w') as f:\n"
    "    json.dump({'metrics': {'y': 42}}, f)\n"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "work"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write until the filesystem refuses (ENOSPC); the file, to remove later."""
    filler = folder / "filler"
    chunk = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
def fast_retry_server(server_factory: ServerFactory) -> LiveServer:
    return server_factory(db="sqlite", env={"HQ_RETRY_BACKOFF_SECONDS": "0.2"})


def test_a_job_whose_disk_fills_up_is_retried_as_disk_full_and_then_succeeds(
    fast_retry_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    small_disk: Path,
) -> None:
    server = fast_retry_server
    hq_agents(server, work_dir=small_disk, env={"HQ_AGENT_WARM_POOL": "0"})
    publish_inline(server, base_image, name="writer", code=WRITER)
    client = server.client("submitter")
    job = client.submit_job(script="writer", max_attempts=3)
    wait_status(client, job.id, {"running"}, timeout_s=60)
    time.sleep(1.0)  # the container has started and sleeps
    filler = fill(small_disk)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        detail = client.get_job(job.id)
        if any(e.kind == "requeued" for e in detail.events) or detail.status in ENDED:
            break
        time.sleep(0.2)
    filler.unlink()  # room again
    done = wait_status(client, job.id, ENDED, timeout_s=90)
    [requeued] = [e for e in done.events if e.kind == "requeued"]
    assert "disk-full" in (requeued.detail or ""), requeued.detail
    assert "infrastructure" in (requeued.detail or ""), requeued.detail
    assert (done.status, done.attempts) == ("succeeded", 2), [
        (e.kind, e.detail) for e in done.events
    ]
    assert script_metrics(done.metrics) == {"y": 42}


def test_a_script_failing_on_a_full_work_folder_is_blamed_on_the_host(small_disk: Path) -> None:
    script_fault = final_from_exit(exit_code=1, oom_killed=False)
    assert blame_full_disk(script_fault, work_dir=small_disk) == script_fault  # room: the script
    # Full only for a moment, freed before the script's end was read: its ENOSPC says so.
    brief = blame_full_disk(script_fault, work_dir=small_disk, no_space_seen=True)
    assert brief.kind == "disk-full"
    filler = fill(small_disk)
    try:
        blamed = blame_full_disk(script_fault, work_dir=small_disk)
        assert (blamed.kind, blamed.status) == ("disk-full", "failed")
        assert "exited with code 1" in (blamed.failure_reason or "")
        succeeded = final_from_exit(exit_code=0, oom_killed=False)
        assert blame_full_disk(succeeded, work_dir=small_disk) == succeeded  # success stands
    finally:
        filler.unlink()
