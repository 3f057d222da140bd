"""Reading a competition folder and writing a submission, for the two reference recipes.

The recipes (`hgb.py`, `plain_keras.py`) stand for what a user would write without kit, so they
get the facts a user reads off the competition page (target, id, task, metric, submission kind)
as flags instead of inferring them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

# pandas' default missing-value spellings, so the recipes read files as `pd.read_csv` would
PANDAS_NA = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
SUBMISSION_KINDS = ("label", "proba", "proba_columns", "value")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("data", help="competition folder: train.csv, test.csv and a sample submission")
    p.add_argument("--target", required=True)
    p.add_argument("--id", required=True, help="id column; dropped from the features")
    p.add_argument("--task", required=True, choices=("binary", "multiclass", "regression"))
    p.add_argument("--metric", required=True, help="the competition metric, e.g. rmsle")
    p.add_argument("--kind", required=True, choices=SUBMISSION_KINDS, help="what the sample file holds")
    p.add_argument("--out", required=True, help="where to write the submission CSV")
    return p


def sample_path(folder: Path) -> Path:
    return next(p for p in sorted(folder.glob("*.csv")) if "sample" in p.name or "submission" in p.name)


def read_competition(folder: str | Path, *, target: str, id: str):
    """(train features, target as spelled in the file, test features, test ids, sample frame)."""
    folder = Path(folder)
    # the target stays text so labels are written back exactly as train.csv spells them
    read = dict(null_values=PANDAS_NA, infer_schema_length=None, schema_overrides={target: pl.String})
    # rows without a target teach nothing, and the libraries refuse them: a user drops them
    train = pl.read_csv(folder / "train.csv", **read).filter(pl.col(target).is_not_null())
    test = pl.read_csv(folder / "test.csv", null_values=PANDAS_NA, infer_schema_length=None)
    sample = pl.read_csv(sample_path(folder), infer_schema=False)
    features = [c for c in test.columns if c != id and c in train.columns]
    return train.select(features), train[target], test.select(features), test[id], sample


def write_submission(
    path: str | Path,
    *,
    sample: pl.DataFrame,
    id: str,
    ids: pl.Series,
    target: str,
    kind: str,
    classes: list[str] | None = None,
    pred: np.ndarray,
) -> None:
    """Write predictions in the sample file's columns.

    Args:
        classes: class labels as spelled in train, in the order of `pred`'s columns.
        pred: (n, n_classes) probabilities for classification, (n,) values for regression.
    """
    columns = {id: ids.cast(pl.String)}
    if kind == "label":
        columns[target] = pl.Series(np.asarray(classes, dtype=object)[pred.argmax(axis=1)], dtype=pl.String)
    elif kind == "proba":
        columns[target] = pl.Series(pred[:, 1], dtype=pl.Float64)
    elif kind == "proba_columns":
        for i, cls in enumerate(classes):
            column = f"{target}_{cls}" if f"{target}_{cls}" in sample.columns else cls
            columns[column] = pl.Series(pred[:, i], dtype=pl.Float64)
    else:
        columns[target] = pl.Series(np.asarray(pred, dtype=np.float64))
    pl.DataFrame(columns).select(sample.columns).write_csv(path)
