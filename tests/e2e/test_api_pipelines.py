"""Pipelines through the real API on both databases, with a fake agent (no Docker): steps wait
for what they read from, a step's output file becomes the next step's input, reuse by content,
a failed step cancels its dependants with the reason, cancel, and every refusal at submit.

One server per database for the module; each test has its own scripts and queue.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hq import errors
from hq.client import HQClient
from hq.schemas.agents import ArtifactFile, CompleteRequest, Lease
from hq.schemas.common import JobStatus
from hq.schemas.pipelines import PipelineRead
from hq.schemas.results import Results
from tests.fixtures.api import (
    FakeAgent,
    call,
    count_rows,
    module_server,
    problem,
    publish_fake,
    table_counts,
    unique_name,
    unique_queue,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

TABLE_INPUT = {"table": {"description": "a CSV", "required": True}}
PARAMS = {
    "type": "object",
    "properties": {"k": {"type": "integer", "minimum": 0, "default": 1}},
    "additionalProperties": False,
}


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def submitter(server: LiveServer) -> HQClient:
    return server.client("submitter")


class Setup:
    """Three fake scripts (a, b, c: each reads ``table``), a dataset, a queue and an agent."""

    def __init__(self, server: LiveServer, tmp_path: Path) -> None:
        publisher = server.client("publisher")
        self.scripts = [
            publish_fake(publisher, params=PARAMS, inputs=TABLE_INPUT).script for _ in range(3)
        ]
        self.dataset = unique_name("d")
        data = tmp_path / "data.csv"
        data.write_text("x,y\n1,2\n")
        publisher.upload_dataset(name=self.dataset, path=data)
        self.queue = unique_queue()
        self.agent = FakeAgent(server, queue=self.queue)
        self.tmp = tmp_path

    def spec(self, *, c_params: dict[str, Any] | None = None) -> dict[str, Any]:
        a, b, c = self.scripts
        return {
            "name": unique_name("p"),
            "steps": [
                {
                    "name": "first",
                    "script": a,
                    "inputs": {"table": self.dataset},
                    "queue": self.queue,
                },
                {
                    "name": "middle",
                    "script": b,
                    "inputs": {"table": {"from": "first/outputs/out.csv"}},
                    "queue": self.queue,
                },
                {
                    "name": "last",
                    "script": c,
                    "params": c_params or {},
                    "inputs": {"table": {"from": "middle/outputs/out.csv"}},
                    "queue": self.queue,
                },
            ],
        }

    def run(
        self,
        *,
        content: bytes,
        status: JobStatus = JobStatus.succeeded,
        metrics: dict[str, float] | None = None,
    ) -> Lease:
        """Claim the one queued job, write ``out.csv`` and end it with ``status``."""
        lease = self.agent.claim_one()
        path = self.tmp / f"{lease.job_id}.csv"
        path.write_bytes(content)
        files = [ArtifactFile(path="out.csv", size=len(content), sha256=sha(content))]
        client = self.agent.client
        for item in client.artifact_uploads(
            lease.job_id, lease_token=lease.lease_token, files=files
        ).uploads:
            client.upload_url(item.url, path)
        client.complete(
            lease.job_id,
            CompleteRequest(
                lease_token=lease.lease_token,
                status=status,
                exit_code=0 if status == JobStatus.succeeded else 1,
                failure_reason=None if status == JobStatus.succeeded else "exit 1",
                artifacts=files if status == JobStatus.succeeded else [],
                results=Results(metrics=metrics or {}),
            ),
        )
        return lease


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def statuses(p: PipelineRead) -> dict[str, str]:
    return {s.name: s.status for s in p.steps}


@pytest.fixture
def setup(server: LiveServer, tmp_path: Path) -> Setup:
    return Setup(server, tmp_path)


def test_steps_wait_for_what_they_read_and_read_the_file_it_wrote(
    submitter: HQClient, setup: Setup
) -> None:
    p = submitter.pipelines.submit(**setup.spec())
    assert p.status == "queued" and p.finished_at is None
    assert statuses(p) == {"first": "queued", "middle": "waiting", "last": "waiting"}
    assert [s.needs for s in p.steps] == [[], ["first"], ["middle"]]
    first = setup.run(content=b"a,b\n1,2\n")
    p = submitter.pipelines.get(p.id)
    assert statuses(p) == {"first": "succeeded", "middle": "queued", "last": "waiting"}
    assert p.status == "running"
    middle_job = submitter.get_job(p.steps[1].job_id or "")
    assert middle_job.inputs["table"].sha256 == sha(b"a,b\n1,2\n")
    assert middle_job.inputs["table"].filename == "out.csv"
    assert (
        submitter.dataset_lineage(
            middle_job.inputs["table"].dataset, middle_job.inputs["table"].version
        ).produced_by_job
        == first.job_id
    )
    setup.run(content=b"a\n1\n")
    setup.run(content=b"done\n")
    p = submitter.pipelines.get(p.id)
    assert statuses(p) == dict.fromkeys(("first", "middle", "last"), "succeeded")
    assert p.status == "succeeded" and p.finished_at is not None
    assert not any(s.reused for s in p.steps)
    assert submitter.pipelines.list(limit=5).items[0].id == p.id


def test_rerun_after_changing_the_last_step_runs_only_that_step(
    submitter: HQClient, setup: Setup
) -> None:
    spec = setup.spec()
    submitter.pipelines.submit(**spec)
    for content in (b"1\n", b"2\n", b"3\n"):
        setup.run(content=content)
    again = submitter.pipelines.submit(**{**setup.spec(), "name": unique_name("p")})
    assert again.status == "succeeded" and all(s.reused for s in again.steps)
    changed = submitter.pipelines.submit(**setup.spec(c_params={"k": 7}))
    assert statuses(changed) == {"first": "succeeded", "middle": "succeeded", "last": "queued"}
    assert [s.reused for s in changed.steps] == [True, True, False]
    lease = setup.run(content=b"4\n")
    assert lease.job_id == changed.steps[2].job_id
    assert submitter.pipelines.get(changed.id).status == "succeeded"


def test_a_failed_step_cancels_what_depends_on_it_with_the_reason(
    submitter: HQClient, setup: Setup
) -> None:
    p = submitter.pipelines.submit(**setup.spec())
    setup.run(content=b"ok\n")
    failed = setup.run(content=b"", status=JobStatus.failed)
    p = submitter.pipelines.get(p.id)
    assert statuses(p) == {"first": "succeeded", "middle": "failed", "last": "cancelled"}
    assert p.steps[2].reason == f"upstream step middle failed (job {failed.job_id})"
    assert submitter.get_job(p.steps[2].job_id or "").failure_reason == p.steps[2].reason
    assert p.status == "failed" and p.finished_at is not None


def test_a_missing_output_file_fails_the_step_that_reads_it(
    submitter: HQClient, setup: Setup
) -> None:
    spec = setup.spec()
    spec["steps"][1]["inputs"]["table"] = {"from": "first/outputs/nope.csv"}
    p = submitter.pipelines.submit(**spec)
    setup.run(content=b"x\n")
    p = submitter.pipelines.get(p.id)
    assert statuses(p) == {"first": "succeeded", "middle": "failed", "last": "cancelled"}
    assert "wrote no outputs/nope.csv (it wrote: outputs/out.csv)" in (p.steps[1].reason or "")
    assert p.status == "failed"


def test_cancel_ends_every_unfinished_step(
    server: LiveServer, submitter: HQClient, setup: Setup
) -> None:
    p = submitter.pipelines.submit(**setup.spec())
    with pytest.raises(errors.Forbidden):
        server.client("submitter", name="another").pipelines.cancel(p.id)
    p = submitter.pipelines.cancel(p.id)
    assert set(statuses(p).values()) == {"cancelled"}
    assert p.status == "cancelled" and p.finished_at is not None
    with pytest.raises(errors.Conflict):
        submitter.pipelines.cancel(p.id)
    with pytest.raises(errors.NotFound):
        submitter.pipelines.get("no-such-pipeline")


def refusal(server: LiveServer, spec: dict[str, Any]) -> dict[str, Any]:
    before = {**table_counts(server), "pipelines": count_rows(server, "pipelines")}
    body = problem(
        call(server, server.token("submitter"), "POST", "/api/v1/pipelines", json=spec), 422
    )
    after = {**table_counts(server), "pipelines": count_rows(server, "pipelines")}
    assert after == before, "a refused pipeline wrote rows"
    return body


def edit(spec: dict[str, Any], step: int, **fields: Any) -> dict[str, Any]:
    steps = [dict(s) for s in spec["steps"]]
    steps[step].update(fields)
    return {**spec, "steps": steps}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda s: edit(s, 1, inputs={"table": {"from": "ghost/outputs/out.csv"}}),
            "steps.1.inputs.table",
            "names no step",
        ),
        (
            lambda s: edit(s, 0, inputs={"table": {"from": "last/outputs/out.csv"}}),
            "steps.0.inputs",
            "cycle",
        ),
        (lambda s: edit(s, 2, name="first"), "steps.2.name", "used twice"),
        (lambda s: edit(s, 1, script="no-such-script"), "steps.1.script", "no-such-script"),
        (
            lambda s: edit(s, 0, inputs={"table": "no-such-dataset"}),
            "steps.0.inputs.table",
            "no-such-dataset",
        ),
        (lambda s: edit(s, 0, inputs={}), "steps.0.inputs.table", "required"),
        (
            lambda s: edit(s, 1, inputs={"table": {"from": "first/outputs/out.csv"}, "extra": "x"}),
            "steps.1.inputs.extra",
            "no input",
        ),
        (lambda s: edit(s, 2, params={"k": -1}), "steps.2.params.k", "k"),
        (lambda s: edit(s, 2, params={"zzz": 1}), "steps.2.params", "zzz"),
        (
            lambda s: edit(s, 1, inputs={"table": {"from": "first/../etc/passwd"}}),
            "steps.1.inputs.table",
            "from",
        ),
        (
            lambda s: {**s, "steps": [{**s["steps"][0], "sweep": {"grid": {"k": [1, -2]}}}]},
            "steps.0.params.k",
            "k",
        ),
        (
            lambda s: edit(s, 1, inputs={"table": {"from": "first/results.csv"}}),
            "steps.1.inputs.table",
            "no sweep",
        ),
        (
            lambda s: edit(edit(s, 0, sweep={"grid": {"k": [1, 2]}}), 1),
            "steps.1.inputs.table",
            "first/results.csv",
        ),
    ],
)
def test_a_bad_step_is_refused_naming_it_and_nothing_is_stored(
    server: LiveServer, setup: Setup, change: Any, field: str, words: str
) -> None:
    body = refusal(server, change(setup.spec()))
    assert body["field"].startswith(field), body
    assert words in body["message"], body


def sweep_spec(setup: Setup, *, require: str = "all") -> dict[str, Any]:
    spec = setup.spec()
    spec["steps"] = [
        {
            "name": "grid",
            "script": setup.scripts[0],
            "inputs": {"table": setup.dataset},
            "sweep": {"grid": {"k": [1, 2]}, "require": require},
            "queue": setup.queue,
        },
        {
            "name": "pick",
            "script": setup.scripts[1],
            "inputs": {"table": {"from": "grid/results.csv"}},
            "queue": setup.queue,
        },
    ]
    return spec


def test_a_sweep_step_fans_out_and_the_next_step_reads_its_results_table(
    server: LiveServer, submitter: HQClient, setup: Setup
) -> None:
    p = submitter.pipelines.submit(**sweep_spec(setup))
    grid = p.steps[0]
    assert grid.status == "running" and grid.sweep_id and grid.job_id is None
    assert p.steps[1].status == "waiting"
    for score in (0.5, 0.25):
        setup.run(content=b"x\n", metrics={"score": score})
    p = submitter.pipelines.get(p.id)
    assert [s.status for s in p.steps] == ["succeeded", "queued"]
    table = submitter.get_job(p.steps[1].job_id or "").inputs["table"]
    assert table.filename == "results.csv" and table.dataset.startswith("pipeline-results-")
    out = setup.tmp / "results.csv"
    submitter.download_dataset(table.dataset, table.version, out)
    rows = out.read_text().splitlines()
    assert rows[0] == "k,repeat,score" and sorted(rows[1:]) == ["1,0,0.5", "2,0,0.25"]
    setup.run(content=b"picked\n")
    assert submitter.pipelines.get(p.id).status == "succeeded"
    again = submitter.pipelines.submit(**{**sweep_spec(setup), "name": unique_name("p")})
    assert again.status == "succeeded" and [s.status for s in again.steps] == ["succeeded"] * 2
    assert again.steps[1].reused


def test_a_failed_sweep_job_fails_a_sweep_step_that_needs_all(
    submitter: HQClient, setup: Setup
) -> None:
    p = submitter.pipelines.submit(**sweep_spec(setup))
    setup.run(content=b"x\n", metrics={"score": 1.0})
    setup.run(content=b"", status=JobStatus.failed)
    p = submitter.pipelines.get(p.id)
    assert [s.status for s in p.steps] == ["failed", "cancelled"]
    assert (
        p.steps[0].reason == f"sweep {p.steps[0].sweep_id}: 1 of 2 jobs succeeded (required: all)"
    )
    assert p.steps[1].reason == f"upstream step grid failed (sweep {p.steps[0].sweep_id})"
    assert p.status == "failed"


def test_a_step_reading_two_steps_starts_once_both_have_succeeded(
    server: LiveServer, submitter: HQClient, setup: Setup
) -> None:
    two = {**TABLE_INPUT, "other": {"description": "another CSV", "required": True}}
    joiner = publish_fake(server.client("publisher"), params=PARAMS, inputs=two).script
    a, b, _ = setup.scripts
    q = setup.queue
    spec = {
        "name": unique_name("p"),
        "steps": [
            {"name": "left", "script": a, "inputs": {"table": setup.dataset}, "queue": q},
            {"name": "right", "script": b, "inputs": {"table": setup.dataset}, "queue": q},
            {
                "name": "join",
                "script": joiner,
                "inputs": {
                    "table": {"from": "left/outputs/out.csv"},
                    "other": {"from": "right/outputs/out.csv"},
                },
                "queue": q,
            },
        ],
    }
    p = submitter.pipelines.submit(**spec)
    assert statuses(p) == {"left": "queued", "right": "queued", "join": "waiting"}
    assert p.steps[2].needs == ["left", "right"]
    setup.run(content=b"l\n")
    assert statuses(submitter.pipelines.get(p.id))["join"] == "waiting"
    setup.run(content=b"r\n")
    p = submitter.pipelines.get(p.id)
    assert statuses(p)["join"] == "queued"
    inputs = submitter.get_job(p.steps[2].job_id or "").inputs
    assert {inputs["table"].sha256, inputs["other"].sha256} == {sha(b"l\n"), sha(b"r\n")}


def hq(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "hq", "pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_submits_a_yaml_file_shows_lists_and_refuses_a_bad_one(
    server: LiveServer, setup: Setup
) -> None:
    spec = setup.spec()
    token = server.token("submitter")
    path = setup.tmp / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = hq(server, token, "submit", str(path), "--json")
    assert done.returncode == 0, done.stderr
    created = PipelineRead.model_validate_json(done.stdout)
    shown = hq(server, token, "show", created.id)
    assert shown.returncode == 0 and "middle" in shown.stdout and "waiting" in shown.stdout
    listed = hq(server, token, "list", "--limit", "100")
    assert created.id in listed.stdout and spec["name"] in listed.stdout
    path.write_text(yaml.safe_dump(edit(spec, 2, params={"k": "seven"})))
    refused = hq(server, token, "submit", str(path))
    assert refused.returncode == 1 and "steps.2" in refused.stderr, refused.stderr
    path.write_text("steps: [unclosed")
    broken = hq(server, token, "submit", str(path))
    assert broken.returncode == 2 and "cannot read" in broken.stderr, broken.stderr
    cancelled = hq(server, token, "cancel", created.id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
