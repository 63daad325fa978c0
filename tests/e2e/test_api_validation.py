"""Bad input through the real API: a 4xx that names the field and the fix, and nothing half-written.

One server per database for the module (a low HQ_MAX_BODY_BYTES for the 413 tests); each test
publishes its own scripts, so tests do not see each other's rows except through table counts,
which are compared before and after within one test.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hq.client import HQClient
from tests.fixtures.api import (
    count_rows,
    fake_digest,
    fake_manifest,
    module_server,
    publish_fake,
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


def call(server: LiveServer, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error body, after checking the status and the error shape every 4xx shares."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict), body
    assert body["code"] and body["message"], body
    return body


def table_counts(server: LiveServer) -> dict[str, int]:
    return {
        t: count_rows(server, t)
        for t in ("jobs", "sweeps", "job_events", "job_labels", "scripts", "script_versions")
    }


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
        ({"parms": {"n": 1}}, "parms", "Extra inputs are not permitted"),
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
    assert "at character 16" in body["message"]


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


# -- publishing ----------------------------------------------------------------------------------


def _publish(server: LiveServer, token: str, name: str, **overrides: Any) -> httpx.Response:
    manifest = fake_manifest(name)
    manifest.update(overrides.pop("manifest", {}))
    body = {
        "image": f"127.0.0.1:5000/hq/{name}:1",
        "digest": fake_digest(name),
        "manifest": manifest,
        **overrides,
    }
    return call(server, token, "POST", f"/api/v1/scripts/{name}/versions", json=body)


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"manifest": {"command": []}}, "manifest.command", "at least 1 item"),
        (
            {"manifest": {"params": {"type": "object", "properties": {"n": {"type": "text"}}}}},
            "manifest.params",
            "not a valid JSON Schema",
        ),
        ({"manifest": {"params": {"type": "array"}}}, "manifest.params", "of type 'object'"),
        (
            {"manifest": {"command": ["python", "{params.nope}"]}},
            "manifest",
            "params.properties has no 'nope'",
        ),
        (
            {"manifest": {"command": ["python", "{inputs.table}"]}},
            "manifest",
            "inputs has no 'table'",
        ),
        (
            {"manifest": {"resources": {"memory": "lots"}}},
            "manifest.resources.memory",
            "must look like 512m",
        ),
        ({"manifest": {"inputs": {"Table": {}}}}, "manifest.inputs", "lowercase"),
        ({"manifest": {"entrypoint": "x"}}, "manifest.entrypoint", "Extra inputs"),
        ({"digest": "sha256:abc"}, "digest", "64 lowercase hex"),
        ({"image": ""}, "image", "at least 1 character"),
    ],
)
def test_publishing_a_broken_manifest_is_422_and_registers_no_script(
    server: LiveServer, tokens: dict[str, str], overrides: dict[str, Any], field: str, says: str
) -> None:
    name = unique_name()
    before = table_counts(server)
    body = problem(_publish(server, tokens["publisher"], name, **overrides), 422)
    assert body["field"] == field, body
    assert says in body["message"], body
    assert table_counts(server) == before
    assert call(server, tokens["viewer"], "GET", f"/api/v1/scripts/{name}").status_code == 404


def test_publishing_under_another_name_or_a_bad_name_is_422(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    name = unique_name()
    before = table_counts(server)
    manifest = fake_manifest(name)
    response = call(
        server,
        tokens["publisher"],
        "POST",
        "/api/v1/scripts/other-name/versions",
        json={"image": "img:1", "digest": fake_digest(name), "manifest": manifest},
    )
    body = problem(response, 422)
    assert body["field"] == "manifest.name" and "make them equal" in body["message"]
    bad = fake_manifest("Bad_Name")
    response = call(
        server,
        tokens["publisher"],
        "POST",
        "/api/v1/scripts/Bad_Name/versions",
        json={"image": "img:1", "digest": fake_digest(name), "manifest": bad},
    )
    body = problem(response, 422)
    assert body["field"] == "manifest.name" and "lowercase letter" in body["message"]
    assert table_counts(server) == before


def test_republishing_the_same_digest_returns_the_version_and_new_content_makes_a_new_one(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    name = unique_name()
    first = _publish(server, tokens["publisher"], name)
    assert first.status_code == 201 and first.json()["version"] == 1
    again = _publish(server, tokens["publisher"], name)
    assert again.status_code == 200 and again.json()["version"] == 1
    changed = _publish(server, tokens["publisher"], name, digest=fake_digest(name + "2"))
    assert changed.status_code == 201 and changed.json()["version"] == 2


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
    job = admin.submit_job(script=publish_fake(admin).script, params={"n": 1})
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


def test_publishing_a_manifest_with_a_non_finite_number_is_422(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    name = unique_name()
    before = table_counts(server)
    manifest = json.dumps(fake_manifest(name)).replace('"minimum": 0', '"minimum": NaN', 1)
    assert "NaN" in manifest
    raw = f'{{"image": "img:1", "digest": "{fake_digest(name)}", "manifest": {manifest}}}'
    response = call(
        server,
        tokens["publisher"],
        "POST",
        f"/api/v1/scripts/{name}/versions",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    body = problem(response, 422)
    assert body["field"] == "manifest.params", body
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


def test_a_manifest_label_too_long_for_a_job_is_refused_at_publish(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    name = unique_name()
    body = problem(
        _publish(server, tokens["publisher"], name, manifest={"labels": ["x" * 200]}), 422
    )
    assert body["field"] == "manifest.labels.0" and "at most 128 characters" in body["message"]


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
    body = {"script": script, "params": {"n": 1}, "inputs": {"table": "iris@99999999999999999999"}}
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
