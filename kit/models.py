"""Keras model builders."""

from __future__ import annotations

import math

import keras
from keras import layers


def embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width, capped for small tabular data."""
    return int(min(32, max(2, round(1.6 * math.pow(cardinality, 0.56)))))


def output_units(task: str, n_classes: int) -> int:
    return n_classes if task == "multiclass" else 1


def build_mlp(
    n_dense: int,
    cardinalities: list[int],
    *,
    task: str = "binary",
    n_classes: int = 2,
    units: tuple[int, ...] = (256, 128),
    dropout: float = 0.1,
    embedding_size: int = 0,
    activation: str = "silu",
    seed: int = 0,
) -> keras.Model:
    """An MLP over dense features and one embedding per high-cardinality column.

    Args:
        n_dense: width of the dense (scaled numeric + one-hot) input.
        cardinalities: vocabulary size of each embedded column (index 0 = unknown).
        task: "binary" (sigmoid), "multiclass" (softmax) or "regression" (linear).
        units: width of each hidden layer.
        embedding_size: embedding width; 0 picks one per column from its cardinality.

    Returns:
        An uncompiled model taking {"numbers": (n, n_dense) float32, "codes": (n, k) int32}.

    Example:
        >>> model = build_mlp(12, [50, 8], task="binary", units=(128, 64))
    """
    dense_in = keras.Input((n_dense,), name="numbers")
    embed_in = keras.Input((len(cardinalities),), dtype="int32", name="codes")
    pieces = [dense_in]
    for i, cardinality in enumerate(cardinalities):
        width = embedding_size or embedding_dim(cardinality)
        embedded = layers.Embedding(cardinality, width, name=f"embedding_{i}")(embed_in[:, i])
        pieces.append(embedded)
    x = layers.Concatenate()(pieces) if len(pieces) > 1 else dense_in
    for i, width in enumerate(units):
        x = layers.Dense(
            width, kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"hidden_{i}"
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation(activation)(x)
        x = layers.Dropout(dropout, seed=seed + i)(x)
    activation_out = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[task]
    # float32 output keeps the loss stable under a mixed-precision policy
    out = layers.Dense(
        output_units(task, n_classes), activation=activation_out, dtype="float32", name="output"
    )(x)
    return keras.Model({"numbers": dense_in, "codes": embed_in}, out)


def loss_for(task: str, metric_name: str = "") -> str:
    if task == "binary":
        return "binary_crossentropy"
    if task == "multiclass":
        return "sparse_categorical_crossentropy"
    return "mean_absolute_error" if metric_name in ("mae", "mape") else "mean_squared_error"
