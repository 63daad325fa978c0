"""The real `hq` command (a subprocess reading HQ_URL and HQ_TOKEN) against a real server:
jobs, logs, sweeps, results export, tokens, and errors that say what to fix.

One server per database for the module; each test has its own script and queue. A fake agent
(through the API) completes the jobs: no Docker is needed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue as queue_module
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hq.client import HQClient
from hq.schemas.common import JobStatus
from tests.fixtures.api import FakeAgent, module_server, publish_fake, unique_queue
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer, free_port

CLI_TIMEOUT_SECONDS = 60
pytestmark = pytest.mark.slow  # each `hq` run starts a Python process (about 0.8 s)


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def submitter_token(server: LiveServer) -> str:
    return server.token("submitter")


@pytest.fixture
def script(server: LiveServer) -> str:
    return publish_fake(server.client("publisher")).script


@pytest.fixture
def queue() -> str:
    return unique_queue()


def hq(
    server: LiveServer, token: str | None, *args: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HQ_URL", "HQ_TOKEN")}
    env["HQ_URL"] = url or server.url
    if token is not None:
        env["HQ_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "hq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def test_job_submit_list_show_and_cancel(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    created = as_json(
        hq(server, submitter_token, "job", "submit", script, "-p", "n=3", "-p", "mode=slow",
           "--params-json", '{"alpha": 2.5, "n": 1}', "--queue", queue, "--priority", "7",
           "--json")
    )  # fmt: skip
    assert created["status"] == "queued" and created["priority"] == 7
    assert created["params"] == {"n": 3, "alpha": 2.5, "mode": "slow"}  # -p wins over JSON
    second = ok(hq(server, submitter_token, "job", "submit", script, "-p", "n=4", "--queue", queue))
    second_id, status = second.split()[:2]
    assert status == "queued"

    page = as_json(hq(server, submitter_token, "job", "list", "--script", script, "--json"))
    assert [j["id"] for j in page["items"]] == [second_id, created["id"]]
    table = ok(hq(server, submitter_token, "job", "list", "--script", script, "--limit", "1"))
    lines = table.splitlines()
    assert lines[0].split() == ["id", "script", "status", "attempts", "created", "(UTC)", "reason"]
    assert lines[2].startswith(second_id) and f"{script}@1" in lines[2]
    cursor = lines[-1].removeprefix("more: --cursor ").strip()
    assert lines[-1].startswith("more: --cursor")
    rest = as_json(
        hq(server, submitter_token, "job", "list", "--script", script, "--limit", "1",
           "--cursor", cursor, "--json")
    )  # fmt: skip
    assert [j["id"] for j in rest["items"]] == [created["id"]] and rest["next_cursor"] is None

    shown = ok(hq(server, submitter_token, "job", "show", created["id"]))
    assert f"job      {created['id']}" in shown
    assert "status   queued  (attempt 0/3)" in shown
    assert 'params   {"alpha": 2.5, "mode": "slow", "n": 3}' in shown
    cancelled = ok(hq(server, submitter_token, "job", "cancel", created["id"]))
    assert cancelled.split() == [created["id"], "cancelled"]
    detail = as_json(hq(server, submitter_token, "job", "show", created["id"], "--json"))
    assert detail["job"]["status"] == "cancelled"
    assert [e["kind"] for e in detail["job"]["events"]] == ["queued", "cancelled"]


def test_job_submit_wait_prints_the_result_and_cancel_of_a_running_job_is_a_request(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            lease = agent.claim_one(wait_s=20)
            agent.log(lease, "fitting")
            agent.complete(lease, metrics={"rmse": 0.25, "r2": 0.875})
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    out = ok(hq(server, submitter_token, "job", "submit", script, "-p", "n=2", "--queue", queue,
                "--wait", "30"))  # fmt: skip
    thread.join(10)
    assert not errors, errors
    first, *metrics = out.splitlines()
    job_id, status = first.split()
    assert status == "succeeded"
    assert metrics == ["  r2 = 0.875", "  rmse = 0.25"]
    shown = ok(hq(server, submitter_token, "job", "show", job_id))
    assert "metric   rmse = 0.25" in shown and "metric   r2 = 0.875" in shown
    assert ok(hq(server, submitter_token, "job", "logs", job_id)) == "fitting\n"
    again = ok(hq(server, submitter_token, "job", "submit", script, "-p", "n=2", "--queue", queue,
                  "--reuse")).split()[0]  # fmt: skip
    reused = hq(server, submitter_token, "job", "logs", again)
    assert ok(reused) == "fitting\n"  # the logs of the job that made the result
    assert f"job {again} reused the result of job {job_id}" in reused.stderr

    running = ok(hq(server, submitter_token, "job", "submit", script, "-p", "n=3",
                    "--queue", queue)).split()[0]  # fmt: skip
    lease = agent.claim_one()
    assert lease.job_id == running
    out = ok(hq(server, submitter_token, "job", "cancel", running))
    assert out.split() == [running, "cancel", "requested"]
    assert agent.client.heartbeat(running, lease_token=lease.lease_token).cancel_requested


def test_job_submit_wait_exit_code_says_how_the_job_ended(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    """CI scripts use --wait: a failed job exits 1, one still running after the wait exits 3."""
    agent = FakeAgent(server, queue=queue)

    def fail() -> None:
        lease = agent.claim_one(wait_s=20)
        agent.log(lease, "KeyError: 'nope' is not a column")
        agent.complete(lease, status=JobStatus.failed, exit_code=2)

    thread = threading.Thread(target=fail)
    thread.start()
    failed = hq(server, submitter_token, "job", "submit", script, "-p", "n=7", "--queue", queue,
                "--wait", "30")  # fmt: skip
    thread.join(10)
    assert failed.returncode == 1, failed.stderr
    assert "failed" in failed.stderr and "exit code 2" in failed.stderr
    assert "KeyError: 'nope' is not a column" in failed.stderr  # the cause, from the logs
    pending = hq(server, submitter_token, "job", "submit", script, "-p", "n=8",
                 "--queue", unique_queue(), "--wait", "0.5")  # fmt: skip
    assert pending.returncode == 3, pending.stderr
    assert "still queued" in pending.stderr and "hq job logs -f" in pending.stderr
    assert "error" not in pending.stderr.lower()  # not an error: it has not ended yet


def test_sweep_submit_wait_exit_code_says_how_the_sweep_ended(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    outcomes = iter([JobStatus.succeeded, JobStatus.succeeded, JobStatus.succeeded,
                     JobStatus.failed])  # fmt: skip

    def work(jobs: int) -> None:
        for _ in range(jobs):
            lease = agent.claim_one(wait_s=20)
            status = next(outcomes)
            agent.complete(lease, status=status, exit_code=0 if status == "succeeded" else 1)

    def sweep(n: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return hq(server, submitter_token, "sweep", "submit", script, "-g", n, "--no-reuse",
                  "--queue", queue, *extra)  # fmt: skip

    thread = threading.Thread(target=work, args=(2,))
    thread.start()
    done = sweep("n=1,2", "--wait", "30")
    thread.join(10)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sweep ") and done.stdout.endswith(": 2 jobs\nsucceeded: 2\n")
    thread = threading.Thread(target=work, args=(2,))
    thread.start()
    failed = sweep("n=3,4", "--wait", "30")
    thread.join(10)
    assert failed.returncode == 1, failed.stderr
    assert "not every job succeeded (failed: 1, succeeded: 1)" in failed.stderr
    pending = sweep("n=5", "--wait", "0.5")
    assert pending.returncode == 3, pending.stderr
    assert "has not ended after the wait (queued: 1)" in pending.stderr
    assert "hq sweep show" in pending.stderr and "error" not in pending.stderr.lower()
    assert pending.stdout.startswith("sweep ")  # the id, before the wait


def test_job_logs_follow_streams_until_the_job_ends(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    job = HQClient(server.url, submitter_token).submit_job(
        script=script, params={"n": 1}, queue=queue
    )
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    agent.log(lease, "step 1")
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": submitter_token}
    follower = subprocess.Popen(
        [sys.executable, "-m", "hq", "job", "logs", "-f", job.id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue_module.Queue[str] = queue_module.Queue()

    def read() -> None:  # readline blocks: read in a thread, wait on the queue with a timeout
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line)
        lines.put("<eof>")

    threading.Thread(target=read, daemon=True).start()
    try:
        assert lines.get(timeout=15) == "step 1\n"  # already there, shown at once
        agent.log(lease, "step 2")
        assert lines.get(timeout=10) == "step 2\n"  # live
        assert follower.poll() is None, "follow ended while the job ran"
        ended = time.monotonic()
        agent.complete(lease)
        assert follower.wait(timeout=10) == 0
        assert time.monotonic() - ended < 5
        assert lines.get(timeout=5) == "<eof>"
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_sweep_submit_show_and_results_export_as_csv(
    server: LiveServer, submitter_token: str, script: str, queue: str, tmp_path: Path
) -> None:
    random_spec = {"n": 2, "seed": 4, "params": {"alpha": {"low": 0.1, "high": 1.0}}}
    sweep = as_json(
        hq(server, submitter_token, "sweep", "submit", script, "-g", "n=1,2,3", "-p", "mode=slow",
           "--random", json.dumps(random_spec), "--repeats", "2", "--queue", queue, "--json")
    )  # fmt: skip
    assert sweep["total"] == 12 and sweep["counts"] == {"queued": 12}
    agent = FakeAgent(server, queue=queue)
    for i in range(12):
        lease = agent.claim_one()
        if i == 0:
            agent.complete(lease, status=JobStatus.failed, exit_code=1)
        else:
            agent.complete(lease, metrics={"score": lease.params["n"] * lease.params["alpha"]})
    listed = ok(hq(server, submitter_token, "sweep", "list", "--script", script)).splitlines()
    assert listed[0].split() == ["id", "script", "jobs", "status", "created", "(UTC)"]
    assert listed[2].split()[:3] == [sweep["id"], f"{script}@1", "12"]
    assert "failed: 1, succeeded: 11" in listed[2]
    shown = ok(hq(server, submitter_token, "sweep", "show", sweep["id"], "--results"))
    head, columns, rule, *rows = shown.splitlines()
    assert set(rule.replace(" ", "")) == {"-"}
    assert head.startswith(f"sweep {sweep['id']}  {script}@1  12 jobs")
    assert "(failed: 1, succeeded: 11)  finished" in head
    assert columns.split() == ["job_id", "status", "alpha", "mode", "n", "score"]
    assert len(rows) == 12

    out = tmp_path / "results.csv"
    result = hq(server, submitter_token, "results", "export", "--script", script, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stderr
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(exported) == 11 and {r["status"] for r in exported} == {"succeeded"}
    for row in exported:
        assert row["sweep_id"] == sweep["id"] and row["mode"] == "slow"
        assert float(row["score"]) == pytest.approx(int(row["n"]) * float(row["alpha"]))
    every = ok(hq(server, submitter_token, "results", "export", "--script", script,
                  "--status", ""))  # fmt: skip
    assert len(list(csv.DictReader(io.StringIO(every)))) == 12
    table = as_json(
        hq(server, submitter_token, "results", "export", "--script", script, "--format", "json")
    )
    assert table["metric_columns"] == ["score"] and len(table["rows"]) == 11
    cut = hq(server, submitter_token, "results", "export", "--script", script, "--limit", "5")
    assert len(list(csv.DictReader(io.StringIO(ok(cut))))) == 5
    assert "warning: the table stops at 5 rows" in cut.stderr  # never cut silently
    assert "warning" not in result.stderr


def test_values_of_params_the_schema_types_as_strings_stay_text(
    server: LiveServer, submitter_token: str, queue: str
) -> None:
    """``-p target=5`` is the column "5" for a script whose schema wants a string, and the
    number 5 for one that wants a number: the CLI reads the schema before it sends."""
    schema = {
        "type": "object",
        "properties": {"target": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["target"],
    }
    name = publish_fake(server.client("publisher"), params=schema).script
    created = as_json(
        hq(server, submitter_token, "job", "submit", f"{name}@1", "-p", "target=5", "-p", "n=2",
           "--queue", queue, "--json")
    )  # fmt: skip
    assert created["params"] == {"target": "5", "n": 2}
    sweep = as_json(
        hq(server, submitter_token, "sweep", "submit", name, "-g", "target=1,2", "-g", "n=3,4",
           "--queue", queue, "--json")
    )  # fmt: skip
    jobs = as_json(hq(server, submitter_token, "job", "list", "--sweep", sweep["id"], "--json"))
    assert sorted((j["params"]["target"], j["params"]["n"]) for j in jobs["items"]) == [
        ("1", 3), ("1", 4), ("2", 3), ("2", 4)
    ]  # fmt: skip


def test_token_create_then_script_list_with_the_new_token(server: LiveServer, script: str) -> None:
    token = ok(hq(server, server.admin_token, "token", "create", "--name", "ci", "--role",
                  "viewer", "-q")).strip()  # fmt: skip
    assert token.startswith("hq_")
    listed = as_json(hq(server, token, "script", "list", "--json"))
    assert script in [s["name"] for s in listed]
    refused = hq(server, token, "token", "create", "--name", "x", "--role", "admin")
    assert refused.returncode == 1
    assert "role 'viewer' may not do this" in refused.stderr
    [ci] = [t for t in as_json(hq(server, server.admin_token, "token", "list", "--json"))
            if t["name"] == "ci" and t["revoked_at"] is None]  # fmt: skip
    revoked = ok(hq(server, server.admin_token, "token", "revoke", ci["id"]))
    assert revoked.strip() == f"revoked token {ci['id']} (ci, viewer)"
    gone = hq(server, token, "script", "list")
    assert gone.returncode == 1 and "invalid or revoked token" in gone.stderr
    assert "HQ_TOKEN" in gone.stderr
    table = ok(hq(server, server.admin_token, "token", "list")).splitlines()
    assert table[0].split() == ["id", "name", "role", "created", "(UTC)", "revoked", "(UTC)"]
    [row] = [line for line in table if line.startswith(ci["id"])]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"{ci['id']}\s+ci\s+viewer\s+{stamp}\s+{stamp}", row), row


def test_cli_errors_say_what_to_fix_and_exit_1(
    server: LiveServer, submitter_token: str, script: str
) -> None:
    bad = hq(server, submitter_token, "job", "submit", script, "-p", "n=0")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == "Error: params.n: 0 is less than the minimum of 1"
    unknown = hq(server, submitter_token, "job", "submit", "no-such-script", "-p", "n=1")
    assert unknown.returncode == 1 and "unknown script 'no-such-script'" in unknown.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr
    anonymous = hq(server, None, "job", "list")
    assert anonymous.returncode == 1 and "set HQ_TOKEN" in anonymous.stderr
    away = hq(server, submitter_token, "job", "list", url=f"http://127.0.0.1:{free_port()}")
    assert away.returncode == 1 and "cannot reach HQ" in away.stderr
    usage = hq(server, submitter_token, "job", "submit", script, "-p", "n")
    assert usage.returncode == 2 and "'n' is not key=value" in usage.stderr


def test_job_submit_retry_on_and_max_retries_reach_the_job(
    server: LiveServer, submitter_token: str, script: str, queue: str
) -> None:
    """`--retry-on` takes a comma list or repeats; a failed exit is then retried, not final."""
    created = as_json(
        hq(server, submitter_token, "job", "submit", script, "-p", "n=2", "--queue", queue,
           "--retry-on", "oom,exit", "--retry-on", "timeout", "--max-retries", "2", "--json")
    )  # fmt: skip
    assert created["retry_on"] == ["oom", "exit", "timeout"] and created["max_retries"] == 2
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    assert agent.complete(lease, status=JobStatus.failed, exit_code=1) == JobStatus.failed
    shown = ok(hq(server, submitter_token, "job", "show", created["id"]))
    assert "status   queued  (attempt 1/3, script retries 1/2)" in shown
    assert "script failure, retry in" in shown
    plain = as_json(
        hq(server, submitter_token, "job", "submit", script, "-p", "n=2", "--queue", queue,
           "--json")
    )  # fmt: skip
    assert plain["retry_on"] == [] and plain["max_retries"] == 0  # nothing to retry: none


def test_job_submit_refuses_a_bad_retry_kind_or_count_before_sending(
    server: LiveServer, submitter_token: str, script: str
) -> None:
    before = len(as_json(hq(server, submitter_token, "job", "list", "--script", script,
                            "--json"))["items"])  # fmt: skip
    kind = hq(server, submitter_token, "job", "submit", script, "--retry-on", "oom,segfault")
    assert kind.returncode == 2 and "Traceback" not in kind.stderr
    assert "Invalid value for '--retry-on': 'segfault' is not a failure kind to retry; " \
        "choose from oom, timeout, exit" in kind.stderr  # fmt: skip
    count = hq(server, submitter_token, "job", "submit", script, "--retry-on", "exit",
               "--max-retries", "21")  # fmt: skip
    assert count.returncode == 2 and "Invalid value for '--max-retries'" in count.stderr
    assert "0<=x<=20" in count.stderr
    sweep = hq(server, submitter_token, "sweep", "submit", script, "-g", "n=1,2",
               "--retry-on", "exit,segv")  # fmt: skip
    assert sweep.returncode == 2 and "'segv' is not a failure kind to retry" in sweep.stderr
    after = as_json(hq(server, submitter_token, "job", "list", "--script", script, "--json"))
    assert len(after["items"]) == before  # nothing was submitted
