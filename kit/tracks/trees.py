"""Gradient-boosted trees: scikit-learn's HistGradientBoosting, the networks' partner in a blend.

Per fold: numbers as they are (trees need no scaling; missing values go down their own branch),
every string column as integer codes for HistGradientBoosting's native categorical splits (the
most frequent values up to its bin limit, the rest and unseen ones as missing), and boosting that
stops early on the fold's own validation rows. Regression on a log target for rmsle (and for mape
on a target of 0 or more), on absolute errors for mae, mape and smape. Seconds a fold on the shared
competitions, so `kit auto` runs it first.
"""

from __future__ import annotations

import numpy as np

from kit import metrics
from kit.run import Fold, FoldResult
from kit.targets import class_probabilities

DESCRIPTION = "gradient-boosted trees (scikit-learn's HistGradientBoosting) on kit's folds"

# from CV on the six shared competitions and three synthetic ones (`make bench-defaults ARGS=
# "--track trees ..."`): smaller trees, half the features per split and a slower rate beat the
# earlier defaults (31 leaves, every feature, 0.05) on all nine
DEFAULTS = {
    "learning_rate": 0.03,
    "max_iter": 2000,  # early stopping on the validation fold ends it sooner
    "n_iter_no_change": 50,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "max_features": 0.5,
    "max_bins": 255,
}

LIMITS = {
    "learning_rate": "(0, 1]",
    "max_iter": "[1, 100000]",
    "n_iter_no_change": "[1, 10000]",
    "max_leaf_nodes": "[2, 65536]",
    "min_samples_leaf": "[1, 100000]",
    "l2_regularization": "[0, inf)",
    "max_features": "(0, 1]",
    "max_bins": "[2, 255]",
}

SEARCH_SPACE = {
    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    "max_leaf_nodes": {"low": 7, "high": 255, "log": True},
    "min_samples_leaf": {"low": 2, "high": 200, "log": True},
    "l2_regularization": {"choices": [0.0, 0.01, 0.1, 1.0, 10.0]},
    "max_features": {"low": 0.3, "high": 1.0},
}


def fit_predict_fold(fold: Fold, params: dict) -> FoldResult:
    """Boost on the fold's training rows, stopping on its validation rows; predict both splits."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    metric = metrics.get(fold.metric)
    train = fold.train  # gathered once
    strings = [c for c, r in fold.roles.items() if r in ("categorical", "text")]
    numbers = [c for c, r in fold.roles.items() if r == "numeric"]
    # codes for the native categorical splits, fit on the training rows only
    encoder = (
        OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=params["max_bins"] - 1,  # the rest share one code
        ).fit(train.select(strings).to_numpy())
        if strings
        else None
    )

    def matrix(frame):
        parts = [frame.select(numbers).to_numpy().astype(np.float64)] if numbers else []
        if encoder is not None:
            parts.append(encoder.transform(frame.select(strings).to_numpy()))
        return np.hstack(parts) if parts else np.zeros((frame.height, 0))

    x_train, x_val, x_test = matrix(train), matrix(fold.val), matrix(fold.test)
    del train
    options = dict(
        learning_rate=params["learning_rate"],
        max_iter=params["max_iter"],
        max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"],
        l2_regularization=params["l2_regularization"],
        max_features=params["max_features"],
        max_bins=params["max_bins"],
        categorical_features=list(range(len(numbers), len(numbers) + len(strings))) or None,
        early_stopping=True,
        n_iter_no_change=params["n_iter_no_change"],
        random_state=fold.seed,
    )
    if fold.task == "regression":
        log = metric.trains_in_log(fold.y_train)
        absolute = metric.absolute
        model = HistGradientBoostingRegressor(
            loss="absolute_error" if absolute else "squared_error", **options
        )
        y = np.log1p(np.clip(fold.y_train, 0, None)) if log else fold.y_train
        y_val = np.log1p(np.clip(fold.y_val, 0, None)) if log else fold.y_val
        model.fit(x_train, y, X_val=x_val, y_val=y_val)

        def predict(x):
            out = model.predict(x)
            return np.expm1(out) if log else out
    else:
        model = HistGradientBoostingClassifier(**options)
        # early stopping scores only the validation rows of classes the training rows hold (a
        # rare class can sit wholly in one fold's validation rows, and the scorer refuses a class
        # the model never saw); every validation row is still predicted, that class at 0
        seen = np.isin(fold.y_val, fold.y_train)
        if seen.any():
            model.fit(x_train, fold.y_train, X_val=x_val[seen], y_val=fold.y_val[seen])
        else:
            # no validation row to stop on: scikit-learn's stratified share of the training rows
            # stops it instead, where every class there has the two rows that share needs
            model.set_params(early_stopping=bool(np.unique(fold.y_train, return_counts=True)[1].min() >= 2))
            model.fit(x_train, fold.y_train)
        predict = class_probabilities(model, fold.n_classes)

    return FoldResult(
        val=predict(x_val),
        test=predict(x_test),
        # for the report's permutation importance: raw derived rows in, predictions out
        predict=lambda frame: predict(matrix(frame)),
        history={
            # boosting iterations stand in for epochs; the validation curve is the boosting loss
            "loss": [float(-v) for v in model.train_score_[1:]],
            "val_loss": [float(-v) for v in model.validation_score_[1:]],
            "best_epoch": int(np.argmax(model.validation_score_[1:]))
            if len(model.validation_score_) > 1
            else -1,
        },
    )


def refit_params(params: dict, history: dict) -> tuple[dict, None] | None:
    """A refit on all rows (`kit.run`) boosts as many iterations as the last fold's model had
    (its validation rows are among its training rows, so they would not stop it)."""
    iterations = len(history.get("val_loss") or [])
    return ({**params, "max_iter": iterations}, None) if iterations else None
