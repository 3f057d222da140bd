"""Validation splits: holdout, k-fold, stratified, group and time-ordered, all seeded."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import model_selection as ms

from kit.errors import InputError

STRATEGIES = ("auto", "holdout", "kfold", "stratified", "group", "time")


def resolve_strategy(strategy: str, *, task: str, group: str | None, time: str | None) -> str:
    """Pick the split for "auto": group if a group column is set, time if a time column is,
    stratified for classification, plain k-fold for regression."""
    if strategy not in STRATEGIES:
        raise InputError(
            f"Unknown split '{strategy}'. Pass --split with one of: {', '.join(STRATEGIES)}. "
            f"Received: split={strategy}"
        )
    if strategy != "auto":
        return strategy
    if group is not None:
        return "group"
    if time is not None:
        return "time"
    return "stratified" if task in ("binary", "multiclass") else "kfold"


def make_folds(
    n_rows: int,
    *,
    strategy: str,
    n_splits: int = 5,
    seed: int = 0,
    y: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    order: np.ndarray | None = None,
    holdout_size: float = 0.2,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split row indices into (train, validation) pairs.

    Args:
        n_rows: number of training rows.
        strategy: "holdout", "kfold", "stratified", "group" or "time" (resolve "auto" first).
        n_splits: number of folds (ignored by "holdout").
        y: class indices, for "stratified" (and a stratified "holdout").
        groups: group labels, for "group": a group never spans train and validation (a "holdout"
            given groups validates on `holdout_size` of the groups).
        order: sort key, for "time": each fold validates on rows later than all its training rows
            (rows of one time are never split between training and validation); a "holdout" given
            an order and no groups validates on its last `holdout_size` of the rows.

    Returns:
        A list of (train_idx, val_idx) pairs of int arrays.
    """
    if n_splits < 2 and strategy != "holdout":
        raise InputError(f"--folds must be at least 2 for a {strategy} split. Received: folds={n_splits}")
    index = np.arange(n_rows)
    if strategy == "holdout" and groups is not None:
        splitter = ms.GroupShuffleSplit(n_splits=1, test_size=holdout_size, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(index, groups=groups)]
    if strategy == "holdout" and order is not None:
        return [_time_holdout(order, holdout_size)]
    if strategy == "holdout":
        splitter = (
            ms.StratifiedShuffleSplit(n_splits=1, test_size=holdout_size, random_state=seed)
            if y is not None
            else ms.ShuffleSplit(n_splits=1, test_size=holdout_size, random_state=seed)
        )
        return [(tr, va) for tr, va in splitter.split(index, y)]
    if strategy == "kfold":
        return list(ms.KFold(n_splits, shuffle=True, random_state=seed).split(index))
    if strategy == "stratified":
        with warnings.catch_warnings():
            # a class rarer than the folds: kit.preflight has said so in a note already
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            return list(ms.StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(index, y))
    if strategy == "group":
        n_groups = len(np.unique(groups))
        if n_groups < n_splits:
            raise InputError(
                f"The group column has {n_groups} groups, fewer than --folds {n_splits}. Pass "
                f"--folds {n_groups} or a finer group column. Received: groups={n_groups}"
            )
        # GroupKFold balances the folds' rows (the biggest group first, into the fold with the fewest
        # rows), where shuffle=True would deal the groups out whatever their sizes (groups of 400, 150,
        # 60, ... rows gave folds of 67, 552 and 43); the seed orders groups of equal size
        _, codes = np.unique(groups, return_inverse=True)
        relabelled = np.random.default_rng(seed).permutation(codes.max() + 1)[codes]
        return list(ms.GroupKFold(n_splits).split(index, groups=relabelled))
    if strategy == "time":
        return _time_folds(order, n_splits)
    raise InputError(f"Unknown split '{strategy}'. Received: split={strategy}")


def _time_folds(order: np.ndarray, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Growing training windows, each validated on the rows after it: scikit-learn's
    TimeSeriesSplit, but a fold boundary falls only between two different times, as near as it
    can to TimeSeriesSplit's, so rows of one time (a day's sales) are never both in training and
    in validation. With no ties it is TimeSeriesSplit's folds."""
    # rows sorted by time; ties keep file order so the split is reproducible
    sorted_rows = np.argsort(order, kind="stable")
    keys = np.asarray(order)[sorted_rows]
    n = len(keys)
    # where a new time starts in the sorted rows: the only places a fold may begin
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    if len(starts) < n_splits:
        raise InputError(
            f"The time column has {len(starts) + 1} different times, too few for --folds {n_splits} "
            f"(a time split needs one more). Pass --folds {max(2, len(starts))} or a finer time "
            f"column. Received: times={len(starts) + 1}"
        )
    size = n // (n_splits + 1)
    cuts, lo = [], 0
    for i, ideal in enumerate(n - size * np.arange(n_splits, 0, -1)):
        # the nearest start at or after the previous cut that leaves one for each later cut
        hi = len(starts) - (n_splits - i) + 1
        j = lo + int(np.argmin(np.abs(starts[lo:hi] - ideal)))
        cuts.append(int(starts[j]))
        lo = j + 1
    bounds = [*cuts, n]
    return [(sorted_rows[:a], sorted_rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _time_holdout(order: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Train on the earliest rows, validate on about the last `size` of them in time order; the
    cut falls between two different times (nearest the ideal one), so no time is on both sides."""
    sorted_rows = np.argsort(order, kind="stable")
    keys = np.asarray(order)[sorted_rows]
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    if len(starts) == 0:
        raise InputError(
            "The time column has a single time, so no rows come after others to validate on. Pass "
            "--time with another column, or --split kfold. Received: times=1"
        )
    ideal = len(keys) - int(np.ceil(size * len(keys)))
    cut = int(starts[np.argmin(np.abs(starts - ideal))])
    return sorted_rows[:cut], sorted_rows[cut:]


def describe(strategy: str, *, group: str | None = None, time: str | None = None) -> str:
    """A split in words with the columns it follows: "group split on 'patient_id'", "holdout of
    the last 20% in 'date'"; `group` and `time` are the columns the split honours (None: none)."""
    if strategy == "holdout" and group is not None:
        return f"holdout of 20% of the groups of '{group}'"
    if strategy == "holdout" and time is not None:
        return f"holdout of the last 20% in '{time}'"
    on = group if strategy == "group" else time if strategy == "time" else None
    return f"{strategy} split" + (f" on '{on}'" if on is not None else "")


def fold_weights(folds: list, strategy: str, *, test_later: bool = True) -> np.ndarray:
    """How much each fold's model counts in the test predictions (summing to 1).

    Equally, except in a time split: there the folds' training windows grow, and the test rows
    come after all of them, so a fold counts in proportion to the square of its training rows
    (the later folds learned from more rows and from the most recent ones). Measured on
    bike-sharing-demand's last 20% and the sales shape of `bench/synthetic.py`, whose test days
    come after the train days: equal weights, weights by rows and by rows squared gave rmsle
    0.527, 0.457, 0.423 (trees) and 0.423, 0.382, 0.364 (baseline) on bike-sharing, and MAPE
    0.174, 0.169, 0.168 (trees) and 0.188, 0.186, 0.186 (baseline) on sales.

    `test_later=False` (some test rows are not later than every train row): equal, as in other
    splits. The later folds count more only because the test comes after them; where test rows
    fall within train's period, a later window is no nearer to them.
    """
    if strategy != "time" or not test_later:
        return np.full(len(folds), 1.0 / len(folds))
    rows = np.array([len(train) for train, _ in folds], dtype=np.float64)
    return rows**2 / np.sum(rows**2)


def sample_rows(n: int, most: int, *, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded sample of `most` of `n` rows; None when all of them fit."""
    if n <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, most, replace=False))
