"""The advanced track: TFT-style features, tf.data, the custom loop on any strategy, one export.

Per fold: analyze the training fold (`kit.features.Features`), map every split through it in
the tf.data pipeline, train an MLP with `kit.training.Trainer` (early stopping on the
competition metric, checkpoints, TensorBoard), and predict. `kit.run.cross_validate` does the
folds, OOF, scores and the validated submission, as for the baseline. Then `export` writes all
fold models as ONE SavedModel under `<run_dir>/model/` that takes raw rows (strings, missing
values, unseen categories), derives the same columns as training did, and averages the folds
into kit's prediction form; `kit predict` turns it into a submission with nothing else.

Example:
    >>> from kit.tracks.advanced import run
    >>> comp, cfg = kit.api.load("data/titanic")
    >>> result = run(comp, cfg, out="submissions/titanic/adv")
    >>> kit.api.predict("submissions/titanic/adv/model", "data/titanic/test.csv", out="sub.csv")
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kit import kaggle, metrics, runtime
from kit.competition import Competition
from kit.config import TRACK_DEFAULTS, Config
from kit.data import TableSource, encode_together, to_tensors
from kit.features import Derive, Features, raw_spec
from kit.run import Fold, Run, cross_validate, new_run_id
from kit.tracks.baseline import TargetScaler, batch_size_for, to_prediction
from kit.training import History, Trainer

EXPORT_FORMAT = 1
INFO_FILE = "kit.json"
SAMPLE_IDS_FILE = "sample_ids.parquet"
# files that are not part of the TensorFlow graph live here, as TF Serving expects
EXTRA_DIR = "assets.extra"


def params_with_defaults(params: dict | None) -> dict:
    """The track's parameters: the defaults, overridden by what the config or a tuner set."""
    return {**TRACK_DEFAULTS["advanced"], **(params or {})}


@dataclass
class FoldModel:
    """What one fold leaves for the export: its analyzed features, model and target scaling."""

    features: Features
    model: keras.Model
    task: str
    scaler: TargetScaler | None
    history: History


def build_network(
    n_dense: int,
    cardinalities: list[int],
    *,
    task: str,
    n_classes: int,
    units: tuple[int, ...] = (512, 256),
    dropout: float = 0.1,
    embedding_size: int = 0,
    seed: int = 0,
) -> keras.Model:
    """The track's MLP: the dense features, plus every code column looked up in ONE table.

    `kit.models.build_mlp` gives each code column its own `Embedding`. Here every numeric column
    brings a quantile-bin code as well, so there may be hundreds of code columns; one table with
    a row offset per column is one gather and one sparse gradient per step instead of hundreds.

    Args:
        n_dense: width of the "numbers" input (`Features.n_dense_`).
        cardinalities: vocabulary size of each "codes" column (`Features.cardinalities_`).
        embedding_size: width of every code's embedding; 0 picks 8.

    Returns:
        An uncompiled model taking {"numbers": float32 (n, n_dense), "codes": int32 (n, k)}.
    """
    numbers = keras.Input((n_dense,), name="numbers")
    codes = keras.Input((len(cardinalities),), dtype="int32", name="codes")
    pieces = [numbers]
    if cardinalities:
        offsets = np.cumsum([0, *cardinalities[:-1]]).astype(np.int32)
        table = keras.layers.Embedding(
            int(sum(cardinalities)),
            embedding_size or 8,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name="embeddings",
        )
        pieces.append(keras.layers.Flatten()(table(keras.ops.add(codes, offsets))))
    x = keras.layers.Concatenate()(pieces) if len(pieces) > 1 else numbers
    for i, width in enumerate(units):
        x = keras.layers.Dense(
            width, kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"hidden_{i}"
        )(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("silu")(x)
        x = keras.layers.Dropout(dropout, seed=seed + i)(x)
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[task]
    # float32 output keeps the loss stable under a mixed-precision policy
    out = keras.layers.Dense(
        n_classes if task == "multiclass" else 1,
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + len(units)),
        dtype="float32",
        name="output",
    )(x)
    return keras.Model({"numbers": numbers, "codes": codes}, out)


def _graph_prediction(out, task: str, scaler: TargetScaler | None):
    """`to_prediction` in TensorFlow, in float64 like the in-memory path."""
    out = tf.cast(out, tf.float64)
    if task == "binary":
        p = out[:, 0]
        return tf.stack([1 - p, p], axis=1)
    if task == "multiclass":
        return out
    y = out[:, 0] * scaler.std_ + scaler.mean_
    return tf.math.expm1(y) if scaler.log_ else y


class AdvancedTrack:
    """`fit_predict_fold` for `kit.run.cross_validate` that keeps each fold's model.

    Args:
        runtime: from `kit.runtime.choose()`; default: chosen from the params on first use.
        work_dir: where each fold's checkpoints and TensorBoard logs go while the run is under
            way; a rerun with the same folder resumes. None: no checkpoints, no logs.
        log: where progress lines go.

    Attributes:
        folds_: a `FoldModel` per finished fold, in fold order.
    """

    def __init__(
        self, *, runtime: runtime.Runtime | None = None, work_dir: str | Path | None = None, log=print
    ):
        self.runtime = runtime
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.log = log
        self.folds_: list[FoldModel] = []

    def __call__(self, fold: Fold, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """Train on one fold; return (validation predictions, test predictions)."""
        params = params_with_defaults(params)
        if self.runtime is None:
            self.runtime = runtime.choose(strategy=params["strategy"], precision=params["precision"])
        rt = self.runtime
        metric = metrics.get(fold.metric)

        # analyze: full passes over the training fold only; the validation fold would leak
        features = Features(
            fold.roles,
            n_bins=params["n_bins"],
            max_tokens=params["max_tokens"],
            min_frequency=params["min_frequency"],
        ).analyze(fold.train)
        scaler, y_train = None, fold.y_train
        if fold.task == "regression":
            scaler = TargetScaler().fit(fold.y_train, log=metric.log_target)
            y_train = scaler.transform(fold.y_train)
        # map: in the tf.data pipeline on the host, one pass over all three splits
        train_inputs, val_inputs, test_inputs = encode_together(
            [to_tensors(fold.train), to_tensors(fold.val), to_tensors(fold.test)], features
        )
        source = TableSource(train_inputs, y_train)

        per_replica = params["batch_size"] or max(8, batch_size_for(len(y_train)) // rt.replicas)
        fold_dir = self.work_dir / f"fold_{fold.index}" if self.work_dir is not None else None
        trainer = Trainer(
            lambda: build_network(
                features.n_dense_,
                features.cardinalities_,
                task=fold.task,
                n_classes=fold.n_classes,
                units=tuple(params["units"]),
                dropout=params["dropout"],
                embedding_size=params["embedding_size"],
                seed=fold.seed,
            ),
            task=fold.task,
            runtime=rt,
            metric=fold.metric,
            learning_rate=params["learning_rate"],
            weight_decay=params["weight_decay"],
            warmup=params["warmup"],
            clipnorm=params["clipnorm"],
            ema=params["ema"],
            jit_compile=params["jit_compile"],
            steps_per_execution=params["steps_per_execution"],
            checkpoint_dir=fold_dir / "checkpoints" if fold_dir else None,
            checkpoint_seconds=params["checkpoint_seconds"],
            log_dir=self.work_dir / "tensorboard" / f"fold_{fold.index}" if self.work_dir else None,
            seed=fold.seed,
        )

        def validate() -> float:
            return metric(fold.y_val, to_prediction(trainer.predict(val_inputs), fold.task, scaler))

        history = trainer.fit(
            source,
            epochs=params["epochs"],
            batch_size=per_replica,
            validate=validate,
            direction=metric.direction,
            patience=params["patience"],
            callbacks=fold.callbacks,
            log=self.log,
        )
        self.log(
            f"    batch {rt.global_batch_size(per_replica)} ({per_replica} x {rt.replicas} replicas), "
            f"best epoch {history.best_epoch + 1} of {len(history.loss) + history.resumed_at}"
        )
        self.folds_.append(FoldModel(features, trainer.model, fold.task, scaler, history))
        val_pred = to_prediction(trainer.predict(val_inputs), fold.task, scaler)
        test_pred = to_prediction(trainer.predict(test_inputs), fold.task, scaler)
        return val_pred, test_pred


def fit_predict_fold(fold: Fold, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Train the advanced track on one fold; (validation predictions, test predictions).

    No checkpoints and no export: use `run` (or `kit advanced`) for those.
    """
    return AdvancedTrack()(fold, params)


# ---------------------------------------------------------------------------------------------
# export: every fold in one SavedModel that takes raw rows


def _input_name(column: str, taken: set[str]) -> str:
    # signature argument names must be identifiers; the dict keys keep the real column names
    name = re.sub(r"\W", "_", column) or "column"
    name = name if not name[0].isdigit() else f"c_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def export(
    folds: list[FoldModel],
    comp: Competition,
    path: str | Path,
    *,
    na: list[str] = (),
    score: float | None = None,
) -> Path:
    """Write the fold models as one SavedModel that takes raw rows and averages the folds.

    The endpoint `serve` takes a dict of raw columns (float64 with NaN for missing, or strings
    with "" for missing; see `kit.data.raw_inputs`) and returns kit's prediction form:
    (n, n_classes) probabilities or (n,) values. Beside the graph, `assets.extra/kit.json`
    holds what a submission needs (id column, target, classes, sample columns, metric) and
    `assets.extra/sample_ids.parquet` the sample file's row order.

    Args:
        folds: `AdvancedTrack.folds_`.
        comp: the competition the folds were trained on.
        path: the SavedModel folder to write (replaced as a whole).
        na: the extra missing-value tokens the test file is read with.
        score: the CV score, recorded in kit.json.

    Returns:
        The path.
    """
    path = Path(path)
    spec = raw_spec(comp.roles, comp.train, comp.parts)
    derive = Derive(spec)
    taken: set[str] = set()
    signature = {
        c: tf.TensorSpec(
            [None], tf.string if info["kind"] == "string" else tf.float64, name=_input_name(c, taken)
        )
        for c, info in spec.items()
    }
    archive = keras.export.ExportArchive()
    for fm in folds:
        archive.track(fm.features)
        archive.track(fm.model)

    def serve(inputs):
        derived = derive(inputs)
        preds = [
            _graph_prediction(fm.model(fm.features(derived), training=False), fm.task, fm.scaler)
            for fm in folds
        ]
        return tf.add_n(preds) / len(preds)

    archive.add_endpoint("serve", serve, input_signature=[signature])
    staging = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None)
    )
    try:
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        has_sample = comp.sample is not None and comp.id is not None and comp.id in comp.sample.columns
        if has_sample:
            comp.sample.select(comp.id).write_parquet(extra / SAMPLE_IDS_FILE)
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
            },
            "metric": comp.metric,
            "na": list(na),
            "folds": len(folds),
            "cv_score": score,
            "sample_ids": SAMPLE_IDS_FILE if has_sample else None,
        }
        (extra / INFO_FILE).write_text(json.dumps(info, indent=2, default=_json_default))
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------------------------
# the whole track: runtime, folds, run folder, export


def run(
    comp: Competition,
    cfg: Config,
    *,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    fold_callbacks: Callable[[int], list] | None = None,
) -> Run:
    """Cross-validate the advanced track, write the run folder and export `<run_dir>/model/`.

    While it runs, checkpoints and TensorBoard logs sit in a hidden folder beside the run folder
    (`.<run-name>.work/`); run it again with the same `out` after a crash or a kill and every
    fold resumes from its last checkpoint. At the end TensorBoard logs move to
    `<run_dir>/tensorboard/` and the checkpoints are removed.

    Args:
        comp, cfg: from `kit.api.load`; `cfg.advanced` overrides the track's defaults.
        out: run folder; default `submissions/<competition>/<run-id>/`.
        progress: bars over folds and epochs (None: where a terminal or notebook shows them).
        fold_callbacks: fold index -> Keras callbacks called after every epoch (e.g. pruning).

    Returns:
        The `Run` (its `run_dir` holds `model/` as well).
    """
    params = params_with_defaults(cfg.advanced)
    rt = runtime.choose(strategy=params["strategy"], precision=params["precision"])
    log(rt.describe())
    run_dir = Path(out) if out is not None else kaggle.submissions_root() / comp.name / new_run_id("advanced")
    scratch = None
    if not rt.is_chief:
        # every worker trains; only the chief keeps files
        scratch = Path(tempfile.mkdtemp(prefix="kit-worker-"))
        run_dir = scratch / "run"
    work = run_dir.parent / f".{run_dir.name}.work"
    _check_work_dir(work, params, log)
    track = AdvancedTrack(runtime=rt, work_dir=work, log=log)
    try:
        result = cross_validate(
            comp,
            cfg,
            track,
            track="advanced",
            params=params,
            out=run_dir,
            log=log,
            progress=progress,
            fold_callbacks=fold_callbacks,
        )
        if rt.is_chief:
            export(track.folds_, comp, run_dir / "model", na=list(cfg.na), score=result.score)
            log(f"model: {run_dir / 'model'} (all folds, takes raw rows; `kit predict` uses it)")
            if (work / "tensorboard").is_dir():
                shutil.move(str(work / "tensorboard"), str(run_dir / "tensorboard"))
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def _check_work_dir(work: Path, params: dict, log) -> None:
    """Keep checkpoints only when they come from the same parameters: others would not load."""
    saved = work / "params.json"
    current = json.dumps(params, sort_keys=True)
    if work.is_dir() and (not saved.exists() or saved.read_text() != current):
        log(f"note: {work} holds checkpoints of other parameters; starting over")
        shutil.rmtree(work)
    elif work.is_dir():
        log(f"note: resuming from the checkpoints in {work}")
    work.mkdir(parents=True, exist_ok=True)
    saved.write_text(current)
