"""Unchanged scripts run by a real agent on the real Docker engine, called as their manifests say.

argv_echo (argparse: a positional, switches, an optional flag, an nargs list, a repeated flag)
and env_echo (configured by environment variables) are stand-ins under tests/scripts/; each
records what it was called with in its results.json, and each test asserts on what the script
saw. A job with raised memory and cpus gets those limits in its container's cgroup.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from hq import imaging
from hq.client import HQClient
from tests.fixtures.agent import AgentFactory, publish_inline, script_metrics, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STAND_INS = Path(__file__).resolve().parents[1] / "scripts"
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}


@pytest.fixture(scope="module")
def stand_in_images(
    docker_client: docker.DockerClient, base_image: BaseImage
) -> dict[str, imaging.BuiltImage]:
    return {
        name: imaging.build_script_image(
            client=docker_client, script_dir=STAND_INS / name, base_image=base_image.tag
        )
        for name in ("argv_echo", "env_echo")
    }


def _publish(server: LiveServer, image: imaging.BuiltImage) -> None:
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.token("publisher")}
    done = subprocess.run(
        [sys.executable, "-m", "hq", "script", "publish", image.ref, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _succeeded(client: HQClient, job_id: str) -> dict[str, Any]:
    job = wait_status(client, job_id, ENDED, timeout_s=180)
    assert job.status == "succeeded", (job.failure_reason, client.job_logs(job_id)[-2000:])
    return client.job_result(job_id).model_dump()


def _argv(client: HQClient, job_id: str) -> list[str]:
    rows = _succeeded(client, job_id)["tables"]["argv"]
    return [row["arg"] for row in sorted(rows, key=lambda r: r["i"])][1:]  # past argv[0]


def test_a_sweep_over_a_switch_and_an_optional_flag_gives_each_job_its_argv(
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    stand_in_images: dict[str, imaging.BuiltImage],
) -> None:
    _publish(sqlite_server, stand_in_images["argv_echo"])
    hq_agents(sqlite_server, capacity=2)
    client = sqlite_server.client("submitter")
    sweep = client.submit_sweep(
        script="argv-echo",
        params={"label": "run 1", "sizes": [1, 2, 3], "tags": ["a", "b c"]},
        grid={"plot": [True, False], "maxiter": [None, 7]},
    )
    assert sweep.total == 4
    tail = ["--size", "1", "2", "3", "--tag", "a", "--tag", "b c", "--results"]
    tail.append("/hq/outputs/results.json")
    expected = {
        (True, None): ["fast", "--label", "run 1", "--plot", *tail],
        (True, 7): ["fast", "--label", "run 1", "--maxiter", "7", "--plot", *tail],
        (False, None): ["fast", "--label", "run 1", *tail],
        (False, 7): ["fast", "--label", "run 1", "--maxiter", "7", *tail],
    }
    seen = {}
    for job in client.list_jobs(sweep=sweep.id, limit=10).items:
        seen[(job.params["plot"], job.params["maxiter"])] = _argv(client, job.id)
    assert seen == expected


def test_store_false_an_input_and_empty_lists_are_mapped_as_argparse_wants(
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    stand_in_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    _publish(sqlite_server, stand_in_images["argv_echo"])
    hq_agents(sqlite_server)
    client = sqlite_server.client("submitter")
    data = tmp_path / "points.csv"
    data.write_text("x,y\n1,2\n")
    client.upload_dataset(name="argv-points", path=data)
    job = client.submit_job(
        script="argv-echo",
        params={"mode": "slow", "label": "x", "cache": False, "sizes": [], "plot": False},
        inputs={"table": "argv-points"},
    )
    argv = _argv(client, job.id)
    assert argv == [
        "slow",
        "--label",
        "x",
        "--no-cache",
        "--data",
        "/hq/inputs/table/points.csv",
        "--results",
        "/hq/outputs/results.json",
    ]
    assert client.job_result(job.id).metrics["cache"] == 0


def _env_seen(client: HQClient, job_id: str) -> dict[str, str]:
    rows = _succeeded(client, job_id)["tables"]["env"]
    return {row["name"]: row["value"] for row in rows}


def test_the_env_script_sees_exactly_the_templated_variables(
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    stand_in_images: dict[str, imaging.BuiltImage],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    built = stand_in_images["env_echo"]
    _publish(sqlite_server, built)
    hq_agents(sqlite_server)
    client = sqlite_server.client("submitter")
    data = tmp_path / "points.csv"
    data.write_text("x\n1\n2\n")
    client.upload_dataset(name="env-points", path=data)
    full = client.submit_job(
        script="env-echo", params={"k": 3, "label": "a b"}, inputs={"table": "env-points"}
    )
    bare = client.submit_job(script="env-echo", params={"k": None})
    declared = set(built.manifest.env)
    image_env = {
        item.split("=", 1)[0]
        for item in docker_client.images.get(built.image_id).attrs["Config"]["Env"]
    }
    full_env, bare_env = _env_seen(client, full.id), _env_seen(client, bare.id)
    assert {k: v for k, v in full_env.items() if k in declared} == {
        "N_CLUSTERS": "3",
        "MODE": "fast",
        "DATA_PATH": "/hq/inputs/table/points.csv",
        "LABEL": "run-a b",
        "RESULTS_PATH": "/hq/outputs/results.json",
    }
    # k null, no label, no input: those variables are not set at all (not set to "")
    assert {k: v for k, v in bare_env.items() if k in declared} == {
        "MODE": "fast",
        "RESULTS_PATH": "/hq/outputs/results.json",
    }
    # nothing else reaches the script but the image's own variables and HQ's
    for env in (full_env, bare_env):
        others = set(env) - declared - image_env - {"HOSTNAME", "HOME"}
        assert all(
            k.startswith("HQ_") or k in {"TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "MPLBACKEND"}
            for k in others
        ), others
    assert script_metrics(client.job_result(full.id).metrics) == {
        "n_clusters": 3,
        "data_bytes": 6,
        "fast": 1,
    }


CGROUP_PROBE = """
import json, pathlib
root = pathlib.Path('/sys/fs/cgroup')
if (root / 'memory.max').exists():  # cgroup v2
    mem = (root / 'memory.max').read_text().split()[0]
    quota, period = (root / 'cpu.max').read_text().split()
else:  # cgroup v1
    mem = (root / 'memory/memory.limit_in_bytes').read_text().strip()
    quota = (root / 'cpu/cpu.cfs_quota_us').read_text().strip()
    period = (root / 'cpu/cpu.cfs_period_us').read_text().strip()
json.dump({'metrics': {'memory_max': int(mem), 'cpus': int(quota) / int(period)}},
          open('/hq/outputs/results.json', 'w'))
"""


def test_memory_and_cpus_raised_at_submit_reach_the_container(
    sqlite_server: LiveServer, hq_agents: AgentFactory, base_image: BaseImage
) -> None:
    publish_inline(
        sqlite_server,
        base_image,
        name="cgroup-probe",
        code=CGROUP_PROBE,
        resources={"memory": "64m", "max_memory": "192m", "cpus": 0.5, "max_cpus": 1.5},
    )
    hq_agents(sqlite_server)
    client = sqlite_server.client("submitter")
    raised = client.submit_job(script="cgroup-probe", resources={"memory": "192m", "cpus": 1.5})
    plain = client.submit_job(script="cgroup-probe")
    assert script_metrics(_succeeded(client, raised.id)["metrics"]) == {
        "memory_max": 192 * 1024**2,
        "cpus": 1.5,
    }
    assert script_metrics(_succeeded(client, plain.id)["metrics"]) == {
        "memory_max": 64 * 1024**2,
        "cpus": 0.5,
    }
    assert client.get_job(raised.id).resources["max_memory"] == "192m"
