"""`hq script init` end to end: a stand-in script (unchanged) -> a draft hq.yaml -> `hq script
build --check` -> a real image -> a real job on a real agent whose argv is what the draft says.

csv_stats (argparse, standard library only: required flags, defaults, choices, an input and an
output) passes on today's manifest. sk_bench (scikit-learn's benchmark style: nargs lists,
store_true, store_false, BooleanOptionalAction, append, an optional input) needs the command
forms of docs/manifest.md, so it waits on h14-cmd (hq/schemas/command.py) and is skipped until
that is merged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.agent import AgentFactory, script_metrics, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STAND_INS = Path(__file__).resolve().parents[1] / "scripts"
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
HAS_FORMS = importlib.util.find_spec("hq.schemas.command") is not None


def hq_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hq", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def init_build_publish(tmp_path: Path, server: LiveServer, stand_in: str, script: str) -> Path:
    """Copy the stand-in, run `hq script init` on it, check, build and publish the draft."""
    folder = tmp_path / stand_in
    shutil.copytree(STAND_INS / stand_in, folder, ignore=shutil.ignore_patterns("hq.yaml"))
    before = (folder / script).read_bytes()
    report = json.loads(hq_cli("script", "init", str(folder / script), "--json"))
    assert report["read_by"] == "run", report
    assert report["problems"] is None, report["problems"]
    assert (folder / script).read_bytes() == before  # the script itself is never changed
    assert "valid manifest" in hq_cli("script", "build", "--check", str(folder))
    name = yaml.safe_load((folder / "hq.yaml").read_text())["name"]
    ref = f"hq-test/{name}:h14-init"
    hq_cli("script", "build", str(folder), "--tag", ref, "--quiet")
    token = {"HQ_URL": server.url, "HQ_TOKEN": server.token("publisher")}
    hq_cli("script", "publish", ref, "--quiet", env=token)
    return folder


def run_job(server: LiveServer, script: str, **submit: Any) -> tuple[str, Any]:
    client = server.client("submitter")
    job = client.submit_job(script=script, **submit)
    done = wait_status(client, job.id, ENDED, timeout_s=240)
    assert done.status == "succeeded", (done.failure_reason, client.job_logs(job.id)[-3000:])
    return job.id, client


def test_csv_stats_draft_builds_and_runs_with_the_right_argv(
    tmp_path: Path,
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
) -> None:
    folder = init_build_publish(tmp_path, sqlite_server, "csv_stats", "csv_stats.py")
    manifest = yaml.safe_load((folder / "hq.yaml").read_text())
    assert manifest["inputs"] == {
        "input": {"description": "CSV file with a header row", "required": True}
    }
    assert not (folder / "requirements.txt").exists()  # standard library only
    table = tmp_path / "ages.csv"
    table.write_text("name,age\na,10\nb,20\nc,40\n")
    sqlite_server.client("submitter").upload_dataset(name="ages", path=table)
    hq_agents(sqlite_server)
    params = {"column": "age", "bins": 2, "scale": 0.5, "method": "median"}
    job_id, client = run_job(sqlite_server, "csv-stats", params=params, inputs={"input": "ages"})
    local = tmp_path / "stats.json"
    client.download_artifact(job_id, "stats.json", local)
    argv = [row["arg"] for row in json.loads(local.read_text())["tables"]["argv"]]
    assert argv == [
        "--input", "/hq/inputs/input/ages.csv", "--column", "age", "--bins", "2",
        "--scale", "0.5", "--method", "median", "--out", "/hq/outputs/stats.json",
    ]  # fmt: skip
    assert json.loads(local.read_text())["metrics"]["center"] == 10.0  # median of 5, 10, 20


@pytest.mark.skipif(not HAS_FORMS, reason="waits on h14-cmd: the manifest's command forms")
@pytest.mark.timeout(900)  # a first build pip-installs numpy, scikit-learn and pandas
def test_sk_bench_draft_with_switches_and_lists_runs_with_the_right_argv(
    tmp_path: Path,
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
) -> None:
    folder = init_build_publish(tmp_path, sqlite_server, "sk_bench", "sk_bench.py")
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("numpy==") and "scikit-learn" in requirements
    hq_agents(sqlite_server)
    params = {
        "estimators": ["ridge", "lasso"],
        "n_samples": [50, 80],
        "repeat": 1,
        "seed": 7,
        "plot": True,
        "warm_start": False,
        "fit_intercept": False,
        "tag": ["a", "b c"],
    }
    job_id, client = run_job(sqlite_server, "sk-bench", params=params)
    result = client.job_result(job_id)
    argv = [row["arg"] for row in result.tables["argv"]]
    assert argv == [
        "--target", "y", "--estimators", "ridge", "lasso", "--n-samples", "50", "80",
        "--n-features", "20", "--alpha", "1.0", "--repeat", "1", "--seed", "7", "--plot",
        "--no-warm-start", "--no-fit-intercept", "--tag", "a", "--tag", "b c",
        "--output", "/hq/outputs/results.json",
    ]  # fmt: skip
    expected = {f"fit_s_{e}_{n}" for e in ("ridge", "lasso") for n in (50, 80)}
    assert set(script_metrics(result.metrics)) == expected
    assert result.charts
