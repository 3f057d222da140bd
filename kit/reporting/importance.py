"""Permutation importance of each column, on one fold's validation rows, within a time cap.

A column matters as much as the metric drops when its values are shuffled among the rows. It needs
the fold's model, so `kit.run.cross_validate` computes it right after the last fold, with the
predict function the track returned for it (`FoldResult.predict`), and writes importance.json
for the report.

Every shuffled copy of the sample is predicted in one call (all columns, all repeats stacked):
the per-call cost of a prep pipeline and a Keras predict step is paid once, not once per column,
which is what keeps it within a fraction of a second on small data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

# the most validation rows and shuffles per column; fewer when the time cap asks for it
MAX_ROWS = 2000
MAX_REPEATS = 3
MIN_ROWS = 100
# predicted rows per call: the stacked copies are cut into calls of about this many rows
CHUNK_ROWS = 200_000


def permutation_importance(
    predict: Callable[[pl.DataFrame], np.ndarray],
    frame: pl.DataFrame,
    y: np.ndarray,
    *,
    metric,
    seconds: float,
    seed: int = 0,
    columns: list[str] | None = None,
) -> dict:
    """The drop in `metric` when each column of `frame` is shuffled, in at most about `seconds`.

    Args:
        predict: rows (derived columns, as the fold's validation frame) -> kit's prediction form.
        frame: the fold's validation rows; a seeded sample of at most MAX_ROWS is used.
        y: their targets (class indices or values).
        metric: a `kit.metrics.Metric`; a drop is signed so that positive means the column helps.
        seconds: the time cap; rows and repeats are cut to fit it, measured on a first predict.
        columns: the columns to shuffle (default: all of `frame`).

    Returns:
        {"features": [{"feature", "importance", "std"}...] best first, "baseline": the sample's
        score, "metric", "rows", "repeats", "seconds", "complete": whether every column was done}.

    Example:
        >>> imp = permutation_importance(result.predict, fold.val, fold.y_val, metric=m, seconds=2)
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    columns = list(frame.columns if columns is None else columns)
    # shuffled, so that a prefix of it (when the time cap cuts rows) is a random sample too
    keep = rng.permutation(frame.height)[:MAX_ROWS]
    frame, y = frame[keep], np.asarray(y)[keep]
    reference = _predict(predict, frame)
    whole = time.perf_counter() - started
    # a call costs `fixed` plus `per_row` a row: a prep pipeline's or a predict step's overhead
    # dominates small calls, so one timing alone would leave most of the budget unused
    small = min(32, frame.height)
    t0 = time.perf_counter()
    _predict(predict, frame[:small])
    fixed = time.perf_counter() - t0
    per_row = max((whole - fixed) / max(frame.height - small, 1), 0.05 * whole / max(frame.height, 1))
    left = max(seconds - (time.perf_counter() - started), 0.0)
    calls = 1 + len(columns) * MAX_REPEATS * frame.height // CHUNK_ROWS
    affordable = (left - calls * fixed) / max(per_row * len(columns), 1e-12)  # rows per column, once each
    repeats = int(max(1, min(MAX_REPEATS, affordable // max(frame.height, 1))))
    if affordable < frame.height and frame.height > MIN_ROWS:
        n = int(max(MIN_ROWS, affordable))
        frame, y, reference = frame[:n], y[:n], reference[:n]
    baseline = metric(y, reference)
    sign = 1.0 if metric.direction == "maximize" else -1.0
    drops: dict[str, list[float]] = {}
    deadline = started + seconds
    per_call = max(1, CHUNK_ROWS // (frame.height * repeats))
    for first in range(0, len(columns), per_call):
        if time.perf_counter() > deadline and drops:
            break
        batch = columns[first : first + per_call]
        copies = [
            frame.with_columns(frame[c].gather(rng.permutation(frame.height)).alias(c))
            for c in batch
            for _ in range(repeats)
        ]
        pred = _predict(predict, pl.concat(copies, how="vertical"))
        blocks = np.split(pred, len(copies))
        for i, c in enumerate(batch):
            scores = [metric(y, blocks[i * repeats + r]) for r in range(repeats)]
            drops[c] = [sign * (baseline - s) for s in scores]
    features = [
        {"feature": c, "importance": float(np.mean(d)), "std": float(np.std(d))} for c, d in drops.items()
    ]
    features.sort(key=lambda f: -f["importance"])
    return {
        "features": features,
        "baseline": float(baseline),
        "metric": metric.name,
        "rows": frame.height,
        "repeats": repeats,
        "seconds": round(time.perf_counter() - started, 3),
        "complete": len(drops) == len(columns),
        "skipped": [c for c in columns if c not in drops],
    }


def _predict(predict, frame: pl.DataFrame) -> np.ndarray:
    out = np.asarray(predict(frame), dtype=np.float64)
    return out.reshape(frame.height, -1) if out.ndim > 1 else out.reshape(-1)
