"""The Dash app's pure functions: grid paging, filters, charts, fits, compare, forms, accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import pytest

from dash_app.logic import accounts, charts, compare, fit, forms, jobs, status, views
from dash_app.settings import DashSettings
from hq.schemas.common import JobStatus

# -- jobs grid: requests, filters, cursors ------------------------------------------------------


def test_sort_model_maps_to_hq_sort_keys_and_falls_back_for_unsortable_columns() -> None:
    assert jobs.sort_from_model([{"colId": "priority", "sort": "desc"}]) == "-priority"
    assert jobs.sort_from_model([{"colId": "script", "sort": "asc"}]) == "script"
    assert jobs.sort_from_model([{"colId": "params", "sort": "asc"}]) == "-created_at"
    assert jobs.sort_from_model([]) == "-created_at"


def test_filter_model_maps_status_script_sweep_queue_and_dates() -> None:
    request = {
        "filterModel": {
            "status": {
                "filterType": "text",
                "operator": "OR",
                "conditions": [
                    {"type": "equals", "filter": "running"},
                    {"type": "equals", "filter": "queued"},
                ],
            },
            "script": {"filterType": "text", "type": "equals", "filter": "linear-fit"},
            "sweep_id": {"filterType": "text", "type": "equals", "filter": "sw1"},
            "queue": {"filterType": "text", "type": "equals", "filter": "gpu"},
            "created_at": {
                "filterType": "date",
                "type": "inRange",
                "dateFrom": "2026-11-20 00:00:00",
                "dateTo": "2026-11-21 00:00:00",
            },
        },
        "sortModel": [{"colId": "created_at", "sort": "asc"}],
    }
    query = jobs.query_from_request(request)
    assert query.sort == "created_at"
    assert query.filters == {
        "status": ["queued", "running"],
        "script": "linear-fit",
        "sweep": "sw1",
        "queue": "gpu",
        "created_after": "2026-11-20T00:00:00+00:00",
        "created_before": "2026-11-22T00:00:00+00:00",
    }


def test_status_filter_accepts_a_comma_list_and_refuses_unknown_statuses() -> None:
    ok = {"filterModel": {"status": {"type": "equals", "filter": "failed, timed_out"}}}
    assert jobs.query_from_request(ok).filters["status"] == ["failed", "timed_out"]
    bad = {"filterModel": {"status": {"type": "equals", "filter": "done"}}}
    with pytest.raises(ValueError, match="unknown status 'done'"):
        jobs.query_from_request(bad)


def test_filters_refuse_contains_and_unfilterable_columns() -> None:
    with pytest.raises(ValueError, match="equals"):
        jobs.query_from_request({"filterModel": {"script": {"type": "contains", "filter": "x"}}})
    with pytest.raises(ValueError, match="cannot be filtered"):
        jobs.query_from_request({"filterModel": {"params": {"type": "equals", "filter": "x"}}})


def test_date_filters_cover_whole_days() -> None:
    day = "2026-11-20 00:00:00"
    after, before = jobs.date_range({"type": "equals", "dateFrom": day})
    assert after == datetime(2026, 11, 20, tzinfo=UTC)
    assert before == datetime(2026, 11, 21, tzinfo=UTC)
    assert jobs.date_range({"type": "greaterThan", "dateFrom": day}) == (
        datetime(2026, 11, 21, tzinfo=UTC),
        None,
    )
    assert jobs.date_range({"type": "lessThan", "dateFrom": day}) == (
        None,
        datetime(2026, 11, 20, tzinfo=UTC),
    )


def test_query_key_differs_by_sort_and_filter() -> None:
    a = jobs.JobsQuery(sort="-created_at", filters={"status": ["running"]})
    b = jobs.JobsQuery(sort="created_at", filters={"status": ["running"]})
    c = jobs.JobsQuery(sort="-created_at", filters={})
    assert len({a.key, b.key, c.key}) == 3
    assert a.key == jobs.JobsQuery(sort="-created_at", filters={"status": ["running"]}).key


class Pager:
    """A cursor-paged list of n rows, counting the calls it answers (cursor = next offset)."""

    def __init__(self, n: int) -> None:
        self.rows = [{"n": i} for i in range(n)]
        self.calls: list[tuple[int, str | None]] = []

    def __call__(self, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append((limit, cursor))
        start = int(cursor) if cursor else 0
        page = self.rows[start : start + limit]
        end = start + len(page)
        return page, (str(end) if end < len(self.rows) else None)


def test_sequential_blocks_cost_one_request_each_and_remember_cursors() -> None:
    pager = Pager(250)
    first = jobs.fetch_block(pager, cursors={}, start_row=0, end_row=100)
    assert [r["n"] for r in first.rows] == list(range(100))
    assert first.last_row is None and first.cursors == {"100": "100"}
    second = jobs.fetch_block(pager, cursors=first.cursors, start_row=100, end_row=200)
    assert second.rows[0]["n"] == 100 and len(pager.calls) == 2
    third = jobs.fetch_block(pager, cursors=second.cursors, start_row=200, end_row=300)
    assert [r["n"] for r in third.rows] == list(range(200, 250))
    assert third.last_row == 250 and len(pager.calls) == 3


def test_a_jump_ahead_walks_from_the_nearest_known_cursor_in_large_pages() -> None:
    pager = Pager(5000)
    block = jobs.fetch_block(
        pager, cursors={"100": "100"}, start_row=1900, end_row=2000, max_page=500
    )
    assert [r["n"] for r in block.rows] == list(range(1900, 2000))
    assert pager.calls[0] == (500, "100")
    assert len(pager.calls) == 5  # 100->600->1100->1600->1900, then the block itself
    assert block.cursors["1900"] == "1900"


def test_a_jump_past_the_end_reports_the_row_count() -> None:
    pager = Pager(120)
    block = jobs.fetch_block(pager, cursors={}, start_row=300, end_row=400)
    assert block.rows == [] and block.last_row == 120


def test_cursor_start_picks_the_nearest_block_at_or_before() -> None:
    cursors = {"100": "a", "200": "b", "400": "d"}
    assert jobs.cursor_start(cursors, 250) == (200, "b")
    assert jobs.cursor_start(cursors, 50) == (0, None)
    assert jobs.cursor_start(cursors, 400) == (400, "d")


def test_job_row_flattens_a_job() -> None:
    row = jobs.job_row(
        {
            "id": "0123456789abcdef",
            "script": "linear-fit",
            "script_version": 2,
            "status": "succeeded",
            "queue": "default",
            "priority": 0,
            "attempts": 1,
            "max_attempts": 3,
            "agent_id": "agent-abcdef12",
            "params": {"alpha": 0.5, "target": "y"},
            "metrics": {"r2": 0.987654},
            "created_at": "2026-11-25T00:00:00+00:00",
            "started_at": "2026-11-25T00:00:01+00:00",
            "finished_at": "2026-11-25T00:00:03.5+00:00",
        }
    )
    assert row["short_id"] == "01234567" and row["attempts"] == "1/3"
    assert row["duration_s"] == 2.5
    assert row["params"] == "alpha=0.5, target=y" and row["metrics"] == "r2=0.9877"


def test_clicks_open_a_job_except_on_the_selection_box() -> None:
    cols = ["short_id", "script", "status"]
    assert jobs.job_href({"colId": "script", "rowId": "abc"}, cols) == "/jobs/abc"
    assert jobs.job_href({"colId": "ag-Grid-SelectionColumn", "rowId": "abc"}, cols) is None
    assert jobs.job_href(None, cols) is None


def test_compare_needs_two_selected_jobs() -> None:
    assert jobs.compare_href([{"id": "a"}]) is None
    assert jobs.compare_href([{"id": "a"}, {"id": "b"}]) == "/compare?jobs=a,b"
    picked = [{"id": "a", "script": "s2"}, {"id": "b", "script": "s1"}, {"id": "c", "script": "s2"}]
    assert jobs.compare_href(picked) == "/compare?jobs=a,b,c&scripts=s1,s2"


# -- status -------------------------------------------------------------------------------------


def test_every_status_has_its_own_colour_and_live_polling_stops_when_all_ended() -> None:
    assert len(set(status.STATUS_COLOURS.values())) == len(JobStatus) == 7
    conditions = status.status_cell_style()["styleConditions"]
    assert {c["condition"] for c in conditions} >= {"params.value === 'failed'"}
    assert status.all_finished(["succeeded", "failed", "cancelled", "timed_out"])
    assert not status.all_finished(["succeeded", "running"])
    assert not status.all_finished(["queued"])
    assert not status.all_finished(["succeeded", "waiting"])
    assert status.all_finished([])


# -- charts -------------------------------------------------------------------------------------

TABLES = {
    "residuals": [
        {"fitted": 1.0, "residual": 0.1, "g": "a"},
        {"fitted": 2.0, "residual": -0.2, "g": "b"},
        {"fitted": 3.0, "residual": 0.05, "g": "a"},
    ]
}


def test_a_scatter_spec_is_drawn_from_its_table() -> None:
    fig = charts.figure_from_chart(
        {"kind": "scatter", "table": "residuals", "x": "fitted", "y": "residual"}, TABLES
    )
    assert len(fig.data) == 1 and fig.data[0].mode == "markers"
    assert list(fig.data[0].x) == [1.0, 2.0, 3.0]
    assert list(fig.data[0].y) == [0.1, -0.2, 0.05]


@pytest.mark.parametrize(
    ("kind", "trace"),
    [("line", "scatter"), ("bar", "bar"), ("histogram", "histogram"), ("box", "box")],
)
def test_each_spec_kind_draws_its_trace_type(kind: str, trace: str) -> None:
    fig = charts.figure_from_chart(
        {"kind": kind, "table": "residuals", "x": "fitted", "y": "residual"}, TABLES
    )
    assert fig.data[0].type == trace


def test_a_color_column_splits_traces() -> None:
    fig = charts.figure_from_chart(
        {"kind": "scatter", "table": "residuals", "x": "fitted", "y": "residual", "color": "g"},
        TABLES,
    )
    assert sorted(t.name for t in fig.data) == ["a", "b"]


def test_a_plotly_figure_is_drawn_as_given() -> None:
    chart = {
        "data": [{"type": "bar", "x": ["a", "b"], "y": [3, 4]}],
        "layout": {"title": {"text": "given"}},
    }
    fig = charts.figure_from_chart(chart, {})
    assert fig.data[0].type == "bar" and list(fig.data[0].y) == [3, 4]
    assert charts.chart_title(chart, 0) == "given"


def test_a_bad_chart_becomes_a_figure_that_says_why() -> None:
    missing_table = charts.figure_from_chart(
        {"kind": "scatter", "table": "nope", "x": "a", "y": "b"}, TABLES
    )
    assert "nope" in missing_table.layout.annotations[0].text
    missing_col = charts.figure_from_chart(
        {"kind": "scatter", "table": "residuals", "x": "zz", "y": "residual"}, TABLES
    )
    assert "no column 'zz'" in missing_col.layout.annotations[0].text
    bad_plotly = charts.figure_from_chart({"data": [{"type": "nosuchtrace"}]}, {})
    assert "cannot draw" in bad_plotly.layout.annotations[0].text


# -- fit ----------------------------------------------------------------------------------------


def test_linear_fit_recovers_an_exact_line() -> None:
    result = fit.linear_fit([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert result is not None
    assert result.slope == pytest.approx(2.0) and result.intercept == pytest.approx(1.0)
    assert result.r2 == pytest.approx(1.0)


def test_linear_fit_r2_matches_the_textbook_value() -> None:
    xs, ys = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 5.0, 4.0, 5.0]
    result = fit.linear_fit(xs, ys)
    assert result is not None
    assert result.slope == pytest.approx(0.6) and result.intercept == pytest.approx(2.2)
    assert result.r2 == pytest.approx(0.6)


def test_linear_fit_needs_two_distinct_x_and_says_when_r2_is_undefined() -> None:
    assert fit.linear_fit([1.0], [2.0]) is None
    assert fit.linear_fit([1.0, 1.0], [2.0, 3.0]) is None
    flat = fit.linear_fit([1.0, 2.0], [3.0, 3.0])
    assert flat is not None and flat.r2 is None
    assert "undefined" in fit.fit_label(flat)


def test_scatter_with_fit_skips_non_numbers_and_titles_r2() -> None:
    rows = [
        {"a": 1, "m": 2.0},
        {"a": 2, "m": 4.0},
        {"a": "x", "m": 1.0},
        {"a": 3, "m": None},
        {"a": 3, "m": 6.0},
        {"a": True, "m": 9.0},
    ]
    fig = fit.scatter_with_fit(rows, "a", "m")
    assert list(fig.data[0].x) == [1, 2, 3] and len(fig.data) == 2
    assert "R² = 1.0000" in fig.layout.title.text


# -- compare ------------------------------------------------------------------------------------

SWEEP = {
    "columns": ["job_id", "alpha", "repeat", "rmse"],
    "param_columns": ["alpha", "repeat"],
    "metric_columns": ["rmse"],
    "rows": [
        {"job_id": "j1", "alpha": 0.1, "repeat": 0, "rmse": 1.0},
        {"job_id": "j2", "alpha": 0.1, "repeat": 1, "rmse": 1.2},
        {"job_id": "j3", "alpha": 1.0, "repeat": 0, "rmse": 2.0},
        {"job_id": "j4", "alpha": 1.0, "repeat": 1, "rmse": 2.4},
        {"job_id": "j5", "alpha": 1.0, "repeat": 2, "rmse": None},
    ],
}


def test_merge_keeps_columns_from_every_table() -> None:
    other = {
        "columns": ["job_id", "beta", "mae"],
        "param_columns": ["beta"],
        "metric_columns": ["mae"],
        "rows": [{"job_id": "k1", "beta": 3, "mae": 0.5}],
    }
    merged = compare.merge_tables([SWEEP, other])
    assert merged.param_columns == ["alpha", "repeat", "beta"]
    assert merged.metric_columns == ["rmse", "mae"]
    assert merged.columns[0] == "job_id" and len(merged.rows) == 6


def test_repeats_group_by_setting_for_the_box_plot() -> None:
    table = compare.merge_tables([SWEEP])
    params = compare.setting_params(table)
    assert params == ["alpha"]
    groups = compare.group_by_setting(table.rows, params, "rmse")
    assert groups == {"alpha=0.1": [1.0, 1.2], "alpha=1.0": [2.0, 2.4]}
    fig = compare.box_figure(groups, "rmse")
    assert [t.name for t in fig.data] == ["alpha=0.1", "alpha=1.0"]


def test_constant_params_are_left_out_of_setting_labels() -> None:
    rows = [{"a": 1, "t": "y"}, {"a": 2, "t": "y"}]
    assert compare.varying_params(rows, ["a", "t"]) == ["a"]
    assert compare.varying_params(rows[:1], ["a", "t"]) == ["a", "t"]


def test_parallel_coordinates_encode_text_params_as_categories() -> None:
    rows = [{"kind": "b", "n": 1, "m": 0.5}, {"kind": "a", "n": 2, "m": 0.7}]
    fig = compare.parallel_figure(rows, ["kind", "n"], "m")
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["kind", "n", "m"]
    assert list(dims[0].ticktext) == ["a", "b"] and list(dims[0].values) == [1, 0]
    assert list(dims[2].values) == [0.5, 0.7]


def test_numeric_params_and_job_id_parsing() -> None:
    table = compare.merge_tables([SWEEP])
    assert compare.numeric_params(table) == ["alpha"]
    assert compare.parse_job_ids(" a,b,,a , c") == ["a", "b", "c"]


# -- forms --------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "alpha": {"type": "number", "minimum": 0, "maximum": 10, "default": 1.0},
        "n": {"type": "integer", "minimum": 1},
        "target": {"type": "string", "description": "column to predict"},
        "method": {"type": "string", "enum": ["ols", "ridge"], "default": "ols"},
        "verbose": {"type": "boolean", "default": False},
        "extra": {"type": "object"},
    },
    "required": ["target", "n"],
}


def test_form_fields_follow_the_schema() -> None:
    fields = {f.name: f for f in forms.form_fields(SCHEMA)}
    assert [f.name for f in forms.form_fields(SCHEMA)][:2] == ["n", "target"]
    assert fields["alpha"].kind == "number" and fields["alpha"].minimum == 0
    assert fields["alpha"].maximum == 10 and fields["alpha"].default == 1.0
    assert fields["n"].kind == "integer" and fields["n"].required
    assert fields["method"].kind == "enum" and fields["method"].options == ["ols", "ridge"]
    assert fields["verbose"].kind == "boolean" and fields["extra"].kind == "json"
    assert fields["target"].description == "column to predict"


def test_form_values_are_coerced_and_defaults_fill_blanks() -> None:
    result = forms.coerce_form(
        SCHEMA,
        {
            "target": "y",
            "n": "3",
            "alpha": "",
            "method": "ridge",
            "verbose": "true",
            "extra": '{"k": 1}',
        },
    )
    assert result.ok, result.errors
    assert result.params == {
        "target": "y",
        "n": 3,
        "alpha": 1.0,
        "method": "ridge",
        "verbose": True,
        "extra": {"k": 1},
    }


def test_every_bad_value_is_reported_by_field() -> None:
    result = forms.coerce_form(SCHEMA, {"n": "2.5", "alpha": 11, "method": "lasso", "extra": "{"})
    assert set(result.errors) == {"target", "n", "alpha", "method", "extra"}
    assert "required" in result.errors["target"]
    assert "whole number" in result.errors["n"]
    assert "at most 10" in result.errors["alpha"]
    assert "one of ols, ridge" in result.errors["method"]


def test_schema_rules_beyond_the_form_are_checked_too() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 2}}}
    result = forms.coerce_form(schema, {"s": "long"})
    assert not result.ok and "too long" in result.errors["s"]


def test_a_sweep_takes_values_per_param_and_checks_each() -> None:
    result = forms.coerce_form(
        SCHEMA, {"target": "y", "n": 2}, {"alpha": "0.1, 1, 5", "method": "ols,ridge"}
    )
    assert result.ok, result.errors
    assert result.grid == {"alpha": [0.1, 1, 5], "method": ["ols", "ridge"]}
    assert "alpha" not in result.params and result.params["n"] == 2
    assert forms.sweep_size(result.grid, repeats=3) == 18
    bad = forms.coerce_form(SCHEMA, {"target": "y", "n": 2}, {"alpha": "1, 20"})
    assert "at most 10" in bad.errors["alpha"]


def test_inputs_need_a_dataset_when_required() -> None:
    spec = {"table": {"required": True}, "extra": {"required": False}}
    inputs, errors = forms.coerce_inputs(spec, {"table": "points@2", "extra": None})
    assert inputs == {"table": "points@2"} and errors == {}
    _, errors = forms.coerce_inputs(spec, {})
    assert list(errors) == ["table"]


def test_dataset_options_list_latest_then_versions() -> None:
    options = forms.dataset_options(
        [{"name": "points", "latest_version": 2, "versions": [{"version": 1}, {"version": 2}]}]
    )
    assert [o["value"] for o in options] == ["points", "points@2", "points@1"]


def test_a_checked_form_names_its_errors_and_says_what_to_fix() -> None:
    check = forms.check_form(
        params_schema=SCHEMA,
        inputs_spec={"table": {"required": True}},
        values={"n": "2.5"},
        sweeps=None,
        chosen={},
        clicks=1,
    )
    assert not check.ok and not check.sweep
    assert set(check.errors) == {"target", "n"} and list(check.input_errors) == ["table"]
    assert check.general == "Fix the fields marked below."
    whole = forms.check_form(
        params_schema={"type": "object", "properties": {}, "minProperties": 1},
        inputs_spec={},
        values={},
        sweeps=None,
        chosen={},
        clicks=1,
    )
    assert not whole.ok and whole.general == "{} should be non-empty"


def test_a_checked_sweep_keeps_its_python_types_through_json() -> None:
    check = forms.check_form(
        params_schema=SCHEMA,
        inputs_spec={"table": {"required": True}},
        values={"target": "y", "n": 2},
        sweeps={"alpha": "0, 10"},
        chosen={"table": "points@1"},
        clicks=3,
    )
    assert check.ok and check.sweep and check.clicks == 3
    assert check.grid == {"alpha": [0.0, 10.0]} and check.inputs == {"table": "points@1"}
    back = forms.FormCheck.from_json(check.to_json())
    assert back == check
    assert [type(v) for v in back.grid["alpha"]] == [float, float]  # the browser would say 0, 10


def test_values_read_with_all_are_keyed_by_their_id_name() -> None:
    states = [{"id": {"name": "a"}}, {"id": {"name": "b"}}]
    assert forms.by_name([1, None], states) == {"a": 1, "b": None}


# -- views --------------------------------------------------------------------------------------


def test_timeline_orders_queued_events_and_end() -> None:
    job = {
        "created_at": "2026-11-25T00:00:00+00:00",
        "queue": "default",
        "priority": 0,
        "events": [
            {"at": "2026-11-25T00:00:05+00:00", "kind": "succeeded", "attempt": 1},
            {"at": "2026-11-25T00:00:01+00:00", "kind": "started", "attempt": 1, "agent_id": "a1"},
        ],
    }
    job["events"].append({"at": "2026-11-25T00:00:00+00:00", "kind": "queued", "attempt": 0})
    assert [r["what"] for r in views.timeline(job)] == ["queued", "started", "succeeded"]
    assert views.timeline(job)[1]["agent"] == "a1"
    assert views.timeline(job)[1]["when"] == "2026-11-25 00:00:01"


def test_a_job_without_events_shows_its_times() -> None:
    job = {
        "created_at": "2026-11-25T00:00:00+00:00",
        "started_at": "2026-11-25T00:00:02+00:00",
        "finished_at": "2026-11-25T00:00:09+00:00",
        "status": "failed",
        "attempts": 2,
        "agent_id": "a1",
        "failure_reason": "exit 1",
        "queue": "default",
    }
    rows = views.timeline(job)
    assert [r["what"] for r in rows] == ["queued", "started", "failed"]
    assert rows[2]["detail"] == "exit 1" and rows[2]["attempt"] == 2


def test_agent_rows_show_slots_and_heartbeat_age() -> None:
    now = datetime(2026, 11, 25, 0, 0, 30, tzinfo=UTC)
    rows = views.agent_rows(
        [
            {
                "id": "a",
                "name": "w1",
                "status": "active",
                "labels": ["gpu"],
                "queues": ["default"],
                "running": 1,
                "capacity": 4,
                "gpus": 1,
                "last_seen_at": "2026-11-25T00:00:00+00:00",
                "drain_requested": False,
                "warm": {"linear-fit": 1, "describe": 2},
            }
        ],
        now,
    )
    assert rows[0]["slots"] == "1/4" and rows[0]["heartbeat_age_s"] == 30.0
    assert rows[0]["warm"] == "describe: 2, linear-fit: 1"
    assert (rows[0]["not_free"], rows[0]["paused"]) == ("", 0)  # fields an older HQ lacks


def test_agent_rows_say_why_an_agent_takes_no_work() -> None:
    agent = {
        "id": "a",
        "name": "desk",
        "status": "active",
        "running": 1,
        "capacity": 1,
        "last_seen_at": "2026-11-25T00:00:00+00:00",
        "not_free": "load 3.10 is above 2",
        "paused": 1,
    }
    (row,) = views.agent_rows([agent], datetime(2026, 11, 25, tzinfo=UTC))
    assert (row["not_free"], row["paused"]) == ("load 3.10 is above 2", 1)


def test_column_defs_give_numbers_a_number_filter() -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2.5, "b": None}]
    defs = views.column_defs(views.table_columns(rows), rows)
    assert defs[0]["filter"] == "agNumberColumnFilter"
    assert defs[1]["filter"] == "agTextColumnFilter"


# -- accounts -----------------------------------------------------------------------------------


def test_accounts_parse_and_check_passwords() -> None:
    parsed = accounts.parse_accounts("alice:s3cret:admin, bob:pw:with:colon:viewer")
    assert parsed["alice"].role == "admin" and parsed["bob"].password == "pw:with:colon"
    assert accounts.check_password(parsed["alice"], "s3cret")
    assert not accounts.check_password(parsed["alice"], "wrong")
    assert not accounts.check_password(None, "s3cret")


def test_hashed_passwords_are_accepted() -> None:
    from werkzeug.security import generate_password_hash

    hashed = generate_password_hash("pw")
    parsed = accounts.parse_accounts(f"carol:{hashed}:submitter")
    assert accounts.check_password(parsed["carol"], "pw")
    assert not accounts.check_password(parsed["carol"], "nope")


@pytest.mark.parametrize("text", ["alice", "alice:pw", "alice:pw:king", "a:b:viewer,a:c:admin"])
def test_bad_accounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        accounts.parse_accounts(text)


def test_roles_rank_viewer_below_submitter_below_admin() -> None:
    assert accounts.allows("admin", "submitter") and accounts.allows("submitter", "viewer")
    assert not accounts.allows("viewer", "submitter") and not accounts.allows(None, "viewer")
    assert not accounts.allows("submitter", "admin")


def test_charts_without_numbers_say_so() -> None:
    fig = compare.box_figure({}, "m")
    assert isinstance(fig, go.Figure)
    assert "no numeric values of 'm'" in fig.layout.annotations[0].text
    parallel = compare.parallel_figure([{"a": 1, "m": "x"}], ["a"], "m")
    assert "no numeric" in parallel.layout.annotations[0].text


def test_long_logs_keep_their_end() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    tail = views.log_tail(text, max_chars=100)
    assert tail.endswith("line 999\n") and tail.startswith("[… ")
    assert "line 0\n" not in tail
    assert views.log_tail("short") == "short"


def test_rerun_pins_the_version_and_the_input_versions() -> None:
    job = {
        "script": "linear-fit",
        "script_version": 3,
        "params": {"target": "y"},
        "inputs": {"table": {"dataset": "points", "version": 2}},
        "priority": 5,
        "queue": "default",
        "labels": [],
        "max_attempts": 2,
        "timeout_s": 60,
    }
    body = views.rerun_request(job)
    assert body["script"] == "linear-fit@3" and body["inputs"] == {"table": "points@2"}
    assert body["reuse"] is False and body["priority"] == 5
    assert body["resources"] is None
    raised = views.rerun_request({**job, "resources": {"memory": "4g", "cpus": 2, "gpus": 0}})
    assert raised["resources"] == {"memory": "4g", "cpus": 2}  # the limits it ran with


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/jobs/abc?x=1", "/jobs/abc?x=1"),
        ("/compare?sweep=s", "/compare?sweep=s"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/login?next=/jobs", "/"),
        ("", "/"),
        (None, "/"),
        ("jobs", "/"),
    ],
)
def test_after_login_only_local_pages_are_opened(value: str | None, expected: str) -> None:
    assert accounts.safe_next(value) == expected


@pytest.mark.parametrize("secret", ["changeme", "secret", "short-key"])
def test_dash_settings_refuse_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="HQ_DASH_SECRET_KEY"):
        DashSettings(dash_secret_key=secret)


def test_dash_settings_refuse_bad_accounts_and_take_an_admin_token() -> None:
    with pytest.raises(ValueError, match="role 'king'"):
        DashSettings(dash_users="ann:pw:king")
    settings = DashSettings(dash_users="ann:pw:viewer", HQ_ADMIN_TOKEN="hq_admin-token")
    assert settings.accounts["ann"].role == "viewer"
    assert settings.admin_token() == "hq_admin-token"


def test_the_job_page_redraws_only_when_the_job_changed() -> None:
    job = {"status": "running", "attempts": 1, "events": [{"kind": "started"}], "agent_id": "a"}
    same = {**job, "metrics": {}, "finished_at": None}
    assert views.job_view_key(job) == views.job_view_key(same)
    ended = {**job, "status": "succeeded", "events": [{"kind": "started"}, {"kind": "ok"}]}
    assert views.job_view_key(job) != views.job_view_key(ended)


def test_a_block_answer_names_the_rows_it_answers() -> None:
    request = {"startRow": 100, "endRow": 200, "sortModel": [], "filterModel": {}, "context": None}
    assert jobs.request_identity(request) == {
        "startRow": 100,
        "endRow": 200,
        "sortModel": [],
        "filterModel": {},
    }


def test_delivery_rows_show_each_try_in_order_and_webhook_rows_no_secret() -> None:
    delivery = {
        "id": "d1",
        "created_at": "2026-01-01T00:00:00+00:00",
        "event": "job.ended",
        "subject_id": "j1",
        "status": "delivered",
        "attempts": 3,
        "last_status_code": 200,
        "last_error": None,
        "next_attempt_at": None,
        "tries": [{"status_code": None}, {"status_code": 500}, {"status_code": 200}],
    }
    [row] = views.delivery_rows([delivery])
    assert row["tries"] == "error, 500, 200" and row["subject"] == "j1"
    assert row["last_error"] == "" and row["next_attempt_at"] == ""
    hook = {
        "id": "w1",
        "url": "http://127.0.0.1:9/h",
        "events": ["job", "sweep"],
        "failures_only": True,
        "script": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "secret": "whsec_x",
    }
    [hook_row] = views.webhook_rows([hook])
    assert hook_row["events"] == "job, sweep" and hook_row["script"] == ""
    assert "whsec_x" not in str(hook_row)
