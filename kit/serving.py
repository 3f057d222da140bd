"""`kit predict MODEL TEST_FILE --out SUB.csv`: a validated submission from an exported model alone.

The exported model (`<run_dir>/model/`, written by the advanced track) holds the whole path from
raw rows to kit's prediction form; `assets.extra/kit.json` beside the graph says what the
submission looks like (id column, target spelling, classes, sample columns) and
`assets.extra/sample_ids.parquet` the sample file's row order. No competition folder, training
data or config is read.

Example:
    >>> predict_file("submissions/titanic/adv/model", "data/titanic/test.csv", out="submission.csv")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from kit.competition import Competition, SubmissionFormat
from kit.errors import InputError
from kit.io import read_table
from kit.submission import make_submission, write_submission

# rows per call into the model: bounded memory on large test files
CHUNK = 65_536


class ExportedModel:
    """An exported advanced-track model, loaded with TensorFlow alone (no kit training code).

    Args:
        path: the SavedModel folder (`<run_dir>/model`).

    Attributes:
        info: the contents of `assets.extra/kit.json`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        info_path = self.path / "assets.extra" / "kit.json"
        if not (self.path / "saved_model.pb").is_file() or not info_path.is_file():
            raise InputError(
                f"'{self.path}' is not a model exported by `kit advanced` (no saved_model.pb and "
                f"assets.extra/kit.json). Pass a run folder's model/ folder. Received: model={self.path}"
            )
        self.info = json.loads(info_path.read_text())
        import tensorflow as tf

        self._model = tf.saved_model.load(str(self.path))

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Predictions for raw rows (a test file as read): (n, n_classes) probabilities or (n,) values."""
        from kit.data import raw_inputs

        parts = []
        for start in range(0, frame.height, CHUNK):
            inputs = raw_inputs(frame[start : start + CHUNK], self.info["inputs"])
            parts.append(np.asarray(self._model.serve(inputs), dtype=np.float64))
        if not parts:
            width = len(self.info["classes"]) if self.info["task"] != "regression" else 0
            return np.zeros((0, width)) if width else np.zeros(0)
        return np.concatenate(parts)

    def competition(self, test: pl.DataFrame, test_path: Path, *, log=print) -> Competition:
        """A `Competition` rebuilt from kit.json and the test rows, for the submission checks."""
        info = self.info
        dtype = _dtype(info["target_dtype"])
        train = pl.DataFrame({info["target"]: pl.Series(info["target"], info["target_values"]).cast(dtype)})
        sample = None
        if info["sample_ids"]:
            sample = pl.read_parquet(self.path / "assets.extra" / info["sample_ids"])
            id_ = info["id"]
            same = id_ in test.columns and set(sample[id_].cast(pl.String).to_list()) == set(
                test[id_].cast(pl.String).to_list()
            )
            if not same:
                log(
                    "note: the test rows' ids are not the competition's test ids; the submission "
                    "keeps the test file's order"
                )
                sample = None
        fmt = info["submission"]
        return Competition(
            name=info["competition"],
            root=self.path,
            train_path=self.path,
            test_path=test_path,
            sample_path=None,
            train=train,
            test=test,
            sample=sample,
            id=info["id"],
            target=info["target"],
            task=info["task"],
            classes=info["classes"],
            submission=SubmissionFormat(fmt["kind"], fmt["columns"], fmt["class_columns"]),
            metric=info["metric"],
            roles={c: v["role"] for c, v in info["inputs"].items()},
        )


def _dtype(name: str):
    """A polars dtype from its str(): "Int64", "String", "Boolean", "Float64", ..."""
    dtype = getattr(pl, name.split("(")[0], None)
    if dtype is None:
        raise InputError(f"kit.json names target dtype '{name}', which this polars lacks. Received: {name}")
    return dtype


def predict_file(
    model: str | Path, test: str | Path, *, out: str | Path = "submission.csv", log=print
) -> Path:
    """Write a validated submission for a raw test file with an exported model.

    Args:
        model: the exported model folder (`<run_dir>/model`).
        test: the test file (CSV or Parquet), raw as the competition gives it.
        out: the submission file to write (checked first; nothing is written when a check fails).

    Returns:
        The submission's path.

    Example:
        >>> predict_file("submissions/titanic/adv/model", "data/titanic/test.csv", out="sub.csv")
    """
    exported = ExportedModel(model)
    test_path = Path(test)
    frame = read_table(test_path, na=tuple(exported.info.get("na", ())))
    if exported.info["id"] and exported.info["id"] not in frame.columns:
        raise InputError(
            f"Test file '{test_path}' has no id column '{exported.info['id']}', which the "
            f"submission needs. Pass the competition's test file. Received: columns={frame.columns[:12]}"
        )
    pred = exported.predict(frame)
    comp = exported.competition(frame, test_path, log=log)
    submission = make_submission(comp, pred)
    path = write_submission(submission, comp, out)
    log(f"submission: {path} ({submission.height} rows, from {exported.info['folds']} fold model(s))")
    return path
