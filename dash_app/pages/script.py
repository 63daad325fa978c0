"""One script: versions with digests, the manifest, and the generated submit and sweep form."""

from __future__ import annotations

from typing import Any

import dash
import yaml
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, message
from dash_app.components.param_form import ParamFormAIO, submit_request
from dash_app.components.resources import resources_request, resources_row
from dash_app.grids import table_grid
from dash_app.logic.accounts import allows
from dash_app.logic.forms import FormCheck, sweep_size
from hq import errors
from hq.client import HQClient
from hq.schemas.common import is_number
from hq.schemas.jobs import JobCreate
from hq.schemas.resources import ResourceRequest
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


def _submit_toolbar(*, can_submit: bool) -> html.Div:
    """The two submit buttons, with the sweep's repeats and reuse between them."""
    return html.Div(
        className="toolbar",
        style={"marginTop": "12px"},
        children=[
            html.Button(
                "Submit job", id=ids.SCRIPT_SUBMIT, className="btn", disabled=not can_submit
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
                options=[{"label": " sweeps reuse earlier results", "value": "reuse"}],
                value=["reuse"],
            ),
            html.Button(
                "Submit sweep", id=ids.SCRIPT_SWEEP, className="btn", disabled=not can_submit
            ),
        ],
    )


def _submit_card(
    *, manifest: dict[str, Any], datasets: list[dict[str, Any]], can_submit: bool
) -> html.Div:
    return html.Div(
        className="card",
        children=[
            html.H2("Submit"),
            html.P(
                "Fill in values to submit one job. For a sweep, list values per param "
                "(comma-separated) in the second column and pick repeats.",
                className="muted",
            ),
            ParamFormAIO(
                aio_id=FORM,
                schema=manifest["params"],
                inputs=manifest["inputs"],
                datasets=datasets,
            ),
            resources_row(manifest.get("resources", {})),
            _submit_toolbar(can_submit=can_submit),
            html.Div(id=ids.SCRIPT_MESSAGE),
        ],
    )


def _versions_card(*, script: Any, chosen: Any, manifest: dict[str, Any]) -> html.Div:
    """The version picker, every version's image and digest, and the chosen one's manifest."""
    rows = [
        {
            "version": v.version,
            "image": v.image,
            "digest": v.digest,
            "created_at": v.created_at.isoformat(),
        }
        for v in script.versions
    ]
    return html.Div(
        className="card",
        children=[
            html.H2("Versions"),
            dcc.Dropdown(
                id=ids.SCRIPT_VERSION,
                value=chosen.version,
                clearable=False,
                options=[{"label": f"v{v.version}", "value": v.version} for v in script.versions],
            ),
            table_grid(ids.SCRIPT_VERSIONS_GRID, rows, height="200px"),
            html.H2("Manifest"),
            html.Pre(
                yaml.safe_dump(manifest, sort_keys=False),
                id=ids.SCRIPT_MANIFEST,
                className="manifest",
            ),
        ],
    )


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
    can_submit = allows(current_role(), "submitter")
    return html.Div(
        [
            dcc.Store(id=ids.SCRIPT_NAME, data={"name": script.name, "version": chosen.version}),
            html.H1(f"{script.name} v{chosen.version}"),
            html.P(script.description, className="muted"),
            html.Div(
                className="row",
                children=[
                    _submit_card(manifest=manifest, datasets=datasets, can_submit=can_submit),
                    _versions_card(script=script, chosen=chosen, manifest=manifest),
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


@callback(
    Output(ParamFormAIO.ids.request(FORM), "data"),
    Input(ids.SCRIPT_SUBMIT, "n_clicks"),
    Input(ids.SCRIPT_SWEEP, "n_clicks"),
    prevent_initial_call=True,
)
def ask_form(one: int | None, many: int | None) -> Any:
    """Either button has the form check itself (the buttons appearing is not a click)."""
    if not (one or many):
        return no_update
    return submit_request(
        sweep=ctx.triggered_id == ids.SCRIPT_SWEEP, clicks=(one or 0) + (many or 0)
    )


def _submit_job(
    *, client: HQClient, target: str, form: FormCheck, resources: ResourceRequest | None
) -> tuple[Any, Any]:
    job = client.submit_job(
        JobCreate(script=target, params=form.params, inputs=form.inputs, resources=resources)
    )
    return message(f"Submitted {job.id}.", ok=True), f"/jobs/{job.id}"


def _submit_sweep(
    *,
    client: HQClient,
    target: str,
    form: FormCheck,
    repeats: Any,
    reuse: list[str] | None,
    resources: ResourceRequest | None,
) -> tuple[Any, Any]:
    count = int(repeats or 1)
    if sweep_size(form.grid, count) > MAX_SWEEP_JOBS:
        return message(f"A sweep makes at most {MAX_SWEEP_JOBS} jobs."), no_update
    sweep = client.submit_sweep(
        SweepCreate(
            script=target,
            params=form.params,
            grid=form.grid,
            repeats=count,
            inputs=form.inputs,
            reuse="reuse" in (reuse or []),
            resources=resources,
        )
    )
    text = f"Submitted sweep {sweep.id} ({sweep.total} jobs)."
    return message(text, ok=True), f"/compare?sweep={sweep.id}"


@callback(
    Output(ids.SCRIPT_MESSAGE, "children"),
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ParamFormAIO.ids.result(FORM), "data"),
    State(ids.SCRIPT_NAME, "data"),
    State(ids.SCRIPT_REPEATS, "value"),
    State(ids.SCRIPT_REUSE, "value"),
    State(ids.SCRIPT_MEMORY, "value"),
    State(ids.SCRIPT_CPUS, "value"),
    State(ids.SCRIPT_TIMEOUT, "value"),
    prevent_initial_call=True,
)
def submit(
    checked: str | None,
    script: dict[str, Any],
    repeats: Any,
    reuse: list[str] | None,
    *limits: Any,
) -> tuple[Any, Any]:
    """Once the form has checked itself: submit a job (or a sweep) and open it."""
    if not checked:
        return no_update, no_update
    form = FormCheck.from_json(checked)
    if not allows(current_role(), "submitter"):
        return forbidden("submit jobs"), no_update
    resources, bad = resources_request(*limits)
    if not form.ok or bad:
        return message(bad or form.general), no_update
    target = f"{script['name']}@{script['version']}"
    try:
        with hq_client() as client:
            if form.sweep:
                return _submit_sweep(
                    client=client,
                    target=target,
                    form=form,
                    repeats=repeats,
                    reuse=reuse,
                    resources=resources,
                )
            return _submit_job(client=client, target=target, form=form, resources=resources)
    except errors.HQError as exc:
        return error_message(exc), no_update
