"""Authentication and roles over every route in the OpenAPI document.

The role table below mirrors hq/server/deps.py. A route added to the API without an entry here
fails ``test_every_route_has_a_role_entry``, so the table cannot silently fall behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.api import ROLES, module_server
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"

READ = frozenset({"viewer", "submitter", "publisher", "admin"})
SUBMIT = frozenset({"submitter", "admin"})
UPLOAD = frozenset({"submitter", "publisher", "admin"})
PUBLISH = frozenset({"publisher", "admin"})
ADMIN = frozenset({"admin"})
AGENT = frozenset({"agent", "admin"})
ANY = frozenset(ROLES)

# (method, path) -> roles that may call it. Health is public and tested on its own.
ROLE_TABLE: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("GET", "/api/v1/tokens/me"): ANY,
    ("POST", "/api/v1/tokens/{token_id}/revoke"): ADMIN,
    ("GET", "/api/v1/scripts"): READ,
    ("GET", "/api/v1/scripts/{name}"): READ,
    ("POST", "/api/v1/scripts/{name}/versions"): PUBLISH,
    ("POST", "/api/v1/jobs"): SUBMIT,
    ("GET", "/api/v1/jobs"): READ,
    ("GET", "/api/v1/jobs/{job_id}"): READ,
    ("GET", "/api/v1/jobs/{job_id}/result"): READ,
    ("POST", "/api/v1/jobs/{job_id}/cancel"): SUBMIT,
    ("GET", "/api/v1/jobs/{job_id}/logs"): READ,
    ("POST", "/api/v1/jobs/{job_id}/logs"): AGENT,
    ("POST", "/api/v1/jobs/{job_id}/heartbeat"): AGENT,
    ("POST", "/api/v1/jobs/{job_id}/complete"): AGENT,
    ("POST", "/api/v1/jobs/complete"): AGENT,
    ("POST", "/api/v1/jobs/{job_id}/artifacts/uploads"): AGENT,
    ("GET", "/api/v1/jobs/{job_id}/artifacts"): READ,
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{path}"): READ,
    ("POST", "/api/v1/sweeps"): SUBMIT,
    ("GET", "/api/v1/sweeps"): READ,
    ("GET", "/api/v1/sweeps/{sweep_id}"): READ,
    ("GET", "/api/v1/sweeps/{sweep_id}/results"): READ,
    ("POST", "/api/v1/pipelines"): SUBMIT,
    ("GET", "/api/v1/pipelines"): READ,
    ("GET", "/api/v1/pipelines/{pipeline_id}"): READ,
    ("POST", "/api/v1/pipelines/{pipeline_id}/cancel"): SUBMIT,
    ("GET", "/api/v1/results"): READ,
    ("POST", "/api/v1/schedules"): SUBMIT,
    ("GET", "/api/v1/schedules"): READ,
    ("GET", "/api/v1/schedules/{schedule_id}"): READ,
    ("GET", "/api/v1/schedules/{schedule_id}/runs"): READ,
    ("POST", "/api/v1/schedules/{schedule_id}/pause"): SUBMIT,
    ("POST", "/api/v1/schedules/{schedule_id}/resume"): SUBMIT,
    ("DELETE", "/api/v1/schedules/{schedule_id}"): SUBMIT,
    ("POST", "/api/v1/agents"): AGENT,
    ("GET", "/api/v1/agents"): READ,
    ("POST", "/api/v1/agents/{agent_id}/drain"): ADMIN,
    ("POST", "/api/v1/agents/{agent_id}/claim"): AGENT,
    ("POST", "/api/v1/agents/{agent_id}/complete-and-claim"): AGENT,
    ("PUT", "/api/v1/agents/{agent_id}/warm"): AGENT,
    ("PUT", "/api/v1/agents/{agent_id}/state"): AGENT,
    ("POST", "/api/v1/datasets/{name}/versions"): UPLOAD,
    ("GET", "/api/v1/datasets"): READ,
    ("GET", "/api/v1/datasets/{name}"): READ,
    ("GET", "/api/v1/datasets/{name}/versions/{version}"): READ,
    ("GET", "/api/v1/datasets/{name}/versions/{version}/download"): READ,
    ("GET", "/api/v1/datasets/{name}/versions/{version}/lineage"): READ,
    ("POST", "/api/v1/datasets/{name}/promote"): UPLOAD,
    ("POST", "/api/v1/webhooks"): SUBMIT,
    ("GET", "/api/v1/webhooks"): READ,
    ("GET", "/api/v1/webhooks/{webhook_id}"): READ,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): SUBMIT,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): READ,
    ("GET", "/metrics"): ANY,
}
PUBLIC = {("GET", "/api/v1/health")}

# Values for path parameters: well-formed, naming nothing that exists.
PATH_VALUES = {
    "name": "no-such-thing",
    "job_id": "00000000-0000-4000-8000-000000000001",
    "agent_id": "00000000-0000-4000-8000-000000000002",
    "sweep_id": "00000000-0000-4000-8000-000000000003",
    "schedule_id": "00000000-0000-4000-8000-000000000004",
    "pipeline_id": "00000000-0000-4000-8000-000000000005",
    "version": "1",
    "path": "out/none.txt",
    "token_id": "no-such-token",
    "webhook_id": "no-such-webhook",
}
ROUTES = sorted(ROLE_TABLE)


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {role: server.admin_token if role == "admin" else server.token(role) for role in ROLES}


def request(server: LiveServer, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = server.url + path.format(**PATH_VALUES)
    # An empty JSON object for POSTs: the role check must come before any body validation.
    return httpx.request(
        method, url, headers=headers, timeout=30, json={} if method == "POST" else None
    )


def test_every_route_has_a_role_entry(server: LiveServer, tokens: dict[str, str]) -> None:
    doc = httpx.get(
        f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {tokens['admin']}"}
    ).json()
    routes = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert routes - PUBLIC - set(ROLE_TABLE) == set(), "add these routes to ROLE_TABLE"
    assert set(ROLE_TABLE) - routes == set(), "ROLE_TABLE names routes the API does not have"


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_refuses_a_missing_or_garbage_token_with_401(
    server: LiveServer, method: str, path: str
) -> None:
    for token in (None, "hq_not-a-real-token-0123456789", "hq_" + "x" * 5000, "a b"):
        response = request(server, method, path, token)
        assert response.status_code == 401, (token, response.text)
        assert response.json()["code"] == "not_authenticated"
        says = "Bearer" if token is None else "invalid"  # what to send, or what is wrong
        assert says in response.json()["message"], response.text
        assert response.headers.get("www-authenticate") == "Bearer"
    bad_scheme = httpx.request(
        method,
        server.url + path.format(**PATH_VALUES),
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        timeout=30,
    )
    assert bad_scheme.status_code == 401


POST_ROUTES = [r for r in ROUTES if r[0] == "POST"]


@pytest.mark.parametrize(("method", "path"), POST_ROUTES, ids=[p for _, p in POST_ROUTES])
def test_a_body_that_is_not_json_still_gets_401_without_a_valid_token(
    server: LiveServer, tokens: dict[str, str], method: str, path: str
) -> None:
    url = server.url + path.format(**PATH_VALUES)
    for headers in ({}, {"Authorization": "Bearer hq_garbage-token-0123456789"}):
        response = httpx.request(
            method, url, content=b"{not json", timeout=30,
            headers={**headers, "Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code == 401, response.text
    allowed = next(iter(ROLE_TABLE[(method, path)] - {"admin"}), "admin")
    response = httpx.request(
        method, url, content=b"{not json", timeout=30,
        headers={"Authorization": f"Bearer {tokens[allowed]}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code not in (401, 403) and response.status_code < 500, response.text


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_admits_exactly_the_roles_in_the_table(
    server: LiveServer, tokens: dict[str, str], method: str, path: str
) -> None:
    allowed = ROLE_TABLE[(method, path)]
    answers = {role: request(server, method, path, tokens[role]) for role in ROLES}
    for role, response in answers.items():
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            body = response.json()
            assert body["code"] == "forbidden"
            assert f"role '{role}' may not do this" in body["message"]
            assert "admin" in body["message"]  # and it says which roles may


def test_health_needs_no_token(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["storage"] == "ok"


def test_docs_and_openapi_are_public_documentation(server: LiveServer) -> None:
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    doc = httpx.get(f"{server.url}/openapi.json")
    assert doc.status_code == 200 and "/api/v1/jobs" in doc.json()["paths"]
    # They describe the API and hold no data: the bearer scheme is declared for the rest.
    schemes = doc.json()["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_readme_says_docs_and_openapi_are_public() -> None:
    assert README.is_file(), "README.md is missing"
    text = README.read_text()
    assert "/docs" in text and "/openapi.json" in text
    lowered = text.lower()
    assert "public" in lowered or "no token" in lowered or "without a token" in lowered


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_storage_routes_refuse_an_unsigned_request(
    server: LiveServer, tokens: dict[str, str], method: str
) -> None:
    for headers in ({}, {"Authorization": f"Bearer {tokens['admin']}"}):
        response = httpx.request(
            method,
            f"{server.url}/storage/datasets/sha256/abc",
            headers=headers,
            content=b"x" if method == "PUT" else None,
        )
        assert response.status_code in (401, 403), response.text
    forged = httpx.request(
        method,
        f"{server.url}/storage/datasets/sha256/abc",
        params={"expires": "9999999999", "sig": "0" * 64},
        content=b"x" if method == "PUT" else None,
    )
    assert forged.status_code in (401, 403), forged.text


def test_a_token_of_one_role_cannot_mint_tokens(server: LiveServer, tokens: dict[str, str]) -> None:
    for role in ROLES:
        response = httpx.post(
            f"{server.url}/api/v1/tokens",
            headers={"Authorization": f"Bearer {tokens[role]}"},
            json={"name": "escalate", "role": "admin"},
        )
        assert response.status_code == (201 if role == "admin" else 403), response.text


def test_an_unknown_route_or_method_answers_in_the_error_shape_pointing_at_the_docs(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    missing = httpx.get(f"{server.url}/api/v1/jbos", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "not_found",
        "message": "no route GET /api/v1/jbos; the API is described at /docs",
    }
    wrong = httpx.put(f"{server.url}/api/v1/jobs", headers=headers)
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert "PUT /api/v1/jobs is not allowed" in wrong.json()["message"]
