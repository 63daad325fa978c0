"""What the client puts on the wire: query parameters made one way, request bodies from
schemas, and the lease handle sending exactly what the token-taking calls send. No I/O: an
httpx mock transport records each request and answers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hq import errors
from hq.client import HQClient, query
from hq.schemas.agents import ArtifactFile, CompleteRequest, JobOutcome
from hq.schemas.common import JobStatus, Role
from hq.schemas.jobs import LogLine

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FILES = [ArtifactFile(path="out/a.csv", size=3, sha256="0" * 64)]
LINES = [LogLine(at=AT, stream="stderr", text="hello")]
ANSWERS: dict[str, Any] = {
    "heartbeat": {"lease_expires_at": AT.isoformat(), "cancel_requested": False},
    "logs": {},
    "uploads": {"uploads": []},
    "complete": {"job_id": "j1", "status": "failed", "accepted": True},
}


def recording_client() -> tuple[HQClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        kind = request.url.path.rsplit("/", 1)[-1]
        if kind not in ANSWERS:  # a call whose request, not its answer, is under test
            return httpx.Response(404, json={"message": "not in this mock"})
        return httpx.Response(200, json=ANSWERS[kind])

    return HQClient("http://hq.test", "tok", transport=httpx.MockTransport(answer)), seen


def test_query_leaves_out_none_and_formats_times_enums_and_lists_in_order() -> None:
    params = query(
        b=1, a=None, when=AT, role=Role.viewer, status=["queued", "running"], empty=[], s=""
    )
    assert list(params.items()) == [
        ("b", 1),
        ("when", "2026-01-02T03:04:05+00:00"),
        ("role", "viewer"),
        ("status", "queued,running"),
        ("empty", ""),
        ("s", ""),
    ]


def test_list_jobs_sends_one_query_string_with_what_was_given() -> None:
    client, seen = recording_client()
    with client, pytest.raises(errors.NotFound):
        client.list_jobs(status=["queued", "failed"], script="fit", limit=7)
    assert (
        str(seen[0].url.query, "ascii")
        == "sort=-created_at&limit=7&status=queued%2Cfailed&script=fit"
    )


def test_results_leave_out_an_empty_status_job_list_and_cursor() -> None:
    client, seen = recording_client()
    with client, pytest.raises(errors.NotFound):
        client.results(script="fit", status="", job_ids=[], cursor="")
    assert dict(seen[0].url.params) == {"script": "fit", "format": "json", "limit": "10000"}


LeaseCall = Callable[[HQClient], object]
PAIRS: list[tuple[str, LeaseCall, LeaseCall]] = [
    (
        "heartbeat",
        lambda c: c.heartbeat("j1", lease_token="t1"),
        lambda c: c.lease("j1", token="t1").heartbeat(),
    ),
    (
        "logs",
        lambda c: c.send_logs("j1", lease_token="t1", lines=LINES),
        lambda c: c.lease("j1", token="t1").send_logs(LINES),
    ),
    (
        "uploads",
        lambda c: c.artifact_uploads("j1", lease_token="t1", files=FILES),
        lambda c: c.lease("j1", token="t1").upload_urls(FILES),
    ),
    (
        "complete",
        lambda c: c.complete(
            "j1",
            CompleteRequest(
                lease_token="t1", status=JobStatus.failed, exit_code=2, artifacts=FILES
            ),
        ),
        lambda c: c.lease("j1", token="t1").complete(
            JobOutcome(status=JobStatus.failed, exit_code=2, artifacts=FILES)
        ),
    ),
]


@pytest.mark.parametrize(("name", "by_token", "by_handle"), PAIRS, ids=[p[0] for p in PAIRS])
def test_a_lease_handle_sends_what_the_token_calls_send(
    name: str, by_token: LeaseCall, by_handle: LeaseCall
) -> None:
    client, seen = recording_client()
    with client:
        by_token(client)
        by_handle(client)
    first, second = seen
    assert (first.method, first.url, first.content) == (second.method, second.url, second.content)
    assert first.url.path.startswith("/api/v1/jobs/j1/")
    assert json.loads(first.content)["lease_token"] == "t1"


def test_the_heartbeat_and_log_bodies_are_the_documented_json() -> None:
    client, seen = recording_client()
    with client:
        client.lease("j1", token="t1").heartbeat()
        client.lease("j1", token="t1").send_logs(LINES)
        client.lease("j1", token="t1").heartbeat(paused_s=42)
    assert json.loads(seen[0].content) == {"lease_token": "t1", "paused_s": 0}
    assert json.loads(seen[2].content) == {"lease_token": "t1", "paused_s": 42}
    assert json.loads(seen[1].content) == {
        "lease_token": "t1",
        "lines": [{"at": "2026-01-02T03:04:05Z", "stream": "stderr", "text": "hello"}],
    }


def test_a_lease_handle_never_shows_its_token() -> None:
    client, _ = recording_client()
    with client:
        handle = client.lease("j1", token="secret-token")
    assert "secret-token" not in repr(handle)
    assert handle.job_id == "j1"


def test_a_manifest_given_as_a_dict_goes_to_hq_as_it_is() -> None:
    client, seen = recording_client()
    manifest = {"name": "broken-one", "command": ["python", "{params.n}"], "extra": 1}
    with client, pytest.raises(errors.NotFound):
        client.publish_script_version(
            name="broken-one", image="i:1", digest="not-a-digest", manifest=manifest
        )
    assert json.loads(seen[0].content) == {
        "image": "i:1",
        "digest": "not-a-digest",
        "manifest": manifest,
    }


def test_job_outcome_is_complete_request_without_the_token() -> None:
    request, outcome = CompleteRequest.model_fields, JobOutcome.model_fields
    assert list(request) == ["lease_token", *outcome]
    for name, field in outcome.items():
        assert (field.annotation, field.default, field.metadata) == (
            request[name].annotation,
            request[name].default,
            request[name].metadata,
        )
