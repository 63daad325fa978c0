"""`hq db upgrade` and `hq db current` on both databases: an operator's explicit migration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hq.cli import main
from hq.server import migrations
from tests.fixtures.db import create_pg_database, drop_pg_database


def test_db_upgrade_then_current_on_postgresql() -> None:
    name, url = create_pg_database()
    try:
        runner = CliRunner()
        before = runner.invoke(main, ["db", "current", "--database-url", url])
        assert before.exit_code == 1
        assert "database: not migrated" in before.output

        first = runner.invoke(main, ["db", "upgrade", "--database-url", url, "--revision", "0001"])
        assert first.exit_code == 0, first.output
        assert "upgraded an empty database -> 0001" in first.output
        up = runner.invoke(main, ["db", "upgrade", "--database-url", url])
        assert up.exit_code == 0, up.output
        assert f"upgraded 0001 -> {migrations.head()}" in up.output
        again = runner.invoke(main, ["db", "upgrade", "--database-url", url])
        assert again.output.strip() == f"already at {migrations.head()}"

        now = runner.invoke(main, ["db", "current", "--database-url", url])
        assert now.exit_code == 0
        assert re.search(
            rf"database: {migrations.head()}\nthis HQ:  {migrations.head()}", now.output
        )
    finally:
        drop_pg_database(name)


def test_db_upgrade_reads_hq_database_url_for_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hq.db"
    monkeypatch.setenv("HQ_DATABASE_URL", f"sqlite:///{path}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrations.current(f"sqlite+aiosqlite:///{path}") == migrations.head()
