"""Ordinary least squares (or ridge, with --alpha > 0) on a CSV, with residual diagnostics.

    python fit.py --data diabetes.csv --target progression
    python fit.py --data diabetes.csv --target progression --features bmi,bp,s5 --alpha 0.5

Prints a summary. With --results PATH it also writes a results.json (metrics, tables, charts);
with --residuals PATH a CSV of actual, fitted and residual values per row. Optional settings can
also come from a JSON file (--params), which is how HQ passes them; flags win over the file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

MAX_RESIDUAL_ROWS = 5000


def parse_features(value: object) -> list[str] | None:
    """Features as a list, a JSON list, or comma-separated text; empty means all other columns."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def load_design(df: pd.DataFrame, target: str, features: list[str] | None):
    if target not in df.columns:
        sys.exit(f"error: target column {target!r} is not in the data; columns: {list(df.columns)}")
    features = features or [c for c in df.columns if c != target]
    unknown = [f for f in features if f not in df.columns]
    if unknown:
        sys.exit(
            f"error: feature columns {unknown} are not in the data; columns: {list(df.columns)}"
        )
    if target in features:
        sys.exit(f"error: the target {target!r} cannot also be a feature")
    data = df[[*features, target]].dropna()
    if not pd.api.types.is_numeric_dtype(data[target]):
        sys.exit(f"error: target {target!r} must be numeric, it is {data[target].dtype}")
    X = pd.get_dummies(data[features], drop_first=True, dtype=float)
    y = data[target].astype(float)
    return X, y, len(df) - len(data)


def ols_inference(X: np.ndarray, residuals: np.ndarray) -> tuple[np.ndarray, int]:
    """Standard errors and two-sided p-values of [intercept, coefficients] under OLS."""
    n, k = X.shape
    design = np.column_stack([np.ones(n), X])
    dof = n - k - 1
    sigma2 = float(residuals @ residuals) / dof
    cov = sigma2 * np.linalg.pinv(design.T @ design)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return se, dof


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="CSV file")
    parser.add_argument("--target", help="column to predict")
    parser.add_argument("--features", help="comma-separated feature columns (default: all others)")
    parser.add_argument("--alpha", type=float, help="ridge penalty; 0 (default) is plain OLS")
    parser.add_argument("--params", type=Path, help="JSON file with target/features/alpha")
    parser.add_argument("--results", type=Path, help="write results.json here")
    parser.add_argument("--residuals", type=Path, help="write a residuals CSV here")
    args = parser.parse_args(argv)

    params = json.loads(args.params.read_text()) if args.params and args.params.exists() else {}
    target = args.target or params.get("target")
    if not target:
        parser.error("--target is required")
    features = parse_features(
        args.features if args.features is not None else params.get("features")
    )
    alpha = args.alpha if args.alpha is not None else float(params.get("alpha", 0.0))
    if alpha < 0:
        parser.error("--alpha must be >= 0")

    df = pd.read_csv(args.data)
    X, y, dropped = load_design(df, target, features)
    if len(X) <= X.shape[1] + 1:
        sys.exit(f"error: {len(X)} complete rows is too few for {X.shape[1]} features")

    model = Ridge(alpha=alpha) if alpha > 0 else LinearRegression()
    model.fit(X.values, y.values)
    fitted = model.predict(X.values)
    residuals = y.values - fitted

    r2 = r2_score(y, fitted)
    n, k = X.shape
    adj_r2 = 1 - (1 - r2) * (n - 1) / (n - k - 1)
    rmse = math.sqrt(mean_squared_error(y, fitted))
    mae = mean_absolute_error(y, fitted)

    names = ["(intercept)", *X.columns]
    estimates = np.concatenate([[model.intercept_], model.coef_])
    coef_rows = []
    if alpha == 0:
        se, dof = ols_inference(X.values, residuals)
        t_values = np.divide(estimates, se, out=np.zeros_like(estimates), where=se > 0)
        p_values = 2 * stats.t.sf(np.abs(t_values), dof)
        for name, est, s, t, p in zip(names, estimates, se, t_values, p_values, strict=True):
            coef_rows.append(
                {
                    "term": name,
                    "estimate": float(est),
                    "std_error": float(s),
                    "t_value": float(t),
                    "p_value": float(p),
                }
            )
    else:
        coef_rows = [
            {"term": name, "estimate": float(est)}
            for name, est in zip(names, estimates, strict=True)
        ]

    residual_rows = [
        {"row": int(i), "actual": float(a), "fitted": float(f), "residual": float(r)}
        for i, a, f, r in zip(X.index, y.values, fitted, residuals, strict=True)
    ]

    print(
        f"{'ridge (alpha=' + str(alpha) + ')' if alpha > 0 else 'OLS'} of {target} on {k} terms, "
        f"n={n} ({dropped} rows with missing values dropped)"
    )
    print(f"R2={r2:.4f}  adj. R2={adj_r2:.4f}  RMSE={rmse:.4f}  MAE={mae:.4f}")
    print(pd.DataFrame(coef_rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    if args.residuals:
        args.residuals.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(residual_rows).to_csv(args.residuals, index=False)
    if args.results:
        results = {
            "metrics": {
                "r2": float(r2),
                "adj_r2": float(adj_r2),
                "rmse": float(rmse),
                "mae": float(mae),
                "residual_std": float(np.std(residuals, ddof=1)),
                "n_obs": int(n),
                "n_terms": int(k),
                "rows_dropped": int(dropped),
                "intercept": float(model.intercept_),
            },
            "tables": {
                "coefficients": coef_rows,
                "residuals": residual_rows[:MAX_RESIDUAL_ROWS],
            },
            "charts": [
                {
                    "kind": "scatter",
                    "table": "residuals",
                    "x": "fitted",
                    "y": "residual",
                    "title": "Residuals vs fitted",
                },
                {
                    "kind": "scatter",
                    "table": "residuals",
                    "x": "actual",
                    "y": "fitted",
                    "title": "Predicted vs actual",
                },
                {
                    "kind": "histogram",
                    "table": "residuals",
                    "x": "residual",
                    "title": "Residual distribution",
                },
                {
                    "kind": "bar",
                    "table": "coefficients",
                    "x": "term",
                    "y": "estimate",
                    "title": "Coefficients",
                },
            ],
        }
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
