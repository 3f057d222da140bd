"""The Keras networks every track trains, and the loss each task trains on.

One family, built by `build_network`, for both tracks (the baseline trains it with `fit()`, the
advanced track in the custom loop): the ideas of the strongest tabular networks of 2024-25 on an
MLP.

- Numeric features come in robust-scaled and smoothly clipped (RealMLP; done by the prep) and can
  be embedded: periodic embeddings (`PeriodicEmbedding`, the "PLR lite" of Gorishniy et al. 2022)
  give the network a feature's value at several frequencies, so a single layer can bend it; the
  value itself can go in beside them (`numeric_value`, as RealMLP's embeddings keep it).
- Code columns (high-cardinality strings, and the advanced track's quantile bins under
  `bin_encoding = "embedding"`) are embedded, one `Embedding` per column or one table for all.
- A learned scale per input column (`FrontScale`, RealMLP's scaling layer) can come first, learning
  several times as fast as the other weights: a soft choice of the columns that matter.
- An efficient ensemble inside one network (TabM-mini, Gorishniy et al. 2025): `k` members share
  every weight but the first, a per-member scaling of the input (`ScaleEnsemble`), and their own
  output heads (`EnsembleHeads`). They train on the mean of their losses and predict the mean of
  their probabilities, at little more than one MLP's cost when the first layer dominates.

A network maps {"numbers": (n, n_dense) float32, "codes": (n, n_codes) int32} to (n, k, out):
`out` probabilities (sigmoid for binary, softmax for multiclass) or values, for each of its k
members; `kit.targets.to_prediction` averages the members.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from kit import metrics

EMBEDDINGS = ("per_column", "shared")
NUMERIC_EMBEDDINGS = ("none", "periodic")


def embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width, capped for small tabular data."""
    return int(min(32, max(2, round(1.6 * math.pow(cardinality, 0.56)))))


def output_units(task: str, n_classes: int) -> int:
    return n_classes if task == "multiclass" else 1


class PeriodicEmbedding(layers.Layer):
    """Each numeric feature at `n_frequencies` learned frequencies, then one shared linear layer
    and a ReLU ("PLR lite"): (n, n_features) -> (n, n_features * width).

    Frequencies start from a normal distribution with standard deviation `frequency_scale`
    (truncated at three of them); small scales (0.01-0.1) start close to linear.
    """

    def __init__(
        self,
        *,
        n_frequencies: int = 16,
        frequency_scale: float = 0.05,
        width: int = 8,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_frequencies, self.frequency_scale, self.width, self.seed = (
            n_frequencies,
            frequency_scale,
            width,
            seed,
        )

    def build(self, input_shape):
        n_features = input_shape[-1]
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(n_features, self.n_frequencies),
            initializer=keras.initializers.TruncatedNormal(stddev=self.frequency_scale, seed=self.seed),
        )
        self.linear = layers.Dense(
            self.width, kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed + 1), name="linear"
        )
        self.linear.build((None, n_features, 2 * self.n_frequencies))

    def call(self, x):
        angles = 2 * math.pi * ops.expand_dims(x, -1) * self.frequencies  # (n, features, frequencies)
        periodic = ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)
        embedded = ops.relu(self.linear(periodic))  # (n, features, width)
        return ops.reshape(embedded, (-1, x.shape[-1] * self.width))

    def get_config(self):
        return {
            **super().get_config(),
            "n_frequencies": self.n_frequencies,
            "frequency_scale": self.frequency_scale,
            "width": self.width,
            "seed": self.seed,
        }


class FrontScale(layers.Layer):
    """(n, d) -> (n, d): each input feature times a learned scale that starts at 1 (RealMLP's
    scaling layer), a soft feature selection ahead of the first hidden layer.

    It learns `lr_factor` times as fast as the other weights (6 in RealMLP): the weight is the scale
    divided by the factor, multiplied back in the call, and Adam's steps are the same size whatever
    a weight's gradient, so the scale moves `lr_factor` times as far per step.
    """

    def __init__(self, lr_factor: float = 6.0, **kwargs):
        super().__init__(**kwargs)
        self.lr_factor = lr_factor

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(1.0 / self.lr_factor),
        )

    def call(self, x):
        return x * (self.scale * self.lr_factor)

    def get_config(self):
        return {**super().get_config(), "lr_factor": self.lr_factor}


class ScaleEnsemble(layers.Layer):
    """(n, d) -> (n, k, d): k copies of the input, each scaled by a member's own vector.

    The one adapter of TabM-mini: every member sees its own scaling of the input and shares all the
    weights after it. Random signs (+1 or -1) start the members off in different directions.
    """

    def __init__(self, k: int, *, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.k, self.seed = k, seed

    def build(self, input_shape):
        rng = np.random.default_rng(self.seed)
        signs = rng.choice([-1.0, 1.0], size=(self.k, input_shape[-1])).astype("float32")
        self.scale = self.add_weight(
            name="scale", shape=signs.shape, initializer=keras.initializers.Constant(signs)
        )

    def call(self, x):
        return ops.expand_dims(x, 1) * self.scale

    def get_config(self):
        return {**super().get_config(), "k": self.k, "seed": self.seed}


class EnsembleHeads(layers.Layer):
    """(n, k, d) -> (n, k, units): a linear head of each member's own."""

    def __init__(self, units: int, *, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.seed = units, seed

    def build(self, input_shape):
        k, d = input_shape[-2], input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, d, self.units),
            initializer=keras.initializers.GlorotUniform(seed=self.seed),
        )
        self.bias = self.add_weight(name="bias", shape=(k, self.units), initializer="zeros")

    def call(self, x):
        return ops.einsum("nkd,kdu->nku", x, self.kernel) + self.bias

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed}


def build_network(
    n_dense: int,
    cardinalities: list[int],
    *,
    task: str = "binary",
    n_classes: int = 2,
    n_numeric: int = 0,
    units: tuple[int, ...] = (256, 256),
    dropout: float = 0.1,
    activation: str = "relu",
    batch_norm: bool = False,
    embedding_size: int = 0,
    embeddings: str = "per_column",
    numeric_embedding: str = "none",
    n_frequencies: int = 16,
    frequency_scale: float = 0.05,
    numeric_width: int = 8,
    numeric_value: bool = False,
    k: int = 1,
    front_scale: float = 0.0,
    one_hot_width: int = 0,
    n_categories: int = 0,
    seed: int = 0,
) -> keras.Model:
    """An MLP over dense features and embedded code columns, optionally an ensemble of k members.

    Args:
        n_dense: width of the "numbers" input (scaled numbers first, then indicators, one-hots).
        cardinalities: vocabulary size of each "codes" column (index 0 = unknown).
        n_numeric: how many of the first "numbers" columns are numeric features, for
            `numeric_embedding` (the indicators and one-hots after them go in as they are).
        units: width of each hidden layer.
        activation: of the hidden layers ("relu", "silu", "selu", "mish", ...).
        batch_norm: a BatchNormalization after each hidden layer.
        embedding_size: width of a code's embedding; 0 picks one per column from its
            cardinality ("per_column") or 8 ("shared").
        embeddings: "per_column" (an `Embedding` per code column) or "shared" (one table with a
            row offset per column: one gather and one sparse gradient per step however many
            code columns there are).
        numeric_embedding: "none" or "periodic" (`PeriodicEmbedding` of the numeric features).
        n_frequencies, frequency_scale, numeric_width: the periodic embedding's.
        numeric_value: with a periodic embedding, each scaled value also goes in as it is, beside
            its embedding (RealMLP's DenseNet-style connection, `plr_use_densenet`).
        k: ensemble members (1: a plain MLP); TabM-mini above 1.
        front_scale: a `FrontScale` of the whole input with this learning-rate factor (0: none).
        one_hot_width, n_categories: with categories, a "categories" input of `n_categories` columns,
            each the index of the one-hot column set among `one_hot_width` (that width itself:
            none), which the network makes and puts after the "numbers" columns, so that no
            table of one-hots is made outside it (`kit.prep.Preprocessor(one_hot="codes")`).
        seed: weight initialisation, the members' scalings and dropout.

    Returns:
        An uncompiled model: {"numbers", "codes"} -> (n, k, out) probabilities or values.

    Example:
        >>> model = build_network(12, [50, 8], task="binary", n_numeric=5, numeric_embedding="periodic", k=8)
    """
    if embeddings not in EMBEDDINGS:
        raise ValueError(f"embeddings must be one of {EMBEDDINGS}. Received: embeddings={embeddings!r}")
    if numeric_embedding not in NUMERIC_EMBEDDINGS:
        raise ValueError(
            f"numeric_embedding must be one of {NUMERIC_EMBEDDINGS}. Received: numeric_embedding={numeric_embedding!r}"
        )
    numbers = keras.Input((n_dense,), name="numbers")
    codes = keras.Input((len(cardinalities),), dtype="int32", name="codes")
    inputs = {"numbers": numbers, "codes": codes}
    if n_categories:
        inputs["categories"] = keras.Input((n_categories,), dtype="int32", name="categories")
        if one_hot_width:
            # one past the block: the column of "none", cut off
            hots = layers.CategoryEncoding(one_hot_width + 1, output_mode="multi_hot", name="one_hots")(
                inputs["categories"]
            )
            numbers = layers.Concatenate()([inputs["numbers"], hots[:, :one_hot_width]])
            n_dense += one_hot_width
    pieces = []
    if numeric_embedding == "periodic" and n_numeric:
        pieces.append(
            PeriodicEmbedding(
                n_frequencies=n_frequencies, frequency_scale=frequency_scale, width=numeric_width, seed=seed + 101,
                name="numeric_embedding",
            )(numbers[:, :n_numeric])
        )  # fmt: skip
        # with numeric_value, the scaled values go in too (and the columns after them): beyond the
        # training range a sine wraps round, while the value itself still carries a trend on
        if numeric_value:
            pieces.append(numbers)
        elif n_dense > n_numeric:
            pieces.append(numbers[:, n_numeric:])
    else:
        pieces.append(numbers)
    if embeddings == "shared" and cardinalities:
        offsets = np.cumsum([0, *cardinalities[:-1]]).astype(np.int32)
        table = layers.Embedding(
            int(sum(cardinalities)),
            embedding_size or 8,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name="embeddings",
        )
        pieces.append(layers.Flatten()(table(ops.add(codes, offsets))))
    elif embeddings == "per_column":
        for i, cardinality in enumerate(cardinalities):
            width = embedding_size or embedding_dim(cardinality)
            init = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed + 1000 + i)
            pieces.append(
                layers.Embedding(cardinality, width, embeddings_initializer=init, name=f"embedding_{i}")(
                    codes[:, i]
                )
            )
    x = layers.Concatenate()(pieces) if len(pieces) > 1 else pieces[0]
    if front_scale:
        x = FrontScale(front_scale, name="front_scale")(x)
    # (n, d) -> (n, k, d): the members' own scalings; a plain MLP is an ensemble of one
    x = ScaleEnsemble(k, seed=seed + 7, name="members")(x) if k > 1 else ops.expand_dims(x, 1)
    for i, width in enumerate(units):
        x = layers.Dense(
            width, kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"hidden_{i}"
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"norm_{i}")(x)
        x = layers.Activation(activation)(x)
        x = layers.Dropout(dropout, seed=seed + i)(x)
    out_units = output_units(task, n_classes)
    # float32 output keeps the loss stable under a mixed-precision policy
    out = EnsembleHeads(out_units, seed=seed + len(units), dtype="float32", name="heads")(x)
    final = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]
    out = layers.Activation(final, dtype="float32", name="output")(out)
    return keras.Model(inputs, out)


class EnsembleLoss(keras.losses.Loss):
    """The task's loss for (n, k, out) predictions: each member's loss on the target, averaged over
    the members (TabM trains on the mean of the k losses, not on the loss of their mean).

    Args:
        task: "binary", "multiclass" or "regression".
        absolute: regression on absolute errors (mae, mape) instead of squared ones.
        label_smoothing: for classification, the share of the target spread over all classes.
        reduction: "sum_over_batch_size" for `fit()`; None for one value per example, which a
            custom loop averages over its global batch.
    """

    def __init__(
        self,
        task: str,
        *,
        absolute: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "ensemble_loss",
    ):
        super().__init__(name=name, reduction=reduction)
        self.task, self.absolute, self.label_smoothing = task, absolute, label_smoothing

    def call(self, y_true, y_pred):
        if len(y_pred.shape) == 2:  # a network of another family: one member
            y_pred = ops.expand_dims(y_pred, 1)
        k, width = y_pred.shape[-2], y_pred.shape[-1]
        y = ops.reshape(y_true, (-1, 1))
        if self.task == "multiclass":
            target = ops.one_hot(ops.cast(ops.repeat(y, k, axis=1), "int32"), width)
            per_member = keras.losses.categorical_crossentropy(
                target, y_pred, label_smoothing=self.label_smoothing
            )
        else:
            target = ops.expand_dims(ops.repeat(ops.cast(y, y_pred.dtype), k, axis=1), -1)
            if self.task == "binary":
                per_member = keras.losses.binary_crossentropy(
                    target, y_pred, label_smoothing=self.label_smoothing
                )
            elif self.absolute:
                per_member = ops.mean(ops.abs(target - y_pred), axis=-1)
            else:
                per_member = ops.mean(ops.square(target - y_pred), axis=-1)
        return ops.mean(per_member, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "task": self.task,
            "absolute": self.absolute,
            "label_smoothing": self.label_smoothing,
        }


def loss_for(
    task: str,
    metric: str = "",
    *,
    label_smoothing: float = 0.0,
    reduction: str | None = "sum_over_batch_size",
) -> EnsembleLoss:
    """The loss a network of this task trains on, for `fit()` (averaged) or a custom loop
    (`reduction=None`). mae, mape and smape are scored on absolute errors, so they train on them;
    `label_smoothing` applies only where the metric scores labels.
    """
    return EnsembleLoss(
        task,
        absolute=bool(metric) and metrics.get(metric).absolute,
        # a metric scored on labels charges a confident wrong probability nothing more, so the
        # network may train on smoothed targets; log_loss and roc_auc score the probabilities
        label_smoothing=label_smoothing if metric and metrics.get(metric).labels else 0.0,
        reduction=reduction,
    )


# a track's parameters that shape its network (passed to `build_network` as they are)
NETWORK_PARAMS = (
    "units", "dropout", "activation", "batch_norm", "embedding_size", "numeric_embedding",
    "n_frequencies", "frequency_scale", "numeric_width", "numeric_value", "k", "front_scale",
)  # fmt: skip
# decoupled weight decay pulls weights toward 0; biases, norm scales, embeddings, the scalings of
# the input (the front one and the members') and the frequencies have no reason to shrink
NO_WEIGHT_DECAY = ["bias", "gamma", "beta", "embeddings", "scale", "frequencies"]


def network_options(params: dict) -> dict:
    """The `build_network` keywords among a track's parameters."""
    return {k: tuple(v) if k == "units" else v for k, v in params.items() if k in NETWORK_PARAMS}


def learning_rate_schedule(learning_rate: float, *, total_steps: int, warmup: float, floor: float = 0.01):
    """Linear warm-up over a `warmup` share of the steps, then cosine decay to `floor` x the peak."""
    warmup_steps = int(warmup * total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=floor,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def adjustable_schedule(learning_rate: float, *, total_steps: int, warmup: float, floor: float = 0.01):
    """`learning_rate_schedule` with its lengths in variables: a traced train step reads them when it
    runs, so a compiled model trains a fold of another length (`set_schedule_steps`) without being
    traced again. The same learning rates at every step (no warm-up is a warm-up of 0 steps)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=keras.Variable(1.0, trainable=False, name="decay_steps"),
        alpha=floor,
        warmup_target=learning_rate,
        warmup_steps=keras.Variable(0.0, trainable=False, name="warmup_steps"),
    )
    set_schedule_steps(schedule, total_steps=total_steps, warmup=warmup)
    return schedule


def set_schedule_steps(schedule, *, total_steps: int, warmup: float) -> None:
    """Point an `adjustable_schedule` at a training of `total_steps` steps."""
    warmup_steps = int(warmup * total_steps)
    schedule.warmup_steps.assign(float(warmup_steps))
    schedule.decay_steps.assign(float(max(total_steps - warmup_steps, 1)))
