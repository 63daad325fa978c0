"""Schemathesis over the whole OpenAPI, against a real server on SQLite and on PostgreSQL, as
admin: no 5xx, every status documented, every error in the documented shape.

A bounded, reproducible run: a fixed seed, a few examples per operation, the coverage and fuzzing
phases, long polls cut short (schemathesis_hooks.py). Revoking tokens runs on its own, last:
fuzzing it can revoke the very admin token the run uses (when another admin token exists, which
fuzzing ``POST /tokens`` makes), and every later request would be a 401.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import ServerFactory

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,"
CHECKS += "content_type_conformance"
REVOKE = r"/revoke$"
RUN_SECONDS = 480  # a run takes 90-120 s alone, twice that beside another test worker
ROOT = str(Path(__file__).resolve().parents[2])


def schemathesis(url: str, token: str, report: Path, *filters: str) -> tuple[int, str]:
    """One ``st run``; (exit code, its output). It runs in the report's folder: schemathesis
    keeps a cache in ./.schemathesis, which would otherwise land in the checkout."""
    report.mkdir(parents=True)
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "5",
        "--seed",
        "16",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--no-color",
        "--report",
        "ndjson",
        "--report-dir",
        str(report),
        *filters,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "PYTHONPATH": ROOT}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_SECONDS, env=env, cwd=report
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.timeout(2 * RUN_SECONDS)
@pytest.mark.parametrize("db", DB_KINDS)
def test_the_api_answers_as_its_openapi_says(
    server_factory: ServerFactory, db: str, tmp_path: Path
) -> None:
    server = server_factory(db=db)
    start = time.monotonic()
    code, out = schemathesis(
        server.url, server.admin_token, tmp_path / "main", "--exclude-path-regex", REVOKE
    )
    assert code == 0, out[-12000:]
    code, out = schemathesis(
        server.url, server.admin_token, tmp_path / "revoke", "--include-path-regex", REVOKE
    )
    assert code == 0, out[-12000:]
    assert "Traceback" not in server.log_path.read_text()
    print(f"schemathesis on {db}: {time.monotonic() - start:.0f} s")
