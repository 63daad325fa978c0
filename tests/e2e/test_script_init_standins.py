"""`hq script init` on every stand-in of tests/scripts/, as a new user would run it: each script
folder without its hq.yaml, unchanged; the draft validates (`hq script build --check`) and builds
as it is.
Then argv_echo's draft, not a hand-written manifest, is built and swept over a switch and an
optional flag on a real agent, and every job's argv is what the script saw.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hq.schemas.manifest import Manifest
from tests.e2e.test_script_init import hq_cli, init_build_publish
from tests.fixtures.agent import AgentFactory, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STAND_INS = Path(__file__).resolve().parents[1] / "scripts"
SCRIPTS = {
    "argv_echo": "argv_echo.py",  # switches, an optional flag, nargs and append lists
    "env_echo": "env_echo.py",  # configured by its environment: no parser at all
    "plot_show": "plot.py",  # imports matplotlib, which HQ's own interpreter lacks
    "print_scores": "scores.py",
    "alloc_mem": "alloc.py",
}
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}


@pytest.mark.parametrize("stand_in", sorted(SCRIPTS))
def test_init_drafts_a_manifest_that_validates_and_builds_as_it_is(
    tmp_path: Path, stand_in: str, base_image: BaseImage
) -> None:
    folder = tmp_path / stand_in
    shutil.copytree(STAND_INS / stand_in, folder, ignore=shutil.ignore_patterns("hq.yaml"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report = json.loads(hq_cli("script", "init", str(folder / SCRIPTS[stand_in]), "--json"))
    assert report["problems"] is None, report
    assert "valid manifest" in hq_cli("script", "build", "--check", str(folder))
    Manifest.model_validate(yaml.safe_load((folder / "hq.yaml").read_text()))
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "hq.yaml"}
    assert after == before  # the script, its requirements: untouched, and nothing written
    name = yaml.safe_load((folder / "hq.yaml").read_text())["name"]
    built = json.loads(
        hq_cli("script", "build", str(folder), "--tag", f"hq-test/{name}:draft", "--json")
    )
    assert built["ref"] == f"hq-test/{name}:draft" and built["image_id"].startswith("sha256:")


def test_argv_echo_draft_sweeps_a_switch_and_an_optional_flag(
    tmp_path: Path,
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
) -> None:
    folder = init_build_publish(tmp_path, sqlite_server, "argv_echo", "argv_echo.py")
    assert "{switch: plot, flag: --plot}" in (folder / "hq.yaml").read_text()
    hq_agents(sqlite_server, capacity=2)
    client = sqlite_server.client("submitter")
    fixed = {"mode": "fast", "label": "demo"}
    sweep = client.submit_sweep(
        script="argv-echo", params=fixed, grid={"plot": [True, False], "maxiter": [5, 50]}
    )
    unset = client.submit_job(script="argv-echo", params={**fixed, "plot": True})
    seen: dict[str, list[str]] = {}
    jobs = [*client.list_jobs(sweep=sweep.id).items, unset]
    for job in jobs:
        done = wait_status(client, job.id, ENDED, timeout_s=240)
        assert done.status == "succeeded", (done.failure_reason, client.job_logs(job.id)[-2000:])
        local = tmp_path / f"{job.id}.json"
        client.download_artifact(job.id, "results", local)  # the draft's --results output
        seen[job.id] = [row["arg"] for row in json.loads(local.read_text())["tables"]["argv"]]
    assert len(seen) == 5
    for job in jobs:
        params = client.get_job(job.id).params
        expected = ["argv_echo.py", "fast", "--label", "demo"]
        if "maxiter" in params:
            expected += ["--maxiter", str(params["maxiter"])]
        if params["plot"]:
            expected.append("--plot")
        expected += ["--results", "/hq/outputs/results"]
        assert seen[job.id] == expected, (params, seen[job.id])
