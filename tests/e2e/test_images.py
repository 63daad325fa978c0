"""Scripts become images, on the real Docker engine and a real registry on 127.0.0.1:5000.

The base image from Debian packages, the example script images (manifest in a label, reuse
by content hash), hardened runs of each on its example data (results.json checked against
``hq.schemas.results.Results`` and against numbers recomputed here), push and pull by digest.
The publish tests (tests/e2e/test_publish.py) add the live HQ server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import numpy as np
import pandas as pd
import pytest

from hq import errors, imaging
from hq.schemas.manifest import PLACEHOLDER_RE
from hq.schemas.results import Results
from tests.fixtures.docker import SCRIPTS_DIR, TEST_LABEL, BaseImage, remove_test_containers
from tests.fixtures.run import machine_lock

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HARDENED_PIDS = 128


def render_command(
    command: list[str], *, inputs: dict[str, str], params: dict[str, Any]
) -> list[str]:
    """Substitute {inputs.x} and {params.x} the way the manifest promises."""

    def sub(match: re.Match[str]) -> str:
        kind, key = match.groups()
        return inputs[key] if kind == "inputs" else str(params[key])

    return [PLACEHOLDER_RE.sub(sub, part) for part in command]


def run_hardened(
    client: docker.DockerClient,
    *,
    image: str,
    manifest_command: list[str],
    inputs: dict[str, Path],
    params: dict[str, Any],
    workdir: Path,
) -> tuple[int, str, Path]:
    """Run like an agent does: no network, read-only root, no capabilities, user 1000:1000."""
    outputs = workdir / "outputs"
    outputs.mkdir()
    os.chown(outputs, 1000, 1000)
    params_file = workdir / "params.json"
    params_file.write_text(json.dumps(params))
    volumes = {
        str(path): {"bind": f"/hq/inputs/{name}/{path.name}", "mode": "ro"}
        for name, path in inputs.items()
    }
    volumes[str(params_file)] = {"bind": "/hq/params.json", "mode": "ro"}
    volumes[str(outputs)] = {"bind": "/hq/outputs", "mode": "rw"}
    command = render_command(
        manifest_command,
        inputs={name: f"/hq/inputs/{name}/{path.name}" for name, path in inputs.items()},
        params=params,
    )
    container = client.containers.run(
        image,
        command,
        detach=True,
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        user="1000:1000",
        mem_limit="512m",
        pids_limit=HARDENED_PIDS,
        tmpfs={"/tmp": "rw,size=64m,uid=1000,gid=1000"},
        volumes=volumes,
        labels=TEST_LABEL,
    )
    try:
        status = container.wait(timeout=240)
        logs = container.logs().decode(errors="replace")
    finally:
        remove_test_containers(client)
    return int(status["StatusCode"]), logs, outputs


def load_results(outputs: Path) -> tuple[Results, dict[str, Any]]:
    raw = json.loads((outputs / "results.json").read_text())
    results = Results.model_validate(raw)
    results.check_tables_referenced()
    return results, raw


# -- the base image ----------------------------------------------------------------------------


def test_base_image_is_debian_python_with_user_hq(
    docker_cleanup: docker.DockerClient, base_image: BaseImage
) -> None:
    script = (
        "cat /etc/debian_version; id -un; id -u; id -g; "
        "python3 -c 'import ssl, sys, venv; print(sys.version_info[:2])'; "
        "python -m venv /tmp/v && /tmp/v/bin/python -m pip --version"
    )
    out = docker_cleanup.containers.run(
        base_image.tag,
        ["sh", "-c", script],
        user="hq",
        network_mode="none",
        remove=True,
        labels=TEST_LABEL,
    ).decode()
    debian, user, uid, gid, python, pip = out.strip().splitlines()
    assert debian.startswith("12.")
    assert (user, uid, gid) == ("hq", "1000", "1000")
    assert python == "(3, 11)"
    assert pip.startswith("pip ")
    assert docker_cleanup.images.get(base_image.tag).labels[imaging.LABEL_BASE] == "1"


def test_base_image_builds_from_debian_packages_and_is_reused_by_tag(
    docker_client: docker.DockerClient, base_image: BaseImage
) -> None:
    """Built by the session, or else to a scratch tag here: either way debootstrap ran."""
    tag = base_image.tag
    scratch = not base_image.built_now
    if scratch:
        tag = "hq-base:e2e-rebuild"
        started = time.monotonic()
        with machine_lock("base-image"):  # the build's rootfs tag is one per machine
            image, built = imaging.build_base_image(client=docker_client, tag=tag, force=True)
        assert built
        assert time.monotonic() - started < 300
        assert image.labels[imaging.LABEL_BASE] == "1"
        assert image.attrs["Config"]["WorkingDir"] == "/home/hq"
    try:
        again, built_again = imaging.build_base_image(client=docker_client, tag=tag)
        assert not built_again
        assert again.id == docker_client.images.get(tag).id
    finally:
        if scratch:
            docker_client.images.remove(tag, noprune=False)


# -- script images -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ("linear-fit", "cv-score", "describe", "clean"))
def test_example_image_carries_its_manifest_and_runs_as_hq(
    docker_cleanup: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    name: str,
) -> None:
    built = example_images[name]
    image = docker_cleanup.images.get(built.ref)
    assert image.id == built.image_id
    assert image.labels[imaging.LABEL_SCRIPT] == name
    assert image.labels[imaging.LABEL_CONTEXT_SHA] == built.context_sha256
    manifest = imaging.manifest_from_image(image)
    assert manifest == imaging.load_manifest(SCRIPTS_DIR / name)
    config = image.attrs["Config"]
    assert config["User"] == "1000:1000"
    assert any(e.startswith("PATH=/opt/venv/bin:") for e in config["Env"])
    # the host CA bundle stayed in the build stage; example data stayed out of the image
    out = docker_cleanup.containers.run(
        built.ref,
        ["sh", "-c", "find / -xdev -name 'hq-host-ca.crt' -o -name example -print; ls /app"],
        network_mode="none",
        remove=True,
        labels=TEST_LABEL,
    ).decode()
    listed = out.split()
    assert "hq-host-ca.crt" not in out and "example" not in listed
    assert "hq.yaml" in listed and "requirements.txt" in listed


def test_unchanged_scripts_are_not_rebuilt(
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    base_image: BaseImage,
) -> None:
    started = time.monotonic()
    for name, built in example_images.items():
        again = imaging.build_script_image(
            client=docker_client, script_dir=SCRIPTS_DIR / name, base_image=base_image.tag
        )
        assert again.reused
        assert again.image_id == built.image_id
    assert time.monotonic() - started < 10


def test_changed_script_is_rebuilt_and_then_reused(
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    base_image: BaseImage,
    tmp_path: Path,
) -> None:
    script_dir = tmp_path / "describe"
    shutil.copytree(SCRIPTS_DIR / "describe", script_dir)
    ref = "hq-test/describe-changed:latest"
    try:
        first = imaging.build_script_image(
            client=docker_client,
            script_dir=script_dir,
            ref=ref,
            base_image=base_image.tag,
            force=True,
        )
        assert not first.reused
        assert first.context_sha256 == example_images["describe"].context_sha256
        second = imaging.build_script_image(
            client=docker_client, script_dir=script_dir, ref=ref, base_image=base_image.tag
        )
        assert second.reused and second.image_id == first.image_id
        source = script_dir / "describe.py"
        source.write_text(source.read_text() + "\n# a change\n")
        third = imaging.build_script_image(
            client=docker_client, script_dir=script_dir, ref=ref, base_image=base_image.tag
        )
        assert not third.reused
        assert third.context_sha256 != first.context_sha256
        assert third.image_id != first.image_id
        image = docker_client.images.get(ref)
        assert image.labels[imaging.LABEL_CONTEXT_SHA] == third.context_sha256
    finally:
        docker_client.images.remove(ref, force=True)


def test_broken_manifest_fails_the_build_before_docker_is_touched(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    script_dir = tmp_path / "broken"
    shutil.copytree(SCRIPTS_DIR / "linear-fit", script_dir)
    manifest = script_dir / "hq.yaml"
    good = manifest.read_text()
    manifest.write_text(good.replace("{params.target}", "{params.response}"))
    with pytest.raises(errors.ValidationFailed, match=r"params\.properties has no 'response'"):
        imaging.build_script_image(client=docker_client, script_dir=script_dir, ref="hq-test/x")
    assert imaging.find_image(client=docker_client, ref="hq-test/x") is None
    manifest.write_text(good.replace("fit.py", "fitt.py"))
    with pytest.raises(errors.ValidationFailed, match=r"command runs 'fitt\.py'"):
        imaging.load_manifest(script_dir)


def test_cli_builds_reuse_existing_images_and_print_what_they_did(
    base_image: BaseImage, example_images: dict[str, imaging.BuiltImage], tmp_path: Path
) -> None:
    def hq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hq", *args], capture_output=True, text=True, timeout=300
        )

    base = hq("base-image", "build", "--json")
    assert base.returncode == 0, base.stderr
    assert json.loads(base.stdout) == {
        "tag": base_image.tag,
        "image_id": base_image.image_id,
        "built": False,
    }
    assert "reusing it" in base.stderr
    script = hq("script", "build", str(SCRIPTS_DIR / "linear-fit"), "--json")
    assert script.returncode == 0, script.stderr
    out = json.loads(script.stdout)
    assert (out["ref"], out["image_id"], out["reused"]) == (
        "hq/linear-fit:latest",
        example_images["linear-fit"].image_id,
        True,
    )
    (tmp_path / "hq.yaml").write_text("name: x\ncommand: python\n")
    broken = hq("script", "build", str(tmp_path))
    assert broken.returncode == 1
    assert "not a valid manifest" in broken.stderr and "  - name:" in broken.stderr
    assert "  - command: command must be a YAML list of arguments" in broken.stderr


def test_failed_build_step_is_reported_with_its_output(
    docker_client: docker.DockerClient, base_image: BaseImage, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "failing.Dockerfile"
    dockerfile.write_text(
        imaging.SCRIPT_DOCKERFILE.read_text()
        + 'RUN echo "the data folder is missing" >&2 && exit 3\n'
    )
    lines: list[str] = []
    with pytest.raises(errors.HQError) as info:
        imaging.build_script_image(
            client=docker_client,
            script_dir=SCRIPTS_DIR / "describe",
            ref="hq-test/failing:1",
            base_image=base_image.tag,
            dockerfile=dockerfile,
            on_line=lines.append,
        )
    assert "docker build failed" in info.value.message
    assert "returned a non-zero code: 3" in info.value.message
    assert "the data folder is missing" in info.value.message
    assert any(line.startswith("Step ") for line in lines)  # progress was streamed
    assert imaging.find_image(client=docker_client, ref="hq-test/failing:1") is None


# -- hardened runs on the example data ---------------------------------------------------------


def test_linear_fit_runs_hardened_and_matches_numpy_ols(
    docker_cleanup: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    data = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
    built = example_images["linear-fit"]
    code, logs, outputs = run_hardened(
        docker_cleanup,
        image=built.ref,
        manifest_command=built.manifest.command,
        inputs={"table": data},
        params={"target": "progression"},
        workdir=tmp_path,
    )
    assert code == 0, logs
    results, _ = load_results(outputs)
    frame = pd.read_csv(data)
    y = frame.pop("progression").to_numpy(float)
    design = np.column_stack([np.ones(len(y)), frame.to_numpy(float)])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    r2 = 1 - residuals @ residuals / ((y - y.mean()) @ (y - y.mean()))
    assert results.metrics["r2"] == pytest.approx(r2, rel=1e-9)
    assert results.metrics["rmse"] == pytest.approx(np.sqrt(np.mean(residuals**2)), rel=1e-9)
    assert results.metrics["n_obs"] == len(y) and isinstance(results.metrics["n_obs"], int)
    estimates = {row["term"]: row["estimate"] for row in results.tables["coefficients"]}
    assert estimates["(intercept)"] == pytest.approx(beta[0], rel=1e-6)
    assert estimates["bmi"] == pytest.approx(beta[1 + list(frame.columns).index("bmi")], rel=1e-6)
    assert len(results.tables["residuals"]) == len(y)
    kinds = {(c["kind"], c.get("x"), c.get("y")) for c in results.charts}
    assert ("scatter", "fitted", "residual") in kinds and ("scatter", "actual", "fitted") in kinds
    residual_csv = pd.read_csv(outputs / "residuals.csv")
    assert len(residual_csv) == len(y)
    assert (outputs / "results.json").stat().st_uid == 1000


@pytest.mark.parametrize(
    ("dataset", "params", "task"),
    [
        (
            "iris.csv",
            {"target": "species", "model": "logistic", "folds": 5, "seed": 0},
            "classification",
        ),
        (
            "diabetes.csv",
            {"target": "progression", "model": "ridge", "folds": 4, "seed": 3},
            "regression",
        ),
    ],
)
def test_cv_score_runs_hardened_and_reports_each_fold(
    docker_cleanup: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
    dataset: str,
    params: dict[str, Any],
    task: str,
) -> None:
    built = example_images["cv-score"]
    code, logs, outputs = run_hardened(
        docker_cleanup,
        image=built.ref,
        manifest_command=built.manifest.command,
        inputs={"table": SCRIPTS_DIR / "cv-score" / "example" / dataset},
        params=params,
        workdir=tmp_path,
    )
    assert code == 0, logs
    results, _ = load_results(outputs)
    folds = results.tables["folds"]
    assert [row["fold"] for row in folds] == list(range(1, params["folds"] + 1))
    scores = np.array([row["score"] for row in folds])
    assert results.metrics["mean_score"] == pytest.approx(scores.mean())
    assert results.metrics["std_score"] == pytest.approx(scores.std(ddof=1))
    assert results.tables["setup"][0]["task"] == task
    if task == "classification":
        assert np.all((scores >= 0) & (scores <= 1))
    assert any(c["kind"] == "box" and c["y"] == "score" for c in results.charts)


def test_describe_runs_hardened_and_summarises_every_column(
    docker_cleanup: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    data = SCRIPTS_DIR / "describe" / "example" / "wine.csv"
    built = example_images["describe"]
    code, logs, outputs = run_hardened(
        docker_cleanup,
        image=built.ref,
        manifest_command=built.manifest.command,
        inputs={"table": data},
        params={"max_histograms": 5},
        workdir=tmp_path,
    )
    assert code == 0, logs
    results, _ = load_results(outputs)
    frame = pd.read_csv(data)
    numeric = frame.select_dtypes("number")
    assert results.metrics["rows"] == len(frame)
    assert results.metrics["numeric_columns"] == numeric.shape[1]
    assert all(isinstance(results.metrics[k], int) for k in ("rows", "columns", "missing_cells"))
    summary = {row["column"]: row for row in results.tables["summary"]}
    assert set(summary) == set(frame.columns)
    for column in numeric.columns:
        assert summary[column]["mean"] == pytest.approx(numeric[column].mean())
    corr = numeric.corr().abs().to_numpy().copy()
    np.fill_diagonal(corr, 0)
    assert results.metrics["max_abs_correlation"] == pytest.approx(corr.max())
    histograms = [c for c in results.charts if c["kind"] == "histogram"]
    assert len(histograms) == 5
    assert (outputs / "summary.csv").is_file()


def test_script_error_exits_nonzero_with_a_readable_message(
    docker_cleanup: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
    tmp_path: Path,
) -> None:
    built = example_images["linear-fit"]
    code, logs, outputs = run_hardened(
        docker_cleanup,
        image=built.ref,
        manifest_command=built.manifest.command,
        inputs={"table": SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"},
        params={"target": "no_such_column"},
        workdir=tmp_path,
    )
    assert code != 0
    assert "target column 'no_such_column' is not in the data" in logs
    assert not (outputs / "results.json").exists()


# -- registry ----------------------------------------------------------------------------------


def test_example_images_push_to_the_registry_and_pull_back_by_digest(
    docker_client: docker.DockerClient,
    registry: str,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    lines: list[str] = []
    for name, built in example_images.items():
        ref = imaging.retag_for_registry(client=docker_client, ref=built.ref, registry=registry)
        assert ref == f"{registry}/hq/{name}:latest"
        digest = imaging.push_image(client=docker_client, ref=ref, on_line=lines.append)
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        assert docker_client.images.get_registry_data(ref).id == digest
        assert imaging.local_digest(client=docker_client, ref=ref) == digest
        pulled = docker_client.images.pull(f"{registry}/hq/{name}@{digest}")
        assert pulled.id == built.image_id
    assert any("Pushed" in line or "Layer already exists" in line for line in lines)
    assert any(line.startswith("pushed ") for line in lines)


def test_image_deleted_locally_is_pulled_back_by_digest(
    docker_client: docker.DockerClient, registry: str, base_image: BaseImage, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image.tag}\nLABEL hq.test-nonce={time.time_ns()}\n"
    )
    ref = f"{registry}/hq-test/pullback:latest"
    image, _ = docker_client.images.build(
        path=str(tmp_path), tag=ref, network_mode="none", rm=True, forcerm=True
    )
    digest = imaging.push_image(client=docker_client, ref=ref)
    docker_client.images.remove(ref, force=True)
    assert imaging.find_image(client=docker_client, ref=image.id) is None
    lines: list[str] = []
    pulled = imaging.pull_by_digest(
        client=docker_client, image=ref, digest=digest, on_line=lines.append
    )
    try:
        assert pulled.id == image.id
        assert f"{registry}/hq-test/pullback@{digest}" in pulled.attrs["RepoDigests"]
        assert lines and lines[0] == f"pulling {registry}/hq-test/pullback@{digest}"
        # found locally the second time: no pull
        again: list[str] = []
        imaging.pull_by_digest(client=docker_client, image=ref, digest=digest, on_line=again.append)
        assert again == []
    finally:
        docker_client.images.remove(pulled.id, force=True)


def test_local_digest_rule(
    docker_client: docker.DockerClient,
    registry: str,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    """Local-only images publish by image ID; a registry ref that was never pushed is refused."""
    built = example_images["describe"]
    assert imaging.local_digest(client=docker_client, ref=built.ref) == built.image_id
    found = imaging.find_local_by_digest(
        client=docker_client, image=built.ref, digest=built.image_id
    )
    assert found is not None and found.id == built.image_id
    unpushed = f"{registry}/hq-test/never-pushed:latest"
    docker_client.images.get(built.ref).tag(unpushed)
    try:
        with pytest.raises(errors.ValidationFailed, match="hq script push"):
            imaging.local_digest(client=docker_client, ref=unpushed)
    finally:
        docker_client.images.remove(unpushed)
