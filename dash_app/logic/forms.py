"""The submit form generated from a script's params JSON Schema, and form values -> params.

A form field is made for each property (type, default, minimum/maximum, enum, required); what the
browser sends back is coerced to the schema's types and checked against the whole schema before
anything is submitted, so the user sees every mistake at once, next to its field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hq.schemas.params_schema import UnusableSchema, check_usable, params_validator

MAX_SWEEP_VALUES = 1000


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # number | integer | string | boolean | enum | json
    title: str
    description: str = ""
    required: bool = False
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    options: list[Any] = field(default_factory=list)

    @property
    def sweepable(self) -> bool:
        return self.kind in ("number", "integer", "string", "enum", "boolean")


def _type_of(prop: dict[str, Any]) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """One field per property of an object schema, required ones first, then by name order given."""
    required = set(schema.get("required", []))
    fields: list[FormField] = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        kind = _type_of(prop)
        if "enum" in prop:
            ui = "enum"
        elif kind in ("number", "integer", "string", "boolean"):
            ui = kind
        else:
            ui = "json"
        fields.append(
            FormField(
                name=name,
                kind=ui,
                title=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                required=name in required,
                default=prop.get("default"),
                has_default="default" in prop,
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                exclusive_minimum=prop.get("exclusiveMinimum"),
                exclusive_maximum=prop.get("exclusiveMaximum"),
                options=list(prop.get("enum") or ([True, False] if ui == "boolean" else [])),
            )
        )
    return sorted(fields, key=lambda f: not f.required)


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def _number(f: FormField, raw: Any) -> float | int:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if f.kind == "integer":
        if not value.is_integer():
            raise ValueError(f"{raw!r} is not a whole number")
        return int(value)
    return int(value) if isinstance(raw, int) else value


def _bounds(f: FormField, value: float) -> None:
    if f.minimum is not None and value < f.minimum:
        raise ValueError(f"must be at least {f.minimum}")
    if f.maximum is not None and value > f.maximum:
        raise ValueError(f"must be at most {f.maximum}")
    if f.exclusive_minimum is not None and value <= f.exclusive_minimum:
        raise ValueError(f"must be more than {f.exclusive_minimum}")
    if f.exclusive_maximum is not None and value >= f.exclusive_maximum:
        raise ValueError(f"must be less than {f.exclusive_maximum}")


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"{raw!r} is not true or false")


def coerce_value(f: FormField, raw: Any) -> Any:
    """One non-blank form value -> the schema's type. Raises ValueError saying what is wrong."""
    if f.kind in ("number", "integer"):
        value = _number(f, raw)
        _bounds(f, value)
        return value
    if f.kind == "boolean":
        return _boolean(raw)
    if f.kind == "enum":
        for option in f.options:
            if raw == option or str(raw) == str(option):
                return option
        raise ValueError(f"must be one of {', '.join(map(str, f.options))}")
    if f.kind == "json":
        try:
            return json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from None
    return str(raw)


def _split(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        return raw
    return [part.strip() for part in str(raw).split(",") if part.strip()]


def schema_errors(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """Every JSON Schema violation, keyed by the param it concerns ('' for the whole)."""
    errors: dict[str, str] = {}
    try:
        check_usable(schema)
    except UnusableSchema as exc:
        return {"": f"this script version's params schema cannot be used: {exc}"}
    for err in params_validator(schema).iter_errors(params):
        key = str(err.absolute_path[0]) if err.absolute_path else ""
        errors.setdefault(key, err.message)
    return errors


@dataclass
class FormResult:
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def coerce_form(
    schema: dict[str, Any], values: dict[str, Any], sweep_values: dict[str, Any] | None = None
) -> FormResult:
    """Form values (and, for a sweep, comma-separated values per param) -> params and grid.

    A blank field takes the schema's default; a blank required field without one is an error.
    Each value of a swept param is coerced and checked like a single one.
    """
    result = FormResult()
    sweeps = sweep_values or {}
    for f in form_fields(schema):
        if not _blank(sweeps.get(f.name)):
            try:
                grid = [coerce_value(f, v) for v in _split(sweeps[f.name])]
            except ValueError as exc:
                result.errors[f.name] = f"{f.title}: {exc}"
                continue
            if len(grid) > MAX_SWEEP_VALUES:
                result.errors[f.name] = f"{f.title}: at most {MAX_SWEEP_VALUES} values"
            result.grid[f.name] = grid
            continue
        raw = values.get(f.name)
        if _blank(raw):
            if f.has_default:
                result.params[f.name] = f.default
            elif f.required:
                result.errors[f.name] = f"{f.title} is required"
            continue
        try:
            result.params[f.name] = coerce_value(f, raw)
        except ValueError as exc:
            result.errors[f.name] = f"{f.title}: {exc}"
    if not result.errors:
        probe = {**result.params, **{k: v[0] for k, v in result.grid.items()}}
        for key, message in schema_errors(schema, probe).items():
            result.errors.setdefault(key, message)
    return result


def dataset_options(datasets: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Dropdown options for an input: each dataset's latest, then each of its versions."""
    options: list[dict[str, str]] = []
    for ds in datasets:
        name = ds["name"]
        if ds.get("latest_version") is not None:
            options.append({"label": f"{name} (latest: v{ds['latest_version']})", "value": name})
        for v in sorted((x["version"] for x in ds.get("versions", [])), reverse=True):
            options.append({"label": f"{name}@{v}", "value": f"{name}@{v}"})
    return options


def coerce_inputs(
    spec: dict[str, Any], chosen: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """Picked datasets per input -> (inputs, errors); a required input must be picked."""
    inputs: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, input_spec in spec.items():
        value = chosen.get(name)
        if _blank(value):
            if (input_spec or {}).get("required", True):
                errors[name] = f"input {name} needs a dataset"
            continue
        inputs[name] = str(value)
    return inputs, errors


def sweep_size(grid: dict[str, list[Any]], repeats: int) -> int:
    """How many jobs a grid times repeats makes."""
    total = 1
    for values in grid.values():
        total *= len(values)
    return total * repeats


def by_name(values: Sequence[Any], states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Values read with an ``ALL`` pattern, keyed by the ``name`` in each one's id."""
    return {s["id"]["name"]: v for s, v in zip(states, values, strict=True)}


@dataclass(frozen=True)
class FormCheck:
    """A submit form checked against its script: what ParamFormAIO hands the page.

    ``clicks`` tells one press of a submit button from the next, so pressing again with the same
    form is still a new check (and a new submission).
    """

    sweep: bool
    clicks: int
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    input_errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.input_errors

    @property
    def general(self) -> str:
        """The message above the fields when the form is not ok."""
        return self.errors.get("", "Fix the fields marked below.")

    def to_json(self) -> str:
        """A JSON string, not a dict, for a dcc.Store: the browser would turn 10.0 into 10."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FormCheck:
        return cls(**json.loads(text))


def check_form(
    *,
    params_schema: dict[str, Any],
    inputs_spec: dict[str, Any],
    values: dict[str, Any],
    sweeps: dict[str, Any] | None,
    chosen: dict[str, Any],
    clicks: int,
) -> FormCheck:
    """Form values, sweep values (None for a single job) and picked datasets, checked."""
    result = coerce_form(params_schema, values, sweeps)
    picked, input_errors = coerce_inputs(inputs_spec, chosen)
    return FormCheck(
        sweep=sweeps is not None,
        clicks=clicks,
        params=result.params,
        grid=result.grid,
        inputs=picked,
        errors=result.errors,
        input_errors=input_errors,
    )
