"""Time the fit of scikit-learn linear models as the number of samples grows.

    python sk_bench.py --estimators ridge lasso --n-samples 1000 10000 --repeat 3 --plot

Like scikit-learn's own benchmarks/ scripts: synthetic data (or a CSV with --data), a few
estimators, each size timed --repeat times; prints a table and writes a JSON report (--output)
with the timings, and the argv it was called with.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ESTIMATORS = ("ridge", "lasso", "elasticnet")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CSV with a header row (synthetic data when absent)")
    parser.add_argument("--target", default="y", help="column to predict in --data")
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=["ridge"])
    parser.add_argument("--n-samples", type=int, nargs="+", default=[1000], help="sizes to time")
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=1.0, help="regularisation (%(default)s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, help="random seed (fresh when absent)")
    parser.add_argument("--plot", action="store_true", help="add a chart of the timings")
    parser.add_argument("--no-warm-start", action="store_false", dest="warm_start")
    parser.add_argument("--fit-intercept", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tag", action="append", help="a label for the report (repeatable)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--output", default="results.json", help="where the JSON report goes")
    return parser.parse_args()


def make_data(
    args: argparse.Namespace, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if args.data:
        import pandas as pd  # only with --data

        frame = pd.read_csv(args.data)
        y = frame.pop(args.target).to_numpy(dtype=float)
        x = frame.select_dtypes("number").to_numpy(dtype=float)
        return x[:n], y[:n]
    x = rng.standard_normal((n, args.n_features))
    coef = rng.standard_normal(args.n_features)
    return x, x @ coef + 0.1 * rng.standard_normal(n)


def make_model(name: str, args: argparse.Namespace):
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    if name == "ridge":
        return Ridge(alpha=args.alpha, fit_intercept=args.fit_intercept)
    cls = Lasso if name == "lasso" else ElasticNet
    return cls(alpha=args.alpha, fit_intercept=args.fit_intercept, warm_start=args.warm_start)


def main() -> None:
    args = parse()
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.n_samples:
        x, y = make_data(args, n, rng)
        for name in args.estimators:
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                make_model(name, args).fit(x, y)
                times.append(time.perf_counter() - started)
            rows.append({"estimator": name, "n_samples": n, "fit_s": float(np.median(times))})
            if args.verbose:
                print(f"{name:12s} n={n:>8d} median fit {rows[-1]['fit_s']:.4f} s")
    report = {
        "metrics": {f"fit_s_{r['estimator']}_{r['n_samples']}": r["fit_s"] for r in rows},
        "tables": {
            "timings": rows,
            "argv": [{"i": i, "arg": a} for i, a in enumerate(sys.argv[1:])],
            "tags": [{"tag": t} for t in args.tag or []],
        },
        "charts": [{"kind": "line", "table": "timings", "x": "n_samples", "y": "fit_s"}]
        if args.plot
        else [],
    }
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(json.dumps(sys.argv[1:]))


if __name__ == "__main__":
    main()
