"""The log shipper's calls on the wire: a job's last few lines go with ``complete``, not in a
request of their own, and lines still go out while a job runs. An httpx mock transport records
each request (the shipper's own thread makes them)."""

from __future__ import annotations

import time

from agent.logship import LogShipper
from tests.unit.test_client_wire import recording_client


def test_the_last_lines_of_a_short_job_wait_for_complete_and_make_no_request() -> None:
    client, seen = recording_client()
    shipper = LogShipper(lease=client.lease("j1", token="t1"), flush_s=60)
    shipper.start()
    shipper.note("started warm")
    shipper.feed("stdout", b"hello\npartial")
    last = shipper.close_for_complete()
    assert [(line.stream, line.text) for line in last] == [
        ("agent", "started warm"),
        ("stdout", "hello"),
        ("stdout", "partial"),
    ]
    assert seen == [], "the stop of the shipper's thread sent the lines meant for complete"


def test_lines_go_out_every_flush_while_the_job_runs() -> None:
    client, seen = recording_client()
    shipper = LogShipper(lease=client.lease("j1", token="t1"), flush_s=0.05)
    shipper.start()
    shipper.feed("stdout", b"tick\n")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.url.path for r in seen] == ["/api/v1/jobs/j1/logs"]
    assert shipper.close_for_complete() == []
