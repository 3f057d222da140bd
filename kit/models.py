"""The Keras networks every track trains, and the loss each task trains on.

One builder, `build_network`, for both tracks: dense features and embedded code columns into
an MLP. The baseline gives each code column its own `Embedding` (`embeddings="per_column"`); the
advanced track, whose numeric columns each bring a quantile-bin code too, looks every code up in
one table (`embeddings="shared"`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

EMBEDDINGS = ("per_column", "shared")


def embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width, capped for small tabular data."""
    return int(min(32, max(2, round(1.6 * math.pow(cardinality, 0.56)))))


def output_units(task: str, n_classes: int) -> int:
    return n_classes if task == "multiclass" else 1


def build_network(
    n_dense: int,
    cardinalities: list[int],
    *,
    task: str = "binary",
    n_classes: int = 2,
    units: tuple[int, ...] = (256, 128),
    dropout: float = 0.1,
    embedding_size: int = 0,
    embeddings: str = "per_column",
    activation: str = "silu",
    seed: int = 0,
) -> keras.Model:
    """An MLP over dense features and embedded code columns.

    Args:
        n_dense: width of the dense (scaled numeric + one-hot) input.
        cardinalities: vocabulary size of each code column (index 0 = unknown).
        task: "binary" (sigmoid), "multiclass" (softmax) or "regression" (linear).
        units: width of each hidden layer.
        embedding_size: embedding width; 0 picks one per column from its cardinality
            ("per_column") or 8 ("shared").
        embeddings: "per_column" (an `Embedding` per code column) or "shared" (one table with a
            row offset per column: one gather and one sparse gradient per step however many
            code columns there are).
        seed: weight initialisation and dropout.

    Returns:
        An uncompiled model taking {"numbers": (n, n_dense) float32, "codes": (n, k) int32}.

    Example:
        >>> model = build_network(12, [50, 8], task="binary", units=(128, 64))
    """
    if embeddings not in EMBEDDINGS:
        raise ValueError(f"embeddings must be one of {EMBEDDINGS}. Received: embeddings={embeddings!r}")
    numbers = keras.Input((n_dense,), name="numbers")
    codes = keras.Input((len(cardinalities),), dtype="int32", name="codes")
    pieces = [numbers]
    if embeddings == "shared" and cardinalities:
        offsets = np.cumsum([0, *cardinalities[:-1]]).astype(np.int32)
        table = layers.Embedding(
            int(sum(cardinalities)),
            embedding_size or 8,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name="embeddings",
        )
        pieces.append(layers.Flatten()(table(keras.ops.add(codes, offsets))))
    elif embeddings == "per_column":
        for i, cardinality in enumerate(cardinalities):
            width = embedding_size or embedding_dim(cardinality)
            pieces.append(layers.Embedding(cardinality, width, name=f"embedding_{i}")(codes[:, i]))
    x = layers.Concatenate()(pieces) if len(pieces) > 1 else numbers
    for i, width in enumerate(units):
        x = layers.Dense(
            width, kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"hidden_{i}"
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation(activation)(x)
        x = layers.Dropout(dropout, seed=seed + i)(x)
    # the shared-table network has always seeded its output layer; the per-column one draws it
    # from Keras' global seed (set per run), and keeps doing so until the networks are reworked
    init = keras.initializers.GlorotUniform(seed=seed + len(units)) if embeddings == "shared" else None
    # float32 output keeps the loss stable under a mixed-precision policy
    out = layers.Dense(
        output_units(task, n_classes),
        activation={"binary": "sigmoid", "multiclass": "softmax", "regression": None}[task],
        kernel_initializer=init or "glorot_uniform",
        dtype="float32",
        name="output",
    )(x)
    return keras.Model({"numbers": numbers, "codes": codes}, out)


def loss_for(
    task: str, metric: str = "", *, reduction: str | None = "sum_over_batch_size"
) -> keras.losses.Loss:
    """The loss a network of this task trains on, for `fit()` (averaged) or a custom loop
    (`reduction=None`: one value per example, averaged over the global batch by the loop).

    mae and mape are scored on absolute errors, so they train on them too.
    """
    if task == "binary":
        return keras.losses.BinaryCrossentropy(reduction=reduction)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(reduction=reduction)
    if metric in ("mae", "mape"):
        return keras.losses.MeanAbsoluteError(reduction=reduction)
    return keras.losses.MeanSquaredError(reduction=reduction)
