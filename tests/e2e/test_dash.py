"""The Dash app in Debian's Chromium, against a real HQ server (PostgreSQL) and a real agent.

Screenshots of every page land in test-artifacts/dash/<test>/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from playwright.sync_api import Page, expect

from hq import imaging
from tests.fixtures.agent import AgentFactory
from tests.fixtures.browser import DashFactory, DashServer, Shoot, field, pick
from tests.fixtures.docker import SCRIPTS_DIR
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgresql]  # `hq`: on PostgreSQL

PROTECTED_ROUTES = (
    "/",
    "/jobs",
    "/jobs/0123",
    "/scripts",
    "/scripts/linear-fit",
    "/datasets",
    "/datasets/points",
    "/compare",
    "/compare?sweep=abc",
    "/agents",
    "/download/jobs/0123/artifacts/residuals.csv",
    "/download/datasets/points/1",
    "/a-page-added-later",
    "/assets/../jobs",
)


@pytest.fixture
def hq(server_factory: ServerFactory) -> LiveServer:
    return server_factory(db="postgresql")


@pytest.fixture
def dash(hq: LiveServer, dash_factory: DashFactory) -> DashServer:
    return dash_factory(hq)


def test_a_visitor_without_login_is_sent_to_the_login_page_on_every_route(
    dash: DashServer, page: Page, shoot: Shoot
) -> None:
    for route in PROTECTED_ROUTES:
        page.goto(f"{dash.url}{route}")
        assert re.search(r"/login(\?|$)", page.url), f"{route} was served without a login"
        expect(page.locator("#login-submit")).to_be_visible()
    shoot(page, "login")
    # Dash's own endpoints refuse too, so no data leaks through a callback
    with httpx.Client(base_url=dash.url) as http:
        assert http.get("/_dash-layout").status_code == 401
        assert http.get("/_dash-dependencies").status_code == 401
        update = http.post("/_dash-update-component", json={"output": "x.children"})
        assert update.status_code == 401


def test_login_refuses_a_wrong_password_and_a_bad_token(dash: DashServer, page: Page) -> None:
    page.goto(f"{dash.url}/login")
    page.fill("#login-username", "sam")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    page.fill("#login-token", "hq_not-a-real-token")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("does not accept this token")
    page.goto(f"{dash.url}/jobs")
    assert "/login" in page.url


def test_a_pasted_hq_token_logs_in_and_logout_ends_the_session(
    hq: LiveServer, dash: DashServer, page: Page
) -> None:
    page.goto(f"{dash.url}/login?next=/agents")
    page.fill("#login-token", hq.token("viewer"))
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/agents$"))
    expect(page.locator("h1")).to_have_text("Agents")
    expect(page.locator("#nav-user")).to_have_text("token user (viewer)")
    expect(page.locator("#agents-drain")).to_be_disabled()
    page.goto(f"{dash.url}/logout")
    page.goto(f"{dash.url}/agents")
    assert "/login" in page.url


def test_a_viewer_sees_but_cannot_submit_or_drain(dash: DashServer, page: Page) -> None:
    dash.login(page, "val")
    expect(page.locator("#nav-user")).to_have_text("val (viewer)")
    page.goto(f"{dash.url}/agents")
    expect(page.locator("#agents-drain")).to_be_disabled()
    page.goto(f"{dash.url}/datasets")
    expect(page.locator("#dataset-upload-name")).to_be_disabled()


def test_login_sends_the_user_back_only_to_a_local_page(dash: DashServer, page: Page) -> None:
    page.goto(f"{dash.url}/login?next=//evil.example/x")
    page.fill("#login-username", "sam")
    page.fill("#login-password", "sam-password")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/jobs$"))
    assert page.url.startswith(dash.url)


# -- with a real agent running the real linear-fit image ----------------------------------------

DIABETES = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
RUN_TIMEOUT_MS = 180_000
GRAPH_JS = """([title]) => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: gd.layout && gd.layout.title ? gd.layout.title.text : null,
    traces: (gd.data || []).map(t => ({type: t.type, n: (t.x || t.y || []).length})),
})).filter(g => title === null || (g.title || '').includes(title))"""


def graphs(page: Page, title: str | None = None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(GRAPH_JS, [title])
    return result


def publish_linear_fit(
    hq: LiveServer,
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    built = example_images["linear-fit"]
    digest = imaging.local_digest(client=docker_client, ref=built.ref)
    hq.client("publisher").publish_script_version(
        name="linear-fit", image=built.ref, digest=digest, manifest=built.manifest
    )


@pytest.mark.docker
def test_submit_linear_fit_from_the_form_and_watch_it_succeed_then_see_its_charts_and_tables(
    hq: LiveServer,
    dash: DashServer,
    page: Page,
    shoot: Shoot,
    hq_agents: AgentFactory,
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    publish_linear_fit(hq, docker_client, example_images)
    dash.login(page, "sam")
    # upload the data through the datasets page
    page.goto(f"{dash.url}/datasets")
    page.fill("#dataset-upload-name", "diabetes")
    page.locator("#dataset-upload input[type=file]").set_input_files(str(DIABETES))
    expect(page.locator("#dataset-message")).to_contain_text("Stored diabetes v1")
    shoot(page, "datasets")
    # the form generated from the manifest's params schema
    page.goto(f"{dash.url}/scripts/linear-fit")
    expect(page.locator("h1")).to_have_text("linear-fit v1")
    expect(page.locator(field("value", "alpha"))).to_have_value("0")  # the schema's default
    page.locator("#script-submit").click()
    expect(page.locator(field("error", "target"))).to_have_text("target is required")
    expect(page.locator(field("input-error", "table"))).to_have_text("input table needs a dataset")
    page.fill(field("value", "target"), "progression")
    pick(page, field("input", "table"), "diabetes")
    shoot(page, "script-form")
    page.locator("#script-submit").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#job-status")).to_have_text("queued")
    page.evaluate("window.__not_reloaded = true")
    # the jobs page (reached by its link, no reload) shows it queued, coloured by status
    page.locator("a.nav-link", has_text="Jobs").click()
    first = page.locator("#jobs-grid .ag-center-cols-container .ag-row[row-index='0']")
    expect(first.locator("[col-id='status']")).to_have_text("queued")
    hq_agents(hq, capacity=2)  # work is picked up only now: the grid must notice by itself
    expect(first.locator("[col-id='status']")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    colour = first.locator("[col-id='status']").evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(25, 135, 84)"
    shoot(page, "jobs")
    # one click opens it: its residual chart (drawn from the spec) and its tables in grids
    first.locator("[col-id='script']").click()
    page.wait_for_url(f"{dash.url}/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 4")
    residuals = graphs(page, "Residuals vs fitted")
    assert residuals and residuals[0]["traces"][0]["type"] == "scatter"
    assert residuals[0]["traces"][0]["n"] == 442
    for table in ("coefficients", "residuals"):
        grid = page.locator(f"[id='{_aio('grid', 'table-' + table)}'] .ag-center-cols-container")
        expect(grid.locator(".ag-row").first).to_be_visible()
    expect(page.locator("#job-metrics")).to_contain_text("r2")
    expect(page.locator("#job-logs")).to_contain_text("R2=")
    expect(page.locator("#job-artifacts")).to_contain_text("residuals.csv")
    expect(page.locator("#job-timeline")).to_contain_text("succeeded")
    expect(page.locator("#job-cancel")).to_be_disabled()
    shoot(page, "job")
    # rerun: a new job with the same pinned version and params, watched live on its page
    page.locator("#job-rerun").click()
    page.wait_for_url(lambda url: "/jobs/" in url and not url.endswith(job_id))
    rerun_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1")).to_have_text(f"Job {rerun_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("window.__not_reloaded === true"), "a page was reloaded"
    with hq.client("viewer") as viewer:
        first_job, rerun = viewer.get_job(job_id), viewer.get_job(rerun_id)
    assert rerun.status == "succeeded" and rerun.params == first_job.params
    assert rerun.digest == first_job.digest and rerun.inputs == first_job.inputs


def set_jobs_filter(page: Page, model: dict[str, Any]) -> None:
    """Sets the jobs grid's filter model, again until it sticks.

    dash-ag-grid re-applies its `filterModel` prop whenever the prop changes, and the grid's
    first onFilterChanged sets that prop to `{}` a moment after the page loads: a model set in
    that instant is wiped. A person cannot type a filter that fast; a test can.
    """
    page.wait_for_function(
        """(model) => {
            let api, now;
            try { api = dash_ag_grid.getApi('jobs-grid'); now = api.getFilterModel(); }
            catch (e) { return false; }  // the grid is not up yet
            const same = (a, b) => Object.keys(a).length === Object.keys(b).length
                && Object.keys(a).every(k => b[k] && b[k].type === a[k].type
                                             && b[k].filter === a[k].filter);
            if (same(model, now)) return true;
            api.setFilterModel(model);
            return false;
        }""",
        arg=model,
        polling=250,
    )


def _aio(sub: str, aio_id: str) -> str:
    return json.dumps(
        {"aio_id": aio_id, "component": "ResultTableAIO", "subcomponent": sub},
        separators=(",", ":"),
        sort_keys=True,
    )


@pytest.mark.docker
def test_a_sweep_from_the_form_draws_the_scatter_and_the_box_plot_on_the_compare_page(
    hq: LiveServer,
    dash: DashServer,
    page: Page,
    shoot: Shoot,
    hq_agents: AgentFactory,
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    publish_linear_fit(hq, docker_client, example_images)
    with hq.client("submitter") as client:
        client.upload_dataset(name="diabetes", path=DIABETES)
    agent = hq_agents(hq, capacity=2)
    dash.login(page, "sam")
    page.goto(f"{dash.url}/scripts/linear-fit")
    page.fill(field("value", "target"), "progression")
    pick(page, field("input", "table"), "diabetes")
    page.fill(field("sweep", "alpha"), "0, 10, 1000")
    page.fill("#script-repeats", "2")
    page.locator("#script-sweep").click()
    page.wait_for_url(re.compile(r".*/compare\?sweep=[0-9a-f-]{36}$"))
    sweep_id = page.url.rsplit("=", 1)[1]
    # the page follows the sweep (a note says it still runs) until all 6 jobs are in
    rows = page.locator(f"[id='{_aio('grid', 'compare')}'] .ag-center-cols-container .ag-row")
    expect(page.locator("#compare-message")).to_contain_text("still running")
    expect(page.locator("#compare-message")).to_be_empty(timeout=RUN_TIMEOUT_MS)
    expect(rows).to_have_count(6)
    with hq.client("viewer") as viewer:
        jobs = viewer.list_jobs(sweep=sweep_id).items
    assert [j.status for j in jobs] == ["succeeded"] * 6, [
        (j.params, j.failure_reason) for j in jobs
    ]
    page.wait_for_function(
        """() => { const gd = document.querySelector('#compare-scatter .js-plotly-plot');
                   return gd && gd.data && gd.data.length === 2 && gd.data[0].x.length === 6; }""",
        polling=100,
    )
    scatter = graphs(page, "R²")
    assert scatter and [t["type"] for t in scatter[0]["traces"]] == ["scatter", "scatter"]
    assert "rmse vs alpha" in scatter[0]["title"] or "vs alpha" in scatter[0]["title"]
    boxes = graphs(page, "over repeats")
    assert [t["type"] for t in boxes[0]["traces"]] == ["box", "box", "box"]
    assert all(t["n"] == 2 for t in boxes[0]["traces"])  # two repeats per setting
    parallel = graphs(page, "params and")
    assert parallel[0]["traces"][0]["type"] == "parcoords"
    shoot(page, "compare")
    # the table exports to CSV: a header of params and metrics, and one line per job
    with page.expect_download() as download:
        page.locator(f"[id='{_aio('export', 'compare')}']").click()
    lines = Path(download.value.path()).read_text().strip().splitlines()
    assert len(lines) == 7 and "alpha" in lines[0] and "rmse" in lines[0]
    # the Compare page lists recent sweeps; a click opens one
    page.goto(f"{dash.url}/compare")
    sweeps = page.locator("#compare-sweeps-grid .ag-center-cols-container .ag-row")
    expect(sweeps.first).to_contain_text(sweep_id)
    expect(sweeps.first).to_contain_text("succeeded: 6")
    sweeps.first.locator("[col-id='sweep']").click()
    page.wait_for_url(re.compile(rf".*/compare\?sweep={sweep_id}$"))
    expect(rows).to_have_count(6)
    # the jobs grid filters on the server: by sweep, then by status
    page.goto(f"{dash.url}/jobs")
    grid_rows = page.locator("#jobs-grid .ag-center-cols-container .ag-row")
    expect(grid_rows.first).to_be_visible()
    set_jobs_filter(
        page, {"sweep_id": {"filterType": "text", "type": "equals", "filter": sweep_id}}
    )
    expect(grid_rows).to_have_count(6)
    # ticking two jobs compares just those
    for index in (0, 1):
        page.locator(f"#jobs-grid .ag-row[row-index='{index}'] input.ag-checkbox-input").check()
    page.locator("#jobs-compare").click()
    page.wait_for_url(re.compile(r".*/compare\?jobs=[0-9a-f-]+,[0-9a-f-]+&scripts=linear-fit$"))
    expect(rows).to_have_count(2)
    page.wait_for_function(
        """() => { const gd = document.querySelector('#compare-scatter .js-plotly-plot');
                   return gd && gd.data && gd.data.length > 0 && gd.data[0].x.length === 2; }"""
    )
    page.goto(f"{dash.url}/jobs")
    expect(grid_rows.first).to_be_visible()
    set_jobs_filter(page, {"status": {"filterType": "text", "type": "equals", "filter": "failed"}})
    expect(grid_rows).to_have_count(0)
    set_jobs_filter(page, {"status": {"filterType": "text", "type": "equals", "filter": "done"}})
    expect(page.locator("#jobs-error")).to_contain_text("unknown status 'done'")
    # every other page, for a person to look at
    for path, heading in (
        ("/jobs", "Jobs"),
        ("/scripts", "Scripts"),
        ("/scripts/linear-fit", "linear-fit v1"),
        ("/datasets", "Datasets"),
        ("/datasets/diabetes", "Dataset diabetes"),
        ("/agents", "Agents"),
    ):
        page.goto(f"{dash.url}{path}")
        expect(page.locator("h1")).to_have_text(heading)
        page.wait_for_timeout(500)
        shoot(page, path.strip("/").replace("/", "-"))
    expect(page.locator("#agents-grid")).to_contain_text(agent.name)
    expect(page.locator("#agents-grid")).to_contain_text("/2")
    # the dataset page: sha256, a preview of the first rows, and the jobs that read it
    page.goto(f"{dash.url}/datasets/diabetes")
    digest = hashlib.sha256(DIABETES.read_bytes()).hexdigest()
    expect(page.locator("#dataset-detail")).to_contain_text(digest)
    preview = page.locator("#dataset-preview-grid .ag-center-cols-container .ag-row")
    expect(preview.first).to_contain_text("151")  # the first row's progression
    lineage = page.locator("#dataset-lineage-grid .ag-center-cols-container .ag-row")
    expect(lineage.first).to_contain_text("read by")


def test_the_script_form_marks_bad_fields_then_submits_a_job_and_a_sweep_and_opens_them(
    hq: LiveServer, dash: DashServer, page: Page, shoot: Shoot
) -> None:
    """ParamFormAIO checks itself and the page submits what it hands over (no agent runs)."""
    manifest = imaging.load_manifest(SCRIPTS_DIR / "linear-fit")
    hq.client("publisher").publish_script_version(
        name="linear-fit", image="hq/linear-fit:1", digest="sha256:" + "2" * 64, manifest=manifest
    )
    with hq.client("submitter") as client:
        client.upload_dataset(name="diabetes", path=DIABETES)
    dash.login(page, "sam")
    page.goto(f"{dash.url}/scripts/linear-fit")
    page.fill(field("value", "features"), "[age")
    page.locator("#script-submit").click()
    expect(page.locator("#script-message")).to_have_text("Fix the fields marked below.")
    expect(page.locator(field("error", "features"))).to_contain_text("features: is not valid JSON")
    expect(page.locator(field("error", "target"))).to_have_text("target is required")
    expect(page.locator(field("input-error", "table"))).to_have_text("input table needs a dataset")
    page.fill(field("value", "features"), "")
    page.fill(field("value", "alpha"), "2.5")
    page.fill(field("value", "target"), "progression")
    pick(page, field("input", "table"), "diabetes")
    # a sweep too large is refused before anything is submitted, and the fields are clean now
    page.fill(field("sweep", "alpha"), ", ".join(str(n) for n in range(11)))
    page.fill("#script-repeats", "1000")
    page.locator("#script-sweep").click()
    expect(page.locator("#script-message")).to_have_text("A sweep makes at most 10000 jobs.")
    expect(page.locator(field("error", "features"))).to_be_empty()
    expect(page.locator(field("error", "target"))).to_be_empty()
    expect(page.locator(field("input-error", "table"))).to_be_empty()
    shoot(page, "script-form-checked")
    page.fill(field("sweep", "alpha"), "0, 10.5")
    page.fill("#script-repeats", "2")
    page.locator("#script-sweep").click()
    page.wait_for_url(re.compile(r".*/compare\?sweep=[0-9a-f-]{36}$"))
    sweep_id = page.url.rsplit("=", 1)[1]
    # a single job takes the value field, not the sweep's values
    page.goto(f"{dash.url}/scripts/linear-fit")
    page.fill(field("value", "target"), "progression")
    page.fill(field("value", "alpha"), "2.5")
    page.fill(field("sweep", "alpha"), "0, 10.5")
    pick(page, field("input", "table"), "diabetes")
    page.locator("#script-submit").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#job-status")).to_have_text("queued")
    with hq.client("viewer") as viewer:
        job = viewer.get_job(job_id)
        swept = viewer.list_jobs(sweep=sweep_id).items
    assert job.params == {"target": "progression", "alpha": 2.5}
    assert (job.inputs["table"].dataset, job.inputs["table"].version) == ("diabetes", 1)
    assert sorted(j.params["alpha"] for j in swept) == [0, 0, 10.5, 10.5]
    assert {j.params["target"] for j in swept} == {"progression"}
    # a viewer sees the form but cannot press either button
    page.goto(f"{dash.url}/logout")
    dash.login(page, "val")
    page.goto(f"{dash.url}/scripts/linear-fit")
    expect(page.locator("#script-submit")).to_be_disabled()
    expect(page.locator("#script-sweep")).to_be_disabled()


@pytest.mark.docker
def test_an_admin_drains_an_agent_from_the_agents_page(
    hq: LiveServer, dash: DashServer, page: Page, hq_agents: AgentFactory
) -> None:
    agent = hq_agents(hq, capacity=3, labels="gpu")
    dash.login(page, "ada")
    page.goto(f"{dash.url}/agents")
    row = page.locator("#agents-grid .ag-center-cols-container .ag-row").first
    expect(row).to_contain_text(agent.name)
    expect(row).to_contain_text("0/3")
    expect(row).to_contain_text("gpu")
    row.locator("[col-id='name']").click()
    page.locator("#agents-drain").click()
    expect(page.locator("#agents-message")).to_have_text(f"Draining {agent.name}.")
    with hq.client("viewer") as viewer:
        assert [a.drain_requested for a in viewer.list_agents() if a.name == agent.name] == [True]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HQ_DASH_SECRET_KEY": "changeme"}, "HQ_DASH_SECRET_KEY must be a random string"),
        ({"HQ_DASH_USERS": "ann:pw:king"}, "role 'king'"),
    ],
)
def test_hq_dash_refuses_a_placeholder_secret_and_bad_accounts(
    env: dict[str, str], says: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hq", "dash", "--port", "1"],
        env={**os.environ, "HQ_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
