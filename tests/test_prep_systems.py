"""The same malformed frames through both prep systems: `kit.prep.Preprocessor` (the baseline's,
scikit-learn) and `kit.features.Features` (the advanced track's, Keras layers in the graph).

Either way a fold's model inputs come out finite, of a fixed width, with rare and unseen values on
the unknown index, whatever the raw rows hold: a column all missing in the training fold, an
unseen category, infinities, text in a numeric column of the test rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kit.data import to_tensors
from kit.derive import derive
from kit.features import Features
from kit.prep import Preprocessor

ROLES = {"x": "numeric", "gone": "numeric", "color": "categorical", "city": "text", "absent": "categorical"}


class PrepSystem:
    """fit on a training frame, then transform any frame to (numbers, codes) as numpy."""

    def __init__(self, kind: str, roles: dict):
        self.kind, self.roles = kind, roles

    def fit(self, frame: pl.DataFrame) -> PrepSystem:
        if self.kind == "Preprocessor":
            self.fitted = Preprocessor(self.roles).fit(frame)
        else:
            self.fitted = Features(self.roles, min_frequency=1).analyze(frame)
        return self

    def transform(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "Preprocessor":
            out = self.fitted.transform(frame)
        else:
            out = {k: v.numpy() for k, v in self.fitted(to_tensors(frame)).items()}
        return np.asarray(out["numbers"]), np.asarray(out["codes"])


def raw(n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "x": rng.normal(size=n),
            "gone": pl.Series([None] * n, dtype=pl.Float64),  # all missing in this fold
            "color": rng.choice(["red", "green", "blue"], n),
            "city": [f"c{i % 7}" for i in range(n)],
            "absent": pl.Series([None] * n, dtype=pl.String),
        }
    )


MALFORMED = {
    "unseen category and city": lambda f: f.with_columns(
        pl.lit("purple").alias("color"), pl.lit("atlantis").alias("city")
    ),
    "infinities": lambda f: f.with_columns(
        pl.Series("x", [np.inf, -np.inf] * (f.height // 2)), pl.Series("gone", [np.inf] * f.height)
    ),
    "text in a numeric column": lambda f: f.with_columns(
        pl.Series("x", ["n/a", "7", "?", "1e3"] * (f.height // 4))
    ),
    "all missing": lambda f: f.with_columns(
        pl.lit(None, pl.Float64).alias("x"), pl.lit(None, pl.String).alias("color")
    ),
    "empty strings": lambda f: f.with_columns(pl.lit("").alias("color"), pl.lit("").alias("city")),
}


@pytest.fixture(params=["Preprocessor", "Features"])
def system(request) -> str:
    return request.param


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_rows_give_finite_inputs_of_the_trained_width(system, case):
    train, roles = derive(raw(200, seed=0), ROLES)
    prep = PrepSystem(system, roles).fit(train)
    clean_numbers, clean_codes = prep.transform(derive(raw(8, seed=1), ROLES)[0])
    bad, _ = derive(MALFORMED[case](raw(8, seed=1)), ROLES)
    numbers, codes = prep.transform(bad)
    assert numbers.shape == clean_numbers.shape and codes.shape == clean_codes.shape
    assert np.isfinite(numbers).all()
    assert codes.min(initial=0) >= 0


def test_an_unseen_value_lands_on_the_unknown_index(system):
    train, roles = derive(raw(200, seed=0), ROLES)
    prep = PrepSystem(system, roles).fit(train)
    _, codes = prep.transform(derive(MALFORMED["unseen category and city"](raw(4, seed=1)), ROLES)[0])
    city = codes[:, -1]  # text columns come last among the codes
    assert (city == 0).all()  # index 0: unseen (and missing) values, in both systems


def test_infinities_are_imputed_like_missing_values(system):
    train, roles = derive(raw(200, seed=0), ROLES)
    prep = PrepSystem(system, roles).fit(train)
    missing = raw(4, seed=1).with_columns(pl.lit(None, pl.Float64).alias("x"))
    infinite = raw(4, seed=1).with_columns(pl.lit(np.inf).alias("x"))
    a, _ = prep.transform(derive(missing, ROLES)[0])
    b, _ = prep.transform(derive(infinite, ROLES)[0])
    np.testing.assert_array_equal(a, b)


def spending(n: int, *, seed: int) -> pl.DataFrame:
    """A zero-inflated, heavy-tailed column (what a passenger spent), a symmetric one and a skewed
    one with negative values, neither of which is logged."""
    rng = np.random.default_rng(seed)
    spent = np.where(rng.random(n) < 0.6, 0.0, np.round(rng.lognormal(4, 2, n)))
    spent[::17] = np.nan
    return pl.DataFrame(
        {"spent": spent, "height": rng.normal(170, 10, n), "change": rng.lognormal(0, 1.5, n) - 2}
    ).with_columns(pl.col("spent").fill_nan(None))


def test_skewed_non_negative_columns_keep_their_large_values_apart(system):
    roles = {"spent": "numeric", "height": "numeric", "change": "numeric"}
    train = spending(2000, seed=0)
    rows = pl.DataFrame({"spent": [1_000.0, 10_000.0, 100_000.0], "height": [170.0] * 3, "change": [0.0] * 3})
    plain = PrepSystem(system, roles).fit(train)
    logged = PrepSystem(system, roles)
    logged.roles = roles
    logged.fitted = (
        Preprocessor(roles, log_skew=2.0).fit(train)
        if system == "Preprocessor"
        else Features(roles, log_skew=2.0, min_frequency=1).analyze(train)
    )
    squeezed, _ = plain.transform(rows)
    spread, _ = logged.transform(rows)
    # robust scaling and the smooth clip put big spenders together near 3; log1p keeps them apart
    assert np.ptp(squeezed[:, 0]) < 0.05
    assert np.diff(spread[:, 0]).min() > 0.15
    # the symmetric column and the one with negative values are scaled as before
    np.testing.assert_allclose(spread[:, 1:3], squeezed[:, 1:3], rtol=1e-5)
    # a negative spend at prediction time counts as 0, a missing one is imputed: both finite
    odd, _ = logged.transform(rows.with_columns(pl.Series("spent", [-5.0, 0.0, None])))
    assert np.isfinite(odd).all() and odd[0, 0] == pytest.approx(odd[1, 0])


def test_both_systems_log_and_scale_alike():
    roles = {"spent": "numeric", "height": "numeric", "change": "numeric"}
    train = spending(2000, seed=0)
    rows = spending(50, seed=1)
    baseline = Preprocessor(roles, log_skew=2.0).fit(train).transform(rows)["numbers"]
    graph = Features(roles, log_skew=2.0, min_frequency=1).analyze(train)
    advanced = graph(to_tensors(rows))["numbers"].numpy()
    np.testing.assert_allclose(advanced[:, :3], baseline[:, :3], rtol=1e-4, atol=1e-5)
    assert graph.logged_.tolist() == [1.0, 0.0, 0.0]
