"""Bad sweeps through the real API: a 422 naming the field and the point, no jobs and no sweep
written, and a sweep too big to expand refused before it is expanded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hq.client import HQClient
from tests.fixtures.api import (
    call,
    module_server,
    problem,
    publish_fake,
    table_counts,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {role: server.token(role) for role in ("submitter", "publisher", "viewer")}


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> HQClient:
    return server.client("admin")


# -- sweeps --------------------------------------------------------------------------------------


def test_a_sweep_whose_seventh_point_breaks_the_schema_creates_no_jobs_and_no_sweep(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/sweeps",
            json={"script": script, "grid": {"n": [1, 2, 3, 4, 5, 6, 500]}},
        ),
        422,
    )
    assert body["field"] == "params.n"
    assert "sweep point 6" in body["message"] and "500" in body["message"]
    assert "maximum of 100" in body["message"]
    assert table_counts(server) == before
    assert admin.list_jobs(script=script).items == []


def test_a_sweep_with_a_random_draw_out_of_schema_creates_nothing(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    spec = {"n": 20, "seed": 3, "params": {"n": {"low": 1, "high": 300, "integer": True}}}
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/sweeps",
            json={"script": script, "random": spec},
        ),
        422,
    )
    assert body["field"] == "params.n" and "maximum of 100" in body["message"]
    assert table_counts(server) == before


@pytest.mark.parametrize(
    ("sweep", "field", "says"),
    [
        (
            {"grid": {"n": [1, 2]}, "random": {"n": 2, "params": {"n": {"low": 1, "high": 5}}}},
            "random",
            "both in grid and random",
        ),
        (
            {"grid": {"n": list(range(1, 101)), "alpha": list(range(101))}},
            "grid",
            "expands to 10100 jobs",
        ),
        ({"grid": {"n": []}}, "grid", "grid.n must list at least one value"),
        (
            {"random": {"n": 2, "params": {"alpha": {"low": 5, "high": 1}}}},
            "random.params.alpha",
            "low <= high",
        ),
        ({"grid": {"n": [1]}, "repeats": 0}, "repeats", "greater than or equal to 1"),
    ],
)
def test_a_malformed_sweep_gets_422_naming_the_field(
    server: LiveServer,
    tokens: dict[str, str],
    admin: HQClient,
    sweep: dict[str, Any],
    field: str,
    says: str,
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = problem(
        call(
            server, tokens["submitter"], "POST", "/api/v1/sweeps", json={"script": script, **sweep}
        ),
        422,
    )
    assert body["field"] == field, body
    assert says in body["message"], body
    assert table_counts(server) == before


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"priority": 10**12}, "priority"), ({"timeout_s": 10**12}, "timeout_s")],
)
def test_out_of_range_sweep_numbers_get_422(
    server: LiveServer, tokens: dict[str, str], admin: HQClient, extra: dict[str, Any], field: str
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = {"script": script, "grid": {"n": [1]}, **extra}
    found = problem(call(server, tokens["submitter"], "POST", "/api/v1/sweeps", json=body), 422)
    assert found["field"] == field and "less than or equal to" in found["message"]
    assert table_counts(server) == before


def test_a_sweep_too_big_to_expand_is_refused_at_once_and_the_server_stays_up(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin, params={"type": "object"}).script
    before = table_counts(server)
    grid = {f"p{i}": list(range(100)) for i in range(6)}  # 10^12 points from a 3 KB body
    started = time.monotonic()
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/sweeps",
            json={"script": script, "grid": grid},
        ),
        422,
    )
    assert time.monotonic() - started < 2.0
    assert body["field"] == "grid" and "expands to 1000000000000 jobs" in body["message"]
    assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
    assert table_counts(server) == before
