"""The fast Keras baseline: per fold, fit the prep, train an MLP with `fit()`, predict.

Early stopping and the learning-rate schedule watch the competition's metric on the validation
fold, computed each epoch. Folds of one shape share one compiled model, so Keras traces its
steps once a run.
"""

from __future__ import annotations

import numpy as np

from kit import metrics
from kit.prep import SCALINGS
from kit.run import Fold, FoldResult

DESCRIPTION = "fast Keras baseline: an MLP with embeddings trained with fit()"

DEFAULTS = {
    "units": [128, 64],
    "dropout": 0.25,
    "learning_rate": 2e-3,
    "weight_decay": 1e-4,
    "batch_size": 0,  # 0: chosen from the number of rows
    "epochs": 200,
    "patience": 10,
    "scaling": "standard",
    "embedding_size": 0,  # 0: chosen per column from its cardinality
}

LIMITS = {"scaling": SCALINGS}

# An entry is {low, high} (optionally log = true or step = ...), {choices = [...]}, or a plain
# value, which fixes the parameter; a competition's [search.baseline] table changes it entry by entry.
SEARCH_SPACE = {
    "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
    # width and depth together: a few tapering shapes search better than free widths per layer
    "units": {"choices": [[128], [256], [128, 64], [256, 128], [512, 256], [256, 128, 64]]},
    "dropout": {"low": 0.0, "high": 0.5},
    "batch_size": {"choices": [0, 64, 128, 256, 512]},  # 0: chosen from the number of rows
    "embedding_size": {"choices": [0, 4, 8, 16]},  # 0: chosen per column from its cardinality
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "scaling": {"choices": list(SCALINGS)},
}

PREDICT_CHUNK = 65536


def fit_predict_fold(fold: Fold, params: dict) -> FoldResult:
    """Train on one fold; return its validation and test predictions and its history."""
    import keras

    from kit.prep import Preprocessor
    from kit.targets import TargetScaler
    from kit.training import batch_size_for

    metric = metrics.get(fold.metric)
    # stats from the training fold only; the validation fold would leak
    prep = Preprocessor(fold.roles, scaling=params["scaling"]).fit(fold.train)
    x_train, x_val, x_test = (prep.transform(f) for f in (fold.train, fold.val, fold.test))

    scaler = None
    y_train = fold.y_train
    if fold.task == "regression":
        scaler = TargetScaler().fit(fold.y_train, log=metric.log_target)
        y_train = scaler.transform(fold.y_train)

    batch_size = params["batch_size"] or batch_size_for(len(y_train))
    steps = int(np.ceil(len(y_train) / batch_size))
    # widths rounded up so that the folds of a run usually share one shape, and so one traced model
    width = _round_up(prep.n_dense_)
    spec = dict(
        n_dense=width,
        cardinalities=[_round_up(c) for c in prep.cardinalities_],
        task=fold.task,
        n_classes=fold.n_classes,
        units=tuple(params["units"]),
        dropout=params["dropout"],
        embedding_size=params["embedding_size"],
    )
    model = _compiled_model(
        spec,
        seed=fold.seed,
        learning_rate=params["learning_rate"],
        weight_decay=params["weight_decay"],
        loss=(fold.task, fold.metric),
        steps=steps,
    )
    x_train, x_val, x_test = (_pad(x, width) for x in (x_train, x_val, x_test))

    def score_epoch(epoch, logs):
        logs["val_score"] = metric(fold.y_val, _predict(model, x_val, fold.task, scaler))

    mode = "max" if metric.direction == "maximize" else "min"
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_score", mode=mode, patience=params["patience"], restore_best_weights=True
    )
    callbacks = [
        keras.callbacks.LambdaCallback(on_epoch_end=score_epoch),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_score", mode=mode, factor=0.5, patience=max(2, params["patience"] // 3), verbose=0
        ),
        stopping,
        *fold.callbacks,
    ]
    history = model.fit(
        _batches(x_train, y_train, batch_size, seed=fold.seed),
        shuffle=False,  # the pipeline shuffles
        epochs=params["epochs"],
        callbacks=callbacks,
        verbose=0,
    )
    scores = [float(s) for s in history.history.get("val_score", [])]

    def predict(frame):
        # the compiled model is reused by the next fold, so this holds only until then
        return _predict(model, _pad(prep.transform(frame), width), fold.task, scaler)

    return FoldResult(
        val=_predict(model, x_val, fold.task, scaler),
        test=_predict(model, x_test, fold.task, scaler),
        history={
            "loss": [float(v) for v in history.history.get("loss", [])],
            "val_score": scores,
            "best_epoch": _best_epoch(scores, metric.direction),
            "runtime": {"strategy": "default (Keras fit)", "batch_size": batch_size},
        },
        predict=predict,
    )


def _best_epoch(scores: list[float], direction: str) -> int:
    if not scores:
        return -1
    return int(np.nanargmax(scores) if direction == "maximize" else np.nanargmin(scores))


def _predict(model, inputs: dict[str, np.ndarray], task: str, scaler) -> np.ndarray:
    from kit.targets import to_prediction

    n = len(inputs["numbers"])
    out = np.concatenate(
        [
            np.asarray(model.predict_on_batch({k: v[i : i + PREDICT_CHUNK] for k, v in inputs.items()}))
            for i in range(0, max(n, 1), PREDICT_CHUNK)
        ]
    )[:n]
    return to_prediction(out, task, scaler)


def _batches(x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, *, seed: int):
    """The training fold as a tf.data pipeline, reshuffled (seeded) every epoch.

    Keras' own shuffling of arrays builds a new shuffled pipeline with eager ops at every epoch,
    about half of an epoch's time on small data; this one is built once per fold. The same rows
    in the same order as `kit.data.TableSource` (same seed), whose gather per batch costs more than
    it saves on small data (titanic CV 11.6 s here against 14.8 s with it).
    """
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def _round_up(n: int, step: int = 16) -> int:
    return -(-n // step) * step


def _pad(inputs: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """Zero columns up to `width`: a zero input adds nothing to the first layer's output."""
    numbers = inputs["numbers"]
    return {**inputs, "numbers": np.pad(numbers, ((0, 0), (0, width - numbers.shape[1])))}


# the last compiled model and what it was built from; see _compiled_model
_last = None


def _compiled_model(
    spec: dict, *, seed: int, learning_rate: float, weight_decay: float, loss: tuple, steps: int
):
    """A compiled MLP with fresh weights and optimizer state for this fold.

    Keras traces a model's train and predict steps the first time it fits a model, about a second
    and a half each time for a small MLP, which would be most of a fold on small data. When this fold
    asks for what the previous fold had, the previous model is reused: every variable (weights,
    batch-norm statistics, dropout seed state) is set from a newly built model with this fold's seed
    and the optimizer's state is zeroed, so the fold trains exactly as a new model would.
    """
    import keras

    from kit.models import build_network, loss_for

    global _last
    fresh = build_network(**spec, embeddings="per_column", seed=seed)
    key = (repr(sorted(spec.items())), learning_rate, weight_decay, loss, steps)
    if _last is not None and _last[0] == key:
        model = _last[1]
        for target, value in zip(model.variables, fresh.variables, strict=True):
            target.assign(value)
        for variable in model.optimizer.variables:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        model.optimizer.learning_rate = learning_rate
        return model
    fresh.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
        loss=loss_for(*loss),
        # one call into the graph per epoch instead of per batch: small batches stay cheap
        steps_per_execution=steps,
        # XLA compile time per fold costs more than it saves for a small MLP on CPU
        jit_compile=False,
    )
    _last = (key, fresh)
    return fresh
