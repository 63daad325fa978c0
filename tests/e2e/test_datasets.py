"""Datasets through a live HQ server, on the folder store and on a real S3 server (moto).

Each test runs once per store: upload, dedup, presigned download, size limit, interrupted
upload, memory while a 200 MiB upload streams, and input resolution for job submissions.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from hq import errors
from hq.client import HQClient
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.server import LiveServer, ServerFactory

MIB = 1024 * 1024
STORES = ("file", "s3")

StoreServer = Callable[..., LiveServer]


@pytest.fixture(params=STORES)
def make_server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> StoreServer:
    """Start an HQ server on this test's store kind (and any extra settings)."""

    def make(*, db: str = "sqlite", env: dict[str, str] | None = None) -> LiveServer:
        if request.param == "file":
            return server_factory(db=db, env=env)
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        s3_env = {
            "HQ_S3_ACCESS_KEY": bucket.server.access_key,
            "HQ_S3_SECRET_KEY": bucket.server.secret_key,
            **(env or {}),
        }
        server = server_factory(db=db, storage_url=bucket.storage_url, env=s3_env)
        server.bucket = bucket  # type: ignore[attr-defined]
        return server

    return make


@pytest.fixture
def server(make_server: StoreServer) -> LiveServer:
    return make_server()


def stored_objects(server: LiveServer, prefix: str = "datasets/") -> list[str]:
    """What the store really holds under ``prefix``, read around HQ."""
    bucket: S3Bucket | None = getattr(server, "bucket", None)
    if bucket is not None:
        return sorted(bucket.object_names(prefix))
    root = server.home / "storage"
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def spooled_files(server: LiveServer) -> list[Path]:
    tmp = server.home / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


def expiry_seconds(url: str) -> float:
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        return float(query["X-Amz-Expires"][0])
    return float(query["expires"][0]) - time.time()


def write_csv(path: Path, rows: int) -> Path:
    frame = pd.DataFrame(
        {
            "x": range(rows),
            "y": [i * 0.5 for i in range(rows)],
            "label": [f"r{i}" for i in range(rows)],
        }
    )
    frame.to_csv(path, index=False)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_describes_a_csv_and_the_presigned_download_returns_its_bytes(
    server: LiveServer, tmp_path: Path
) -> None:
    client = server.client("submitter")
    src = write_csv(tmp_path / "table.csv", 2500)
    version = client.upload_dataset(name="sales", path=src)
    assert (version.dataset, version.version) == ("sales", 1)
    assert version.sha256 == sha256_of(src) and version.size == src.stat().st_size
    assert version.rows == 2500 and version.columns == ["x", "y", "label"]
    assert version.preview is not None and version.preview[0] == {"x": 0, "y": 0.0, "label": "r0"}
    assert len(version.preview) <= 20

    viewer = server.client("viewer")
    url = viewer.dataset_download_url("sales", 1)
    assert 0 < expiry_seconds(url) <= 900
    dest = viewer.download_dataset("sales", 1, tmp_path / "back.csv")
    assert dest.read_bytes() == src.read_bytes()
    assert viewer.get_dataset("sales").latest_version == 1
    assert [d.name for d in viewer.list_datasets()] == ["sales"]


def test_parquet_is_described_by_rows_columns_and_preview(
    server: LiveServer, tmp_path: Path
) -> None:
    src = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1, 2, 3], "when": pd.to_datetime(["2024-01-01"] * 3)}).to_parquet(src)
    version = server.client("submitter").upload_dataset(name="events", path=src)
    assert version.rows == 3 and version.columns == ["a", "when"]
    assert version.preview is not None and version.preview[2]["a"] == 3
    assert version.content_type == "application/vnd.apache.parquet"


def test_the_same_bytes_twice_are_one_object(server: LiveServer, tmp_path: Path) -> None:
    client = server.client("submitter")
    src = write_csv(tmp_path / "a.csv", 10)
    first = client.upload_dataset(name="alpha", path=src)
    again = client.upload_dataset(name="alpha", path=src)
    other = client.upload_dataset(name="beta", path=src)
    assert again.version == first.version == 1  # re-uploading the latest bytes: same version
    assert other.sha256 == first.sha256 and other.dataset == "beta"
    assert stored_objects(server) == [f"datasets/sha256/{first.sha256}"]

    changed = write_csv(tmp_path / "b.csv", 11)
    second = client.upload_dataset(name="alpha", path=changed)
    back = client.upload_dataset(name="alpha", path=src)
    assert (second.version, back.version) == (2, 3)  # versions are history, objects are content
    assert len(stored_objects(server)) == 2
    assert client.get_dataset_version("alpha", 1).sha256 == first.sha256  # immutable


def test_upload_past_the_limit_is_refused_and_leaves_nothing(
    make_server: StoreServer, tmp_path: Path
) -> None:
    server = make_server(env={"HQ_MAX_UPLOAD_BYTES": str(1 * MIB)})
    client = server.client("submitter")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * MIB))
    with pytest.raises(errors.PayloadTooLarge, match="limit of 1048576 bytes"):
        client.upload_dataset(name="toobig", path=big)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap must hold while streaming
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
        for _ in range(40):
            yield os.urandom(64 * 1024)
        yield b"\r\n--B--\r\n"

    response = httpx.post(
        f"{server.url}/api/v1/datasets/toobig/versions",
        content=chunked(),
        headers={
            "Authorization": f"Bearer {server.admin_token}",
            "Content-Type": "multipart/form-data; boundary=B",
        },
    )
    assert response.status_code == 413
    assert "HQ_MAX_UPLOAD_BYTES" in response.json()["message"]
    with pytest.raises(errors.NotFound):
        client.get_dataset("toobig")
    assert stored_objects(server) == [] and spooled_files(server) == []
    small = client.upload_dataset(name="small", path=write_csv(tmp_path / "s.csv", 5))
    assert small.version == 1


def test_an_interrupted_upload_leaves_no_version(server: LiveServer) -> None:
    token = server.token("submitter")
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    assert host is not None and port is not None
    head = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="cut.csv"\r\n\r\n'
        b"a,b\n" + b"1,2\n" * 100_000
    )
    with socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /api/v1/datasets/cut/versions HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: 50000000\r\n\r\n" + head
        )
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while spooled_files(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    viewer = server.client("viewer")
    with pytest.raises(errors.NotFound):
        viewer.get_dataset("cut")
    assert stored_objects(server) == [] and spooled_files(server) == []

    # A body that ends without its closing boundary is refused too, and leaves nothing.
    response = httpx.post(
        f"{server.url}/api/v1/datasets/cut/versions",
        content=head,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=B",
        },
    )
    assert response.status_code == 400
    assert "ended before" in response.json()["message"]
    assert viewer.list_datasets() == [] and stored_objects(server) == []


def _rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, in KiB, from /proc."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@pytest.mark.slow
def test_a_200_mib_upload_keeps_server_memory_flat(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as fh:
        for _ in range(200):
            block = os.urandom(MIB)
            digest.update(block)
            fh.write(block)
    client = server.client("submitter")
    client.upload_dataset(name="warmup", path=write_csv(tmp_path / "w.csv", 50))  # imports, pools
    assert server.process is not None
    before, _ = _rss_kib(server.process.pid)
    started = time.monotonic()
    version = client.upload_dataset(name="big", path=big)
    elapsed = time.monotonic() - started
    after, peak = _rss_kib(server.process.pid)
    assert version.size == 200 * MIB and version.sha256 == digest.hexdigest()
    growth_mib = (peak - before) / 1024
    with capsys.disabled():
        print(
            f"\n[200 MiB upload] {elapsed:.2f} s; server RSS before {before / 1024:.1f} MiB, "
            f"peak {peak / 1024:.1f} MiB (+{growth_mib:.1f} MiB), after {after / 1024:.1f} MiB"
        )
    assert growth_mib < 40, f"server memory grew by {growth_mib:.1f} MiB during the upload"
    url = client.dataset_download_url("big", version.version)
    with httpx.stream("GET", url) as response:
        got = hashlib.sha256()
        for chunk in response.iter_bytes(MIB):
            got.update(chunk)
    assert got.hexdigest() == digest.hexdigest()


def test_upload_needs_a_writing_role_and_a_valid_name(server: LiveServer, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", 3)
    with pytest.raises(errors.Forbidden):
        server.client("viewer").upload_dataset(name="nope", path=src)
    with pytest.raises(errors.NotAuthenticated):
        HQClient(server.url).upload_dataset(name="nope", path=src)
    with pytest.raises(errors.ValidationFailed, match="invalid dataset name"):
        server.client("publisher").upload_dataset(name="Bad_Name", path=src)
    response = httpx.post(
        f"{server.url}/api/v1/datasets/plain/versions",
        content=b"a,b\n",
        headers={"Authorization": f"Bearer {server.admin_token}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 400 and "multipart/form-data" in response.json()["message"]
    assert server.client("viewer").list_datasets() == []


def test_a_tampered_download_url_is_refused(server: LiveServer, tmp_path: Path) -> None:
    client = server.client("submitter")
    client.upload_dataset(name="secret", path=write_csv(tmp_path / "s.csv", 4))
    url = client.dataset_download_url("secret", 1)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "sig" not in query:
        pytest.skip("S3 checks its own signatures; moto does not, so only the folder is tested")
    sig = query["sig"][0]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert httpx.get(bad).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403
    assert httpx.get(url).status_code == 200


def _publish_script_with_input(client: HQClient, name: str = "fit") -> None:
    client.publish_script_version(
        name=name,
        image=f"127.0.0.1:5000/{name}:1",
        digest="sha256:" + "a" * 64,
        manifest={
            "name": name,
            "command": ["python", "fit.py", "{inputs.table}"],
            "inputs": {"table": {"description": "CSV", "required": True}},
        },
    )


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_job_inputs_resolve_to_a_sha256_and_unknown_ones_are_refused(
    make_server: StoreServer, tmp_path: Path, db: str
) -> None:
    server = make_server(db=db)
    admin = server.client("admin")
    _publish_script_with_input(admin)
    v1 = admin.upload_dataset(name="iris", path=write_csv(tmp_path / "1.csv", 5))
    v2 = admin.upload_dataset(name="iris", path=write_csv(tmp_path / "2.csv", 6))
    submitter = server.client("submitter")
    pinned = submitter.submit_job(script="fit", inputs={"table": "iris@1"})
    latest = submitter.submit_job(script="fit", inputs={"table": "iris"})
    assert pinned.inputs["table"].sha256 == v1.sha256
    assert (latest.inputs["table"].version, latest.inputs["table"].sha256) == (2, v2.sha256)
    assert pinned.cache_key != latest.cache_key
    for ref, error, text in (
        ("nosuch", errors.NotFound, "dataset 'nosuch' not found"),
        ("iris@9", errors.NotFound, "has no version 9; its versions are 1..2"),
        ("iris@x", errors.ValidationFailed, "must be a number"),
        ("Iris!", errors.ValidationFailed, "invalid dataset reference"),
    ):
        with pytest.raises(error, match=text):
            submitter.submit_job(script="fit", inputs={"table": ref})
    assert admin.dataset_lineage("iris", 1).read_by_jobs == [pinned.id]
    assert admin.dataset_lineage("iris", 2).read_by_jobs == [latest.id]
    assert admin.dataset_lineage("iris", 2).produced_by_job is None


def test_cli_uploads_shows_and_downloads(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hq.cli import main
    from hq.cli.common import get_settings

    monkeypatch.setenv("HQ_URL", server.url)
    monkeypatch.setenv("HQ_TOKEN", server.token("submitter"))
    get_settings.cache_clear()
    runner = CliRunner()
    src = write_csv(tmp_path / "cli.csv", 7)
    result = runner.invoke(main, ["dataset", "upload", "cli-data", str(src)])
    assert result.exit_code == 0, result.output
    assert "cli-data@1" in result.output and "7 rows x 3 columns" in result.output
    result = runner.invoke(main, ["dataset", "show", "cli-data@1"])
    assert result.exit_code == 0 and "r6" in result.output
    result = runner.invoke(main, ["dataset", "list"])
    assert "cli-data" in result.output
    dest = tmp_path / "out"
    dest.mkdir()
    result = runner.invoke(main, ["dataset", "download", "cli-data", "-o", str(dest)])
    assert result.exit_code == 0, result.output
    assert (dest / "cli.csv").read_bytes() == src.read_bytes()
    result = runner.invoke(main, ["dataset", "show", "cli-data@4"])
    assert result.exit_code == 1 and "has no version 4" in result.output
    get_settings.cache_clear()


def test_bytes_io_uploads_stream_like_files(server: LiveServer) -> None:
    version = server.client("submitter").upload_dataset_stream(
        name="inline", stream=io.BytesIO(b"k,v\n1,2\n"), filename="inline.csv"
    )
    assert version.rows == 1 and version.columns == ["k", "v"]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_concurrent_uploads_get_distinct_versions(
    make_server: StoreServer, tmp_path: Path, db: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = make_server(db=db)
    token = server.token("submitter")
    files = [write_csv(tmp_path / f"{n}.csv", 10 + n) for n in range(6)]

    def send(path: Path) -> tuple[int, str]:
        with HQClient(server.url, token) as client:
            got = client.upload_dataset(name="busy", path=path)
            return got.version, got.sha256

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, files))
    assert sorted(v for v, _ in results) == [1, 2, 3, 4, 5, 6]
    assert {s for _, s in results} == {sha256_of(p) for p in files}
    assert len(stored_objects(server)) == 6
