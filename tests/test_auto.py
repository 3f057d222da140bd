"""`kit auto`: members on one set of folds within a time budget, their blend, and a rerun that
reuses what finished."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
from conftest import write_competition

import kit
from kit import kaggle
from kit.errors import InputError


def quiet(_line):
    pass


@pytest.fixture
def off_kaggle(tmp_path, monkeypatch):
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-kaggle-input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "no-kaggle-working"))


def test_auto_respects_a_short_budget_and_a_rerun_reuses_its_members(tmp_path, off_kaggle):
    data = write_competition(tmp_path / "tiny", n=240)
    budget = 40.0
    lines = []
    started = time.monotonic()
    result = kit.auto(
        data, time_budget=budget, folds=3, out=tmp_path / "runs", log=lines.append, progress=False
    )
    seconds = time.monotonic() - started
    assert seconds <= 1.1 * budget, "\n".join(lines)
    names = [m["member"] for m in result.members]
    assert names[0] == "auto-trees"  # trees first: seconds on any data
    # every member is a whole run folder on the same folds, and the final submission checks
    folds = [pl.read_parquet(tmp_path / "runs" / n / "oof.parquet")["fold"] for n in names]
    assert all(f.equals(folds[0]) for f in folds)
    assert kit.validate(result.submission_path, data).height == 80
    if len(names) > 1:
        assert result.final.track == "blend" and result.final.run_dir == tmp_path / "runs" / "auto-blend"
        weights = [m["weight"] for m in result.members]
        assert sum(w for w in weights if w) == pytest.approx(1.0)

    again = []
    started = time.monotonic()
    kit.auto(data, time_budget=budget, folds=3, out=tmp_path / "runs", log=again.append, progress=False)
    text = "\n".join(again)
    for name in names:
        if "seeds" not in name:  # how many seeds fit depends on the time left
            assert f"{name}: reusing" in text, text


def test_auto_with_a_budget_too_short_for_anything_says_so(tmp_path, off_kaggle, capsys):
    data = write_competition(tmp_path / "tiny", n=120)
    with pytest.raises(InputError, match="time-budget must be a positive"):
        kit.auto(data, time_budget=0, log=quiet)


def test_on_kaggle_the_final_submission_is_the_working_folders(tmp_path, monkeypatch):
    data = write_competition(tmp_path / "input" / "tiny", n=160)
    (tmp_path / "working").mkdir()
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "working"))
    result = kit.auto("tiny", time_budget=25, folds=2, log=quiet, progress=False)
    assert result.submission_path == tmp_path / "working" / "submission.csv"
    assert kit.validate(result.submission_path, data).height == pl.read_csv(data / "test.csv").height
    summary = tmp_path / "working" / "submissions" / "tiny" / result.members[0]["member"] / "metrics.json"
    assert json.loads(summary.read_text())["track"] == "trees"
