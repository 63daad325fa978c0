"""Bad input to jobs, listings and agents through the real API: a 4xx that names the field and the
fix, and nothing half-written (publishing: test_api_publish_errors.py; sweeps:
test_api_sweep_errors.py).

One server per database for the module (a low HQ_MAX_BODY_BYTES for the 413 tests); each test
publishes its own scripts, so tests do not see each other's rows except through table counts,
which are compared before and after within one test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from hq.client import HQClient
from tests.fixtures.api import (
    call,
    count_rows,
    module_server,
    problem,
    publish_fake,
    table_counts,
    unique_name,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(
        tmp_path_factory, db=request.param, env={"HQ_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    ) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {role: server.token(role) for role in ("submitter", "publisher", "viewer")}


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> HQClient:
    return server.client("admin")


# -- submissions ---------------------------------------------------------------------------------


def test_unknown_script_is_404_naming_the_script_and_the_published_ones(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    known = publish_fake(admin)
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": "no-such-script", "params": {"n": 1}},
        ),
        404,
    )
    assert body["field"] == "script"
    assert "no-such-script" in body["message"]
    assert known.script in body["message"]  # the fix: which scripts exist
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": f"{known.script}@7", "params": {"n": 1}},
        ),
        404,
    )
    assert body["field"] == "script" and "no version 7" in body["message"]
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": f"{known.script}@latest", "params": {"n": 1}},
        ),
        422,
    )
    assert body["field"] == "script" and "must be a number" in body["message"]
    assert table_counts(server) == before


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({}, "params.n", "'n' is a required property"),
        ({"n": 0}, "params.n", "less than the minimum of 1"),
        ({"n": 3, "alpha": "big"}, "params.alpha", "is not of type 'number'"),
        ({"n": 3, "mode": "turbo"}, "params.mode", "is not one of ['fast', 'slow']"),
        ({"n": 3, "bogus": 1}, "params", "'bogus' was unexpected"),
    ],
)
def test_params_that_break_the_schema_get_422_naming_the_field(
    server: LiveServer,
    tokens: dict[str, str],
    admin: HQClient,
    params: dict[str, Any],
    field: str,
    says: str,
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": script, "params": params},
        ),
        422,
    )
    assert body["field"] == field
    assert body["message"].startswith(field + ":")
    assert says in body["message"]
    assert table_counts(server) == before
    assert admin.list_jobs(script=script).items == []


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ({"parms": {"n": 1}}, "parms", "unknown key (check its spelling"),
        ({"priority": 5000}, "priority", "less than or equal to 1000"),
        ({"queue": "Not A Queue"}, "queue", "should match pattern"),
        ({"max_attempts": 0}, "max_attempts", "greater than or equal to 1"),
        ({"labels": "gpu"}, "labels", "valid list"),
    ],
)
def test_malformed_job_fields_get_422_naming_the_field(
    server: LiveServer,
    tokens: dict[str, str],
    admin: HQClient,
    extra: dict[str, Any],
    field: str,
    says: str,
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": script, "params": {"n": 1}, **extra},
        ),
        422,
    )
    assert body["field"] == field
    assert field in body["message"] and says in body["message"]
    assert table_counts(server) == before


def test_a_body_that_is_not_json_gets_422_saying_where(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    response = call(
        server,
        tokens["submitter"],
        "POST",
        "/api/v1/jobs",
        content=b'{"script": "x", ',
        headers={"Content-Type": "application/json"},
    )
    body = problem(response, 422)
    assert "field" not in body, body
    assert body["message"].startswith("the body is not valid JSON")
    assert "at line 1, column 17 (byte 16)" in body["message"]


def test_unknown_and_missing_inputs_get_422_naming_the_input(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin, inputs={"table": {"description": "CSV", "required": True}}).script
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={
                "script": script,
                "params": {"n": 1},
                "inputs": {"table": "iris", "tabel": "iris"},
            },
        ),
        422,
    )
    assert body["field"] == "inputs.tabel"
    assert "'tabel'" in body["message"] and "its inputs: table" in body["message"]
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": script, "params": {"n": 1}},
        ),
        422,
    )
    assert body["field"] == "inputs.table" and "required" in body["message"]
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            json={"script": script, "params": {"n": 1}, "inputs": {"table": "never-uploaded"}},
        ),
        404,
    )
    assert "never-uploaded" in body["message"] and "hq dataset upload" in body["message"]
    assert body["field"] == "inputs.table" and body["message"].startswith("inputs.table: ")
    assert table_counts(server) == before


def test_wait_and_idempotency_key_out_of_range_get_422(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            params={"wait": -1},
            json={"script": script, "params": {"n": 1}},
        ),
        422,
    )
    assert body["field"] == "wait"
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            headers={"Idempotency-Key": "k" * 300},
            json={"script": script, "params": {"n": 1}},
        ),
        422,
    )
    assert body["field"].lower() == "idempotency-key"
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            headers={"Idempotency-Key": ""},
            json={"script": script, "params": {"n": 1}},
        ),
        422,
    )
    assert body["field"].lower() == "idempotency-key" and "at least 1" in body["message"]
    assert table_counts(server) == before


def test_idempotency_key_reused_with_another_body_is_422_and_writes_nothing(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin).script
    key = unique_name("key")
    first = call(
        server,
        tokens["submitter"],
        "POST",
        "/api/v1/jobs",
        headers={"Idempotency-Key": key},
        json={"script": script, "params": {"n": 1}},
    )
    assert first.status_code == 201, first.text
    before = table_counts(server)
    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            headers={"Idempotency-Key": key},
            json={"script": script, "params": {"n": 2}},
        ),
        422,
    )
    assert body["code"] == "idempotency_mismatch"
    assert body["field"] == "Idempotency-Key" and "new key" in body["message"]
    assert table_counts(server) == before
    assert [j.id for j in admin.list_jobs(script=script).items] == [first.json()["id"]]


# -- listing -------------------------------------------------------------------------------------


def test_unknown_sort_key_and_status_get_422_listing_the_valid_ones(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    body = problem(
        call(server, tokens["viewer"], "GET", "/api/v1/jobs", params={"sort": "colour"}), 422
    )
    assert body["field"] == "sort"
    assert "'colour'" in body["message"] and "-created_at" in body["message"]
    body = problem(
        call(server, tokens["viewer"], "GET", "/api/v1/jobs", params={"status": "queued,done"}), 422
    )
    assert body["field"] == "status" and "'done'" in body["message"]
    assert "succeeded" in body["message"]
    body = problem(call(server, tokens["viewer"], "GET", "/api/v1/jobs", params={"limit": 0}), 422)
    assert body["field"] == "limit"


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("-created_at", "not a cursor!"),
        ("-created_at", _cursor([1, 2])),
        ("-created_at", _cursor(["-created_at", {"x": 1}, "id"])),
        ("-created_at", _cursor(["-created_at", "not-a-time", "id"])),
        ("-created_at", _cursor(["-created_at", {"t": "2026-01-01T00:00:00+00:00"}, 5])),
        ("priority", _cursor(["priority", "high", "id"])),
        ("priority", _cursor(["-created_at", {"t": "2026-01-01T00:00:00+00:00"}, "id"])),
        ("status", _cursor(["status", {"t": "2026-01-01T00:00:00+00:00"}, "id"])),
    ],
)
def test_a_bad_cursor_gets_400_saying_to_pass_next_cursor_unchanged(
    server: LiveServer, tokens: dict[str, str], sort: str, cursor: str
) -> None:
    body = problem(
        call(
            server, tokens["viewer"], "GET", "/api/v1/jobs", params={"sort": sort, "cursor": cursor}
        ),
        400,
    )
    assert body["field"] == "cursor"
    assert "cursor" in body["message"]


NAIVE_TIME = {"t": "2026-01-01T00:00:00"}  # no timezone: never in a cursor HQ made


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/jobs", {"cursor": _cursor(["-created_at", NAIVE_TIME, "id"])}),
        ("/api/v1/sweeps", {"cursor": _cursor(["-created_at", NAIVE_TIME, "id"])}),
        (
            "/api/v1/results",
            {"script": "fit", "cursor": _cursor(["created_at", NAIVE_TIME, "id"])},
        ),
    ],
)
def test_a_cursor_with_a_time_without_timezone_gets_400_not_500(
    server: LiveServer, tokens: dict[str, str], path: str, params: dict[str, str]
) -> None:
    body = problem(call(server, tokens["viewer"], "GET", path, params=params), 400)
    assert body["field"] == "cursor"


# -- body size -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_and_writes_nothing(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin, params={"type": "object"}).script
    before = table_counts(server)
    big = {"script": script, "params": {"blob": "x" * (MAX_BODY_BYTES + 10)}}
    body = problem(call(server, tokens["submitter"], "POST", "/api/v1/jobs", json=big), 413)
    assert body["code"] == "payload_too_large" and str(MAX_BODY_BYTES) in body["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        data = json.dumps(big).encode()
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    body = problem(
        call(
            server,
            tokens["submitter"],
            "POST",
            "/api/v1/jobs",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        ),
        413,
    )
    assert body["code"] == "payload_too_large" and str(MAX_BODY_BYTES) in body["message"]
    assert table_counts(server) == before
    small = call(
        server,
        tokens["submitter"],
        "POST",
        "/api/v1/jobs",
        json={"script": script, "params": {"blob": "x" * 1000}},
    )
    assert small.status_code == 201, small.text


# -- lookups and state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/jobs/{id}"),
        ("GET", "/api/v1/jobs/{id}/result"),
        ("GET", "/api/v1/jobs/{id}/logs"),
        ("POST", "/api/v1/jobs/{id}/cancel"),
        ("GET", "/api/v1/sweeps/{id}"),
        ("GET", "/api/v1/sweeps/{id}/results"),
    ],
)
def test_an_unknown_id_is_404_naming_it(server: LiveServer, method: str, path: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    body = problem(call(server, server.admin_token, method, path.format(id=missing)), 404)
    assert missing in body["message"]


def test_cancelling_a_finished_job_is_409_and_changes_nothing(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin).script
    with HQClient(server.url, tokens["submitter"]) as submitter:
        job = submitter.submit_job(script=script, params={"n": 1})
    assert admin.cancel_job(job.id).status == "cancelled"
    body = problem(call(server, tokens["submitter"], "POST", f"/api/v1/jobs/{job.id}/cancel"), 409)
    assert "already ended (cancelled)" in body["message"]
    assert admin.get_job(job.id).status == "cancelled"


def test_results_without_a_script_sweep_or_jobs_is_422(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    body = problem(call(server, tokens["viewer"], "GET", "/api/v1/results"), 422)
    assert body["field"] == "script" and "name a script" in body["message"]
    body = problem(
        call(
            server,
            tokens["viewer"],
            "GET",
            "/api/v1/results",
            params={"script": "x", "format": "xml"},
        ),
        422,
    )
    assert body["field"] == "format"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_params_get_422_naming_the_field(
    server: LiveServer, tokens: dict[str, str], admin: HQClient, number: str
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    raw = f'{{"script": "{script}", "params": {{"n": 1, "alpha": {number}}}}}'
    response = call(
        server,
        tokens["submitter"],
        "POST",
        "/api/v1/jobs",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    body = problem(response, 422)
    assert body["field"] == "params.alpha", body
    assert "not a finite number" in body["message"], body
    assert table_counts(server) == before


def test_a_job_submitted_while_no_agent_is_registered_says_so(
    tokens: dict[str, str], server: LiveServer, admin: HQClient
) -> None:
    # No test in this module registers an agent.
    job = admin.submit_job(script=publish_fake(admin).script, params={"n": 1})
    assert job.status == "queued"
    assert job.unschedulable_reason == "no live agent is registered: the job waits until one starts"


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ({"labels": ["x" * 129]}, "labels.0", "at most 128 characters"),
        ({"labels": [""]}, "labels.0", "at least 1 character"),
        ({"labels": ["gpu"] * 33}, "labels", "at most 32 items"),
    ],
)
def test_oversized_labels_get_422_for_jobs_and_sweeps(
    server: LiveServer,
    tokens: dict[str, str],
    admin: HQClient,
    extra: dict[str, Any],
    field: str,
    says: str,
) -> None:
    script = publish_fake(admin).script
    before = table_counts(server)
    for path, body in (
        ("/api/v1/jobs", {"script": script, "params": {"n": 1}, **extra}),
        ("/api/v1/sweeps", {"script": script, "grid": {"n": [1, 2]}, **extra}),
    ):
        found = problem(call(server, tokens["submitter"], "POST", path, json=body), 422)
        assert found["field"] == field and says in found["message"], found
    assert table_counts(server) == before


def test_agents_register_only_valid_queue_names_and_labels(server: LiveServer) -> None:
    token = server.token("agent")
    before = count_rows(server, "agents")
    for extra, field in (
        ({"queues": ["Bad Queue"]}, "queues.0"),
        ({"queues": []}, "queues"),
        ({"labels": ["x" * 129]}, "labels.0"),
    ):
        body = problem(
            call(server, token, "POST", "/api/v1/agents", json={"name": "a", **extra}), 422
        )
        assert body["field"] == field, body
    assert count_rows(server, "agents") == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/jobs", {"script": "{script}@99999999999999999999"}, 422, "script"),
        ("POST", "/api/v1/jobs", {"script": "{script}@0"}, 422, "script"),
        ("POST", "/api/v1/jobs", {"script": "{script}@\u00b2"}, 422, "script"),  # '²'.isdigit()
        ("GET", "/api/v1/datasets/iris/versions/99999999999999999999", None, 422, "version"),
        ("GET", "/api/v1/datasets/iris/versions/0/download", None, 422, "version"),
        ("GET", "/api/v1/datasets/iris/versions/2147483648/lineage", None, 422, "version"),
    ],
)
def test_version_numbers_beyond_32_bits_get_422_not_a_database_error(
    server: LiveServer,
    tokens: dict[str, str],
    admin: HQClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    field: str,
) -> None:
    if body is not None:
        body = {
            "script": body["script"].format(script=publish_fake(admin).script),
            "params": {"n": 1},
        }
    found = problem(call(server, tokens["submitter"], method, path, json=body), status)
    assert found["field"] == field, found


def test_a_dataset_input_version_beyond_32_bits_is_422(
    server: LiveServer, tokens: dict[str, str], admin: HQClient
) -> None:
    script = publish_fake(admin, inputs={"table": {"required": True}}).script
    for ref in ("iris@99999999999999999999", "iris@\u00b2"):
        body = {"script": script, "params": {"n": 1}, "inputs": {"table": ref}}
        found = problem(call(server, tokens["submitter"], "POST", "/api/v1/jobs", json=body), 422)
        assert "must be a number from 1" in found["message"], found
        assert found["field"] == "inputs.table", found


@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_a_listing_time_without_a_timezone_gets_422(
    server: LiveServer, tokens: dict[str, str], name: str
) -> None:
    response = call(
        server, tokens["viewer"], "GET", "/api/v1/jobs", params={name: "2026-01-01T00:00:00"}
    )
    body = problem(response, 422)
    assert body["field"] == name and "give a timezone" in body["message"]
    fine = call(
        server, tokens["viewer"], "GET", "/api/v1/jobs", params={name: "2026-01-01T00:00:00Z"}
    )
    assert fine.status_code == 200
