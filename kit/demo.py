"""The built-in demo competition: Palmer penguins laid out like a Kaggle competition.

Built offline from the raw CSV that ships inside the `palmerpenguins` package: predict a
penguin's sex from its measurements. It has what real competitions have: missing values, rows
with a missing target, categorical, boolean, datetime, free-text and constant columns.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from kit.errors import InputError
from kit.io import write_atomic

DEMO_DIR = Path("data") / "penguins-demo"


def make_demo(dest: str | Path = DEMO_DIR, *, seed: int = 0) -> Path:
    """Write train.csv, test.csv and sample_submission.csv for the demo; return the folder."""
    dest = Path(dest)
    if all((dest / f).is_file() for f in ("train.csv", "test.csv", "sample_submission.csv")):
        return dest
    try:
        raw = resources.files("palmerpenguins") / "data" / "penguins-raw.csv"
    except ModuleNotFoundError:
        raise InputError(
            "The demo competition is built from the palmerpenguins package, which is not installed. "
            "Run `pip install palmerpenguins`, or pass a competition folder."
        ) from None
    with resources.as_file(raw) as path:
        frame = pl.read_csv(path, null_values=["NA", ""])
    frame = frame.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    # test: 25% of the rows whose sex is known, so the demo can be scored against the truth later
    rng = np.random.default_rng(seed)
    known = frame.filter(pl.col("Sex").is_not_null() & (pl.col("Sex") != "."))["id"].to_numpy()
    test_ids = set(rng.choice(known, size=len(known) // 4, replace=False).tolist())
    is_test = pl.col("id").is_in(list(test_ids))
    train = frame.filter(~is_test).with_columns(
        # one row spells an unknown sex as "."; a real file's quirk, kept as missing
        pl.when(pl.col("Sex") == ".").then(None).otherwise(pl.col("Sex")).alias("Sex")
    )
    test = frame.filter(is_test).drop("Sex")
    sample = test.select("id", pl.lit("MALE").alias("Sex"))
    write_atomic(dest / "train.csv", train)
    write_atomic(dest / "test.csv", test)
    write_atomic(dest / "sample_submission.csv", sample)
    return dest
