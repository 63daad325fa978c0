"""The pipeline graph's layout (layers, rows, edges, colours) and the pipeline pages' rows."""

from __future__ import annotations

from typing import Any

import pytest

from dash_app.logic import pipeline_graph as pg
from dash_app.logic import pipelines
from dash_app.logic.status import STATUS_COLOURS
from hq.schemas.common import JobStatus


def step(name: str, *needs: str, status: str = "queued", **more: Any) -> dict[str, Any]:
    return {"name": name, "needs": list(needs), "status": status, **more}


DIAMOND = [
    step("prepare", status="succeeded", reused=True),
    step("left", "prepare", status="running"),
    step("right", "prepare", status="failed", reason="exit 1"),
    step("join", "left", "right", status="cancelled", reason="upstream step right failed"),
]


def test_layers_are_the_longest_chain_of_steps_read_from() -> None:
    # 'late' reads from 'start' directly and through two steps: the longer chain wins
    steps = [
        step("late", "start", "b"),
        step("b", "a"),
        step("a", "start"),
        step("start"),
        step("alone"),
    ]
    assert pg.step_layers(steps) == {"start": 0, "alone": 0, "a": 1, "b": 2, "late": 3}


def test_needs_naming_no_step_are_ignored_and_a_cycle_is_refused_by_name() -> None:
    assert pg.step_layers([step("a", "ghost"), step("b", "a")]) == {"a": 0, "b": 1}
    with pytest.raises(ValueError, match="cycle: a, b"):
        pg.step_layers([step("a", "b"), step("b", "a"), step("c")])


def test_a_diamond_is_three_columns_with_the_middle_two_centred_around_the_ends() -> None:
    graph = pg.layout(DIAMOND)
    assert graph.layers == 3 and graph.rows == 2
    pos = {n.name: (n.x, n.y) for n in graph.nodes}
    assert pos == {
        "prepare": (0.0, 0.0),
        "left": (1.0, 0.5),
        "right": (1.0, -0.5),
        "join": (2.0, 0.0),
    }
    assert graph.edges == [
        ("prepare", "left"),
        ("prepare", "right"),
        ("left", "join"),
        ("right", "join"),
    ]
    colours = {n.name: n.colour for n in graph.nodes}
    assert colours["prepare"] == STATUS_COLOURS[JobStatus.succeeded]
    assert colours["right"] == STATUS_COLOURS[JobStatus.failed]
    assert colours["join"] == STATUS_COLOURS[JobStatus.cancelled]
    assert graph.node("prepare").reused and not graph.node("left").reused


def test_rows_follow_the_steps_read_from_so_parallel_chains_do_not_cross() -> None:
    # listed crosswise: x2 reads from a1 (top), y2 from b1 (bottom); x2 is listed last
    steps = [step("a1"), step("b1"), step("y2", "b1"), step("x2", "a1")]
    graph = pg.layout(steps)
    assert graph.node("a1").y > graph.node("b1").y
    assert graph.node("x2").y > graph.node("y2").y


def test_every_edge_points_right_from_a_box_side_to_its_reader() -> None:
    graph = pg.layout(DIAMOND)
    xs, ys = pg.edge_points(graph)
    assert len(xs) == 3 * len(graph.edges) and xs[2::3] == [None] * 4
    for k in range(len(graph.edges)):
        start, end = xs[3 * k], xs[3 * k + 1]
        assert start is not None and end is not None and end > start
    assert (xs[0], ys[0], xs[1], ys[1]) == (pg.NODE_WIDTH / 2, 0.0, 1 - pg.NODE_WIDTH / 2, 0.5)


def test_the_figure_has_a_coloured_box_and_a_label_per_step_and_an_arrow_per_edge() -> None:
    fig = pg.figure(DIAMOND, hrefs={"left": "/jobs/j-left"})
    edges, nodes = fig.data
    assert edges.name == "edges" and nodes.name == "steps"
    names = [c[0] for c in nodes.customdata]
    assert names == ["prepare", "left", "right", "join"]
    assert [c[1] for c in nodes.customdata] == ["succeeded", "running", "failed", "cancelled"]
    assert [c[3] for c in nodes.customdata] == ["", "/jobs/j-left", "", ""]
    assert nodes.text[0] == "<b>prepare</b><br>succeeded · reused"
    waiting = pg.figure([step("w", status="waiting"), step("q")]).data[1]
    assert list(waiting.textfont.color) == ["#1f2933", "white"]
    assert [s.fillcolor for s in fig.layout.shapes] == [
        STATUS_COLOURS[JobStatus(s)] for s in ("succeeded", "running", "failed", "cancelled")
    ]
    assert fig.layout.shapes[0].line.dash == "dot" and fig.layout.shapes[1].line.dash == "solid"
    assert len(fig.layout.annotations) == 4 and all(a.showarrow for a in fig.layout.annotations)


def test_a_short_pipeline_is_centred_in_room_for_three_layers_and_two_rows() -> None:
    layout = pg.figure([step("a"), step("b", "a")]).layout
    assert list(layout.xaxis.range) == [-1.0, 2.0]  # layers at 0 and 1, centred on 0.5
    assert list(layout.yaxis.range) == [-1.0, 1.0]
    wide = pg.figure([step(f"s{i}", *([f"s{i - 1}"] if i else [])) for i in range(5)]).layout
    assert list(wide.xaxis.range) == [-0.5, 4.5]


def test_long_names_are_shortened_in_the_box_but_kept_whole_in_the_data() -> None:
    long = "a-very-long-step-name-that-does-not-fit"
    fig = pg.figure([step(long)])
    assert fig.data[1].customdata[0][0] == long
    assert fig.data[1].text[0].startswith("<b>a-very-long-step-name…</b>")


def test_an_unknown_status_gets_the_unknown_colour() -> None:
    graph = pg.layout([step("x", status="exploded")])
    assert graph.nodes[0].colour == pg.status_colour("exploded") != STATUS_COLOURS[JobStatus.queued]


# -- rows ----------------------------------------------------------------------------------------


PIPELINE = {
    "id": "p-1",
    "name": "diabetes",
    "status": "failed",
    "created_at": "2026-12-02T10:00:00.123+00:00",
    "finished_at": "2026-12-02T10:05:00+00:00",
    "created_by": "sam",
    "steps": [
        {**DIAMOND[0], "script": "describe@1", "job_id": "aaaaaaaa-1", "reused_from": "old-job"},
        {**DIAMOND[1], "script": "clean", "job_id": "bbbbbbbb-2"},
        {**DIAMOND[2], "script": "fit", "sweep_id": "cccccccc-3"},
        {**DIAMOND[3], "script": "report"},
    ],
}


def test_the_list_row_counts_succeeded_steps_as_done() -> None:
    row = pipelines.pipeline_row(PIPELINE)
    assert row == {
        "id": "p-1",
        "name": "diabetes",
        "status": "failed",
        "steps": "1/4",
        "created_at": "2026-12-02 10:00:00",
        "finished_at": "2026-12-02 10:05:00",
        "created_by": "sam",
    }
    assert pipelines.pipeline_href(row) == "/pipelines/p-1"
    assert pipelines.pipeline_href(None) is None


def test_step_rows_link_a_job_or_a_sweep_and_carry_the_reason() -> None:
    rows = pipelines.step_rows(PIPELINE)
    assert [r["href"] for r in rows] == [
        "/jobs/aaaaaaaa-1",
        "/jobs/bbbbbbbb-2",
        "/compare?sweep=cccccccc-3",
        None,
    ]
    assert [r["link"] for r in rows] == ["job aaaaaaaa", "job bbbbbbbb", "sweep cccccccc", ""]
    assert rows[0]["reused"] == "yes" and rows[0]["reused_from"] == "old-job"
    assert rows[3]["needs"] == "left, right"
    assert rows[3]["reason"] == "upstream step right failed"
    assert pipelines.step_hrefs(PIPELINE["steps"]) == {
        "prepare": "/jobs/aaaaaaaa-1",
        "left": "/jobs/bbbbbbbb-2",
        "right": "/compare?sweep=cccccccc-3",
    }


def test_the_view_key_changes_when_a_step_changes_state() -> None:
    before = pipelines.pipeline_view_key(PIPELINE)
    changed = {**PIPELINE, "steps": [*PIPELINE["steps"][:3], {**DIAMOND[3], "status": "queued"}]}
    assert pipelines.pipeline_view_key(changed) != before
    assert pipelines.pipeline_view_key(dict(PIPELINE)) == before
