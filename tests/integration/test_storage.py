"""The object-store port against both adapters: a real S3 server (moto, over HTTP on 127.0.0.1)
and the local folder served by HQ's own signed routes. The same cases run on both."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hq import errors
from hq.server.api.storage import router as storage_router
from hq.server.storage import (
    MAX_PRESIGN_SECONDS,
    ObjectStore,
    artifact_key,
    dataset_key,
    make_store,
)
from hq.server.storage.local import LocalStore
from hq.server.storage.s3 import S3Store
from tests.fixtures.s3 import S3Bucket

SECRET = "test-secret-key-0123456789abcdef"
MAX_PUT_BYTES = 8 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _FolderServer:
    """HQ's storage routes on 127.0.0.1 in a thread, serving one LocalStore."""

    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = LocalStore(
            root=root, public_url=self.url, secret_key=SECRET, max_put_bytes=MAX_PUT_BYTES
        )
        app = FastAPI()
        app.include_router(storage_router)
        app.state.store = self.store

        @app.exception_handler(errors.HQError)
        async def _hq_error(_: Request, exc: errors.HQError) -> JSONResponse:
            return JSONResponse(exc.to_body(), status_code=exc.status_code)

        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _FolderServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "the folder server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def folder_server(tmp_path: Path) -> Iterator[_FolderServer]:
    with _FolderServer(tmp_path / "storage") as server:
        yield server


@pytest.fixture(params=["file", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """The same tests against the folder store and against S3."""
    if request.param == "file":
        server: _FolderServer = request.getfixturevalue("folder_server")
        yield server.store
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        s3 = make_store(
            url=bucket.storage_url,
            s3_access_key=bucket.server.access_key,
            s3_secret_key=bucket.server.secret_key,
        )
        assert isinstance(s3, S3Store)
        yield s3
        await s3.close()


def _stored_keys(store: ObjectStore, request: pytest.FixtureRequest) -> list[str]:
    """What the backend really holds, read around the adapter."""
    if isinstance(store, LocalStore):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return sorted(bucket.object_names())


def _expiry_seconds(url: str) -> float:
    """Seconds until a presigned URL expires, parsed from the URL itself."""
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        return float(query["X-Amz-Expires"][0])
    return float(query["expires"][0]) - time.time()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_put_then_presigned_get_returns_the_same_bytes(
    store: ObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    key = dataset_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, _write(tmp_path / "in.bin", data), content_type="text/csv")
    info = await store.stat(key)
    assert info is not None and info.size == len(data)
    assert await store.exists(key)
    assert await store.sha256(key) == hashlib.sha256(data).hexdigest()
    assert await store.read_bytes(key, limit=10) == data[:10]
    url = await store.presign_get(key, expires_s=60, filename="table.csv")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert "table.csv" in response.headers.get("content-disposition", "")


async def test_same_bytes_twice_are_one_object(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = b"a,b\n1,2\n"
    key = dataset_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, _write(tmp_path / "one.csv", data))
    await store.put_file(key, _write(tmp_path / "two.csv", data))
    assert _stored_keys(store, request) == [key]


async def test_every_presigned_url_expires_within_15_minutes(
    store: ObjectStore, tmp_path: Path
) -> None:
    key = "datasets/sha256/" + "0" * 64
    urls = [
        await store.presign_get(key),
        await store.presign_get(key, filename="x.csv"),
        await store.presign_put(key),
        await store.presign_get(key, expires_s=30),
        await store.presign_put(artifact_key("job1", 1, "out/model.json"), expires_s=900),
    ]
    for url in urls:
        assert 0 < _expiry_seconds(url) <= MAX_PRESIGN_SECONDS, url
    for bad in (0, -1, MAX_PRESIGN_SECONDS + 1, 7 * 24 * 3600):
        with pytest.raises(errors.ValidationFailed, match="expiry"):
            await store.presign_get(key, expires_s=bad)
        with pytest.raises(errors.ValidationFailed, match="expiry"):
            await store.presign_put(key, expires_s=bad)


async def test_presigned_put_stores_what_was_sent(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)
    key = artifact_key("job-abc", 2, "plots/fit.png")
    url = await store.presign_put(key, expires_s=120)
    response = httpx.put(url, content=data)
    assert response.status_code == 200, response.text
    info = await store.stat(key)
    assert info is not None and info.size == len(data)
    assert await store.sha256(key) == hashlib.sha256(data).hexdigest()
    dest = tmp_path / "back.bin"
    await store.get_file(key, dest)
    assert dest.read_bytes() == data


async def test_missing_object_is_none_or_not_found(store: ObjectStore, tmp_path: Path) -> None:
    key = "datasets/sha256/" + "f" * 64
    assert await store.stat(key) is None
    assert not await store.exists(key)
    with pytest.raises(errors.NotFound):
        await store.sha256(key)
    with pytest.raises(errors.NotFound):
        await store.get_file(key, tmp_path / "x")
    with pytest.raises(errors.NotFound):
        await store.copy(key, "datasets/sha256/" + "e" * 64)
    await store.delete(key)  # deleting nothing is fine


async def test_copy_then_delete(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = b"x" * 1000
    src = artifact_key("job-1", 1, "out.csv")
    dst = dataset_key(hashlib.sha256(data).hexdigest())
    await store.put_file(src, _write(tmp_path / "a", data))
    await store.copy(src, dst)
    assert await store.sha256(dst) == hashlib.sha256(data).hexdigest()
    await store.delete(src)
    assert _stored_keys(store, request) == [dst]


TRAVERSAL_KEYS = [
    "../etc/passwd",
    "a/../../b",
    "/abs/key",
    "a\\..\\b",
    "a/%2e%2e/b",
    "a/%2F/b",
    "a//b",
    "./a",
    "a/.",
    "\uff0e\uff0e/x",
    "a/\x00b",
    "",
]


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
async def test_traversal_keys_are_refused(store: ObjectStore, tmp_path: Path, key: str) -> None:
    src = _write(tmp_path / "f", b"data")
    with pytest.raises(errors.ValidationFailed):
        await store.put_file(key, src)
    with pytest.raises(errors.ValidationFailed):
        await store.presign_get(key)
    with pytest.raises(errors.ValidationFailed):
        await store.presign_put(key)
    with pytest.raises(errors.ValidationFailed):
        await store.stat(key)
    with pytest.raises(errors.ValidationFailed):
        artifact_key("job", 1, key)


async def test_check_reports_a_usable_store(store: ObjectStore) -> None:
    await store.check()


# -- the folder store's own signing ---------------------------------------------------------


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=httpx.QueryParams(query).__str__()).geturl()


async def test_folder_url_past_its_expiry_is_refused(
    folder_server: _FolderServer, tmp_path: Path
) -> None:
    store = folder_server.store
    key = "datasets/sha256/" + "1" * 64
    await store.put_file(key, _write(tmp_path / "f", b"hello"))
    url = await store.presign_get(key, expires_s=2)
    assert httpx.get(url).content == b"hello"
    time.sleep(max(0.0, float(parse_qs(urlsplit(url).query)["expires"][0]) - time.time()) + 1.1)
    response = httpx.get(url)
    assert response.status_code == 403
    assert "expired" in response.json()["message"]


async def test_folder_url_with_a_changed_signature_or_expiry_is_refused(
    folder_server: _FolderServer, tmp_path: Path
) -> None:
    store = folder_server.store
    key = "datasets/sha256/" + "2" * 64
    await store.put_file(key, _write(tmp_path / "f", b"secret bytes"))
    url = await store.presign_get(key, expires_s=60)
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for bad in (
        _with_query(url, sig=flipped),
        _with_query(url, expires=str(int(time.time()) + 600)),
        _with_query(url, filename="other.csv"),
        url.split("?")[0],
        url.replace("2222", "2223", 1),
    ):
        response = httpx.get(bad)
        assert response.status_code in (403, 404), bad
        assert b"secret bytes" not in response.content
    # A GET URL does not authorise a PUT on the same key.
    response = httpx.put(url, content=b"overwrite")
    assert response.status_code == 403
    assert (await store.read_bytes(key, limit=100)) == b"secret bytes"


async def test_folder_routes_refuse_traversal_paths(
    folder_server: _FolderServer, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_text("do not serve")
    for raw in (
        "/storage/../outside.txt",
        "/storage/%2e%2e/outside.txt",
        "/storage/a/%2e%2e/%2e%2e/outside.txt",
        "/storage/..%5coutside.txt",
    ):
        with httpx.Client(base_url=folder_server.url) as client:
            request = client.build_request("GET", "/")
            request.url = request.url.copy_with(raw_path=raw.encode() + b"?expires=1&sig=x")
            response = client.send(request)
        assert response.status_code in (403, 404, 422), raw
        assert b"do not serve" not in response.content


async def test_folder_put_past_the_size_limit_leaves_nothing(folder_server: _FolderServer) -> None:
    store = folder_server.store
    key = artifact_key("job-big", 1, "huge.bin")
    url = await store.presign_put(key)
    response = httpx.put(url, content=b"\0" * (MAX_PUT_BYTES + 1))
    assert response.status_code == 413
    assert "limit" in response.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        for _ in range(MAX_PUT_BYTES // 65536 + 2):
            yield b"\0" * 65536

    response = httpx.put(url, content=chunks())
    assert response.status_code == 413
    assert await store.stat(key) is None
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_interrupted_folder_put_leaves_nothing(folder_server: _FolderServer) -> None:
    store = folder_server.store
    key = artifact_key("job-cut", 1, "partial.bin")
    url = urlsplit(await store.presign_put(key))
    with socket.create_connection(("127.0.0.1", folder_server.port)) as sock:
        head = (
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: 1000000\r\n\r\n"
        ).encode()
        sock.sendall(head + b"\1" * 300_000)
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(store.root.rglob("*.part")):
        time.sleep(0.05)
    assert await store.stat(key) is None
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


# -- choosing the adapter -------------------------------------------------------------------


def test_make_store_chooses_the_adapter_from_the_url(tmp_path: Path) -> None:
    local = make_store(url=f"file://{tmp_path}/s", secret_key=SECRET)
    assert isinstance(local, LocalStore) and local.root == tmp_path / "s"
    s3 = make_store(
        url="s3://bucket/pre?endpoint=http://127.0.0.1:9&region=eu-west-1",
        s3_access_key="a",
        s3_secret_key="b",
    )
    assert isinstance(s3, S3Store) and s3.bucket == "bucket" and s3.prefix == "pre"
    for bad, what in (
        ("ftp://x", "scheme"),
        ("s3://b", "endpoint"),
        ("s3://?endpoint=x", "bucket"),
        ("file://relative/path", "absolute"),
    ):
        with pytest.raises(errors.ValidationFailed, match=what):
            make_store(url=bad, secret_key=SECRET)
    with pytest.raises(errors.ValidationFailed, match="secret"):
        make_store(url=f"file://{tmp_path}")


async def test_unreachable_s3_is_reported_unavailable() -> None:
    store = make_store(
        url=f"s3://hq-bucket?endpoint=http://127.0.0.1:{_free_port()}",
        s3_access_key="a",
        s3_secret_key="b",
    )
    with pytest.raises(errors.Unavailable, match="unreachable"):
        await store.check()


def test_stale_spool_files_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    from hq.server.storage.uploads import sweep_stale

    old, fresh, other = tmp_path / "upload-a.part", tmp_path / "upload-b.part", tmp_path / "x"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    assert sweep_stale(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload-b.part", "x"]


async def test_s3_prefix_and_public_endpoint(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """Objects live under the URL's prefix; URLs are signed for the address agents use."""
    port = urlsplit(s3_bucket.endpoint).port
    url = (
        f"s3://{s3_bucket.bucket}/tenant-a?endpoint={s3_bucket.endpoint}"
        f"&public_endpoint=http://localhost:{port}"
    )
    store = make_store(
        url=url,
        s3_access_key=s3_bucket.server.access_key,
        s3_secret_key=s3_bucket.server.secret_key,
    )
    data = b"prefixed"
    key = dataset_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, _write(tmp_path / "p", data))
    assert s3_bucket.object_names() == [f"tenant-a/{key}"]
    get_url = await store.presign_get(key)
    assert urlsplit(get_url).netloc == f"localhost:{port}"
    assert httpx.get(get_url).content == data
