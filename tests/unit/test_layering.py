"""The layering of STYLE.md, enforced: ``api -> services -> db``; ``cli -> client -> schemas``;
``agent -> client``; ``dash_app -> client``; one module per SDK that needs an adapter.

Each rule is one table entry with its reason, and one test case whose failure names each
module that breaks it and what that module imports. Modules are read with ``ast`` (nothing is
imported), so a rule also sees imports inside functions and under ``TYPE_CHECKING``. It
replaces ``test_agent_layering.py``, whose two checks are the agent's rules here.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


Exempt = tuple[tuple[str, str], ...]  # (glob, why the rule does not apply there)


@dataclass(frozen=True)
class Forbids:
    """Modules matching ``files`` (less ``exempt``) import nothing named by ``forbidden`` (a
    name and what is under it: ``hq.server`` covers ``hq.server.db.models``)."""

    name: str
    files: tuple[str, ...]  # globs from the repository root
    forbidden: tuple[str, ...]
    why: str
    exempt: Exempt = ()


@dataclass(frozen=True)
class OnlyOwner:
    """Among the modules matching ``files`` (less ``exempt``), only ``owner`` imports
    ``package``: the one adapter over that SDK."""

    name: str
    package: str
    owner: str
    files: tuple[str, ...]
    why: str
    exempt: Exempt = ()


DATABASE_DRIVERS = ("sqlalchemy", "psycopg", "aiosqlite")
RUNTIME_CODE = ("hq/**/*.py", "agent/**/*.py", "dash_app/**/*.py")

FORBIDS = (
    Forbids(
        "api-reaches-the-database-through-services",
        files=("hq/server/api/**/*.py",),
        forbidden=("hq.server.db", "hq.server.queue", *DATABASE_DRIVERS),
        why="a route parses, opens its transaction, calls one service and returns a schema; "
        "rows, SQL and the queue stay in services (the session type comes from deps.SessionDep)",
    ),
    Forbids(
        "services-know-no-http",
        files=("hq/server/services/**/*.py",),
        forbidden=("fastapi", "starlette", "hq.server.api", "hq.server.deps", "hq.server.app"),
        why="services raise hq.errors and return schemas; mapping them to HTTP is the routes' "
        "and the one error handler's job",
    ),
    Forbids(
        "schemas-are-plain-pydantic",
        files=("hq/schemas/**/*.py",),
        forbidden=("sqlalchemy", "fastapi", "starlette", "httpx", "hq.server", "hq.client"),
        why="the API models are shared by the server, the client, the agent and the web app, "
        "so they depend on none of them",
    ),
    Forbids(
        "agent-talks-to-hq-through-the-client",
        files=("agent/**/*.py",),
        forbidden=("hq.server", "hq.cli", "fastapi", "minio", *DATABASE_DRIVERS),
        why="an agent runs on a worker host with only HQ's URL and a token: it reaches HQ "
        "through hq.client, never its database, its object store or its code",
    ),
    Forbids(
        "web-app-talks-to-hq-through-the-client",
        files=("dash_app/**/*.py",),
        forbidden=("hq.server", "hq.cli", "agent", *DATABASE_DRIVERS),
        why="the Dash app is a client of the HTTP API, like the CLI",
    ),
    Forbids(
        "client-is-http-only",
        files=("hq/client.py", "hq/client/**/*.py"),
        forbidden=("hq.server", "hq.cli", "agent", "dash_app", *DATABASE_DRIVERS),
        why="the CLI, the agent, the web app and the tests use the client where no server "
        "code is installed; it speaks HTTP and the shared schemas only",
    ),
)

ONLY_OWNERS = (
    OnlyOwner(
        "only-docker-runner-imports-docker",
        package="docker",
        owner="agent/docker_runner.py",
        files=RUNTIME_CODE,
        why="docker-py's calls block and its errors need translating: one module runs jobs with it",
        exempt=(("hq/imaging/**/*.py", "the image builder: the CLI's own tool, not a runtime"),),
    ),
    OnlyOwner(
        "only-the-s3-adapter-imports-minio",
        package="minio",
        owner="hq/server/storage/s3.py",
        files=RUNTIME_CODE,
        why="everything else talks to object storage through the ObjectStore port, so the "
        "folder store and S3 stay interchangeable",
    ),
)


def matching(patterns: tuple[str, ...], exempt: Exempt = ()) -> list[str]:
    """Source files (relative to the root) matched by ``patterns`` and by no ``exempt``."""
    found = {p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()}
    skipped = {p for pattern, _ in exempt for p in ROOT.glob(pattern)}
    return sorted(str(p.relative_to(ROOT)) for p in found - skipped)


@functools.cache
def imported(relative: str) -> frozenset[str]:
    """Every module name ``relative`` imports, in full: ``from hq.server import db`` counts as
    both ``hq.server`` and ``hq.server.db``; relative imports are resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / relative).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # the package this module is in, then one up per extra dot
                package = relative.split("/")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("rule", FORBIDS, ids=lambda r: r.name)
def test_modules_keep_their_layer(rule: Forbids) -> None:
    wrong = {
        module: sorted(n for n in imported(module) if any(_under(n, f) for f in rule.forbidden))
        for module in matching(rule.files, rule.exempt)
    }
    wrong = {module: names for module, names in wrong.items() if names}
    assert not wrong, f"{rule.name}: {wrong}; {rule.why}"


@pytest.mark.parametrize("rule", ONLY_OWNERS, ids=lambda r: r.name)
def test_only_the_adapter_imports_its_sdk(rule: OnlyOwner) -> None:
    users = [
        module
        for module in matching(rule.files, rule.exempt)
        if any(_under(n, rule.package) for n in imported(module))
    ]
    assert users == [rule.owner], f"{rule.name}: {users} import {rule.package}; {rule.why}"


@pytest.mark.parametrize("rule", [*FORBIDS, *ONLY_OWNERS], ids=lambda r: r.name)
def test_every_rule_covers_modules(rule: Forbids | OnlyOwner) -> None:
    """A rule (or an exemption) whose files moved away would pass while checking nothing."""
    assert matching(rule.files, rule.exempt), f"rule {rule.name} matches no module: {rule.files}"
    for pattern, _ in rule.exempt:
        assert matching((pattern,)), f"rule {rule.name} exempts {pattern}, which matches nothing"
