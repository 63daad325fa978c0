"""ParamFormAIO: a submit form generated from a params JSON Schema, with dataset pickers.

Each param has a value field and, for sweeps, a "values" field (comma-separated); each input has
a dataset dropdown. Ids are pattern-matching (``ids.param_form``), so the page's callbacks read
every field with ``ALL`` whatever the schema holds.
"""

from __future__ import annotations

import json
from typing import Any

from dash import dcc, html

from dash_app import ids
from dash_app.logic.forms import FormField, dataset_options, form_fields


def _hint(f: FormField) -> str:
    parts = [f.kind]
    if f.minimum is not None:
        parts.append(f"≥ {f.minimum}")
    if f.exclusive_minimum is not None:
        parts.append(f"> {f.exclusive_minimum}")
    if f.maximum is not None:
        parts.append(f"≤ {f.maximum}")
    if f.exclusive_maximum is not None:
        parts.append(f"< {f.exclusive_maximum}")
    if f.has_default:
        parts.append(f"default {json.dumps(f.default)}")
    return ", ".join(parts)


def _input(f: FormField, aio_id: str) -> Any:
    value_id = ids.param_form("value", aio_id, f.name)
    default = f.default if f.has_default else None
    if f.kind in ("enum", "boolean"):
        return dcc.Dropdown(
            id=value_id,
            value=default,
            clearable=not f.required,
            options=[
                {"label": json.dumps(o) if not isinstance(o, str) else o, "value": o}
                for o in f.options
            ],
        )
    if f.kind in ("number", "integer"):
        return dcc.Input(
            id=value_id,
            type="number",
            value=default,
            debounce=False,
            step=1 if f.kind == "integer" else "any",
            min=f.minimum,
            max=f.maximum,
            className="input",
        )
    if f.kind == "json":
        return dcc.Textarea(
            id=value_id,
            value=None if default is None else json.dumps(default),
            placeholder="JSON",
            className="input",
        )
    return dcc.Input(id=value_id, type="text", value=default, className="input")


class ParamFormAIO(html.Div):
    """The form for one script version: params (value, or values to sweep) and inputs."""

    def __init__(
        self,
        *,
        aio_id: str,
        schema: dict[str, Any],
        inputs: dict[str, Any],
        datasets: list[dict[str, Any]],
    ) -> None:
        rows: list[Any] = []
        for f in form_fields(schema):
            rows.append(
                html.Div(
                    className="form-row",
                    children=[
                        html.Label(
                            [f.title, html.Span(" *", className="req") if f.required else None],
                            htmlFor=json.dumps(ids.param_form("value", aio_id, f.name)),
                        ),
                        _input(f, aio_id),
                        dcc.Input(
                            id=ids.param_form("sweep", aio_id, f.name),
                            type="text",
                            placeholder="sweep values: a, b, c" if f.sweepable else "not sweepable",
                            disabled=not f.sweepable,
                            className="input sweep-input",
                        ),
                        html.Div(
                            _hint(f) + (f" — {f.description}" if f.description else ""),
                            className="hint",
                        ),
                        html.Div(
                            id=ids.param_form("error", aio_id, f.name), className="field-error"
                        ),
                    ],
                )
            )
        options = dataset_options(datasets)
        for name, spec in inputs.items():
            spec = spec or {}
            rows.append(
                html.Div(
                    className="form-row",
                    children=[
                        html.Label(
                            [
                                f"input: {name}",
                                html.Span(" *", className="req")
                                if spec.get("required", True)
                                else None,
                            ]
                        ),
                        dcc.Dropdown(
                            id=ids.param_form("input", aio_id, name),
                            options=options,
                            placeholder="pick a dataset",
                        ),
                        html.Div(),
                        html.Div(spec.get("description", ""), className="hint"),
                        html.Div(
                            id=ids.param_form("input-error", aio_id, name), className="field-error"
                        ),
                    ],
                )
            )
        if not rows:
            rows.append(html.P("This script takes no params or inputs.", className="muted"))
        super().__init__(className="param-form", children=rows)
