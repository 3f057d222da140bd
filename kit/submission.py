"""Build a submission from predictions, check it against the sample file, and write it atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from kit.competition import Competition
from kit.errors import InputError
from kit.io import read_table, write_atomic
from kit.metrics import labels, round_ratings


def make_submission(comp: Competition, pred: np.ndarray) -> pl.DataFrame:
    """The submission frame for test predictions, in the sample file's row and column order.

    Args:
        pred: (n_test, n_classes) probabilities, or (n_test,) values for regression.
    """
    fmt, target = comp.submission, comp.target
    columns = {}
    if comp.id is not None:
        columns[comp.id] = comp.test[comp.id]
    if fmt.kind == "label":
        if comp.task == "regression":  # qwk on an integer target: rounded ratings
            y_train = comp.train[target].to_numpy()
            values = round_ratings(pred, y_train)
        else:
            values = np.asarray(comp.classes, dtype=object)[labels(pred)].tolist()
        columns[target] = _spelled(pl.Series(target, values, dtype=comp.train[target].dtype))
    elif fmt.kind == "proba":
        columns[target] = pl.Series(target, pred[:, 1], dtype=pl.Float64)
    elif fmt.kind == "proba_columns":
        for i, column in enumerate(fmt.class_columns):
            columns[column] = pl.Series(column, pred[:, i], dtype=pl.Float64)
    else:
        columns[target] = pl.Series(target, pred, dtype=pl.Float64)
    frame = pl.DataFrame(columns)
    if comp.sample is not None and comp.id is not None:
        # the sample file's order, which Kaggle's scorer expects
        order = comp.sample.select(pl.col(comp.id).cast(frame[comp.id].dtype, strict=False))
        frame = order.join(frame, on=comp.id, how="left", maintain_order="left")
        frame = frame.select(fmt.columns)
    return frame


def _spelled(s: pl.Series) -> pl.Series:
    """Labels as text the way Kaggle files spell them: booleans as True/False (polars writes
    true/false, which does not match a train file's spelling or the sample's)."""
    if s.dtype == pl.Boolean:
        return s.replace_strict({True: "True", False: "False"}, return_dtype=pl.String)
    return s.cast(pl.String)


def check_submission(frame: pl.DataFrame, comp: Competition, *, name: str = "submission") -> None:
    """Raise `InputError` unless the frame matches the sample file and the train target's spelling."""
    fmt = comp.submission
    if frame.columns != fmt.columns:
        raise InputError(
            f"{name} has columns {frame.columns}, the sample file expects {fmt.columns}. "
            f"Write the same columns in the same order. Received: columns={frame.columns}"
        )
    if comp.sample is not None and comp.id is not None:
        expected = comp.sample[comp.id].cast(pl.String)
        got = frame[comp.id].cast(pl.String)
        if got.len() != expected.len():
            raise InputError(
                f"{name} has {got.len()} rows, the sample file has {expected.len()}. Predict every "
                f"test row once. Received: rows={got.len()}"
            )
        mismatch = (got != expected).arg_true()
        if mismatch.len():
            i = mismatch[0]
            raise InputError(
                f"{name} row {i + 1} has id {got[i]!r}, the sample file has {expected[i]!r} there. "
                f"Keep the sample file's ids and order. Received: id={got[i]!r}"
            )
    elif frame.height != comp.test.height:
        raise InputError(
            f"{name} has {frame.height} rows, test has {comp.test.height}. Received: rows={frame.height}"
        )
    values = [c for c in frame.columns if c != comp.id]
    for column in values:
        s = frame[column]
        if s.null_count():
            raise InputError(
                f"{name} column '{column}' has {s.null_count()} missing values. Predict every row."
            )
        if s.dtype.is_float() and not s.is_finite().all():
            raise InputError(f"{name} column '{column}' has NaN or infinite values. Predict finite values.")
    if fmt.kind == "label" and comp.task != "regression":
        allowed = {str(v) for v in comp.classes}
        spelled = _spelled(frame[comp.target])
        bad = spelled.filter(~spelled.is_in(allowed))
        if bad.len():
            raise InputError(
                f"{name} column '{comp.target}' has label {bad[0]!r}, which {comp.train_path.name} never spells "
                f"that way; expected one of {sorted(allowed)}. Received: label={bad[0]!r}"
            )
    if fmt.kind in ("proba", "proba_columns"):
        probs = frame.select(values).cast(pl.Float64).to_numpy()
        if probs.min() < 0 or probs.max() > 1:
            raise InputError(
                f"{name} has probabilities outside [0, 1] (min {probs.min():.4g}, max "
                f"{probs.max():.4g}). Clip or apply a sigmoid/softmax."
            )
        if fmt.kind == "proba_columns":
            sums = probs.sum(axis=1)
            worst = float(np.abs(sums - 1).max())
            if not math.isclose(worst, 0, abs_tol=1e-3):
                raise InputError(
                    f"{name} class probabilities do not sum to 1 across {values} (off by up to "
                    f"{worst:.4g}). Normalise each row. Received: max_error={worst:.4g}"
                )


def write_submission(frame: pl.DataFrame, comp: Competition, path: str | Path) -> Path:
    """Check the frame against the sample file, then write it atomically; nothing is written if it fails."""
    check_submission(frame, comp)
    write_atomic(path, frame)
    return Path(path)


def validate_file(submission: str | Path, comp: Competition) -> pl.DataFrame:
    """Read a submission file and run the same checks as before writing one."""
    frame = read_table(submission)
    if comp.id is not None and comp.id in frame.columns:
        frame = frame.with_columns(pl.col(comp.id).cast(comp.test[comp.id].dtype, strict=False))
    check_submission(frame, comp, name=f"'{submission}'")
    return frame
