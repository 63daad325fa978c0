"""A manifest's ``command`` and ``env``: their forms, their checks, and their one expansion.

``expand_command`` and ``expand_env`` are pure functions of the manifest, the job's (filled)
params and its input paths: the agent runs what they return, and the server calls the same
``check_command`` / ``check_env`` when a version is published, so both agree on every form.
docs/manifest.md describes the forms. Nothing here ever reaches a shell: each item of the
result is one argument.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Annotated, Any

from pydantic import Discriminator, Tag, model_validator

from hq.schemas.common import Model

PLACEHOLDER_RE = re.compile(r"\{(params|inputs)\.([A-Za-z_][A-Za-z0-9_-]*)\}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # matched whole

ITEM_HELP = (
    "a command item is a string (one argument), a list of strings (an optional group), "
    "{switch: <param>, flag: --x} or {list: <param>, flag: --x}"
)


class Switch(Model):
    """``{switch: plot, flag: --plot, off_flag: --no-plot}``: a boolean param as a flag."""

    switch: str
    flag: str | None = None
    off_flag: str | None = None

    @model_validator(mode="after")
    def _one_flag(self) -> Switch:
        if not self.flag and not self.off_flag:
            raise ValueError(
                f"switch {self.switch!r} needs flag (added when true) and/or off_flag "
                "(added when false), e.g. {switch: "
                + self.switch
                + ", flag: --"
                + self.switch
                + "}"
            )
        return self


class ListArg(Model):
    """``{list: sizes, flag: --size, repeat: true}``: an array param as flags or values."""

    list: str
    flag: str | None = None
    repeat: bool = False

    @model_validator(mode="after")
    def _repeat_needs_flag(self) -> ListArg:
        if self.repeat and not self.flag:
            raise ValueError(f"list {self.list!r} has repeat: true but no flag to repeat")
        return self


def _item_kind(value: Any) -> str | None:
    if isinstance(value, Switch):
        return "switch"
    if isinstance(value, ListArg):
        return "list"
    if isinstance(value, str):
        return "arg"
    if isinstance(value, list):
        return "group"
    if isinstance(value, dict):
        if "switch" in value:
            return "switch"
        if "list" in value:
            return "list"
    return None


CommandItem = Annotated[
    Annotated[str, Tag("arg")]
    | Annotated[list[str], Tag("group")]
    | Annotated[Switch, Tag("switch")]
    | Annotated[ListArg, Tag("list")],
    Discriminator(_item_kind, custom_error_type="command_item", custom_error_message=ITEM_HELP),
]


def refuse_string_command(value: Any) -> Any:
    """``command: "python fit.py --x 1"``: say to write a YAML list, and show the split."""
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = value.split()
        raise ValueError(
            "command must be a YAML list of arguments, e.g. " + json.dumps(parts or ["python"])
        )
    return value


def coerce_env(value: Any) -> Any:
    """Numbers in ``env`` (``THREADS: 4``) are their text; anything else is left to the check."""
    if isinstance(value, dict):
        return {
            k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
    return value


# -- checks at publish ---------------------------------------------------------------------------


def _param_types(spec: Any) -> set[str]:
    kind = spec.get("type") if isinstance(spec, dict) else None
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def check_placeholders(text: str, *, where: str, props: dict[str, Any], inputs: Any) -> None:
    for kind, key in PLACEHOLDER_RE.findall(text):
        if kind == "inputs" and key not in inputs:
            raise ValueError(f"{where} uses {{inputs.{key}}} but inputs has no {key!r}")
        if kind == "params" and key not in props:
            raise ValueError(f"{where} uses {{params.{key}}} but params.properties has no {key!r}")


def _check_typed(name: str, *, form: str, want: str, props: dict[str, Any]) -> None:
    if name not in props:
        raise ValueError(f"command has {form} {name!r} but params.properties has no {name!r}")
    types = _param_types(props[name])
    if want not in types:
        shown = "/".join(sorted(types)) or "no type"
        article = "an" if want[0] in "aeiou" else "a"
        raise ValueError(
            f"{form} {name!r} needs {article} {want} param: params.properties.{name} has {shown}; "
            f"write type: {want}"
        )


def check_command(command: list[Any], *, props: dict[str, Any], inputs: Any) -> None:
    """Every placeholder names a declared param or input, switches name booleans, lists arrays."""
    for item in command:
        if isinstance(item, str):
            check_placeholders(item, where="command", props=props, inputs=inputs)
        elif isinstance(item, list):
            if not item:
                raise ValueError("command has an empty optional group []: remove it")
            for part in item:
                check_placeholders(part, where="command", props=props, inputs=inputs)
        elif isinstance(item, Switch):
            _check_typed(item.switch, form="switch", want="boolean", props=props)
        else:
            _check_typed(item.list, form="list", want="array", props=props)


def check_env(env: dict[str, str], *, props: dict[str, Any], inputs: Any) -> None:
    for name, template in env.items():
        if not ENV_NAME_RE.fullmatch(name):
            raise ValueError(
                f"env name {name!r} must be letters, digits and '_', not starting with a digit"
            )
        if name.upper().startswith("HQ_"):
            raise ValueError(f"env name {name!r} starts with HQ_, which HQ keeps for itself")
        check_placeholders(template, where=f"env.{name}", props=props, inputs=inputs)


# -- expansion (the agent runs what this returns) ------------------------------------------------


def value_text(value: Any) -> str:
    """A param as one argument: a string as it is, anything else JSON-encoded."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _names_all_set(text: str, params: dict[str, Any], inputs: dict[str, str]) -> bool:
    for kind, key in PLACEHOLDER_RE.findall(text):
        if kind == "inputs" and key not in inputs:
            return False
        if kind == "params" and params.get(key) is None:
            return False
    return True


def fill(text: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """Placeholders filled in; an absent input or unset param becomes an empty string."""

    def repl(match: re.Match[str]) -> str:
        kind, key = match.group(1), match.group(2)
        if kind == "inputs":
            return inputs.get(key, "")
        value = params.get(key)
        return "" if value is None and key not in params else value_text(value)

    return PLACEHOLDER_RE.sub(repl, text)


def _expand_list(item: ListArg, values: Any) -> list[str]:
    if values is None:
        return []
    texts = [value_text(v) for v in (values if isinstance(values, list) else [values])]
    if not texts:
        return []
    if item.flag is None:
        return texts
    if item.repeat:
        return [part for text in texts for part in (item.flag, text)]
    return [item.flag, *texts]


def expand_command(
    command: list[Any], *, params: dict[str, Any], inputs: dict[str, str]
) -> list[str]:
    """The argv of a job: ``inputs`` maps input name to its path inside the container."""
    argv: list[str] = []
    for item in command:
        if isinstance(item, str):
            argv.append(fill(item, params, inputs))
        elif isinstance(item, list):
            if all(_names_all_set(part, params, inputs) for part in item):
                argv.extend(fill(part, params, inputs) for part in item)
        elif isinstance(item, Switch):
            on = params.get(item.switch)
            flag = item.flag if on is True else item.off_flag if on is False else None
            if flag:
                argv.append(flag)
        else:
            argv.extend(_expand_list(item, params.get(item.list)))
    return argv


def expand_env(
    env: dict[str, str], *, params: dict[str, Any], inputs: dict[str, str]
) -> dict[str, str]:
    """The variables a job's container gets from ``env``: one naming an unset param or an
    absent input is left out."""
    return {
        name: fill(template, params, inputs)
        for name, template in env.items()
        if _names_all_set(template, params, inputs)
    }
