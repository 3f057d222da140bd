"""The linear track: what a blend gets from it (a line where trees need many steps, a many-valued
column's own effects) and a penalty chosen without the validation rows."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from conftest import write_frame

import kit
from kit import tracks
from kit.derive import derive
from kit.run import Fold, cross_validate


def quiet(_line):
    pass


def _stores(root, *, n=1200, seed=0):
    """A target linear in two numbers plus each of 40 stores' own effect (a text column: too many
    values for one-hot categoricals), with a little noise."""
    rng = np.random.default_rng(seed)
    total = n + n // 4
    x1, x2 = rng.normal(size=total), rng.exponential(size=total)
    stores = np.array([f"s{i:02d}" for i in range(40)])
    effect = dict(zip(stores, rng.normal(scale=2.0, size=40), strict=True))
    store = rng.choice(stores, size=total)
    y = 3 * x1 - 2 * x2 + np.array([effect[s] for s in store]) + rng.normal(scale=0.3, size=total)
    frame = pl.DataFrame({"id": np.arange(total), "x1": x1, "x2": x2, "store": store})
    return write_frame(root, frame, y, n)


def test_a_linear_target_with_a_many_valued_column_is_learned_where_trees_struggle(tmp_path):
    comp, cfg = kit.load(_stores(tmp_path / "stores"), metric="rmse", folds=3, seed=0)
    assert comp.roles["store"] == "text"
    # numbers as they are (the defaults' log and clipping bend a line, for the data's sake)
    plain = {"scaling": "standard", "log_skew": 0.0}
    scores = {
        name: cross_validate(
            comp, cfg, name, params=params, out=tmp_path / name, log=quiet, progress=False
        ).score
        for name, params in (("linear", plain), ("trees", {}))
    }
    # the noise is 0.3 (the stores' effects alone spread the target by 2): the line and every
    # store's effect are found
    assert scores["linear"] < 0.35 and scores["linear"] < 0.6 * scores["trees"], scores


def test_the_penalty_is_chosen_from_the_training_rows_alone(tmp_path):
    comp, _ = kit.load(_stores(tmp_path / "stores", n=400), metric="rmse")
    frame, roles = derive(comp.train, comp.roles, comp.parts)
    test, _ = derive(comp.test, comp.roles, comp.parts)
    y = comp.target_values()
    track = tracks.get("linear")

    def fold(y_val):
        return Fold(index=0, train=frame[:300], val=frame[300:], test=test, y_train=y[:300], y_val=y_val,
                    roles=roles, task="regression", n_classes=0, metric="rmse", seed=0)  # fmt: skip

    first = track.fit_predict_fold(fold(y[300:]), track.params({}))
    shuffled = track.fit_predict_fold(fold(np.random.default_rng(1).permutation(y[300:])), track.params({}))
    np.testing.assert_array_equal(first.val, shuffled.val)
    assert first.history["runtime"] == shuffled.history["runtime"]


def test_a_trend_past_the_training_rows_stays_within_the_targets_seen(tmp_path):
    # daily sales that double every 100 days; the test rows come after the training rows, where
    # the line on log sales would go on climbing
    rng = np.random.default_rng(0)
    day = np.arange(600.0)
    sold = np.exp(np.log(2) * day / 100) * rng.uniform(0.9, 1.1, size=600)
    frame = pl.DataFrame({"id": np.arange(600), "day": day, "shop": rng.choice(["a", "b", "c"], size=600)})
    root = tmp_path / "trend"
    root.mkdir()
    frame[:400].with_columns(pl.Series("sold", sold[:400])).write_csv(root / "train.csv")
    frame[400:].write_csv(root / "test.csv")
    frame[400:].select("id", pl.lit(0.0).alias("sold")).write_csv(root / "sample_submission.csv")
    comp, cfg = kit.load(root, metric="rmsle", folds=3, seed=0)
    run = cross_validate(comp, cfg, "linear", out=tmp_path / "run", log=quiet, progress=False)
    test = run.test_predictions["prediction"].to_numpy()
    assert test.max() <= sold[:400].max() * (1 + 1e-6) and test.min() >= sold[:400].min() * (1 - 1e-6)
    # and the fit is a good one where it has rows
    assert run.score < 0.15


def test_a_class_of_one_training_row_fits_without_library_warnings(tmp_path):
    # kit notes a class rarer than the folds itself; scikit-learn's inner folds would say it again
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    y[0] = 2
    frame = pl.DataFrame({"x": rng.normal(size=n) + y})
    fold = Fold(index=0, train=frame[:150], val=frame[150:], test=frame[150:], y_train=y[:150], y_val=y[150:],
                roles={"x": "numeric"}, task="multiclass", n_classes=3, metric="log_loss", seed=0)  # fmt: skip
    track = tracks.get("linear")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = track.fit_predict_fold(fold, track.params({}))
    assert not [w for w in caught if "least populated" in str(w.message)]
    assert result.val.shape == (50, 3) and np.isfinite(result.val).all()
