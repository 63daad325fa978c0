"""Figures, metrics and measurements from scripts that know nothing of HQ, on the real engine.

The stand-in scripts of tests/scripts/ are built on the base image and run unchanged by a real
agent: ``plot_show`` only calls ``plt.show()`` and gets PNG artifacts; ``print_scores`` only
prints and gets metrics (and a series) from its manifest's ``metrics_from_logs``; ``alloc_mem``
holds 200 MiB and spins a second, which HQ's own measurements show.
"""

from __future__ import annotations

import struct
from pathlib import Path

import docker
import pytest

from agent.docker_runner import ContainerSpec, DockerRunner
from agent.usage import CGROUP_ROOT, UsageSampler
from hq import imaging
from hq.schemas.sweeps import SweepCreate
from tests.fixtures.agent import AgentFactory, AgentProcess, publish_inline
from tests.fixtures.docker import TEST_LABEL, BaseImage
from tests.fixtures.server import LiveServer
from tests.fixtures.standins import RUN_TIMEOUT_S, publish_standin, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
USAGE = {"hq_wall_s", "hq_cpu_s", "hq_peak_memory_mb"}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (right after the magic)."""
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def hq(sqlite_server: LiveServer, hq_agents: AgentFactory) -> LiveServer:
    hq_agents(sqlite_server, capacity=2)
    return sqlite_server


def test_each_figure_shown_or_left_open_becomes_a_png_artifact(
    hq: LiveServer,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    script = publish_standin(hq, docker_client, standin_images["plot_show"])
    client = hq.client("submitter")
    job_id = run(client, script)
    artifacts = {a.path: a for a in client.list_artifacts(job_id)}
    assert sorted(artifacts) == ["figures/figure-1.png", "figures/figure-2.png"]
    for path, artifact in artifacts.items():
        data = client.download_artifact(
            job_id, path, tmp_path / path.replace("/", "_")
        ).read_bytes()
        assert png_size(data) == (640, 480)  # matplotlib's default 6.4 x 4.8 in at 100 dpi
        assert 3_000 < len(data) == artifact.size < 500_000
    # figures still open when the script ends are saved too, after the shown ones
    job_id = run(client, script, {"leave_open": 2})
    paths = sorted(a.path for a in client.list_artifacts(job_id))
    assert paths == [f"figures/figure-{n}.png" for n in (1, 2, 3, 4)]
    assert "figures" not in (client.job_result(job_id).metrics or {})


def test_printed_scores_become_metrics_and_a_series_in_the_results_table(
    live_server: LiveServer,
    live_agent: AgentProcess,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
) -> None:
    script = publish_standin(live_server, docker_client, standin_images["print_scores"])
    client = live_server.client("submitter")
    sweep = client.submit_sweep(SweepCreate(script=script, grid={"seed": [1, 2, 3]}))
    done = client.wait_sweep(sweep.id, timeout_s=RUN_TIMEOUT_S)
    assert done.counts.get("succeeded") == 3, done.counts
    table = client.sweep_results(sweep.id)
    assert {"score", "loss"} <= set(table.metric_columns)
    assert set(table.metric_columns) >= USAGE  # measured for every job
    assert "epoch" not in table.metric_columns  # the x axis of the series, not a metric
    by_seed = {row["seed"]: row for row in table.rows}
    assert {s: by_seed[s]["score"] for s in (1, 2, 3)} == {1: 0.91, 2: 0.92, 3: 0.93}
    assert by_seed[2]["loss"] == round(1 / 7, 4)  # the last epoch's line
    job_id = by_seed[1]["job_id"]
    result = client.job_result(job_id)
    assert result.tables["loss"] == [
        {"epoch": e, "loss": round(1 / (e + 1), 4)} for e in range(1, 6)
    ]
    assert result.charts == [
        {
            "kind": "line",
            "table": "loss",
            "x": "epoch",
            "y": "loss",
            "title": "loss (from the logs)",
        }
    ]
    csv_header = client.results_csv(script=script).splitlines()[0].split(",")
    assert {"seed", "score", "loss", "hq_cpu_s"} <= set(csv_header)


def test_a_job_measures_its_wall_time_cpu_and_peak_memory(
    hq: LiveServer,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
    base_image: BaseImage,
) -> None:
    script = publish_standin(hq, docker_client, standin_images["alloc_mem"])
    client = hq.client("submitter")
    metrics = client.job_result(run(client, script, {"mb": 200, "cpu_s": 1.0})).metrics
    assert set(metrics) == USAGE  # it wrote no results.json and printed no pattern
    assert 200 < metrics["hq_peak_memory_mb"] < 512  # the block, under the 512m limit
    assert 0.95 <= metrics["hq_cpu_s"] <= metrics["hq_wall_s"] + 0.2
    assert 1.4 <= metrics["hq_wall_s"] < 60  # 1 s of CPU and 0.5 s of holding on
    small = client.job_result(run(client, script, {"mb": 0, "cpu_s": 0.3, "hold_s": 0.3})).metrics
    assert small["hq_peak_memory_mb"] < 100 and 0.25 <= small["hq_cpu_s"] < 0.9
    # an image with no venv (no site-packages to put the backend in) runs as before, without
    # MPLBACKEND, and still measures
    publish_inline(
        hq,
        base_image,
        name="no-venv",
        code="import os, time; print('MPLBACKEND=' + str(os.environ.get('MPLBACKEND'))); "
        "time.sleep(0.5)",
    )
    job_id = run(client, "no-venv")
    assert "MPLBACKEND=None" in client.job_logs(job_id)
    assert set(client.job_result(job_id).metrics) == USAGE


def test_an_image_with_a_venv_but_no_matplotlib_gets_the_backend_and_is_unaffected(
    hq: LiveServer,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
) -> None:
    built = standin_images["alloc_mem"]
    manifest = built.manifest.model_copy(
        update={
            "name": "env-probe",
            "command": [
                "python",
                "-c",
                "import os, importlib.util as u; print(os.environ['MPLBACKEND'], "
                "u.find_spec('hq_figures') is not None, u.find_spec('matplotlib'))",
            ],
            "params": {"type": "object", "properties": {}},
        }
    )
    digest = imaging.local_digest(client=docker_client, ref=built.ref)
    hq.client("publisher").publish_script_version(
        name="env-probe", image=built.ref, digest=digest, manifest=manifest
    )
    client = hq.client("submitter")
    job_id = run(client, "env-probe")
    assert "module://hq_figures True None" in client.job_logs(job_id)
    assert client.list_artifacts(job_id) == []


def python_spec(base_image: BaseImage, code: str, *, memory_mb: int) -> ContainerSpec:
    """A bare container running ``python3 -c code`` on the base image, for the sampler."""
    return ContainerSpec(
        image_id=base_image.image_id,
        command=["python3", "-c", code],
        mounts=[],
        labels=TEST_LABEL,
        memory_bytes=memory_mb * 1024**2,
        cpus=1,
        pids=64,
        uid=1000,
        gid=1000,
    )


@pytest.mark.parametrize("source", ["cgroup", "stats"])
def test_both_sources_measure_a_real_container_alike(
    source: str, docker_cleanup: docker.DockerClient, base_image: BaseImage, tmp_path: Path
) -> None:
    """The cgroup files (an agent on the host) and the stats API (an agent in a container, which
    cannot see them: here a cgroup root with nothing in it) both see 120 MiB and half a second
    of CPU."""
    runner = DockerRunner(client=docker_cleanup)
    code = (
        "import time; b = bytearray(b'1') * (120 * 2**20); t = time.process_time()\n"
        "while time.process_time() - t < 0.5: pass\n"
        "time.sleep(1.5)"
    )
    spec = python_spec(base_image, code, memory_mb=512)
    cid = runner.create(spec)
    root = CGROUP_ROOT if source == "cgroup" else tmp_path
    sampler = UsageSampler(runner, cid, cgroup_root=root)
    runner.start(cid)
    sampler.start()
    assert runner.wait(cid) == 0
    usage = sampler.stop()
    runner.remove(cid)
    assert sampler.source == source
    assert usage.peak_memory_bytes is not None and usage.peak_memory_bytes > 120 * 1024**2
    assert usage.cpu_s is not None and 0.45 <= usage.cpu_s < 2.5
    assert usage.wall_s is not None and 2.0 <= usage.wall_s < 30


def test_a_container_that_ends_at_once_is_still_measured(
    docker_cleanup: docker.DockerClient, base_image: BaseImage
) -> None:
    """The sampler is armed before the container starts (as the agent does), so a job that is
    over in tens of milliseconds, before any inspect of it could answer, still has its CPU and
    memory: the cgroup is found by the container's id the moment it exists."""
    runner = DockerRunner(client=docker_cleanup)
    spec = python_spec(base_image, "pass", memory_mb=256)
    for _ in range(5):
        cid = runner.create(spec)
        sampler = UsageSampler(runner, cid)
        sampler.start()
        runner.start(cid)
        assert runner.wait(cid) == 0
        usage = sampler.stop()
        runner.remove(cid)
        assert sampler.source == "cgroup"
        assert usage.cpu_s is not None and 0 < usage.cpu_s < 2
        assert usage.peak_memory_bytes is not None and usage.peak_memory_bytes > 1024**2
        assert usage.wall_s is not None and usage.wall_s < 10
