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
    folds = [pl.read_parquet(f"{m['run_dir']}/oof.parquet")["fold"] for m in result.members]
    assert all(f.equals(folds[0]) for f in folds)
    assert kit.validate(result.submission_path, data).height == 80
    if len(names) > 1:
        assert result.final.track == "blend" and result.final.run_dir == tmp_path / "runs" / "auto-blend"
        weights = [m["weight"] for m in result.members]
        assert sum(w for w in weights if w) == pytest.approx(1.0)

    again = []  # a shorter budget: reused members cost no time, so the rerun reaches each of them
    kit.auto(data, time_budget=budget / 3, folds=3, out=tmp_path / "runs", log=again.append, progress=False)
    text = "\n".join(again)
    for name in names:
        if "seeds" not in name and "tuned" not in name:  # seeds: as many as the time left holds
            assert f"{name}: reusing" in text, text


def test_a_member_is_not_started_once_the_budget_ran_out_but_the_first_finishes(
    tmp_path, off_kaggle, monkeypatch
):
    from kit import automl
    from kit.automl import Step

    monkeypatch.setattr(automl, "PLAN", (Step("trees"), Step("linear")))
    data = write_competition(tmp_path / "tiny", n=120)
    lines = []
    result = kit.auto(data, time_budget=0.5, folds=2, out=tmp_path / "runs", log=lines.append, progress=False)
    assert [m["member"] for m in result.members] == ["auto-trees"]  # a submission all the same
    assert "auto-linear: skipped, the budget ran out" in lines
    assert not (tmp_path / "runs" / "auto-linear").exists()


def test_auto_with_a_budget_too_short_for_anything_says_so(tmp_path, off_kaggle, capsys):
    data = write_competition(tmp_path / "tiny", n=120)
    for budget in (0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="time-budget must be a positive"):
            kit.auto(data, time_budget=budget, log=quiet)


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


def test_the_plan_sizes_each_seeds_step_from_its_own_tracks_run():
    from kit.automl import PLAN, Step, _estimate, _seeds_step

    assert [s.track for s in PLAN if s.seeds > 1] == ["baseline", "advanced"]
    seconds = {"auto-trees": 2.0, "auto-baseline": 10.0, "auto-advanced": 30.0}
    assert _estimate(Step("advanced"), {"auto-baseline": 10.0}) == pytest.approx(25.0)  # before it ran
    assert _estimate(Step("advanced", seeds=3), seconds) == pytest.approx(90.0)
    assert _seeds_step(Step("advanced", seeds=5), seconds, left=100.0) == Step("advanced", seeds=3)
    assert _seeds_step(Step("baseline", seeds=5), seconds, left=100.0) == Step("baseline", seeds=5)
    assert _seeds_step(Step("advanced", seeds=5), seconds, left=50.0) is None  # one more run only
    assert _seeds_step(Step("advanced", seeds=5), {"auto-baseline": 10.0}, left=500.0) is None  # it never ran


def test_tuned_trees_join_only_when_their_best_trial_beats_their_own_parameters(
    tmp_path, off_kaggle, monkeypatch
):
    import functools

    from kit import tuning
    from kit.automl import Step, _tuned
    from kit.run import cross_validate

    data = write_competition(tmp_path / "tiny", n=240)
    comp, cfg = kit.load(data, folds=3)
    trees = cross_validate(comp, cfg, "trees", out=tmp_path / "auto-trees", log=quiet, progress=False)
    lines = []
    step = Step("trees", tuned=True)
    # a budget too short for four runs of the trees: no study at all
    assert _tuned(step, comp, cfg, tmp_path, {"auto-trees": 10.0}, 100.0, 100.0, lines.append) is None
    assert "fewer than 4 runs" in lines[-1] and not (tmp_path / "auto-trees-tuning").exists()

    # a slice of 30 s that ends after 4 trials: two or more finish even where other processes hold
    # the cores (12 s held one trial beside three busy test workers)
    monkeypatch.setattr(tuning, "tune", functools.partial(tuning.tune, n_trials=4))
    run = _tuned(step, comp, cfg, tmp_path, {"auto-trees": 1.0}, 150.0, 150.0, lines.append)
    study = pl.read_csv(tmp_path / "auto-trees-tuning" / "trials.csv")
    complete = study.filter(pl.col("state") == "complete")
    assert complete.height >= 2 and complete["value"][0] == pytest.approx(trees.score)  # trial 0: its own
    if run is None:
        assert "own parameters stay the best" in lines[-1]
        assert complete["value"].max() <= trees.score
    else:  # a member like the others: the best trial's run folder, on the same folds
        assert run.score == pytest.approx(complete["value"].max()) and run.score > trees.score
        assert run.oof["fold"].equals(trees.oof["fold"])
        assert (run.run_dir / "test_predictions.parquet").is_file()


def test_a_member_made_under_other_settings_is_run_again_not_reused(tmp_path, off_kaggle):
    from kit.automl import Step, _reuse
    from kit.run import cross_validate

    data = write_competition(tmp_path / "tiny", n=240)
    comp, cfg = kit.load(data, folds=3, metric="roc_auc")
    cross_validate(comp, cfg, "trees", out=tmp_path / "auto-trees", log=quiet, progress=False)
    assert _reuse(tmp_path / "auto-trees", comp, cfg, Step("trees")).score > 0.5
    # the same folds and parameters, scored by another metric: its AUC must not pass as a log loss
    other, other_cfg = kit.load(data, folds=3, metric="log_loss")
    assert _reuse(tmp_path / "auto-trees", other, other_cfg, Step("trees")) is None
    timed, timed_cfg = kit.load(data, folds=3, metric="roc_auc", time="when")
    assert _reuse(tmp_path / "auto-trees", timed, timed_cfg, Step("trees")) is None


def test_on_a_holdout_auto_submits_its_best_member_unblended(tmp_path, off_kaggle):
    data = write_competition(tmp_path / "tiny", n=160)
    lines = []
    result = kit.auto(
        data, time_budget=20, split="holdout", out=tmp_path / "runs", log=lines.append, progress=False
    )
    assert len(result.members) > 1 and result.final.track != "blend", "\n".join(lines)
    assert result.score == max(m["score"] for m in result.members)  # accuracy: higher is better
    assert any("one validation fold" in line for line in lines)
    assert kit.validate(result.submission_path, data).height == 53


def test_a_member_that_fails_is_left_out_and_the_others_still_make_the_submission(
    tmp_path, off_kaggle, monkeypatch
):
    """A member's own failure (a network's loss gone NaN) is not the others': auto says so, keeps
    the traceback and goes on, as AutoGluon skips a model that fails to train."""
    from kit import automl
    from kit.automl import Step
    from kit.tracks import linear

    def diverges(fold, params):
        raise FloatingPointError("The training loss became nan at epoch 1.")

    monkeypatch.setattr(automl, "PLAN", (Step("trees"), Step("linear")))
    monkeypatch.setattr(linear, "fit_predict_fold", diverges)
    data = write_competition(tmp_path / "tiny", n=120)
    lines = []
    result = kit.auto(data, time_budget=60, folds=2, out=tmp_path / "runs", log=lines.append, progress=False)
    assert [m["member"] for m in result.members] == ["auto-trees"]
    assert result.final.submission_path.is_file()
    failed = [line for line in lines if line.startswith("auto-linear: failed, left out (FloatingPointError")]
    assert failed, "\n".join(lines)
    assert not (tmp_path / "runs" / "auto-linear").exists()


@pytest.mark.parametrize("member", ["auto-blend", "auto-baseline-seeds3", "auto-trees-tuning"])
def test_a_users_folder_where_auto_would_write_is_refused_before_any_member_trains(
    tmp_path, off_kaggle, member
):
    """The blend and the later members write last: a user's folder at their place, met only then,
    would leave the first members written and the budget spent."""
    data = write_competition(tmp_path / "tiny", n=120)
    mine = tmp_path / "runs" / member
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=f"'{mine}' is a folder with files kit did not write"):
        kit.auto(data, time_budget=30, folds=2, out=tmp_path / "runs", log=quiet, progress=False)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [member]
    assert (mine / "notes.txt").read_text() == "mine"
