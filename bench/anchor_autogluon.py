"""Reference: AutoGluon-Tabular, the tool a team would otherwise reach for, as its users run it.

Runs in its own virtual environment (`.venv-anchors`, made by `make bench-anchors`; never a
dependency of kit): `TabularPredictor(label, eval_metric).fit(train, presets, time_limit)`, then
the test file's predictions in the sample file's form. AutoGluon has no rmsle metric, so for rmsle
it learns log1p(target) under rmse and predictions come back through expm1, as its users do.

    .venv-anchors/bin/python bench/anchor_autogluon.py path/to/competition --target Survived --id PassengerId \
        --task binary --metric accuracy --kind label --out submission.csv --presets medium_quality --time-limit 60
"""

from __future__ import annotations

import tempfile

import numpy as np
import polars as pl
from recipe_io import parser, read_competition, write_submission

# kit's metric names -> AutoGluon's
METRICS = {
    "accuracy": "accuracy", "roc_auc": "roc_auc", "log_loss": "log_loss", "f1": "f1", "f1_macro": "f1_macro",
    "f1_micro": "f1_micro", "f1_weighted": "f1_weighted", "mcc": "mcc", "balanced_accuracy": "balanced_accuracy",
    "qwk": "quadratic_kappa", "rmse": "root_mean_squared_error",
    "rmsle": "root_mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
    "r2": "r2",
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--presets", default="medium_quality")
    p.add_argument("--time-limit", type=float, default=60)
    args = p.parse_args(argv)
    from autogluon.tabular import TabularPredictor

    x_train, y, x_test, ids, sample = read_competition(args.data, target=args.target, id=args.id)
    label = "__target__"
    if args.task == "regression":
        y = y.cast(pl.Float64)
        if args.metric == "rmsle":
            y = y.clip(0, None).log1p()
    train = x_train.with_columns(y.alias(label)).to_pandas()
    problem = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[args.task]
    with tempfile.TemporaryDirectory(prefix="autogluon-") as path:
        predictor = TabularPredictor(
            label=label, eval_metric=METRICS[args.metric], problem_type=problem, path=path, verbosity=0
        )
        predictor.fit(train, presets=args.presets, time_limit=args.time_limit)
        test = x_test.to_pandas()
        if args.task == "regression":
            pred, classes = predictor.predict(test).to_numpy(dtype=np.float64), None
            if args.metric == "rmsle":
                pred = np.expm1(np.clip(pred, 0, None))
        else:
            proba = predictor.predict_proba(test)
            classes = [str(c) for c in proba.columns]
            pred = proba.to_numpy(dtype=np.float64)
    write_submission(
        args.out,
        sample=sample,
        id=args.id,
        ids=ids,
        target=args.target,
        kind=args.kind,
        classes=classes,
        pred=pred,
    )


if __name__ == "__main__":
    main()
