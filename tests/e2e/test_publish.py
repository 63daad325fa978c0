"""`hq script push|publish|list` against a live HQ server and a real registry on 127.0.0.1:5000.

A published version pins the registry's digest (or, for an image that never left this host, its
image ID); the same tag with other content makes a new version; a broken manifest is refused with
a message that names the field, and nothing is registered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from hq import errors, imaging
from hq.schemas.jobs import JobCreate
from tests.fixtures.agent import AgentProcess, wait_status
from tests.fixtures.docker import SCRIPTS_DIR, BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def hq_cli(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `hq` command as CI would, with HQ_URL and HQ_TOKEN."""
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "hq", *args], env=env, capture_output=True, text=True, timeout=600
    )


def publish_json(server: LiveServer, token: str, image: str) -> dict[str, Any]:
    result = hq_cli(server, token, "script", "publish", image, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_publish_pins_the_registry_digest(
    live_server: LiveServer,
    docker_client: docker.DockerClient,
    registry: str,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    token = live_server.token("publisher")
    pushed = hq_cli(
        live_server,
        token,
        "script",
        "push",
        example_images["linear-fit"].ref,
        "--registry",
        registry,
        "--json",
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed " in pushed.stderr  # progress is shown on stderr
    push = json.loads(pushed.stdout)
    ref = push["ref"]
    registry_digest = docker_client.images.get_registry_data(ref).id
    assert push["digest"] == registry_digest

    version = publish_json(live_server, token, ref)
    assert version["digest"] == registry_digest
    assert version["image"] == ref
    assert version["script"] == "linear-fit"
    assert version["manifest"] == json.loads(
        example_images["linear-fit"].manifest.model_dump_json()
    )

    viewer = live_server.client(role="viewer")
    stored = viewer.get_script("linear-fit")
    assert [v.digest for v in stored.versions] == [registry_digest]
    assert stored.versions[0].image_ref == f"{registry}/hq/linear-fit@{registry_digest}"
    listed = hq_cli(live_server, live_server.token("viewer"), "script", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)] == ["linear-fit"]
    table = hq_cli(live_server, token, "script", "list")
    assert "linear-fit" in table.stdout


def test_local_only_image_is_published_by_its_image_id(
    live_server: LiveServer, example_images: dict[str, imaging.BuiltImage]
) -> None:
    built = example_images["describe"]
    version = publish_json(live_server, live_server.token("publisher"), built.ref)
    assert version["digest"] == built.image_id
    assert version["version"] == 1


def test_publishing_a_script_folder_builds_then_publishes(
    live_server: LiveServer, example_images: dict[str, imaging.BuiltImage]
) -> None:
    version = publish_json(
        live_server, live_server.token("publisher"), str(SCRIPTS_DIR / "cv-score")
    )
    assert version["script"] == "cv-score"
    assert version["digest"] == example_images["cv-score"].image_id


def test_same_tag_with_other_content_makes_a_new_version(
    live_server: LiveServer,
    docker_client: docker.DockerClient,
    registry: str,
    base_image: BaseImage,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    script_dir = tmp_path / "describe-copy"
    shutil.copytree(SCRIPTS_DIR / "describe", script_dir)
    manifest = script_dir / "hq.yaml"
    manifest.write_text(manifest.read_text().replace("name: describe", "name: describe-copy"))
    ref = f"{registry}/hq-test/describe-copy:1.0"
    token = live_server.token("publisher")
    digests = []
    try:
        for change in ("", "\n# tweak the output\n"):
            source = script_dir / "describe.py"
            source.write_text(source.read_text() + change)
            imaging.build_script_image(
                client=docker_client, script_dir=script_dir, ref=ref, base_image=base_image.tag
            )
            digest = imaging.push_image(client=docker_client, ref=ref)
            version = publish_json(live_server, token, ref)
            assert version["digest"] == digest
            digests.append(digest)
        assert digests[0] != digests[1]
        stored = live_server.client(role="viewer").get_script("describe-copy")
        versions = sorted(stored.versions, key=lambda v: v.version)
        assert [(v.version, v.digest) for v in versions] == [(1, digests[0]), (2, digests[1])]
        assert {v.image for v in versions} == {ref}
        assert stored.latest_version == 2
    finally:
        docker_client.images.remove(ref, force=True)


def test_broken_manifest_is_refused_and_registers_nothing(
    live_server: LiveServer,
    docker_client: docker.DockerClient,
    base_image: BaseImage,
    tmp_path: Path,
) -> None:
    publisher = live_server.client(role="publisher")
    broken: dict[str, Any] = {
        "name": "broken-one",
        "command": ["python", "x.py", "--n", "{params.n}"],
        "params": {"type": "object", "properties": {"m": {"type": "integer"}}},
    }
    with pytest.raises(errors.ValidationFailed) as info:
        publisher.publish_script_version(
            name="broken-one",
            image="hq-test/broken:1",
            digest="sha256:" + "0" * 64,
            manifest=broken,
        )
    assert "params.n" in info.value.message or "'n'" in info.value.message

    # an image whose label holds a broken manifest: the CLI says so and sends nothing
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image.tag}\n"
        f"LABEL {imaging.LABEL_MANIFEST}='{json.dumps({**broken, 'resources': {'cpus': 0}})}'\n"
    )
    ref = "hq-test/broken-label:latest"
    docker_client.images.build(
        path=str(tmp_path), tag=ref, network_mode="none", rm=True, forcerm=True
    )
    try:
        result = hq_cli(live_server, live_server.token("publisher"), "script", "publish", ref)
        assert result.returncode == 1
        assert "not a valid manifest" in result.stderr
        assert "resources.cpus" in result.stderr
    finally:
        docker_client.images.remove(ref, force=True)

    # a folder whose hq.yaml is broken: refused before anything is built
    script_dir = tmp_path / "broken-one"
    script_dir.mkdir()
    (script_dir / "hq.yaml").write_text("name: broken-one\ncomand: [python, x.py]\n")
    result = hq_cli(
        live_server, live_server.token("publisher"), "script", "publish", str(script_dir)
    )
    assert result.returncode == 1
    assert "comand: unknown key" in result.stderr
    assert "command: Field required" in result.stderr

    with pytest.raises(errors.NotFound):
        publisher.get_script("broken-one")
    assert live_server.client(role="viewer").list_scripts() == []


def test_publish_needs_a_publisher_token(
    live_server: LiveServer, example_images: dict[str, imaging.BuiltImage]
) -> None:
    result = hq_cli(
        live_server,
        live_server.token("viewer"),
        "script",
        "publish",
        example_images["describe"].ref,
    )
    assert result.returncode == 1
    assert "role" in result.stderr.lower() or "forbidden" in result.stderr.lower()
    assert live_server.client(role="viewer").list_scripts() == []


def test_published_examples_run_as_jobs_through_an_agent(
    live_server: LiveServer,
    live_agent: AgentProcess,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    """The whole path: publish (local digest), upload data, submit, an agent runs it hardened."""
    token = live_server.token("publisher")
    for built in example_images.values():
        publish_json(live_server, token, built.ref)
    admin = live_server.client()
    for dataset, path in {
        "diabetes": SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv",
        "iris": SCRIPTS_DIR / "cv-score" / "example" / "iris.csv",
        "wine": SCRIPTS_DIR / "describe" / "example" / "wine.csv",
    }.items():
        admin.upload_dataset(name=dataset, path=path)
    submitted = {
        name: admin.submit_job(JobCreate(script=name, params=params, inputs={"table": dataset})).id
        for name, params, dataset in (
            ("linear-fit", {"target": "progression", "features": ["bmi", "bp", "s5"]}, "diabetes"),
            ("cv-score", {"target": "species", "model": "knn", "folds": 3}, "iris"),
            ("describe", {"max_histograms": 2}, "wine"),
        )
    }
    for name, job_id in submitted.items():
        job = wait_status(admin, job_id, {"succeeded", "failed", "timed_out"}, timeout_s=180)
        assert job.status == "succeeded", (name, admin.job_logs(job_id), live_agent.log()[-2000:])
    fit = admin.job_result(submitted["linear-fit"])
    assert fit.metrics["n_terms"] == 3  # the features list reached the script via params.json
    terms = [row["term"] for row in fit.tables["coefficients"]]
    assert terms == ["(intercept)", "bmi", "bp", "s5"]
    artifacts = {a.path for a in admin.list_artifacts(submitted["linear-fit"])}
    assert {"results.json", "residuals.csv"} <= artifacts
    cv = admin.job_result(submitted["cv-score"])
    assert len(cv.tables["folds"]) == 3 and cv.tables["setup"][0]["model"] == "knn"
    described = admin.job_result(submitted["describe"])
    assert described.metrics["rows"] == 178
    assert sum(c["kind"] == "histogram" for c in described.charts) == 2
