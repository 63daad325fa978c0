"""A pipeline of the example scripts on a real agent and Docker: describe -> clean -> linear-fit
from `hq pipeline submit FILE --wait`, a re-run after changing the last step's params (the first
two reused, only the last run), and a failing middle step cancelling the last with its reason.
Then the README's Python example, run as written against the same HQ.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hq import imaging
from hq.schemas.pipelines import PipelineRead
from tests.e2e.test_agent_examples import hq_cli
from tests.fixtures.agent import AgentProcess
from tests.fixtures.docker import REPO_ROOT, SCRIPTS_DIR
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PIPELINE = REPO_ROOT / "scripts" / "pipelines" / "diabetes.yaml"
WAIT_S = "600"


def submit(server: LiveServer, spec_file: Path) -> tuple[int, PipelineRead, str]:
    """`hq pipeline submit FILE --wait --json`: its exit code, the pipeline and stderr."""
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.token("submitter")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hq",
            "pipeline",
            "submit",
            str(spec_file),
            "--wait",
            WAIT_S,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done.returncode, PipelineRead.model_validate_json(done.stdout), done.stderr


def variant(tmp_path: Path, name: str, step: str, params: dict[str, Any]) -> Path:
    spec = yaml.safe_load(PIPELINE.read_text())
    for s in spec["steps"]:
        if s["name"] == step:
            s["params"] = {**s.get("params", {}), **params}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def by_name(p: PipelineRead) -> dict[str, Any]:
    return {s.name: s for s in p.steps}


def test_describe_clean_fit_runs_reruns_only_what_changed_and_stops_at_a_failure(
    live_server: LiveServer,
    live_agent: AgentProcess,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    for name in ("describe", "clean", "linear-fit"):
        hq_cli(
            live_server,
            live_server.token("publisher"),
            "script",
            "publish",
            example_images[name].ref,
            "--json",
        )
    client = live_server.client("submitter")
    client.upload_dataset(
        name="diabetes-missing", path=SCRIPTS_DIR / "clean" / "example" / "diabetes-missing.csv"
    )

    code, first, err = submit(live_server, PIPELINE)
    steps = by_name(first)
    assert code == 0 and first.status == "succeeded", (err, first)
    assert [s.status for s in first.steps] == ["succeeded"] * 3
    assert not any(s.reused for s in first.steps)
    clean = client.job_result(steps["clean"].job_id)
    assert clean.metrics["rows_in"] == 442 and clean.metrics["rows_out"] == 398
    cleaned = {a.path: a for a in client.list_artifacts(steps["clean"].job_id)}["clean.csv"]
    fit_job = client.get_job(steps["fit"].job_id)
    assert fit_job.inputs["table"].sha256 == cleaned.sha256
    first_r2 = client.job_result(fit_job.id).metrics["r2"]
    assert 0 < first_r2 < 1

    code, again, err = submit(live_server, variant(tmp_path, "ridge", "fit", {"alpha": 10.0}))
    steps = by_name(again)
    assert code == 0 and again.status == "succeeded", (err, again)
    assert [steps[n].reused for n in ("describe", "clean", "fit")] == [True, True, False]
    assert steps["describe"].reused_from == by_name(first)["describe"].job_id
    ridge = client.get_job(steps["fit"].job_id)
    assert ridge.params["alpha"] == 10.0 and ridge.started_at is not None
    assert ridge.inputs["table"].sha256 == cleaned.sha256

    code, failed, err = submit(
        live_server, variant(tmp_path, "strict", "clean", {"min_rows": 100000})
    )
    steps = by_name(failed)
    assert code == 1 and failed.status == "failed", (err, failed)
    assert steps["describe"].reused and steps["clean"].status == "failed"
    assert client.get_job(steps["clean"].job_id).exit_code == 1
    assert steps["fit"].status == "cancelled"
    assert steps["fit"].reason == f"upstream step clean failed (job {steps['clean'].job_id})"
    assert failed.finished_at is not None

    readme_example_runs(live_server, client)


def readme_example_runs(server: LiveServer, client: Any) -> None:
    """The README's one Python block, as a user would paste it: a job, then a pipeline."""
    [block] = [
        b
        for b in re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
        if "HQClient" in b
    ]
    client.upload_dataset(
        name="diabetes", path=SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
    )
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.token("submitter")}
    done = subprocess.run(
        [sys.executable, "-c", block], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    job_line, pipeline_line = done.stdout.splitlines()
    assert job_line.startswith("succeeded {") and "'r2':" in job_line
    assert pipeline_line == "succeeded"
