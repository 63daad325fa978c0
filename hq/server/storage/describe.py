"""Describe a tabular file (CSV, TSV, Parquet): rows, columns and a short preview.

Reads are bounded: the preview and the column names come from the first rows only; the CSV row
count streams the file in chunks; Parquet's comes from its footer. A file that does not parse as a
table is still a dataset, just one with no description. Blocking: call it in a thread.

What is kept is bounded too (``PreviewLimits``, from ``HQ_PREVIEW_MAX_COLUMNS`` and
``HQ_PREVIEW_MAX_BYTES``): ``columns`` names the first columns only, the preview shows those, long
text cells are cut, and rows are dropped from the end until the preview's JSON fits. The file
itself is stored whole; only its description is shortened.
"""

from __future__ import annotations

import csv
import json
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 20
MAX_CELL_CHARS = 200
COUNT_CHUNK_ROWS = 200_000
PARQUET_MAGIC = b"PAR1"
CSV_TYPES = {".csv": ("text/csv", ","), ".tsv": ("text/tab-separated-values", "\t")}
PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Description:
    content_type: str
    rows: int | None = None
    columns: list[str] | None = None
    preview: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class PreviewLimits:
    """How much of a table's description is kept: columns named, and the preview's JSON size."""

    max_columns: int = 100
    max_bytes: int = 64 * 1024


def _cell(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[: MAX_CELL_CHARS - 1] + "\u2026"
    return value


def _records(frame: Any, limits: PreviewLimits) -> list[dict[str, Any]]:
    """JSON-safe rows (NaN to null, timestamps to ISO text) via pandas' own JSON writer, cut
    to fit ``limits.max_bytes``."""
    records: list[dict[str, Any]] = [
        {str(k): _cell(v) for k, v in row.items()}
        for row in json.loads(
            frame.to_json(orient="records", date_format="iso", default_handler=str)
        )
    ]
    while records and len(json.dumps(records).encode()) > limits.max_bytes:
        records.pop()
    return records


def _describe_csv(path: Path, *, sep: str, content_type: str, limits: PreviewLimits) -> Description:
    import pandas as pd

    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        width = min(len(next(csv.reader(fh, delimiter=sep), [])), limits.max_columns)
    # (csv reads a 100,000-column header in milliseconds; pandas took 40 s over it)
    head = pd.read_csv(path, sep=sep, nrows=PREVIEW_ROWS, usecols=list(range(width)))
    columns = [str(c) for c in head.columns]
    rows = 0
    reader = pd.read_csv(
        path, sep=sep, usecols=[0], dtype=str, chunksize=COUNT_CHUNK_ROWS, keep_default_na=False
    )
    with reader:
        for chunk in reader:
            rows += len(chunk)
    return Description(
        content_type=content_type, rows=rows, columns=columns, preview=_records(head, limits)
    )


def _describe_parquet(path: Path, limits: PreviewLimits) -> Description:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        names = list(parquet.schema_arrow.names)[: limits.max_columns]
        columns = [str(n) for n in names]
        rows = int(parquet.metadata.num_rows)
        preview: list[dict[str, Any]] = []
        for batch in parquet.iter_batches(batch_size=PREVIEW_ROWS, columns=names):
            preview = _records(batch.to_pandas().head(PREVIEW_ROWS), limits)
            break
    return Description(content_type=PARQUET_TYPE, rows=rows, columns=columns, preview=preview)


def is_tabular(filename: str) -> bool:
    """Whether the name says CSV, TSV or Parquet (worth reading to describe)."""
    return Path(filename).suffix.lower() in (*CSV_TYPES, ".parquet", ".pq")


def guess_content_type(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in CSV_TYPES:
        return CSV_TYPES[suffix][0]
    if suffix in (".parquet", ".pq"):
        return PARQUET_TYPE
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def describe_file(
    path: Path,
    *,
    filename: str,
    content_type: str | None = None,
    limits: PreviewLimits | None = None,
) -> Description:
    """Rows, columns and a preview when ``path`` is a CSV/TSV or Parquet table."""
    limits = limits or PreviewLimits()
    suffix = Path(filename).suffix.lower()
    with path.open("rb") as fh:
        magic = fh.read(4)
    guessed = content_type if content_type and content_type != "application/octet-stream" else None
    fallback = guessed or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    try:
        if suffix in (".parquet", ".pq") or magic == PARQUET_MAGIC:
            return _describe_parquet(path, limits)
        if suffix in CSV_TYPES:
            ctype, sep = CSV_TYPES[suffix]
            return _describe_csv(path, sep=sep, content_type=ctype, limits=limits)
    except Exception as exc:  # not a table after all: keep the file, skip the description
        logger.info("could not describe %s as a table: %s", filename, exc)
    return Description(content_type=fallback[:128])
