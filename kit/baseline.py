"""The fast Keras baseline: per fold, fit the prep, train an MLP with `fit()`, predict.

A team swapping in its own model writes a function with the same signature as `fit_predict_fold`
and passes it to `kit.run.cross_validate`.
"""

from __future__ import annotations

import keras
import numpy as np

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


def predict(model, inputs: dict[str, np.ndarray], task: str, scaler: TargetScaler | None) -> np.ndarray:
    """Model outputs in kit's prediction form: (n, n_classes) probabilities or (n,) values."""
    n = len(inputs["numbers"])
    out = np.concatenate(
        [
            np.asarray(model.predict_on_batch({k: v[i : i + PREDICT_CHUNK] for k, v in inputs.items()}))
            for i in range(0, max(n, 1), PREDICT_CHUNK)
        ]
    )[:n].astype(np.float64)
    if task == "binary":
        p = out.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    if task == "multiclass":
        return out
    return scaler.inverse_transform(out.reshape(-1))


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

    model = build_mlp(
        prep.n_dense_,
        prep.cardinalities_,
        task=fold.task,
        n_classes=fold.n_classes,
        units=tuple(params["units"]),
        dropout=params["dropout"],
        embedding_size=params["embedding_size"],
        seed=fold.seed,
    )
    batch_size = params["batch_size"] or batch_size_for(len(y_train))
    steps = int(np.ceil(len(y_train) / batch_size))
    model.compile(
        optimizer=keras.optimizers.AdamW(params["learning_rate"], weight_decay=params["weight_decay"]),
        loss=loss_for(fold.task, fold.metric),
        # one call into the graph per epoch instead of per batch: small batches stay cheap
        steps_per_execution=steps,
        # XLA compile time per fold costs more than it saves for a small MLP on CPU
        jit_compile=False,
    )
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
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=params["epochs"],
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    return predict(model, x_val, fold.task, scaler), predict(model, x_test, fold.task, scaler)


class ValidationScore(keras.callbacks.Callback):
    """Scores the validation fold with the competition metric after each epoch, as `val_score`."""

    def __init__(self, x_val, y_val, metric, task, scaler):
        super().__init__()
        self.x_val, self.y_val, self.metric, self.task, self.scaler = x_val, y_val, metric, task, scaler

    def on_epoch_end(self, epoch, logs=None):
        pred = predict(self.model, self.x_val, self.task, self.scaler)
        logs["val_score"] = self.metric(self.y_val, pred)
