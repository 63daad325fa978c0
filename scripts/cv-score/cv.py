"""k-fold cross-validation of one scikit-learn model on a CSV: how much does the score vary?

    python cv.py --data iris.csv --target species --model logistic --folds 5 --seed 0
    python cv.py --data diabetes.csv --target progression --model ridge

Regression or classification is read from the target: text, or a few integer classes, means
classification (scored by accuracy, folds stratified); otherwise regression (scored by R2).
Prints per-fold scores. With --results PATH it also writes a results.json; optional settings can
come from a JSON file (--params), which is how HQ passes them; flags win over the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODELS = ("linear", "ridge", "lasso", "logistic", "knn", "random_forest", "gradient_boosting")
MAX_CLASSES_AS_INTEGERS = 20


def is_classification(y: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return True
    integral = pd.api.types.is_integer_dtype(y) or bool(np.all(np.mod(y, 1) == 0))
    return integral and y.nunique() <= MAX_CLASSES_AS_INTEGERS


def make_model(name: str, *, classify: bool, seed: int):
    if name in ("linear", "ridge", "lasso") and classify:
        sys.exit(
            f"error: model {name!r} is for regression, but the target looks categorical; "
            "use logistic, knn, random_forest or gradient_boosting"
        )
    if name == "logistic" and not classify:
        sys.exit("error: model 'logistic' is for classification, but the target is continuous")
    if name == "linear":
        return LinearRegression()
    if name == "ridge":
        return Ridge(alpha=1.0)
    if name == "lasso":
        return Lasso(alpha=0.1, max_iter=10_000)
    if name == "logistic":
        return LogisticRegression(max_iter=2_000)
    if name == "knn":
        return KNeighborsClassifier() if classify else KNeighborsRegressor()
    if name == "random_forest":
        cls = RandomForestClassifier if classify else RandomForestRegressor
        return cls(n_estimators=200, random_state=seed, n_jobs=1)
    if name == "gradient_boosting":
        cls = GradientBoostingClassifier if classify else GradientBoostingRegressor
        return cls(random_state=seed)
    sys.exit(f"error: unknown model {name!r}; choose one of {', '.join(MODELS)}")


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    numeric = X.select_dtypes(include="number").columns.tolist()
    categorical = [c for c in X.columns if c not in numeric]
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="CSV file")
    parser.add_argument("--target", help="column to predict")
    parser.add_argument("--model", choices=MODELS, help="default: random_forest")
    parser.add_argument("--folds", type=int, help="number of folds (default 5)")
    parser.add_argument("--seed", type=int, help="shuffling and model seed (default 0)")
    parser.add_argument("--params", type=Path, help="JSON file with target/model/folds/seed")
    parser.add_argument("--results", type=Path, help="write results.json here")
    args = parser.parse_args(argv)

    params = json.loads(args.params.read_text()) if args.params and args.params.exists() else {}
    target = args.target or params.get("target")
    if not target:
        parser.error("--target is required")
    model_name = args.model or params.get("model", "random_forest")
    folds = args.folds if args.folds is not None else int(params.get("folds", 5))
    seed = args.seed if args.seed is not None else int(params.get("seed", 0))
    if folds < 2:
        parser.error("--folds must be at least 2")

    df = pd.read_csv(args.data)
    if target not in df.columns:
        sys.exit(f"error: target column {target!r} is not in the data; columns: {list(df.columns)}")
    df = df.dropna(subset=[target])
    X, y = df.drop(columns=[target]), df[target]
    classify = is_classification(y)
    if classify and y.value_counts().min() < folds:
        sys.exit(
            f"error: the smallest class has {y.value_counts().min()} rows, fewer than {folds} folds"
        )
    if len(df) < folds:
        sys.exit(f"error: {len(df)} rows cannot be split into {folds} folds")

    pipeline = make_pipeline(preprocessor(X), make_model(model_name, classify=classify, seed=seed))
    splitter = (StratifiedKFold if classify else KFold)(
        n_splits=folds, shuffle=True, random_state=seed
    )
    scoring = (
        {"score": "accuracy", "f1_macro": "f1_macro"}
        if classify
        else {"score": "r2", "rmse": "neg_root_mean_squared_error"}
    )
    cv = cross_validate(pipeline, X, y, cv=splitter, scoring=scoring, return_train_score=True)

    rows = []
    for i in range(folds):
        row = {
            "fold": i + 1,
            "score": float(cv["test_score"][i]),
            "train_score": float(cv["train_score"][i]),
            "fit_seconds": float(cv["fit_time"][i]),
        }
        if classify:
            row["f1_macro"] = float(cv["test_f1_macro"][i])
        else:
            row["rmse"] = float(-cv["test_rmse"][i])
        rows.append(row)
    scores = np.array([r["score"] for r in rows])
    metric = "accuracy" if classify else "r2"
    task = "classification" if classify else "regression"

    print(f"{model_name} ({task}, {metric}), {folds}-fold CV, seed {seed}, n={len(df)}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"mean {metric} = {scores.mean():.4f} +/- {scores.std(ddof=1):.4f}")

    if args.results:
        metrics = {
            "mean_score": float(scores.mean()),
            "std_score": float(scores.std(ddof=1)),
            "min_score": float(scores.min()),
            "max_score": float(scores.max()),
            f"mean_{metric}": float(scores.mean()),
            "mean_train_score": float(np.mean(cv["train_score"])),
            "folds": int(folds),
            "n_obs": len(df),
        }
        if classify:
            metrics["mean_f1_macro"] = float(np.mean(cv["test_f1_macro"]))
        else:
            metrics["mean_rmse"] = float(-np.mean(cv["test_rmse"]))
        results = {
            "metrics": metrics,
            "tables": {
                "folds": rows,
                "setup": [
                    {
                        "model": model_name,
                        "task": task,
                        "metric": metric,
                        "folds": folds,
                        "seed": seed,
                        "target": target,
                    }
                ],
            },
            "charts": [
                {
                    "kind": "box",
                    "table": "folds",
                    "y": "score",
                    "title": f"{metric} across {folds} folds",
                },
                {
                    "kind": "bar",
                    "table": "folds",
                    "x": "fold",
                    "y": "score",
                    "title": f"{metric} per fold",
                },
            ],
        }
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
