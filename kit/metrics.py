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
    # scored on absolute errors (mae, and mape and smape on the log1p scale): models train on them
    absolute: bool = False
    # roc_auc is undefined (NaN) on a validation fold that lacks a class
    needs_every_class: bool = False
    # scores labels (most probable class), not probabilities: label smoothing helps its networks,
    # and a binary task's labels may come from a cut other than 0.5 (see `decision_threshold`)
    labels: bool = False
    # the same score from a binary task's confusion counts (arrays: one entry per cut), for the
    # search over cuts, which would call the metric hundreds of times
    counts: Callable | None = None

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


def floor_probabilities(p: np.ndarray) -> np.ndarray:
    """Class probabilities no lower than EPS, rows summing to 1 again: what kit scores and writes
    under log_loss, where a probability of 0 for the true class costs Kaggle's clip (about 34.5 for a row)."""
    p = np.clip(p, EPS, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _log_loss(y, p):
    return skm.log_loss(y, floor_probabilities(p), labels=np.arange(p.shape[1]))


def _average_precision(y, p):
    return skm.average_precision_score(y, p[:, 1])


def _gini(y, p):
    # Kaggle's normalized Gini (Porto Seguro): 2 AUC - 1
    return 2.0 * _roc_auc(y, p) - 1.0


def _smape(y, p):
    # Kaggle's SMAPE, in percent: 0 where the target and the prediction are both 0
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    scale = np.abs(y) + np.abs(p)
    return float(
        100.0 * np.mean(np.divide(2.0 * np.abs(p - y), scale, out=np.zeros_like(scale), where=scale > 0))
    )


def _on_labels(score):
    return lambda y, p: score(y, labels(p))


def _f1(average):
    return lambda y, p: skm.f1_score(y, labels(p), average=average)


def round_ratings(pred: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    """Round regression outputs to the integer ratings seen in training (for qwk)."""
    return np.clip(np.rint(pred), np.min(y_train), np.max(y_train)).astype(int)


def _qwk(y, p):
    pred = labels(p) if p.ndim == 2 else round_ratings(p, y)
    return skm.cohen_kappa_score(np.asarray(y).astype(int), pred, weights="quadratic")


def _ratio(a, b):
    # scikit-learn's zero_division: 0 where nothing is counted
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def _accuracy_counts(tp, fp, fn, tn):
    return (tp + tn) / (tp + fp + fn + tn)


def _f1_counts(tp, fp, fn, tn):
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _f1_macro_counts(tp, fp, fn, tn):
    return (_f1_counts(tp, fp, fn, tn) + _f1_counts(tn, fn, fp, tp)) / 2


def _f1_weighted_counts(tp, fp, fn, tn):
    return ((tp + fn) * _f1_counts(tp, fp, fn, tn) + (tn + fp) * _f1_counts(tn, fn, fp, tp)) / (
        tp + fp + fn + tn
    )


def _mcc_counts(tp, fp, fn, tn):
    return _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def _balanced_accuracy_counts(tp, fp, fn, tn):
    return (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2


def _map_at(k: int) -> Callable:
    """Mean average precision at k for one true class a row (Kaggle's MAP@k): 1/rank of the true
    class among the k most probable, 0 when it is not among them."""

    def score(y, proba):
        top = np.argsort(-np.asarray(proba), axis=1, kind="stable")[:, :k]
        hits = top == np.asarray(y).reshape(-1, 1)
        return float((hits / np.arange(1, top.shape[1] + 1)).sum(axis=1).mean())

    return score


# the k of MAP@k a sample of ranked classes may ask for
MAP_KS = tuple(range(1, 11))

REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "accuracy",
            "maximize",
            CLASSIFICATION,
            _on_labels(skm.accuracy_score),
            labels=True,
            counts=_accuracy_counts,
        ),
        Metric("roc_auc", "maximize", CLASSIFICATION, _roc_auc, needs_every_class=True),
        Metric("log_loss", "minimize", CLASSIFICATION, _log_loss),
        Metric("average_precision", "maximize", ("binary",), _average_precision, needs_every_class=True),
        Metric("gini", "maximize", ("binary",), _gini, needs_every_class=True),
        Metric("f1", "maximize", ("binary",), _f1("binary"), labels=True, counts=_f1_counts),
        Metric("f1_micro", "maximize", CLASSIFICATION, _f1("micro"), labels=True, counts=_accuracy_counts),
        Metric("f1_macro", "maximize", CLASSIFICATION, _f1("macro"), labels=True, counts=_f1_macro_counts),
        Metric(
            "f1_weighted",
            "maximize",
            CLASSIFICATION,
            _f1("weighted"),
            labels=True,
            counts=_f1_weighted_counts,
        ),
        Metric(
            "mcc",
            "maximize",
            CLASSIFICATION,
            _on_labels(skm.matthews_corrcoef),
            labels=True,
            counts=_mcc_counts,
        ),
        Metric(
            "balanced_accuracy",
            "maximize",
            CLASSIFICATION,
            _on_labels(skm.balanced_accuracy_score),
            labels=True,
            counts=_balanced_accuracy_counts,
        ),
        Metric("qwk", "maximize", ("multiclass", "regression"), _qwk, labels=True),
        Metric("rmse", "minimize", ("regression",), skm.root_mean_squared_error),
        Metric("mse", "minimize", ("regression",), skm.mean_squared_error),
        Metric(
            "rmsle",
            "minimize",
            ("regression",),
            lambda y, p: skm.root_mean_squared_log_error(y, np.clip(p, 0, None)),
            log_target=True,
        ),
        Metric("mae", "minimize", ("regression",), skm.mean_absolute_error, absolute=True),
        Metric(
            "mape",
            "minimize",
            ("regression",),
            skm.mean_absolute_percentage_error,
            log_fit=True,
            absolute=True,
        ),
        Metric("smape", "minimize", ("regression",), _smape, log_fit=True, absolute=True),
        Metric("r2", "maximize", ("regression",), skm.r2_score),
        *(Metric(f"map@{k}", "maximize", ("multiclass",), _map_at(k)) for k in MAP_KS),
    )
}

# the names users also pass for them: scikit-learn's functions and scorers, AutoGluon's, Kaggle's
# pages (compared lowercased, with spaces and dashes as underscores)
ALIASES = {
    "auc": "roc_auc", "auroc": "roc_auc", "roc_auc_score": "roc_auc", "logloss": "log_loss", "neg_log_loss": "log_loss",
    "multi_logloss": "log_loss", "binary_logloss": "log_loss", "f1_score": "f1", "macro_f1": "f1_macro",
    "micro_f1": "f1_micro", "weighted_f1": "f1_weighted", "accuracy_score": "accuracy", "acc": "accuracy",
    "matthews_corrcoef": "mcc", "balanced_accuracy_score": "balanced_accuracy",
    "quadratic_kappa": "qwk", "quadratic_weighted_kappa": "qwk", "root_mean_squared_error": "rmse",
    "neg_root_mean_squared_error": "rmse", "root_mean_squared_log_error": "rmsle",
    "neg_root_mean_squared_log_error": "rmsle", "mean_absolute_error": "mae",
    "neg_mean_absolute_error": "mae", "mean_absolute_percentage_error": "mape",
    "neg_mean_absolute_percentage_error": "mape", "r2_score": "r2", "mean_squared_error": "mse",
    "neg_mean_squared_error": "mse", "symmetric_mean_absolute_percentage_error": "smape",
    "average_precision_score": "average_precision", "pr_auc": "average_precision", "auprc": "average_precision",
    "normalized_gini": "gini", "gini_coefficient": "gini",
    **{alias.format(k): f"map@{k}" for k in MAP_KS for alias in ("map{}", "map_{}", "map_at_{}", "mapk@{}")},
}  # fmt: skip


def canonical(name: str) -> str:
    """kit's name for a metric a user spelled their way ("AUC", "RMSLE", "root_mean_squared_error");
    an unknown name comes back as it is, for `get` to refuse."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in REGISTRY else name


def get(name: str) -> Metric:
    name = canonical(name)
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


def default_for(task: str, submission_kind: str, k: int = 0) -> str:
    """The metric a competition of this shape most likely uses (`k`: the classes a row of a
    "ranked" submission names)."""
    if task == "regression":
        return "rmse"
    if submission_kind == "ranked":
        return f"map@{min(max(k, 1), MAP_KS[-1])}"
    if submission_kind == "proba":
        return "roc_auc"
    if submission_kind == "proba_columns":
        return "log_loss"
    return "accuracy"


# candidate cuts: 0.5 and these quantiles of P(class 1)
THRESHOLD_QUANTILES = np.linspace(0.01, 0.99, 99)


def tunes_threshold(metric: Metric, task: str, submission_kind: str) -> bool:
    """Whether a run picks its decision threshold: a binary task whose submission and metric are
    labels (accuracy, f1, mcc, ...), where 0.5 is seldom the best cut for an imbalanced target."""
    return task == "binary" and submission_kind == "label" and metric.counts is not None


def at_threshold(proba: np.ndarray, cut: float | None) -> np.ndarray:
    """Binary probabilities moved, monotonically, so that the most probable class is class 1 exactly
    where P(class 1) > `cut`: a cut maps to 0.5, each side is stretched linearly. None: unchanged."""
    if cut is None:
        return proba
    p = np.asarray(proba, dtype=np.float64)[:, 1]
    moved = np.where(p > cut, 0.5 + 0.5 * (p - cut) / (1 - cut), 0.5 * p / cut)
    return np.stack([1 - moved, moved], axis=1)


def threshold_scores(metric: Metric, y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, scores): the metric of the labels "class 1 where P(class 1) > cut" at each candidate
    cut, from the confusion counts (one sort of the rows, whatever the number of cuts)."""
    p = np.asarray(proba, dtype=np.float64)[:, 1]
    y = np.asarray(y)
    cuts = np.unique(np.append(np.quantile(p, THRESHOLD_QUANTILES), 0.5))
    cuts = cuts[(cuts > 0) & (cuts < 1)]
    positives, negatives = np.sort(p[y == 1]), np.sort(p[y == 0])
    fn = np.searchsorted(positives, cuts, side="right").astype(np.float64)  # at or below: class 0
    tn = np.searchsorted(negatives, cuts, side="right").astype(np.float64)
    return cuts, metric.counts(len(positives) - fn, len(negatives) - tn, fn, tn)


def _best(metric: Metric, scores: np.ndarray) -> float:
    return float(scores.max() if metric.direction == "maximize" else scores.min())


def best_threshold(metric: Metric, y: np.ndarray, proba: np.ndarray) -> float:
    """The cut on P(class 1) whose labels `metric` scores best on these rows (ties: nearest 0.5)."""
    cuts, scores = threshold_scores(metric, y, proba)
    ties = cuts[scores == _best(metric, scores)]
    return float(ties[np.argmin(np.abs(ties - 0.5))])


def best_cut_is_half(metric: Metric) -> bool:
    """Accuracy (and binary micro f1, the same number): for calibrated probabilities its best cut is
    0.5 itself, so a cut chosen elsewhere only corrects a model's calibration; f1, mcc and balanced
    accuracy have their best cut below 0.5 for a rare class however well calibrated the model."""
    return metric.counts is _accuracy_counts


def at_best_threshold(metric: Metric, y: np.ndarray, proba: np.ndarray) -> float:
    """The metric at the best cut for these rows: what a blend of a binary run's probabilities is
    worth once its own cut is chosen (`kit.ensemble` climbs on it)."""
    return _best(metric, threshold_scores(metric, y, proba)[1])


def decision_threshold(
    metric: Metric, y: np.ndarray, proba: np.ndarray, fold_of: np.ndarray, *, cuts: list | None = None
) -> tuple[float | None, np.ndarray]:
    """The cut for a binary run's labels, chosen on its out-of-fold predictions, and those
    predictions as the cut decides them (`at_threshold`), for its CV score.

    The score is honest: each fold's rows are decided by the cut chosen on the other folds' rows.
    The cut is kept only where that cross-fitted score beats 0.5's; then the cut chosen on every
    row is the one the test predictions get. With one validation fold there is nothing to check it
    on: (None, proba). `cuts`, a list, gets each fold's cut (in the order of the folds' numbers)
    where the cross-fitted labels are kept, so that the CV can be recomputed from the OOF file.
    """
    folds = np.unique(fold_of)
    if len(folds) < 2:
        return None, proba
    decided = np.empty_like(np.asarray(proba, dtype=np.float64))
    chosen = []
    for k in folds:
        inside = fold_of == k
        chosen.append(best_threshold(metric, y[~inside], proba[~inside]))
        decided[inside] = at_threshold(proba[inside], chosen[-1])
    if not metric.better(metric(y, decided), metric(y, proba)):
        return None, proba
    if cuts is not None:
        cuts.extend(float(c) for c in chosen)
    return best_threshold(metric, y, proba), decided
