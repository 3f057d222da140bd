"""The fast Keras baseline: per fold, fit the prep, train an MLP with `fit()`, predict.

A team swapping in its own model writes a function with the same signature as `fit_predict_fold`
and passes it to `kit.run.cross_validate`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kit import metrics
from kit.models import build_mlp, loss_for
from kit.prep import Preprocessor
from kit.run import Fold

PREDICT_CHUNK = 65536


def batch_size_for(n_rows: int) -> int:
    """About 30-100 steps an epoch: small data keeps small batches, large data keeps the CPU busy."""
    return int(np.clip(2 ** round(np.log2(max(n_rows, 1) / 64)), 32, 2048))


class TargetScaler:
    """Regression targets on a unit scale (log1p first for rmsle), so the output layer starts close."""

    def fit(self, y: np.ndarray, *, log: bool) -> TargetScaler:
        self.log_ = log
        z = np.log1p(np.clip(y, 0, None)) if log else y
        self.mean_, self.std_ = float(z.mean()), float(z.std() or 1.0)
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        z = np.log1p(np.clip(y, 0, None)) if self.log_ else y
        return ((z - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        y = z * self.std_ + self.mean_
        return np.expm1(y) if self.log_ else y


def to_prediction(out: np.ndarray, task: str, scaler: TargetScaler | None) -> np.ndarray:
    """Model outputs in kit's prediction form: (n, n_classes) probabilities or (n,) values."""
    out = np.asarray(out, dtype=np.float64)
    if task == "binary":
        p = out.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    if task == "multiclass":
        return out
    return scaler.inverse_transform(out.reshape(-1))


def predict(model, inputs: dict[str, np.ndarray], task: str, scaler: TargetScaler | None) -> np.ndarray:
    n = len(inputs["numbers"])
    out = np.concatenate(
        [
            np.asarray(model.predict_on_batch({k: v[i : i + PREDICT_CHUNK] for k, v in inputs.items()}))
            for i in range(0, max(n, 1), PREDICT_CHUNK)
        ]
    )[:n]
    return to_prediction(out, task, scaler)


def fit_predict_fold(fold: Fold, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Train on one fold; return (validation predictions, test predictions).

    Early stopping and the learning-rate schedule watch the competition's metric on the
    validation fold, computed each epoch.
    """
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
        loss=loss_for(fold.task, fold.metric),
        steps=steps,
    )
    x_train, x_val, x_test = (_pad(x, width) for x in (x_train, x_val, x_test))
    mode = "max" if metric.direction == "maximize" else "min"
    callbacks = [
        ValidationScore(x_val, fold.y_val, metric, fold.task, scaler),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_score", mode=mode, factor=0.5, patience=max(2, params["patience"] // 3), verbose=0
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_score", mode=mode, patience=params["patience"], restore_best_weights=True
        ),
        *fold.callbacks,
    ]
    model.fit(
        _batches(x_train, y_train, batch_size, seed=fold.seed),
        shuffle=False,  # the pipeline shuffles
        epochs=params["epochs"],
        callbacks=callbacks,
        verbose=0,
    )
    return predict(model, x_val, fold.task, scaler), predict(model, x_test, fold.task, scaler)


def _batches(x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, *, seed: int):
    """The training fold as a tf.data pipeline, reshuffled (seeded) every epoch.

    Keras' own shuffling of arrays builds a new shuffled pipeline with eager ops at every epoch,
    about half of an epoch's time on small data; this one is built once per fold. The same rows
    in the same order as `kit.data.TableSource` (same seed), whose gather per batch costs more than
    it saves on small data (titanic CV 11.6 s here against 14.8 s with it).
    """
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
_last: tuple[tuple, keras.Model] | None = None


def _compiled_model(
    spec: dict, *, seed: int, learning_rate: float, weight_decay: float, loss: str, steps: int
):
    """A compiled MLP with fresh weights and optimizer state for this fold.

    Keras traces a model's train and predict steps the first time it fits a model, about a second
    and a half each time for a small MLP, which would be most of a fold on small data. When this fold
    asks for what the previous fold had, the previous model is reused: every variable (weights,
    batch-norm statistics, dropout seed state) is set from a newly built model with this fold's seed
    and the optimizer's state is zeroed, so the fold trains exactly as a new model would.
    """
    global _last
    fresh = build_mlp(**spec, seed=seed)
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
        loss=loss,
        # one call into the graph per epoch instead of per batch: small batches stay cheap
        steps_per_execution=steps,
        # XLA compile time per fold costs more than it saves for a small MLP on CPU
        jit_compile=False,
    )
    _last = (key, fresh)
    return fresh


class ValidationScore(keras.callbacks.Callback):
    """Scores the validation fold with the competition metric after each epoch, as `val_score`."""

    def __init__(self, x_val, y_val, metric, task, scaler):
        super().__init__()
        self.x_val, self.y_val, self.metric, self.task, self.scaler = x_val, y_val, metric, task, scaler

    def on_epoch_end(self, epoch, logs=None):
        pred = predict(self.model, self.x_val, self.task, self.scaler)
        logs["val_score"] = self.metric(self.y_val, pred)
