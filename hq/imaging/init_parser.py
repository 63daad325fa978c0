"""Read a script's argparse parser: by running it up to ``parse_args``, else from its source.

Running it (``_argparse_probe.py`` in a subprocess, with a timeout) sees the parser exactly as
argparse built it, defaults and all. When that cannot run (an import missing, a crash, a script
that never parses, a timeout), the source is read with ``ast``: each ``add_argument`` call whose
arguments are literals (or ``int``/``float``/``str``, ``argparse.BooleanOptionalAction``) gives the
same mapping the probe gives, with argparse's own rules for ``dest`` and defaults.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("_argparse_probe.py")
PROBE_TIMEOUT_S = 20.0
STORE_DEFAULTS = {"store_true": False, "store_false": True}
ACTION_KINDS = {
    "store": "store",
    "store_true": "store_true",
    "store_false": "store_false",
    "append": "append",
    "extend": "extend",
    "store_const": "store_const",
    "append_const": "append_const",
    "count": "count",
    "help": "help",
    "version": "version",
    "BooleanOptionalAction": "boolean_optional",
}


@dataclass
class ParserInfo:
    """The parser's actions as the probe writes them, and how they were read."""

    actions: list[dict[str, Any]]
    description: str | None = None
    how: str = "run"  # "run": the probe; "source": ast
    why_not_run: str | None = None  # the reason the probe gave nothing
    skipped: list[str] = field(default_factory=list)  # add_argument calls ast could not read


def probe_parser(
    script: Path, *, python: str, timeout_s: float
) -> tuple[dict[str, Any] | None, str]:
    """Run the script until it parses; its dumped parser, or None and why not."""
    with tempfile.TemporaryDirectory(prefix="hq-init-") as tmp:
        out = Path(tmp) / "parser.json"
        scratch = Path(tmp) / "cwd"  # what the script writes before it parses lands here
        scratch.mkdir()
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run(
                [python, str(PROBE), str(out), str(script.resolve())],
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return None, f"it did not reach parse_args within {timeout_s:g} s"
        except OSError as exc:
            return None, f"{python} could not run: {exc}"
        if out.is_file():
            return json.loads(out.read_text(encoding="utf-8")), ""
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        if done.returncode != 0 and lines:
            return None, lines[-1].strip()
        return None, "it ended without calling ArgumentParser.parse_args"


def read_parser(
    script: Path, *, python: str | None = None, timeout_s: float = PROBE_TIMEOUT_S
) -> ParserInfo:
    """The script's parser: run when it can be, else read from its source."""
    dumped, why = probe_parser(script, python=python or sys.executable, timeout_s=timeout_s)
    if dumped is not None:
        return ParserInfo(actions=dumped["actions"], description=dumped.get("description"))
    info = parser_from_source(script.read_text(encoding="utf-8"))
    info.why_not_run = why
    if not info.actions:
        info.skipped.append("no argparse add_argument call found in the source")
    return info


# -- the source ------------------------------------------------------------------------------------


def _literal(node: ast.expr, *, named: bool = False) -> Any:
    """A literal's value; with ``named`` (``type=``, ``action=``) also a name: ``int`` -> "int",
    ``argparse.BooleanOptionalAction`` -> its last part, anything else "?name"."""
    if named and isinstance(node, ast.Name):
        return {"int": "int", "float": "float", "str": "str"}.get(node.id, f"?{node.id}")
    if named and isinstance(node, ast.Attribute):
        return node.attr if node.attr == "BooleanOptionalAction" else f"?{node.attr}"
    return ast.literal_eval(node)


def _dest(options: list[str], explicit: Any) -> str:
    """argparse's rule: the first long option (else the first), without dashes, - as _."""
    if isinstance(explicit, str):
        return explicit
    longs = [o for o in options if o.startswith("--")]
    return (longs or options)[0].lstrip("-").replace("-", "_")


def _action_from_call(call: ast.Call) -> dict[str, Any]:
    """One ``add_argument(...)`` call as the probe would dump it (ValueError if not literal)."""
    names = [_literal(a) for a in call.args]
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError("its names are not string literals")
    kw = {
        k.arg: _literal(k.value, named=k.arg in ("type", "action"))
        for k in call.keywords
        if k.arg is not None
    }
    positional = not names[0].startswith("-")
    action = kw.get("action", "store")
    if action not in ACTION_KINDS:
        raise ValueError(f"action {action!r} is not one argparse names")
    kind = ACTION_KINDS[action]
    options = [] if positional else list(names)
    if kind == "boolean_optional":
        options += [f"--no-{o[2:]}" for o in names if o.startswith("--")]
    nargs = kw.get("nargs")
    required = kw.get("required", positional and nargs not in ("?", "*"))
    typ = kw.get("type")
    if isinstance(typ, str) and typ.startswith("?"):
        typ = typ[1:]
    found = {
        "option_strings": options,
        "dest": names[0] if positional else _dest(names, kw.get("dest")),
        "kind": kind,
        "nargs": nargs,
        "type": typ,
        "choices": list(kw["choices"]) if "choices" in kw else None,
        "default": kw.get("default", STORE_DEFAULTS.get(kind)),
        "const": kw.get("const"),
        "required": bool(required),
    }
    found["help"] = _expand_help(kw.get("help"), found)
    return found


def _expand_help(text: Any, action: dict[str, Any]) -> str | None:
    """argparse's ``%(default)s``-style help, expanded as its formatter does."""
    if not isinstance(text, str):
        return None
    names = {**action, "prog": "", "metavar": None}
    if action["choices"] is not None:
        names["choices"] = ", ".join(str(c) for c in action["choices"])
    try:
        return text % names
    except (KeyError, TypeError, ValueError):
        return text


def _description(tree: ast.Module) -> str | None:
    """``ArgumentParser(description="...")`` when it is a literal."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if isinstance(node.func, ast.Name):
            called = node.func.id
        if called != "ArgumentParser":
            continue
        for kw in node.keywords:
            if kw.arg == "description" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    return None


def parser_from_source(source: str) -> ParserInfo:
    """The ``add_argument`` calls of a module, in source order; unreadable ones are skipped."""
    tree = ast.parse(source)
    actions: list[dict[str, Any]] = []
    skipped: list[str] = []
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "add_argument"
    ]
    for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
        try:
            actions.append(_action_from_call(call))
        except (ValueError, TypeError, SyntaxError) as exc:
            skipped.append(f"line {call.lineno}: {ast.unparse(call)[:80]} ({exc})")
    return ParserInfo(
        actions=actions, description=_description(tree), how="source", skipped=skipped
    )
