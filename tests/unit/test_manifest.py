"""Manifest validation: the example manifests pass, and a broken one says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from hq import errors, imaging
from hq.schemas.manifest import Manifest, stored_manifest

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
EXAMPLES = ("linear-fit", "cv-score", "describe", "clean")

GOOD = """
name: fit-it
command: ["python", "fit.py", "--data", "{inputs.table}", "--target", "{params.target}"]
inputs: {table: {description: CSV file}}
params:
  type: object
  properties: {target: {type: string}}
  required: [target]
"""


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_manifests_validate_and_match_their_folder(name: str) -> None:
    text = (SCRIPTS_DIR / name / "hq.yaml").read_text()
    manifest = imaging.parse_manifest(text)
    assert manifest.name == name
    assert "{inputs.table}" in manifest.command
    assert "/hq/outputs/results.json" in manifest.command
    assert manifest.inputs["table"].required


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_manifests_survive_the_label_round_trip(name: str) -> None:
    manifest = imaging.parse_manifest((SCRIPTS_DIR / name / "hq.yaml").read_text())
    label = imaging.manifest_label(manifest)
    assert json.loads(label)["name"] == name
    assert imaging.parse_manifest(label) == manifest


def test_good_manifest_parses_with_defaults() -> None:
    manifest = imaging.parse_manifest(GOOD)
    assert isinstance(manifest, Manifest)
    assert manifest.resources.memory == "512m"


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        (GOOD.replace("name: fit-it", "name: Fit_It"), "name", "lowercase letter"),
        (GOOD + "\ncomand: [python]\n", "comand", "unknown key"),
        (GOOD.replace("{params.target}", "{params.tagret}"), None, "params.properties has no"),
        (GOOD.replace("{inputs.table}", "{inputs.tabel}"), None, "inputs has no 'tabel'"),
        (GOOD.replace("type: string", "type: text"), "params", "not a valid JSON Schema"),
        (GOOD + "\nresources: {memory: lots}\n", "resources.memory", "must look like 512m"),
        (GOOD + "\nresources: {cpus: 0}\n", "resources.cpus", "greater than 0"),
    ],
)
def test_broken_manifest_error_names_the_field(text: str, field: str | None, says: str) -> None:
    with pytest.raises(errors.ValidationFailed) as info:
        imaging.parse_manifest(text, source="scripts/x/hq.yaml")
    message = info.value.message
    assert message.startswith("scripts/x/hq.yaml is not a valid manifest")
    assert says in message
    if field is not None:
        assert f"  - {field}:" in message
        assert info.value.field == field


def test_every_problem_is_listed_at_once() -> None:
    text = "name: X\ncommand: []\nextra: 1\n"
    with pytest.raises(errors.ValidationFailed) as info:
        imaging.parse_manifest(text)
    message = info.value.message
    for field in ("name", "command", "extra"):
        assert f"  - {field}:" in message
    assert info.value.field is None  # several problems: no single field to blame


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_unparseable_manifest_says_what_it_expected(text: str, says: str) -> None:
    with pytest.raises(errors.ValidationFailed, match=says):
        imaging.parse_manifest(text)


@pytest.mark.parametrize(
    ("ref", "registry"),
    [
        ("127.0.0.1:5000/hq/fit:1", "127.0.0.1:5000"),
        ("localhost/fit", "localhost"),
        ("registry.example.org/team/fit:2", "registry.example.org"),
        ("hq/fit:latest", None),
        ("fit", None),
    ],
)
def test_registry_of_reads_only_an_explicit_host(ref: str, registry: str | None) -> None:
    assert imaging.registry_of(ref) == registry


def test_push_progress_is_one_line_per_layer_state_and_errors_raise() -> None:
    chunks = [
        {"status": "The push refers to repository [127.0.0.1:5000/hq/fit]"},
        {"status": "Preparing", "id": "abc"},
        {"status": "Pushing", "id": "abc", "progress": "1/3"},
        {"status": "Pushing", "id": "abc", "progress": "2/3"},
        {"status": "Pushed", "id": "abc"},
    ]
    lines = list(imaging._progress_lines(chunks))
    assert lines == [
        "The push refers to repository [127.0.0.1:5000/hq/fit]",
        "abc: Preparing",
        "abc: Pushing",
        "abc: Pushed",
    ]
    failing = [{"error": "denied", "errorDetail": {"message": "denied: requested access"}}]
    with pytest.raises(errors.HQError, match="denied: requested access"):
        list(imaging._progress_lines(failing))


def test_a_stored_manifest_is_validated_once_per_content_and_kept_apart_from_its_dict() -> None:
    data = {"name": "cached", "command": ["python", "x.py"], "resources": {"memory": "1g"}}
    first = stored_manifest(data)
    assert stored_manifest(dict(data)) is first  # equal content: the same instance
    other = stored_manifest({**data, "resources": {"memory": "2g"}})  # a job's own copy
    assert other is not first and other.resources.memory == "2g"
    data["resources"]["memory"] = "3g"  # the caller's dict changes later: the cache does not
    assert first.resources.memory == "1g"
    assert stored_manifest({**data, "resources": {"memory": "1g"}}) is first
    with pytest.raises(ValidationError):
        stored_manifest({"name": "cached", "command": []})
