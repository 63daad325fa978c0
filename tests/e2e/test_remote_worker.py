"""A worker on another host: `hq agent` in a network namespace of its own, reaching HQ and the
object store only through a veth link, with the public URLs a real second host is given.

HQ listens on the host end's address only (not loopback), and so does the S3 server (moto over
HTTP); the agent gets ``HQ_URL`` at that address, and HQ hands out presigned URLs for the S3
server's public endpoint at that address. A job that reads a dataset and writes artifacts runs
there end to end: the URLs HQ hands out work from another host. The namespace and the link are
removed in a ``finally``, also when a test fails (checked by a test that fails on purpose).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from hq import imaging
from hq.client import HQClient
from tests.fixtures.agent import wait_status
from tests.fixtures.db import create_pg_database, drop_pg_database
from tests.fixtures.docker import SCRIPTS_DIR, TEST_LABELS_CSV
from tests.fixtures.hosts import NetnsHost, netns_exists, netns_host, run_checked
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, _moto_command
from tests.fixtures.server import ADMIN_TOKEN, LiveServer, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

START_TIMEOUT_SECONDS = 30.0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def moto_on(addr: str, log: Path) -> Iterator[str]:
    """moto's S3 server listening on ``addr`` (not loopback); its endpoint URL."""
    port = free_port()
    command = _moto_command(port)
    command[command.index("127.0.0.1")] = addr
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    endpoint = f"http://{addr}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield endpoint
    finally:
        _stop(process)


@contextmanager
def hq_on(addr: str, home: Path, *, storage_url: str) -> Iterator[LiveServer]:
    """`hq server` on PostgreSQL, listening on ``addr`` only, public at that address."""
    pg_name, database_url = create_pg_database()
    port = free_port()
    url = f"http://{addr}:{port}"
    env = {
        **os.environ,
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": database_url,
        "HQ_STORAGE_URL": storage_url,
        "HQ_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "HQ_S3_SECRET_KEY": S3_SECRET_KEY,
        "HQ_HOST": addr,
        "HQ_PORT": str(port),
        "HQ_PUBLIC_URL": url,
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
    }
    server = LiveServer(
        url=url,
        admin_token=ADMIN_TOKEN,
        home=home,
        database_url=database_url,
        env=env,
        log_path=home / "server.log",
    )
    try:
        server.start()
        yield server
    finally:
        server.close_clients()
        server.stop()
        drop_pg_database(pg_name)


@contextmanager
def agent_on(host: NetnsHost, server: LiveServer, work_dir: Path) -> Iterator[Path]:
    """`hq agent` (from this venv) run inside ``host``'s namespace; its log file."""
    log = work_dir.parent / "agent.log"
    env = {
        **os.environ,
        "HQ_URL": server.url,
        "HQ_TOKEN": server.token("agent"),
        "HQ_AGENT_NAME": f"{host.name}-worker",
        "HQ_AGENT_WORK_DIR": str(work_dir),
        "HQ_AGENT_CONTAINER_LABELS": TEST_LABELS_CSV,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*host.exec_prefix(), sys.executable, "-m", "hq", "agent"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with HQClient(server.url, server.admin_token) as admin:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not any(a.name == env["HQ_AGENT_NAME"] for a in admin.list_agents()):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield log
    finally:
        _stop(process)


def _unique_name() -> str:
    return f"hqw{os.getpid()}{uuid.uuid4().hex[:3]}"


def _reaches(host: NetnsHost, url: str) -> bool:
    code = f"import urllib.request as u; u.urlopen({url!r}, timeout=3)"
    cmd = [*host.exec_prefix(), sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0


def test_agent_on_another_host_runs_a_job_through_the_public_urls(
    tmp_path: Path,
    example_images: dict[str, imaging.BuiltImage],
    docker_cleanup: object,
) -> None:
    name = _unique_name()
    with netns_host(name) as host:
        addr = host.link.host_addr
        with moto_on(addr, tmp_path / "moto.log") as s3:
            query = urlencode({"endpoint": s3, "public_endpoint": s3, "region": S3_REGION})
            storage_url = f"s3://hq-remote-{uuid.uuid4().hex[:8]}?{query}"
            home = tmp_path / "hq-home"
            home.mkdir()
            with hq_on(addr, home, storage_url=storage_url) as server:
                # The other host reaches HQ at the link address, never at this host's loopback.
                assert _reaches(host, f"{server.url}/api/v1/health")
                loopback = server.url.replace(addr, "127.0.0.1")
                assert not _reaches(host, f"{loopback}/api/v1/health")
                work = tmp_path / "agent-work"
                work.mkdir()
                with agent_on(host, server, work) as log:
                    _run_linear_fit(server, example_images["linear-fit"], s3, tmp_path, log)
    assert not netns_exists(name)
    assert run_checked(["ip", "link", "show", host.link.host_if], check=False) == ""


def _run_linear_fit(
    server: LiveServer, image: imaging.BuiltImage, s3: str, tmp_path: Path, log: Path
) -> None:
    publisher = server.client("publisher")
    publisher.publish_script_version(
        name="linear-fit", image=image.ref, digest=image.image_id, manifest=image.manifest
    )
    data = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
    publisher.upload_dataset(name="diabetes", path=data)
    client = server.client("submitter")
    job = client.submit_job(
        script="linear-fit", inputs={"table": "diabetes"}, params={"target": "progression"}
    )
    done = wait_status(client, job.id, {"succeeded", "failed", "timed_out"}, timeout_s=180)
    assert done.status == "succeeded", (done, log.read_text()[-3000:])
    assert client.job_result(job.id).metrics["n_obs"] == 442
    assert {"results.json", "residuals.csv"} <= {a.path for a in client.list_artifacts(job.id)}
    url = client.artifact_url(job.id, "residuals.csv")
    assert url.startswith(f"{s3}/"), url  # uploaded and served through the public endpoint
    got = client.download_artifact(job.id, "residuals.csv", tmp_path / "residuals.csv")
    header, *rows = got.read_text().splitlines()
    assert {"fitted", "residual"} <= set(header.split(",")), header
    assert len(rows) == 442


def test_netns_host_and_its_link_are_removed_when_the_test_fails() -> None:
    name = _unique_name()
    interface = ""
    with pytest.raises(RuntimeError, match="on purpose"), netns_host(name) as host:
        interface = host.link.host_if
        assert netns_exists(name)
        assert run_checked(["ip", "link", "show", interface]) != ""
        raise RuntimeError("a test that fails on purpose")
    assert not netns_exists(name)
    assert run_checked(["ip", "link", "show", interface], check=False) == ""
