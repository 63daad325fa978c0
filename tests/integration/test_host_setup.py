"""images/host-setup.sh decides right, shown in --dry-run with the host's probes stubbed on PATH.

The stubs stand for this host's answers: ``id -u`` (root or not), ``dpkg-query`` (which packages
are installed), ``docker info`` (does the engine answer) and ``pg_isready``. Nothing is installed
or started: a dry run never acts, and a run that is not root stops before acting.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "images" / "host-setup.sh"
UP = ROOT / "tests" / "infra" / "up.sh"
ALL_PACKAGES = ["docker.io", "docker-registry", "debootstrap", "chromium", "chromium-driver"]


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _host(
    tmp_path: Path,
    *,
    uid: int = 0,
    installed: list[str] | None = None,
    engine: bool = True,
    postgres: bool = True,
) -> dict[str, str]:
    """An environment whose PATH answers as a host in that state would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _stub(bin_dir, "id", f"echo {uid}")
    names = " ".join(ALL_PACKAGES if installed is None else installed)
    _stub(
        bin_dir,
        "dpkg-query",
        f'for a in "$@"; do for p in {names}; do [ "$p" = "$a" ] && '
        '{ echo "install ok installed"; exit 0; }; done; done; exit 1',
    )
    _stub(bin_dir, "docker", "exit 0" if engine else "exit 1")
    _stub(bin_dir, "pg_isready", "exit 0" if postgres else "exit 2")
    for forbidden in ("apt-get", "dockerd", "setsid", "pg_ctlcluster", "pg_createcluster"):
        _stub(bin_dir, forbidden, f"echo 'ACTED: {forbidden}' >&2; exit 99")
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HQ_SETUP_STATE": str(tmp_path / "state"),
        "HQ_TEST_STATE": str(tmp_path / "state"),
    }


def _run(
    env: dict[str, str], *args: str, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_engine_not_answering_means_it_would_start_dockerd(tmp_path: Path) -> None:
    result = _run(_host(tmp_path, engine=False), "run", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run; would run:" in result.stdout
    assert "setsid dockerd --bridge=none" in result.stdout
    assert "apt-get install" not in result.stdout
    assert "ACTED" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_missing_packages_would_be_installed_in_one_apt_call(tmp_path: Path) -> None:
    env = _host(tmp_path, installed=["docker.io", "docker-registry"], postgres=True)
    env["HQ_SETUP_DRY_RUN"] = "1"
    result = _run(env, "test")
    assert result.returncode == 0, result.stderr
    assert "apt-get update && apt-get install -y debootstrap chromium chromium-driver" in (
        result.stdout
    )
    assert "dockerd" not in result.stdout


def test_not_root_prints_the_commands_and_exits_non_zero(tmp_path: Path) -> None:
    env = _host(tmp_path, uid=1000, installed=["docker.io"], engine=False)
    result = _run(env, "run")  # not even a dry run: it must stop before acting
    assert result.returncode == 1
    assert "not root" in result.stdout
    assert "    apt-get update && apt-get install -y debootstrap\n" in result.stdout
    assert "setsid dockerd --bridge=none" in result.stdout
    assert "nothing was changed" in result.stdout
    assert "ACTED" not in result.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("mode", ["run", "test"])
def test_all_present_does_nothing(tmp_path: Path, mode: str) -> None:
    result = _run(_host(tmp_path, uid=1000), mode)  # not root, and nothing needs root
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to do" in result.stdout
    assert "ACTED" not in result.stderr


def test_up_sh_uses_the_shared_script_in_test_mode(tmp_path: Path) -> None:
    result = _run(_host(tmp_path, postgres=False), "--dry-run", script=UP)
    assert result.returncode == 0, result.stderr
    assert "pg_ctlcluster --skip-systemctl-redirect" in result.stdout
    assert "chromium" not in result.stdout  # present: only what is missing is done


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    result = _run(_host(tmp_path), "deploy")
    assert result.returncode == 2
    assert "usage:" in result.stderr
