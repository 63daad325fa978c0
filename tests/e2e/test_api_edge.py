"""The HTTP edge of a real server (issue 16): the token is checked before a byte of the body is
read, the body limit holds on every JSON route, parse errors say what is wrong, a 500 is JSON
with a request id, /docs works offline, a signed upload cut off by its client leaves nothing.

One server per database for the module, with a low HQ_MAX_BODY_BYTES (1 MiB) and a fixed
HQ_SECRET_KEY, so that the test can sign folder-store URLs as the server does.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from hq.client import HQClient
from hq.server.storage import make_store
from tests.fixtures.api import call, module_server, problem, unique_name
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

MAX_BODY_BYTES = 1024 * 1024
SECRET_KEY = "edge-test-secret-key-0123456789abcdef"
ANSWER_WITHIN_S = 5.0


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = {"HQ_MAX_BODY_BYTES": str(MAX_BODY_BYTES), "HQ_SECRET_KEY": SECRET_KEY}
    with module_server(tmp_path_factory, db=request.param, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return server.token("submitter")


def raw_request(
    server: LiveServer, head: str, body_part: bytes, *, timeout: float = ANSWER_WITHIN_S
) -> tuple[int, bytes, float]:
    """Send ``head`` and only ``body_part`` of the body it declares, then wait for an answer:
    (status, raw answer, seconds). Status 0: no answer within ``timeout`` (the server is waiting
    for the rest of the body)."""
    host, port = server.url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body_part)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not _complete(answer):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            return 0, answer, time.monotonic() - start
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer, time.monotonic() - start


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    return found is not None and len(body) >= int(found.group(1))


def _head(method: str, path: str, length: int, *, headers: str = "") -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: hq\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{headers}"
    )


def _json_of(answer: bytes) -> dict[str, object]:
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert isinstance(body, dict)
    return body


# -- the token before the body -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs", "/api/v1/datasets/d1/promote", "/api/v1/datasets/d1/versions"],
)
def test_an_anonymous_50_mib_body_is_answered_401_before_it_is_read(
    server: LiveServer, path: str
) -> None:
    sent = 256 * 1024  # of the 50 MiB declared: the server must answer without the rest
    status, answer, seconds = raw_request(server, _head("POST", path, 50 * 1024**2), b"x" * sent)
    assert status == 401, (status, answer[:300], seconds)
    assert _json_of(answer)["code"] == "not_authenticated"
    assert b"www-authenticate: bearer" in answer.lower()


def test_a_body_under_the_limit_with_a_bad_token_is_401_before_it_is_read(
    server: LiveServer,
) -> None:
    head = _head(
        "POST", "/api/v1/jobs", MAX_BODY_BYTES - 10, headers="Authorization: Bearer no\r\n"
    )
    status, answer, _ = raw_request(server, head, b"{")
    assert status == 401, answer[:300]


def test_anonymous_bodies_do_not_slow_health(server: LiveServer) -> None:
    """Two anonymous clients pushing 30 MiB bodies: each is turned away at once."""

    async def main() -> tuple[float, list[int]]:
        async def push() -> int:
            async with httpx.AsyncClient(timeout=30) as http:
                try:
                    r = await http.post(f"{server.url}/api/v1/jobs", content=b"x" * 30 * 1024**2)
                except httpx.TransportError:  # the server closed after its 401
                    return 401
                return r.status_code

        pushes = [asyncio.create_task(push()) for _ in range(2)]
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(timeout=30) as http:
            start = time.monotonic()
            assert (await http.get(f"{server.url}/api/v1/health")).status_code == 200
            took = time.monotonic() - start
        return took, list(await asyncio.gather(*pushes))

    took, statuses = asyncio.run(main())
    assert statuses == [401, 401]
    assert took < 1.0, took


# -- the body limit ------------------------------------------------------------------------------


def test_promote_over_the_limit_gets_413_declared_or_streamed(
    server: LiveServer, token: str
) -> None:
    big = {"job_id": "0" * 32, "path": "x" * (MAX_BODY_BYTES + 10), "dataset": "d1"}
    path = "/api/v1/datasets/d1/promote"
    body = problem(call(server, token, "POST", path, json=big), 413)
    assert body["code"] == "payload_too_large" and str(MAX_BODY_BYTES) in body["message"]

    def chunks() -> Iterator[bytes]:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    headers = {"Content-Type": "application/json"}
    response = call(server, token, "POST", path, content=chunks(), headers=headers)
    assert problem(response, 413)["code"] == "payload_too_large"


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    server: LiveServer, token: str
) -> None:
    head = _head("POST", "/api/v1/jobs", 50 * 1024**2, headers=f"Authorization: Bearer {token}\r\n")
    status, answer, _ = raw_request(server, head, b"{")
    assert status == 413, answer[:300]


# -- parse errors --------------------------------------------------------------------------------


def test_a_body_that_is_not_json_names_line_column_and_byte(server: LiveServer, token: str) -> None:
    headers = {"Content-Type": "application/json"}
    bad = '{\n  "script": "é",\n  "params": {"a": 1,}\n}'.encode()  # é: 2 bytes
    body = problem(call(server, token, "POST", "/api/v1/jobs", content=bad, headers=headers), 422)
    assert body["code"] == "validation_failed"
    assert body["message"].startswith("the body is not valid JSON: "), body
    assert "line 3, column 21 (byte 40)" in body["message"], body


def test_a_body_that_is_not_utf8_says_so(server: LiveServer, token: str) -> None:
    headers = {"Content-Type": "application/json"}
    bad = b'{"script": "\xff\xfe"}'
    response = call(server, token, "POST", "/api/v1/jobs", content=bad, headers=headers)
    body = problem(response, 422)
    assert "not UTF-8" in body["message"] and "byte 12" in body["message"], body
    assert "error parsing the body" not in body["message"]


def test_a_body_sent_as_text_gets_415_naming_the_content_type(
    server: LiveServer, token: str
) -> None:
    headers = {"Content-Type": "text/plain"}
    response = call(server, token, "POST", "/api/v1/jobs", content=b'{"a": 1}', headers=headers)
    body = problem(response, 415)
    assert body["code"] == "unsupported_media_type"
    assert "application/json" in body["message"] and "text/plain" in body["message"]


def test_an_anonymous_bad_body_gets_401_first(server: LiveServer) -> None:
    headers = {"Content-Type": "application/json"}
    for content in (b"{", b'{"a": "\xff"}'):
        response = httpx.post(f"{server.url}/api/v1/jobs", content=content, headers=headers)
        assert problem(response, 401)["code"] == "not_authenticated"


# -- request ids and the 500 ---------------------------------------------------------------------


def test_every_answer_carries_a_request_id(server: LiveServer, token: str) -> None:
    answers = [
        httpx.get(f"{server.url}/api/v1/health"),
        httpx.get(f"{server.url}/api/v1/jobs"),
        call(server, token, "GET", "/api/v1/jobs"),
        call(server, token, "GET", "/api/v1/nothing-here"),
        call(server, token, "POST", "/api/v1/jobs", content=b"{", headers={}),
        httpx.get(f"{server.url}/docs"),
    ]
    ids = [a.headers.get("x-request-id") for a in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids
    mine = call(server, token, "GET", "/api/v1/jobs", headers={"X-Request-ID": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    odd = call(server, token, "GET", "/api/v1/jobs", headers={"X-Request-ID": "a b\tc"})
    assert odd.headers["x-request-id"] not in ("", "a b\tc")


def test_a_500_is_json_with_the_request_id_that_the_log_names(server: LiveServer) -> None:
    """A token row the code cannot read (a role no release knows) makes a real 500."""
    name = unique_name("broken")
    with HQClient(server.url, server.admin_token) as admin:
        secret = admin.create_token(name=name, role="viewer").token
    _set_role(server, name, "no-such-role")
    response = httpx.get(f"{server.url}/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 500, response.text
    body = response.json()
    rid = response.headers["x-request-id"]
    assert body["code"] == "internal" and body["request_id"] == rid and rid in body["message"]
    log = server.log_path.read_text()
    assert f"(request {rid})" in log and "Traceback" in log, log[-2000:]


def _set_role(server: LiveServer, name: str, role: str) -> None:
    url = server.database_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            conn.execute("UPDATE tokens SET role = ? WHERE name = ?", (role, name))
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute("UPDATE tokens SET role = %s WHERE name = %s", (role, name))


# -- the docs ------------------------------------------------------------------------------------


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_docs_page_references_only_assets_hq_serves(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    refs = _Refs()
    refs.feed(page.text)
    urls = refs.urls + re.findall(r"url: *'([^']+)'", page.text)
    assert urls and not re.search(r"https?://", page.text.split("<script>", 1)[0]), page.text
    assert not re.search(r"(?i)cdn|jsdelivr|unpkg", page.text), page.text
    for url in urls:
        assert url.startswith("/"), url
        asset = httpx.get(f"{server.url}{url}")
        assert asset.status_code == 200 and asset.content, url
    assert httpx.get(f"{server.url}/redoc").status_code in (401, 404)


def test_openapi_documents_the_error_shape_on_every_route(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "Error" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "500" in codes, where
            if path != "/api/v1/health":
                assert {"401", "503"} <= set(codes), where
            for code, answer in codes.items():
                if int(code) >= 400 and not (path == "/api/v1/health" and code == "503"):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (where, code)
            if "requestBody" in operation and "/versions" not in path[-9:]:
                assert {"413", "415", "422"} <= set(codes), where


# -- a signed upload cut off by its client -------------------------------------------------------


def test_a_signed_upload_cut_off_leaves_nothing_and_logs_one_line(
    server: LiveServer, tmp_path: Path
) -> None:
    store = make_store(
        url=f"file://{server.home / 'storage'}", public_url=server.url, secret_key=SECRET_KEY
    )
    key = f"edge/{unique_name('cut')}.bin"
    url = asyncio.run(store.presign_put(key))
    target = url.removeprefix(server.url)
    head = f"PUT {target} HTTP/1.1\r\nHost: hq\r\nContent-Length: {4 * 1024**2}\r\n"
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b"\r\n" + b"y" * 300_000)
        time.sleep(0.5)  # the server is writing the part that came
    deadline = time.monotonic() + ANSWER_WITHIN_S
    while time.monotonic() < deadline and "cut off" not in server.log_path.read_text():
        time.sleep(0.1)
    log = server.log_path.read_text()
    assert "cut off by its client" in log and "nothing was kept" in log, log[-2000:]
    assert "Traceback" not in log.split(key.split("/")[-1])[-1], log[-3000:]
    leftovers = [p for p in (server.home / "storage").rglob("*") if p.is_file()]
    assert not [p for p in leftovers if "edge" in str(p) or p.name.startswith(".")], leftovers
    assert httpx.get(asyncio.run(store.presign_get(key))).status_code == 404
