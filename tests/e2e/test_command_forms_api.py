"""Command forms, ``env`` and resource ceilings through the real API (SQLite and PostgreSQL).

A manifest whose switch names a non-boolean param, whose list form names a non-array param, or
whose command is one string is refused at publish with a 422 that says what to write, and nothing
is registered; a job or sweep asking for more than a ceiling is a 422 naming it, and nothing is
queued; within the ceilings, the lease an agent claims carries the raised limits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hq import imaging
from hq.client import HQClient
from tests.fixtures.api import (
    FakeAgent,
    call,
    fake_digest,
    fake_manifest,
    module_server,
    problem,
    table_counts,
    unique_name,
    unique_queue,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

STAND_INS = Path(__file__).resolve().parents[1] / "scripts"
FLAGS = {"type": "object", "properties": {"plot": {"type": "string"}, "n": {"type": "integer"}}}


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def publisher(server: LiveServer) -> HQClient:
    return server.client("publisher")


def _publish_raw(server: LiveServer, name: str, manifest: dict[str, Any]) -> httpx.Response:
    body = {
        "image": f"127.0.0.1:5000/hq/{name}:1",
        "digest": fake_digest(name),
        "manifest": manifest,
    }
    return call(
        server, server.token("publisher"), "POST", f"/api/v1/scripts/{name}/versions", json=body
    )


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            ["python", "run.py", {"switch": "plot", "flag": "--plot"}],
            "switch 'plot' needs a boolean param: params.properties.plot has string; "
            "write type: boolean",
        ),
        (
            ["python", "run.py", {"list": "n", "flag": "--n"}],
            "list 'n' needs an array param: params.properties.n has integer; write type: array",
        ),
        (
            "python run.py --n '1 2'",
            'command must be a YAML list of arguments, e.g. ["python", "run.py", "--n", "1 2"]',
        ),
        (["python", {"switch": "plot", "flag": "--plot", "flags": "x"}], "unknown key"),
        (["python", {"lst": "n"}], "a list of strings (an optional group)"),
    ],
)
def test_a_bad_command_form_is_422_saying_what_to_write_and_registers_nothing(
    server: LiveServer, command: Any, says: str
) -> None:
    name = unique_name()
    manifest = {**fake_manifest(name), "command": command, "params": FLAGS}
    before = table_counts(server)
    body = problem(_publish_raw(server, name, manifest), 422)
    assert says in body["message"], body
    assert body["field"].startswith("manifest"), body
    assert table_counts(server) == before


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HQ_MODE": "x"}, "starts with HQ_"),
        ({"1X": "x"}, "must be letters, digits and '_'"),
        ({"N": "{params.nope}"}, "env.N uses {params.nope} but params.properties has no 'nope'"),
    ],
)
def test_a_bad_env_is_422_and_registers_nothing(
    server: LiveServer, env: dict[str, str], says: str
) -> None:
    name = unique_name()
    before = table_counts(server)
    body = problem(_publish_raw(server, name, {**fake_manifest(name), "env": env}), 422)
    assert says in body["message"], body
    assert table_counts(server) == before


def _publish_argv_echo(publisher: HQClient) -> str:
    """The argv_echo stand-in's real manifest under a fresh name (no image: nothing runs it)."""
    manifest = imaging.load_manifest(STAND_INS / "argv_echo").model_dump(mode="json")
    name = unique_name("argv")
    publisher.publish_script_version(
        name=name,
        image=f"127.0.0.1:5000/hq/{name}:1",
        digest=fake_digest(name),
        manifest={**manifest, "name": name},
    )
    return name


@pytest.mark.parametrize(
    ("resources", "field", "says"),
    [
        ({"memory": "1g"}, "resources.memory", "memory 1g is above this script's max_memory 256m"),
        ({"cpus": 4}, "resources.cpus", "cpus 4 is above this script's max_cpus 2"),
        (
            {"timeout_s": 601},
            "resources.timeout_s",
            "timeout_s 601 is above this script's max_timeout_s 600",
        ),
    ],
)
def test_a_job_or_sweep_above_a_ceiling_is_422_naming_it_and_queues_nothing(
    server: LiveServer, publisher: HQClient, resources: dict[str, Any], field: str, says: str
) -> None:
    name = _publish_argv_echo(publisher)
    token = server.token("submitter")
    before = table_counts(server)
    job = {"script": name, "params": {"label": "x"}, "resources": resources}
    body = problem(call(server, token, "POST", "/api/v1/jobs", json=job), 422)
    assert body["field"] == field and says in body["message"], body
    assert "raise resources.max_" in body["message"], body
    sweep = {"script": name, "params": {"label": "x"}, "grid": {"plot": [True, False]}}
    body = problem(
        call(server, token, "POST", "/api/v1/sweeps", json={**sweep, "resources": resources}), 422
    )
    assert body["field"] == field and says in body["message"], body
    assert not body["message"].startswith("sweep point"), body
    assert table_counts(server) == before


def test_the_top_level_timeout_is_held_to_the_ceiling_too(
    server: LiveServer, publisher: HQClient
) -> None:
    name = _publish_argv_echo(publisher)
    before = table_counts(server)
    job = {"script": name, "params": {"label": "x"}, "timeout_s": 7200}
    body = problem(call(server, server.token("submitter"), "POST", "/api/v1/jobs", json=job), 422)
    assert body["field"] == "timeout_s" and "max_timeout_s 600" in body["message"], body
    assert table_counts(server) == before


def test_raised_resources_reach_the_lease_and_the_job(
    server: LiveServer, publisher: HQClient
) -> None:
    name = _publish_argv_echo(publisher)
    queue = unique_queue()
    agent = FakeAgent(server, queue=queue)
    submitter = server.client("submitter")
    raised = submitter.submit_job(
        script=name,
        params={"label": "x"},
        queue=queue,
        resources={"memory": "256m", "cpus": 2, "timeout_s": 300},
    )
    assert raised.timeout_s == 300
    assert raised.resources["memory"] == "256m" and raised.resources["cpus"] == 2
    lease = agent.claim_one()
    assert lease.job_id == raised.id and lease.timeout_s == 300
    assert lease.manifest.resources.memory_bytes == 256 * 1024**2
    assert lease.manifest.resources.cpus == 2
    lowered = submitter.submit_job(
        script=name, params={"label": "y"}, queue=queue, resources={"memory": "64m"}
    )
    assert lowered.resources["memory"] == "64m"  # lowering is always allowed
    plain = submitter.submit_job(script=name, params={"label": "z"}, queue=queue)
    assert plain.resources["memory"] == "128m" and plain.timeout_s == 120  # the manifest's


def test_cli_memory_and_cpus_options_raise_and_a_ceiling_exceeded_exits_nonzero(
    server: LiveServer, publisher: HQClient
) -> None:
    name = _publish_argv_echo(publisher)
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.token("submitter")}

    def hq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hq", *args], env=env, capture_output=True, text=True, timeout=60
        )

    done = hq("job", "submit", name, "-p", "label=x", "--memory", "256m", "--cpus", "1.5", "--json")
    assert done.returncode == 0, done.stderr
    job = server.client("viewer").get_job(done.stdout.split('"id": "')[1].split('"')[0])
    assert job.resources["memory"] == "256m" and job.resources["cpus"] == 1.5
    shown = hq("job", "show", job.id)
    assert "limits   memory 256m, cpus 1.5, timeout 120 s" in shown.stdout, shown
    before = table_counts(server)
    done = hq("sweep", "submit", name, "-p", "label=x", "-g", "maxiter=1,2", "--memory", "8g")
    assert done.returncode != 0
    assert "memory 8g is above this script's max_memory 256m" in done.stderr, done.stderr
    assert table_counts(server) == before
