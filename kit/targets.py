"""Targets and predictions, shared by every track.

Predictions travel through kit in one form: (n, n_classes) probabilities for classification and
(n,) values in the target's own units for regression. `TargetScaler` puts a regression target on
a unit scale for training (log1p first for rmsle, and mape), `to_prediction` turns a network's outputs
back into kit's form, and `graph_prediction` does the same inside an exported model;
`class_probabilities` puts a scikit-learn classifier's probabilities in kit's form.
"""

from __future__ import annotations

import numpy as np


class TargetScaler:
    """Regression targets on a unit scale (log1p first for rmsle, and mape), so the output layer starts close.

    Example:
        >>> scaler = TargetScaler().fit(y_train, log=True)
        >>> z = scaler.transform(y_train); y = scaler.inverse_transform(z)
    """

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
    """Model outputs in kit's prediction form: (n, n_classes) probabilities or (n,) values.

    A network's (n, k, out) outputs are the k members' (`kit.models`): their probabilities (or
    scaled values) are averaged first.
    """
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 3:
        out = out.mean(axis=1)
    if task == "binary":
        p = out.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    if task == "multiclass":
        return out
    return scaler.inverse_transform(out.reshape(-1))


def graph_prediction(out, task: str, scaler: TargetScaler | None):
    """`to_prediction` in TensorFlow, in float64 like the in-memory path."""
    import tensorflow as tf

    out = tf.cast(out, tf.float64)
    if len(out.shape) == 3:
        out = tf.reduce_mean(out, axis=1)
    if task == "binary":
        p = out[:, 0]
        return tf.stack([1 - p, p], axis=1)
    if task == "multiclass":
        return out
    y = out[:, 0] * scaler.std_ + scaler.mean_
    return tf.math.expm1(y) if scaler.log_ else y


def class_probabilities(model, n_classes: int):
    """A fitted scikit-learn classifier's `predict_proba` as (n, n_classes) in kit's class order
    (its labels are kit's class indices): a class the training rows lacked gets probability 0."""
    columns = np.asarray(model.classes_, dtype=np.int64)

    def predict(x) -> np.ndarray:
        out = np.zeros((x.shape[0], n_classes))
        out[:, columns] = model.predict_proba(x)
        return out

    return predict
