"""The submit form's resources row: memory, CPUs and timeout of each job, up to the ceilings.

Left empty, a field keeps the manifest's value; the placeholder shows it and the most a job may
ask for (``resources.max_*``), which HQ enforces (a 422 naming the ceiling).
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from pydantic import ValidationError

from dash_app import ids
from hq.schemas.resources import ResourceRequest


def _range(base: Any, ceiling: Any) -> str:
    return f"{base}" if ceiling in (None, base) else f"{base}, at most {ceiling}"


def resources_row(resources: dict[str, Any]) -> html.Div:
    """Three fields, each empty (the manifest's value) until a user types one."""
    memory = _range(resources.get("memory"), resources.get("max_memory"))
    cpus = _range(resources.get("cpus"), resources.get("max_cpus"))
    timeout = _range(resources.get("timeout_s"), resources.get("max_timeout_s"))
    fields = [
        ("memory ", dcc.Input(id=ids.SCRIPT_MEMORY, type="text", placeholder=memory)),
        ("CPUs ", dcc.Input(id=ids.SCRIPT_CPUS, type="number", step="any", placeholder=cpus)),
        (
            "timeout (s) ",
            dcc.Input(id=ids.SCRIPT_TIMEOUT, type="number", step=1, placeholder=timeout),
        ),
    ]
    return html.Div(
        className="toolbar",
        style={"marginTop": "12px"},
        children=[html.Label([text, field]) for text, field in fields],
    )


def resources_request(
    memory: str | None, cpus: Any, timeout_s: Any
) -> tuple[ResourceRequest | None, str | None]:
    """The fields as a request's ``resources`` (None when all are empty), or what is wrong."""
    asked = {
        "memory": (memory or "").strip() or None,
        "cpus": cpus if cpus not in (None, "") else None,
        "timeout_s": timeout_s if timeout_s not in (None, "") else None,
    }
    if all(v is None for v in asked.values()):
        return None, None
    try:
        return ResourceRequest.model_validate(asked), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"{where}: {first['msg'].removeprefix('Value error, ')}"
