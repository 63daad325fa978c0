"""The script and dataset pages in Debian's Chromium, against a real HQ server (PostgreSQL).

No agent and no Docker: versions are published with made-up digests, so jobs stay queued. What
test_dash.py does not check already: the script page's version picker (what is submitted from
v1 runs v1's digest), its reuse box, and a dataset version's details, preview, download link and
lineage, with no preview for a file that is not a table.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from hq import imaging
from hq.schemas.jobs import JobCreate
from tests.fixtures.browser import DashFactory, DashServer, Shoot, field, pick
from tests.fixtures.docker import SCRIPTS_DIR
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DIABETES = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"


@pytest.fixture
def hq(server_factory: ServerFactory) -> LiveServer:
    server = server_factory(db="postgresql")
    manifest = imaging.load_manifest(SCRIPTS_DIR / "linear-fit")
    with server.client("publisher") as publisher:
        for fill in ("1", "2"):  # two versions: v2 is the latest
            publisher.publish_script_version(
                name="linear-fit",
                image="hq-test/linear-fit:form",
                digest="sha256:" + fill * 64,
                manifest=manifest,
            )
    with server.client("submitter") as submitter:
        submitter.upload_dataset(name="diabetes", path=DIABETES)
    return server


@pytest.fixture
def dash(hq: LiveServer, dash_factory: DashFactory) -> DashServer:
    return dash_factory(hq)


def fill_target_and_table(page: Page) -> None:
    page.fill(field("value", "target"), "progression")
    pick(page, field("input", "table"), "diabetes")


def test_the_script_page_submits_the_version_picked_and_a_sweep_without_reuse(
    hq: LiveServer, dash: DashServer, page: Page
) -> None:
    dash.login(page, "sam")
    page.goto(f"{dash.url}/scripts/linear-fit")
    expect(page.locator("h1")).to_have_text("linear-fit v2")
    # the version picker opens v1; a job submitted from there runs v1's digest
    pick(page, "#script-version", "v1")
    page.wait_for_url(re.compile(r".*/scripts/linear-fit\?version=1$"))
    expect(page.locator("h1")).to_have_text("linear-fit v1")
    fill_target_and_table(page)
    page.locator("#script-submit").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    with hq.client("viewer") as viewer:
        job = viewer.get_job(job_id)
    assert job.script_version == 1 and job.digest == "sha256:" + "1" * 64
    # a sweep of the latest version with the reuse box unticked: none of its jobs reuse
    page.goto(f"{dash.url}/scripts/linear-fit")
    fill_target_and_table(page)
    page.fill(field("sweep", "alpha"), "1, 2")
    page.locator("#script-reuse input[type=checkbox]").uncheck()
    page.locator("#script-sweep").click()
    page.wait_for_url(re.compile(r".*/compare\?sweep=[0-9a-f-]{36}$"))
    sweep_id = page.url.rsplit("=", 1)[1]
    with hq.client("viewer") as viewer:
        sweep = viewer.get_sweep(sweep_id)
        jobs = viewer.list_jobs(sweep=sweep_id).items
    assert sweep.total == 2 and sweep.script_version == 2
    assert sorted(j.params["alpha"] for j in jobs) == [1, 2]
    assert not any(j.reuse for j in jobs)


def test_the_dataset_page_shows_the_version_picked_its_preview_download_and_lineage(
    hq: LiveServer, dash: DashServer, page: Page, shoot: Shoot, tmp_path: Path
) -> None:
    small = tmp_path / "diabetes.csv"
    small.write_text("age,progression\n59,151\n48,75\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a table\n")
    with hq.client("submitter") as submitter:
        submitter.upload_dataset(name="diabetes", path=small)
        submitter.upload_dataset(name="notes", path=notes)
        job = submitter.submit_job(
            JobCreate(
                script="linear-fit",
                params={"target": "progression"},
                inputs={"table": "diabetes@1"},
            )
        )
    dash.login(page, "val")
    # the latest version first: its sha256, shape and preview
    page.goto(f"{dash.url}/datasets/diabetes")
    expect(page.locator("h1")).to_have_text("Dataset diabetes")
    detail = page.locator("#dataset-detail")
    expect(detail).to_contain_text("Version 2")
    expect(detail).to_contain_text(hashlib.sha256(small.read_bytes()).hexdigest())
    expect(detail).to_contain_text("age, progression")
    versions = page.locator("#dataset-versions-grid .ag-center-cols-container .ag-row")
    expect(versions).to_have_count(2)
    preview = page.locator("#dataset-preview-grid .ag-center-cols-container .ag-row")
    expect(preview).to_have_count(2)
    expect(page.locator("h2", has_text="Preview")).to_have_text("Preview (first 2 rows)")
    expect(page.locator("#dataset-lineage-grid .ag-center-cols-container .ag-row")).to_have_count(0)
    # the picker opens v1, which the queued job reads; a click on the job opens it
    pick(page, "#dataset-version", "v1")
    page.wait_for_url(re.compile(r".*/datasets/diabetes\?version=1$"))
    expect(detail).to_contain_text("Version 1")
    expect(detail).to_contain_text(hashlib.sha256(DIABETES.read_bytes()).hexdigest())
    expect(preview.first).to_contain_text("151")
    link = detail.locator("a", has_text="download")
    assert link.get_attribute("href") == "/download/datasets/diabetes/1"
    downloaded = httpx.get(
        f"{dash.url}/download/datasets/diabetes/1",
        cookies={c["name"]: c["value"] for c in page.context.cookies()},
        follow_redirects=True,
    )
    assert downloaded.status_code == 200 and downloaded.content == DIABETES.read_bytes()
    lineage = page.locator("#dataset-lineage-grid .ag-center-cols-container .ag-row")
    expect(lineage).to_have_count(1)
    expect(lineage.first).to_contain_text("read by")
    shoot(page, "dataset")
    lineage.first.locator("[col-id='job']").click()
    # (only the path is set: the dataset page's ?version=1 stays on, and the job page ignores it)
    page.wait_for_url(re.compile(rf".*/jobs/{job.id}(\?version=1)?$"))
    expect(page.locator("h1")).to_have_text(f"Job {job.id}")
    # a file that is not a table is a dataset with no preview
    page.goto(f"{dash.url}/datasets/notes")
    expect(page.locator("#dataset-detail")).to_contain_text("notes.txt")
    expect(page.get_by_text("No preview for this file type.")).to_be_visible()
