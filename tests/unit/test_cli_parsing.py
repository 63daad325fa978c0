"""How the `hq` command turns its arguments into params, inputs and grids, and how it refuses
malformed ones (usage errors, exit 2) before any request is made. No I/O: HQ_URL points at a
port where nothing listens, so a command that got as far as a request would exit 1 instead."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from hq import errors
from hq.cli import main
from hq.cli.common import echo_table, handle_errors
from hq.cli.params import is_text, parse_inputs, parse_params
from hq.cli.sweeps import parse_grid
from hq.client import HQClient

NOWHERE = {"HQ_URL": "http://127.0.0.1:9", "HQ_TOKEN": "hq_unit-test-token"}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (("n=3",), {"n": 3}),
        (("alpha=0.5",), {"alpha": 0.5}),
        (("target=price",), {"target": "price"}),
        (('target="3"',), {"target": "3"}),
        (("flag=true", "none=null"), {"flag": True, "none": None}),
        (('features=["a", "b"]',), {"features": ["a", "b"]}),
        (('opts={"k": 1}',), {"opts": {"k": 1}}),
        (("expr=a=b",), {"expr": "a=b"}),
        (("empty=",), {"empty": ""}),
        (("n=1", "n=2"), {"n": 2}),
        (("alpha=NaN", "beta=Infinity"), {"alpha": "NaN", "beta": "Infinity"}),
    ],
)
def test_params_pairs_parse_values_as_json_when_they_can(
    pairs: tuple[str, ...], expected: dict[str, Any]
) -> None:
    assert parse_params(pairs, None) == expected


def test_values_of_string_params_stay_text_and_quoted_ones_are_unquoted() -> None:
    keep = frozenset({"target", "label"})
    assert parse_params(("target=5", "label=null", "n=5"), None, keep) == {
        "target": "5",
        "label": "null",
        "n": 5,
    }
    assert parse_params(('target="5"', 'label="a b"'), None, keep) == {
        "target": "5",
        "label": "a b",
    }
    assert parse_grid(("target=1,2", "n=1,2"), keep) == {"target": ["1", "2"], "n": [1, 2]}
    assert parse_grid(('target="a","b"',), keep) == {"target": ["a", "b"]}
    assert parse_grid(("target=[1, 2.5]",), keep) == {"target": ["1", "2.5"]}
    assert parse_grid(('target=["1", "x"]',), keep) == {"target": ["1", "x"]}
    assert parse_grid(("target=7",), keep) == {"target": ["7"]}


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        ({"type": "string"}, True),
        ({"type": "string", "enum": ["a", "b"]}, True),
        ({"enum": ["a", "b"]}, True),
        ({"enum": ["a", None]}, True),
        ({"const": "x"}, True),
        ({"type": ["string", "null"]}, True),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, True),
        ({"oneOf": [{"type": "string", "maxLength": 3}, {"enum": ["long"]}]}, True),
        ({"type": "integer"}, False),
        ({"type": ["string", "number"]}, False),
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, False),
        ({"anyOf": [{"type": "null"}]}, False),
        ({"enum": ["a", 1]}, False),
        ({"const": 1}, False),
        ({"$ref": "#/$defs/name"}, False),
        ({}, False),
    ],
)
def test_which_schemas_take_only_text(schema: dict[str, Any], text: bool) -> None:
    assert is_text(schema) is text


def test_param_pairs_override_params_json() -> None:
    assert parse_params(("n=3",), '{"n": 1, "alpha": 2}') == {"n": 3, "alpha": 2}


@pytest.mark.parametrize(
    ("pairs", "params_json", "says"),
    [
        (("n",), None, "'n' is not key=value"),
        (("=3",), None, "'=3' is not key=value"),
        ((), "{not json", "not JSON"),
        ((), "[1, 2]", "must be a JSON object"),
        ((), '{"alpha": NaN}', "NaN is not a JSON number"),
    ],
)
def test_malformed_params_are_a_usage_error_naming_the_option(
    pairs: tuple[str, ...], params_json: str | None, says: str
) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_params(pairs, params_json)
    assert says in caught.value.format_message()


def test_inputs_map_names_to_dataset_refs() -> None:
    assert parse_inputs(("table=iris@2", "extra=lookup")) == {
        "table": "iris@2",
        "extra": "lookup",
    }


@pytest.mark.parametrize("pair", ["table", "table=", "=iris"])
def test_malformed_inputs_are_a_usage_error(pair: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_inputs((pair,))
    assert "name=dataset[@version]" in caught.value.format_message()


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (("alpha=0.1,1,10",), {"alpha": [0.1, 1, 10]}),
        (("alpha=[0.1, 1]",), {"alpha": [0.1, 1]}),
        (("mode=fast,slow",), {"mode": ["fast", "slow"]}),
        (("n=5",), {"n": [5]}),
        (('name="a,b"',), {"name": ["a,b"]}),
        (("n=1,2", "mode=fast"), {"n": [1, 2], "mode": ["fast"]}),
        (("flag=true,false",), {"flag": [True, False]}),
        (("alpha=1,NaN,-Infinity",), {"alpha": [1, "NaN", "-Infinity"]}),
    ],
)
def test_grid_axes_parse_comma_lists_and_json_lists(
    pairs: tuple[str, ...], expected: dict[str, list[Any]]
) -> None:
    assert parse_grid(pairs) == expected


@pytest.mark.parametrize("pair", ["alpha", "alpha=", "=1,2"])
def test_malformed_grid_axes_are_a_usage_error(pair: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_grid((pair,))
    assert "is not name=v1,v2,..." in caught.value.format_message()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["job", "submit", "fit", "-p", "n"], "'n' is not key=value"),
        (["job", "submit", "fit", "--params-json", "[1]"], "must be a JSON object"),
        (["job", "submit", "fit", "-i", "table"], "is not name=dataset[@version]"),
        (["job", "submit", "fit", "--priority", "high"], "'high' is not a valid integer"),
        (["job", "submit", "fit", "--wait", "soon"], "'soon' is not a valid float"),
        (["job", "submit"], "Missing argument 'SCRIPT'"),
        (["job", "list", "--limit", "ten"], "'ten' is not a valid integer"),
        (["sweep", "submit", "fit", "-g", "alpha"], "is not name=v1,v2,..."),
        (["sweep", "submit", "fit", "--random", "{n: 3}"], "not JSON"),
        (["sweep", "submit", "fit", "--repeats", "x"], "'x' is not a valid integer"),
        (["results", "export"], "Missing option '--script'"),
        (["results", "export", "--script", "fit", "--format", "xml"], "'xml' is not one of"),
        (["token", "create", "--name", "ci", "--role", "root"], "'root' is not one of"),
    ],
)
def test_the_command_refuses_malformed_arguments_before_any_request(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(main, args, env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "cannot reach HQ" not in result.output


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("params.n: 0 is less than 1", "Error: params.n: 0 is less than 1\n"),
        ("must be at least 1", "Error: must be at least 1 (params.n)\n"),
    ],
)
def test_hq_errors_become_one_line_cli_errors_that_name_the_field_once(
    message: str, shown: str
) -> None:
    @click.command()
    @handle_errors
    def fails() -> None:
        raise errors.ValidationFailed(message, field="params.n")

    result = CliRunner().invoke(fails, [])
    assert result.exit_code == 1
    assert result.output == shown


def test_tables_align_columns_and_print_none_as_blank(capsys: pytest.CaptureFixture[str]) -> None:
    echo_table([("a1", None, 3), ("b", "long value", 10)], ["id", "reason", "n"])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "id  reason      n",
        "--  ----------  --",
        "a1              3",
        "b   long value  10",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["job", "submit", "fit", "--priority", "5000"], "Error: priority: Input should be less"),
        (["job", "submit", "fit", "--queue", "Bad Q"], "Error: queue: String should match"),
        (["job", "submit", "fit", "--max-attempts", "0"], "Error: max_attempts: Input should"),
        (["sweep", "submit", "fit", "-g", "n=1", "--repeats", "0"], "Error: repeats: Input"),
        (["sweep", "submit", "fit", "--random", '{"n": 0}'], "Error: random.n: Input should"),
    ],
)
def test_values_the_api_would_refuse_are_refused_as_cli_errors_not_tracebacks(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(main, args, env=NOWHERE)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(says), result.output
    assert "cannot reach HQ" not in result.output  # refused before any request


def test_the_client_refuses_a_bad_submission_with_the_servers_error_class() -> None:
    with (
        HQClient("http://127.0.0.1:9", "hq_x") as client,
        pytest.raises(errors.ValidationFailed) as caught,
    ):
        client.submit_job(script="fit", labels=["x" * 200])
    assert caught.value.field == "labels.0"
    assert "at most 128 characters" in caught.value.message
