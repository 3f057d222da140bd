"""Blending runs by their out-of-fold predictions: never below the best member, refused across
different folds, a run folder like any other, and one exported model for a blend of networks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

import kit
from kit import cli, metrics
from kit.ensemble import Member, bagged_hill_climb, fit_blend, hill_climb
from kit.errors import InputError
from kit.io import written_by_kit
from kit.run import cross_validate

REPO = Path(__file__).resolve().parents[1]
TEAM_TRACK = REPO / "pipelines" / "my_track.py"
QUICK = {"epochs": 4, "patience": 3, "units": [16], "checkpoint_seconds": 0.0}


def quiet(_line):
    pass


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """A network, trees and a linear model of a tiny competition, on the same folds."""
    root = tmp_path_factory.mktemp("blend")
    data = write_competition(root / "tiny", n=240)
    comp, cfg = kit.load(data, folds=3)
    runs = [
        cross_validate(comp, cfg, "baseline", params={"epochs": 8, "patience": 4, "units": [16]}, out=root / "base", log=quiet, progress=False),
        cross_validate(comp, cfg, "trees", out=root / "trees", log=quiet, progress=False),
        cross_validate(comp, cfg, str(TEAM_TRACK), out=root / "linear", log=quiet, progress=False),
    ]  # fmt: skip
    return data, comp, runs


def test_hill_climbing_starts_from_the_best_member_and_only_adds_what_helps():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    # two independent noisy views of the truth: their average beats either
    a, b = (np.clip(y + rng.normal(0, 0.6, 400), 0.01, 0.99) for _ in range(2))
    useless = np.full(400, 0.5)
    preds = [np.stack([1 - p, p], axis=1) for p in (a, b, useless)]
    log_loss = metrics.get("log_loss")
    w = hill_climb(preds, y, log_loss, log_loss.better)
    assert w.sum() == pytest.approx(1.0) and w[0] > 0 and w[1] > 0 and w[2] == 0
    blended = sum(wi * p for wi, p in zip(w, preds, strict=True))
    assert log_loss(y, blended) < min(log_loss(y, p) for p in preds)
    bagged = bagged_hill_climb(preds, y, log_loss, log_loss.better)
    assert bagged.sum() == pytest.approx(1.0) and bagged[2] < 0.1


@pytest.mark.parametrize("method", ["auto", "stack"])
def test_a_level_2_model_under_rmsle_learns_the_log_target(method):
    # prices as house-prices has them: the members' log errors are independent, so a stack helps
    rng = np.random.default_rng(0)
    n = 500
    y = np.exp(rng.normal(12.0, 0.4, n))
    fold = np.arange(n) % 5
    members = [
        Member(run_dir=Path(f"m{i}"), track="t", score=0.0, info={},
               oof=pl.DataFrame({"fold": fold, "prediction": y * np.exp(rng.normal(0, 0.15, n))}),
               test=pl.DataFrame({"prediction": np.exp(rng.normal(12.0, 0.4, 100))}))
        for i in range(3)
    ]  # fmt: skip
    rmsle = metrics.get("rmsle")
    blend = fit_blend(members, y, task="regression", metric=rmsle, method=method)
    assert np.isfinite(blend.oof).all() and np.isfinite(blend.test).all()
    assert 100 * blend.test.min() > y.min() and blend.test.max() < 100 * y.max()  # prices, not exp(prices)
    best = min(rmsle(y, m.oof["prediction"].to_numpy()) for m in members)
    assert rmsle(y, blend.oof) < best and blend.nested["stack"] < best


def test_auto_keeps_the_best_member_alone_when_combinations_lose_on_the_held_out_folds():
    # b's errors cancel a's on four folds and add to them on the fifth: a combination fit on any
    # four folds that include the fifth keeps a alone, but one fit on the first four does not
    rng = np.random.default_rng(0)
    n = 200
    y = rng.normal(0, 1, n)
    fold = np.arange(n) % 5
    a = y + rng.normal(0, 0.5, n)
    b = np.where(fold < 4, 2 * y - a, a + 3 * (a - y))
    members = [
        Member(run_dir=Path(name), track="t", score=0.0, info={},
               oof=pl.DataFrame({"fold": fold, "prediction": p}), test=pl.DataFrame({"prediction": p[:20]}))
        for name, p in (("a", a), ("b", b))
    ]  # fmt: skip
    rmse = metrics.get("rmse")
    blend = fit_blend(members, y, task="regression", metric=rmse)
    assert blend.nested["best"] < min(blend.nested[m] for m in ("hill", "bagged", "stack"))
    assert blend.method == "best" and list(blend.weights) == [1.0, 0.0]
    np.testing.assert_allclose(blend.oof, a)
    np.testing.assert_allclose(blend.test, a[:20])


def test_under_a_label_metric_the_ways_are_judged_with_cuts_chosen_on_other_folds():
    # one member twice: every way of combining is that member, so each must score what its run
    # scores (labels cut where the other folds chose), not its score at the best cut of all rows
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random(n) < 0.35).astype(int)
    fold = np.arange(n) % 5
    p1 = np.clip(0.35 + 0.3 * (y - 0.35) + rng.normal(0, 0.2, n), 0.01, 0.99)
    proba = np.stack([1 - p1, p1], axis=1)
    oof = pl.DataFrame({"fold": fold, "proba_0": proba[:, 0], "proba_1": proba[:, 1]})
    test = oof.drop("fold").head(20)
    members = [Member(run_dir=Path(name), track="t", score=0.0, info={}, oof=oof, test=test) for name in "ab"]
    f1 = metrics.get("f1")
    run_score = f1(y, metrics.decision_threshold(f1, y, proba, fold)[1])
    blend = fit_blend(members, y, task="binary", metric=f1, thresholded=True)
    for way in ("best", "hill", "bagged"):
        assert blend.nested[way] == pytest.approx(run_score)


@pytest.mark.parametrize("method", ["auto", "hill", "bagged", "stack", "best"])
def test_the_blend_never_scores_below_its_best_member(three_runs, tmp_path, method):
    data, comp, runs = three_runs
    run = kit.blend([r.run_dir for r in runs], out=tmp_path / "blend", method=method, log=quiet)
    metric = metrics.get(comp.metric)
    best = max((r.score for r in runs), key=lambda s: s if metric.direction == "maximize" else -s)
    if method in ("auto", "hill", "best"):  # hill climbing starts from the best member
        assert not metric.better(best, run.score)
    # a run folder like any other, with the weights as a table
    assert written_by_kit(run.run_dir) and run.track == "blend"
    assert 'data-section="blend"' in (run.run_dir / "report.html").read_text()  # its page, with the members
    assert kit.validate(run.submission_path, data).height == comp.test.height
    info = json.loads((run.run_dir / "blend.json").read_text())
    assert [m["run_dir"] for m in info["members"]] == [str(r.run_dir) for r in runs]
    assert set(info["nested_cv"]) == {"hill", "bagged", "stack", "best"}
    if method == "auto":  # the way with the best nested CV, or the reason it is not
        nested = info["nested_cv"]
        top = max(nested, key=lambda k: nested[k] if metric.direction == "maximize" else -nested[k])
        assert (
            nested[info["method"]] == nested[top] or info["method"] in info["reason"] or top in info["reason"]
        )
    weights = pl.read_csv(run.run_dir / "weights.csv")
    if info["method"] != "stack":
        assert weights["weight"].sum() == pytest.approx(1.0)
    oof = pl.read_parquet(run.run_dir / "oof.parquet")
    assert oof["fold"].equals(runs[0].oof["fold"])  # the members' folds
    probs = oof.select([c for c in oof.columns if c.startswith("proba_")]).to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_a_blend_is_a_leaderboard_row(three_runs, tmp_path):
    _, comp, runs = three_runs
    out = tmp_path / "submissions" / comp.name / "blend"
    kit.blend(runs, out=out, log=quiet)  # the Runs the tracks returned, as their folders would be
    board = kit.leaderboard(tmp_path / "submissions")
    assert board.filter(pl.col("track") == "blend").height == 1


def test_a_blend_moved_with_its_members_links_them_where_they_are_now(three_runs, tmp_path):
    _, comp, runs = three_runs
    moved = tmp_path / "downloaded"  # the runs' folder copied elsewhere, the old place gone
    moved.mkdir()
    for r in runs:
        shutil.copytree(r.run_dir, moved / r.run_dir.name)
    blend = kit.blend([moved / r.run_dir.name for r in runs], out=moved / "blend", log=quiet)
    info = json.loads((blend.run_dir / "blend.json").read_text())
    for m in info["members"]:
        m["run_dir"] = str(tmp_path / "gone" / Path(m["run_dir"]).name)
    (blend.run_dir / "blend.json").write_text(json.dumps(info))
    page = kit.report(blend.run_dir, log=quiet).read_text()
    members = page.split("<h2>Blend</h2>")[1].split("<h2>")[0]  # not the leaderboard's links
    for r in runs:
        assert f'href="../{r.run_dir.name}/report.html"' in members


def test_runs_on_other_folds_are_refused(three_runs, tmp_path, capsys):
    data, comp, runs = three_runs
    _, other_seed = kit.load(data, folds=3, seed=7)
    other = cross_validate(comp, other_seed, "trees", out=tmp_path / "other", log=quiet, progress=False)
    with pytest.raises(InputError, match="folds differ"):
        kit.blend([runs[0].run_dir, other.run_dir], out=tmp_path / "blend", log=quiet)
    code = cli.main(["blend", str(runs[0].run_dir), str(other.run_dir), "--out", str(tmp_path / "blend")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--seed" in err
    assert not (tmp_path / "blend").exists()


def test_runs_scored_on_other_targets_are_refused(three_runs, tmp_path, capsys):
    """A run on a copy of the competition whose targets changed (labels flipped) can draw the same
    stratified folds: its OOF predictions answer another question and cannot join the blend."""
    _, comp, runs = three_runs
    copy = tmp_path / "flipped"
    shutil.copytree(runs[1].run_dir, copy)
    oof = pl.read_parquet(copy / "oof.parquet")
    flipped = oof[comp.target].reverse()
    assert not flipped.equals(oof[comp.target])
    oof.with_columns(flipped.alias(comp.target)).write_parquet(copy / "oof.parquet")
    code = cli.main(["blend", str(runs[0].run_dir), str(copy), "--out", str(tmp_path / "blend")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "targets differ" in err, err
    assert not (tmp_path / "blend").exists()


@pytest.mark.parametrize("damaged", ["oof.parquet", "metrics.json"])
def test_a_damaged_run_folder_is_named_in_one_line(three_runs, tmp_path, capsys, damaged):
    _, _, runs = three_runs
    copy = tmp_path / "copy"
    shutil.copytree(runs[1].run_dir, copy)
    (copy / damaged).write_text("junk")
    code = cli.main(["blend", str(runs[0].run_dir), str(copy), "--out", str(tmp_path / "blend")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(copy / damaged) in err and "damaged" in err
    assert not (tmp_path / "blend").exists()


def test_a_member_whose_exported_model_lost_its_variables_is_named_before_anything_is_written(
    three_runs, tmp_path, capsys
):
    _, _, runs = three_runs
    copy = tmp_path / "copy"
    shutil.copytree(runs[1].run_dir, copy)
    (copy / "model").mkdir()
    (copy / "model" / "saved_model.pb").write_bytes(b"graph")  # and no variables/ beside it
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "files": [*manifest["files"], "model"]}))
    code = cli.main(["blend", str(runs[0].run_dir), str(copy), "--out", str(tmp_path / "blend")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"'{copy / 'model'}' is damaged: its variables are missing" in err
    assert not (tmp_path / "blend").exists()


def test_holdout_runs_are_refused_before_anything_is_written(three_runs, tmp_path, capsys):
    data, _, _ = three_runs
    comp, holdout = kit.load(data, split="holdout")
    runs = [
        cross_validate(comp, holdout, track, out=tmp_path / name, log=quiet, progress=False)
        for name, track in (("trees", "trees"), ("linear", str(TEAM_TRACK)))
    ]
    # one validation fold: weights chosen on it could only be scored on it too
    code = cli.main(["blend", *(str(r.run_dir) for r in runs), "--out", str(tmp_path / "blend")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--folds 2 or more" in err
    assert not (tmp_path / "blend").exists()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, three_runs):
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match="not a run folder"):
        kit.blend([three_runs[2][0].run_dir, tmp_path / "mine"], log=quiet)


def test_kit_blend_of_a_competition_folder_takes_its_runs(three_runs, tmp_path, monkeypatch):
    data, comp, runs = three_runs
    monkeypatch.chdir(tmp_path)  # runs go to ./submissions/<competition>/
    for r in runs[:2]:
        dest = tmp_path / "submissions" / comp.name / r.run_dir.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(r.run_dir, dest)
    run = kit.blend(data, log=quiet)
    assert run.run_dir.parent == Path("submissions").absolute() / comp.name
    assert len(json.loads((run.run_dir / "blend.json").read_text())["members"]) == 2
    # a run on other folds among them: the others are blended, and it is named as left out
    _, other_seed = kit.load(data, folds=3, seed=7)
    other = tmp_path / "submissions" / comp.name / "other-seed"
    cross_validate(comp, other_seed, "trees", out=other, log=quiet, progress=False)
    lines = []
    run = kit.blend(data, out=tmp_path / "again", log=lines.append)
    members = [m["run_dir"] for m in json.loads((run.run_dir / "blend.json").read_text())["members"]]
    assert len(members) == 2 and str(other) not in members
    assert any("left out" in line and "other-seed" in line for line in lines)
    with pytest.raises(InputError, match="does not exist"):
        kit.blend(tmp_path / "nope", log=quiet)


def test_a_folder_of_run_folders_blends_the_runs_in_it(three_runs, tmp_path, capsys):
    _, _, runs = three_runs
    folder = tmp_path / "titanic"  # as submissions/<competition>/ holds them
    folder.mkdir()
    for r in runs[1:]:
        os.symlink(r.run_dir, folder / r.run_dir.name)
    run = kit.blend(folder, out=tmp_path / "blend", log=quiet)
    members = [m["run_dir"] for m in json.loads((run.run_dir / "blend.json").read_text())["members"]]
    assert sorted(Path(m).name for m in members) == ["linear", "trees"]
    assert cli.main(["blend", str(folder), "--out", str(tmp_path / "blend2")]) == 0
    capsys.readouterr()
    (folder / "linear").unlink()  # one run left: the message says what else to pass
    with pytest.raises(InputError, match="found 1 in .*Pass two run folders, a folder of run folders"):
        kit.blend(folder, log=quiet)


def test_a_folder_of_runs_takes_a_tuning_folders_best_run_on_the_same_folds(three_runs, tmp_path):
    """`kit auto --out DIR` leaves its tuned member as DIR/auto-trees-tuning/best: `kit blend DIR`
    blends it with the others, as auto did; a study run on other folds could not be, and is left
    out."""
    data, comp, runs = three_runs
    folder = tmp_path / "auto"
    folder.mkdir()
    for r in runs[1:]:
        os.symlink(r.run_dir, folder / r.run_dir.name)
    (folder / "auto-trees-tuning").mkdir()
    os.symlink(runs[0].run_dir, folder / "auto-trees-tuning" / "best")
    _, other_seed = kit.load(data, folds=3, seed=7)
    other = cross_validate(comp, other_seed, "trees", out=tmp_path / "other", log=quiet, progress=False)
    (folder / "other-tuning").mkdir()
    os.symlink(other.run_dir, folder / "other-tuning" / "best")
    run = kit.blend(folder, out=tmp_path / "blend", log=quiet)
    members = [Path(m["run_dir"]) for m in json.loads((run.run_dir / "blend.json").read_text())["members"]]
    assert sorted(m.parent.name + "/" + m.name for m in members) == [
        "auto-trees-tuning/best", "auto/linear", "auto/trees"
    ]  # fmt: skip


def test_a_run_given_twice_is_refused_naming_it(three_runs, tmp_path, monkeypatch):
    _, _, runs = three_runs
    with pytest.raises(InputError, match=r"Run '.*trees' is given twice"):
        kit.blend([runs[1], runs[1]], out=tmp_path / "twice", log=quiet)
    monkeypatch.chdir(runs[1].run_dir.parent)
    with pytest.raises(InputError, match="given twice"):  # the same folder spelled otherwise
        kit.blend([runs[1].run_dir, "trees", runs[0]], out=tmp_path / "twice", log=quiet)
    assert not (tmp_path / "twice").exists()


def test_a_runs_paths_still_work_after_the_notebook_changes_folder(three_runs, tmp_path, monkeypatch):
    data, comp, runs = three_runs
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run = kit.trees(data, folds=3, out="runs/trees", progress=False, log=quiet)
    assert run.run_dir.is_absolute() and run.submission_path.is_absolute()
    monkeypatch.chdir(tmp_path / "elsewhere")  # %cd in a notebook
    assert kit.report(run, log=quiet) == run.report_path
    assert kit.validate(run.submission_path, data).height == comp.test.height
    blended = kit.blend([run, runs[2]], out=tmp_path / "blend", log=quiet)
    assert blended.run_dir == tmp_path / "blend" and blended.submission_path.is_file()
    # a run folder that is not there is said to be missing, not to lack its files
    with pytest.raises(InputError, match=r"'runs/trees' not found \(looked for under .*elsewhere\)"):
        kit.blend(["runs/trees", runs[2]], log=quiet)


# a fresh process per task: each model loaded there from its folder alone (pairs of model, output)
FRESH = """
import sys, numpy as np
from kit.io import read_table
from kit.serving import ExportedModel
test, *pairs = sys.argv[1:]
for model, out in zip(pairs[::2], pairs[1::2]):
    np.save(out, ExportedModel(model).predict(read_table(test)))
"""


# weights and a level-2 model are each their own graph: one of each, over the two tasks
@pytest.mark.parametrize(
    "task, methods",
    [("binary", ("bagged", "stack")), ("regression", ("stack",))],
    ids=["binary", "regression"],
)
def test_a_blend_of_networks_exports_one_model_that_reproduces_it_in_a_fresh_process(tmp_path, task, methods):
    data = write_competition(tmp_path / "tiny", n=200, task=task)
    comp, cfg = kit.load(data, folds=2, metric="log_loss" if task == "binary" else "rmsle")
    runs = [
        cross_validate(comp, cfg, "advanced", params={**QUICK, "k": k}, out=tmp_path / f"adv{k}", log=quiet, progress=False)
        for k in (1, 2)
    ]  # fmt: skip
    blends = {
        method: kit.blend([r.run_dir for r in runs], out=tmp_path / method, method=method, log=quiet)
        for method in methods
    }
    pairs = [str(p) for m, run in blends.items() for p in (run.run_dir / "model", tmp_path / f"{m}.npy")]
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(data / "test.csv"), *pairs],
        cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for method, run in blends.items():
        assert (run.run_dir / "model" / "saved_model.pb").is_file()
        out = tmp_path / f"{method}.npy"
        columns = [c for c in run.test_predictions.columns if c.startswith("proba_") or c == "prediction"]
        expected = run.test_predictions.select(columns).to_numpy()
        np.testing.assert_allclose(np.load(out).reshape(expected.shape), expected, rtol=1e-5, atol=1e-7)
        sub = kit.predict(run.run_dir / "model", data / "test.csv", out=tmp_path / f"{method}.csv", log=quiet)
        assert kit.validate(sub, data).height == comp.test.height
