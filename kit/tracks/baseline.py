"""The fast Keras baseline: per fold, fit the prep, train kit's network with `fit()`, predict.

The fast setting of the network family in `kit.models` (the advanced track trains the stronger
one): robust-scaled, smoothly clipped numbers from `kit.prep.Preprocessor`, AdamW with a warm-up
and cosine decay over the epochs, label smoothing where the metric scores labels, and the best
epoch by the competition's metric on the validation fold, computed each epoch (early stopping
after `patience` epochs without a better one). Folds of one shape share one compiled model, so
Keras traces its steps once a run.
"""

from __future__ import annotations

import contextlib

import numpy as np

from kit import metrics, runtime
from kit.prep import SCALINGS
from kit.run import Fold, FoldResult

# no Keras at import: a config is checked before TensorFlow loads
ACTIVATIONS = ("relu", "silu", "selu", "gelu", "mish", "elu")
NUMERIC_EMBEDDINGS = ("none", "periodic")

DESCRIPTION = "fast Keras baseline: kit's network family, a plain MLP trained with fit()"

DEFAULTS = {
    "units": [256, 256],
    # 0.1 from CV on the shared six and the synthetic competitions (mean rank 1.56 against 1.89
    # for 0.2 and 2.56 for none): more noise shrinks a regression network's outputs toward the mean
    "dropout": 0.1,
    "activation": "relu",
    "batch_norm": False,
    "learning_rate": 2e-3,
    "weight_decay": 1e-4,
    "beta_2": 0.999,
    # momentum of the weights' moving average (per step), which each epoch is scored and kept with;
    # 0: off. For classification only: from CV on the shared six and the synthetic competitions,
    # 0.95 was better on 4 of 5 classification ones (tps-aug-2022 AUC 0.575 -> 0.587) and on 3 of
    # 5 regression ones, but worse on both regressions over time (bike-sharing rmsle 0.386 ->
    # 0.393, the sales shape's test MAPE 0.158 -> 0.166)
    "ema": 0.95,
    "label_smoothing": 0.1,  # for metrics scored on labels (accuracy, f1, qwk); none for log_loss, AUC
    "batch_size": 0,  # 0: chosen from the number of rows
    "epochs": 100,  # the schedule spans them: warm-up, then cosine decay
    "warmup": 0.05,  # share of the steps
    "patience": 16,  # epochs without a better validation score before stopping (best epoch kept)
    # training rows seen per fold at most: big data gets fewer epochs. 3M rather than the advanced
    # track's 4M from the sales shape of `bench/synthetic.py` (the shared six and the small
    # synthetic competitions train below either): its test MAPE, seeds 0-2, 0.1557 in 85 s against
    # 0.1518 in 113 s (2M: 0.1580 in 73 s). The 1M-row shape's folds stop early under both.
    "max_examples": 3_000_000,
    "scaling": "robust",
    # log1p of non-negative numeric columns skewed beyond this, before scaling (0: off); 1.0 from CV
    # on the shared six and the synthetic competitions (mean rank 1.67, against 2.22 for 2.0 and
    # 2.11 for off): spending and areas keep their big values apart instead of all near 3
    "log_skew": 1.0,
    # quantile bins per numeric column, each value's piecewise-linear encoding (0: none); none from
    # CV on the shared six and the synthetic competitions: 16 bins were better on 3 (cirrhosis
    # log_loss 0.473 -> 0.459, spaceship accuracy 0.808 -> 0.816, house-prices) and worse on 5
    # (tps-aug-2022 AUC 0.587 -> 0.576, smooth rmse 0.606 -> 0.643, ...); a search may turn them on
    "n_bins": 0,
    "embedding_size": 0,  # 0: chosen per column from its cardinality
    "numeric_embedding": "periodic",  # or "none"
    "n_frequencies": 16,
    "frequency_scale": 0.05,
    "numeric_width": 8,
    # each scaled value beside its periodic embedding (RealMLP's); none from CV on the shared six
    # and the synthetic competitions: worse on 7 of 9 (bike-sharing rmsle 0.386 -> 0.450, smooth rmse
    # 0.606 -> 0.631), while the advanced track, with its front scale and members, gains from it
    "numeric_value": False,
    "k": 1,  # ensemble members in the one network (TabM-mini above 1)
    # a learned scale per input column (RealMLP's scaling layer), learning at this times the rate;
    # none from CV on the shared six and the synthetic competitions: 6 was better on 3 (bike-sharing,
    # interaction, heavy_tails) and worse on 6 (titanic accuracy 0.844 -> 0.837, tps-aug-2022 AUC
    # 0.587 -> 0.584, ...); the advanced track, four members in one network, gains from it
    "front_scale": 0.0,
}

# beyond kit.tracks.COMMON_LIMITS (units, dropout, learning_rate, ...)
LIMITS = {
    "scaling": SCALINGS,
    "log_skew": "[0, inf)",
    "n_bins": "[0, 1024]",
    "max_examples": "[1, inf)",
    "activation": ACTIVATIONS,
    "beta_2": "[0, 1)",
    "ema": "[0, 1)",
    "label_smoothing": "[0, 1)",
    "warmup": "[0, 1)",
    "numeric_embedding": NUMERIC_EMBEDDINGS,
    "n_frequencies": "[1, 256]",
    "frequency_scale": "(0, 100]",
    "numeric_width": "[1, 256]",
    "k": "[1, 64]",
    "front_scale": "[0, 100]",
}

# An entry is {low, high} (optionally log = true or step = ...), {choices = [...]}, or a plain
# value, which fixes the parameter; a competition's [search.baseline] table changes it entry by entry.
SEARCH_SPACE = {
    "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
    # width and depth together: a few shapes search better than free widths per layer
    "units": {"choices": [[128], [256], [256, 256], [512, 256], [256, 256, 256]]},
    "dropout": {"low": 0.0, "high": 0.5},
    "batch_size": {"choices": [0, 64, 128, 256, 512]},  # 0: chosen from the number of rows
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "scaling": {"choices": list(SCALINGS)},
    "log_skew": {"choices": [0.0, 1.0, 2.0]},
    "n_bins": {"choices": [0, 8, 16]},
    "numeric_embedding": {"choices": list(NUMERIC_EMBEDDINGS)},
    "label_smoothing": {"choices": [0.0, 0.1]},
    "front_scale": {"choices": [0.0, 6.0]},
    "numeric_value": {"choices": [False, True]},
}

PREDICT_CHUNK = 65536


def fit_predict_fold(fold: Fold, params: dict) -> FoldResult:
    """Train on one fold; return its validation and test predictions and its history."""
    import keras

    from kit.budget import batch_size_for, fit_budget, validation_sample
    from kit.models import network_options
    from kit.prep import Preprocessor
    from kit.targets import TargetScaler
    from kit.training import SwapEMAWeights

    metric = metrics.get(fold.metric)
    # the fold's rows are read from the run's frame a chunk at a time: no copy of the fold is made
    (train_frame, train_rows), (val_frame, val_rows) = fold.rows_of("train"), fold.rows_of("val")
    # stats from the training fold only; the validation fold would leak
    prep = Preprocessor(
        fold.roles,
        scaling=params["scaling"],
        log_skew=params["log_skew"],
        n_bins=params["n_bins"],
        # above GATHER_ABOVE rows the network makes the one-hots, so a big fold's table stays
        # narrow; below, they are made outside it, which scored better on the shared six and the
        # synthetic competitions (bike-sharing rmsle 0.395 against 0.406, titanic accuracy
        # 0.842 against 0.839, means of five seeds; the others within a seed's spread)
        one_hot="codes" if len(fold.y_train) > GATHER_ABOVE else "dense",
    ).fit(train_frame, rows=train_rows, seed=fold.seed)
    # widths rounded up so that the folds of a run usually share one shape, and so one traced
    # model (a fold's rare values change its one-hots); the zero columns are made by the
    # transform, not by a padded copy of each table
    width, one_hot_width = _round_up(prep.n_dense_), _round_up(prep.n_one_hot_)

    def transform(frame, rows=None, stored=False):
        return prep.transform(frame, rows=rows, width=width, one_hot_width=one_hot_width, stored=stored)

    # a big fold's rows held as float16 and int16 (`Preprocessor.transform`'s `stored`): 74 bytes
    # a row instead of 172 on the 10M-row bench shape; `_batches` widens each batch it gathers
    x_train = transform(train_frame, train_rows, stored=len(fold.y_train) > GATHER_ABOVE)

    scaler = None
    y_train = fold.y_train
    if fold.task == "regression":
        scaler = TargetScaler().fit(fold.y_train, log=metric.trains_in_log(fold.y_train))
        y_train = scaler.transform(fold.y_train)

    batch_size = params["batch_size"] or batch_size_for(len(y_train))
    epochs, patience = fit_budget(
        len(y_train),
        epochs=params["epochs"],
        patience=params["patience"],
        max_examples=params["max_examples"],
    )
    steps = int(np.ceil(len(y_train) / batch_size))
    spec = dict(
        n_dense=width,
        cardinalities=[_table_rows(c) for c in prep.cardinalities_],
        task=fold.task,
        n_classes=fold.n_classes,
        n_numeric=prep.n_numeric_,
        one_hot_width=one_hot_width,
        n_categories=len(prep.depths_),
        **network_options(params),
    )
    ema = params["ema"] if fold.task != "regression" else 0.0
    model = _compiled_model(
        spec,
        seed=fold.seed,
        training={
            **{
                k: params[k] for k in ("learning_rate", "weight_decay", "beta_2", "warmup", "label_smoothing")
            },
            "ema": ema,
            "epochs": epochs,
        },
        loss=(fold.task, fold.metric),
        steps=steps,
    )

    # each epoch's score on a sample of a big validation fold; the predictions below use all of it,
    # transformed a chunk at a time once training has let go of its rows (a big fold's validation
    # and test tables are never held whole, nor beside the training one)
    sample = validation_sample(len(fold.y_val), seed=fold.seed)
    if sample is None:
        x_check, y_check = transform(val_frame, val_rows), fold.y_val
    else:
        x_check = transform(val_frame, sample if val_rows is None else val_rows[sample])
        y_check = fold.y_val[sample]

    def score_epoch(epoch, logs):
        logs["val_score"] = metric(y_check, _predict(model, [x_check], fold.task, scaler))

    mode = "max" if metric.direction == "maximize" else "min"
    callbacks = [
        # the averaged weights in the model from each epoch's end (so scored, and kept as the best
        # epoch's) to the next epoch's start
        *([SwapEMAWeights(swap_on_epoch=True)] if ema else []),
        keras.callbacks.LambdaCallback(on_epoch_end=score_epoch),
        keras.callbacks.EarlyStopping(
            monitor="val_score", mode=mode, patience=patience, restore_best_weights=True
        ),
        *fold.callbacks,
    ]
    with _batches(x_train, y_train, batch_size, seed=fold.seed) as batches:
        del x_train  # the pipeline holds the rows until the block ends
        history = model.fit(
            batches,
            shuffle=False,  # the pipeline shuffles
            epochs=epochs,
            callbacks=callbacks,
            verbose=0,
        )
    if len(y_train) > SHUFFLE_ROWS_UP_TO:
        runtime.release_memory()  # the training rows, before the predictions' tables are made
    scores = [float(s) for s in history.history.get("val_score", [])]

    def predict(frame, rows=None):
        # the compiled model is reused by the next fold, so this holds only until then
        chunks = prep.transform_chunks(frame, rows=rows, width=width, one_hot_width=one_hot_width)
        return _predict(model, chunks, fold.task, scaler)

    return FoldResult(
        val=_predict(model, [x_check], fold.task, scaler) if sample is None else predict(val_frame, val_rows),
        test=predict(fold.test),
        history={
            "loss": [float(v) for v in history.history.get("loss", [])],
            "val_score": scores,
            "best_epoch": _best_epoch(scores, metric.direction),
            "runtime": {"strategy": "default (Keras fit)", "batch_size": batch_size},
        },
        predict=predict,
    )


def refit_params(params: dict, history: dict) -> tuple[dict, int] | None:
    """A refit on all rows (`kit.run`) trains to the last fold's best epoch and is not stopped
    early: its validation rows are among its training rows. None where the fold kept no best."""
    best = history.get("best_epoch", -1)
    return ({**params, "patience": params["epochs"]}, best + 1) if best >= 0 else None


def _best_epoch(scores: list[float], direction: str) -> int:
    if not scores:
        return -1
    return int(np.nanargmax(scores) if direction == "maximize" else np.nanargmin(scores))


def _predict(model, tables, task: str, scaler) -> np.ndarray:
    """The model's predictions for the rows of `tables` (transformed inputs) one after another."""
    from kit.targets import to_prediction

    out = [
        np.asarray(model.predict_on_batch({k: v[i : i + PREDICT_CHUNK] for k, v in inputs.items()}))
        for inputs in tables
        for i in range(0, max(len(inputs["numbers"]), 1), PREDICT_CHUNK)
    ]
    return to_prediction(np.concatenate(out), task, scaler)


@contextlib.contextmanager
def _batches(x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, *, seed: int):
    """The training fold as a tf.data pipeline, reshuffled (seeded) every epoch, for the `with`
    block's length.

    Keras' own shuffling of arrays builds a new shuffled pipeline with eager ops at every epoch,
    about half of an epoch's time on small data; this one is built once per fold. Up to
    `SHUFFLE_ROWS_UP_TO` rows the rows themselves are shuffled (a gather per batch costs more than
    it saves on small data: titanic CV 11.6 s against 14.8 s); above, each epoch draws a
    permutation of their indices (`kit.data.shuffled_batches`) and each batch is gathered from the
    NumPy arrays, which are never copied (a shuffle buffer of 100k rows takes 0.3-0.4 s an epoch
    to fill, the gathers 0.1 s), and are let go at the block's end: TensorFlow keeps the function
    that gathers them after the pipeline has gone.
    """
    import tensorflow as tf

    from kit.data import shuffled_batches

    if len(y) <= SHUFFLE_ROWS_UP_TO:
        yield (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        return
    # each batch gathered from the NumPy arrays themselves: a tensor made of them would be a copy
    # of the fold (two, while TensorFlow aligns it)
    names = list(x)
    held = [x[k] for k in names] + [np.asarray(y)]
    # tables held narrow (float16, int16) are gathered as the model takes them
    wide = [
        {"f": np.float32, "i": np.int32}.get(a.dtype.kind) if a.dtype.itemsize < 4 else None for a in held
    ]
    shapes = [(tf.as_dtype(w or a.dtype), (None, *a.shape[1:])) for a, w in zip(held, wide, strict=True)]

    def gather(i):
        return tuple(a[i] if w is None else a[i].astype(w) for a, w in zip(held, wide, strict=True))

    @tf.autograph.experimental.do_not_convert  # plain graph ops: nothing for AutoGraph to convert
    def take(i):
        parts = tf.numpy_function(gather, [i], [dtype for dtype, _ in shapes], stateful=False)
        for part, (_, shape) in zip(parts, shapes, strict=True):
            part.set_shape(shape)
        return dict(zip(names, parts[:-1], strict=True)), parts[-1]

    try:
        yield (
            shuffled_batches(len(y), batch_size, seed=seed)
            .map(take, num_parallel_calls=2, deterministic=True)
            .prefetch(4)
        )
    finally:
        held.clear()


GATHER_ABOVE = 200_000
SHUFFLE_ROWS_UP_TO = 32_768


def _round_up(n: int, step: int = 16) -> int:
    return -(-n // step) * step


def _table_rows(cardinality: int) -> int:
    """Rows of a code column's embedding table: its cardinality rounded up, by 16 below 512 and
    by a 16th to a 32nd of it above, so that the folds of a run share one table size, one model and
    one traced train step. A big vocabulary differs between folds by its rare values (a 20k-value
    column's was 19936, 19968, 19936, 19952, 19968 rows over the 1M-row bench shape's five folds,
    and each new size cost a trace of 2-3 s); the extra rows are never looked up."""
    return _round_up(cardinality, max(16, 2 ** (cardinality.bit_length() - 5)))


# the last compiled model and what it was built from; see _compiled_model
_last = None
# steps of one call into the traced train step: more than any epoch has
STEPS_PER_CALL = 1 << 20


def _compiled_model(spec: dict, *, seed: int, training: dict, loss: tuple, steps: int):
    """A compiled network with fresh weights and optimizer state for this fold.

    Keras traces a model's train and predict steps the first time it fits a model, about a second
    and a half each time for a small MLP, which would be most of a fold on small data. When this fold
    asks for what the previous fold had, the previous model is reused: every variable (weights,
    batch-norm statistics, dropout seed state) is set from a newly built model with this fold's seed
    and the optimizer's state (its step count, so its schedule, too) is zeroed, so the fold trains
    exactly as a new model would. Folds of other lengths (a time split's growing windows, a group
    split's uneven folds) share it too: the schedule's lengths are variables set per fold, and one
    call into the graph runs a whole epoch, however many steps it has. So do folds whose code
    columns have fewer values than the model's embedding tables have rows (`_table_rows`): a
    table's first rows start as a table of the fold's own size would (the initializer draws the
    same numbers in the same order), and the rows past the fold's values are never looked up.
    """
    import keras

    from kit.models import (
        NO_WEIGHT_DECAY,
        adjustable_schedule,
        build_network,
        embedding_dim,
        loss_for,
        set_schedule_steps,
    )

    global _last
    total_steps = training["epochs"] * steps
    shared = {k: v for k, v in training.items() if k != "epochs"}
    rows = spec["cardinalities"]
    key = (
        repr(sorted((k, v) for k, v in spec.items() if k != "cardinalities")),
        repr(sorted(shared.items())),
        loss,
    )
    if _last is not None and _last[0] == key and len(_last[3]) == len(rows):
        # room for both folds' values (a table too small for this fold: the model is rebuilt),
        # where the embeddings keep this fold's widths, which follow a small table's size
        both = [max(a, b) for a, b in zip(rows, _last[3], strict=True)]
        width = (lambda n: spec["embedding_size"]) if spec["embedding_size"] else embedding_dim
        if all(width(a) == width(b) for a, b in zip(rows, both, strict=True)):
            rows = both
    fresh = build_network(**{**spec, "cardinalities": rows}, embeddings="per_column", seed=seed)
    if _last is not None and _last[0] == key and _last[3] == rows:
        model, schedule = _last[1], _last[2]
        for target, value in zip(model.variables, fresh.variables, strict=True):
            target.assign(value)
        for variable in model.optimizer.variables:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        set_schedule_steps(schedule, total_steps=total_steps, warmup=training["warmup"])
        return model
    schedule = adjustable_schedule(
        training["learning_rate"], total_steps=total_steps, warmup=training["warmup"]
    )
    optimizer = keras.optimizers.AdamW(
        schedule,
        weight_decay=training["weight_decay"],
        beta_2=training["beta_2"],
        # the average restarts from the weights at a fold's first step, so zeroing it below is safe
        use_ema=training["ema"] > 0,
        ema_momentum=training["ema"],
    )
    optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
    fresh.compile(
        optimizer=optimizer,
        loss=loss_for(*loss, label_smoothing=training["label_smoothing"]),
        # one call into the graph per epoch instead of per batch: small batches stay cheap (the
        # loop ends with the epoch's batches, so any fold's epoch fits in one call)
        steps_per_execution=STEPS_PER_CALL,
        # no XLA: Keras turns it off under op determinism, which keeps a seed's runs identical
        jit_compile=False,
    )
    # the optimizer's slots made now, not in the train step's first trace: a trace that makes
    # variables is traced again without them, a second of each run on a small competition
    optimizer.build(fresh.trainable_variables)
    _last = (key, fresh, schedule, rows)
    return fresh
