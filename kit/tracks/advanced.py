"""The advanced track: TFT-style features, tf.data, the custom loop on any strategy, one export.

Per fold: analyze the training fold (`kit.features.Features`), map every split through it in
the tf.data pipeline, train an MLP with `kit.training.Trainer` (early stopping on the
competition metric, checkpoints, TensorBoard), and predict. `kit.run.cross_validate` does the
folds, OOF, scores and the validated submission, as for every track. Before the run folder is
published, `write_artifacts` exports all fold models as ONE SavedModel under `model/` that takes
raw rows (strings, missing values, unseen categories), derives the same columns as training did,
and averages the folds into kit's prediction form (`kit predict` needs nothing else); TensorBoard
logs go to `tensorboard/`.

A training fold above `stream_above_mib`, as read or as mapped to the network's inputs (or every
fold, with `stream = "on"` or `--stream`), is written once to Parquet shards in the work folder and streamed back through `kit.data.ParquetSource`.

While it runs, checkpoints sit in a hidden folder beside the run folder (`.<run-name>.work/`):
run it again with the same `out` after a crash or a kill and every fold resumes.

Example:
    >>> run = kit.advanced("data/titanic", out="submissions/titanic/adv")
    >>> kit.predict("submissions/titanic/adv/model", "data/titanic/test.csv", out="sub.csv")
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from kit import metrics
from kit.run import Fold, FoldResult
from kit.runtime import PRECISIONS, STRATEGIES
from kit.tracks.baseline import LIMITS as BASELINE_LIMITS

# a refit on all rows (`kit.run`) trains to the last fold's best epoch, as the baseline's does
from kit.tracks.baseline import refit_params  # noqa: F401 - the track's hook

# kit.features.SCALINGS and BIN_ENCODINGS, without importing TensorFlow
FEATURE_SCALINGS = ("robust", "standard")
BIN_ENCODINGS = ("linear", "embedding")

DESCRIPTION = "custom TensorFlow loop on TPU/GPUs/CPU: CV score, validated submission, exported model"

DEFAULTS = {
    "units": [256, 256],
    "dropout": 0.1,
    "activation": "relu",
    "batch_norm": False,
    # 1e-3 from CV on the shared six and the synthetic competitions: better than 2e-3 on 6 of 9
    # (titanic accuracy 0.843 -> 0.846, bike-sharing rmsle 0.380 -> 0.377, house-prices 0.1214 ->
    # 0.1201, interaction AUC 0.660 -> 0.662), worse on 3 by 0.0003 or less; 5e-4 ranked alike but
    # lost bike-sharing (0.383) and took more epochs
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "beta_2": 0.999,
    "label_smoothing": 0.1,  # for metrics scored on labels (accuracy, f1, qwk); none for log_loss, AUC
    "batch_size": 0,  # per replica; 0: chosen from the number of rows
    "epochs": 100,  # the cosine schedule spans them; early stopping usually ends sooner
    "patience": 16,
    "max_examples": 4_000_000,  # training rows seen per fold at most: big data gets fewer epochs
    "warmup": 0.05,  # fraction of all steps
    "clipnorm": 1.0,  # global gradient norm; 0: off
    "ema": 0.99,  # momentum of the weights' moving average (per step); 0: off
    "scaling": "robust",
    # log1p of non-negative numeric columns skewed beyond this, before scaling (0: off); 1.0 from CV
    # on the shared six and the synthetic competitions (mean rank 1.44 against 1.56 for off)
    "log_skew": 1.0,
    "n_bins": 16,  # quantile bins per numeric column
    # "linear" (piecewise-linear values) or "embedding" (of the bin's index); linear from CV on the
    # shared six and the synthetic competitions: better on 7 of 9 (house-prices rmsle 0.1252 ->
    # 0.1220, spaceship accuracy 0.809 -> 0.814, smooth rmse 0.624 -> 0.599), worse on tps-aug-2022
    # (AUC 0.586 -> 0.581) and on bike-sharing until a date's parts lost their bins (rmsle 0.421
    # embedded, 0.415 linear without them)
    "bin_encoding": "linear",
    "numeric_embedding": "periodic",
    "n_frequencies": 16,
    # the periodic embedding's starting frequencies' spread; RealMLP's 0.1, from CV on the shared
    # six and the synthetic competitions with the value beside it: better than 0.05 on 6 of 9
    # (titanic accuracy 0.8395 -> 0.8429, tps-aug-2022 AUC 0.582 -> 0.584), worse on bike-sharing
    # (rmsle 0.372 -> 0.380) and cirrhosis; 0.2 ranked best but lost bike-sharing (0.421), whose
    # later dates lie beyond the training range
    "frequency_scale": 0.1,
    "numeric_width": 8,
    # each scaled value beside its periodic embedding (RealMLP's DenseNet-style connection), from
    # CV on the shared six and the synthetic competitions: better on 5 (bike-sharing rmsle 0.391 ->
    # 0.372, house-prices 0.1231 -> 0.1222, smooth rmse 0.589 -> 0.586, tps-aug-2022, cirrhosis),
    # worse on 4 by less (spaceship accuracy 0.8135 -> 0.8118, titanic by one passenger, ...)
    "numeric_value": True,
    "k": 4,  # ensemble members in the one network (TabM-mini)
    # a learned scale per input column ahead of the members' own (RealMLP's scaling layer), learning
    # at this times the rate (0: none); RealMLP's 6, from CV on the shared six and the synthetic
    # competitions: better on 5 (bike-sharing rmsle 0.415 -> 0.391, smooth rmse 0.599 -> 0.589),
    # worse on 3 (house-prices rmsle 0.1220 -> 0.1231, titanic accuracy 0.844 -> 0.841); mean rank
    # 2.00 against 2.50 without, 2.61 for 12 and 2.89 for 3
    "front_scale": 6.0,
    "min_frequency": 2,  # rarer strings share the out-of-vocabulary index
    "max_tokens": 10000,
    "embedding_size": 0,  # 0: 8 for every code
    "strategy": "auto",  # auto, default, mirrored, multi_worker, tpu
    "precision": "auto",  # auto (bfloat16 on TPU, float16 on GPU, float32 on CPU), float32, ...
    "jit_compile": "auto",  # XLA: auto (on for GPUs), on, off
    "steps_per_execution": 0,  # train steps per call into the graph; 0: a whole epoch
    "checkpoint_seconds": 30.0,  # at most one checkpoint per this long, plus the last; 0: every epoch
    "stream": "auto",  # train from Parquet shards through tf.data: on, off, auto (above stream_above_mib)
    # a training fold larger than this in memory, as read (polars' estimate) or as mapped, streams
    "stream_above_mib": 2048.0,
}

# beyond kit.tracks.COMMON_LIMITS (units, dropout, learning_rate, ...)
LIMITS = {
    **BASELINE_LIMITS,
    "clipnorm": "[0, inf)",
    "ema": "[0, 1)",
    "scaling": FEATURE_SCALINGS,
    "n_bins": "[0, 1024]",
    "bin_encoding": BIN_ENCODINGS,
    "min_frequency": "[1, inf)",
    "max_tokens": "[1, inf)",
    "max_examples": "[1, inf)",
    "steps_per_execution": "[0, inf)",
    "checkpoint_seconds": "[0, inf)",
    "stream": ("auto", "on", "off"),
    "stream_above_mib": "[0, inf)",
    "strategy": STRATEGIES,
    "precision": PRECISIONS,
    "jit_compile": ("auto", "on", "off"),
}

SEARCH_SPACE = {
    "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
    "units": {"choices": [[256, 256], [512, 256], [512, 512], [256, 256, 256]]},
    "dropout": {"low": 0.0, "high": 0.4},
    "batch_size": {"choices": [0, 128, 256, 512, 1024]},  # per replica; 0: from the number of rows
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    # numeric columns go in as quantile bins and periodic embeddings
    "n_bins": {"choices": [0, 8, 16, 32]},
    "bin_encoding": {"choices": list(BIN_ENCODINGS)},
    "log_skew": {"choices": [0.0, 1.0, 2.0]},
    "frequency_scale": {"low": 0.01, "high": 1.0, "log": True},
    "k": {"choices": [1, 4, 8, 16]},
    "warmup": {"low": 0.0, "high": 0.1},
    "ema": {"choices": [0.0, 0.99, 0.999]},
    "front_scale": {"choices": [0.0, 3.0, 6.0, 12.0]},
    "numeric_value": {"choices": [False, True]},
}


@functools.cache
def _runtime(strategy: str, precision: str):
    """One runtime per process and setting: TensorFlow sets up a TPU or a cluster only once."""
    from kit import runtime

    return runtime.choose(strategy=strategy, precision=precision)


def begin(params: dict, *, log) -> None:
    log(_runtime(params["strategy"], params["precision"]).describe())


def fit_predict_fold(fold: Fold, params: dict) -> FoldResult:
    """Train the advanced track on one fold; its predictions, history and what the export needs."""
    import tensorflow as tf

    from kit.budget import batch_size_for, fit_budget, validation_sample
    from kit.data import ParquetSource, TableSource, encode, encode_together, to_tensors
    from kit.features import Features
    from kit.models import build_network, network_options
    from kit.serving import FoldModel
    from kit.targets import TargetScaler, to_prediction
    from kit.training import Trainer

    rt = _runtime(params["strategy"], params["precision"])
    metric = metrics.get(fold.metric)
    train, val = fold.train, fold.val  # gathered once
    # analyze: passes over the training fold only (the validation fold would leak); a streamed
    # fold's quantiles, medians and vocabularies come from a bounded sample of it
    analyzed = functools.partial(
        Features,
        fold.roles,
        scaling=params["scaling"],
        log_skew=params["log_skew"],
        n_bins=params["n_bins"],
        bin_encoding=params["bin_encoding"],
        max_tokens=params["max_tokens"],
        min_frequency=params["min_frequency"],
    )
    sample = analysis_sample(train, seed=fold.seed)
    features = analyzed().analyze(sample)
    # the sample's analysis tells how wide the mapped rows are, so what they would hold in memory
    streamed = streams(params, train, mapped_row_bytes=mapped_row_bytes(features))
    if not streamed and sample is not train:
        features = analyzed().analyze(train)
    scaler, y_train = None, fold.y_train
    if fold.task == "regression":
        scaler = TargetScaler().fit(fold.y_train, log=metric.trains_in_log(fold.y_train))
        y_train = scaler.transform(fold.y_train)
    if streamed:
        # the training rows once to Parquet shards in the work folder, then read back batch by
        # batch; the map runs in the pipeline, so no tensor of the whole fold is ever made
        scratch = None if fold.work_dir else _scratch()  # a direct call: removed once trained
        target = target_column(train.columns)
        shards = write_shards(train, y_train, (fold.work_dir or scratch) / "shards", target=target)
        source = ParquetSource(shards, columns=fold.roles, target=target, map_fn=features)
        fold.log(f"    streaming {source.n_rows} training rows from {len(shards)} Parquet shards")
        val_inputs = test_inputs = None
    else:
        # map: in the tf.data pipeline on the host, one pass over all three splits
        train_inputs, val_inputs, test_inputs = encode_together(
            [to_tensors(train), to_tensors(val), to_tensors(fold.test)], features
        )
        source = TableSource(train_inputs, y_train)

    per_replica = params["batch_size"] or max(8, batch_size_for(len(y_train)) // rt.replicas)
    trainer = Trainer(
        lambda: build_network(
            features.n_dense_,
            features.cardinalities_,
            task=fold.task,
            n_classes=fold.n_classes,
            n_numeric=features.n_numeric_,
            **network_options(params),
            embeddings="shared",
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
        label_smoothing=params["label_smoothing"],
        beta_2=params["beta_2"],
        jit_compile=params["jit_compile"],
        steps_per_execution=params["steps_per_execution"],
        checkpoint_dir=fold.work_dir / "checkpoints" if fold.work_dir else None,
        checkpoint_seconds=params["checkpoint_seconds"],
        log_dir=fold.work_dir / "tensorboard" if fold.work_dir else None,
        seed=fold.seed,
    )

    epochs, patience = fit_budget(
        len(y_train),
        epochs=params["epochs"],
        patience=params["patience"],
        max_examples=params["max_examples"],
    )
    # each epoch's score on a sample of a big validation fold; the predictions below use all of it
    rows = validation_sample(len(fold.y_val), seed=fold.seed)
    if val_inputs is None:
        check_frame = val if rows is None else val[rows]
        check_inputs = encode(to_tensors(check_frame), features)
    else:
        check_inputs = val_inputs if rows is None else {k: tf.gather(v, rows) for k, v in val_inputs.items()}
    y_check = fold.y_val if rows is None else fold.y_val[rows]

    def validate() -> float:
        return metric(y_check, to_prediction(trainer.predict(check_inputs), fold.task, scaler))

    try:
        history = trainer.fit(
            source,
            epochs=epochs,
            batch_size=per_replica,
            validate=validate,
            direction=metric.direction,
            patience=patience,
            callbacks=fold.callbacks,
            log=fold.log,
        )
    finally:  # trained, stopped or failed: a direct call's temporary shards go
        if streamed and scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    fold.log(
        f"    batch {rt.global_batch_size(per_replica)} ({per_replica} x {rt.replicas} replicas), "
        f"best epoch {history.best_epoch + 1} of {len(history.loss) + history.first_epoch}"
    )

    def predict(frame):
        # in chunks of rows: the encoded inputs of a few million rows need not exist at once
        outputs = [
            trainer.predict(encode(to_tensors(frame.slice(i, PREDICT_ROWS)), features))
            for i in range(0, frame.height, PREDICT_ROWS)
        ]
        return to_prediction(np.concatenate(outputs), fold.task, scaler)

    def predict_split(inputs, frame):
        """A split's predictions: from its encoded inputs where they are held, else in chunks."""
        return predict(frame) if inputs is None else to_prediction(trainer.predict(inputs), fold.task, scaler)

    return FoldResult(
        val=predict_split(val_inputs, val),
        test=predict_split(test_inputs, fold.test),
        history={
            "loss": history.loss,
            "val_score": history.val_score,
            "best_epoch": history.best_epoch,  # counts the epochs before a resume too
            "resumed_at": history.resumed_at,
            "first_epoch": history.first_epoch,  # where the lists start: >0 if a resume lost epochs
            "seconds": history.seconds,
            "batch_size": rt.global_batch_size(per_replica),
            "runtime": rt.summary(per_replica),
        },
        model=FoldModel(features, trainer.model, fold.task, scaler),
        predict=predict,
    )


# the target's column in a streamed fold's shards, unless a column of the data has that name
TARGET = "__target__"
# a streamed fold's analysis sample, shard size and prediction chunk, in rows
ANALYZE_ROWS = 500_000
SHARD_ROWS = 250_000
PREDICT_ROWS = 250_000


def streams(params: dict, train, *, mapped_row_bytes: int = 0) -> bool:
    """Whether this training fold streams from Parquet shards (`stream`, `stream_above_mib`): where
    the fold as read, or its rows mapped to the network's inputs (bins and one-hots make them many
    times wider), would be larger in memory than `stream_above_mib`."""
    if params["stream"] != "auto":
        return params["stream"] == "on"
    mib = max(train.estimated_size("mb"), train.height * mapped_row_bytes / 2**20)
    return mib > params["stream_above_mib"]


def mapped_row_bytes(features) -> int:
    """Bytes of one row mapped by `features` (float32 numbers, int32 codes)."""
    return 4 * (features.n_dense_ + len(features.cardinalities_))


def analysis_sample(frame, *, seed: int):
    """At most ANALYZE_ROWS rows of a training fold, drawn with the fold's seed: enough for
    quantile bins, medians and the vocabularies of values that occur often enough to embed."""
    return frame if frame.height <= ANALYZE_ROWS else frame.sample(n=ANALYZE_ROWS, seed=seed)


def target_column(columns) -> str:
    """The shards' target column: TARGET, or TARGET in more underscores if a column has its name."""
    name = TARGET
    while name in columns:
        name = f"_{name}_"
    return name


def write_shards(frame, y, folder: Path, *, rows: int = SHARD_ROWS, target: str = TARGET) -> list[Path]:
    """The training fold and its (scaled) target as Parquet files of at most `rows` rows, at least
    four when there are rows enough, so that workers of a cluster each read files of their own."""
    if folder.exists():
        shutil.rmtree(folder)  # a resumed fold writes its shards again: kit's own work folder
    folder.mkdir(parents=True)
    rows = max(1, min(rows, -(-frame.height // 4)))
    table = frame.with_columns(pl.Series(target, np.asarray(y)))
    paths = []
    for i, start in enumerate(range(0, frame.height, rows)):
        paths.append(folder / f"part-{i:05d}.parquet")
        table.slice(start, rows).write_parquet(paths[-1])
    return paths


def _scratch() -> Path:
    """A fold without a work folder (a direct call) streams through a temporary one."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="kit-stream-"))


def write_artifacts(
    staging: Path, *, comp, cfg, results, score, log, work_dir: Path, weights=None, **_
) -> None:
    """`model/`: every fold in one SavedModel taking raw rows, weighted as the run weighed their
    test predictions; `tensorboard/`: each fold's logs."""
    from kit.serving import export

    threshold = json.loads((staging / "metrics.json").read_text()).get("threshold")  # the run's cut, if any
    export(
        [r.model for r in results], comp, staging / "model", na=list(cfg.na), score=score, weights=weights,
        threshold=threshold,
    )  # fmt: skip
    log("model: model/ in the run folder (all folds, takes raw rows; `kit predict` uses it)")
    # one folder per fold (and per seed, with --seeds), named as the work folder names them
    for logs in sorted(work_dir.glob("fold_*/tensorboard")):
        (staging / "tensorboard").mkdir(exist_ok=True)
        shutil.move(str(logs), str(staging / "tensorboard" / logs.parent.name))
