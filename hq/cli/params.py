"""What `hq job submit` and `hq sweep submit` send: params, inputs and resources as typed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hq import errors
from hq.client import HQClient
from hq.schemas.common import is_number
from hq.schemas.retries import MAX_RETRIES

F = TypeVar("F", bound=Callable[..., Any])


def json_value(text: str) -> Any:
    """``text`` as JSON; NaN and Infinity are refused (ValueError): JSON has no such numbers,
    and Python's parser would pass them on to be sent as null."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(text, parse_constant=refuse)


def parse_params(
    pairs: tuple[str, ...], params_json: str | None, keep_text: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``-p key=value`` pairs over ``--params-json``. A value is parsed as JSON when it can be,
    but stays text for the keys in ``keep_text`` (those the script's schema types as strings):
    ``-p target=5`` sends ``"5"`` to a script that wants a column name."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json_value(params_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from exc
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params-json")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        params[key] = cli_value(value, as_text=key in keep_text)
    return params


def cli_value(text: str, *, as_text: bool) -> Any:
    """One value typed on the command line: JSON where it parses, else the text itself. For a
    string param (``as_text``) it stays text, but a quoted JSON string is unquoted: ``5`` and
    ``"5"`` both send ``"5"``."""
    try:
        value = json_value(text)
    except ValueError:
        return text
    return value if not as_text or isinstance(value, str) else text


def string_params(client: HQClient, script: str) -> frozenset[str]:
    """The params that ``script`` (``name`` or ``name@version``) types as strings, read from its
    manifest; none when the script or version is unknown (the submit then says so)."""
    name, _, version_text = script.partition("@")
    try:
        info = client.get_script(name)
    except errors.NotFound:
        return frozenset()
    wanted = int(version_text) if is_number(version_text) else info.latest_version
    manifest = next((v.manifest for v in info.versions if v.version == wanted), None)
    if manifest is None:
        return frozenset()
    props = manifest.params.get("properties", {})
    return frozenset(
        key for key, schema in props.items() if isinstance(schema, dict) and is_text(schema)
    )


NOT_TEXT_TYPES = frozenset({"number", "integer", "boolean", "object", "array"})


def is_text(schema: dict[str, Any]) -> bool:
    """A JSON Schema that only a string (or null) meets: ``type: string``, ``[string, null]``,
    an ``anyOf``/``oneOf`` of those, a string ``const`` or an ``enum`` of strings."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind == "string"
    if isinstance(kind, list):
        return "string" in kind and not NOT_TEXT_TYPES & set(kind)
    for combinator in ("anyOf", "oneOf"):
        branches = schema.get(combinator)
        if isinstance(branches, list) and branches:
            if not all(isinstance(b, dict) for b in branches):
                return False
            texts = [is_text(b) for b in branches]
            nulls = [b.get("type") == "null" for b in branches]
            return any(texts) and all(t or n for t, n in zip(texts, nulls, strict=True))
    if "const" in schema:
        return isinstance(schema["const"], str)
    enum = schema.get("enum")
    return (
        isinstance(enum, list)
        and any(isinstance(v, str) for v in enum)
        and all(isinstance(v, str) or v is None for v in enum)
    )


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{pair!r} is not name=dataset[@version]", param_hint="-i")
        inputs[key] = value
    return inputs


def resource_options(command: F) -> F:
    """``--memory`` and ``--cpus``: raise (or lower) each job's limits up to the ceilings."""
    command = click.option(
        "--cpus",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="CPUs of each job, at most the script's resources.max_cpus",
    )(command)
    return click.option(
        "--memory",
        default=None,
        help="memory of each job, e.g. 4g, at most the script's resources.max_memory",
    )(command)


def resources_field(*, memory: str | None, cpus: float | None) -> dict[str, Any] | None:
    """The request's ``resources``: None when neither option is given."""
    asked = {k: v for k, v in {"memory": memory, "cpus": cpus}.items() if v is not None}
    return asked or None


RETRY_KINDS = ("oom", "timeout", "exit")


def _retry_kinds(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """``--retry-on oom,timeout`` and ``--retry-on oom --retry-on exit`` alike, each kind once."""
    kinds: list[str] = []
    for value in values:
        for kind in (part.strip() for part in value.split(",")):
            if kind not in RETRY_KINDS:
                raise click.BadParameter(
                    f"{kind!r} is not a failure kind to retry; choose from "
                    f"{', '.join(RETRY_KINDS)} (comma-separated or repeated)",
                    ctx=ctx,
                    param=param,
                )
            if kind not in kinds:
                kinds.append(kind)
    return kinds


def retry_options(command: F) -> F:
    """``--retry-on`` and ``--max-retries``: which of the script's own failures are retried."""
    command = click.option(
        "--max-retries",
        type=click.IntRange(min=0, max=MAX_RETRIES),
        default=1,
        help=f"at most this many --retry-on retries (0 to {MAX_RETRIES})",
    )(command)
    return click.option(
        "--retry-on",
        multiple=True,
        callback=_retry_kinds,
        metavar="KINDS",
        help="retry the script's own failures of these kinds: oom, timeout, exit "
        "(comma-separated or repeated); infrastructure failures are always retried",
    )(command)
