"""Metrics agree with scikit-learn, know their direction, and post-process predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from kit import metrics
from kit.errors import InputError

Y_BIN = np.array([0, 1, 1, 0, 1, 0, 1, 1])
P_BIN = np.array([0.2, 0.7, 0.4, 0.1, 0.9, 0.6, 0.8, 0.55])
PROBA_BIN = np.stack([1 - P_BIN, P_BIN], axis=1)

Y_MULTI = np.array([0, 1, 2, 2, 1, 0, 2, 1, 0])
PROBA_MULTI = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.6],
        [0.1, 0.5, 0.4],
        [0.3, 0.4, 0.3],
        [0.5, 0.4, 0.1],
        [0.1, 0.1, 0.8],
        [0.6, 0.3, 0.1],
        [0.4, 0.3, 0.3],
    ]
)

Y_REG = np.array([3.0, 10.0, 0.5, 7.0, 22.0, 1.0])
P_REG = np.array([2.5, 12.0, 0.7, 6.0, 18.0, 1.5])


@pytest.mark.parametrize(
    ("name", "y", "pred", "expected"),
    [
        ("accuracy", Y_BIN, PROBA_BIN, skm.accuracy_score(Y_BIN, P_BIN > 0.5)),
        ("accuracy", Y_MULTI, PROBA_MULTI, skm.accuracy_score(Y_MULTI, PROBA_MULTI.argmax(1))),
        ("roc_auc", Y_BIN, PROBA_BIN, skm.roc_auc_score(Y_BIN, P_BIN)),
        ("roc_auc", Y_MULTI, PROBA_MULTI, skm.roc_auc_score(Y_MULTI, PROBA_MULTI, multi_class="ovr")),
        ("log_loss", Y_BIN, PROBA_BIN, skm.log_loss(Y_BIN, P_BIN)),
        ("log_loss", Y_MULTI, PROBA_MULTI, skm.log_loss(Y_MULTI, PROBA_MULTI)),
        ("f1", Y_BIN, PROBA_BIN, skm.f1_score(Y_BIN, P_BIN > 0.5)),
        ("f1_micro", Y_MULTI, PROBA_MULTI, skm.f1_score(Y_MULTI, PROBA_MULTI.argmax(1), average="micro")),
        ("f1_macro", Y_MULTI, PROBA_MULTI, skm.f1_score(Y_MULTI, PROBA_MULTI.argmax(1), average="macro")),
        (
            "qwk",
            Y_MULTI,
            PROBA_MULTI,
            skm.cohen_kappa_score(Y_MULTI, PROBA_MULTI.argmax(1), weights="quadratic"),
        ),
        ("rmse", Y_REG, P_REG, np.sqrt(skm.mean_squared_error(Y_REG, P_REG))),
        ("rmsle", Y_REG, P_REG, np.sqrt(skm.mean_squared_log_error(Y_REG, P_REG))),
        ("mae", Y_REG, P_REG, skm.mean_absolute_error(Y_REG, P_REG)),
        ("mape", Y_REG, P_REG, skm.mean_absolute_percentage_error(Y_REG, P_REG)),
        ("r2", Y_REG, P_REG, skm.r2_score(Y_REG, P_REG)),
        ("mse", Y_REG, P_REG, skm.mean_squared_error(Y_REG, P_REG)),
        # Kaggle's SMAPE, in percent
        ("smape", Y_REG, P_REG, 100 * np.mean(2 * np.abs(P_REG - Y_REG) / (np.abs(Y_REG) + np.abs(P_REG)))),
        ("smape", np.array([0.0, 2.0]), np.array([0.0, 2.0]), 0.0),
        ("average_precision", Y_BIN, PROBA_BIN, skm.average_precision_score(Y_BIN, P_BIN)),
        ("gini", Y_BIN, PROBA_BIN, 2 * skm.roc_auc_score(Y_BIN, P_BIN) - 1),
        ("mcc", Y_BIN, PROBA_BIN, skm.matthews_corrcoef(Y_BIN, P_BIN > 0.5)),
        ("mcc", Y_MULTI, PROBA_MULTI, skm.matthews_corrcoef(Y_MULTI, PROBA_MULTI.argmax(1))),
        ("balanced_accuracy", Y_BIN, PROBA_BIN, skm.balanced_accuracy_score(Y_BIN, P_BIN > 0.5)),
        (
            "f1_weighted",
            Y_MULTI,
            PROBA_MULTI,
            skm.f1_score(Y_MULTI, PROBA_MULTI.argmax(1), average="weighted"),
        ),
    ],
)
def test_metric_agrees_with_scikit_learn(name, y, pred, expected):
    assert metrics.get(name)(y, pred) == pytest.approx(expected, rel=1e-9)


DIRECTIONS = {
    "accuracy": "maximize",
    "roc_auc": "maximize",
    "log_loss": "minimize",
    "f1": "maximize",
    "f1_micro": "maximize",
    "f1_macro": "maximize",
    "qwk": "maximize",
    "rmse": "minimize",
    "rmsle": "minimize",
    "mae": "minimize",
    "mape": "minimize",
    "r2": "maximize",
    "mse": "minimize",
    "smape": "minimize",
    "average_precision": "maximize",
    "gini": "maximize",
    "mcc": "maximize",
    "balanced_accuracy": "maximize",
    "f1_weighted": "maximize",
    **{f"map@{k}": "maximize" for k in range(1, 11)},
}


def test_every_metric_of_the_issue_is_registered_with_its_direction():
    assert {name: metrics.get(name).direction for name in DIRECTIONS} == DIRECTIONS
    assert set(metrics.REGISTRY) == set(DIRECTIONS)


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_a_perfect_prediction_is_better_than_a_poor_one(name):
    metric = metrics.get(name)
    if "regression" in metric.tasks and name != "qwk":
        y = Y_REG
        perfect, poor = Y_REG, Y_REG[::-1]
    else:
        y = Y_BIN
        perfect, poor = np.eye(2)[Y_BIN] * 0.9 + 0.05, np.eye(2)[1 - Y_BIN] * 0.9 + 0.05
    assert metric.better(metric(y, perfect), metric(y, poor))
    assert not metric.better(metric(y, poor), metric(y, perfect))


def test_labels_come_from_the_most_probable_class():
    np.testing.assert_array_equal(metrics.labels(PROBA_MULTI), PROBA_MULTI.argmax(axis=1))
    # accuracy scores labels, not probabilities: a confident and a barely-right prediction score alike
    sure, barely = np.array([[0.01, 0.99]]), np.array([[0.49, 0.51]])
    assert metrics.get("accuracy")([1], sure) == metrics.get("accuracy")([1], barely) == 1.0


def test_qwk_rounds_regression_outputs_to_the_ratings():
    y = np.array([1, 2, 3, 4, 5, 3])
    pred = np.array([1.2, 2.4, 2.6, 4.49, 7.3, -1.0])
    rounded = metrics.round_ratings(pred, y)
    np.testing.assert_array_equal(rounded, [1, 2, 3, 4, 5, 1])  # rounded, then clipped to 1..5
    expected = skm.cohen_kappa_score(y, rounded, weights="quadratic")
    assert metrics.get("qwk")(y, pred) == pytest.approx(expected)


def test_rmsle_clips_negative_predictions():
    y = np.array([0.0, 1.0, 5.0])
    pred = np.array([-3.0, 1.0, 5.0])
    assert np.isfinite(metrics.get("rmsle")(y, pred))
    assert metrics.get("rmsle")(y, pred) == pytest.approx(0.0)
    assert metrics.get("rmsle").log_target and not metrics.get("rmse").log_target


def test_log_loss_clips_certain_mistakes():
    score = metrics.get("log_loss")(np.array([0, 1]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert np.isfinite(score) and score > 10


def test_log_loss_scores_classes_missing_from_the_fold():
    # a validation fold without class 2 is still scored over all three probability columns
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    assert metrics.get("log_loss")(y, proba) == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))


def test_better_follows_the_direction():
    assert metrics.get("accuracy").better(0.9, 0.8)
    assert not metrics.get("accuracy").better(0.8, 0.9)
    assert metrics.get("rmse").better(0.8, 0.9)
    assert not metrics.get("rmse").better(0.9, 0.8)


def test_unknown_metric_is_rejected():
    with pytest.raises(InputError, match="Unknown metric 'aucc'.*--metric.*roc_auc.*Received: metric=aucc"):
        metrics.get("aucc")


@pytest.mark.parametrize(
    ("spelled", "name"),
    [
        ("AUC", "roc_auc"),
        ("RMSLE", "rmsle"),
        ("root_mean_squared_error", "rmse"),
        ("neg_mean_absolute_error", "mae"),
        ("Macro F1", "f1_macro"),
        ("matthews_corrcoef", "mcc"),
        ("quadratic-weighted-kappa", "qwk"),
        ("logloss", "log_loss"),
        ("mean_squared_error", "mse"),
        ("SMAPE", "smape"),
        ("PR-AUC", "average_precision"),
        ("normalized_gini", "gini"),
    ],
)
def test_the_names_users_know_from_other_tools_are_accepted(spelled, name):
    assert metrics.canonical(spelled) == name
    assert metrics.get(spelled) is metrics.get(name)


def test_a_competition_records_the_metric_by_its_own_name(tiny):
    from kit.competition import discover

    assert discover(tiny, metric="AUC").metric == "roc_auc"


# an imbalanced binary target (8% positives) whose scores separate the classes moderately
_rng = np.random.default_rng(0)
Y_RARE = (_rng.random(6000) < 0.08).astype(int)
P_RARE = 1 / (1 + np.exp(-(_rng.normal(size=6000) + 1.5 * Y_RARE - 3)))
PROBA_RARE = np.stack([1 - P_RARE, P_RARE], axis=1)
FOLD_RARE = np.arange(6000) % 5


@pytest.mark.parametrize("name", ["f1", "mcc", "balanced_accuracy"])
def test_a_label_metric_of_a_rare_class_gets_a_better_cut_than_one_half(name):
    metric = metrics.get(name)
    cut, decided = metrics.decision_threshold(metric, Y_RARE, PROBA_RARE, FOLD_RARE)
    assert cut is not None and cut < 0.5  # few probabilities of the rare class reach 0.5
    assert metric.better(metric(Y_RARE, decided), metric(Y_RARE, PROBA_RARE) + 0.1)
    # the honest score: each fold decided by a cut chosen on the other folds, so never above
    # the score of the best cut chosen on all rows at once
    assert metric(Y_RARE, decided) <= metric(Y_RARE, metrics.at_threshold(PROBA_RARE, cut)) + 1e-12


def test_a_cut_is_kept_only_where_it_beats_one_half_on_held_out_folds():
    # calibrated, balanced and well separated: 0.5 is the best cut, and nothing else is kept
    y = np.arange(4000) % 2
    p = np.clip(0.5 + (y - 0.5) * 0.6 + _rng.normal(size=4000) * 0.15, 0.01, 0.99)
    proba = np.stack([1 - p, p], axis=1)
    cut, decided = metrics.decision_threshold(metrics.get("accuracy"), y, proba, np.arange(4000) % 5)
    assert cut is None and decided is proba
    # and one validation fold gives nothing to check a cut on
    assert metrics.decision_threshold(metrics.get("f1"), Y_RARE, PROBA_RARE, np.zeros(6000))[0] is None


def test_at_threshold_moves_the_cut_to_one_half_and_keeps_the_order():
    moved = metrics.at_threshold(PROBA_RARE, 0.2)
    np.testing.assert_array_equal(metrics.labels(moved), (P_RARE > 0.2).astype(int))
    assert (np.diff(moved[np.argsort(P_RARE), 1]) >= 0).all()  # the ranking (and AUC) is unchanged
    np.testing.assert_allclose(moved.sum(axis=1), 1.0)
    assert metrics.at_threshold(PROBA_RARE, None) is PROBA_RARE


def test_a_metric_for_another_task_is_rejected():
    with pytest.raises(InputError, match="'rmse' does not apply to a binary task.*accuracy"):
        metrics.check("rmse", "binary")
    with pytest.raises(InputError, match="'f1' does not apply to a multiclass task"):
        metrics.check("f1", "multiclass")
    assert metrics.check("qwk", "regression").name == "qwk"


def test_default_metric_per_task():
    assert metrics.default_for("regression", "value") == "rmse"
    assert metrics.default_for("binary", "label") == "accuracy"
    assert metrics.default_for("binary", "proba") == "roc_auc"
    assert metrics.default_for("multiclass", "proba_columns") == "log_loss"
    assert metrics.default_for("multiclass", "label") == "accuracy"


@pytest.mark.parametrize("name", [m.name for m in metrics.REGISTRY.values() if m.counts is not None])
def test_the_search_over_cuts_scores_as_scikit_learn_does(name):
    metric = metrics.get(name)
    cuts, scores = metrics.threshold_scores(metric, Y_RARE, PROBA_RARE)
    assert len(cuts) > 50
    for i in range(0, len(cuts), 7):
        labels = np.eye(2)[(P_RARE > cuts[i]).astype(int)]
        assert scores[i] == pytest.approx(metric(Y_RARE, labels), abs=1e-12)


def test_only_accuracy_has_its_best_cut_at_one_half_for_calibrated_probabilities():
    # calibrated (P(yes) is the chance of "yes") and rare (10% on average): "yes above 0.5" is
    # right most often, while f1, mcc and balanced accuracy want many more "yes"
    p = _rng.beta(1, 9, 20000)
    y = (_rng.random(20000) < p).astype(int)
    proba = np.stack([1 - p, p], axis=1)
    for name in ("accuracy", "f1_micro", "f1", "mcc", "balanced_accuracy"):
        metric = metrics.get(name)
        near_half = abs(metrics.best_threshold(metric, y, proba) - 0.5) < 0.03
        assert near_half == metrics.best_cut_is_half(metric), name


def test_map_at_k_is_the_mean_reciprocal_rank_of_the_true_class_within_k():
    proba = np.array([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    y = np.array([0, 1, 2, 0])  # ranked 1st, 2nd, 3rd and 3rd
    assert metrics.get("MAP@3")(y, proba) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 3) / 4)
    assert metrics.get("map@2")(y, proba) == pytest.approx((1 + 1 / 2) / 4)  # the 3rd scores nothing
    assert metrics.get("map@1")(y, proba) == pytest.approx(metrics.get("accuracy")(y, proba))
    assert metrics.canonical("mapk@3") == metrics.canonical("map_at_3") == "map@3"
