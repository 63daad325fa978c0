"""An argparse parser's actions (as ``init_parser`` reads them) -> a draft manifest's parts.

Each action becomes a param (its JSON Schema from ``type``, ``choices``, ``default``, ``help``,
``required``) and a command item in the forms of docs/manifest.md: plain strings for what is
always passed, an optional group for an optional flag, ``{switch: ...}`` for store_true,
store_false and BooleanOptionalAction, ``{list: ...}`` for ``nargs`` lists and
``action='append'``. A flag whose name looks like a path becomes an input, or an output under
/hq/outputs/, with a comment asking the user to confirm it. Positionals come first in the command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

CONFIRM = "HQ: confirm"
OUTPUTS_DIR = "/hq/outputs"
INPUT_WORDS = frozenset(
    {"data", "input", "infile", "csv", "tsv", "parquet", "xlsx", "file", "path", "table", "dataset"}
)
OUTPUT_WORDS = frozenset(
    {"out", "output", "outdir", "outfile", "outpath", "results", "save", "report", "dest"}
)
DIR_WORDS = frozenset({"dir", "outdir", "directory", "folder"})
SCHEMA_TYPES = {"int": "integer", "float": "number", "str": "string", None: "string"}
NOT_MAPPED = {
    "count": "a count flag (-vv)",
    "append_const": "an append_const flag",
    "subparsers": "subcommands (only the top-level parser is mapped)",
}
SILENT = frozenset({"help", "version"})
NAME_RE = re.compile(r"[^A-Za-z0-9_]")
INPUT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass
class Item:
    """One command item (a string, a list, or a mapping) and the comment shown beside it."""

    value: Any
    comment: str | None = None


@dataclass
class Draft:
    command: list[Item] = field(default_factory=list)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was not mapped, for the header

    def unique(self, name: str) -> str:
        """``name`` made a valid, unused param or input name."""
        base = NAME_RE.sub("_", name).strip("_") or "arg"
        if not base[0].isalpha():
            base = f"p_{base}"
        candidate, n = base, 2
        while candidate in self.properties or candidate in self.inputs:
            candidate, n = f"{base}_{n}", n + 1
        return candidate


def flag_of(action: dict[str, Any]) -> str:
    """The option string to pass: the first long one, else the first."""
    options: list[str] = action["option_strings"]
    longs = [o for o in options if o.startswith("--") and not o.startswith("--no-")]
    return (longs or options)[0]


def _words(action: dict[str, Any]) -> set[str]:
    names = [action["dest"], *(o.lstrip("-") for o in action["option_strings"])]
    return {w for n in names for w in re.split(r"[_\-.]", n.lower()) if w}


def path_role(action: dict[str, Any]) -> str | None:
    """ "output", "input" or None, from the names of a scalar text action."""
    if action["kind"] != "store" or action["nargs"] not in (None, "?"):
        return None
    if SCHEMA_TYPES.get(action["type"], "path") not in ("string", "path"):
        return None
    words = _words(action)
    if words & OUTPUT_WORDS:
        return "output"
    return "input" if words & INPUT_WORDS else None


def scalar_schema(action: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one value: its type, enum, default and description."""
    kind = SCHEMA_TYPES.get(action["type"], "string")
    schema: dict[str, Any] = {"type": kind}
    if action["choices"]:
        choices = [_coerce(c, kind) for c in action["choices"]]
        if None not in choices:
            schema["enum"] = choices
    return schema


def _coerce(value: Any, kind: str) -> Any:
    """``value`` as a JSON value of ``kind`` (argparse runs string defaults through type)."""
    try:
        if kind == "integer" and not isinstance(value, bool):
            return value if isinstance(value, int) else int(str(value))
        if kind == "number" and not isinstance(value, bool):
            return value if isinstance(value, int | float) else float(str(value))
    except ValueError:
        return None
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return None


def _with_default(schema: dict[str, Any], default: Any) -> dict[str, Any]:
    kind = schema["type"]
    if default is None:
        return schema
    if kind == "array":
        kind_of_items = schema["items"]["type"]
        items = (
            [_coerce(v, kind_of_items) for v in default] if isinstance(default, list) else [None]
        )
        value: Any = None if None in items else items
    else:
        value = _coerce(default, kind)
    if value is None or ("enum" in schema and value not in schema["enum"]):
        return schema
    if isinstance(value, list) and len(value) < schema.get("minItems", 0):
        return schema  # nargs='+' with default=[]: unset leaves the flag out, as argparse does
    return {**schema, "default": value}


def _describe(schema: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    help_text = action.get("help")
    if help_text:
        schema = {**schema, "description": " ".join(str(help_text).split())}
    return schema


def _add_param(draft: Draft, action: dict[str, Any], schema: dict[str, Any], name: str) -> str:
    draft.properties[name] = _describe(schema, action)
    if action["required"]:
        draft.required.append(name)
    return name


def map_switch(draft: Draft, action: dict[str, Any]) -> None:
    """store_true / store_false / BooleanOptionalAction / store_const -> ``{switch: ...}``."""
    kind, flag, dest = action["kind"], flag_of(action), action["dest"]
    item: dict[str, Any]
    if kind == "store_false":
        plain = dest[3:] if dest.startswith("no_") and len(dest) > 3 else dest
        name = draft.unique(plain)
        item = {"switch": name, "off_flag": flag}
        schema: dict[str, Any] = {"type": "boolean", "default": True}
    elif kind == "boolean_optional":
        name = draft.unique(dest)
        off = [o for o in action["option_strings"] if o.startswith("--no-")]
        item = {"switch": name, "flag": flag, **({"off_flag": off[0]} if off else {})}
        schema = _with_default({"type": "boolean"}, action["default"])
    else:  # store_true, store_const
        name = draft.unique(dest if kind == "store_true" else f"{dest}_{flag.lstrip('-')}")
        item = {"switch": name, "flag": flag}
        schema = {"type": "boolean", "default": False}
    _add_param(draft, action, schema, name)
    comment = None
    if kind == "store_const":
        comment = f"{flag} sets {dest} to {json.dumps(action['const'])}"
    draft.command.append(Item(item, comment))


def map_list(draft: Draft, action: dict[str, Any]) -> None:
    """nargs lists, append and extend -> an array param and ``{list: ...}``."""
    nargs, name = action["nargs"], draft.unique(action["dest"])
    schema: dict[str, Any] = {"type": "array", "items": scalar_schema(action)}
    if nargs == "+":
        schema["minItems"] = 1
    elif isinstance(nargs, int):
        schema["minItems"] = schema["maxItems"] = nargs
    # argparse marks a positional nargs='*' without a default required; it takes no values fine
    required = action["required"] and nargs != "*"
    _add_param(
        draft, {**action, "required": required}, _with_default(schema, action["default"]), name
    )
    item: dict[str, Any] = {"list": name}
    if action["option_strings"]:
        item["flag"] = flag_of(action)
        kind = action["kind"]
        if kind == "append" or (kind == "extend" and nargs not in ("+", "*")):
            item["repeat"] = True
    draft.command.append(Item(item))


def map_path(draft: Draft, action: dict[str, Any], role: str) -> None:
    """A path-like flag: an input (a dataset a job passes in) or a file under /hq/outputs/."""
    flag = flag_of(action) if action["option_strings"] else None
    default = action["default"]
    if role == "output":
        target = OUTPUTS_DIR
        if _words(action) & DIR_WORDS:
            target = OUTPUTS_DIR
        elif isinstance(default, str) and PurePosixPath(default).suffix:
            target = f"{OUTPUTS_DIR}/{PurePosixPath(default).name}"
        else:
            target = f"{OUTPUTS_DIR}/{action['dest']}"
        note = f"{CONFIRM}: an output; every file under {OUTPUTS_DIR}/ becomes an artifact"
        if flag:
            draft.command += [Item(flag, note), Item(target)]
        else:
            draft.command.append(Item(target, note))
        return
    name = draft.unique(action["dest"].lower())
    if not INPUT_NAME_RE.match(name):
        map_scalar(draft, action)
        return
    fallback = f" (without one the script uses {default})" if isinstance(default, str) else ""
    required = bool(action["required"])
    draft.inputs[name] = {
        "description": " ".join(str(action.get("help") or "").split()),
        "required": required,
    }
    _append_value(
        draft,
        flag,
        f"{{inputs.{name}}}",
        required=required,
        comment=f"{CONFIRM}: an input, a dataset a job passes in{fallback}",
    )


def _append_value(
    draft: Draft, flag: str | None, ref: str, *, required: bool, comment: str | None
) -> None:
    """Plain strings when the value is always there, else an optional group."""
    parts = [flag, ref] if flag else [ref]
    if required:
        draft.command += [Item(parts[0], comment), *(Item(p) for p in parts[1:])]
    else:
        draft.command.append(Item(parts, comment))


def map_scalar(draft: Draft, action: dict[str, Any]) -> None:
    """A value flag or positional -> a param: plain strings when it always has a value (required,
    or a default, which HQ fills in before the command is expanded), else an optional group."""
    name = draft.unique(action["dest"])
    schema = _with_default(scalar_schema(action), action["default"])
    if action["type"] not in SCHEMA_TYPES:
        schema["description"] = f"type={action['type']} in the script; passed as text"
    _add_param(draft, action, schema, name)
    comment = None if action["kind"] == "store" else f"{CONFIRM}: a custom action"
    flag = flag_of(action) if action["option_strings"] else None
    always = bool(action["required"]) or "default" in schema  # HQ fills in defaults
    _append_value(draft, flag, f"{{params.{name}}}", required=always, comment=comment)


def map_action(draft: Draft, action: dict[str, Any]) -> None:
    """One action into the draft (or into its notes, when no form fits)."""
    kind, nargs = action["kind"], action["nargs"]
    label = "/".join(action["option_strings"]) or action["dest"]
    if kind in SILENT:
        return
    if kind in NOT_MAPPED:
        draft.notes.append(f"{label}: {NOT_MAPPED[kind]} is not mapped; add it by hand")
    elif kind in ("store_true", "store_false", "boolean_optional", "store_const"):
        map_switch(draft, action)
    elif kind == "other" and nargs == 0:
        draft.notes.append(f"{label}: a custom action that takes no value is not mapped")
    elif nargs == "...":
        draft.notes.append(f"{label}: nargs=REMAINDER is not mapped; add it by hand")
    elif kind in ("append", "extend") and nargs not in (None, "?"):
        draft.notes.append(f"{label}: {kind} with nargs={nargs!r} is not mapped")
    elif kind in ("append", "extend") or nargs in ("+", "*") or isinstance(nargs, int):
        map_list(draft, action)
    elif (role := path_role(action)) is not None:
        map_path(draft, action, role)
    else:
        map_scalar(draft, action)


def map_actions(actions: list[dict[str, Any]]) -> Draft:
    """The whole parser: positionals first (in order), then the options (in order)."""
    draft = Draft()
    for action in sorted(actions, key=lambda a: bool(a["option_strings"])):
        map_action(draft, action)
    return draft
