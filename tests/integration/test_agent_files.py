"""The agent's files on the host: the content-addressed input cache and a job's folder.

Real files in a temporary folder: a cached input is verified before it is renamed into place
and fetched once; outputs are collected without ever following a symlink; results.json is
checked against the results schema and its size cap; placeholders are filled per argument.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.cache import CachedInput, InputCache, InputUnavailable
from agent.workspace import Workspace, substitute
from hq.schemas.agents import InputDownload, Lease
from hq.schemas.manifest import Manifest
from hq.schemas.results import MAX_RESULTS_BYTES

DATA = b"x,y\n1,2\n3,4\n"
SHA = hashlib.sha256(DATA).hexdigest()


def serve(data: bytes, calls: list[str]) -> Any:
    def download(url: str, dest: Path) -> None:
        calls.append(url)
        dest.write_bytes(data)

    return download


def fetch(cache: InputCache, data: bytes, calls: list[str] | None = None) -> CachedInput:
    """The cache entry for ``data``, pinned until released."""
    sha = hashlib.sha256(data).hexdigest()
    return cache.ensure(sha256=sha, size=len(data), url=sha, download=serve(data, calls or []))


def cached(cache: InputCache) -> set[bytes]:
    return {p.read_bytes() for p in cache.root.iterdir() if not p.name.startswith(".")}


def test_an_input_is_fetched_once_and_shared(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "cache")
    calls: list[str] = []
    with (
        cache.ensure(sha256=SHA, size=len(DATA), url="u1", download=serve(DATA, calls)) as one,
        cache.ensure(sha256=SHA, size=len(DATA), url="u2", download=serve(DATA, calls)) as two,
    ):
        first, second = one.path, two.path
    assert first == second == tmp_path / "cache" / SHA
    assert first.read_bytes() == DATA
    assert calls == ["u1"]
    assert oct(first.stat().st_mode & 0o777) == "0o444"


def test_bytes_that_do_not_match_the_sha256_never_enter_the_cache(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "cache")
    with pytest.raises(InputUnavailable, match="sha256 mismatch"):
        cache.ensure(
            sha256=SHA, size=len(DATA), url="u", download=serve(DATA.replace(b"4", b"5"), [])
        )
    with pytest.raises(InputUnavailable, match="expected 12 bytes"):
        cache.ensure(sha256=SHA, size=len(DATA), url="u", download=serve(DATA + b"!", []))
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_past_its_size_limit_the_cache_evicts_the_least_recently_used(tmp_path: Path) -> None:
    a, b, c = b"a" * 1000, b"b" * 1000, b"c" * 1000
    cache = InputCache(tmp_path / "cache", max_bytes=2500)
    for data in (a, b, a):  # a is used again after b: b is now the least recently used
        fetch(cache, data).release()
    fetch(cache, c).release()
    assert cached(cache) == {a, c}
    calls: list[str] = []
    fetch(cache, a, calls).release()
    assert calls == []  # a was kept, not fetched again


def test_an_input_in_use_on_the_host_is_never_evicted(tmp_path: Path) -> None:
    """A pin is a shared flock: another agent process on the host (here, another cache object
    over the same folder) cannot evict what a job of this one still needs."""
    a, b = b"a" * 1000, b"b" * 1000
    mine = InputCache(tmp_path / "cache", max_bytes=1500)
    other = InputCache(tmp_path / "cache", max_bytes=1500)
    with fetch(mine, a) as pinned:
        fetch(other, b).release()
        assert cached(mine) == {a, b}  # over the limit, but a is in use
        assert pinned.path.read_bytes() == a
    fetch(other, b).release()  # b is used again: a, now free and older, goes
    assert cached(mine) == {b}


def test_a_cache_name_must_be_a_sha256(tmp_path: Path) -> None:
    with pytest.raises(InputUnavailable, match="not a sha256"):
        InputCache(tmp_path).path_for("../../etc/passwd")


def lease(command: list[str], params: dict[str, Any], inputs: dict[str, Any]) -> Lease:
    manifest = Manifest.model_validate(
        {
            "name": "subst",
            "command": command,
            "inputs": {"table": {"required": True}, "extra": {"required": False}},
            "params": {
                "type": "object",
                "properties": {
                    "target": {"type": "string"},
                    "alpha": {"type": "number"},
                    "features": {"type": "array"},
                    "flag": {"type": "boolean"},
                },
            },
        }
    )
    return Lease(
        job_id="j",
        lease_token="t",
        attempt=1,
        lease_expires_at=datetime.now(UTC),
        image="i",
        digest="sha256:" + "0" * 64,
        manifest=manifest,
        params=params,
        inputs=[
            InputDownload(name=k, filename=v, sha256=SHA, size=1, url="u")
            for k, v in inputs.items()
        ],
        timeout_s=10,
    )


def test_placeholders_fill_each_argument_without_a_shell() -> None:
    command = [
        "python",
        "fit.py",
        "--data={inputs.table}",
        "--extra",
        "{inputs.extra}",
        "--target",
        "{params.target}",
        "--alpha",
        "{params.alpha}",
        "--features",
        "{params.features}",
        "--flag",
        "{params.flag}",
    ]
    params = {"target": "a b; rm -rf /", "alpha": 0.5, "features": ["x", "y"], "flag": True}
    assert substitute(lease(command, params, {"table": "d.csv"})) == [
        "python",
        "fit.py",
        "--data=/hq/inputs/table/d.csv",
        "--extra",
        "",
        "--target",
        "a b; rm -rf /",
        "--alpha",
        "0.5",
        "--features",
        '["x","y"]',
        "--flag",
        "true",
    ]


def test_outputs_are_regular_files_only(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "job")
    out = ws.outputs
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (out / "sub" / "b.txt").write_text("bb")
    os.symlink("/etc/passwd", out / "passwd")
    os.symlink("/etc", out / "etc")
    os.symlink("/etc/passwd", out / "sub" / "deep")
    os.mkfifo(out / "fifo")
    collected = ws.collect(max_files=100, max_file_bytes=1024)
    assert [(a.path, a.size) for a in collected.artifacts] == [("a.txt", 1), ("sub/b.txt", 2)]
    assert collected.artifacts[0].sha256 == hashlib.sha256(b"a").hexdigest()
    assert sorted(s.split(":")[0] for s in collected.skipped) == [
        "etc",
        "fifo",
        "passwd",
        "sub/deep",
    ]


def test_output_limits_skip_what_is_too_big_or_too_many(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "job")
    ws.outputs.mkdir(parents=True)
    for name, size in (("a", 10), ("b", 2000), ("c", 10), ("d", 10)):
        (ws.outputs / name).write_bytes(b"x" * size)
    collected = ws.collect(max_files=2, max_file_bytes=1024)
    assert [a.path for a in collected.artifacts] == ["a", "c"]
    assert [s.split(":")[0] for s in collected.skipped] == ["b", "d"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"metrics": {"r2": "high"}}', "metrics.r2"),
        ('{"metrics": {}, "extra": 1}', "extra"),
        ("not json", "Invalid JSON"),
        ('{"charts": [{"kind": "scatter", "table": "missing"}]}', "names table 'missing'"),
        ('{"metrics": {"ok": true}}', "metric 'ok' must be a number, not a boolean"),
        ('{"metrics": {"big": 1' + "0" * 300 + "}}", "integer metric 'big' is beyond"),
        ('{"metrics": {"big": 1e400}}', "metric 'big' must be a finite number"),
    ],
)
def test_a_bad_results_json_is_reported_with_what_is_wrong(
    tmp_path: Path, content: str, problem: str
) -> None:
    ws = Workspace(tmp_path / "job")
    ws.outputs.mkdir(parents=True)
    (ws.outputs / "results.json").write_text(content)
    results, error = ws.read_results(ws.collect(max_files=10, max_file_bytes=10**9).artifacts)
    assert results is None
    assert error is not None and problem in error


def test_metrics_keep_integers_as_integers(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "job")
    ws.outputs.mkdir(parents=True)
    (ws.outputs / "results.json").write_text('{"metrics": {"rows": 442, "r2": 0.5, "one": 1.0}}')
    results, error = ws.read_results(ws.collect(max_files=10, max_file_bytes=10**9).artifacts)
    assert error is None and results is not None
    assert {k: (type(v), v) for k, v in results.metrics.items()} == {
        "rows": (int, 442),
        "r2": (float, 0.5),
        "one": (float, 1.0),
    }


def test_results_json_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "job")
    ws.outputs.mkdir(parents=True)
    (ws.outputs / "results.json").write_text(
        json.dumps({"tables": {"t": [{"x": "y" * 1000}] * (MAX_RESULTS_BYTES // 1000)}})
    )
    results, error = ws.read_results(ws.collect(max_files=10, max_file_bytes=10**9).artifacts)
    assert results is None and error is not None and "limit" in error


def test_a_symlinked_results_json_is_not_read(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "job")
    ws.outputs.mkdir(parents=True)
    target = tmp_path / "elsewhere.json"
    target.write_text('{"metrics": {"stolen": 1}}')
    os.symlink(target, ws.outputs / "results.json")
    assert ws.read_results(ws.collect(max_files=10, max_file_bytes=10**9).artifacts) == (None, None)
