"""How the agent runs a job's container, checked on the real engine through HQ.

`docker inspect` of a running job container shows every hardened setting; cancel kills within
2 s; a timeout ends as timed_out; an allocation past the memory limit ends as out-of-memory; a
symlink to /etc/passwd in the outputs is never uploaded; a bad results.json fails the job but
keeps its logs and artifacts; an image that is nowhere fails the job with the reason.
"""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

from tests.fixtures.agent import (
    AgentProcess,
    job_containers,
    publish_inline,
    wait_status,
)
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
SLEEPER = "import time, sys\nprint('sleeping', flush=True)\ntime.sleep(float(sys.argv[1]))"


def running_container(
    docker_client: docker.DockerClient, job_id: str, timeout_s: float = 30.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for seen in job_containers(docker_client, job_id):
            if seen.status == "running":
                return docker_client.containers.get(seen.id)
        time.sleep(0.05)
    raise AssertionError(f"no running container for job {job_id}")


def _tmpfs_options(attrs: dict[str, Any]) -> str:
    return str(attrs["HostConfig"]["Tmpfs"]["/tmp"])


def _mounts(attrs: dict[str, Any]) -> dict[str, bool]:
    return {m["Destination"]: bool(m["RW"]) for m in attrs["Mounts"]}


HARDENED: list[tuple[str, Any, Any]] = [
    # (setting, how to read it from `docker inspect`, what it must be)
    ("network none", lambda a: a["HostConfig"]["NetworkMode"], "none"),
    ("read-only root", lambda a: a["HostConfig"]["ReadonlyRootfs"], True),
    (
        "tmpfs /tmp owned by the script's user",
        lambda a: {"uid=1000", "gid=1000"} <= set(_tmpfs_options(a).split(",")),
        True,
    ),
    ("every capability dropped", lambda a: a["HostConfig"]["CapDrop"], ["ALL"]),
    ("no capability added", lambda a: a["HostConfig"]["CapAdd"], None),
    ("no-new-privileges", lambda a: a["HostConfig"]["SecurityOpt"], ["no-new-privileges"]),
    ("not privileged", lambda a: a["HostConfig"]["Privileged"], False),
    ("non-root user", lambda a: a["Config"]["User"], "1000:1000"),
    ("memory limit from the manifest", lambda a: a["HostConfig"]["Memory"], 300 * 1024**2),
    ("no swap beyond it", lambda a: a["HostConfig"]["MemorySwap"], 300 * 1024**2),
    ("CPU limit from the manifest", lambda a: a["HostConfig"]["NanoCpus"], 500_000_000),
    ("pids limit from the manifest", lambda a: a["HostConfig"]["PidsLimit"], 100),
    ("inputs read-only", lambda a: _mounts(a)["/hq/inputs/table/t.csv"], False),
    ("params read-only", lambda a: _mounts(a)["/hq/params.json"], False),
    ("outputs writable", lambda a: _mounts(a)["/hq/outputs"], True),
    ("no other mounts", lambda a: len(a["Mounts"]), 3),
    ("no published ports", lambda a: a["HostConfig"]["PortBindings"] or {}, {}),
    ("job label", lambda a: "hq.job" in a["Config"]["Labels"], True),
]


@pytest.fixture
def hardened_job(
    live_server: LiveServer,
    live_agent: AgentProcess,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    tmp_path: Any,
) -> dict[str, Any]:
    """A running job with an input; the `docker inspect` of its container."""
    publish_inline(
        live_server,
        base_image,
        name="hardened",
        code=SLEEPER,
        args=["30"],
        resources={"memory": "300m", "cpus": 0.5, "pids": 100},
        inputs={"table": {"required": True}},
    )
    data = tmp_path / "t.csv"
    data.write_text("x,y\n1,2\n")
    client = live_server.client("submitter")
    client.upload_dataset(name="hardened-data", path=data)
    job = client.submit_job(script="hardened", inputs={"table": "hardened-data"})
    container = running_container(docker_client, job.id)
    attrs = dict(container.attrs)
    client.cancel_job(job.id)
    return attrs


def test_running_job_container_is_hardened(hardened_job: dict[str, Any]) -> None:
    wrong = {
        setting: read(hardened_job)
        for setting, read, expected in HARDENED
        if read(hardened_job) != expected
    }
    assert wrong == {}


PROBE = """
import os, json, socket
checks = {"uid": os.getuid(), "gid": os.getgid()}
try:
    open("/etc/hq-probe", "w"); checks["root_writable"] = True
except OSError:
    checks["root_writable"] = False
open("/tmp/x", "w").write("ok"); checks["tmp_writable"] = True
try:
    open("/hq/inputs/table/t.csv", "a"); checks["input_writable"] = True
except OSError:
    checks["input_writable"] = False
try:
    socket.create_connection(("127.0.0.1", 80), timeout=1); checks["network"] = True
except OSError:
    checks["network"] = False
checks["interfaces"] = sorted(os.listdir("/sys/class/net"))
checks["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
json.dump({"metrics": {"uid": checks["uid"]}, "tables": {"checks": [
    {"k": k, "v": json.dumps(v)} for k, v in checks.items()]}},
    open("/hq/outputs/results.json", "w"))
"""


def test_job_sees_the_hardening_from_inside(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage, tmp_path: Any
) -> None:
    publish_inline(
        live_server, base_image, name="probe", code=PROBE, inputs={"table": {"required": True}}
    )
    data = tmp_path / "t.csv"
    data.write_text("x\n1\n")
    client = live_server.client("submitter")
    client.upload_dataset(name="probe-data", path=data)
    job = client.submit_job(script="probe", inputs={"table": "probe-data"})
    done = wait_status(client, job.id, ENDED)
    assert done.status == "succeeded", (done.failure_reason, client.job_logs(job.id))
    import json

    checks = {r["k"]: json.loads(r["v"]) for r in client.job_result(job.id).tables["checks"]}
    assert checks == {
        "uid": 1000,
        "gid": 1000,
        "root_writable": False,
        "tmp_writable": True,
        "input_writable": False,
        "network": False,
        "interfaces": ["lo"],
        "cap_eff": "0000000000000000",
    }


def test_cancel_kills_a_running_container_within_two_seconds(
    live_server: LiveServer,
    live_agent: AgentProcess,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    publish_inline(live_server, base_image, name="sleeper", code=SLEEPER, args=["60"])
    client = live_server.client("submitter")
    job = client.submit_job(script="sleeper")
    container = running_container(docker_client, job.id)
    cancelled_at = time.monotonic()
    client.cancel_job(job.id)
    while True:
        try:
            container.reload()
        except docker.errors.NotFound:  # already stopped and removed by the agent
            break
        if container.status != "running":
            break
        assert time.monotonic() - cancelled_at < 2.0, "the container still runs 2 s after cancel"
        time.sleep(0.02)
    assert time.monotonic() - cancelled_at < 2.0
    done = wait_status(client, job.id, ENDED)
    assert done.status == "cancelled"
    assert "sleeping" in client.job_logs(job.id)


def test_timeout_kills_the_container_and_ends_timed_out(
    live_server: LiveServer,
    live_agent: AgentProcess,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    publish_inline(
        live_server, base_image, name="slow", code=SLEEPER, args=["60"], resources={"timeout_s": 2}
    )
    client = live_server.client("submitter")
    started = time.monotonic()
    job = client.submit_job(script="slow")
    done = wait_status(client, job.id, ENDED, timeout_s=30)
    assert done.status == "timed_out", (done.failure_reason, client.job_logs(job.id))
    assert done.failure_reason == "timeout"
    assert time.monotonic() - started < 15
    assert not [c for c in job_containers(docker_client, job.id) if c.status == "running"]


HOG = "x = []\nwhile True:\n    x.append(b'\\x01' * (16 * 1024 * 1024))\n"


def test_allocating_past_the_memory_limit_fails_as_out_of_memory(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    publish_inline(live_server, base_image, name="hog", code=HOG, resources={"memory": "64m"})
    client = live_server.client("submitter")
    job = client.submit_job(script="hog")
    done = wait_status(client, job.id, ENDED)
    assert done.status == "failed"
    assert done.failure_reason == "out-of-memory"
    assert done.exit_code == 137


SYMLINKER = """
import os, json
os.symlink("/etc/passwd", "/hq/outputs/passwd")
os.makedirs("/hq/outputs/sub")
os.symlink("/etc", "/hq/outputs/etc-dir")
os.symlink("/etc/passwd", "/hq/outputs/sub/passwd")
open("/hq/outputs/sub/real.txt", "w").write("mine")
os.mkfifo("/hq/outputs/fifo")
json.dump({"metrics": {"ok": 1}}, open("/hq/outputs/results.json", "w"))
"""


def test_symlinks_in_outputs_are_never_uploaded(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    publish_inline(live_server, base_image, name="symlinker", code=SYMLINKER)
    client = live_server.client("submitter")
    job = client.submit_job(script="symlinker")
    done = wait_status(client, job.id, ENDED)
    assert done.status == "succeeded", done.failure_reason
    assert {a.path for a in client.list_artifacts(job.id)} == {"results.json", "sub/real.txt"}
    logs = client.job_logs(job.id)
    assert "passwd: a symlink (never followed)" in logs
    assert "root:x:0:0" not in logs


def test_invalid_results_json_fails_the_job_but_keeps_logs_and_artifacts(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    code = (
        "print('made a table')\nopen('/hq/outputs/t.csv','w').write('a\\n1\\n')\n"
        "open('/hq/outputs/results.json','w').write('{\"metrics\": {\"r2\": \"high\"}}')"
    )
    publish_inline(live_server, base_image, name="badresults", code=code)
    client = live_server.client("submitter")
    job = client.submit_job(script="badresults")
    done = wait_status(client, job.id, ENDED)
    assert done.status == "failed"
    assert done.failure_reason is not None
    assert done.failure_reason.startswith("invalid results.json: metrics.r2")
    assert "made a table" in client.job_logs(job.id)
    assert {a.path for a in client.list_artifacts(job.id)} == {"results.json", "t.csv"}


def test_a_script_failing_reports_its_exit_code(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    publish_inline(
        live_server,
        base_image,
        name="exit3",
        code="import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)",
    )
    client = live_server.client("submitter")
    job = client.submit_job(script="exit3", max_attempts=1)
    done = wait_status(client, job.id, ENDED)
    assert (done.status, done.exit_code, done.failure_reason) == ("failed", 3, "exit code 3")
    assert "bad input" in client.job_logs(job.id)


def test_an_image_that_is_nowhere_fails_the_job_with_the_reason(
    live_server: LiveServer, live_agent: AgentProcess, registry: str
) -> None:
    manifest = {"name": "ghost", "command": ["true"]}
    live_server.client("publisher").publish_script_version(
        name="ghost",
        image=f"{registry}/hq-test/ghost:1",
        digest="sha256:" + "ab" * 32,
        manifest=manifest,
    )
    client = live_server.client("submitter")
    job = client.submit_job(script="ghost", max_attempts=1)
    done = wait_status(client, job.id, ENDED)
    assert done.status == "failed"
    assert done.failure_reason is not None
    assert done.failure_reason.startswith("image-unavailable: ")
    assert done.failure_kind == "image-unavailable"
