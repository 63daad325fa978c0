"""The house rules that a reader can count: module and function sizes, and docs that stand alone.

Sizes are read with ``ast`` from the source files (nothing is imported): no module in hq/, agent/
or dash_app/ over 400 lines, no function (or method, or nested function) over 60 lines, counted
from its ``def`` line to its last line, decorators not included. Migration scripts
(hq/server/migrations/versions/) are history, written once and never edited: they are left out.
Docs: no Markdown file in the repository points at ``../shared``, which a clone does not have.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hq", "agent", "dash_app")
EXCLUDED = ROOT / "hq" / "server" / "migrations" / "versions"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
OUTSIDE_THE_CLONE = re.compile(r"\.\./shared\b|/work/shared\b")


def sources() -> list[Path]:
    found = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in found if not p.is_relative_to(EXCLUDED)]


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_modules() -> list[str]:
    counted = ((path, len(path.read_text().splitlines())) for path in sources())
    return [f"{name(path)} ({n})" for path, n in counted if n > MAX_MODULE_LINES]


def long_functions() -> list[str]:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{name(path)}:{node.name} ({lines})")
    return found


def docs() -> list[Path]:
    """Every Markdown file of the clone, not walking hidden folders (.venv, .git) at all."""
    skipped = {"node_modules", "test-artifacts", "__pycache__"}
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in skipped]
        found.extend(Path(folder) / f for f in files if f.endswith(".md"))
    return sorted(found)


def test_the_counters_see_the_packages() -> None:
    assert len(sources()) > 50
    assert any(p == ROOT / "hq" / "server" / "app.py" for p in sources())
    assert not any(p.is_relative_to(EXCLUDED) for p in sources())


def test_no_module_is_over_400_lines() -> None:
    assert long_modules() == []


def test_no_function_is_over_60_lines() -> None:
    assert long_functions() == []


def test_no_doc_points_outside_the_clone() -> None:
    found = docs()
    assert ROOT / "README.md" in found
    pointing = [
        f"{name(path)}:{n}: {line.strip()}"
        for path in found
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_THE_CLONE.search(line)
    ]
    assert pointing == []
