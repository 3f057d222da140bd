"""A team's own track: scikit-learn's linear models on kit's prep, in one file.

Copy this file and change `fit_predict_fold` to try any model; kit does the rest (folds, scores,
the validated submission, the run folder, the leaderboard, tuning):

    kit run pipelines/my_track.py path/to/competition --folds 5
    kit tune path/to/competition --track pipelines/my_track.py --trials 20
    kit validate submissions/<competition>/<run-id>/submission.csv path/to/competition

A track file defines DEFAULTS and fit_predict_fold, and may define SEARCH_SPACE and LIMITS
(see `kit.tracks`). A competition's TOML sets its parameters in a [my_track] table.
`fit_predict_fold` returns (validation predictions, test predictions), or a `kit.run.FoldResult`
with more: here the fold's predict function, from which the run's report.html measures each
column's permutation importance.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from kit.prep import Preprocessor
from kit.run import FoldResult
from kit.targets import class_probabilities

DESCRIPTION = "linear models (logistic regression, ridge) on kit's prep"
DEFAULTS = {"C": 1.0, "scaling": "standard"}
LIMITS = {"C": "(0, inf)"}
SEARCH_SPACE = {
    "C": {"low": 1e-3, "high": 1e2, "log": True},
    "scaling": {"choices": ["standard", "quantile"]},
}


def fit_predict_fold(fold, params):
    """Train on the fold's training rows; return (validation predictions, test predictions)."""
    # stats from the training fold only; the validation fold would leak
    prep = Preprocessor(fold.roles, scaling=params["scaling"]).fit(fold.train)
    x_train, x_val, x_test = (
        _matrix(prep.transform(f), prep.cardinalities_) for f in (fold.train, fold.val, fold.test)
    )
    if fold.task == "regression":
        model = Ridge(alpha=1.0 / params["C"]).fit(x_train, fold.y_train)
        predict = model.predict
    else:
        model = LogisticRegression(C=params["C"], max_iter=2000).fit(x_train, fold.y_train)
        predict = class_probabilities(model, fold.n_classes)  # kit's class order

    return FoldResult(
        predict(x_val),
        predict(x_test),
        # rows as fold.val holds them -> predictions: the report's permutation importance uses it
        predict=lambda frame: predict(_matrix(prep.transform(frame), prep.cardinalities_)),
    )


def _matrix(inputs: dict, cardinalities: list[int]) -> np.ndarray:
    # high-cardinality text codes enter as numbers in [0, 1]: a linear model has no embeddings
    codes = inputs["codes"].astype(np.float32) / np.maximum(np.asarray(cardinalities, np.float32), 1)
    return np.hstack([inputs["numbers"], codes])
