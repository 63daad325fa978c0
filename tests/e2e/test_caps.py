"""Costs a submitter could multiply are capped, with 413s that say which setting and what to do.

A sweep copies its fixed params into every job; a job's params come back whole in every listing;
a dataset's preview is stored and served with each version. Measured before the caps: a 0.11 MB
sweep request grew the database by 171.6 MB, three 10 MiB params made one job listing 31.5 MB, a
4.7 MB CSV of 100,000 columns made a 22.7 MB preview.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hq import errors
from tests.e2e.test_datasets import make_server, server  # noqa: F401
from tests.fixtures.api import publish_fake, table_counts
from tests.fixtures.server import LiveServer

MAX_PARAMS = 64 * 1024  # the defaults the README states
MAX_SWEEP_PARAMS = 8 * 1024**2
PREVIEW_COLUMNS, PREVIEW_BYTES = 100, 64 * 1024
STRING_PARAMS = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "note": {"type": "string"}},
}


def test_one_jobs_params_are_capped(sqlite_server: LiveServer) -> None:
    admin = sqlite_server.client("admin")
    script = publish_fake(admin, params=STRING_PARAMS).script
    submitter = sqlite_server.client("submitter")
    before = table_counts(sqlite_server)
    with pytest.raises(errors.PayloadTooLarge, match="HQ_MAX_PARAMS_BYTES") as refused:
        submitter.submit_job(script=script, params={"note": "x" * (10 * 1024**2)})
    assert f"at most {MAX_PARAMS} bytes" in refused.value.message
    assert "dataset input" in refused.value.message and refused.value.field == "params"
    assert table_counts(sqlite_server) == before
    fits = submitter.submit_job(script=script, params={"note": "x" * (MAX_PARAMS - 100)})
    assert len(fits.params["note"]) == MAX_PARAMS - 100


def test_a_sweeps_params_are_capped_per_job_and_in_total(sqlite_server: LiveServer) -> None:
    admin = sqlite_server.client("admin")
    script = publish_fake(admin, params=STRING_PARAMS).script
    submitter = sqlite_server.client("submitter")
    before = table_counts(sqlite_server)
    note = "x" * 40_000  # under one job's cap, but 300 copies are 12 MB
    with pytest.raises(errors.PayloadTooLarge, match="HQ_MAX_SWEEP_PARAMS_BYTES") as refused:
        submitter.submit_sweep(script=script, params={"note": note}, grid={"n": list(range(300))})
    assert "300 jobs" in refused.value.message and str(MAX_SWEEP_PARAMS) in refused.value.message
    with pytest.raises(errors.PayloadTooLarge, match="HQ_MAX_SWEEP_PARAMS_BYTES"):
        submitter.submit_sweep(
            script=script, params={"note": note}, grid={"n": [1, 2]}, repeats=150
        )
    with pytest.raises(errors.PayloadTooLarge, match="sweep point 0's params"):
        submitter.submit_sweep(script=script, grid={"note": ["y" * (MAX_PARAMS + 1)]})
    assert table_counts(sqlite_server) == before
    swept = submitter.submit_sweep(
        script=script, params={"note": "z" * 20_000}, grid={"n": list(range(20))}
    )
    assert swept.total == 20


def _wide_csv(path: Path, *, columns: int, rows: int) -> Path:
    with path.open("w") as fh:
        fh.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        line = ",".join(str(i % 10) for i in range(columns)) + "\n"
        fh.writelines(line for _ in range(rows))
    return path


def test_a_preview_is_capped_in_width_and_size(
    server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    submitter = server.client("submitter")
    wide = _wide_csv(tmp_path / "wide.csv", columns=100_000, rows=20)
    assert wide.stat().st_size > 4 * 1024**2
    version = submitter.upload_dataset(name="wide", path=wide)
    assert version.rows == 20
    assert version.columns == [f"c{i}" for i in range(PREVIEW_COLUMNS)]
    assert version.preview is not None and len(version.preview) == 20
    assert all(list(row) == version.columns for row in version.preview)
    shown = submitter.get_dataset_version("wide", 1)
    assert len(shown.model_dump_json()) < 2 * PREVIEW_BYTES

    long_text = tmp_path / "notes.csv"
    header = ",".join(f"t{i}" for i in range(50))
    line = ",".join("w" * 5000 for _ in range(50))
    long_text.write_text(header + "\n" + "".join(f"{line}\n" for _ in range(20)))
    notes = submitter.upload_dataset(name="notes", path=long_text)
    assert notes.rows == 20 and notes.columns is not None and len(notes.columns) == 50
    assert notes.preview and len(notes.preview) < 20  # rows dropped until it fits
    assert len(json.dumps(notes.preview)) <= PREVIEW_BYTES
    assert all(len(v) <= 200 for row in notes.preview for v in row.values())  # cells cut
    back = submitter.download_dataset("notes", 1, tmp_path / "back.csv")
    assert back.read_bytes() == long_text.read_bytes()  # the file itself is whole
