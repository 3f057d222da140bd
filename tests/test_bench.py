"""The benchmark's holdout folders, its reference recipe's submissions and its scoring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

from kit.competition import discover

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
from holdout import make_holdout, split_rows  # noqa: E402

from bench import recipe_command, score  # noqa: E402


def test_holdout_is_a_competition_folder_with_the_same_name_and_sample_file(tmp_path):
    source = write_competition(tmp_path / "src" / "tiny", n=200)
    h = make_holdout(source, tmp_path / "work")

    assert h.folder.name == "tiny"
    assert sorted(p.name for p in h.folder.iterdir()) == ["sample_submission.csv", "test.csv", "train.csv"]
    test = pl.read_csv(h.folder / "test.csv")
    assert test.columns == pl.read_csv(source / "test.csv").columns  # no target, no train-only columns
    sample = pl.read_csv(h.folder / "sample_submission.csv")
    assert sample["row_id"].to_list() == h.truth["row_id"].cast(int).to_list() == test["row_id"].to_list()
    train = pl.read_csv(h.folder / "train.csv")
    assert train.height + test.height == 200
    assert set(train["row_id"]).isdisjoint(test["row_id"])
    # stratified: the held-out share of each class is 20% of it, give or take a row
    full = pl.read_csv(source / "train.csv")["label"].value_counts()
    held = h.truth["label"].value_counts()
    for label, count in full.iter_rows():
        assert abs(held.filter(pl.col("label") == label)["count"][0] - 0.2 * count) <= 1
    # kit reads the new folder as it reads the original
    assert (h.comp.target, h.comp.id, h.comp.submission.kind) == ("label", "row_id", "label")


def test_holdout_takes_the_latest_rows_for_a_time_column_and_the_last_group_for_a_group_column(tmp_path):
    source = write_competition(tmp_path / "tiny", n=200, task="regression")
    by_time = discover(source, time="when")
    mask, rule = split_rows(by_time.train, by_time, size=0.2, seed=0)
    when = by_time.train["when"].str.to_datetime()
    assert mask.sum() == 40 and "when" in rule
    assert when.filter(pl.Series(mask)).min() >= when.filter(pl.Series(~mask)).max()

    by_group = discover(source, group="color")
    mask, rule = split_rows(by_group.train, by_group, size=0.2, seed=0)
    assert set(by_group.train["color"].filter(pl.Series(mask))) == {"red"} and "red" in rule


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_hgb_recipe_writes_a_submission_that_checks_and_scores(tmp_path, task):
    source = write_competition(tmp_path / "src" / "tiny", n=200, task=task)
    h = make_holdout(source, tmp_path / "work")
    out = tmp_path / "hgb.csv"
    subprocess.run(recipe_command("hgb.py", h, out), check=True, capture_output=True)

    result = score(out, h)
    assert result.problem == ""
    # the synthetic target depends on x1 and color, so a fitted model beats a constant guess
    truth = h.truth["label"]
    if task == "binary":
        assert result.score > (truth == truth.mode()[0]).mean()  # accuracy of the majority class
    elif task == "multiclass":
        assert result.score < np.log(3)  # log loss of uniform probabilities
    else:
        assert result.score < truth.cast(pl.Float64).std()  # rmse of the mean
