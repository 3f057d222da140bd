"""Validation splits: every strategy keeps train and validation apart, and is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from kit.errors import InputError
from kit.split import fold_weights, make_folds, resolve_strategy

N = 120
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 3, N)
GROUPS = RNG.integers(0, 12, N)
ORDER = RNG.permutation(N) * 10.0
INPUTS = {"y": Y, "groups": GROUPS, "order": ORDER}


def _folds(strategy, seed=0, n_splits=4):
    return make_folds(N, strategy=strategy, n_splits=n_splits, seed=seed, **INPUTS)


@pytest.mark.parametrize("strategy", ["holdout", "kfold", "stratified", "group", "time"])
def test_train_and_validation_never_overlap(strategy):
    folds = _folds(strategy)
    assert folds
    for tr, va in folds:
        assert len(tr) and len(va)
        assert not set(tr) & set(va)
        assert len(set(tr)) == len(tr) and len(set(va)) == len(va)
        assert max(tr.max(), va.max()) < N and min(tr.min(), va.min()) >= 0


@pytest.mark.parametrize("strategy", ["kfold", "stratified", "group"])
def test_k_fold_validates_every_row_once(strategy):
    folds = _folds(strategy)
    assert len(folds) == 4
    seen = np.concatenate([va for _, va in folds])
    assert sorted(seen) == list(range(N))
    for tr, va in folds:
        assert len(tr) + len(va) == N


def test_holdout_is_one_split_of_the_requested_size():
    (tr, va), *rest = make_folds(N, strategy="holdout", holdout_size=0.25, seed=0)
    assert not rest
    assert len(va) == 30 and len(tr) == 90


def test_stratified_keeps_class_shares():
    share = np.bincount(Y) / N
    for _, va in _folds("stratified"):
        assert np.abs(np.bincount(Y[va], minlength=3) / len(va) - share).max() < 0.05


def test_group_never_spans_train_and_validation():
    for tr, va in _folds("group"):
        assert not set(GROUPS[tr]) & set(GROUPS[va])


def test_time_validates_later_rows():
    folds = _folds("time")
    assert len(folds) == 4
    for tr, va in folds:
        assert ORDER[tr].max() < ORDER[va].min()
    # each fold trains on more of the past than the one before
    sizes = [len(tr) for tr, _ in folds]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


def test_time_without_ties_is_time_series_split():
    from sklearn.model_selection import TimeSeriesSplit

    rows = np.argsort(ORDER, kind="stable")
    for (tr, va), (a, b) in zip(_folds("time"), TimeSeriesSplit(4).split(rows), strict=True):
        np.testing.assert_array_equal(tr, rows[a])
        np.testing.assert_array_equal(va, rows[b])


@pytest.mark.parametrize("n_splits", [2, 4, 5, 7])
def test_time_keeps_each_times_rows_in_one_fold(n_splits):
    # daily sales: 30 days of 20 rows each, in no particular order
    days = np.random.default_rng(0).permutation(np.repeat(np.arange(30), 20))
    folds = make_folds(len(days), strategy="time", n_splits=n_splits, order=days)
    assert len(folds) == n_splits
    first_window = folds[0][0]
    assert len(first_window) % 20 == 0 and len(set(days[first_window])) == len(first_window) // 20
    for tr, va in folds:
        # validation days come after every training day, and no day is on both sides
        assert days[tr].max() < days[va].min()
        assert len(va) % 20 == 0
        # as balanced as whole days allow: each boundary within half a day of an equal split
        assert abs(len(va) - len(days) // (n_splits + 1)) <= 20
    seen = np.concatenate([first_window, *[va for _, va in folds]])
    assert sorted(seen) == list(range(len(days)))


def test_time_with_fewer_times_than_folds_is_rejected():
    with pytest.raises(InputError, match="3 different times, too few for --folds 4.*--folds 2"):
        make_folds(30, strategy="time", n_splits=4, order=np.arange(30) // 10)


def test_time_ties_keep_file_order():
    order = np.array([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    (tr, va), *_ = make_folds(12, strategy="time", n_splits=2, order=order)
    assert list(tr) == sorted(tr) and list(va) == sorted(va)


@pytest.mark.parametrize("strategy", ["holdout", "kfold", "stratified", "group", "time"])
def test_same_seed_same_folds(strategy):
    for (a_tr, a_va), (b_tr, b_va) in zip(_folds(strategy, seed=3), _folds(strategy, seed=3), strict=True):
        np.testing.assert_array_equal(a_tr, b_tr)
        np.testing.assert_array_equal(a_va, b_va)


@pytest.mark.parametrize("strategy", ["holdout", "kfold", "stratified", "group"])
def test_another_seed_other_folds(strategy):
    a, b = _folds(strategy, seed=0), _folds(strategy, seed=1)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def test_fewer_groups_than_folds_is_rejected():
    with pytest.raises(InputError, match="3 groups, fewer than --folds 5.*--folds 3"):
        make_folds(30, strategy="group", n_splits=5, groups=np.arange(30) % 3)


def test_fewer_than_two_folds_is_rejected():
    with pytest.raises(InputError, match="--folds must be at least 2"):
        make_folds(30, strategy="kfold", n_splits=1)


def test_resolve_strategy():
    assert resolve_strategy("auto", task="binary", group=None, time=None) == "stratified"
    assert resolve_strategy("auto", task="multiclass", group=None, time=None) == "stratified"
    assert resolve_strategy("auto", task="regression", group=None, time=None) == "kfold"
    assert resolve_strategy("auto", task="binary", group="g", time=None) == "group"
    assert resolve_strategy("auto", task="regression", group=None, time="t") == "time"
    assert resolve_strategy("kfold", task="binary", group="g", time=None) == "kfold"
    with pytest.raises(InputError, match="Unknown split 'random'.*--split"):
        resolve_strategy("random", task="binary", group=None, time=None)


@pytest.mark.parametrize("strategy", ["kfold", "stratified", "group", "time"])
def test_each_folds_share_of_the_test_predictions(strategy):
    folds = _folds(strategy)
    w = fold_weights(folds, strategy)
    assert w.shape == (4,) and w.sum() == pytest.approx(1.0)
    if strategy != "time":
        np.testing.assert_allclose(w, 0.25)
    else:  # growing windows: a fold counts as the square of its training rows
        rows = np.array([len(tr) for tr, _ in folds], dtype=float)
        np.testing.assert_allclose(w, rows**2 / (rows**2).sum())
        assert np.all(np.diff(w) > 0)


def test_group_folds_balance_their_rows_whatever_the_groups_sizes():
    """Groups of 400, 150, 60, ... rows: each fold validates on about a third of the rows it can,
    not on whichever groups a shuffle dealt it (67, 552 and 43 rows)."""
    groups = np.repeat(np.arange(10), [400, 150, 60, 30, 10, 5, 3, 2, 1, 1])
    for seed in range(3):
        sizes = sorted(
            len(va)
            for _, va in make_folds(len(groups), strategy="group", n_splits=3, seed=seed, groups=groups)
        )
        assert sizes == [112, 150, 400]  # the biggest group alone, the rest shared out
