"""Publishing bad script versions through the real API: a 422 naming the field, and no script or
version registered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hq.client import HQClient
from tests.fixtures.api import (
    call,
    fake_digest,
    fake_manifest,
    module_server,
    problem,
    table_counts,
    unique_name,
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
        ({"manifest": {"entrypoint": "x"}}, "manifest.entrypoint", "unknown key"),
        ({"digest": "sha256:abc"}, "digest", "64 lowercase hex"),
        (
            {"manifest": {"metrics_from_logs": ["score: (?P<score>[0-9.]+"]}},
            "manifest.metrics_from_logs.0",
            "refused by RE2 (missing ): ",
        ),
        (
            {"manifest": {"metrics_from_logs": ["score: ([0-9.]+)"]}},
            "manifest.metrics_from_logs.0",
            "has no named group: name the number it captures",
        ),
        (
            {"manifest": {"metrics_from_logs": [r"(?P<n>\d+) again \1"]}},
            "manifest.metrics_from_logs.0",
            "RE2 has no backreferences or lookaround",
        ),
        (
            {"manifest": {"metrics_from_logs": [{"pattern": r"(?P<ms>\d+)(?=ms)", "keep": "all"}]}},
            "manifest.metrics_from_logs.0",
            "invalid perl operator: (?=",
        ),
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


def test_a_manifest_label_too_long_for_a_job_is_refused_at_publish(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    name = unique_name()
    body = problem(
        _publish(server, tokens["publisher"], name, manifest={"labels": ["x" * 200]}), 422
    )
    assert body["field"] == "manifest.labels.0" and "at most 128 characters" in body["message"]
