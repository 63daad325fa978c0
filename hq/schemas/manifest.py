"""The script manifest (``hq.yaml``): how to call a script, validated before anything is stored."""

from __future__ import annotations

import copy
import json
import math
from typing import Annotated, Any

import jsonschema
from pydantic import BeforeValidator, Field, field_validator, model_validator

from hq.schemas.command import (
    PLACEHOLDER_RE,
    CommandItem,
    check_command,
    check_env,
    coerce_env,
    refuse_string_command,
)
from hq.schemas.common import INPUT_NAME_RE, Label, Model, Name
from hq.schemas.logmetrics import MAX_PATTERNS, LogMetric
from hq.schemas.resources import MEMORY_RE, Resources, parse_memory_bytes
from hq.schemas.warm import Warm

__all__ = ["MEMORY_RE", "PLACEHOLDER_RE", "Manifest", "Resources", "parse_memory_bytes"]


_CHECKED_SCHEMAS: set[str] = set()
CHECKED_SCHEMAS_MAX = 512


def _check_params_schema(value: dict[str, Any]) -> None:
    """Check ``value`` against the JSON Schema meta-schema, remembering schemas that passed.

    Every lease carries its manifest, so the server and each agent re-validate the same few
    manifests for every job; the meta-schema check is ~1 ms, the memo lookup microseconds.
    """
    try:
        key = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _CHECKED_SCHEMAS:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ValueError(f"params is not a valid JSON Schema at {path}: {exc.message}") from exc
    if key is not None:
        if len(_CHECKED_SCHEMAS) >= CHECKED_SCHEMAS_MAX:
            _CHECKED_SCHEMAS.clear()
        _CHECKED_SCHEMAS.add(key)


def _non_finite_path(value: Any, path: str = "") -> str | None:
    """Where a NaN or infinity sits in a JSON value (Python's JSON parser admits them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            found = _non_finite_path(item, f"{path}/{key}" if path else str(key))
            if found is not None:
                return found
    return None


class InputSpec(Model):
    description: str = ""
    required: bool = True


class Manifest(Model):
    """What ``scripts/<name>/hq.yaml`` holds; docs/manifest.md is its reference."""

    name: Name
    description: str = ""
    command: Annotated[list[CommandItem], BeforeValidator(refuse_string_command)] = Field(
        min_length=1
    )
    env: Annotated[dict[str, str], BeforeValidator(coerce_env)] = Field(default_factory=dict)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    resources: Resources = Field(default_factory=Resources)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    warm: Warm = Field(default_factory=Warm)
    # Left out of dumps when empty: manifests (image labels, stored versions) stay as they were.
    metrics_from_logs: list[LogMetric] = Field(
        default_factory=list, max_length=MAX_PATTERNS, exclude_if=lambda v: not v
    )

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for name in value:
            if not INPUT_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"input name {name!r} must be lowercase letters, digits and '_', "
                    "starting with a letter"
                )
        return value

    @field_validator("params")
    @classmethod
    def _params_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_params_schema(value)
        if value.get("type", "object") != "object":
            raise ValueError("params must be a JSON Schema of type 'object'")
        bad = _non_finite_path(value)
        if bad is not None:  # JSON has no NaN or infinity; stored, it would turn into null
            raise ValueError(f"params at {bad or '(root)'} is not a finite number")
        return value

    @model_validator(mode="after")
    def _placeholders(self) -> Manifest:
        props = self.params.get("properties", {})
        check_command(self.command, props=props, inputs=self.inputs)
        check_env(self.env, props=props, inputs=self.inputs)
        return self


_STORED: dict[str, list[tuple[dict[str, Any], Manifest]]] = {}  # by name: (content, model)
STORED_NAMES_MAX = 256
STORED_PER_NAME = 8


def stored_manifest(data: dict[str, Any]) -> Manifest:
    """A manifest HQ stored (a script version's, a job's copy), validated once per distinct
    content: every claim and submit reads one, and validating it (placeholders, the params
    schema, memory sizes) cost more than the claim's SQL. A name holds few contents, and
    comparing two dicts costs less than serialising one for a key. The instance is shared:
    never change it."""
    name = str(data.get("name"))
    seen = _STORED.get(name)
    for content, manifest in seen or ():
        if content == data:
            return manifest
    manifest = Manifest.model_validate(data)
    if seen is None:
        if len(_STORED) >= STORED_NAMES_MAX:
            _STORED.clear()
        seen = _STORED.setdefault(name, [])
    if len(seen) >= STORED_PER_NAME:
        seen.pop(0)
    seen.append((copy.deepcopy(data), manifest))
    return manifest
