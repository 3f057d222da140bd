"""Cut an internal holdout from a competition's train file and lay it out as a competition folder.

The folder gets the competition's own name (so kit picks up `pipelines/configs/<name>.toml`),
train.csv (the rest of train), test.csv (the holdout, with only the real test file's columns) and
a sample submission under the original sample's name with the holdout's ids.

The split follows the competition's config, as ../shared/BENCH.md describes:
- a group column: the last group (in sorted order) is held out, e.g. product_code E for tps-aug-2022;
- a time column: the last 20% of rows by time, e.g. bike-sharing-demand;
- classification: a stratified 20%; regression: a random 20%.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from kit import api
from kit.competition import Competition
from kit.derive import parse_datetime
from kit.split import make_folds


@dataclass
class Holdout:
    """A competition folder cut from train.csv, and the held-out truth to score against."""

    name: str
    folder: Path
    truth: pl.DataFrame  # id and target, as spelled in train.csv, in the sample file's row order
    rule: str  # how the rows were split, for the report
    comp: Competition  # what kit infers from the new folder


def split_rows(train: pl.DataFrame, comp: Competition, *, size: float, seed: int) -> tuple[np.ndarray, str]:
    """A boolean mask of the held-out rows, and a description of the rule."""
    if comp.group is not None:
        last = train[comp.group].drop_nulls().unique().sort()[-1]
        return (train[comp.group] == last).fill_null(False).to_numpy(), f"{comp.group} {last} held out"
    if comp.time is not None:
        # stable sort: rows with the same time keep file order
        order = np.argsort(parse_datetime(train[comp.time]).to_numpy(), kind="stable")
        mask = np.zeros(train.height, dtype=bool)
        mask[order[int(round(train.height * (1 - size))) :]] = True
        return mask, f"last {size:.0%} by {comp.time}"
    stratify = train[comp.target].to_numpy() if comp.task != "regression" else None
    # kit's own holdout: the same cutter as `--split holdout`
    ((_, held),) = make_folds(train.height, strategy="holdout", seed=seed, y=stratify, holdout_size=size)
    mask = np.zeros(train.height, dtype=bool)
    mask[held] = True
    return mask, f"{'stratified ' if stratify is not None else ''}random {size:.0%}, seed {seed}"


def make_holdout(source: str | Path, root: str | Path, *, size: float = 0.2, seed: int = 0) -> Holdout:
    """Write `root/<competition name>/` from the competition at `source`; see the module docstring."""
    original, _ = api.load(source)
    if original.sample_path is None or not all(
        p.suffix == ".csv" for p in (original.train_path, original.test_path, original.sample_path)
    ):
        raise ValueError(
            f"The benchmark needs CSV train, test and sample files in '{source}'. "
            f"Received: {original.train_path.name}, {original.test_path.name}, {original.sample_path}"
        )
    # every column as text: values (True/False, 0/1, "NA") are written back exactly as Kaggle spelled them
    train = pl.read_csv(original.train_path, infer_schema=False)
    test_columns = pl.read_csv(original.test_path, infer_schema=False, n_rows=1).columns
    sample = pl.read_csv(original.sample_path, infer_schema=False)
    train = train.filter(pl.col(original.target).is_not_null())

    held, rule = split_rows(train, original, size=size, seed=seed)
    rest, holdout = train.filter(~held), train.filter(held)

    folder = Path(root) / original.name
    folder.mkdir(parents=True, exist_ok=True)
    rest.write_csv(folder / "train.csv")
    # only the real test file's columns: the target and train-only columns (casual, registered) go
    holdout.select(test_columns).write_csv(folder / "test.csv")
    # the original sample's values, repeated: they tell labels from probabilities
    filler = sample.drop(original.id)
    filler = pl.concat([filler] * (holdout.height // sample.height + 1)).head(holdout.height)
    pl.concat([holdout.select(original.id), filler], how="horizontal").select(sample.columns).write_csv(
        folder / original.sample_path.name
    )
    comp, _ = api.load(folder)
    truth = holdout.select(original.id, original.target)
    return Holdout(name=original.name, folder=folder, truth=truth, rule=rule, comp=comp)
