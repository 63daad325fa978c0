"""Replicas started together: any number of ``hq server`` processes may start at the same moment
on an empty (or an old) PostgreSQL database, since the migrations run under an advisory lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hq.server import migrations
from tests.fixtures.db import create_pg_database, drop_pg_database
from tests.fixtures.server import ADMIN_TOKEN, free_port

REPLICAS = 2
ROUNDS = 10
STARTUP_TIMEOUT_SECONDS = 60.0


def _start(home: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    env = {
        **os.environ,
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": database_url,
        "HQ_STORAGE_URL": f"file://{home.parent / 'storage'}",
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hq", "server"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"a replica exited ({process.returncode}): {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"a replica did not answer within {STARTUP_TIMEOUT_SECONDS} s: {log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _replicas_start_together(tmp_path: Path, database_url: str) -> list[int]:
    started = [_start(tmp_path / f"replica-{i}", database_url) for i in range(REPLICAS)]
    try:
        return [_wait_healthy(process, url, log) for process, url, log in started]
    finally:
        for process, _, _ in started:
            _stop(process)


@pytest.mark.slow
def test_two_replicas_start_together_on_an_empty_database_ten_times(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        name, url = create_pg_database()
        try:
            codes = _replicas_start_together(tmp_path / f"round-{round_}", url)
        finally:
            drop_pg_database(name)
        assert codes == [200] * REPLICAS, f"round {round_}: {codes}"


@pytest.mark.slow
def test_two_replicas_start_together_on_an_old_database(tmp_path: Path) -> None:
    name, url = create_pg_database()
    try:
        migrations.upgrade(url, "0001")
        codes = _replicas_start_together(tmp_path, url)
        assert codes == [200] * REPLICAS
        assert migrations.current(url) == migrations.head()
    finally:
        drop_pg_database(name)
