"""One script: versions with digests, the manifest, and the generated submit and sweep form."""

from __future__ import annotations

from typing import Any

import dash
import yaml
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, message
from dash_app.components.param_form import ParamFormAIO
from dash_app.grids import table_grid
from dash_app.logic.accounts import allows
from dash_app.logic.forms import coerce_form, coerce_inputs, sweep_size
from hq import errors
from hq.schemas.common import is_number
from hq.schemas.jobs import JobCreate
from hq.schemas.sweeps import MAX_SWEEP_JOBS, SweepCreate

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path_template="/scripts/<name>", title="HQ · script", name="Script"
)

FORM = "submit"


def _version(script: Any, wanted: str | None) -> Any:
    versions = {v.version: v for v in script.versions}
    if wanted and is_number(wanted) and int(wanted) in versions:
        return versions[int(wanted)]
    return versions.get(script.latest_version) or (script.versions[-1] if script.versions else None)


def layout(name: str | None = None, version: str | None = None, **_query: Any) -> html.Div:
    try:
        with hq_client() as client:
            script = client.get_script(str(name))
            datasets = [d.model_dump(mode="json") for d in client.list_datasets()]
    except errors.HQError as exc:
        return html.Div([html.H1(f"Script {name}"), error_message(exc)])
    chosen = _version(script, version)
    if chosen is None:
        return html.Div([html.H1(f"Script {name}"), message("This script has no versions.")])
    manifest = chosen.manifest.model_dump(mode="json")
    rows = [
        {
            "version": v.version,
            "image": v.image,
            "digest": v.digest,
            "created_at": v.created_at.isoformat(),
        }
        for v in script.versions
    ]
    can_submit = allows(current_role(), "submitter")
    return html.Div(
        [
            dcc.Store(
                id=ids.SCRIPT_NAME,
                data={
                    "name": script.name,
                    "version": chosen.version,
                    "params": manifest["params"],
                    "inputs": manifest["inputs"],
                },
            ),
            html.H1(f"{script.name} v{chosen.version}"),
            html.P(script.description, className="muted"),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="card",
                        children=[
                            html.H2("Submit"),
                            html.P(
                                "Fill in values to submit one job. For a sweep, list values per "
                                "param "
                                "(comma-separated) in the second column and pick repeats.",
                                className="muted",
                            ),
                            ParamFormAIO(
                                aio_id=FORM,
                                schema=manifest["params"],
                                inputs=manifest["inputs"],
                                datasets=datasets,
                            ),
                            html.Div(
                                className="toolbar",
                                style={"marginTop": "12px"},
                                children=[
                                    html.Button(
                                        "Submit job",
                                        id=ids.SCRIPT_SUBMIT,
                                        className="btn",
                                        disabled=not can_submit,
                                    ),
                                    html.Label(
                                        [
                                            "repeats ",
                                            dcc.Input(
                                                id=ids.SCRIPT_REPEATS,
                                                type="number",
                                                value=1,
                                                min=1,
                                                step=1,
                                                style={"width": "70px"},
                                            ),
                                        ]
                                    ),
                                    dcc.Checklist(
                                        id=ids.SCRIPT_REUSE,
                                        options=[
                                            {
                                                "label": " sweeps reuse earlier results",
                                                "value": "reuse",
                                            }
                                        ],
                                        value=["reuse"],
                                    ),
                                    html.Button(
                                        "Submit sweep",
                                        id=ids.SCRIPT_SWEEP,
                                        className="btn",
                                        disabled=not can_submit,
                                    ),
                                ],
                            ),
                            html.Div(id=ids.SCRIPT_MESSAGE),
                        ],
                    ),
                    html.Div(
                        className="card",
                        children=[
                            html.H2("Versions"),
                            dcc.Dropdown(
                                id=ids.SCRIPT_VERSION,
                                value=chosen.version,
                                clearable=False,
                                options=[
                                    {"label": f"v{v.version}", "value": v.version}
                                    for v in script.versions
                                ],
                            ),
                            table_grid(ids.SCRIPT_VERSIONS_GRID, rows, height="200px"),
                            html.H2("Manifest"),
                            html.Pre(
                                yaml.safe_dump(manifest, sort_keys=False),
                                id=ids.SCRIPT_MANIFEST,
                                className="manifest",
                            ),
                        ],
                    ),
                ],
            ),
        ]
    )


@callback(
    Output(ids.URL, "search", allow_duplicate=True),
    Input(ids.SCRIPT_VERSION, "value"),
    State(ids.SCRIPT_NAME, "data"),
    prevent_initial_call=True,
)
def pick_version(version: int | None, shown: dict[str, Any]) -> Any:
    """Open another version (the dropdown appearing with the shown one is not a pick)."""
    return f"?version={version}" if version and version != shown["version"] else no_update


def _by_name(values: list[Any], states: list[dict[str, Any]]) -> dict[str, Any]:
    return {s["id"]["name"]: v for s, v in zip(states, values, strict=True)}


@callback(
    Output(ids.SCRIPT_MESSAGE, "children"),
    Output(ids.param_form("error", FORM, ALL), "children"),
    Output(ids.param_form("input-error", FORM, ALL), "children"),
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.SCRIPT_SUBMIT, "n_clicks"),
    Input(ids.SCRIPT_SWEEP, "n_clicks"),
    State(ids.SCRIPT_NAME, "data"),
    State(ids.param_form("value", FORM, ALL), "value"),
    State(ids.param_form("sweep", FORM, ALL), "value"),
    State(ids.param_form("input", FORM, ALL), "value"),
    State(ids.SCRIPT_REPEATS, "value"),
    State(ids.SCRIPT_REUSE, "value"),
    prevent_initial_call=True,
)
def submit(
    one: int | None,
    many: int | None,
    script: dict[str, Any],
    values: list[Any],
    sweeps: list[Any],
    inputs: list[Any],
    repeats: Any,
    reuse: list[str] | None,
) -> tuple[Any, ...]:
    """Check the form against the schema, then submit a job (or a sweep) and open it."""
    if not (one or many):  # the buttons appearing is not a click
        return no_update, [no_update] * len(values), [no_update] * len(inputs), no_update
    states = ctx.states_list
    value_ids, sweep_ids, input_ids = states[1], states[2], states[3]
    is_sweep = ctx.triggered_id == ids.SCRIPT_SWEEP
    result = coerce_form(
        script["params"],
        _by_name(values, value_ids),
        _by_name(sweeps, sweep_ids) if is_sweep else None,
    )
    picked, input_errors = coerce_inputs(script["inputs"], _by_name(inputs, input_ids))
    field_errors = [result.errors.get(s["id"]["name"]) for s in value_ids]
    in_errors = [input_errors.get(s["id"]["name"]) for s in input_ids]
    if not allows(current_role(), "submitter"):
        return forbidden("submit jobs"), field_errors, in_errors, no_update
    if not result.ok or input_errors:
        general = result.errors.get("", "Fix the fields marked below.")
        return message(general), field_errors, in_errors, no_update
    target = f"{script['name']}@{script['version']}"
    try:
        with hq_client() as client:
            if not is_sweep:
                job = client.submit_job(
                    JobCreate(script=target, params=result.params, inputs=picked)
                )
                return (
                    message(f"Submitted {job.id}.", ok=True),
                    field_errors,
                    in_errors,
                    f"/jobs/{job.id}",
                )
            count = int(repeats or 1)
            if sweep_size(result.grid, count) > MAX_SWEEP_JOBS:
                return (
                    message(f"A sweep makes at most {MAX_SWEEP_JOBS} jobs."),
                    field_errors,
                    in_errors,
                    no_update,
                )
            sweep = client.submit_sweep(
                SweepCreate(
                    script=target,
                    params=result.params,
                    grid=result.grid,
                    repeats=count,
                    inputs=picked,
                    reuse="reuse" in (reuse or []),
                )
            )
    except errors.HQError as exc:
        return error_message(exc), field_errors, in_errors, no_update
    return (
        message(f"Submitted sweep {sweep.id} ({sweep.total} jobs).", ok=True),
        field_errors,
        in_errors,
        f"/compare?sweep={sweep.id}",
    )
