"""The flat results table past one page: JSON pages that cover every row once, in order, and a
CSV with every row, whose header names a metric first seen in the last job.

More rows than a default page (10,000) and than a CSV batch (5,000), put straight into the
database, on both databases.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from hq.server.db.types import utcnow
from tests.fixtures.factories import build_job
from tests.fixtures.inprocess import InProcess

JOBS = 12_345


@pytest.fixture
async def jobs(inprocess: InProcess) -> list[str]:
    """JOBS succeeded jobs of script 'fit' (oldest first), one failed, one of another script."""
    base = utcnow() - timedelta(hours=1)
    ids = []
    async with inprocess.sessionmaker() as session, session.begin():
        for i in range(JOBS):
            metrics = {"r2": i / JOBS} if i < JOBS - 1 else {"r2": 1.0, "late": 7.0}
            job, _ = build_job(
                script_name="fit",
                status="succeeded",
                params={"i": i, "alpha": 0.5},
                metrics=metrics,
                created_at=base + timedelta(milliseconds=i),
            )
            session.add(job)
            ids.append(job.id)
        session.add(build_job(script_name="fit", status="failed", metrics={})[0])
        session.add(build_job(script_name="other", status="succeeded", metrics={"r2": 0})[0])
    return ids


@pytest.mark.slow  # 12,345 rows put in first: about 3 s a database
async def test_json_pages_cover_every_row_once_in_order(
    inprocess: InProcess, jobs: list[str]
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"script": "fit", "status": "succeeded", "limit": 5_000}
        answer = await inprocess.http.get(
            "/api/v1/results", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        seen.extend(row["job_id"] for row in page["rows"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == jobs
    assert page["metric_columns"] == ["late", "r2"]  # the last page has the late metric
    default = (await inprocess.http.get("/api/v1/results", params={"script": "fit"})).json()
    assert len(default["rows"]) == 10_000 and default["next_cursor"] is not None


@pytest.mark.slow  # 12,345 rows put in first: about 3 s a database
async def test_csv_has_every_row_and_every_column(inprocess: InProcess, jobs: list[str]) -> None:
    answer = await inprocess.http.get(
        "/api/v1/results", params={"script": "fit", "status": "succeeded", "format": "csv"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(answer.text))
    assert reader.fieldnames is not None and reader.fieldnames[-2:] == ["late", "r2"]
    rows = list(reader)
    assert [r["job_id"] for r in rows] == jobs
    assert rows[-1]["late"] == "7.0" and rows[0]["late"] == ""
    assert {r["alpha"] for r in rows} == {"0.5"}
    cut = await inprocess.http.get(
        "/api/v1/results", params={"script": "fit", "format": "csv", "limit": 7}
    )
    assert [r["job_id"] for r in csv.DictReader(io.StringIO(cut.text))] == jobs[:7]


async def test_a_cursor_that_was_not_handed_out_is_400(inprocess: InProcess) -> None:
    answer = await inprocess.http.get(
        "/api/v1/results", params={"script": "fit", "cursor": "bm90LWEtY3Vyc29y"}
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "cursor"
