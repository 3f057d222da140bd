"""Linear models: scikit-learn's logistic regression and ridge regression, on kit's prep.

A blend partner that errs unlike trees and networks do: on small or noisy competitions (house
prices, a few hundred passengers, a weak signal among many columns) a well-regularised linear
model is often as good as either, and their blend better than both.

Per fold: `kit.prep.Preprocessor` as the baseline fits it (log1p of skewed columns, median
imputation with missing indicators, scaling, one-hot categoricals), the high-cardinality columns
one-hot too (values seen fewer than 10 times share one column). The strength of the L2 penalty is
chosen on the fold's training rows alone: `LogisticRegressionCV` (log loss, stratified inner
folds) or `RidgeCV` (efficient leave-one-out), on at most `cv_rows` of them, then the model is
refit on all of them. Regression on a log target for rmsle (and for mape on a target of 0 or more).
Seconds a fold, so `kit auto` runs it right after the trees.
"""

from __future__ import annotations

import numpy as np

from kit import metrics
from kit.prep import SCALINGS
from kit.run import Fold, FoldResult
from kit.split import sample_rows
from kit.targets import TargetScaler, class_probabilities

DESCRIPTION = "linear models (scikit-learn's logistic and ridge regression) on kit's prep"

DEFAULTS = {
    # robust scaling with smooth clipping from CV on the shared six and the synthetic competitions
    # (mean rank 1.89, against 2.00 for standard and 2.89 for quantile): outliers pull a line less
    "scaling": "robust",
    "log_skew": 1.0,  # log1p of non-negative numeric columns skewed beyond this (0: off)
    "strengths": 13,  # penalties tried, log-spaced over 1e-4 to 1e4
    "inner_folds": 5,  # for the logistic regression's choice (ridge uses leave-one-out)
    "cv_rows": 25_000,  # the penalty is chosen on a sample of a bigger training fold
    "max_iter": 100,  # scikit-learn's; 1000 gave the same CV on all nine of `make bench-defaults`
}

LIMITS = {
    "scaling": SCALINGS,
    "log_skew": "[0, inf)",
    "strengths": "[1, 100]",
    "inner_folds": "[2, 20]",
    "cv_rows": "[100, inf)",
    "max_iter": "[10, 100000]",
}

SEARCH_SPACE = {
    "scaling": {"choices": list(SCALINGS)},
    "log_skew": {"choices": [0.0, 1.0, 2.0]},
}


def fit_predict_fold(fold: Fold, params: dict) -> FoldResult:
    """Choose the penalty on the fold's training rows, refit on them, predict both splits."""
    import warnings

    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge, RidgeCV
    from sklearn.preprocessing import OneHotEncoder

    from kit.prep import Preprocessor

    metric = metrics.get(fold.metric)
    train_frame, train_rows = fold.rows_of("train")  # no copy of the fold: its rows, a chunk at a time
    prep = Preprocessor(fold.roles, scaling=params["scaling"], log_skew=params["log_skew"]).fit(
        train_frame, rows=train_rows, seed=fold.seed
    )
    train_inputs = prep.transform(train_frame, rows=train_rows)
    # the text columns' codes (0: unseen or missing) one-hot; a code the fit never saw is all zeros
    onehot = (
        OneHotEncoder(handle_unknown="ignore", dtype=np.float64).fit(train_inputs["codes"])
        if train_inputs["codes"].shape[1]
        else None
    )

    def design(inputs):
        numbers = inputs["numbers"].astype(np.float64)
        if onehot is None:
            return numbers
        return sparse.hstack([sparse.csr_matrix(numbers), onehot.transform(inputs["codes"])], "csr")

    x_train = design(train_inputs)
    x_val, x_test = (design(prep.transform(f, rows=r)) for f, r in (fold.rows_of("val"), (fold.test, None)))
    rows = sample_rows(len(fold.y_train), params["cv_rows"], seed=fold.seed)
    sampled = rows is not None  # then the chosen penalty is refit on every row
    rows = slice(None) if rows is None else rows
    strengths = np.logspace(-4, 4, params["strengths"])
    with warnings.catch_warnings():
        # the penalty's extremes converge slowly; max_iter bounds their cost (the same CV at 1000)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # a class rarer than the inner folds: kit.preflight has said so in a note already
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        if fold.task == "regression":
            scaler = TargetScaler().fit(fold.y_train, log=metric.trains_in_log(fold.y_train))
            y = scaler.transform(fold.y_train).astype(np.float64)
            lowest, highest = float(y.min()), float(y.max())
            model = RidgeCV(alphas=strengths).fit(x_train[rows], y[rows])
            chosen = float(model.alpha_)
            if sampled:
                model = Ridge(alpha=chosen).fit(x_train, y)

            def predict(x):
                # within the training targets' range: a line extrapolates without bound (a time
                # trend past the last training date, on a log target, reached 1e9 bikes an hour)
                return scaler.inverse_transform(np.clip(model.predict(x), lowest, highest))
        else:
            search = LogisticRegressionCV(
                Cs=1 / strengths,
                l1_ratios=(0.0,),
                cv=min(params["inner_folds"], _smallest_class(fold.y_train[rows])),
                scoring="neg_log_loss",
                max_iter=params["max_iter"],
                use_legacy_attributes=False,
            ).fit(x_train[rows], fold.y_train[rows])
            model = search
            chosen = float(search.C_)
            if sampled:
                model = LogisticRegression(C=chosen, max_iter=params["max_iter"]).fit(x_train, fold.y_train)
            predict = class_probabilities(model, fold.n_classes)

    return FoldResult(
        val=predict(x_val),
        test=predict(x_test),
        # for the report's permutation importance: raw derived rows in, predictions out
        predict=lambda frame: predict(design(prep.transform(frame))),
        history={"runtime": {"model": type(model).__name__, "penalty": "alpha" if fold.task == "regression" else "C",
                             "strength": float(chosen), "columns": int(x_train.shape[1])}},
    )  # fmt: skip


def _smallest_class(y: np.ndarray) -> int:
    """Rows of the rarest class: stratified inner folds need at least one of each per fold."""
    return max(2, int(np.unique(y, return_counts=True)[1].min()))


def refit_params(params: dict, history: dict) -> tuple[dict, None]:
    """A refit on all rows (`kit.run`): the same model, nothing learned from the fold to carry."""
    return params, None
