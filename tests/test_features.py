"""The analyze/map split: constants from the training fold only, Keras layers that apply them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kit.data import to_tensors
from kit.derive import MISSING
from kit.errors import InputError
from kit.features import Features
from kit.prep import RobustScaleSmoothClip

ROLES = {"x": "numeric", "color": "categorical", "city": "text"}


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[::10] = np.nan
    return pl.DataFrame(
        {
            "x": x,
            "color": rng.choice(["red", "green", None], n, p=[0.5, 0.4, 0.1]),
            # a long tail of names seen once, and a few frequent ones
            "city": [f"c{i % 5}" if i % 2 else f"rare{i}" for i in range(n)],
        }
    ).with_columns(pl.col("x").fill_nan(None))


def encode(features, f):
    out = features(to_tensors(f))
    return out["numbers"].numpy(), out["codes"].numpy()


def test_analyze_takes_constants_from_the_training_fold_only():
    train, val = frame(seed=0), frame(seed=1).with_columns(pl.col("x") + 100)
    features = Features(ROLES, n_bins=4, scaling="standard").analyze(train)
    x = train["x"].drop_nulls().to_numpy()
    median = np.median(x)
    filled = np.clip(
        np.where(
            np.isnan(train["x"].fill_null(np.nan).to_numpy()), median, train["x"].fill_null(np.nan).to_numpy()
        ),
        features.lower_[0],
        features.upper_[0],
    )
    assert features.medians_[0] == pytest.approx(median)
    assert features.centers_[0] == pytest.approx(filled.mean())
    assert features.factors_[0] == pytest.approx(1 / filled.std())
    np.testing.assert_allclose(features.boundaries_[0], np.quantile(filled, [0.25, 0.5, 0.75]), rtol=0.05)
    assert features.missing_rates_["x"] == pytest.approx(0.1)
    # mapping the shifted validation rows uses the training constants: clipped at the training maximum
    numbers, _ = encode(features, val)
    top = (features.upper_[0] - features.centers_[0]) * features.factors_[0]
    assert numbers[:, 0].max() == pytest.approx(top, rel=1e-5)


def test_robust_scaling_centres_on_the_median_divides_by_the_iqr_and_clips_smoothly():
    train = frame(seed=0)
    features = Features(ROLES).analyze(train)  # robust by default, as RealMLP scales
    x = train["x"].fill_null(np.nan).to_numpy()
    filled = np.where(np.isnan(x), np.nanmedian(x), x)
    q25, q75 = np.quantile(filled, [0.25, 0.75])
    assert features.centers_[0] == pytest.approx(np.median(filled))
    assert features.factors_[0] == pytest.approx(1 / (q75 - q25))
    # the same numbers as the baseline's scikit-learn transformer gives them
    expected = RobustScaleSmoothClip().fit(filled[:, None]).transform(filled[:, None])[:, 0]
    numbers, _ = encode(features, train)
    np.testing.assert_allclose(numbers[:, 0], expected, rtol=1e-5, atol=1e-6)
    # far outside the training range, a value stays within the smooth clip's bound of 3
    rows = frame(seed=1).with_columns(pl.col("x") * 1e30)
    far, _ = encode(features, rows)
    present = rows["x"].is_not_null().to_numpy()
    assert np.isfinite(far).all() and np.abs(far[:, 0]).max() <= 3 and np.abs(far[present, 0]).min() > 2.9


def test_piecewise_linear_bins_are_continuous_in_the_value_and_bounded():
    train = frame(seed=0)
    features = Features(ROLES, n_bins=4, bin_encoding="linear").analyze(train)
    edges = features.edges_[0]
    x = train["x"].drop_nulls().to_numpy()
    np.testing.assert_allclose(edges[[0, -1]], [x.min(), x.max()])
    # in "numbers" after the scaled value, the indicator and the one-hot colors; no bin index among "codes"
    assert features.cardinalities_ == [len(features.vocabularies_["city"]) + 1]
    sweep = np.linspace(edges[0] - 1, edges[-1] + 1, 401)
    rows = pl.DataFrame({"x": sweep, "color": ["red"] * len(sweep), "city": ["c1"] * len(sweep)})
    numbers, codes = encode(features, rows)
    bins = numbers[:, -(len(edges) - 1) :]
    assert numbers.shape[1] == features.n_dense_ and codes.shape[1] == 1
    assert bins.min() == 0 and bins.max() == 1
    # a value inside bin t: 1 for the bins below it, its place in its own bin, 0 above
    inside = (sweep > edges[1]) & (sweep < edges[2])
    np.testing.assert_allclose(bins[inside, 0], 1)
    np.testing.assert_allclose(bins[inside, 1], (sweep[inside] - edges[1]) / (edges[2] - edges[1]), atol=1e-5)
    np.testing.assert_allclose(bins[inside, 2:], 0)
    # continuous: a small step in the value moves the encoding by a small amount (no jump at an edge)
    step = np.abs(np.diff(bins, axis=0)).sum(axis=1)
    assert step.max() < 2 * (sweep[1] - sweep[0]) / np.diff(edges).min()


@pytest.mark.parametrize("encoding", ["linear", "embedding"])
def test_values_float32_cannot_tell_from_zero_make_no_bin_of_zero_width(encoding):
    """1e-40 is 0 to the graph's float32 kernels: an edge at each would make a bin of zero width,
    whose encoding divides by zero (the advanced track's loss was NaN at its first epoch)."""
    x = np.tile([1e-40, 0.0, 0.0, 1.5, 2.0, 1e-40, 0.0, 2.5], 25)
    train = pl.DataFrame({"x": x, "color": ["red"] * len(x), "city": ["c1"] * len(x)})
    features = Features(ROLES, n_bins=8, bin_encoding=encoding).analyze(train)
    edges = features.edges_[0] if encoding == "linear" else features.boundaries_[0]
    assert (np.diff(edges.astype(np.float32)) > np.finfo(np.float32).tiny).all(), edges
    numbers, _ = encode(features, train)
    assert np.isfinite(numbers).all()


def test_embedded_bins_give_each_value_its_bin_index_among_the_codes():
    train = frame(seed=0)
    features = Features(ROLES, n_bins=4, bin_encoding="embedding").analyze(train)
    assert features.cardinalities_[0] == len(features.boundaries_[0]) + 1
    sweep = np.linspace(0, 20, 101)
    rows = pl.DataFrame({"x": sweep, "color": ["red"] * len(sweep), "city": ["c1"] * len(sweep)})
    numbers, codes = encode(features, rows)
    assert numbers.shape[1] == features.n_dense_ == 1 + 1 + len(features.vocabularies_["color"]) + 1
    np.testing.assert_array_equal(codes[:, 0], np.searchsorted(features.boundaries_[0], sweep, side="right"))


def test_vocabularies_keep_frequent_values_and_send_the_rest_out_of_vocabulary():
    train = frame()
    features = Features(ROLES, min_frequency=2, max_tokens=3).analyze(train)
    assert features.vocabularies_["color"] == ["red", "green", MISSING]  # missing is a value of its own
    assert len(features.vocabularies_["city"]) == 3  # top-k of c0..c4; the rare{i} never qualify
    assert all(v.startswith("c") for v in features.vocabularies_["city"])
    rows = pl.DataFrame({"x": [1.0, None], "color": ["purple", None], "city": ["rare3", "c1"]})
    numbers, codes = encode(features, rows)
    one_hot = numbers[:, 2:6]  # x value, x missing indicator, then color's one-hot (OOV first), then x's bins
    assert one_hot[0].tolist() == [1, 0, 0, 0]  # unseen colour: the out-of-vocabulary slot
    assert one_hot[1].tolist() == [0, 0, 0, 1]  # missing colour: its own slot
    assert numbers.shape[1] == 6 + len(features.edges_[0]) - 1
    assert codes[0, -1] == 0  # an unseen city is index 0 of its embedding


def test_map_fills_missing_numbers_with_the_median_and_flags_them():
    features = Features(ROLES).analyze(frame())
    numbers, codes = encode(
        features, pl.DataFrame({"x": pl.Series([None], dtype=pl.Float64), "color": ["red"], "city": ["c1"]})
    )
    assert numbers[0, 0] == pytest.approx(0.0, abs=1e-6)  # the median, centred on itself
    assert numbers[0, 1] == 1.0
    assert numbers.shape[1] == features.n_dense_
    assert codes.shape[1] == len(features.cardinalities_)
    assert (codes < np.array(features.cardinalities_)).all()


def test_string_column_with_only_rare_values_is_left_out():
    train = pl.DataFrame({"x": np.arange(20.0), "name": [f"n{i}" for i in range(20)]})
    features = Features({"x": "numeric", "name": "text"}).analyze(train)
    assert features.dropped_ == ["name"]
    assert features.text_ == []
    numbers, codes = encode(features, train)
    assert codes.shape == (20, 0)  # no embedding left: x's bins are among the numbers
    assert numbers.shape == (20, features.n_dense_)


def test_features_reject_raw_roles():
    with pytest.raises(InputError, match="derived columns"):
        Features({"when": "datetime"})
