"""Synthetic competitions whose structure we control, laid out as Kaggle gives them.

Each shape tests one thing a tabular model must do, so defaults chosen on the real competitions
are checked on structure those may lack:

- `smooth`: a regression target that is a smooth non-linear function of a few of 8 numbers
  (sines, a product, a threshold), with noise and missing values; rmse.
- `interaction`: a binary target driven by the interaction of two high-cardinality categories
  (a user's taste for an item's genre) and one number; roc_auc.
- `heavy_tails`: numbers from log-normal, Pareto and Cauchy-like distributions, the target
  depending on their logarithms; a few extreme outliers in test; rmsle on a positive target.
- `scale`: any number of rows: 10 numeric columns with missing values, 5 low- and 2
  high-cardinality categorical columns, a flag and a timestamp; a binary target; roc_auc.
- `sales`: the shape of a real 177k-row playground competition: daily sales by date, country,
  store and product, with yearly and weekly seasonality and GDP-like country levels; mape.

    python bench/synthetic.py smooth /tmp/synthetic/smooth --rows 6000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

SHAPES = ("smooth", "interaction", "heavy_tails", "scale", "sales")
METRICS = {
    "smooth": "rmse",
    "interaction": "roc_auc",
    "heavy_tails": "rmsle",
    "scale": "roc_auc",
    "sales": "mape",
}
TARGETS = {
    "smooth": "y",
    "interaction": "clicked",
    "heavy_tails": "price",
    "scale": "target",
    "sales": "num_sold",
}
DEFAULT_ROWS = {"smooth": 6000, "interaction": 8000, "heavy_tails": 6000, "scale": 100_000, "sales": 177_000}


def make(
    shape: str,
    root: str | Path,
    *,
    rows: int | None = None,
    seed: int = 0,
    test_share: float = 0.25,
    truth: bool = False,
) -> Path:
    """Write train.csv, test.csv and sample_submission.csv of a synthetic competition; returns the
    folder. `rows` counts train and test rows together. Pass `METRICS[shape]` as the metric
    (and `time="date"` for sales). With `truth`, the test rows' targets go to `<root>-truth.csv`
    beside the folder (not in it, where kit would find them), to score a submission against."""
    if shape not in SHAPES:
        raise ValueError(f"Unknown shape '{shape}'. Use one of: {', '.join(SHAPES)}. Received: shape={shape}")
    rows = rows or DEFAULT_ROWS[shape]
    rng = np.random.default_rng(seed)
    frame, target = {"smooth": _smooth, "interaction": _interaction, "heavy_tails": _heavy_tails,
                     "scale": _scale, "sales": _sales}[shape](rows, rng)  # fmt: skip
    frame = frame.with_row_index("id").with_columns(pl.col("id").cast(pl.Int64))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if shape == "sales":  # the test days come after the train days, as in the real competition
        is_test = frame["date"] >= frame["date"].sort()[int(frame.height * (1 - test_share))]
    else:
        is_test = pl.Series(rng.random(frame.height) < test_share)
    train, test = frame.filter(~is_test), frame.filter(is_test)
    if truth:
        test.select("id", target).write_csv(root.parent / f"{root.name}-truth.csv")
    test = test.drop(target)
    train.write_csv(root / "train.csv")
    test.write_csv(root / "test.csv")
    if METRICS[shape] == "roc_auc":
        placeholder = 0.5  # a probability: the submission holds the positive class's
    elif train[target].dtype.is_float():
        placeholder = train[target].median()
    else:
        placeholder = train[target].mode()[0]
    test.select("id", pl.lit(placeholder).alias(target)).write_csv(root / "sample_submission.csv")
    return root


def _with_missing(x: np.ndarray, rng, share: float) -> list:
    return [None if m else float(v) for v, m in zip(x, rng.random(len(x)) < share, strict=True)]


def _smooth(n: int, rng) -> tuple[pl.DataFrame, str]:
    x = rng.uniform(-3, 3, size=(n, 8))
    y = (
        np.sin(1.5 * x[:, 0])
        + 0.5 * x[:, 1] * x[:, 2]
        + np.where(x[:, 3] > 0.5, 1.0, -0.5)
        + 0.3 * x[:, 4] ** 2
        + rng.normal(scale=0.3, size=n)
    )
    columns = {f"x{i}": _with_missing(x[:, i], rng, 0.05) if i < 3 else x[:, i] for i in range(8)}
    return pl.DataFrame({**columns, "y": y}), "y"


def _interaction(n: int, rng) -> tuple[pl.DataFrame, str]:
    users, items, genres = 400, 300, 12
    taste = rng.normal(size=(users, genres))
    genre_of = rng.integers(0, genres, items)
    user = rng.integers(0, users, n)
    item = rng.integers(0, items, n)
    age = rng.uniform(18, 80, n)
    logit = 1.5 * taste[user, genre_of[item]] + 0.03 * (age - 45) + rng.normal(scale=0.5, size=n)
    y = (logit > 0.3).astype(int)
    return pl.DataFrame(
        {
            "user": [f"u{u}" for u in user],
            "item": [f"i{i}" for i in item],
            "age": age,
            "weekday": rng.choice(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], n),
            "clicked": y,
        }
    ), "clicked"


def _heavy_tails(n: int, rng) -> tuple[pl.DataFrame, str]:
    income = rng.lognormal(10, 1.2, n)
    size = (rng.pareto(1.5, n) + 1) * 50
    noise = rng.standard_cauchy(n)
    ratio = rng.lognormal(0, 2, n)
    y = np.exp(
        0.4 * np.log(income) + 0.3 * np.log(size) - 0.1 * np.log(ratio) + rng.normal(scale=0.2, size=n)
    )
    return pl.DataFrame(
        {
            "income": _with_missing(income, rng, 0.03),
            "size": size,
            "noise": noise,
            "ratio": ratio,
            "kind": rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]),
            "price": y,
        }
    ), "price"


def _scale(n: int, rng) -> tuple[pl.DataFrame, str]:
    x = rng.normal(size=(n, 10)).astype(np.float32)
    x[rng.random((n, 10)) < 0.1] = np.nan
    low = [rng.integers(0, c, n) for c in (3, 5, 7, 10, 20)]
    high = [rng.integers(0, c, n) for c in (5000, 20000)]
    flag = rng.random(n) < 0.3
    days = rng.integers(0, 3 * 365, n)
    effect = rng.normal(size=5000)[high[0]] * 0.5
    logit = (
        np.nan_to_num(x[:, 0]) - 0.7 * np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])
        + 0.4 * np.sin(np.nan_to_num(x[:, 3]) * 2) + 0.3 * (low[0] == 1) + 0.2 * low[2] / 7
        + 0.5 * flag + effect + 0.3 * np.sin(2 * np.pi * days / 365) + rng.logistic(size=n)
    )  # fmt: skip
    columns = {f"num{i}": x[:, i] for i in range(10)}
    columns |= {f"cat{i}": np.char.add("c", low[i].astype(str)) for i in range(5)}
    columns |= {f"code{i}": np.char.add("h", high[i].astype(str)) for i in range(2)}
    start = np.datetime64("2021-01-01")
    return pl.DataFrame(
        {
            **columns,
            "flag": flag,
            "when": (start + days.astype("timedelta64[D]")).astype(str),
            "target": (logit > 0).astype(int),
        }
    ), "target"


def _sales(n: int, rng) -> tuple[pl.DataFrame, str]:
    countries = {"Argentina": 0.4, "Canada": 2.2, "Estonia": 1.1, "Japan": 1.9, "Spain": 1.4, "Kenya": 0.2}
    stores = {"Discount Stickers": 0.5, "Stickers for Less": 1.6, "Premium Sticker Mart": 1.9}
    products = {
        "Holographic Goose": 0.1,
        "Kaggle": 1.0,
        "Kaggle Tiers": 0.8,
        "Kerneler": 0.4,
        "Kerneler Dark Mode": 0.45,
    }
    combos = len(countries) * len(stores) * len(products)
    n_days = max(1, n // combos)
    dates = np.datetime64("2010-01-01") + np.arange(n_days).astype("timedelta64[D]")
    day = np.arange(n_days)
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    weekday = (day + 4) % 7  # 2010-01-01 was a Friday
    season = 1 + 0.2 * np.sin(2 * np.pi * day / 365.25) + 0.15 * (weekday >= 5)
    growth = 1 + 0.03 * (year - 2010) + rng.normal(scale=0.02, size=n_days).cumsum() * 0.05
    rows = []
    for c, c_level in countries.items():
        for s, s_level in stores.items():
            for p, p_level in products.items():
                phase = rng.uniform(0, 2 * np.pi)
                wave = 1 + 0.25 * np.sin(2 * np.pi * day / 365.25 * 2 + phase)
                mean = 150 * c_level * s_level * p_level * season * growth * wave
                # at least one sold a day, as in the real competition: MAPE has no meaning at zero
                sold = np.maximum(rng.poisson(mean), 1).astype(float)
                sold[rng.random(n_days) < 0.02] = np.nan  # a few missing days, as the real one has
                rows.append(
                    pl.DataFrame(
                        {"date": dates.astype(str), "country": c, "store": s, "product": p, "num_sold": sold}
                    )
                )
    frame = pl.concat(rows).sort("date", "country", "store", "product")
    return frame.filter(pl.col("num_sold").is_not_null() | (pl.int_range(pl.len()) % 2 == 0)), "num_sold"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=SHAPES)
    parser.add_argument("out")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(make(args.shape, args.out, rows=args.rows, seed=args.seed))


if __name__ == "__main__":
    main()
