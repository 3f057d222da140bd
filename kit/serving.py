"""The exported model: fold models written as one SavedModel that takes raw rows (`export`), and
`kit predict MODEL TEST_FILE --out SUB.csv`, a validated submission from that model alone.

The exported model (`<run_dir>/model/`, written by the advanced track) holds the whole path from
raw rows to kit's prediction form; `assets.extra/kit.json` beside the graph says what the
submission looks like (id column, target spelling, classes, sample columns) and
`assets.extra/sample_ids.parquet` the sample file's row order. No competition folder, training
data or config is read to serve it.

Example:
    >>> predict_file("submissions/titanic/adv/model", "data/titanic/test.csv", out="submission.csv")
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kit import boundary, metrics
from kit.columns import match_ids
from kit.competition import Competition, find_files
from kit.errors import InputError
from kit.io import check_out_file, publish_dir, read_table, stage_dir, write_atomic
from kit.submission import make_submission, write_submission
from kit.task import SubmissionFormat

EXPORT_FORMAT = 1
INFO_FILE = "kit.json"
SAMPLE_IDS_FILE = "sample_ids.parquet"
# files that are not part of the TensorFlow graph live here, as TF Serving expects
EXTRA_DIR = "assets.extra"

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
        self.info = read_info(self.path)
        import tensorflow as tf

        try:
            self._model = tf.saved_model.load(str(self.path))
        except Exception as err:  # a damaged graph fails in protobuf, TensorFlow or the OS
            raise InputError(
                f"'{self.path}' could not be loaded as a SavedModel ({boundary.one_line(err)[:160]}): it "
                f"is damaged or incomplete. Export it again with `kit advanced`. "
                f"Received: error={type(err).__name__}"
            ) from None

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
            sample = pl.read_parquet(self.path / EXTRA_DIR / info["sample_ids"])
            id_ = info["id"]
            if id_ not in test.columns or match_ids(test[id_], sample[id_]) is None:
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
            submission=SubmissionFormat(
                fmt["kind"],
                fmt["columns"],
                fmt["class_columns"],
                fmt.get("value_column", info["target"]),
                fmt.get("k", 0),
            ),
            metric=info["metric"],
            roles={c: v["role"] for c, v in info["inputs"].items()},
        )


def read_info(path: Path) -> dict:
    """An exported model's kit.json, checked; no TensorFlow needed."""
    info_path = path / EXTRA_DIR / INFO_FILE
    if not path.exists():
        raise InputError(
            f"Model folder '{path}' does not exist. Pass the model/ folder of a run of `kit advanced` "
            f"(submissions/<competition>/<run-id>/model). Received: model={path}"
        )
    if (path / "model" / "saved_model.pb").is_file():
        raise InputError(
            f"'{path}' is a run folder; the exported model is its model/ folder. Pass "
            f"'{path / 'model'}'. Received: model={path}"
        )
    if not (path / "saved_model.pb").is_file() or not info_path.is_file():
        raise InputError(
            f"'{path}' is not a model exported by `kit advanced` (no saved_model.pb and "
            f"assets.extra/kit.json). Pass a run folder's model/ folder. Received: model={path}"
        )
    try:
        info = json.loads(info_path.read_text())
        needed = ("inputs", "id", "target", "task", "classes", "submission", "folds")
        missing = [k for k in needed if k not in info]
    except (OSError, ValueError, TypeError) as err:
        info, missing = None, [f"unreadable: {type(err).__name__}"]
    if not isinstance(info, dict) or missing:
        raise InputError(
            f"'{info_path}' is damaged ({', '.join(missing) or 'not a JSON object'}), so the model "
            f"cannot be served. Export it again with `kit advanced`. Received: missing={missing}"
        )
    return info


# ---------------------------------------------------------------------------------------------
# export: fold models in one SavedModel that takes raw rows


@dataclass
class FoldModel:
    """What one fold leaves for the export: its analyzed features (the map), network and target
    scaling (`kit.targets.TargetScaler`, regression only)."""

    features: Any
    model: Any
    task: str
    scaler: Any = None


def _input_name(column: str, taken: set[str]) -> str:
    # signature argument names must be identifiers; the dict keys keep the real column names
    # and TensorFlow's node names: ASCII, starting with a letter ("âge years" -> "c__ge_years").
    # TensorFlow lowercases them in the signature, so "A B" and "a b" must differ in more than case
    name = re.sub(r"[^A-Za-z0-9_]", "_", column) or "column"
    name = name if name[0].isascii() and name[0].isalpha() else f"c_{name}"
    while name.lower() in taken:
        name += "_"
    taken.add(name.lower())
    return name


def export(
    folds: list[FoldModel],
    comp: Competition,
    path: str | Path,
    *,
    na: list[str] = (),
    score: float | None = None,
    weights: list[float] | None = None,
    threshold: float | None = None,
) -> Path:
    """Write the fold models as one SavedModel that takes raw rows and averages the folds.

    The endpoint `serve` takes a dict of raw columns (float64 with NaN for missing, or strings
    with "" for missing; see `kit.data.raw_inputs`) and returns kit's prediction form:
    (n, n_classes) probabilities or (n,) values. Beside the graph, `assets.extra/kit.json`
    holds what a submission needs (id column, target, classes, sample columns, metric) and
    `assets.extra/sample_ids.parquet` the sample file's row order.

    Args:
        folds: one `FoldModel` per fold.
        comp: the competition the folds were trained on.
        path: the SavedModel folder to write (staged beside it, then put in place whole).
        na: the extra missing-value tokens the test file is read with.
        score: the CV score, recorded in kit.json.
        weights: each fold model's share of the average, as the run weighed its test predictions
            (`kit.split.fold_weights`); None: equal.
        threshold: the run's cut on P(class 1) for a binary task's labels, recorded in kit.json
            for the submissions `kit predict` writes; the graph returns the probabilities.

    Returns:
        The path.
    """
    import keras
    import tensorflow as tf

    from kit.derive import derive_graph, raw_spec
    from kit.targets import graph_prediction

    path = Path(path)
    if path.exists() and not (path / EXTRA_DIR / INFO_FILE).is_file():
        raise InputError(
            f"'{path}' exists and is not a model kit exported; kit does not replace it. Pass a new "
            f"folder. Received: path={path}"
        )
    spec = raw_spec(comp.roles, comp.train, comp.parts)
    taken: set[str] = set()
    signature = {
        c: tf.TensorSpec(
            [None], tf.string if info["kind"] == "string" else tf.float64, name=_input_name(c, taken)
        )
        for c, info in spec.items()
    }
    shares = [1.0 / len(folds)] * len(folds) if weights is None else [float(w) for w in weights]
    archive = keras.export.ExportArchive()
    for fm in folds:
        archive.track(fm.features)
        archive.track(fm.model)

    def serve(inputs):
        derived = derive_graph(inputs, spec)
        preds = [
            graph_prediction(fm.model(fm.features(derived), training=False), fm.task, fm.scaler)
            for fm in folds
        ]
        return tf.add_n([w * p for w, p in zip(shares, preds, strict=True)])

    archive.add_endpoint("serve", serve, input_signature=[signature])
    staging = stage_dir(path)
    try:
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        has_sample = comp.sample is not None and comp.id is not None and comp.id in comp.sample.columns
        if has_sample:
            # as the sample file spells them, which the submission writes
            write_atomic(extra / SAMPLE_IDS_FILE, comp.sample_ids().alias(comp.id).to_frame())
        y = comp.train[comp.target]
        info = {
            "format": EXPORT_FORMAT,
            "competition": comp.name,
            "inputs": spec,
            "id": comp.id,
            "id_dtype": str(comp.test[comp.id].dtype) if comp.id else None,
            "target": comp.target,
            "target_dtype": str(y.dtype),
            # what `make_submission` reads from train: the classes' spelling, or the rating range
            "target_values": comp.classes if comp.task != "regression" else [y.min(), y.max()],
            "task": comp.task,
            "classes": comp.classes,
            "submission": {
                "kind": comp.submission.kind,
                "columns": comp.submission.columns,
                "class_columns": comp.submission.class_columns,
                "value_column": comp.submission.value_column,
                "k": comp.submission.k,
            },
            "metric": comp.metric,
            "na": list(na),
            "folds": len(folds),
            "fold_weights": shares,
            "cv_score": score,
            "threshold": threshold,
            "sample_ids": SAMPLE_IDS_FILE if has_sample else None,
            "seen": seen_values(comp.train, spec),
        }
        write_atomic(extra / INFO_FILE, info)
        publish_dir(staging, path, may_replace=lambda d: (d / EXTRA_DIR / INFO_FILE).is_file())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def export_blend(
    model_dirs: list[Path], blend, path: str | Path, *, metric, score: float, threshold: float | None = None
) -> Path:
    """One SavedModel of a blend of exported models: raw rows in, the blend's prediction out.

    Each member's `serve` runs on the same raw columns; their predictions are combined as the
    blend was fit (`kit.ensemble.fit_blend`): weighted in the metric's space (log1p for rmsle), or
    through the level-2 model's coefficients. Served by `kit predict` like any other.
    """
    import tensorflow as tf

    path = Path(path)
    members = [tf.saved_model.load(str(d)) for d in model_dirs]
    infos = [json.loads((Path(d) / EXTRA_DIR / INFO_FILE).read_text()) for d in model_dirs]
    specs = [m.serve.concrete_functions[0].structured_input_signature[0][0] for m in members]
    signature = {name: spec for s in specs for name, spec in s.items()}
    log_space = metric.log_target
    stack = blend.stack

    class BlendModel(tf.Module):
        def __init__(self):
            super().__init__()
            self.members = members  # tracked: their variables are saved with the blend

        @tf.function(input_signature=[signature])
        def serve(self, inputs):
            preds = [
                m.serve({k: inputs[k] for k in spec}) for m, spec in zip(self.members, specs, strict=True)
            ]
            if log_space:
                preds = [tf.math.log1p(tf.maximum(p, 0.0)) for p in preds]
            if stack is None:
                out = tf.add_n([float(w) * p for w, p in zip(blend.weights, preds, strict=True) if w > 0])
            else:
                out = _stack_graph(stack, preds)
            return tf.math.expm1(out) if log_space else out

    staging = stage_dir(path)
    try:
        module = BlendModel()
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
        extra = staging / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        info = {
            **infos[0],
            "folds": sum(i["folds"] for i in infos),
            "cv_score": score,
            "threshold": threshold,
            "blend": blend.method,
        }
        if infos[0].get("sample_ids"):
            shutil.copyfile(
                Path(model_dirs[0]) / EXTRA_DIR / infos[0]["sample_ids"], extra / infos[0]["sample_ids"]
            )
        write_atomic(extra / INFO_FILE, info)
        publish_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _stack_graph(stack, preds):
    """The level-2 model of a blend (`kit.ensemble.Stack`) in TensorFlow ops, float64."""
    import tensorflow as tf

    model = stack.model_
    if stack.task == "regression":
        x = tf.stack([tf.reshape(p, [-1]) for p in preds], axis=1)
        return tf.linalg.matvec(x, tf.constant(model.coef_, tf.float64)) + float(model.intercept_)
    p = tf.clip_by_value(tf.concat(preds, axis=1), 1e-6, 1 - 1e-6)
    logits = tf.matmul(tf.math.log(p / (1 - p)), tf.constant(model.coef_.T, tf.float64)) + model.intercept_
    n_classes = preds[0].shape[1]
    if logits.shape[1] == 1:  # binary: scikit-learn keeps one column of coefficients
        positive = tf.sigmoid(logits[:, 0])
        proba = tf.stack([1 - positive, positive], axis=1)
    else:
        proba = tf.nn.softmax(logits, axis=1)
    # the classes the level-2 model saw, in their places among all the classes
    placement = np.zeros((len(model.classes_), n_classes))
    placement[np.arange(len(model.classes_)), model.classes_] = 1.0
    return tf.matmul(proba, tf.constant(placement, tf.float64))


def _dtype(name: str):
    """A polars dtype from its str(): "Int64", "String", "Boolean", "Float64", ..."""
    dtype = getattr(pl, name.split("(")[0], None)
    if dtype is None:
        raise InputError(f"kit.json names target dtype '{name}', which this polars lacks. Received: {name}")
    return dtype


def _check_replaceable(out: Path, model: Path, columns: list[str]) -> None:
    """An existing `out` is replaced only where it is a submission of the model's competition, as
    kit writes them (a CSV or Parquet file of the submission's columns) and not one of the files a
    competition folder gives (its sample file has those columns too), nor inside the model."""
    if not out.is_file():
        return
    if out.resolve().is_relative_to(model.resolve()):
        raise InputError(
            f"--out '{out}' is inside the model folder, which the submission would damage. Pass "
            f"another --out. Received: out={out}"
        )
    try:
        competition_files = find_files(out.parent)
    except InputError:
        competition_files = ()
    if any(p is not None and p.resolve() == out.resolve() for p in competition_files):
        raise InputError(
            f"--out '{out}' is one of the competition's own files (its train, test or sample file), "
            f"which kit never replaces. Pass an --out outside that folder, such as submission.csv "
            f"in the current one. Received: out={out}"
        )
    if _columns_of(out) != columns:
        raise InputError(
            f"--out '{out}' exists and is not a submission of this competition (its columns are not "
            f"{', '.join(columns)}); kit replaces only a submission it could have written. Pass "
            f"another --out, or move the file. Received: out={out}"
        )


def _columns_of(path: Path) -> list[str] | None:
    """The column names of a CSV's first line or a Parquet file's schema; None where the file is neither."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return list(pl.read_parquet_schema(path))
        with path.open("rb") as f:
            first = f.read(65536).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig")
        return next(csv.reader([first]), None)
    except (OSError, UnicodeDecodeError, pl.exceptions.PolarsError):
        return None


def _test_rows(test, *, na: tuple[str, ...]) -> tuple[Path, pl.DataFrame]:
    """The test rows and the name messages give them: a file read as training read its files, or a
    DataFrame taken as it is (a pandas one converted)."""
    if isinstance(test, str | Path):
        return Path(test), read_table(test, na=na)
    if isinstance(test, pl.DataFrame):
        return Path("<DataFrame>"), test
    if type(test).__module__.startswith("pandas"):
        try:
            return Path("<DataFrame>"), pl.from_pandas(test)
        except Exception as err:  # noqa: BLE001 (pandas' and pyarrow's errors vary)
            raise InputError(
                f"The pandas DataFrame could not be converted to polars ({boundary.one_line(err)}). "
                f"Pass the test file's path instead. Received: type={type(test).__name__}"
            ) from None
    raise InputError(
        f"test must be a CSV or Parquet file's path or a DataFrame. Pass the competition's test file. "
        f"Received: type={type(test).__name__}"
    )


# a categorical column of at most this many values in train keeps them in kit.json, so that
# `kit predict` can say when a test file spells them otherwise
SEEN_UP_TO = 1000
# the share of a column's test values never seen in training above which `kit predict` says so
# (a few rare new values are usual in a competition's own test file)
UNSEEN_NOTE_SHARE = 0.1


def seen_values(train: pl.DataFrame, spec: dict[str, dict]) -> dict[str, list[str]]:
    """The values of the model's categorical and boolean text inputs in train, where they are few."""
    seen = {}
    for column, info in spec.items():
        if info["kind"] == "string" and info["role"] in ("categorical", "boolean"):
            values = train[column].cast(pl.String).str.strip_chars().drop_nulls().unique()
            if values.len() <= SEEN_UP_TO:
                seen[column] = sorted(values.to_list())
    return seen


def _unreadable_values(
    frame: pl.DataFrame, inputs: dict[str, dict], seen: dict[str, list[str]] | None = None
) -> list[str]:
    """What the model will take as missing or as a value it never saw though the test file has a
    value there: text in a numeric column ("0.5x"), a date in another format than training's, a
    column empty in every row, categories spelled otherwise than in train ("MALE" for "male").
    Said, since the predictions change with it."""
    notes = []
    for column, spec in inputs.items():
        s = frame[column]
        text = s.cast(pl.String).str.strip_chars()
        given = text.is_not_null() & (text != "")
        present = text.filter(given)
        if present.len() == 0 and s.len() > 1:
            notes.append(
                f"'{column}' is empty in every one of the {s.len()} test rows: the model takes it as "
                f"missing throughout"
            )
            continue
        if seen and column in seen and present.len():
            unseen = present.filter(~present.is_in(seen[column]))
            if unseen.len() > UNSEEN_NOTE_SHARE * present.len():
                notes.append(
                    f"{unseen.len()} of {present.len()} value(s) of '{column}' never appear in training "
                    f"(such as {unseen[0]!r}; it had {', '.join(map(repr, seen[column][:5]))}"
                    f"{', ...' if len(seen[column]) > 5 else ''}): the model takes them as an unseen value"
                )
        if s.dtype != pl.String:
            continue
        if spec["kind"] in ("float", "int"):
            bad = given & text.cast(pl.Float64, strict=False).is_null()
            what = "numbers"
        elif spec["role"] == "datetime":
            # the graph reads "YYYY-MM-DD[ HH:MM[:SS]]", as training's files wrote them
            bad = given & ~text.str.contains(r"^\d{4}-\d{1,2}-\d{1,2}")
            what = "dates as training read them (year first)"
        else:
            continue
        if bad.any():
            shown = s.filter(bad)
            notes.append(
                f"{int(bad.sum())} of {s.len()} value(s) of '{column}' are not {what} (such as "
                f"{shown[0]!r}): the model takes them as missing"
            )
    return notes


def predict_file(
    model: str | Path, test: str | Path | Any, *, out: str | Path = "submission.csv", log=print
) -> Path:
    """Write a validated submission for a raw test file with an exported model.

    Args:
        model: the exported model folder (`<run_dir>/model`).
        test: the test file (CSV or Parquet), raw as the competition gives it, or its rows already
            read (a polars or pandas DataFrame).
        out: the submission file to write: a submission of the competition there (the same
            columns) is replaced, naming it is the request; any other file, a competition's own
            files, the model's, and a folder are refused. Checked first; nothing is written when a
            check fails.

    Returns:
        The submission's path.

    Example:
        >>> predict_file("submissions/titanic/adv/model", "data/titanic/test.csv", out="sub.csv")
    """
    # everything that can be checked without TensorFlow first: its import takes seconds
    out = check_out_file(out)
    info = read_info(Path(model))
    _check_replaceable(out, Path(model), info["submission"]["columns"])
    test_path, frame = _test_rows(test, na=tuple(info.get("na", ())))
    if frame.height == 0:
        raise InputError(
            f"Test file '{test_path}' has no rows. Pass the competition's test file. Received: rows=0"
        )
    if info["id"] and info["id"] in frame.columns and frame[info["id"]].n_unique() < frame.height:
        repeated = frame[info["id"]].filter(frame[info["id"]].is_duplicated())
        raise InputError(
            f"Test file '{test_path}' has {repeated.n_unique()} id(s) in '{info['id']}' more than once (such "
            f"as {repeated[0]!r}); a submission has one row per id. Drop the repeated rows. "
            f"Received: rows={frame.height}, ids={frame[info['id']].n_unique()}"
        )
    if info["id"] and info["id"] not in frame.columns:
        raise InputError(
            f"Test file '{test_path}' has no id column '{info['id']}', which the "
            f"submission needs. Pass the competition's test file. Received: columns={frame.columns[:12]}"
        )
    lacking = [c for c in info["inputs"] if c not in frame.columns]
    if lacking:
        raise InputError(
            f"Test file '{test_path}' lacks {len(lacking)} column(s) the model was trained on: "
            f"{', '.join(lacking[:8])}{' and more' if len(lacking) > 8 else ''}. Pass "
            f"the competition's test file. Received: columns={frame.columns[:12]}"
        )
    for note in _unreadable_values(frame, info["inputs"], info.get("seen")):
        log(f"note: {note}")
    exported = ExportedModel(model)
    pred = exported.predict(frame)
    comp = exported.competition(frame, test_path, log=log)
    if comp.metric == "log_loss":  # as the run's own submission was written
        pred = metrics.floor_probabilities(pred)
    submission = make_submission(comp, pred, threshold=exported.info.get("threshold"))
    path = write_submission(submission, comp, out)
    log(f"submission: {path} ({submission.height} rows, from {exported.info['folds']} fold model(s))")
    return path
