"""ParamFormAIO: a submit form generated from a params JSON Schema, with dataset pickers.

Each param has a value field and, for sweeps, a "values" field (comma-separated); each input has
a dataset dropdown. Ids are pattern-matching (``ids.param_form``), so the form's own callback
reads every field with ``ALL`` whatever the schema holds. The form checks itself: a page writes
``submit_request(...)`` to ``ParamFormAIO.ids.request(aio_id)``; the form marks each bad field and
puts a ``FormCheck`` (as JSON) in ``ParamFormAIO.ids.result(aio_id)``, which the page reacts to.
"""

from __future__ import annotations

import json
from typing import Any

from dash import ALL, MATCH, Input, Output, State, callback, ctx, dcc, html, no_update

from dash_app import ids
from dash_app.logic.forms import (
    FormField,
    by_name,
    check_form,
    dataset_options,
    form_fields,
)


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


def _param_row(f: FormField, aio_id: str) -> html.Div:
    """A param's label, value field, sweep field, hint and error."""
    return html.Div(
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
            html.Div(id=ids.param_form("error", aio_id, f.name), className="field-error"),
        ],
    )


def _input_row(name: str, spec: dict[str, Any], options: list[Any], aio_id: str) -> html.Div:
    """An input's label, dataset dropdown, description and error."""
    return html.Div(
        className="form-row",
        children=[
            html.Label(
                [
                    f"input: {name}",
                    html.Span(" *", className="req") if spec.get("required", True) else None,
                ]
            ),
            dcc.Dropdown(
                id=ids.param_form("input", aio_id, name),
                options=options,
                placeholder="pick a dataset",
            ),
            html.Div(),
            html.Div(spec.get("description", ""), className="hint"),
            html.Div(id=ids.param_form("input-error", aio_id, name), className="field-error"),
        ],
    )


def submit_request(*, sweep: bool, clicks: int) -> dict[str, Any]:
    """What a page writes to ``ParamFormAIO.ids.request`` to have the form check itself."""
    return {"sweep": sweep, "clicks": clicks}


class ParamFormAIO(html.Div):
    """The form for one script version: params (value, or values to sweep) and inputs."""

    class ids:
        @staticmethod
        def request(aio_id: Any) -> dict[str, Any]:
            return ids.param_form("request", aio_id)

        @staticmethod
        def result(aio_id: Any) -> dict[str, Any]:
            return ids.param_form("result", aio_id)

        @staticmethod
        def spec(aio_id: Any) -> dict[str, Any]:
            return ids.param_form("spec", aio_id)

    def __init__(
        self,
        *,
        aio_id: str,
        schema: dict[str, Any],
        inputs: dict[str, Any],
        datasets: list[dict[str, Any]],
    ) -> None:
        options = dataset_options(datasets)
        rows: list[Any] = [_param_row(f, aio_id) for f in form_fields(schema)]
        rows += [_input_row(name, spec or {}, options, aio_id) for name, spec in inputs.items()]
        if not rows:
            rows.append(html.P("This script takes no params or inputs.", className="muted"))
        stores = [
            dcc.Store(id=self.ids.spec(aio_id), data={"params": schema, "inputs": inputs}),
            dcc.Store(id=self.ids.request(aio_id)),
            dcc.Store(id=self.ids.result(aio_id)),
        ]
        super().__init__(className="param-form", children=[*rows, *stores])


@callback(
    Output(ids.param_form("error", MATCH, ALL), "children"),
    Output(ids.param_form("input-error", MATCH, ALL), "children"),
    Output(ids.param_form("result", MATCH), "data"),
    Input(ids.param_form("request", MATCH), "data"),
    State(ids.param_form("spec", MATCH), "data"),
    State(ids.param_form("value", MATCH, ALL), "value"),
    State(ids.param_form("sweep", MATCH, ALL), "value"),
    State(ids.param_form("input", MATCH, ALL), "value"),
    prevent_initial_call=True,
)
def check(
    request: dict[str, Any] | None,
    spec: dict[str, Any],
    values: list[Any],
    sweeps: list[Any],
    inputs: list[Any],
) -> tuple[Any, ...]:
    """Check the form against the schema: mark every bad field, and hand the page the result."""
    if not request:
        return [no_update] * len(values), [no_update] * len(inputs), no_update
    value_ids, sweep_ids, input_ids = ctx.states_list[1:4]
    result = check_form(
        params_schema=spec["params"],
        inputs_spec=spec["inputs"],
        values=by_name(values, value_ids),
        sweeps=by_name(sweeps, sweep_ids) if request["sweep"] else None,
        chosen=by_name(inputs, input_ids),
        clicks=request["clicks"],
    )
    field_errors = [result.errors.get(s["id"]["name"]) for s in value_ids]
    input_errors = [result.input_errors.get(s["id"]["name"]) for s in input_ids]
    return field_errors, input_errors, result.to_json()
