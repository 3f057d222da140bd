"""Permutation importance of each column, on one fold's validation rows, within a time cap.

A column matters as much as the metric worsens when its values are shuffled among the rows. It
needs the fold's model, so `kit.run.cross_validate` computes it right after the last fold, with
the predict function the track returned for it (`FoldResult.predict`), and writes importance.json
for the report.

The shuffled copies of the sample are stacked and predicted together, many columns per call: the
per-call cost of a prep pipeline and of a Keras predict step is paid a few times, not once per
column. How many rows and shuffles fit the time cap is read from a timed prediction of the
unshuffled rows stacked three times (after a first one that warms the predict function up). Every
column is shuffled once before any twice, and a second or third round that the cap no longer
allows is not started; the first is cut short only at three times the cap.
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
# predicted rows per call at most (memory)
CHUNK_ROWS = 200_000
CALIBRATION_COPIES = 3
SAFETY = 1.5


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
    """How much worse `metric` gets when each column of `frame` is shuffled, in about `seconds`.

    Args:
        predict: rows (derived columns, as the fold's validation frame) -> kit's prediction form.
        frame: the fold's validation rows; a seeded sample of at most MAX_ROWS is used.
        y: their targets (class indices or values).
        metric: a `kit.metrics.Metric`; the worsening is signed so that positive means the column helps.
        seconds: the time cap; rows and shuffles are cut to fit it.
        columns: the columns to shuffle (default: all of `frame`).

    Returns:
        {"features": [{"feature", "importance", "std", "repeats"}...] most important first,
        "baseline": the sample's score, "metric", "rows", "repeats" (the fewest any column got),
        "seconds", "complete" (every column measured), "skipped" (the columns that were not)}.

    Example:
        >>> imp = permutation_importance(result.predict, fold.val, fold.y_val, metric=m, seconds=2)
    """
    started = time.perf_counter()
    deadline = started + seconds
    rng = np.random.default_rng(seed)
    columns = list(frame.columns if columns is None else columns)
    # shuffled, so that a prefix of it (when the cap cuts rows) is a random sample too
    keep = rng.permutation(frame.height)
    if metric.needs_every_class:
        # a row of each class first, so that the sample (cut below for time) holds every class
        # and the metric can score it: roc_auc of a rare class is undefined without one
        _, first = np.unique(np.asarray(y)[keep], return_index=True)
        keep = np.concatenate([keep[first], np.delete(keep, first)])
    keep = keep[:MAX_ROWS]
    frame, y = frame[keep], np.asarray(y)[keep]

    reference = _predict(predict, frame)  # also the warm-up: a first call can cost several later ones
    t0 = time.perf_counter()
    _predict(predict, pl.concat([frame] * CALIBRATION_COPIES))
    # a stacked call's seconds per row, its per-call overhead spread over its rows: an upper bound
    # for the larger calls below, with a margin for a machine whose load changes meanwhile
    per_row = SAFETY * (time.perf_counter() - t0) / (CALIBRATION_COPIES * frame.height)
    left = deadline - time.perf_counter()

    def cost(rows: int, repeats: int) -> float:
        return per_row * rows * len(columns) * repeats

    rows = frame.height
    if cost(rows, 1) > left and rows > MIN_ROWS:
        rows = int(max(MIN_ROWS, left / max(per_row * len(columns), 1e-12)))
        frame, y, reference = frame[:rows], y[:rows], reference[:rows]
    repeats = max([r for r in range(1, MAX_REPEATS + 1) if cost(rows, r) <= left] or [1])
    baseline = metric(y, reference)
    sign = 1.0 if metric.direction == "maximize" else -1.0

    # every column's first shuffle before any column's second: a call the cap stops leaves whole rounds
    shuffles = [c for _ in range(repeats) for c in columns]
    drops: dict[str, list[float]] = {c: [] for c in columns}
    # a call holds at least a whole round (its overhead paid once a round), else a third of the cap
    # (so that the cap can stop one estimated wrong), and at most CHUNK_ROWS rows
    per_chunk = max(len(columns), int(seconds / 3 / max(per_row * rows, 1e-12)))
    per_chunk = max(1, min(per_chunk, CHUNK_ROWS // rows))
    for first in range(0, len(shuffles), per_chunk):
        batch = shuffles[first : first + per_chunk]
        # the first round, every column once, is finished unless the estimate was far off (a
        # partial ranking misleads); a later round is not begun past the cap
        limit = deadline + (2.0 if first < len(columns) else 0.1) * seconds
        if first and time.perf_counter() + per_row * rows * len(batch) > limit:
            break
        copies = [frame.with_columns(frame[c].gather(rng.permutation(rows)).alias(c)) for c in batch]
        blocks = np.split(_predict(predict, pl.concat(copies, how="vertical", rechunk=True)), len(batch))
        for c, block in zip(batch, blocks, strict=True):
            drops[c].append(sign * (baseline - metric(y, block)))
    measured = {c: d for c, d in drops.items() if d}
    features = [
        {"feature": c, "importance": float(np.mean(d)), "std": float(np.std(d)), "repeats": len(d)}
        for c, d in measured.items()
    ]
    features.sort(key=lambda f: -f["importance"])
    return {
        "features": features,
        "baseline": float(baseline),
        "metric": metric.name,
        "rows": rows,
        "repeats": min((len(d) for d in measured.values()), default=0),
        "seconds": round(time.perf_counter() - started, 3),
        "complete": len(measured) == len(columns),
        "skipped": [c for c in columns if c not in measured],
    }


def _predict(predict, frame: pl.DataFrame) -> np.ndarray:
    out = np.asarray(predict(frame), dtype=np.float64)
    return out.reshape(frame.height, -1) if out.ndim > 1 else out.reshape(-1)
