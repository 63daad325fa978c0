"""What the agent adds to a result without code changes: metrics from log lines (patterns checked
at publish, applied with RE2), usage metrics, and which wins on a name clash."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from agent import figures
from agent.logmetrics import MAX_SERIES_POINTS, LogMetrics, Series, parse_number
from agent.observe import Observed
from agent.usage import Usage, _seconds, stats_usage
from dash_app.components.figures import figure_paths
from hq.schemas.logmetrics import LogMetric
from hq.schemas.manifest import Manifest
from hq.schemas.results import Results


def _manifest(patterns: list[Any]) -> Manifest:
    return Manifest.model_validate(
        {"name": "prints", "command": ["python", "x.py"], "metrics_from_logs": patterns}
    )


def _collector(patterns: list[Any]) -> LogMetrics:
    return LogMetrics(_manifest(patterns).metrics_from_logs)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("score: ([0-9.]+)", "has no named group"),
        (r"(?P<n>\d+) \1", "refused by RE2 (invalid escape sequence"),
        (r"(?P<ms>\d+)(?=ms)", "refused by RE2 (invalid perl operator: (?="),
        ("(?P<n>[0-9]", "refused by RE2 (missing ): "),
        ("(?P<hq_wall_s>[0-9.]+)", "HQ's own measurements"),
        ({"pattern": "(?P<a>1)", "x": "a"}, "needs keep: all"),
        ({"pattern": "(?P<a>1)", "keep": "all", "x": "b"}, "'b' is not a named group"),
        ({"pattern": "(?P<a>1)", "keep": "every"}, "'last' or 'all'"),
        ({"pattern": "(?P<a>1)", "kept": "all"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_pattern_is_refused_saying_what_to_fix(pattern: Any, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _manifest([pattern])
    first = caught.value.errors()[0]
    assert first["loc"][0] == "metrics_from_logs"
    assert says in first["msg"]


def test_a_plain_string_is_a_pattern_keeping_the_last_value() -> None:
    (spec,) = _manifest(["score: (?P<score>[0-9.]+)"]).metrics_from_logs
    assert spec == LogMetric(pattern="score: (?P<score>[0-9.]+)", keep="last")
    assert spec.groups == ["score"]


def test_the_last_matching_line_sets_each_metric_and_other_lines_change_nothing() -> None:
    logs = _collector(["score: (?P<score>[0-9.]+)", r"n=(?P<n>-?\d+) loss=(?P<loss>\S+)"])
    for line in ["epoch 1 score: 0.5", "n=3 loss=nan", "final score: 0.9123", "n=-7 loss=2.5e-3"]:
        logs.feed("stdout", line)
    logs.feed("agent", "score: 99")  # the agent's own notes are not the script's output
    logs.feed("stderr", "score: oops")
    assert logs.metrics() == {"score": 0.9123, "n": -7, "loss": 0.0025}
    assert logs.tables() == {}


def test_keep_all_is_a_series_with_a_line_chart_per_value_group() -> None:
    logs = _collector(
        [{"pattern": r"epoch (?P<epoch>\d+) loss (?P<loss>\S+) acc (?P<acc>\S+)", "keep": "all",
          "x": "epoch"},
         {"pattern": r"lr=(?P<lr>\S+)", "keep": "all"}]
    )  # fmt: skip
    for i in range(1, 4):
        logs.feed("stdout", f"epoch {i} loss {1 / i} acc {i / 10}")
        logs.feed("stderr", f"lr={0.1 * i}")
    tables = logs.tables()
    assert tables["loss_acc"] == [
        {"epoch": 1, "loss": 1.0, "acc": 0.1},
        {"epoch": 2, "loss": 0.5, "acc": 0.2},
        {"epoch": 3, "loss": 1 / 3, "acc": 0.3},
    ]
    assert [r["step"] for r in tables["lr"]] == [1, 2, 3]
    assert logs.metrics()["loss"] == 1 / 3
    charts = logs.charts(set(tables))
    assert [(c["table"], c["x"], c["y"]) for c in charts] == [
        ("loss_acc", "epoch", "loss"),
        ("loss_acc", "epoch", "acc"),
        ("lr", "step", "lr"),
    ]
    Results(tables=tables, charts=charts).check_tables_referenced()


def test_a_long_series_is_thinned_evenly_and_stays_bounded() -> None:
    series = Series()
    total = MAX_SERIES_POINTS * 5 + 3
    for step in range(1, total + 1):
        series.add({"step": step})
    steps = [r["step"] for r in series.rows]
    assert MAX_SERIES_POINTS // 2 <= len(steps) <= MAX_SERIES_POINTS
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    assert gaps == {series.stride}
    assert steps[0] == 1 and steps[-1] > total - series.stride


@pytest.mark.parametrize(
    ("text", "number"),
    [("42", 42), ("-3", -3), ("0.5", 0.5), ("1e3", 1000.0), (" 7 ", 7), ("2" + "0" * 19, 2e19)],
)
def test_captured_numbers_keep_integers_whole(text: str, number: float) -> None:
    value = parse_number(text)
    assert value == number and type(value) is type(number)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "abc", "", None, "1,5"])
def test_captured_text_that_is_no_finite_number_is_ignored(text: str | None) -> None:
    assert parse_number(text) is None


def test_results_json_wins_over_the_logs_and_measurements_win_over_both() -> None:
    observed = Observed(
        log_metrics={"score": 0.1, "loss": 2.0},
        usage={"hq_wall_s": 1.5, "hq_cpu_s": 0.9, "hq_peak_memory_mb": 210.3},
        tables={"loss": [{"step": 1, "loss": 2.0}], "mine": [{"step": 1, "x": 1}]},
        charts=[
            {"kind": "line", "table": "loss", "x": "step", "y": "loss"},
            {"kind": "line", "table": "mine", "x": "step", "y": "x"},
        ],
    )
    written = Results(
        metrics={"score": 0.9, "hq_wall_s": 99},
        tables={"mine": [{"a": 1}]},
        charts=[{"kind": "bar", "table": "mine", "x": "a"}],
    )
    merged = observed.merge(written)
    assert merged is not None
    assert merged.metrics == {
        "score": 0.9,
        "loss": 2.0,
        "hq_wall_s": 1.5,
        "hq_cpu_s": 0.9,
        "hq_peak_memory_mb": 210.3,
    }
    assert merged.tables == {"mine": [{"a": 1}], "loss": [{"step": 1, "loss": 2.0}]}
    assert [c["table"] for c in merged.charts] == ["mine", "loss"]


def test_a_job_without_results_json_still_gets_what_was_observed() -> None:
    merged = Observed(usage={"hq_wall_s": 0.2}).merge(None)
    assert merged is not None and merged.metrics == {"hq_wall_s": 0.2}
    assert Observed().merge(None) is None
    assert Observed.from_json(Observed(log_metrics={"a": 1}).to_json()).log_metrics == {"a": 1}


def test_usage_metrics_are_rounded_seconds_and_mebibytes() -> None:
    usage = Usage(wall_s=2.34567, cpu_s=1.00049, peak_memory_bytes=220 * 1024**2 + 60_000)
    assert usage.metrics() == {"hq_wall_s": 2.346, "hq_cpu_s": 1.0, "hq_peak_memory_mb": 220.1}
    assert Usage().metrics() == {}


def test_engine_stats_and_timestamps_are_read_as_the_engine_writes_them() -> None:
    v1 = {"cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}},
          "memory_stats": {"usage": 10, "max_usage": 250 * 1024**2}}  # fmt: skip
    assert stats_usage(v1) == (1.5, 250 * 1024**2)
    assert stats_usage({"memory_stats": {"usage": 5}}) == (None, 5)  # v2: no max_usage
    assert stats_usage({"cpu_stats": {}, "memory_stats": {}}) == (None, None)  # ended
    assert _seconds("2026-12-02T19:50:01.123456789Z", "2026-12-02T19:50:03.623456Z") == 2.5
    assert _seconds("2026-12-02T19:50:01.1Z", "0001-01-01T00:00:00Z") is None


@pytest.mark.parametrize(
    ("cfg", "site"),
    [
        ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
         "/opt/venv/lib/python3.11/site-packages"),
        ("home = /x\nversion_info = 3.12.1.final.0\n", "/opt/venv/lib/python3.12/site-packages"),
        ("home = /usr/bin\n", None),
    ],
)  # fmt: skip
def test_the_backend_goes_where_the_venvs_python_looks(cfg: str, site: str | None) -> None:
    assert figures.site_packages(cfg) == site


def test_a_manifest_without_patterns_dumps_as_before_so_images_and_versions_are_reused() -> None:
    plain = _manifest([])
    assert "metrics_from_logs" not in plain.model_dump(mode="json")
    with_one = _manifest(["s=(?P<s>[0-9]+)"]).model_dump(mode="json")
    assert with_one["metrics_from_logs"] == [
        {"pattern": "s=(?P<s>[0-9]+)", "keep": "last", "x": None}
    ]
    assert Manifest.model_validate(with_one).metrics_from_logs[0].groups == ["s"]


def test_the_job_page_draws_png_artifacts_shown_figures_first_in_the_order_saved() -> None:
    artifacts = [
        {"path": p}
        for p in ("results.json", "plots/z.png", "figures/figure-10.png", "figures/figure-2.png",
                  "figures/figure-1.PNG", "table.csv", "a.png")
    ]  # fmt: skip
    assert figure_paths(artifacts) == [
        "figures/figure-2.png",
        "figures/figure-10.png",
        "a.png",
        "figures/figure-1.PNG",
        "plots/z.png",
    ]
    assert figure_paths([{"path": "x.csv"}]) == []
