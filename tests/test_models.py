"""The network family's own layers (kit.models), apart from any track."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kit.models import FrontScale, build_network


def test_front_scale_starts_as_the_identity_and_learns_its_factor_times_as_fast():
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], np.float32)
    layer = FrontScale(6.0)
    np.testing.assert_allclose(np.asarray(layer(x)), x, rtol=1e-6)

    # Adam's first step moves every weight with a gradient by the learning rate (the gradient's sign
    # times lr): the scale, stored divided by its factor, moves 6 times as far
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(x))
    optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
    scale = np.asarray(layer.scale) * 6.0
    # d loss / d scale_j = sum of column j: 4, -2, -0.5 -> each scale steps down, up, up by 0.06
    np.testing.assert_allclose(scale, [1 - 0.06, 1 + 0.06, 1 + 0.06], atol=1e-4)


@pytest.mark.parametrize("k", [1, 4])
def test_a_network_with_a_front_scale_has_one_scale_per_input_column(k):
    plain = build_network(12, [50], task="binary", n_numeric=5, numeric_embedding="periodic", k=k)
    scaled = build_network(
        12, [50], task="binary", n_numeric=5, numeric_embedding="periodic", k=k, front_scale=6.0
    )
    layer = scaled.get_layer("front_scale")
    # 5 numeric columns at 8 wide after their periodic embedding, 7 dense ones as they are, and the
    # code column's embedding
    width = 5 * 8 + 7 + plain.get_layer("embedding_0").output_dim
    assert layer.scale.shape == (width,)
    assert len(scaled.trainable_weights) == len(plain.trainable_weights) + 1
    inputs = {"numbers": np.zeros((3, 12), np.float32), "codes": np.zeros((3, 1), np.int32)}
    assert scaled.predict_on_batch(inputs).shape == (3, k, 1)


def test_numeric_value_puts_each_scaled_value_beside_its_periodic_embedding():
    rng = np.random.default_rng(0)
    inputs = {
        "numbers": rng.normal(size=(4, 12)).astype(np.float32),
        "codes": rng.integers(0, 50, size=(4, 1)).astype(np.int32),
    }
    options = dict(task="regression", n_numeric=5, numeric_embedding="periodic", front_scale=6.0)
    plain, valued = (build_network(12, [50], **options, numeric_value=v) for v in (False, True))
    front = valued.get_layer("front_scale")
    # the 5 numeric columns go in a second time, as they are
    assert front.scale.shape[0] == plain.get_layer("front_scale").scale.shape[0] + 5

    # what the first layer reads: the embeddings, then every dense column unchanged (the numbers first)
    seen = keras.Model(valued.inputs, front.input)(inputs)
    embedded = 5 * 8
    np.testing.assert_allclose(np.asarray(seen)[:, embedded : embedded + 12], inputs["numbers"], rtol=1e-6)


def test_a_network_given_one_hot_columns_is_the_network_given_the_one_hots():
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(50, 6)).astype(np.float32)
    # two categorical columns: one-hot columns 0-2 and 3-7 of 10, or 10 for none
    columns = np.stack([rng.choice([0, 1, 2, 10], 50), rng.integers(3, 8, 50)], axis=1).astype(np.int32)
    hots = np.zeros((50, 11), np.float32)
    np.put_along_axis(hots, columns, 1.0, axis=1)
    codes = np.zeros((50, 0), np.int32)
    options = dict(task="binary", n_numeric=4, numeric_embedding="periodic", k=2, seed=3)
    plain = build_network(6 + 10, [], **options)
    coded = build_network(6, [], one_hot_width=10, n_categories=2, **options)
    np.testing.assert_allclose(
        coded.predict_on_batch({"numbers": numbers, "codes": codes, "categories": columns}),
        plain.predict_on_batch({"numbers": np.hstack([numbers, hots[:, :10]]), "codes": codes}),
        rtol=1e-6,
    )
