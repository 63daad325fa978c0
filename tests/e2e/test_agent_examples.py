"""The example scripts end to end: `hq job submit` -> a real agent -> results through the API.

Each example image (built by the docker fixtures) is published with `hq script publish`, its
example data uploaded as a dataset, and a job submitted with the `hq` command; the job must
succeed and its metrics, tables, charts and artifacts must come back through the API. A sweep of
linear-fit over six alphas must give a results table of six rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hq import imaging
from tests.fixtures.agent import AgentProcess, script_metrics, wait_status
from tests.fixtures.docker import SCRIPTS_DIR
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLES = {
    # script: (dataset file, params, artifacts it must produce besides results.json)
    "linear-fit": ("diabetes.csv", {"target": "progression"}, {"residuals.csv"}),
    "cv-score": ("iris.csv", {"target": "species", "folds": 3, "model": "knn"}, set()),
    "describe": ("wine.csv", {}, {"summary.csv"}),
}


def hq_cli(server: LiveServer, token: str, *args: str) -> str:
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": token}
    done = subprocess.run(
        [sys.executable, "-m", "hq", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def publish_example(server: LiveServer, name: str, image: imaging.BuiltImage) -> None:
    hq_cli(server, server.token("publisher"), "script", "publish", image.ref, "--json")
    data = SCRIPTS_DIR / name / "example" / EXAMPLES[name][0]
    server.client("submitter").upload_dataset(name=f"{name}-data", path=Path(data))


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_script_runs_from_submit_to_results(
    script: str,
    live_server: LiveServer,
    live_agent: AgentProcess,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    publish_example(live_server, script, example_images[script])
    _, params, extra_artifacts = EXAMPLES[script]
    out = hq_cli(
        live_server,
        live_server.token("submitter"),
        "job",
        "submit",
        script,
        "--params-json",
        json.dumps(params),
        "-i",
        f"table={script}-data",
        "--json",
    )
    job_id = json.loads(out)["id"]
    client = live_server.client("viewer")
    job = wait_status(
        client, job_id, {"succeeded", "failed", "timed_out", "cancelled"}, timeout_s=180
    )
    assert job.status == "succeeded", (job.failure_reason, client.job_logs(job_id)[-2000:])
    assert job.exit_code == 0
    result = client.job_result(job_id)
    assert result.metrics and all(isinstance(v, int | float) for v in result.metrics.values())
    assert result.tables and all(rows for rows in result.tables.values())
    assert result.charts
    artifacts = {a.path: a for a in client.list_artifacts(job_id)}
    assert {"results.json", *extra_artifacts} <= set(artifacts)
    local = live_agent.work_dir / "downloaded-results.json"
    client.download_artifact(job_id, "results.json", local)
    assert json.loads(local.read_text())["metrics"] == pytest.approx(script_metrics(result.metrics))


def test_linear_fit_sweep_of_six_points_gives_six_rows(
    live_server: LiveServer, live_agent: AgentProcess, example_images: dict[str, imaging.BuiltImage]
) -> None:
    publish_example(live_server, "linear-fit", example_images["linear-fit"])
    client = live_server.client("submitter")
    alphas = [0.0, 0.1, 0.3, 1.0, 3.0, 10.0]
    sweep = client.submit_sweep(
        script="linear-fit",
        params={"target": "progression"},
        grid={"alpha": alphas},
        inputs={"table": "linear-fit-data"},
    )
    assert sweep.total == 6
    jobs = client.list_jobs(sweep=sweep.id, limit=50).items
    for job in jobs:
        done = wait_status(
            client, job.id, {"succeeded", "failed", "timed_out", "cancelled"}, timeout_s=240
        )
        assert done.status == "succeeded", done.failure_reason
    table = client.sweep_results(sweep.id)
    assert len(table.rows) == 6
    assert sorted(row["alpha"] for row in table.rows) == alphas
    assert all(isinstance(row.get("r2"), float) for row in table.rows), table.columns
