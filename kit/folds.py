"""What a track is handed for a fold and what it hands back: `Fold`, `FoldResult`, and the call
that checks the return (shapes, finite values, probabilities) at the fold, before anything is
written. `kit.run` drives the folds; a track imports these from there or from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kit import metrics, tracks
from kit.competition import Competition
from kit.errors import InputError, TrackError


class Fold:
    """What a model sees of one fold: derived feature frames, targets and the task.

    Made either from its frames (`train=`, `val=`) or, as a run makes it, from the run's derived
    training frame and the fold's row numbers (`rows=(frame, train_rows, val_rows)`): then
    `train` and `val` are gathered at each access and no copy of them outlives its use; a track
    that reads them more than once binds them once (`train = fold.train`), and one that can read
    rows in chunks takes `fold.rows_of("train")` instead.

    Attributes:
        work_dir: a folder of this fold's own that outlives a crash (checkpoints go there, so a
            rerun with the same --out resumes); created by the track when it needs one.
        log: where the track's own lines go (the run's log).
        callbacks: Keras callbacks for every epoch (progress bars, pruning); a custom loop calls
            their `on_epoch_end(epoch, {"val_score": ...})` itself.
    """

    def __init__(
        self,
        *,
        index: int,
        test: pl.DataFrame,
        y_train: np.ndarray,
        y_val: np.ndarray,
        roles: dict[str, str],
        task: str,
        n_classes: int,
        metric: str,
        seed: int,
        train: pl.DataFrame | None = None,
        val: pl.DataFrame | None = None,
        rows: tuple[pl.DataFrame, np.ndarray, np.ndarray] | None = None,
        callbacks: list | None = None,
        work_dir: Path | None = None,
        log: Callable[[str], None] = print,
    ):
        if (rows is None) == (train is None or val is None):
            raise ValueError("A Fold takes its train and val frames, or rows=(frame, train_rows, val_rows).")
        self._parts = (
            {"train": (rows[0], rows[1]), "val": (rows[0], rows[2])}
            if rows is not None
            else {"train": (train, None), "val": (val, None)}
        )
        self.index, self.test, self.y_train, self.y_val = index, test, y_train, y_val
        self.roles, self.task, self.n_classes, self.metric, self.seed = roles, task, n_classes, metric, seed
        self.callbacks = [] if callbacks is None else callbacks
        self.work_dir, self.log = work_dir, log

    @property
    def train(self) -> pl.DataFrame:
        """The training rows' derived columns."""
        return self._gathered("train")

    @property
    def val(self) -> pl.DataFrame:
        """The validation rows' derived columns."""
        return self._gathered("val")

    def rows_of(self, part: str) -> tuple[pl.DataFrame, np.ndarray | None]:
        """("train" or "val") -> (a frame, its row numbers that make the part, or None: all of it)."""
        return self._parts[part]

    def _gathered(self, part: str) -> pl.DataFrame:
        frame, rows = self._parts[part]
        return frame if rows is None else frame[rows]


@dataclass
class FoldResult:
    """What a track returns for a fold: predictions in kit's form, and optionally more.

    Attributes:
        val, test: (n, n_classes) probabilities or (n,) values, for the validation and test rows.
        history: per epoch, "loss" and "val_score" lists, and "best_epoch" (for the report); a
            "runtime" dict (strategy, precision, batch size, ...) is shown in the report as is.
        model: anything the track's `write_artifacts` needs from this fold (an export's parts).
        predict: rows (derived columns, like `fold.val`) -> predictions in the same form, from this
            fold's model; kit calls it for the last fold right after it, before anything else
            trains, for the report's permutation importance (so a track may reuse one model
            across folds). None: the report has no importance.
    """

    val: np.ndarray
    test: np.ndarray
    history: dict | None = None
    model: Any = None
    predict: Callable[[pl.DataFrame], np.ndarray] | None = None


def fit_fold(track: tracks.Track, fold: Fold, params: dict):
    """The track's fit_predict_fold; an error of a team's own track is said as theirs (`TrackError`)."""
    try:
        return track.fit_predict_fold(fold, params)
    except (InputError, KeyboardInterrupt, MemoryError, OSError):
        raise
    except Exception as err:
        if track.module.__name__.startswith("kit."):
            raise
        where = f"Track file '{track.ref}'" if track.ref else f"Track '{track.name}'"
        raise TrackError(where, fold.index, err) from err


def as_result(returned, fold: Fold, comp: Competition, name: str, params: dict | None = None) -> FoldResult:
    """A track's return value as a `FoldResult`, checked: a wrong shape fails at the fold, not later."""
    if not isinstance(returned, FoldResult) and (
        not isinstance(returned, tuple | list) or len(returned) != 2
    ):
        got = type(returned).__name__ if not isinstance(returned, tuple | list) else f"{len(returned)} values"
        raise InputError(
            f"Track '{name}' returned {got} for fold {fold.index + 1}; expected (validation predictions, "
            f"test predictions) or a kit.run.FoldResult. Received: {got}"
        )
    result = returned if isinstance(returned, FoldResult) else FoldResult(*returned)
    width = fold.n_classes if comp.task != "regression" else 1
    for what, pred, rows in (
        ("validation", result.val, len(fold.y_val)),
        ("test", result.test, fold.test.height),
    ):
        pred = np.asarray(pred, dtype=np.float64)
        if pred.size != rows * width:
            shape = f"({rows}, {width})" if comp.task != "regression" else f"({rows},)"
            raise InputError(
                f"Track '{name}' returned {what} predictions of shape {pred.shape} for fold {fold.index + 1}; "
                f"expected {shape}: kit's prediction form"
                + (
                    ", a column per class (for a binary task, np.stack([1 - p, p], axis=1))"
                    if comp.task != "regression"
                    else ""
                )
                + f". Received: shape={pred.shape}"
            )
    result.val = np.asarray(result.val, dtype=np.float64)
    result.test = np.asarray(result.test, dtype=np.float64)
    for what, pred in (("validation", result.val), ("test", result.test)):
        if not np.isfinite(pred).all():
            raise InputError(
                f"Track '{name}' predicted NaN or infinite values for {_rows_not_finite(pred)} of fold "
                f"{fold.index + 1}'s {len(pred)} {what} rows: its training may have diverged. "
                + (
                    f"Lower [{name}] learning_rate, or check"
                    if "learning_rate" in (params or {})
                    else "Check"
                )
                + " the target's scale. "
                f"Received: non_finite={int((~np.isfinite(pred)).sum())}"
            )
        rows = pred.reshape(-1, width)
        if comp.task != "regression" and (
            rows.min() < -PROBABILITY_SLACK
            or rows.max() > 1 + PROBABILITY_SLACK
            or np.abs(rows.sum(axis=1) - 1).max() > PROBABILITY_SLACK
        ):
            raise InputError(
                f"Track '{name}' predicted values that are not class probabilities for fold {fold.index + 1}'s "
                f"{what} rows: each row needs {width} values in [0, 1] summing to 1 (softmax, or "
                f"[1 - p, p] for a binary task). Received: min={rows.min():.4g}, max={rows.max():.4g}, "
                f"row sums {rows.sum(axis=1).min():.4g} to {rows.sum(axis=1).max():.4g}"
            )
    if comp.metric == "log_loss":
        # the OOF and test predictions kept are those the CV scores (a class a fold trained without
        # gets 0 from most models: the score recomputed from oof.parquet, and Kaggle's, would differ)
        result.val, result.test = (
            metrics.floor_probabilities(p.reshape(-1, width)) for p in (result.val, result.test)
        )
    return result


# how far a class probability or a row's sum may stray from [0, 1] and 1 (float32 rounding)
PROBABILITY_SLACK = 1e-3


def _rows_not_finite(pred: np.ndarray) -> int:
    bad = ~np.isfinite(pred)
    return int((bad.any(axis=1) if bad.ndim > 1 else bad).sum())
