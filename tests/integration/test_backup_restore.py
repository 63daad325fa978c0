"""Backup and restore as docs/operating.md describes them: ``pg_dump`` of the database plus a copy
of the object store, restored into a fresh database and store, and read back through HQ."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from hq.server import migrations
from tests.fixtures.api import publish_fake
from tests.fixtures.db import create_pg_database, drop_pg_database
from tests.fixtures.server import ServerFactory


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_pg_dump_and_store_copy_restore_into_a_fresh_database(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    first = server_factory(db="postgresql", storage_url=f"file://{store}")
    admin = first.client()
    script = publish_fake(admin)
    data = tmp_path / "table.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    dataset = admin.upload_dataset(name="table", path=data)
    job = admin.submit_job(script=script.script, params={"n": 3}, priority=7)

    dump = tmp_path / "hq.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", _libpq_url(first.database_url)],
        check=True,
        timeout=60,
    )
    copy = tmp_path / "store-copy"
    shutil.copytree(store, copy)  # the bucket copy (mc mirror / aws s3 sync on S3)

    name, restored_url = create_pg_database()
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={_libpq_url(restored_url)}", str(dump)],
            check=True,
            timeout=60,
        )
        assert migrations.current(restored_url) == migrations.head()
        second = server_factory(
            db="sqlite", storage_url=f"file://{copy}", env={"HQ_DATABASE_URL": restored_url}
        )
        with second.client() as restored:
            back = restored.get_job(job.id)
            assert (back.id, back.script, back.status, back.priority) == (
                job.id,
                script.script,
                "queued",
                7,
            )
            got = restored.download_dataset("table", dataset.version, tmp_path / "back.csv")
            assert got.read_text() == data.read_text()
            assert restored.get_script(script.script).versions[0].digest == script.digest
    finally:
        drop_pg_database(name)
