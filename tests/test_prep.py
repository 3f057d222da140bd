"""Data prep: a Preprocessor that learns from the training fold only."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

from kit.competition import discover
from kit.derive import derive
from kit.errors import InputError
from kit.prep import Preprocessor


def _dense(prep: Preprocessor, frame: pl.DataFrame) -> np.ndarray:
    return prep.transform(frame)["numbers"]


def test_medians_come_from_the_training_fold():
    train = pl.DataFrame({"x": [1.0, 2.0, 2.0, 10.0, None]})
    val = pl.DataFrame({"x": [500.0, 600.0, 700.0]})
    prep = Preprocessor({"x": "numeric"}, scaling="standard").fit(train)
    missing = _dense(prep, pl.DataFrame({"x": [None]}, schema={"x": pl.Float64}))
    fold_median = _dense(prep, pl.DataFrame({"x": [2.0]}))
    whole_median = _dense(prep, pl.concat([train, val]).select(pl.col("x").median()))
    assert missing[0, 0] == pytest.approx(fold_median[0, 0])
    assert missing[0, 0] != pytest.approx(whole_median[0, 0])
    # the validation fold does not move the scaling either: training rows stay centred
    assert _dense(prep, train.drop_nulls())[:, 0].mean() == pytest.approx(
        _dense(prep, pl.DataFrame({"x": [3.75]}))[0, 0], abs=1e-5
    )


def test_a_value_only_in_the_validation_fold_is_unseen():
    train = pl.DataFrame({"c": ["a", "b", "c"] * 4})
    val = pl.DataFrame({"c": ["zeta", "a"]})
    prep = Preprocessor({"c": "categorical"}).fit(train)
    never = _dense(prep, pl.DataFrame({"c": ["never-seen"]}))
    out = _dense(prep, val)
    np.testing.assert_array_equal(out[0], never[0])
    assert out[0].sum() == 0  # no one-hot column for "zeta"
    assert out[1].sum() == 1


def test_unseen_test_categories_are_handled():
    roles = {"c": "categorical", "t": "text"}
    train = pl.DataFrame({"c": ["a", "b"] * 10, "t": [f"v{i % 8}" for i in range(20)]})
    prep = Preprocessor(roles, text_min_frequency=2).fit(train)
    test = pl.DataFrame({"c": ["new", "a", None], "t": ["brand-new", "v3", None]})
    out = prep.transform(test)
    assert out["numbers"].shape == (3, prep.n_dense_)
    assert np.isfinite(out["numbers"]).all()
    # text: index 0 is shared by unseen, rare and missing values; seen values get their own index
    codes = out["codes"][:, 0]
    assert codes[0] == 0 and codes[2] == 0 and codes[1] > 0
    assert prep.cardinalities_ == [8 + 1]
    assert codes.max() < prep.cardinalities_[0]


def test_text_min_frequency_sets_which_values_get_their_own_index():
    train = pl.DataFrame({"t": ["a"] * 12 + ["b"] * 4 + ["c"] * 3})
    a, b, c = 0, 12, 16  # first row of each value

    def codes(k):
        return Preprocessor({"t": "text"}, text_min_frequency=k).fit(train).transform(train)["codes"][:, 0]

    low, high = codes(2), codes(10)
    assert len({low[a], low[b], low[c]}) == 3  # all frequent enough at 2
    assert high[b] == high[c] > 0 and high[a] != high[b]  # 4 and 3 rows share the rare index at 10


def test_rare_text_values_share_one_index():
    train = pl.DataFrame({"t": ["common"] * 5 + ["once", "twice", "twice", "single"]})
    prep = Preprocessor({"t": "text"}, text_min_frequency=2).fit(train)
    codes = prep.transform(pl.DataFrame({"t": ["once", "single", "unseen", "common", "twice"]}))["codes"][
        :, 0
    ]
    assert codes[0] == codes[1] > 0  # seen once: one shared, trained index
    assert codes[2] == 0
    assert len({codes[0], codes[3], codes[4]}) == 3
    assert codes.max() < prep.cardinalities_[0]


def test_missing_indicators():
    train = pl.DataFrame(
        {"x": [1.0, None, 3.0, 4.0], "full": [1.0, 2.0, 3.0, 4.0], "c": ["a", None, "a", "b"]}
    )
    prep = Preprocessor({"x": "numeric", "full": "numeric", "c": "categorical"}, min_frequency=1).fit(train)
    names = list(prep.dense_.get_feature_names_out())
    out = _dense(prep, train)
    x_missing = out[:, names.index("numeric_missing__missingindicator_x")]
    c_missing = out[:, names.index("categorical_missing__missingindicator_c")]
    np.testing.assert_array_equal(x_missing, [0, 1, 0, 0])
    np.testing.assert_array_equal(c_missing, [0, 1, 0, 0])
    # only columns with missing values in training get an indicator
    assert not any("missingindicator_full" in n for n in names)
    # missing values are imputed, so the model never sees NaN
    assert np.isfinite(out).all()


def test_standard_scaling_centres_and_scales():
    rng = np.random.default_rng(0)
    train = pl.DataFrame({"x": rng.exponential(scale=50.0, size=2000)})
    z = _dense(Preprocessor({"x": "numeric"}, scaling="standard").fit(train), train)[:, 0]
    assert z.mean() == pytest.approx(0, abs=1e-4)
    assert z.std() == pytest.approx(1, abs=1e-3)
    # a linear map keeps the skew of the exponential (about 2)
    assert _skew(z) > 1.5


def test_quantile_scaling_makes_a_skewed_column_normal():
    rng = np.random.default_rng(0)
    train = pl.DataFrame({"x": rng.exponential(scale=50.0, size=2000)})
    prep = Preprocessor({"x": "numeric"}, scaling="quantile").fit(train)
    z = _dense(prep, train)[:, 0]
    assert abs(_skew(z)) < 0.1
    assert np.median(z) == pytest.approx(0, abs=0.05)
    assert np.all(np.diff(z[np.argsort(train["x"].to_numpy())]) >= 0)  # order is kept
    # values beyond the training range are clipped, not extrapolated to infinity
    far = _dense(prep, pl.DataFrame({"x": [1e9, -1e9]}))[:, 0]
    assert np.isfinite(far).all() and far[0] > 3 and far[1] < -3


def test_unknown_scaling_is_rejected():
    with pytest.raises(InputError, match="Unknown scaling 'minmax'"):
        Preprocessor({"x": "numeric"}, scaling="minmax")


def test_only_text_columns_gives_an_empty_dense_block():
    prep = Preprocessor({"t": "text"}).fit(pl.DataFrame({"t": ["a", "a", "b", "b"]}))
    out = prep.transform(pl.DataFrame({"t": ["a", "z"]}))
    assert out["numbers"].shape == (2, 0) and prep.n_dense_ == 0
    assert out["codes"][:, 0].tolist()[1] == 0


def test_synthetic_competition_transforms_to_finite_arrays(tmp_path):
    comp = discover(write_competition(tmp_path / "c", task="multiclass"))
    train, roles = derive(comp.train, comp.roles)
    test, _ = derive(comp.test, comp.roles)
    prep = Preprocessor(roles).fit(train)
    for frame in (train, test):
        out = prep.transform(frame)
        assert out["numbers"].dtype == np.float32 and out["codes"].dtype == np.int32
        assert out["numbers"].shape == (frame.height, prep.n_dense_)
        assert np.isfinite(out["numbers"]).all()


def _skew(z: np.ndarray) -> float:
    z = (z - z.mean()) / z.std()
    return float((z**3).mean())


def test_a_big_fold_is_fit_on_a_sample_and_transformed_in_chunks_as_a_whole_would_be(monkeypatch):
    import kit.prep

    rng = np.random.default_rng(0)
    n = 6000
    frame = pl.DataFrame(
        {
            "x": rng.lognormal(size=n),
            "c": rng.choice(["a", "b", "c", "rare"], size=n, p=[0.5, 0.3, 0.199, 0.001]),
            "t": [f"v{i}" for i in rng.integers(0, 300, n)],
        }
    )
    roles = {"x": "numeric", "c": "categorical", "t": "text"}
    whole = Preprocessor(roles).fit(frame)
    monkeypatch.setattr(kit.prep, "FIT_ROWS", 2000)
    monkeypatch.setattr(kit.prep, "TRANSFORM_ROWS", 700)
    sampled = Preprocessor(roles).fit(frame, seed=1)
    # the sample's median and quartiles are close to the fold's; the frequency thresholds scale with
    # it, so the same values get a column and an index of their own
    x_whole, x_sampled = (p.dense_.named_transformers_["numeric"][-1] for p in (whole, sampled))
    np.testing.assert_allclose(x_sampled.median_, x_whole.median_, rtol=0.1)
    assert sampled.n_dense_ == whole.n_dense_
    assert abs(sampled.cardinalities_[0] - whole.cardinalities_[0]) <= 10
    # chunks of 700 rows give what one pass gives
    chunked = sampled.transform(frame)
    monkeypatch.setattr(kit.prep, "TRANSFORM_ROWS", 10**9)
    one_pass = sampled.transform(frame)
    for key in ("numbers", "codes"):
        np.testing.assert_array_equal(chunked[key], one_pass[key])


def test_piecewise_linear_bins_are_the_advanced_tracks_and_skip_a_dates_parts():
    from kit.data import to_tensors
    from kit.features import Features

    rng = np.random.default_rng(0)
    roles = {"x": "numeric", "flag": "numeric", "sold__dayofyear": "numeric"}
    train = pl.DataFrame(
        {
            "x": rng.lognormal(0, 1, 300),
            "flag": rng.integers(0, 2, 300) * 1.0,
            "sold__dayofyear": rng.integers(1, 366, 300) * 1.0,
        }
    )
    rows = pl.DataFrame(
        {"x": [-5.0, 0.5, 1.0, 2.5, 100.0], "flag": [0.0] * 5, "sold__dayofyear": [1.0, 50, 100, 200, 400]}
    )
    prep = Preprocessor(roles, n_bins=8).fit(train)
    numbers = _dense(prep, rows)
    # 3 scaled numbers, then x's 8 bins: none for a flag of two values, none for the date's part
    assert numbers.shape == (5, 3 + 8)
    bins = numbers[:, 3:]
    assert bins.min() == 0 and bins.max() == 1
    assert bins[0].tolist() == [0] * 8 and bins[-1].tolist() == [1] * 8  # beyond the range: the ends
    # each bin filled in turn: nondecreasing in the value, at most one bin strictly between 0 and 1
    assert (np.diff(bins, axis=0) >= 0).all()
    assert (((bins > 0) & (bins < 1)).sum(axis=1) <= 1).all()
    # the same encoding the advanced track's layers compute in the graph
    features = Features(roles, n_bins=8, bin_encoding="linear").analyze(train)
    graph = features(to_tensors(rows))["numbers"].numpy()
    np.testing.assert_allclose(graph[:, -8:], bins, atol=1e-5)
    assert features.n_dense_ == 3 + 8


def test_a_wider_transform_is_the_same_columns_then_zeros_also_in_chunks(tmp_path, monkeypatch):
    import kit.prep

    comp = discover(write_competition(tmp_path / "c", n=500))
    train, roles = derive(comp.train, comp.roles)
    prep = Preprocessor(roles).fit(train)
    plain = prep.transform(train)["numbers"]
    monkeypatch.setattr(kit.prep, "TRANSFORM_ROWS", 128)  # 4 chunks
    wide = prep.transform(train, width=prep.n_dense_ + 5)["numbers"]
    assert wide.shape == (train.height, prep.n_dense_ + 5)
    np.testing.assert_array_equal(wide[:, : prep.n_dense_], plain)
    assert not wide[:, prep.n_dense_ :].any()


def test_one_hot_codes_are_the_positions_of_the_dense_one_hots():
    """Rare values share the infrequent column, unseen ones go there too, missing ones are imputed
    (and flagged) alike: the network's one-hots of the codes are the dense mode's columns."""
    rng = np.random.default_rng(0)
    train = pl.DataFrame(
        {
            "color": rng.permutation(
                ["red"] * 150 + ["green"] * 120 + ["blue"] * 100 + ["teal"] * 2 + [None] * 28
            ),
            "size": rng.choice(["S", "M", "L"], size=400),
        }
    )
    test = pl.DataFrame(
        {"color": ["red", "teal", "violet", None, "blue"], "size": ["M", "S", "L", "XL", None]}
    )
    roles = {"color": "categorical", "size": "categorical"}
    dense = Preprocessor(roles).fit(train)
    codes = Preprocessor(roles, one_hot="codes").fit(train)
    for frame in (train, test):
        want = dense.transform(frame)["numbers"]
        got = codes.transform(frame, one_hot_width=10)  # 7 one-hots, 3 zero columns after them
        hots = np.zeros((frame.height, 11), np.float32)
        np.put_along_axis(hots, got["categories"], 1.0, axis=1)
        np.testing.assert_array_equal(np.hstack([hots[:, :7], got["numbers"]]), want)
        assert not hots[:, 7:10].any()
    assert codes.depths_ == [4, 3]  # red, green, blue and the infrequent teal; S, M, L
    columns = codes.transform(test)["categories"]  # none: 7, one past the last
    assert columns[3, 0] < 4 and 4 <= columns[4, 1] < 7  # missing: the most frequent value
    assert columns[1, 0] == columns[2, 0] == 3  # rare and unseen: the infrequent column
    assert columns[3, 1] == 7  # unseen "XL" where no value was rare: no column


def test_fitting_and_transforming_rows_of_a_frame_is_doing_so_on_those_rows(tmp_path, monkeypatch):
    """A run hands the baseline its frame and a fold's row numbers, so that no copy of the fold is
    made: the prep must learn and give exactly what it would from the fold's own frame."""
    import kit.prep

    comp = discover(write_competition(tmp_path / "c", n=600))
    frame, roles = derive(comp.train, comp.roles)
    rows = np.random.default_rng(1).permutation(frame.height)[:450]
    monkeypatch.setattr(kit.prep, "TRANSFORM_ROWS", 100)  # several chunks
    for fit_rows in (10_000, 200):  # the whole fold, and a sample of it
        monkeypatch.setattr(kit.prep, "FIT_ROWS", fit_rows)
        own = Preprocessor(roles, one_hot="codes").fit(frame[rows], seed=4)
        by_rows = Preprocessor(roles, one_hot="codes").fit(frame, rows=rows, seed=4)
        want, got = own.transform(frame[rows], width=40), by_rows.transform(frame, rows=rows, width=40)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_a_big_folds_stored_tables_hold_the_same_values_in_half_the_bytes():
    """`stored`: numbers as float16, codes as int16 (a big training fold's tables); a value
    beyond float16's range is clipped to it, never infinite."""
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({
        "x": rng.normal(size=500),
        "c": rng.choice(["a", "b", "c"], 500),
        "t": [f"v{i % 60}" for i in range(500)],
    })  # fmt: skip
    roles = {"x": "numeric", "c": "categorical", "t": "text"}
    prep = Preprocessor(roles, scaling="standard", one_hot="codes", text_min_frequency=1).fit(frame)
    wide, narrow = prep.transform(frame), prep.transform(frame, stored=True)
    assert narrow["numbers"].dtype == np.float16
    assert narrow["codes"].dtype == narrow["categories"].dtype == np.int16
    assert narrow["numbers"].nbytes * 2 == wide["numbers"].nbytes
    np.testing.assert_allclose(narrow["numbers"].astype(np.float32), wide["numbers"], rtol=1e-3, atol=1e-3)
    for table in ("codes", "categories"):
        np.testing.assert_array_equal(narrow[table], wide[table])
    far = frame.head(1).with_columns(pl.lit(1e15).alias("x"))  # about 1e15 standard deviations out
    assert np.isfinite(prep.transform(far, stored=True)["numbers"]).all()
