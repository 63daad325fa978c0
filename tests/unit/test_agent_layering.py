"""The agent's layering: it talks to HQ through hq.client only (never the server or the
database), and docker_runner.py is the only module in agent/ that imports docker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"
MODULES = sorted(AGENT_DIR.glob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_agent_module_never_imports_the_server_or_a_database(module: Path) -> None:
    forbidden = {
        n
        for n in imported(module)
        if n.split(".")[0] in ("sqlalchemy", "psycopg", "aiosqlite", "fastapi", "minio")
        or n.startswith("hq.server")
    }
    assert forbidden == set()


def test_only_docker_runner_imports_docker() -> None:
    users = {m.name for m in MODULES if any(n.split(".")[0] == "docker" for n in imported(m))}
    assert users == {"docker_runner.py"}
