"""The script manifest (``hq.yaml``): how to call a script, validated before anything is stored."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema
from pydantic import Field, field_validator, model_validator

from hq.schemas.common import Label, Model, Name
from hq.schemas.logmetrics import MAX_PATTERNS, LogMetric

MEMORY_RE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
PLACEHOLDER_RE = re.compile(r"\{(params|inputs)\.([A-Za-z_][A-Za-z0-9_-]*)\}")
INPUT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def parse_memory_bytes(value: str) -> int:
    """'512m' -> bytes. Units: none (bytes), k, m, g."""
    match = MEMORY_RE.match(value.strip())
    if not match:
        raise ValueError(f"memory {value!r} must look like 512m, 2g or 1048576")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


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


class Resources(Model):
    cpus: float = Field(default=1.0, gt=0, le=256)
    memory: str = "512m"
    gpus: int = Field(default=0, ge=0, le=16)
    timeout_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    pids: int = Field(default=256, ge=16, le=65536)

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if parse_memory_bytes(value) < 6 * 1024**2:
            raise ValueError("memory must be at least 6m (Docker's minimum)")
        return value

    @property
    def memory_bytes(self) -> int:
        return parse_memory_bytes(self.memory)


class Manifest(Model):
    """What ``scripts/<name>/hq.yaml`` holds; docs/manifest.md is its reference."""

    name: Name
    description: str = ""
    command: list[str] = Field(min_length=1)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    resources: Resources = Field(default_factory=Resources)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    # Left out of dumps when empty: manifests (image labels, stored versions) stay as they were.
    metrics_from_logs: list[LogMetric] = Field(
        default_factory=list, max_length=MAX_PATTERNS, exclude_if=lambda v: not v
    )

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for name in value:
            if not INPUT_NAME_RE.match(name):
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
        for part in self.command:
            for kind, key in PLACEHOLDER_RE.findall(part):
                if kind == "inputs" and key not in self.inputs:
                    raise ValueError(f"command uses {{inputs.{key}}} but inputs has no {key!r}")
                if kind == "params" and key not in props:
                    raise ValueError(
                        f"command uses {{params.{key}}} but params.properties has no {key!r}"
                    )
        return self
