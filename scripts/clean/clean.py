"""Clean a CSV: drop columns with too many missing values, then rows with any missing value.

Prints what it dropped. Writes the cleaned table with --out and a results.json with --results.
With --summary (describe's summary.csv) the missing counts come from that summary instead of
being counted again. Settings can come from a JSON file with --params; flags win over the file.
Exits 1 when fewer than min_rows rows are left, so a pipeline stops before fitting on nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def missing_fractions(df: pd.DataFrame, summary: Path | None) -> dict[str, float]:
    """Each column's fraction of missing cells, from describe's summary when given."""
    if summary is not None:
        table = pd.read_csv(summary)
        counts = dict(zip(table["column"], table["missing"], strict=True))
        return {c: float(counts.get(c, 0)) / max(len(df), 1) for c in df.columns}
    return {c: float(df[c].isna().mean()) for c in df.columns}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="CSV file")
    parser.add_argument("--summary", type=Path, help="describe's summary.csv of the same table")
    parser.add_argument("--max-missing", type=float, help="drop columns missing more (0.5)")
    parser.add_argument("--min-rows", type=int, help="fail when fewer rows are left (1)")
    parser.add_argument("--params", type=Path, help="JSON file with max_missing/min_rows")
    parser.add_argument("--out", type=Path, help="write the cleaned CSV here")
    parser.add_argument("--results", type=Path, help="write results.json here")
    args = parser.parse_args(argv)

    params = json.loads(args.params.read_text()) if args.params and args.params.exists() else {}
    max_missing = (
        args.max_missing if args.max_missing is not None else params.get("max_missing", 0.5)
    )
    min_rows = args.min_rows if args.min_rows is not None else int(params.get("min_rows", 1))

    df = pd.read_csv(args.data)
    fractions = missing_fractions(df, args.summary)
    dropped_columns = [c for c, f in fractions.items() if f > max_missing]
    clean = df.drop(columns=dropped_columns).dropna()
    dropped_rows = len(df) - len(clean)
    print(
        f"{len(df)} rows x {df.shape[1]} columns -> {len(clean)} x {clean.shape[1]}; dropped "
        f"columns {dropped_columns or 'none'}, {dropped_rows} rows with missing values"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        clean.to_csv(args.out, index=False)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        results = {
            "metrics": {
                "rows_in": len(df),
                "rows_out": len(clean),
                "rows_dropped": dropped_rows,
                "columns_dropped": len(dropped_columns),
            },
            "tables": {
                "missing": [
                    {"column": c, "missing_fraction": round(f, 6), "dropped": c in dropped_columns}
                    for c, f in fractions.items()
                ]
            },
        }
        args.results.write_text(json.dumps(results, indent=2))
    if len(clean) < min_rows:
        print(f"only {len(clean)} rows left, fewer than min_rows={min_rows}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
