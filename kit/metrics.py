"""Competition metrics: what each scores, which way is better, and the post-processing it needs.

Predictions travel through kit in one form: for classification an (n, n_classes) array of
probabilities, for regression an (n,) array in the target's own units. Each metric turns that
into what it scores (labels by argmax, rounded ratings for qwk, clipped values for rmsle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from kit.errors import InputError

CLASSIFICATION = ("binary", "multiclass")
EPS = 1e-7


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "maximize" or "minimize"
    tasks: tuple[str, ...]
    fn: Callable[[np.ndarray, np.ndarray], float]
    # rmsle is rmse on log1p(target): train on that scale and the loss matches the metric
    log_target: bool = False
    # mape is relative error: a target of 0 or more trains on log1p, where absolute error is
    # close to relative error, and predictions come back through expm1
    log_fit: bool = False
    # roc_auc is undefined (NaN) on a validation fold that lacks a class
    needs_every_class: bool = False

    def __call__(self, y_true, pred) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(pred)))

    def trains_in_log(self, y: np.ndarray) -> bool:
        """Whether a regression target `y` is learned as log1p(y): always for rmsle, and for
        mape when no value is negative."""
        return self.log_target or (self.log_fit and len(y) > 0 and float(np.nanmin(y)) >= 0)

    def better(self, a: float, b: float) -> bool:
        """Whether score `a` beats score `b`."""
        return a > b if self.direction == "maximize" else a < b


def labels(pred: np.ndarray) -> np.ndarray:
    """Class indices from an (n, n_classes) probability array."""
    return np.asarray(pred).argmax(axis=1)


def _roc_auc(y, p):
    if p.shape[1] == 2:
        return skm.roc_auc_score(y, p[:, 1])
    return skm.roc_auc_score(y, p, multi_class="ovr", labels=np.arange(p.shape[1]))


def _log_loss(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return skm.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=np.arange(p.shape[1]))


def _f1(average):
    return lambda y, p: skm.f1_score(y, labels(p), average=average)


def round_ratings(pred: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    """Round regression outputs to the integer ratings seen in training (for qwk)."""
    return np.clip(np.rint(pred), np.min(y_train), np.max(y_train)).astype(int)


def _qwk(y, p):
    pred = labels(p) if p.ndim == 2 else round_ratings(p, y)
    return skm.cohen_kappa_score(np.asarray(y).astype(int), pred, weights="quadratic")


REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "maximize", CLASSIFICATION, lambda y, p: skm.accuracy_score(y, labels(p))),
        Metric("roc_auc", "maximize", CLASSIFICATION, _roc_auc, needs_every_class=True),
        Metric("log_loss", "minimize", CLASSIFICATION, _log_loss),
        Metric("f1", "maximize", ("binary",), _f1("binary")),
        Metric("f1_micro", "maximize", CLASSIFICATION, _f1("micro")),
        Metric("f1_macro", "maximize", CLASSIFICATION, _f1("macro")),
        Metric("qwk", "maximize", ("multiclass", "regression"), _qwk),
        Metric("rmse", "minimize", ("regression",), skm.root_mean_squared_error),
        Metric(
            "rmsle",
            "minimize",
            ("regression",),
            lambda y, p: skm.root_mean_squared_log_error(y, np.clip(p, 0, None)),
            log_target=True,
        ),
        Metric("mae", "minimize", ("regression",), skm.mean_absolute_error),
        Metric("mape", "minimize", ("regression",), skm.mean_absolute_percentage_error, log_fit=True),
        Metric("r2", "maximize", ("regression",), skm.r2_score),
    )
}


def get(name: str) -> Metric:
    if name not in REGISTRY:
        raise InputError(
            f"Unknown metric '{name}'. Pass --metric with one of: {', '.join(REGISTRY)}. "
            f"Received: metric={name}"
        )
    return REGISTRY[name]


def check(name: str, task: str) -> Metric:
    """Return the metric, or raise `InputError` if it cannot score this task."""
    metric = get(name)
    if task not in metric.tasks:
        raise InputError(
            f"Metric '{name}' does not apply to a {task} task. Pass --metric with one of: "
            f"{', '.join(m.name for m in REGISTRY.values() if task in m.tasks)}. Received: metric={name}"
        )
    return metric


def default_for(task: str, submission_kind: str) -> str:
    """The metric a competition of this shape most likely uses."""
    if task == "regression":
        return "rmse"
    if submission_kind == "proba":
        return "roc_auc"
    if submission_kind == "proba_columns":
        return "log_loss"
    return "accuracy"
