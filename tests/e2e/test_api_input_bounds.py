"""Input past HQ's bounds through the real API, on both databases: a 422 (400 for a forged
cursor) that names the field and says the range, never a 500, and nothing written.

Covers text HQ cannot store (NUL, which PostgreSQL refuses; lone surrogates, which are not
Unicode), nesting past ``MAX_DEPTH``, times and integers out of range, params schemas with a
remote ``$ref`` or a regex that is slow on a backtracking engine, and names that end in "\\n".
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from hq.client import HQClient
from hq.schemas.agents import AgentCreate, Lease
from hq.schemas.limits import MAX_DEPTH
from tests.fixtures.api import (
    call,
    fake_digest,
    fake_manifest,
    module_server,
    problem,
    publish_fake,
    table_counts,
    unique_name,
    unique_queue,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

OPEN_PARAMS: dict[str, Any] = {"type": "object"}  # any params


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> HQClient:
    return server.client("admin")


def _raw(server: LiveServer, method: str, path: str, text: str) -> httpx.Response:
    """``text`` sent as the JSON body byte for byte (escapes such as \\ud800 kept as written)."""
    return call(
        server,
        server.admin_token,
        method,
        path,
        content=text.encode(),
        headers={"Content-Type": "application/json"},
    )


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# -- text and nesting ----------------------------------------------------------------------------


def test_params_nested_past_the_limit_get_422_and_within_it_are_taken(
    server: LiveServer, admin: HQClient
) -> None:
    script = publish_fake(admin, params=OPEN_PARAMS).script
    before = table_counts(server)
    body = {"script": script, "params": {"deep": _nested(256)}}
    found = problem(call(server, server.admin_token, "POST", "/api/v1/jobs", json=body), 422)
    assert found["field"] == "params", found
    assert f"more than {MAX_DEPTH} levels deep" in found["message"], found
    assert table_counts(server) == before
    body = {"script": script, "params": {"deep": _nested(MAX_DEPTH - 8)}}
    taken = call(server, server.admin_token, "POST", "/api/v1/jobs", json=body)
    assert taken.status_code == 201, taken.text


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ('{"note": "x\\ud800y"}', "params.note", "lone surrogate (\\ud800)"),
        ('{"note": "\\udfff"}', "params.note", "lone surrogate (\\udfff)"),
        ('{"\\ud800": 1}', "params", "a key contains a lone surrogate"),
        ('{"note": "a\\u0000b"}', "params.note", "NUL character"),
        ('{"list": ["ok", {"k\\u0000": 1}]}', "params.list.1", "a key contains a NUL"),
    ],
)
def test_text_hq_cannot_store_in_params_gets_422_naming_the_field(
    server: LiveServer, admin: HQClient, params: str, field: str, says: str
) -> None:
    script = publish_fake(admin, params=OPEN_PARAMS).script
    before = table_counts(server)
    text = f'{{"script": "{script}", "params": {params}}}'
    found = problem(_raw(server, "POST", "/api/v1/jobs", text), 422)
    assert found["field"] == field, found
    assert found["message"].startswith(f"{field}: ") and says in found["message"], found
    assert table_counts(server) == before
    pair = f'{{"script": "{script}", "params": {{"note": "\\ud83d\\ude00"}}}}'  # a valid pair
    taken = _raw(server, "POST", "/api/v1/jobs", pair)
    assert taken.status_code == 201, taken.text
    assert taken.json()["params"]["note"] == "\U0001f600"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('"labels": ["gpu\\u0000"]', "labels.0"),
        ('"labels": ["\\ud800"]', "labels.0"),
        ('"inputs": {"table": "iris\\u0000"}', "inputs.table"),
    ],
)
def test_labels_and_inputs_with_nul_or_a_lone_surrogate_get_422(
    server: LiveServer, admin: HQClient, extra: str, field: str
) -> None:
    script = publish_fake(admin, params=OPEN_PARAMS).script
    before = table_counts(server)
    for path, rest in (
        ("/api/v1/jobs", '"params": {}'),
        ("/api/v1/sweeps", '"grid": {"n": [1, 2]}'),
    ):
        if path.endswith("sweeps") and "inputs" in extra:
            continue
        text = f'{{"script": "{script}", {rest}, {extra}}}'
        found = problem(_raw(server, "POST", path, text), 422)
        assert found["field"] == field, (path, found)
    assert table_counts(server) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/jobs?script=fit%00", "script"),
        ("/api/v1/jobs?queue=%00", "queue"),
        ("/api/v1/scripts/fit%00", "name"),
        ("/api/v1/jobs/abc%00", "job_id"),
        ("/api/v1/datasets/iris%00", "name"),
    ],
)
def test_a_nul_in_the_url_gets_422_naming_the_parameter(
    server: LiveServer, path: str, field: str
) -> None:
    found = problem(httpx.get(server.url + path, headers=_auth(server), timeout=30), 422)
    assert found["field"] == field and "NUL" in found["message"], found


def _auth(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


def test_publishing_a_manifest_with_nul_gets_422_and_registers_nothing(
    server: LiveServer,
) -> None:
    name = unique_name()
    manifest = fake_manifest(name)
    manifest["description"] = "fits\x00"
    body = {"image": f"127.0.0.1:5000/hq/{name}:1", "digest": fake_digest(name)}
    before = table_counts(server)
    text = json.dumps({**body, "manifest": manifest})
    found = problem(_raw(server, "POST", f"/api/v1/scripts/{name}/versions", text), 422)
    assert found["field"] == "manifest.description", found
    assert table_counts(server) == before


# -- times and integers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created_after", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("created_before", "9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
        ("created_after", "1900-01-01T00:00:00Z"),
    ],
)
def test_listing_times_out_of_range_get_422_saying_the_range(
    server: LiveServer, name: str, value: str
) -> None:
    response = call(server, server.admin_token, "GET", "/api/v1/jobs", params={name: value})
    found = problem(response, 422)
    assert found["field"] == name, found
    assert "from 1970-01-01T00:00:00Z to 9999-01-01T00:00:00Z" in found["message"], found


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("-created_at", {"t": "0001-01-01T00:00:00+01:00"}),
        ("-created_at", {"t": "9999-12-31T23:59:59-01:00"}),
        ("-created_at", {"t": "0001-01-01T00:00:00+00:00"}),
        ("priority", 10**20),
        ("-priority", -(10**20)),
        ("script", "fit\x00"),
        ("script", "\ud800"),
    ],
)
def test_a_forged_cursor_out_of_range_gets_400_not_500(
    server: LiveServer, sort: str, value: Any
) -> None:
    cursors = [[sort, value, "id"]]
    if isinstance(value, str):  # text HQ cannot store, as the id after which the page starts
        cursors.append([sort, "x", value])
    for cursor in cursors:
        params = {"sort": sort, "cursor": _cursor(cursor)}
        response = call(server, server.admin_token, "GET", "/api/v1/jobs", params=params)
        assert problem(response, 400)["field"] == "cursor", cursor


@pytest.fixture
def leased(server: LiveServer, admin: HQClient) -> Iterator[tuple[str, Lease]]:
    """An agent token and the lease it holds on a fresh job."""
    queue = unique_queue()
    admin.submit_job(script=publish_fake(admin).script, params={"n": 1}, queue=queue)
    token = server.token("agent")
    with HQClient(server.url, token) as agent:
        registered = agent.register_agent(AgentCreate(name=unique_name("agent"), queues=[queue]))
        (lease,) = agent.claim(registered.id, capacity=1, wait_s=5).leases
        yield token, lease


@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        ({"at": "0001-01-01T00:00:00Z", "text": "x"}, "lines.0.at", "out of range"),
        ({"at": "0001-01-01T00:00:00+01:00", "text": "x"}, "lines.0.at", "out of range"),
        ({"at": "2026-01-01T00:00:00Z", "text": "a\x00b"}, "lines.0.text", "NUL"),
    ],
)
def test_log_lines_out_of_range_or_with_nul_get_422(
    server: LiveServer,
    leased: tuple[str, Lease],
    line: dict[str, str],
    field: str,
    says: str,
) -> None:
    token, lease = leased
    body = {"lease_token": lease.lease_token, "lines": [line]}
    path = f"/api/v1/jobs/{lease.job_id}/logs"
    found = problem(call(server, token, "POST", path, json=body), 422)
    assert found["field"] == field and says in found["message"], found
    text = '{"lease_token": "%s", "lines": [{"at": "2026-01-01T00:00:00Z", "text": "\\ud800"}]}'
    found = problem(
        call(
            server,
            token,
            "POST",
            path,
            content=(text % lease.lease_token).encode(),
            headers={"Content-Type": "application/json"},
        ),
        422,
    )
    assert found["field"] == "lines.0.text" and "surrogate" in found["message"], found
    body = {
        "lease_token": lease.lease_token,
        "lines": [{"at": "2026-01-01T00:00:00Z", "text": "ok"}],
    }
    assert call(server, token, "POST", path, json=body).status_code == 204  # the lease is unharmed


def test_an_exit_code_past_32_bits_gets_422_and_the_job_can_still_complete(
    server: LiveServer, leased: tuple[str, Lease]
) -> None:
    token, lease = leased
    path = f"/api/v1/jobs/{lease.job_id}/complete"
    for code in (10**20, 2**31):
        body = {"lease_token": lease.lease_token, "status": "failed", "exit_code": code}
        found = problem(call(server, token, "POST", path, json=body), 422)
        assert found["field"] == "exit_code", found
        assert "2147483647" in found["message"], found
    body = {"lease_token": lease.lease_token, "status": "failed", "exit_code": -(2**31)}
    assert call(server, token, "POST", path, json=body).status_code == 200


# -- params schemas ------------------------------------------------------------------------------


def _publish(server: LiveServer, params: dict[str, Any], **manifest: Any) -> httpx.Response:
    name = unique_name()
    body = {
        "image": f"127.0.0.1:5000/hq/{name}:1",
        "digest": fake_digest(name),
        "manifest": {**fake_manifest(name, params=params), **manifest},
    }
    return call(server, server.admin_token, "POST", f"/api/v1/scripts/{name}/versions", json=body)


def _string_schema(**keywords: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"x": {"type": "string", **keywords}}}


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        (
            _string_schema(**{"$ref": "https://example.com/schema.json"}),
            "manifest.params.properties.x.$ref",
            "is not local",
        ),
        (
            {"type": "object", "properties": {"x": {"$ref": "other.json#/a"}}},
            "manifest.params.properties.x.$ref",
            "is not local",
        ),
        (_string_schema(pattern=r"^(a)\1$"), "manifest.params.properties.x.pattern", "RE2"),
        (_string_schema(pattern=r"^(?!b)"), "manifest.params.properties.x.pattern", "RE2"),
        (
            {"type": "object", "patternProperties": {"(?<=a)b": {}}},
            "manifest.params.patternProperties.(?<=a)b",
            "lookaround",
        ),
    ],
)
def test_a_params_schema_hq_cannot_run_safely_is_refused_at_publish(
    server: LiveServer, params: dict[str, Any], field: str, says: str
) -> None:
    before = table_counts(server)
    found = problem(_publish(server, params), 422)
    assert found["field"] == field, found
    assert says in found["message"], found
    assert table_counts(server) == before


def test_a_local_ref_is_resolved(server: LiveServer, admin: HQClient) -> None:
    params = {
        "type": "object",
        "$defs": {"count": {"type": "integer", "minimum": 1}},
        "properties": {"n": {"$ref": "#/$defs/count"}},
    }
    published = _publish(server, params)
    assert published.status_code == 201, published.text
    script = published.json()["script"]
    body = {"script": script, "params": {"n": 0}}
    found = problem(call(server, server.admin_token, "POST", "/api/v1/jobs", json=body), 422)
    assert found["field"] == "params.n" and "minimum of 1" in found["message"], found
    assert admin.submit_job(script=script, params={"n": 2}).status == "queued"


def test_a_catastrophic_pattern_runs_in_linear_time(server: LiveServer, admin: HQClient) -> None:
    params = {
        "type": "object",
        "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    published = _publish(server, params)
    assert published.status_code == 201, published.text
    script = published.json()["script"]
    start = time.monotonic()
    for bad, field in (
        ({"x": "a" * 28 + "!"}, "params.x"),  # 5.1 s on Python's re; 2**28 steps
        ({"x": "a" * 40 + "!"}, "params.x"),
        ({"b" * 40 + "!": 1}, "params"),
    ):
        body = {"script": script, "params": bad}
        found = problem(call(server, server.admin_token, "POST", "/api/v1/jobs", json=body), 422)
        assert found["field"] == field, found
    assert time.monotonic() - start < 2.0
    job = admin.submit_job(script=script, params={"x": "aaaa", "bbb": 3})
    assert job.status == "queued"


def _sql(server: LiveServer, statement: str, *args: Any) -> None:
    url = server.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            conn.execute(statement.replace("%s", "?"), args)
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute(statement, args)


def test_a_stored_schema_with_a_remote_ref_gets_422_on_submit_not_500(
    server: LiveServer, admin: HQClient
) -> None:
    """A version published before HQ refused remote refs: each submission says to republish."""
    version = publish_fake(admin, params=OPEN_PARAMS)
    manifest = version.manifest.model_dump(mode="json")
    manifest["params"] = _string_schema(**{"$ref": "https://example.com/schema.json"})
    _sql(
        server,
        "UPDATE script_versions SET manifest = %s WHERE script_name = %s",
        json.dumps(manifest),
        version.script,
    )
    body = {"script": version.script, "params": {"x": "a"}}
    found = problem(call(server, server.admin_token, "POST", "/api/v1/jobs", json=body), 422)
    assert found["field"] == "script", found
    assert "is not local" in found["message"] and "publish a new version" in found["message"]


# -- names ---------------------------------------------------------------------------------------


def test_names_ending_in_a_newline_are_refused(server: LiveServer, admin: HQClient) -> None:
    name = unique_name()
    before = table_counts(server)
    body = {
        "image": f"127.0.0.1:5000/hq/{name}:1",
        "digest": fake_digest(name),
        "manifest": fake_manifest(name + "\n"),
    }
    path = f"/api/v1/scripts/{name}%0A/versions"
    found = problem(call(server, server.admin_token, "POST", path, json=body), 422)
    assert found["field"] in ("name", "manifest.name"), found
    body["manifest"] = fake_manifest(name)
    body["digest"] = fake_digest(name) + "\n"
    found = problem(
        call(server, server.admin_token, "POST", f"/api/v1/scripts/{name}/versions", json=body),
        422,
    )
    assert found["field"] == "digest", found
    body["digest"] = fake_digest(name)
    body["manifest"] = {**fake_manifest(name), "inputs": {"table\n": {"required": True}}}
    found = problem(
        call(server, server.admin_token, "POST", f"/api/v1/scripts/{name}/versions", json=body),
        422,
    )
    assert found["field"] == "manifest.inputs", found
    assert table_counts(server) == before
    upload = httpx.post(
        f"{server.url}/api/v1/datasets/{name}%0A/versions",
        headers=_auth(server),
        files={"file": ("d.csv", b"a,b\n1,2\n")},
        timeout=30,
    )
    found = problem(upload, 422)
    assert found["field"] == "name" and "invalid dataset name" in found["message"], found
    assert name not in {d.name for d in admin.list_datasets()}
