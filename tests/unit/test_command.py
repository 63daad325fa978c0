"""The command forms and env: one expansion (what the agent runs), and manifest errors that say
what to write, as `hq script build` shows them."""

from __future__ import annotations

from typing import Any

import pytest

from hq import errors, imaging
from hq.schemas.command import expand_command, expand_env
from hq.schemas.manifest import Manifest
from hq.schemas.resources import ResourceAboveCeiling, ResourceRequest, Resources

PARAMS = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "plot": {"type": "boolean"},
        "cache": {"type": ["boolean", "null"]},
        "sizes": {"type": "array"},
        "name": {"type": "string"},
    },
}


def manifest(command: list[Any], **extra: Any) -> Manifest:
    return Manifest.model_validate(
        {"name": "m-x", "command": command, "params": PARAMS, "inputs": {"t": {}}, **extra}
    )


def argv(command: list[Any], params: dict[str, Any], inputs: dict[str, str] | None = None) -> Any:
    return expand_command(manifest(command).command, params=params, inputs=inputs or {})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["run"]),
        ({"n": None}, ["run"]),
        ({"n": 50}, ["run", "--n", "50"]),
        ({"n": 0}, ["run", "--n", "0"]),  # 0 is set: only unset and null leave a group out
    ],
)
def test_an_optional_group_is_left_out_when_its_param_is_unset_or_null(
    params: dict[str, Any], expected: list[str]
) -> None:
    assert argv(["run", ["--n", "{params.n}"]], params) == expected


def test_a_group_needs_every_param_and_input_it_names() -> None:
    command = ["run", ["--in", "{inputs.t}", "--n", "{params.n}"]]
    assert argv(command, {"n": 1}) == ["run"]
    assert argv(command, {"n": 1}, {"t": "/hq/inputs/t/a.csv"}) == [
        "run",
        "--in",
        "/hq/inputs/t/a.csv",
        "--n",
        "1",
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [(True, ["--plot"]), (False, ["--no-plot"]), (None, []), ("x", [])]
)
def test_a_switch_gives_its_flag_when_true_and_its_off_flag_when_false(
    value: Any, expected: list[str]
) -> None:
    assert argv(
        [{"switch": "plot", "flag": "--plot", "off_flag": "--no-plot"}], {"plot": value}
    ) == (expected)


def test_store_true_and_store_false_forms() -> None:
    command = [{"switch": "plot", "flag": "--plot"}, {"switch": "cache", "off_flag": "--no-cache"}]
    assert argv(command, {"plot": True, "cache": True}) == ["--plot"]
    assert argv(command, {"plot": False, "cache": False}) == ["--no-cache"]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"list": "sizes", "flag": "--size", "repeat": True}, ["--size", "1", "--size", "b c"]),
        ({"list": "sizes", "flag": "--size"}, ["--size", "1", "b c"]),
        ({"list": "sizes"}, ["1", "b c"]),
    ],
)
def test_a_list_is_repeated_flags_nargs_values_or_positionals(
    item: dict[str, Any], expected: list[str]
) -> None:
    assert argv([item], {"sizes": [1, "b c"]}) == expected
    assert argv([item], {"sizes": []}) == []
    assert argv([item], {}) == []


def test_list_values_that_are_not_strings_are_json() -> None:
    assert argv([{"list": "sizes"}], {"sizes": [0.5, True, {"a": 1}]}) == ["0.5", "true", '{"a":1}']


def test_plain_items_keep_todays_substitution() -> None:
    assert argv(["{params.name}", "{params.n}", "x{params.sizes}"], {"name": "a b", "n": 2}) == [
        "a b",
        "2",
        "x",
    ]


def test_env_leaves_out_a_variable_naming_an_unset_param_or_absent_input() -> None:
    m = manifest(
        ["run"], env={"N": "{params.n}", "DATA": "{inputs.t}", "MODE": "fast", "THREADS": 4}
    )
    assert m.env["THREADS"] == "4"  # a YAML number is its text
    assert expand_env(m.env, params={"n": 3}, inputs={}) == {
        "N": "3",
        "MODE": "fast",
        "THREADS": "4",
    }
    assert expand_env(m.env, params={"n": None}, inputs={"t": "/p"}) == {
        "DATA": "/p",
        "MODE": "fast",
        "THREADS": "4",
    }


def test_the_forms_survive_the_label_round_trip() -> None:
    m = manifest(
        [
            "run",
            ["--n", "{params.n}"],
            {"switch": "plot", "flag": "--plot"},
            {"list": "sizes", "flag": "-s", "repeat": True},
        ],
        env={"N": "{params.n}"},
    )
    assert imaging.parse_manifest(imaging.manifest_label(m)) == m


BASE = """
name: fit-it
inputs: {t: {}}
params:
  type: object
  properties: {n: {type: integer}, plot: {type: string}, sizes: {type: array}}
"""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            'command: "python fit.py --n 1"',
            'command: command must be a YAML list of arguments, e.g. ["python", "fit.py", "--n", '
            '"1"]',
        ),
        (
            "command: [python, {switch: plot, flag: --plot}]",
            "command: switch 'plot' needs a boolean param: params.properties.plot has string; "
            "write type: boolean",
        ),
        (
            "command: [python, {list: n, flag: --n}]",
            "command: list 'n' needs an array param",
        ),
        ("command: [python, {switch: plot}]", "needs flag (added when true) and/or off_flag"),
        ("command: [python, {list: sizes, repeat: true}]", "has repeat: true but no flag"),
        ("command: [python, {switch: plot, flag: --p, flgs: x}]", "unknown key"),
        ("command: [python, {flag: --p}]", "a list of strings (an optional group)"),
        ("command: [python, [--n, '{params.m}']]", "uses {params.m} but params.properties has no"),
        ("command: [python]\nenv: {HQ_X: a}", "env: env name 'HQ_X' starts with HQ_"),
        ("command: [python]\nenv: {X: '{inputs.u}'}", "env.X uses {inputs.u} but inputs has no"),
        (
            "command: [python]\nresources: {memory: 1g, max_memory: 512m}",
            "max_memory 512m is below memory 1g",
        ),
    ],
)
def test_manifest_errors_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        imaging.parse_manifest(BASE + text)
    assert says in caught.value.message


def test_resources_are_raised_up_to_the_ceilings_and_lowered_freely() -> None:
    base = Resources(memory="512m", max_memory="4g", cpus=1, max_cpus=4, timeout_s=600)
    raised = base.raised(ResourceRequest(memory="4g", cpus=2, timeout_s=100))
    assert (raised.memory, raised.cpus, raised.timeout_s) == ("4g", 2, 100)
    assert Resources.model_validate(raised.model_dump()) == raised  # a valid manifest still
    with pytest.raises(
        ResourceAboveCeiling, match="memory 5g is above this script's max_memory 4g"
    ):
        base.raised(ResourceRequest(memory="5g"))
    with pytest.raises(ResourceAboveCeiling, match="max_timeout_s 600"):
        base.raised(ResourceRequest(timeout_s=601))  # no max_timeout_s: the base is the ceiling
    assert Resources().raised(ResourceRequest(memory="64m")).memory == "64m"
