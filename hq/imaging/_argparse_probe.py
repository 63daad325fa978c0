"""Run a script until it calls ``parse_args``, then dump its parser's actions as JSON and stop.

A click (or typer) command is stopped the same way when it parses (``Command.make_context``).

``hq script init`` runs this file (not an import of HQ: it runs in whichever interpreter has the
script's own packages) as ``python _argparse_probe.py OUT SCRIPT``. The script runs as
``__main__`` with its folder first on ``sys.path``; ``ArgumentParser.parse_args`` (and
``parse_known_args``) are replaced by a dump that writes OUT and raises, so nothing after the
parse runs. A script that never parses writes nothing, which the caller reports.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from typing import Any

KINDS = {  # argparse's action classes (private names, stable since 3.x) -> our names
    "_StoreAction": "store",
    "_StoreTrueAction": "store_true",
    "_StoreFalseAction": "store_false",
    "BooleanOptionalAction": "boolean_optional",
    "_AppendAction": "append",
    "_ExtendAction": "extend",
    "_StoreConstAction": "store_const",
    "_AppendConstAction": "append_const",
    "_CountAction": "count",
    "_HelpAction": "help",
    "_VersionAction": "version",
    "_SubParsersAction": "subparsers",
}


class _Parsed(BaseException):
    """Raised by the dump; a BaseException, so a script's ``except Exception`` lets it through."""


def _kind(action: argparse.Action) -> str:
    for cls in type(action).__mro__:
        if cls.__name__ in KINDS:
            return KINDS[cls.__name__]
    return "other"


def _jsonable(value: Any) -> Any:
    """The value if JSON can carry it (a path as its text), else None."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str | None:
    if not action.help or action.help == argparse.SUPPRESS:
        return None
    try:
        return str(parser._get_formatter()._expand_help(action))
    except (KeyError, TypeError, ValueError):
        return str(action.help)


def describe(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The parser as plain JSON: its description and one mapping per action."""
    actions = []
    for action in parser._actions:
        kind_of_type = action.type
        default = None if action.default == argparse.SUPPRESS else _jsonable(action.default)
        choices = _jsonable(list(action.choices)) if action.choices is not None else None
        actions.append(
            {
                "option_strings": list(action.option_strings),
                "dest": action.dest,
                "kind": _kind(action),
                "nargs": action.nargs,
                "type": getattr(kind_of_type, "__name__", None) if kind_of_type else None,
                "choices": choices if _kind(action) != "subparsers" else None,
                "default": default,
                "const": _jsonable(action.const),
                "required": bool(action.required),
                "help": _help(parser, action),
            }
        )
    return {"description": parser.description, "actions": actions}


CLICK_TYPES = {"integer": "int", "float": "float"}


def _click_kind(param: Any) -> str:
    if getattr(param, "count", False):
        return "count"
    if getattr(param, "is_flag", False):
        if not getattr(param, "is_bool_flag", True):
            return "store_const"
        if param.secondary_opts:
            return "boolean_optional"
        return "store_false" if param.default is True else "store_true"
    return "append" if param.multiple else "store"


def describe_click(command: Any) -> dict[str, Any]:
    """A click (or typer) command in the same shape as ``describe``'s parser."""
    actions = []
    if hasattr(command, "commands"):
        actions.append({**_EMPTY, "dest": "command", "kind": "subparsers"})
    for param in command.params:
        option = param.param_type_name == "option"
        kind = _click_kind(param) if option else "store"
        nargs = param.nargs if param.nargs != 1 else None
        default = param.default if not callable(param.default) else None
        actions.append(
            {
                **_EMPTY,
                "option_strings": [*param.opts, *param.secondary_opts] if option else [],
                "dest": param.name,
                "kind": kind,
                "nargs": "*" if nargs == -1 else nargs,
                "type": CLICK_TYPES.get(param.type.name, "str"),
                "choices": _jsonable(list(getattr(param.type, "choices", None) or [])) or None,
                "default": _jsonable(default) if kind != "store_true" else False,
                "required": bool(param.required),
                "help": getattr(param, "help", None),
            }
        )
    return {"description": (command.help or "").strip() or None, "actions": actions}


_EMPTY: dict[str, Any] = {"nargs": None, "type": None, "choices": None, "const": None}


def _intercept_click(dump: Any) -> None:
    """Stop a click command when it parses (``make_context``, which ``cli()`` calls; typer's
    commands are click's, with their own ``main`` but the same ``make_context``)."""
    try:
        import click
    except ImportError:
        return
    for name in ("Command", "BaseCommand"):
        cls = getattr(click.core, name, None)
        if cls is not None:
            setattr(cls, "make_context", lambda self, *a, **k: dump(describe_click(self)))  # noqa: B010


def main() -> None:
    out, script = sys.argv[1], os.path.abspath(sys.argv[2])

    def write(found: dict[str, Any]) -> Any:
        with open(out, "w", encoding="utf-8") as file:
            json.dump(found, file)
        raise _Parsed

    def dump(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        write(describe(self))

    _intercept_click(write)

    setattr(argparse.ArgumentParser, "parse_args", dump)  # noqa: B010 (mypy: method assign)
    setattr(argparse.ArgumentParser, "parse_known_args", dump)  # noqa: B010
    setattr(argparse.ArgumentParser, "parse_intermixed_args", dump)  # noqa: B010
    sys.argv = [script]
    sys.path[0] = os.path.dirname(script)  # the script's folder, not this one (hq/imaging)
    try:
        runpy.run_path(script, run_name="__main__")
    except _Parsed:
        sys.exit(0)


if __name__ == "__main__":
    main()
