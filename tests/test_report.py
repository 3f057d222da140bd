"""report.html: written with every run, rewritten by `kit report`, one offline file whose sections
follow the task, tolerant of what a folder lacks; a blend's and a study's page from the same
module; permutation importance within its time cap. No browser here (see test_report_browser)."""

from __future__ import annotations

import json
import re
import shutil
import time
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

import kit
from kit import cli, metrics
from kit.errors import InputError
from kit.reporting import RUN_SECTIONS, STUDY_SECTIONS, charts, write_report
from kit.reporting.importance import permutation_importance
from kit.run import FoldResult, cross_validate

FAST = {"epochs": 4, "patience": 3, "units": [16]}


def quiet(_line):
    pass


def sections(page: str) -> list[str]:
    return re.findall(r'<section id="[^"]+" data-section="([^"]+)"', page)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A baseline run of each task on the tiny competitions, two of the binary one (a leaderboard)."""
    root = tmp_path_factory.mktemp("report")
    found = {}
    for task in ("binary", "multiclass", "regression"):
        comp, cfg = kit.load(write_competition(root / "data" / task, task=task, n=160), folds=2)
        out = root / "submissions" / task
        found[task] = cross_validate(
            comp, cfg, "baseline", params=FAST, out=out / "first", log=quiet, progress=False
        )
        if task == "binary":
            found["second"] = cross_validate(
                comp,
                cfg,
                "baseline",
                params={**FAST, "dropout": 0.5},
                out=out / "second",
                log=quiet,
                progress=False,
            )
    return found


def assert_offline(page: str) -> None:
    """One file: no script, nothing to fetch (the SVG namespace is a name, not a request)."""
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "@import" not in page


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_run_writes_a_report_with_every_section(runs, task):
    run = runs[task]
    page = run.report_path.read_text()
    assert sections(page) == list(RUN_SECTIONS)
    assert_offline(page)
    assert len(page.encode()) < 2 * 1024 * 1024
    assert 'class="missing"' not in page  # a baseline run has everything the page shows
    # the CV score and every fold's, as metrics.json has them
    for score in [run.score, *run.fold_scores]:
        assert f"{score:.5f}" in page
    assert 0 < run.report_seconds < run.seconds
    # the competition as kit understood it, its notes included
    comp = json.loads((run.run_dir / "competition.json").read_text())
    assert comp["task"] == task and comp["notes"] and all(_escaped(n) in page for n in comp["notes"])
    assert "dropped &#x27;constant&#x27;" in page or "dropped 'constant'" in page
    # learning curves with the best epoch marked, and the batch the track recorded
    assert "Training loss per epoch" in page and 'class="marker"' in page and "batch_size" in page


def _escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_a_classification_report_has_confusion_roc_pr_and_calibration(runs):
    page = runs["binary"].report_path.read_text()
    for title in (
        "Confusion matrix",
        "ROC curve",
        "Precision-recall curve",
        "Calibration",
        "Surest mistakes",
    ):
        assert title in page
    assert "Predicted probability of label = yes" in page  # test against OOF, the positive class
    multi = runs["multiclass"].report_path.read_text()
    assert all(f"<th>{c}</th>" in multi for c in ("high", "low", "mid"))  # a row and column per class
    assert "one class against the rest" in multi and "Share of rows per class" in multi


def test_a_regression_report_has_predicted_against_actual_and_residuals(runs):
    page = runs["regression"].report_path.read_text()
    for title in ("Predicted against actual", "Residuals", "Residual distribution", "Largest errors"):
        assert title in page
    assert "Distribution of predictions" in page and "Kolmogorov-Smirnov" in page
    assert "Confusion matrix" not in page


def test_importance_is_the_last_folds_permutation_importance(runs):
    run = runs["regression"]
    info = json.loads((run.run_dir / "importance.json").read_text())
    assert info["fold"] == 1 and info["metric"] == "rmse" and info["complete"]
    # x1 and color make the synthetic target; a constant-free shuffle of x2 does little
    ranked = [f["feature"] for f in info["features"]]
    assert ranked[0] in ("x1", "color") and ranked.index("x2") > 1
    assert "Permutation importance on rmse" in run.report_path.read_text()


def test_the_leaderboard_lists_the_competitions_other_runs_with_links(runs):
    page = runs["second"].report_path.read_text()
    assert "(this run)" in page and '<a href="../first/report.html">first</a>' in page
    first = runs["binary"].report_path.read_text()
    # written before the second run existed; `kit report` brings it up to date
    assert "second" not in first.split('data-section="cv"')[1].split("</section>")[0]
    assert cli.main(["report", str(runs["binary"].run_dir)]) == 0
    again = runs["binary"].report_path.read_text()
    assert '<a href="../second/report.html">second</a>' in again


def test_kit_report_rewrites_it_from_the_folder_alone(runs, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(runs["multiclass"].run_dir, copy)
    (copy / "report.html").unlink()
    assert cli.main(["report", str(copy)]) == 0
    assert str(copy / "report.html") in capsys.readouterr().out
    assert sections((copy / "report.html").read_text()) == list(RUN_SECTIONS)
    assert kit.report(runs["multiclass"], log=quiet) == runs["multiclass"].report_path
    assert not list(copy.glob(".*"))  # written atomically: no temporary file left


def test_kit_report_refuses_a_folder_kit_did_not_write(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a run folder"):
        kit.report(tmp_path / "absent")
    # a folder of the user's with a metrics.json and a report.html of their own: left as it is
    (tmp_path / "metrics.json").write_text('{"score": 1}')
    (tmp_path / "report.html").write_text("<h1>my own notes</h1>")
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "not a run folder or a tuning folder kit wrote" in capsys.readouterr().err
    assert (tmp_path / "report.html").read_text() == "<h1>my own notes</h1>"


def test_kit_report_on_a_folder_of_runs_names_the_run_folders_in_it(runs, tmp_path, capsys):
    folder = tmp_path / "auto"  # as kit auto --out lays its members out
    for name, task in (("auto-trees", "binary"), ("auto-blend", "multiclass")):
        shutil.copytree(runs[task].run_dir, folder / name)
    assert cli.main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "auto-blend, auto-trees" in err and str(folder / "auto-blend") in err


def test_a_folder_missing_pieces_still_renders_and_says_what_is_missing(runs, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(runs["binary"].run_dir / "metrics.json", folder)
    page = write_report(folder).read_text()
    assert sections(page) == list(RUN_SECTIONS)
    for text in (
        "competition.json is absent",
        "no learning curves",
        "oof.parquet is absent",
        "No importance.json",
    ):
        assert text in page
    # an old run folder: predictions but no competition.json, history or importance
    for name in ("oof.parquet", "test_predictions.parquet", "manifest.json", "config.toml"):
        shutil.copy(runs["binary"].run_dir / name, folder)
    page = write_report(folder).read_text()
    assert "Confusion matrix" in page and "ROC curve" in page


def test_a_track_without_a_predict_function_gets_a_report_without_importance(tmp_path):
    comp, cfg = kit.load(write_competition(tmp_path / "tiny", n=80), folds=2)

    def prior(fold, params):
        share = np.bincount(fold.y_train, minlength=2) / len(fold.y_train)
        return np.tile(share, (fold.val.height, 1)), np.tile(share, (fold.test.height, 1))

    run = cross_validate(comp, cfg, prior, out=tmp_path / "run", log=quiet, progress=False)
    page = run.report_path.read_text()
    assert sections(page) == list(RUN_SECTIONS)
    assert "returned no predict function" in page and "no learning curves" in page
    assert not (run.run_dir / "importance.json").exists()


def test_a_predict_function_that_fails_leaves_the_run_and_says_so(tmp_path):
    comp, cfg = kit.load(write_competition(tmp_path / "tiny", n=80), folds=2)

    def broken(fold, params):
        p = np.full((fold.val.height, 2), 0.5), np.full((fold.test.height, 2), 0.5)

        def predict(frame):
            raise RuntimeError("no model here")

        return FoldResult(*p, predict=predict)

    run = cross_validate(comp, cfg, broken, out=tmp_path / "run", log=quiet, progress=False)
    assert "Permutation importance failed: RuntimeError: no model here" in run.report_path.read_text()


def test_a_blend_section_shows_whatever_blend_json_holds(runs, tmp_path):
    folder = tmp_path / "submissions" / "binary"
    for name in ("first", "second"):
        shutil.copytree(runs["binary"].run_dir.parent / name, folder / name)
    blend = folder / "blend"
    shutil.copytree(runs["binary"].run_dir, blend)
    members = [runs["binary"], runs["second"]]
    best = max(m.score for m in members)
    (blend / "blend.json").write_text(
        json.dumps(
            {
                "members": [
                    {"run_dir": str(folder / n), "weight": w} for n, w in (("first", 0.7), ("second", 0.3))
                ],
                "score": best + 0.01,
                "method": "greedy ensemble selection",
            }
        )
    )
    page = write_report(blend).read_text()
    assert sections(page) == ["competition", "cv", "blend", *RUN_SECTIONS[2:]]
    part = page.split('data-section="blend"')[1].split("</section>")[0]
    assert "first" in part and "second" in part and "0.700" in part and "greedy ensemble selection" in part
    assert "0.01000 better</b> than its best member" in part
    assert f"{runs['second'].score:.5f}" in part  # a member's CV, read from its own metrics.json
    # other spellings, and fewer keys: names and a weights table, no scores
    (blend / "blend.json").write_text(json.dumps({"weights": {"first": 0.5, "second": 0.5}}))
    part = write_report(blend).read_text().split('data-section="blend"')[1].split("</section>")[0]
    assert "0.500" in part and f"{runs['second'].score:.5f}" in part  # CVs from metrics.json beside it
    assert "than its best member" in part
    (blend / "blend.json").write_text("{}")
    assert "blend.json lists no members" in write_report(blend).read_text()


def test_a_study_page_shows_history_importances_and_the_best_trial(runs, tmp_path):
    study = tmp_path / "tune-baseline"
    study.mkdir()
    shutil.copytree(runs["binary"].run_dir, study / "best")
    trials = pl.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "state": ["complete", "complete", "pruned", "complete"],
            "value": [0.8, 0.82, None, 0.81],
            "seconds": [3.0, 2.5, 1.0, 2.8],
            "param_dropout": ["0.25", "0.4", "0.1", "0.3"],
        }
    )
    trials.write_csv(study / "trials.csv")
    summary = {
        "competition": "tiny", "track": "baseline", "study": "tiny-baseline", "metric": "accuracy",
        "direction": "maximize", "best_score": 0.82, "best_trial": 1, "best_params": {"dropout": 0.4},
        "trials": {"complete": 3, "pruned": 1, "fail": 0}, "search_space": {"dropout": {"low": 0.0, "high": 0.5}},
        "importances": {"dropout": 1.0}, "seconds": 9.0,
    }  # fmt: skip
    (study / "summary.json").write_text(json.dumps(summary))
    (study / "best.toml").write_text("[baseline]\ndropout = 0.4\n")
    page = write_report(study).read_text()
    assert sections(page) == list(STUDY_SECTIONS)
    assert_offline(page)
    assert "CV accuracy by trial" in page and "best so far" in page and "fANOVA importance" in page
    assert 'href="best/report.html"' in page and "dropout = 0.4" in page and "1 pruned" in page


def test_a_tuning_run_writes_the_study_page(tmp_path):
    data = write_competition(tmp_path / "tiny", n=80)
    result = kit.tune(data, track="baseline", trials=2, folds=2, out=tmp_path / "study", log=quiet, progress=False,
                      config=_fast_config(tmp_path))  # fmt: skip
    page = result.report_path.read_text()
    assert sections(page) == list(STUDY_SECTIONS)
    assert sections((result.best_run / "report.html").read_text()) == list(RUN_SECTIONS)
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert set(summary["importances"]) <= set(summary["search_space"])


def _fast_config(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text("[baseline]\nepochs = 3\npatience = 2\nunits = [16]\n")
    return path


def test_show_prints_the_path_outside_a_notebook(runs, capsys):
    runs["binary"].show()
    assert capsys.readouterr().out.strip() == str(runs["binary"].report_path)


def test_show_displays_the_page_in_a_notebook(runs, monkeypatch):
    IPython = pytest.importorskip("IPython")
    shown = []

    class Kernel:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Kernel())
    monkeypatch.setattr("IPython.display.display", shown.append)
    runs["binary"].show()
    (frame,) = shown
    assert frame.data.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in frame.data


def test_permutation_importance_ranks_what_the_model_uses():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"used": rng.normal(size=500), "unused": rng.normal(size=500)})
    y = (frame["used"].to_numpy() > 0).astype(int)

    def predict(rows):
        p = 1 / (1 + np.exp(-4 * rows["used"].to_numpy()))
        return np.stack([1 - p, p], axis=1)

    found = permutation_importance(predict, frame, y, metric=metrics.get("log_loss"), seconds=5)
    assert [f["feature"] for f in found["features"]] == ["used", "unused"]
    assert found["features"][0]["importance"] > 0.3 and found["features"][1]["importance"] == 0
    assert found["complete"] and found["repeats"] == 3 and found["rows"] == 500


def test_permutation_importance_keeps_to_its_time_cap():
    frame = pl.DataFrame({f"c{i}": np.arange(3000.0) for i in range(20)})
    y = np.arange(3000.0)

    def slow(rows):
        time.sleep(0.02 + rows.height * 2e-5)  # an overhead per call and a cost per row
        return rows["c0"].to_numpy()

    started = time.perf_counter()
    found = permutation_importance(slow, frame, y, metric=metrics.get("rmse"), seconds=0.3)
    assert time.perf_counter() - started < 0.6
    assert found["rows"] < 2000 and found["repeats"] == 1 and found["complete"]


def test_permutation_importance_finishes_its_first_round_when_the_estimate_was_low():
    # enough columns for the first round to take several calls
    frame = pl.DataFrame({f"c{i}": np.arange(3000.0) for i in range(60)})
    calls = []

    def slower_and_slower(rows):  # fast while timed, then ten times slower a call (a loaded machine)
        calls.append(rows.height)
        time.sleep(0.01 if len(calls) <= 2 else 0.12)
        return rows["c0"].to_numpy()

    started = time.perf_counter()
    found = permutation_importance(
        slower_and_slower, frame, np.arange(3000.0), metric=metrics.get("rmse"), seconds=0.3
    )
    assert time.perf_counter() - started < 0.9  # three times the cap at most
    assert found["complete"] and found["repeats"] >= 1 and not found["skipped"]


def test_axis_ticks_are_round_and_their_labels_exact():
    assert list(charts.nice_ticks(0, 1)) == [0, 0.25, 0.5, 0.75, 1]
    ticks = charts.nice_ticks(0.7, 0.9)
    assert [charts.fmt(v, ticks[1] - ticks[0]) for v in ticks] == ["0.70", "0.75", "0.80", "0.85", "0.90"]
    assert charts.fmt(250000.0, 50000.0) == "250k" and charts.fmt(float("nan")) == "–"


def test_permutation_importance_keeps_a_rare_class_in_its_sample():
    # one positive among 300 rows, and a time cap that cuts the sample to its fewest rows: the
    # positive stays in, so roc_auc can score the sample (no warning of a single class)
    frame = pl.DataFrame({"x": np.arange(300.0), "noise": np.zeros(300)})
    y = np.zeros(300, dtype=int)
    y[np.random.default_rng(0).permutation(300)[-1]] = 1  # the last row of the seed's shuffle

    def predict(rows):
        p = rows["x"].to_numpy() / 300
        return np.stack([1 - p, p], axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = permutation_importance(predict, frame, y, metric=metrics.get("roc_auc"), seconds=0.0)
    assert found["rows"] < 300 and np.isfinite(found["baseline"]) and found["complete"]


def test_the_confusion_matrix_says_it_counts_labels_at_the_runs_cut(tmp_path):
    """Under f1 a binary run cuts P(yes) elsewhere than 0.5: the matrix counts its labels there,
    and its caption says so instead of "the most probable class"."""
    data = write_competition(tmp_path / "rare", n=400, positives=0.15, seed=1)
    comp, cfg = kit.load(data, metric="f1", folds=3)
    run = cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=lambda _: None, progress=False)
    threshold = json.loads((run.run_dir / "metrics.json").read_text()).get("threshold")
    assert threshold is not None and threshold != 0.5
    page = (run.run_dir / "report.html").read_text()
    matrix = page[page.index("<h4>Confusion matrix</h4>") :]
    caption = matrix[matrix.index('<p class="caption">') : matrix.index("</p>")]
    assert f"P(yes) &gt; {threshold:.4f} (the run's cut" in caption
    assert "most probable class" not in caption


def test_the_trees_curves_are_per_boosting_iteration_without_dropout(tmp_path):
    data = write_competition(tmp_path / "c")
    comp, cfg = kit.load(data, folds=2)
    run = cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=lambda _: None, progress=False)
    page = (run.run_dir / "report.html").read_text()
    assert "Training loss per boosting iteration" in page and "Validation loss per boosting iteration" in page
    assert "dropout on" not in page and "Training loss per epoch" not in page


def test_a_run_of_several_seeds_says_its_curves_are_each_folds_first_seed(tmp_path):
    data = write_competition(tmp_path / "c")
    comp, cfg = kit.load(data, folds=2, seeds=2)
    run = cross_validate(
        comp, cfg, "baseline", params={"epochs": 3, "units": [8]}, out=tmp_path / "run", log=lambda _: None,
        progress=False,
    )  # fmt: skip
    page = (run.run_dir / "report.html").read_text()
    assert "seed 0, 2 seeds a fold" in page and "Each fold's first seed of 2" in page


def test_the_report_holds_only_the_validated_rows_and_counts_them_all(tmp_path):
    """A holdout validates a fifth of the rows: the report reads those only (at 10M rows the rest of
    oof.parquet is most of what it would hold) and still counts every training row and fold."""
    from kit.reporting.folder import Folder

    comp, cfg = kit.load(write_competition(tmp_path / "c", n=400), split="holdout")
    run = cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=quiet, progress=False)
    oof = pl.read_parquet(run.run_dir / "oof.parquet")
    validated = int((oof["fold"] >= 0).sum())
    assert 0 < validated < oof.height
    folder = Folder.read(run.run_dir)
    assert folder.oof.height == validated and folder.train_rows == oof.height
    page = (run.run_dir / "report.html").read_text()
    assert f'<div class="what">train rows</div><div class="value">{oof.height:,}</div>' in page
    assert "<h4>Confusion matrix</h4>" in page  # the out-of-fold diagnostics, from those rows
