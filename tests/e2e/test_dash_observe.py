"""What scripts get with no code change, as a person sees it in Debian's Chromium: the figures of
a script that only calls ``plt.show()`` on its job page, and the printed scores of a sweep (and
HQ's measurements) on the compare page. A real agent runs the stand-in images on the engine."""

from __future__ import annotations

import json
import re

import docker
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from hq import imaging
from hq.schemas.sweeps import SweepCreate
from tests.fixtures.agent import AgentFactory
from tests.fixtures.browser import DashFactory, DashServer, Shoot, pick
from tests.fixtures.server import LiveServer, ServerFactory
from tests.fixtures.standins import RUN_TIMEOUT_S, publish_standin, run

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgresql, pytest.mark.docker]

RUN_TIMEOUT_MS = RUN_TIMEOUT_S * 1000


@pytest.fixture
def hq(server_factory: ServerFactory, hq_agents: AgentFactory) -> LiveServer:
    server = server_factory(db="postgresql")
    hq_agents(server, capacity=2)
    return server


@pytest.fixture
def dash(hq: LiveServer, dash_factory: DashFactory) -> DashServer:
    return dash_factory(hq)


def _grid(aio_id: str) -> str:
    sub = {"aio_id": aio_id, "component": "ResultTableAIO", "subcomponent": "grid"}
    return f"[id='{json.dumps(sub, separators=(',', ':'), sort_keys=True)}']"


def test_the_job_page_shows_the_figures_a_script_only_showed(
    hq: LiveServer,
    dash: DashServer,
    page: Page,
    shoot: Shoot,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
) -> None:
    script = publish_standin(hq, docker_client, standin_images["plot_show"])
    job_id = run(hq.client("submitter"), script)
    dash.login(page, "val")
    page.goto(f"{dash.url}/jobs/{job_id}")
    images = page.locator("#job-figures img")
    expect(images).to_have_count(2, timeout=30_000)
    expect(page.locator("#job-figures figcaption")).to_have_text(
        ["figures/figure-1.png", "figures/figure-2.png"]
    )
    # each image really loaded (through the app's redirect to the store): 640 x 480 pixels
    page.wait_for_function(
        """() => [...document.querySelectorAll('#job-figures img')]
                   .every(img => img.complete && img.naturalWidth > 0)"""
    )
    sizes = images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[640, 480], [640, 480]]
    shoot(page, "job-figures")


def test_the_compare_page_shows_printed_scores_and_measurements_of_a_sweep(
    hq: LiveServer,
    dash: DashServer,
    page: Page,
    shoot: Shoot,
    docker_client: docker.DockerClient,
    standin_images: dict[str, imaging.BuiltImage],
) -> None:
    script = publish_standin(hq, docker_client, standin_images["print_scores"])
    with hq.client("submitter") as client:
        sweep = client.submit_sweep(SweepCreate(script=script, grid={"seed": [1, 2, 3]}))
    dash.login(page, "val")
    page.goto(f"{dash.url}/compare?sweep={sweep.id}")
    rows = page.locator(f"{_grid('compare')} .ag-center-cols-container .ag-row")
    expect(rows).to_have_count(3, timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#compare-message")).to_be_empty(timeout=RUN_TIMEOUT_MS)
    headers = page.locator(f"{_grid('compare')} .ag-header-cell-text").all_inner_texts()
    assert {"seed", "score", "loss", "hq_wall_s", "hq_cpu_s", "hq_peak_memory_mb"} <= set(
        headers
    ), headers
    scores = page.locator(f"{_grid('compare')} .ag-center-cols-container [col-id='score']")
    assert sorted(scores.all_inner_texts()) == ["0.91", "0.92", "0.93"]
    # the measurements are metrics like the printed ones (hq_cpu_s comes first); the printed
    # score against the swept seed
    title_js = """() => { const gd = document.querySelector('#compare-scatter .js-plotly-plot');
        return gd && gd.layout && gd.layout.title ? gd.layout.title.text : null; }"""
    for selector, option, title in (
        ("#compare-metric", "score", "score vs "),
        ("#compare-x", "seed", "score vs seed: "),
    ):
        pick(page, selector, option)
        try:
            page.wait_for_function(
                f"() => ({title_js})()?.startsWith('{title}')", polling=100, timeout=30_000
            )
        except PlaywrightError:
            raise AssertionError(f"scatter title: {page.evaluate(title_js)!r}") from None
    shoot(page, "compare-printed-scores")
    assert re.search(r"/compare\?sweep=", page.url)
