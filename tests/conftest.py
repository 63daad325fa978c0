"""Shared fixtures live in tests/fixtures/<topic>.py, one module per topic.

Markers are given here by where a test lives and what it uses, so no test file has to remember:

- ``slow``: every test under tests/e2e (each drives real processes: a server, an agent, a
  browser), and the few elsewhere marked by hand. ``-m "not slow"`` is unit + integration.
- ``postgresql``: runs on PostgreSQL, by a parameter (``db_url``, ``live_server``, a module
  server or ``db`` set to "postgresql") or by a fixture (``pg_url``, ``pg_template``).
- ``docker``, ``browser``: use the Docker engine's or Chromium's fixtures.

``make check`` runs ``-m "not slow and not postgresql and not docker and not browser"`` on
tests/unit and tests/integration: no root, no Docker, no PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.run import RUN_DIR_ENV, stop_started

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.server",
    "tests.fixtures.factories",
    "tests.fixtures.s3",
    "tests.fixtures.docker",
    "tests.fixtures.browser",
    "tests.fixtures.agent",
    "tests.fixtures.inprocess",
    "tests.fixtures.compose",
    "tests.fixtures.pgcluster",
    "tests.fixtures.standins",
]

E2E = Path(__file__).parent / "e2e"
FIXTURE_MARKS = {
    "pg_url": "postgresql",
    "pg_template": "postgresql",
    "pg_cluster": "postgresql",
    "docker_client": "docker",
    "docker_cleanup": "docker",
    "base_image": "docker",
    "registry": "docker",
    "example_images": "docker",
    "hq_agents": "docker",
    "live_agent": "docker",
    "chromium": "browser",
    "page": "browser",
}


OWNS_RUN_DIR = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    """The run's first process (not an xdist worker) makes the folder its workers share."""
    if hasattr(config, "workerinput") or RUN_DIR_ENV in os.environ:
        return
    os.environ[RUN_DIR_ENV] = tempfile.mkdtemp(prefix="hq-test-run-")
    config.stash[OWNS_RUN_DIR] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop what a worker started for the whole run (the registry), then drop the folder."""
    if not config.stash.get(OWNS_RUN_DIR, False):
        return
    folder = Path(os.environ.pop(RUN_DIR_ENV))
    stop_started(folder)
    shutil.rmtree(folder, ignore_errors=True)


def marks_for(item: pytest.Item) -> set[str]:
    """The markers a test gets from its folder, its fixtures and its parameters."""
    names: set[str] = set()
    if item.path.is_relative_to(E2E):
        names.add("slow")
    fixtures = getattr(item, "fixturenames", ())
    names.update(mark for fixture, mark in FIXTURE_MARKS.items() if fixture in fixtures)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        names.add("postgresql")
    return names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        for name in sorted(marks_for(item) - have):
            item.add_marker(name)
