"""The bounds of hq.schemas.limits and the RE2 params validator, without a server (the API's
answers to the same inputs: tests/e2e/test_api_input_bounds.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from dash_app.logic.forms import schema_errors
from hq.schemas.common import DIGEST_RE, INPUT_NAME_RE, NAME_RE, SHA256_RE
from hq.schemas.jobs import JobCreate
from hq.schemas.limits import MAX_DEPTH, TIME_MAX, TIME_MIN, text_problem, time_in_range
from hq.schemas.manifest import Manifest, parse_memory_bytes
from hq.schemas.params_schema import UnusableSchema, check_usable, params_validator
from hq.schemas.results import Results
from hq.schemas.scripts import ScriptVersionRead


@pytest.mark.parametrize(
    ("rule", "good"),
    [
        (NAME_RE, "diabetes"),
        (INPUT_NAME_RE, "table"),
        (SHA256_RE, "a" * 64),
        (DIGEST_RE, "sha256:" + "a" * 64),
    ],
)
def test_each_rule_matches_the_whole_text_only(rule: Any, good: str) -> None:
    assert rule.fullmatch(good)
    for bad in (good + "\n", "\n" + good, good + "\n\n", good + " "):
        assert not rule.fullmatch(bad), repr(bad)


def test_memory_with_a_newline_inside_is_refused() -> None:
    assert parse_memory_bytes("512m\n") == 512 * 1024**2  # surrounding space is stripped
    with pytest.raises(ValueError, match="must look like"):
        parse_memory_bytes("512\nm")


@pytest.mark.parametrize(
    ("text", "says"),
    [("a\x00", "NUL"), ("\ud800", "lone surrogate (\\ud800) at character 0"), ("é\udfff", "1")],
)
def test_text_hq_cannot_store_is_named(text: str, says: str) -> None:
    why = text_problem(text)
    assert why is not None and says in why


def test_valid_text_passes() -> None:
    for text in ("", "plain", "été", "\U0001f600", "tab\tnewline\n"):
        assert text_problem(text) is None


def test_the_first_bad_value_is_reported_at_its_path() -> None:
    params = {"ok": ["x", {"deep": "y\x00"}], "later": "\ud800"}
    with pytest.raises(ValidationError) as info:
        JobCreate(script="fit", params=params)
    (error,) = info.value.errors()
    assert error["loc"] == ("params", "ok", 1, "deep") and "NUL" in error["msg"]


def test_nesting_is_bounded_from_the_body() -> None:
    deep: dict[str, Any] = {}
    for _ in range(MAX_DEPTH):
        deep = {"a": deep}
    with pytest.raises(ValidationError) as info:
        JobCreate(script="fit", params=deep)
    assert info.value.errors()[0]["loc"] == ("params",)
    JobCreate(script="fit", params=deep["a"]["a"])  # MAX_DEPTH - 2 inside params: fine


def test_results_read_from_a_file_are_checked_too() -> None:
    with pytest.raises(ValidationError) as info:
        Results.model_validate_json('{"tables": {"t": [{"a": "x\\u0000"}]}}')
    assert info.value.errors()[0]["loc"] == ("tables", "t", 0, "a")


def test_what_hq_stored_reads_as_it_is() -> None:
    """A row stored before these checks (SQLite took NUL) still reads; only input is checked."""
    manifest = {"name": "fit", "command": ["run"], "description": "old\x00"}
    row = {
        "script": "fit",
        "version": 1,
        "image": "i",
        "digest": "sha256:" + "a" * 64,
        "manifest": manifest,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert ScriptVersionRead.model_validate(row).manifest.description == "old\x00"
    with pytest.raises(ValidationError, match="NUL"):
        Manifest.model_validate(manifest)


def test_times_are_bounded_after_conversion_to_utc() -> None:
    assert time_in_range(TIME_MIN) == TIME_MIN and time_in_range(TIME_MAX) == TIME_MAX
    plus_one = timezone(timedelta(hours=1))
    for bad in (
        datetime(1, 1, 1, tzinfo=plus_one),  # year 0 in UTC: Python cannot hold it
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))),
        TIME_MIN - timedelta(seconds=1),
        datetime(1, 1, 1),  # no timezone: read as UTC
    ):
        with pytest.raises(ValueError, match="from 1970-01-01T00:00:00Z to 9999-01-01"):
            time_in_range(bad)
    assert time_in_range(datetime(2026, 1, 1, tzinfo=UTC))


CATASTROPHIC = {
    "type": "object",
    "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}},
    "patternProperties": {"^(b+)+$": {"type": "integer"}},
    "additionalProperties": False,
}


def test_patterns_run_in_linear_time_on_the_server_and_in_the_web_app() -> None:
    check_usable(CATASTROPHIC)
    validator = params_validator(CATASTROPHIC)
    start = time.monotonic()
    for _ in range(10):
        found = [e.message for e in validator.iter_errors({"x": "a" * 40 + "!", "b" * 40: "s"})]
    assert time.monotonic() - start < 0.5  # Python's re: about 2**40 steps for one of them
    assert any("does not match" in m for m in found) and any("integer" in m for m in found)
    assert not list(validator.iter_errors({"x": "aaa", "bb": 1}))
    errors = [e.message for e in validator.iter_errors({"c": 1})]
    assert errors == ["Additional properties are not allowed ('c' was unexpected)"]
    assert "x" in schema_errors(CATASTROPHIC, {"x": "a" * 40 + "!"})


@pytest.mark.parametrize(
    ("schema", "path", "says"),
    [
        ({"properties": {"x": {"pattern": r"(a)\1"}}}, ("properties", "x", "pattern"), "RE2"),
        ({"patternProperties": {"(?!a)": {}}}, ("patternProperties", "(?!a)"), "lookaround"),
        ({"properties": {"x": {"$ref": "https://e.org/s"}}}, ("properties", "x", "$ref"), "local"),
        ({"allOf": [{"$dynamicRef": "s.json"}]}, ("allOf", "0", "$dynamicRef"), "local"),
        (
            {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
            (),
            "unevaluatedProperties",
        ),
    ],
)
def test_schemas_hq_cannot_run_safely_are_refused_naming_where(
    schema: dict[str, Any], path: tuple[str, ...], says: str
) -> None:
    with pytest.raises(UnusableSchema) as info:
        check_usable(schema)
    assert info.value.path == path and says in str(info.value)
    assert "cannot be used" in schema_errors(schema, {})[""]


def test_data_named_like_keywords_is_not_taken_for_a_regex_or_a_ref() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "default": "(a)\\1"},
            "$ref": {"enum": [{"$ref": "https://e.org/s", "pattern": "(?=x)"}]},
        },
        "$defs": {"n": {"type": "integer"}},
        "additionalProperties": {"$ref": "#/$defs/n"},
    }
    check_usable(schema)
    found = [e.message for e in params_validator(schema).iter_errors({"other": "s"})]
    assert found == ["'s' is not of type 'integer'"]
