"""The pipelines pages in Debian's Chromium, against a real HQ server (PostgreSQL).

A diamond pipeline (prepare -> left, right -> join) is submitted through ``hq.client`` and run by
a fake agent acting through the real lease API (no Docker: the steps' files are written by the
test, so what the page shows is the server's real pipeline state). A second submission with
one changed step reuses two steps; its page is read while a step is queued, then refreshes by
itself when that step fails and the join is cancelled with the reason. The last test runs the
example pipeline (describe -> clean -> linear-fit) on a real agent and Docker.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, expect

from hq import imaging
from hq.client import HQClient
from hq.schemas.agents import ArtifactFile, CompleteRequest, Lease
from hq.schemas.common import JobStatus
from hq.schemas.pipelines import PipelineCreate, PipelineRead
from hq.schemas.results import Results
from tests.e2e.test_agent_examples import hq_cli
from tests.fixtures.agent import AgentFactory
from tests.fixtures.api import FakeAgent, publish_fake, unique_name, unique_queue
from tests.fixtures.browser import DashFactory, DashServer, Shoot
from tests.fixtures.docker import REPO_ROOT, SCRIPTS_DIR
from tests.fixtures.server import LiveServer, ServerFactory

POLL_MS = 1500  # dash_app/pages/pipeline.py

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABLE = {"description": "a CSV", "required": True}
PARAMS = {
    "type": "object",
    "properties": {"k": {"type": "integer", "minimum": 0, "default": 1}},
    "additionalProperties": False,
}
COLOURS = {  # dash_app/logic/status.py, as the browser reports them
    "succeeded": "#198754",
    "queued": "#6c757d",
    "waiting": "#adb5bd",
    "failed": "#dc3545",
    "cancelled": "#b8860b",
}
FIGURE_JS = """() => {
    const gd = document.querySelector('#pipeline-graph .js-plotly-plot');
    if (!gd || !gd.data || gd.data.length !== 2) { return null; }
    const [edges, steps] = gd.data;
    // Mid-redraw (Plotly.react from one pipeline's figure to the next) a part may be missing.
    if (!edges.customdata || !steps.customdata || !gd.layout.shapes || !gd.layout.annotations) {
        return null;
    }
    const pairs = [];
    for (let i = 0; i < edges.customdata.length; i += 3) { pairs.push(edges.customdata[i]); }
    return {
        steps: steps.customdata.map(c => ({name: c[0], status: c[1], reused: c[2], href: c[3]})),
        labels: steps.text,
        edges: pairs,
        fills: gd.layout.shapes.map(s => s.fillcolor),
        arrows: gd.layout.annotations.filter(a => a.showarrow).length,
        boxes: document.querySelectorAll('#pipeline-graph .shapelayer path').length,
    };
}"""


class Diamond:
    """Four fake scripts, a dataset, a queue and a fake agent that writes each step's out.csv."""

    def __init__(self, server: LiveServer, tmp_path: Path) -> None:
        publisher = server.client("publisher")
        one = {"table": TABLE}
        self.prepare, self.left, self.right = (
            publish_fake(publisher, params=PARAMS, inputs=one).script for _ in range(3)
        )
        self.join = publish_fake(
            publisher, params=PARAMS, inputs={"left": TABLE, "right": TABLE}
        ).script
        self.dataset = unique_name("d")
        data = tmp_path / "data.csv"
        data.write_text("x,y\n1,2\n")
        publisher.upload_dataset(name=self.dataset, path=data)
        self.queue = unique_queue()
        self.agent = FakeAgent(server, queue=self.queue)
        self.tmp = tmp_path

    def spec(self, *, k: int = 1) -> dict[str, Any]:
        def out(step: str) -> dict[str, str]:
            return {"from": f"{step}/outputs/out.csv"}

        q = {"queue": self.queue}
        return {
            "name": unique_name("diamond"),
            "steps": [
                {"name": "prepare", "script": self.prepare, "inputs": {"table": self.dataset}, **q},
                {"name": "left", "script": self.left, "inputs": {"table": out("prepare")}, **q},
                {
                    "name": "right",
                    "script": self.right,
                    "params": {"k": k},
                    "inputs": {"table": out("prepare")},
                    **q,
                },
                {
                    "name": "join",
                    "script": self.join,
                    "inputs": {"left": out("left"), "right": out("right")},
                    **q,
                },
            ],
        }

    def run_one(self, *, status: JobStatus = JobStatus.succeeded) -> Lease:
        """Claim one queued job, write its ``out.csv`` and end it with ``status``."""
        lease = self.agent.claim_one()
        content = f"job,{lease.job_id}\n".encode()
        path = self.tmp / f"{lease.job_id}.csv"
        path.write_bytes(content)
        ok = status == JobStatus.succeeded
        files = [
            ArtifactFile(
                path="out.csv", size=len(content), sha256=hashlib.sha256(content).hexdigest()
            )
        ]
        client = self.agent.client
        if ok:
            for item in client.artifact_uploads(
                lease.job_id, lease_token=lease.lease_token, files=files
            ).uploads:
                client.upload_url(item.url, path)
        client.complete(
            lease.job_id,
            CompleteRequest(
                lease_token=lease.lease_token,
                status=status,
                exit_code=0 if ok else 1,
                failure_reason=None if ok else "exit 1",
                artifacts=files if ok else [],
                results=Results(metrics={}),
            ),
        )
        return lease


@pytest.fixture
def hq(server_factory: ServerFactory) -> LiveServer:
    return server_factory(db="postgresql")


@pytest.fixture
def dash(hq: LiveServer, dash_factory: DashFactory) -> DashServer:
    return dash_factory(hq)


def figure_state(page: Page) -> dict[str, Any]:
    return figure_state_of(page, 4)


def by_name(p: PipelineRead) -> dict[str, str]:
    return {s.name: s.status for s in p.steps}


def test_the_pipeline_graph_renders_in_chromium(
    hq: LiveServer, dash: DashServer, page: Page, shoot: Shoot, tmp_path: Path
) -> None:
    diamond = Diamond(hq, tmp_path)
    submitter: HQClient = hq.client("submitter")
    first = submitter.pipelines.submit(**diamond.spec())
    for _ in range(4):
        diamond.run_one()
    assert submitter.pipelines.get(first.id).status == "succeeded"
    second = submitter.pipelines.submit(**diamond.spec(k=7))
    assert by_name(second) == {
        "prepare": "succeeded",
        "left": "succeeded",
        "right": "queued",
        "join": "waiting",
    }

    # the list: newest first, steps done, a click opens the pipeline
    dash.login(page, "val")
    page.locator("a.nav-link", has_text="Pipelines").click()
    page.wait_for_url(re.compile(r".*/pipelines$"))
    rows = page.locator("#pipelines-grid .ag-center-cols-container .ag-row")
    expect(rows).to_have_count(2)
    newest = page.locator("#pipelines-grid .ag-center-cols-container .ag-row[row-index='0']")
    expect(newest.locator("[col-id='name']")).to_have_text(second.name)
    expect(newest.locator("[col-id='status']")).to_have_text("running")
    expect(newest.locator("[col-id='steps']")).to_have_text("2/4")
    older = page.locator("#pipelines-grid .ag-center-cols-container .ag-row[row-index='1']")
    expect(older.locator("[col-id='steps']")).to_have_text("4/4")
    expect(older.locator("[col-id='finished_at']")).not_to_have_text("")
    shoot(page, "list")
    newest.locator("[col-id='name']").click()
    page.wait_for_url(re.compile(rf".*/pipelines/{second.id}$"))

    # the graph: a box per step in its colour, an arrow per edge, reused marks
    expect(page.locator("#pipeline-title")).to_have_text(f"Pipeline {second.name}")
    state = figure_state(page)
    assert [(s["name"], s["status"], s["reused"]) for s in state["steps"]] == [
        ("prepare", "succeeded", True),
        ("left", "succeeded", True),
        ("right", "queued", False),
        ("join", "waiting", False),
    ]
    assert sorted(map(tuple, state["edges"])) == [
        ("left", "join"),
        ("prepare", "left"),
        ("prepare", "right"),
        ("right", "join"),
    ]
    assert state["arrows"] == 4 and state["boxes"] == 4
    assert state["fills"] == [COLOURS[s["status"]] for s in state["steps"]]
    assert state["labels"][0] == "<b>prepare</b><br>succeeded · reused"
    graph_text = page.locator("#pipeline-graph").inner_text()
    for name in ("prepare", "left", "right", "join"):
        assert name in graph_text
    right = page.locator("#step-right")
    expect(right).to_contain_text("queued")
    link = right.locator("a")
    assert link.get_attribute("href") == f"/jobs/{second.steps[2].job_id}"
    expect(page.locator("#step-prepare")).to_contain_text("reused")
    expect(page.locator("#step-join")).to_contain_text("waiting")
    shoot(page, "running")

    # the page refreshes by itself: right fails, join is cancelled with the reason
    page.evaluate("window.__not_reloaded = true")
    failed = diamond.run_one(status=JobStatus.failed)
    assert failed.job_id == second.steps[2].job_id
    expect(page.locator("#pipeline-status")).to_have_text("failed", timeout=15_000)
    expect(page.locator("#step-join")).to_contain_text(
        f"upstream step right failed (job {failed.job_id})"
    )
    expect(page.locator("#step-right")).to_contain_text("failed")
    state = figure_state(page)
    assert [s["status"] for s in state["steps"]] == [
        "succeeded",
        "succeeded",
        "failed",
        "cancelled",
    ]
    assert state["fills"] == [COLOURS[s] for s in ("succeeded", "succeeded", "failed", "cancelled")]
    assert page.evaluate("window.__not_reloaded === true"), "the page was reloaded"
    shoot(page, "failed")
    # a final pipeline is not polled any more: no callback reaches the app for three polls
    updates: list[str] = []
    page.on("request", lambda r: updates.append(r.url) if "_dash-update" in r.url else None)
    page.wait_for_timeout(3 * POLL_MS)
    assert updates == []

    # a step's link opens its job, whose page links back to the pipeline
    link.click()
    page.wait_for_url(re.compile(rf".*/jobs/{failed.job_id}$"))
    back = page.locator("a", has_text="Open its pipeline")
    expect(back).to_have_attribute("href", f"/pipelines/{second.id}")


POINT_JS = """([name]) => {
    const gd = document.querySelector('#pipeline-graph .js-plotly-plot');
    const steps = gd.data[1];
    const i = steps.customdata.findIndex(c => c[0] === name);
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const box = gd.getBoundingClientRect();
    return [box.left + xa._offset + xa.d2p(steps.x[i]), box.top + ya._offset + ya.d2p(steps.y[i])];
}"""


def click_step(page: Page, name: str) -> None:
    """A real mouse click on the middle of a step's box."""
    x, y = page.evaluate(POINT_JS, [name])
    page.mouse.click(x, y)


def test_a_click_on_a_step_opens_its_job_a_sweep_step_links_its_sweep_and_cancel_ends_it(
    hq: LiveServer, dash: DashServer, page: Page, shoot: Shoot, tmp_path: Path
) -> None:
    diamond = Diamond(hq, tmp_path)
    spec = diamond.spec()
    prepare, left = spec["steps"][:2]
    tune = {**left, "name": "tune", "sweep": {"grid": {"k": [1, 2, 3]}}}
    submitter: HQClient = hq.client("submitter")
    p = submitter.pipelines.submit(name=spec["name"], steps=[prepare, tune])
    assert by_name(p) == {"prepare": "queued", "tune": "waiting"}

    dash.login(page, "sam")
    missing = str(uuid.uuid4())
    page.goto(f"{dash.url}/pipelines/{missing}")
    expect(page.locator("#pipeline-status")).to_have_text(f"pipeline {missing} not found")
    expect(page.locator("#pipeline-cancel")).to_be_disabled()
    page.goto(f"{dash.url}/pipelines/{p.id}")
    assert [s["name"] for s in figure_state_of(page, 2)["steps"]] == ["prepare", "tune"]
    expect(page.locator("#step-tune")).to_contain_text("waiting")
    click_step(page, "prepare")
    page.wait_for_url(re.compile(rf".*/jobs/{p.steps[0].job_id}$"))
    page.go_back()
    page.wait_for_url(re.compile(rf".*/pipelines/{p.id}$"))

    # prepare succeeds: the sweep fans out and its step links the sweep's comparison
    diamond.run_one()
    sweep_link = page.locator("#step-tune a")
    expect(sweep_link).to_contain_text("sweep", timeout=15_000)
    sweep_id = submitter.pipelines.get(p.id).steps[1].sweep_id
    assert sweep_id and sweep_link.get_attribute("href") == f"/compare?sweep={sweep_id}"
    shoot(page, "sweep")

    # sam's web-app token did not submit it: the page says who may cancel, nothing changes
    page.locator("#pipeline-cancel").click()
    expect(page.locator("#pipeline-message")).to_contain_text("only that token or an admin")
    assert submitter.pipelines.get(p.id).status == "running"

    # an admin cancels from the page: every unfinished step is cancelled, the page stops polling
    page.goto(f"{dash.url}/logout")
    dash.login(page, "ada")
    page.goto(f"{dash.url}/pipelines/{p.id}")
    expect(page.locator("#step-tune a")).to_contain_text("sweep")
    page.locator("#pipeline-cancel").click()
    expect(page.locator("#pipeline-message")).to_contain_text("Cancel requested")
    expect(page.locator("#pipeline-status")).to_have_text("cancelled", timeout=15_000)
    expect(page.locator("#step-tune")).to_contain_text("cancelled")
    expect(page.locator("#pipeline-cancel")).to_be_disabled()
    assert submitter.pipelines.get(p.id).status == "cancelled"
    statuses = [s["status"] for s in figure_state_of(page, 2)["steps"]]
    assert statuses == ["succeeded", "cancelled"]
    shoot(page, "cancelled")
    click_step(page, "tune")
    page.wait_for_url(re.compile(rf".*/compare\?sweep={sweep_id}$"))


def figure_state_of(page: Page, count: int) -> dict[str, Any]:
    page.wait_for_function(f"({FIGURE_JS})() !== null && ({FIGURE_JS})().steps.length === {count}")
    state: dict[str, Any] = page.evaluate(FIGURE_JS)
    return state


# -- with a real agent running the example images ------------------------------------------------

DIABETES_PIPELINE = REPO_ROOT / "scripts" / "pipelines" / "diabetes.yaml"
RUN_TIMEOUT_S = 600


def test_a_pipeline_run_by_a_real_agent_draws_every_step_succeeded(
    hq: LiveServer,
    dash: DashServer,
    hq_agents: AgentFactory,
    example_images: dict[str, imaging.BuiltImage],
    page: Page,
    shoot: Shoot,
) -> None:
    for name in ("describe", "clean", "linear-fit"):
        hq_cli(hq, hq.token("publisher"), "script", "publish", example_images[name].ref, "--json")
    submitter: HQClient = hq.client("submitter")
    submitter.upload_dataset(
        name="diabetes-missing", path=SCRIPTS_DIR / "clean" / "example" / "diabetes-missing.csv"
    )
    hq_agents(hq, capacity=2)
    spec = PipelineCreate.model_validate(yaml.safe_load(DIABETES_PIPELINE.read_text()))
    p = submitter.pipelines.submit(spec)
    dash.login(page, "val")
    page.goto(f"{dash.url}/pipelines/{p.id}")
    expect(page.locator("#pipeline-title")).to_have_text("Pipeline diabetes")
    done = submitter.pipelines.wait(p.id, timeout_s=RUN_TIMEOUT_S)
    assert done.status == "succeeded", done
    expect(page.locator("#pipeline-status")).to_have_text("succeeded", timeout=15_000)
    state = figure_state_of(page, 3)
    assert [(s["name"], s["status"]) for s in state["steps"]] == [
        ("describe", "succeeded"),
        ("clean", "succeeded"),
        ("fit", "succeeded"),
    ]
    assert sorted(map(tuple, state["edges"])) == [("clean", "fit"), ("describe", "clean")]
    assert state["fills"] == [COLOURS["succeeded"]] * 3 and state["arrows"] == 2
    fit = next(s for s in done.steps if s.name == "fit")
    assert [s["href"] for s in state["steps"]][2] == f"/jobs/{fit.job_id}"
    shoot(page, "diabetes")
    page.locator("#step-fit a").click()
    page.wait_for_url(re.compile(rf".*/jobs/{fit.job_id}$"))
    expect(page.locator("#job-metrics")).to_contain_text("r2")
