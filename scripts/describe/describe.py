"""Summary statistics, missing values and correlations of a CSV, with a histogram per column.

    python describe.py --data wine.csv
    python describe.py --data wine.csv --results out/results.json

Prints the summary. With --results PATH it also writes a results.json (metrics, tables, charts);
with --summary PATH the summary table as CSV. Optional settings can come from a JSON file
(--params), which is how HQ passes them; flags win over the file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def clean(value: object) -> object:
    """A JSON-friendly cell: NaN and infinities become None, numpy scalars plain Python."""
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def summary_table(df: pd.DataFrame) -> list[dict]:
    rows = []
    for column in df.columns:
        series = df[column]
        row = {
            "column": column,
            "dtype": str(series.dtype),
            "count": int(series.count()),
            "missing": int(series.isna().sum()),
            "unique": int(series.nunique()),
        }
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            q = series.quantile([0.25, 0.5, 0.75])
            row.update(
                mean=series.mean(),
                std=series.std(),
                min=series.min(),
                q25=q[0.25],
                median=q[0.5],
                q75=q[0.75],
                max=series.max(),
                skew=series.skew(),
            )
        else:
            top = series.mode()
            row.update(top=str(top.iloc[0]) if len(top) else None)
        rows.append({k: clean(v) for k, v in row.items()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="CSV file")
    parser.add_argument("--max-histograms", type=int, help="at most this many (default 12)")
    parser.add_argument("--sample-rows", type=int, help="rows kept for histograms (default 2000)")
    parser.add_argument("--params", type=Path, help="JSON file with max_histograms/sample_rows")
    parser.add_argument("--results", type=Path, help="write results.json here")
    parser.add_argument("--summary", type=Path, help="write the summary table as CSV here")
    args = parser.parse_args(argv)

    params = json.loads(args.params.read_text()) if args.params and args.params.exists() else {}
    max_hist = (
        args.max_histograms
        if args.max_histograms is not None
        else int(params.get("max_histograms", 12))
    )
    sample_rows = (
        args.sample_rows if args.sample_rows is not None else int(params.get("sample_rows", 2000))
    )

    df = pd.read_csv(args.data)
    numeric = [
        c
        for c in df.select_dtypes(include="number").columns
        if not pd.api.types.is_bool_dtype(df[c])
    ]
    summary = summary_table(df)
    corr = df[numeric].corr() if len(numeric) > 1 else pd.DataFrame()

    print(
        f"{len(df)} rows x {df.shape[1]} columns ({len(numeric)} numeric), "
        f"{int(df.isna().sum().sum())} missing cells"
    )
    print(pd.DataFrame(summary).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if not corr.empty:
        print("\ncorrelations (Pearson):")
        print(corr.round(3).to_string())

    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(summary).to_csv(args.summary, index=False)
    if args.results:
        corr_rows = [
            {"column": c, **{k: clean(v) for k, v in corr.loc[c].items()}} for c in corr.index
        ]
        pairs = []
        for i, a in enumerate(numeric):
            for b in numeric[i + 1 :]:
                r = corr.loc[a, b]
                if math.isfinite(r):
                    pairs.append({"a": a, "b": b, "r": float(r), "abs_r": abs(float(r))})
        pairs.sort(key=lambda p: -p["abs_r"])
        sample = df[numeric].sample(n=min(sample_rows, len(df)), random_state=0).sort_index()
        sample_records = [
            {k: clean(v) for k, v in row.items()} for row in sample.to_dict(orient="records")
        ]
        missing = int(df.isna().sum().sum())
        cells = max(df.size, 1)
        results = {
            "metrics": {
                "rows": len(df),
                "columns": int(df.shape[1]),
                "numeric_columns": len(numeric),
                "missing_cells": int(missing),
                "missing_fraction": missing / cells,
                "duplicate_rows": int(df.duplicated().sum()),
                "max_abs_correlation": max((p["abs_r"] for p in pairs), default=0.0),
            },
            "tables": {
                "summary": summary,
                "correlations": corr_rows,
                "top_correlated_pairs": pairs[:50],
                "sample": sample_records,
            },
            "charts": [
                {"kind": "histogram", "table": "sample", "x": column, "title": f"{column}"}
                for column in numeric[:max_hist]
            ]
            + (
                [
                    {
                        "kind": "bar",
                        "table": "top_correlated_pairs",
                        "x": "a",
                        "y": "r",
                        "color": "b",
                        "title": "Strongest correlations",
                    }
                ]
                if pairs
                else []
            ),
        }
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
