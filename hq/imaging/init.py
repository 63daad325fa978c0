"""``hq script init SCRIPT``: a draft ``hq.yaml`` (and ``requirements.txt``) from the script itself.

The parser comes from ``init_parser`` (the script run up to ``parse_args``, else its source), the
manifest's parts from ``init_mapping``, the requirements from ``init_requirements``. The draft is
YAML with a comment on each line the user should confirm; it is validated with the same
``parse_manifest`` as ``hq script build --check`` before it is written. Both files are written
whole (a temporary file renamed into place), and an existing ``hq.yaml`` is kept unless ``force``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hq import errors
from hq.imaging.init_mapping import CONFIRM, Draft, map_actions
from hq.imaging.init_parser import PROBE_TIMEOUT_S, ParserInfo, read_parser
from hq.imaging.init_requirements import Requirements, resolve
from hq.imaging.manifest import MANIFEST_FILE, parse_manifest

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
BARE_RE = re.compile(r"^(?:--?[A-Za-z]|[A-Za-z_/])[A-Za-z0-9_./\-]*$")
YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
RESOURCES = "resources: {cpus: 1, memory: 512m, gpus: 0, timeout_s: 3600}"


@dataclass
class InitResult:
    manifest_path: Path
    requirements_path: Path | None  # None: none written (nothing to list, or one was kept)
    parser: ParserInfo
    notes: list[str] = field(default_factory=list)
    problems: str | None = None  # the draft's validation errors, if it does not validate


def script_name(script: Path, name: str | None) -> str:
    """The manifest name: ``name``, else the folder's (or the file's) name made valid."""
    if name is not None:
        if not NAME_RE.match(name):
            raise errors.ValidationFailed(
                f"name {name!r} must match {NAME_RE.pattern} (lowercase letters, digits, '-')",
                field="name",
            )
        return name
    for raw in (script.resolve().parent.name, script.stem):
        candidate = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
        candidate = re.sub(r"^[^a-z]+", "", candidate)[:63].rstrip("-")
        if NAME_RE.match(candidate):
            return candidate
    raise errors.ValidationFailed(f"no valid name from {script}: pass --name", field="name")


def y(value: Any) -> str:
    """A YAML flow value: bare words where YAML reads them back as the same string, else JSON."""
    if isinstance(value, str):
        bare = BARE_RE.match(value) and value.lower() not in YAML_WORDS
        return value if bare else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(y(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{y(k)}: {y(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _line(text: str, comment: str | None) -> str:
    return f"{text}  # {comment}" if comment else text


def description_of(script: Path, parser: ParserInfo) -> str:
    text = parser.description
    if not text:
        try:
            text = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        except SyntaxError:
            text = None
    first = (text or "").strip().split("\n\n")[0]
    return " ".join(first.split())[:300]


def _header(script: Path, parser: ParserInfo, draft: Draft) -> list[str]:
    how = (
        "read by running it up to parse_args"
        if parser.how == "run"
        else f"read from its source, since running it failed: {parser.why_not_run}"
    )
    lines = [
        f"# A draft by `hq script init` from the argparse parser of {script.name}",
        f"# ({how}).",
        f'# Check each line marked "{CONFIRM}", then: hq script build --check <this folder>',
    ]
    lines += [f"# Not mapped: {note}" for note in [*draft.notes, *parser.skipped]]
    return lines


def render(script: Path, name: str, parser: ParserInfo, draft: Draft) -> str:
    """The draft hq.yaml: header comments, then name, command, inputs, params, resources."""
    lines = [*_header(script, parser, draft), f"name: {name}"]
    lines.append(f"description: {json.dumps(description_of(script, parser))}")
    lines.append("command:")
    lines += [f"  - {y(v)}" for v in ("python", script.name)]
    lines += [_line(f"  - {y(item.value)}", item.comment) for item in draft.command]
    if draft.inputs:
        lines.append("inputs:")
        lines += [f"  {k}: {y(v)}  # {CONFIRM}" for k, v in draft.inputs.items()]
    lines += ["params:", "  type: object"]
    if draft.properties:
        lines.append("  properties:")
        lines += [f"    {y(k)}: {y(v)}" for k, v in draft.properties.items()]
    else:
        lines.append("  properties: {}")
    if draft.required:
        lines.append(f"  required: {y(draft.required)}")
    lines += ["  additionalProperties: false", RESOURCES]
    return "\n".join(lines) + "\n"


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_script(script: Path, force: bool) -> Path:
    if script.suffix != ".py" or not script.is_file():
        raise errors.ValidationFailed(f"{script} is not a Python file (*.py)", field="script")
    target = script.parent / MANIFEST_FILE
    if target.exists() and not force:
        raise errors.Conflict(f"{target} exists: pass --force to overwrite it", field="hq.yaml")
    return target


def init_script(
    script: Path,
    *,
    force: bool = False,
    python: str | None = None,
    name: str | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> InitResult:
    """Write ``hq.yaml`` (and ``requirements.txt``) beside ``script``; see the module docstring."""
    target = _check_script(script, force)
    if python is not None and shutil.which(python) is None:
        raise errors.ValidationFailed(f"--python {python} is not an interpreter", field="python")
    manifest_name = script_name(script, name)
    parser = read_parser(script, python=python, timeout_s=timeout_s)
    draft = map_actions(parser.actions)
    text = render(script, manifest_name, parser, draft)
    problems = None
    try:
        parse_manifest(text, source=str(target))
    except errors.ValidationFailed as exc:
        problems = str(exc)
    requirements = resolve(script, python=python)
    req_path = _requirements_path(script, requirements, force)
    _write_whole(target, text)
    if req_path is not None:
        _write_whole(req_path, requirements.text())
    notes = [*draft.notes, *parser.skipped]
    return InitResult(target, req_path, parser, notes=notes, problems=problems)


def _requirements_path(script: Path, requirements: Requirements, force: bool) -> Path | None:
    """Where to write requirements.txt: nowhere if nothing to list or one exists (no force)."""
    path = script.parent / "requirements.txt"
    if not (requirements.lines or requirements.unresolved):
        return None
    return path if force or not path.exists() else None
