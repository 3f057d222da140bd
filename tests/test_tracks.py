"""The contract every track keeps, kit's own and a team's file alike (in the spirit of
scikit-learn's check_estimator): on a tiny competition of each task it trains, returns predictions
in kit's form, gives the same out-of-fold predictions twice with the same seed, and writes a run
folder that `kit validate` accepts. And the registry: a track is one file, found by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import write_competition
from sklearn.metrics import f1_score

import kit
from kit import cli, tracks
from kit.derive import derive
from kit.errors import InputError
from kit.io import written_by_kit
from kit.reporting import RUN_SECTIONS
from kit.run import cross_validate

REPO = Path(__file__).resolve().parents[1]
TEAM_TRACK = REPO / "pipelines" / "my_track.py"
TASKS = ("binary", "multiclass", "regression")
# the contract is about shapes and files, not skill: a few epochs of a small network
QUICK = {"epochs": 3, "patience": 2, "units": [16], "checkpoint_seconds": 0.0}


def quiet(_line):
    pass


def quick_params(track: tracks.Track) -> dict:
    return {k: v for k, v in QUICK.items() if k in track.defaults}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", [*tracks.names(), str(TEAM_TRACK)], ids=lambda n: Path(n).stem)
def test_every_track_keeps_the_contract(name, task, tmp_path):
    track = tracks.get(name)
    data = write_competition(tmp_path / task, task=task, n=120)
    comp, cfg = kit.load(data, folds=2, seed=1)
    runs = [
        cross_validate(
            comp, cfg, track, params=quick_params(track), out=tmp_path / f"run{i}", log=quiet, progress=False
        )
        for i in range(2)
    ]
    run = runs[0]
    # predictions in kit's form: a probability per class (summing to 1), or a value
    columns = ["prediction"] if task == "regression" else [f"proba_{c}" for c in comp.classes]
    for frame, rows in ((run.oof, comp.train.height), (run.test_predictions, comp.test.height)):
        values = frame.select(columns).to_numpy()
        assert values.shape == (rows, len(columns)) and np.isfinite(values).all()
        if task != "regression":
            assert (values >= 0).all()
            np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(run.score) and len(run.fold_scores) == 2
    # the same seed gives the same out-of-fold predictions
    assert runs[1].oof.equals(run.oof) and runs[1].score == run.score
    # a whole run folder, which the submission checks accept
    assert written_by_kit(run.run_dir)
    assert kit.validate(run.submission_path, data).height == comp.test.height
    assert cli.main(["validate", str(run.submission_path), str(data)]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or work left
    # its report: every section, and each column's importance from the fold's predict function
    page = run.report_path.read_text()
    assert all(f'data-section="{key}"' in page for key in RUN_SECTIONS)
    importance = json.loads((run.run_dir / "importance.json").read_text())
    assert importance["complete"] and {f["feature"] for f in importance["features"]} == set(
        derive(comp.test, comp.roles, comp.parts)[1]
    )


def test_a_track_is_one_file_found_by_name():
    names = tracks.names()
    assert {"baseline", "advanced"} <= set(names)
    for name in names:
        track = tracks.get(name)
        assert track.name == name and track.ref == name
        assert isinstance(track.defaults, dict) and callable(track.fit_predict_fold)
        # what the config and the tuner read comes without importing TensorFlow
        assert set(track.search_space) <= set(track.defaults)
        assert set(track.limits) <= set(track.defaults)


def test_a_team_track_file_runs_tunes_and_its_table_is_a_setting(tmp_path, capsys):
    data = write_competition(tmp_path / "tiny", n=120)
    config = tmp_path / "mine.toml"
    config.write_text('[my_track]\nC = 0.5\n[search.my_track]\nscaling = "standard"\n')
    out = tmp_path / "run"
    assert (
        cli.main(
            ["run", str(TEAM_TRACK), str(data), "--folds", "2", "--config", str(config), "--out", str(out)]
        )
        == 0
    )
    assert "CV accuracy" in capsys.readouterr().out
    assert "C = 0.5" in (out / "config.toml").read_text()  # the [my_track] table reached the track
    assert cli.main(["validate", str(out / "submission.csv"), str(data)]) == 0
    result = kit.tune(
        data, track=str(TEAM_TRACK), trials=2, folds=2, config=config, out=tmp_path / "study", log=quiet
    )
    assert result.n_complete == 2 and result.best_params["scaling"] == "standard"
    assert 0.0 < result.best_params["C"]
    # the best config says how to rerun it: through `kit run` and the file, not as a verb
    best = (tmp_path / "study" / "best.toml").read_text()
    assert f"# Rerun it: kit run {TEAM_TRACK.resolve()} {data}" in best
    rerun = tmp_path / "rerun"
    assert cli.main(["run", str(TEAM_TRACK), str(data), "--config", str(tmp_path / "study" / "best.toml"),
                     "--out", str(rerun)]) == 0  # fmt: skip
    assert json.loads((rerun / "metrics.json").read_text())["score"] == pytest.approx(result.best_score)


@pytest.mark.parametrize(
    "source, match",
    [
        ("DEFAULTS = {}\n", "must define DEFAULTS .* and fit_predict_fold"),
        ("import no_such_module\n", "failed to import: ModuleNotFoundError"),
    ],
)
def test_a_broken_track_file_is_one_line(tmp_path, capsys, source, match):
    path = tmp_path / "broken.py"
    path.write_text(source)
    with pytest.raises(InputError, match=match):
        tracks.get(path)
    assert cli.main(["run", str(path), str(write_competition(tmp_path / "tiny", n=60))]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_error_in_a_track_files_fold_names_the_file_and_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the traceback is saved
    path = tmp_path / "mine.py"
    path.write_text(
        "DEFAULTS = {}\n"
        "def fit_predict_fold(fold, params):\n"
        "    return helper(fold)\n"
        "def helper(fold):\n"
        "    raise ValueError('boom')\n"
    )
    assert cli.main(["run", str(path), str(write_competition(tmp_path / "tiny", n=60))]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"Track file '{path}' raised ValueError: boom (fold 1). Fix the track" in line
    saved = Path(line.rsplit("the full traceback is in ", 1)[1])
    assert "in helper\n    raise ValueError('boom')" in saved.read_text()


def test_a_track_error_crosses_from_a_tuning_worker_with_the_tracks_traceback(tmp_path, monkeypatch):
    """`kit tune` trains in worker processes: a track's error reaches the command as the track's
    (exit 2, its own traceback saved), not as an error of kit's."""
    import pickle

    from kit import boundary
    from kit.errors import TrackError

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the traceback is saved

    def helper():
        raise ValueError("boom")

    try:
        helper()
    except ValueError as cause:
        err = TrackError("Track file 'mine.py'", 0, cause)
    back = pickle.loads(pickle.dumps(err))
    line, code = boundary.report(back)
    assert code == 2 and line.startswith("kit: error: Track file 'mine.py' raised ValueError: boom (fold 1)")
    saved = Path(line.rsplit("the full traceback is in ", 1)[1])
    assert 'in helper\n    raise ValueError("boom")' in saved.read_text()


def test_a_track_file_cannot_take_a_kit_name(tmp_path):
    for name in ("baseline", "tune"):
        path = tmp_path / f"{name}.py"
        path.write_text("DEFAULTS = {}\ndef fit_predict_fold(fold, params):\n    pass\n")
        with pytest.raises(InputError, match="Rename it"):
            tracks.get(path)


def test_a_prediction_of_the_wrong_shape_fails_at_the_fold(tmp_path):
    comp, cfg = kit.load(write_competition(tmp_path / "tiny", n=60), folds=2)

    def one_column(fold, params):
        return np.zeros(fold.val.height), np.zeros(fold.test.height)

    with pytest.raises(
        ValueError, match=r"shape \(\d+,\).*expected \(\d+, 2\).*np.stack\(\[1 - p, p\], axis=1\)"
    ):
        cross_validate(comp, cfg, one_column, out=tmp_path / "run", log=quiet, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "returned, match",
    [
        (lambda fold: None, "returned NoneType for fold 1; expected"),
        (lambda fold: (np.zeros((fold.val.height, 2)),), "returned 1 values for fold 1; expected"),
        # "probabilities" of 3: accuracy would score them, log_loss would clip them to a number
        (lambda fold: (np.full((fold.val.height, 2), 3.0), np.full((fold.test.height, 2), 3.0)),
         r"not class probabilities for fold 1's validation rows.*max=3"),
        (lambda fold: (np.full((fold.val.height, 2), 0.2), np.full((fold.test.height, 2), 0.5)),
         r"not class probabilities .* row sums 0.4 to 0.4"),
        # one row of NaN: counted as a row, not as its two values
        (lambda fold: (np.where(np.arange(fold.val.height)[:, None] == 3, np.nan, np.full((fold.val.height, 2), 0.5)),
                       np.full((fold.test.height, 2), 0.5)),
         r"NaN or infinite values for 1 of fold 1's \d+ validation rows"),
    ],
)  # fmt: skip
def test_a_track_that_returns_other_than_predictions_fails_at_the_fold(tmp_path, returned, match):
    comp, cfg = kit.load(write_competition(tmp_path / "tiny", n=60), folds=2)
    with pytest.raises(InputError, match=match):
        cross_validate(
            comp, cfg, lambda fold, params: returned(fold), out=tmp_path / "run", log=quiet, progress=False
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "table, match",
    [
        ("[baseline]\ndropout = 1.5\n", r"\[baseline\] dropout .* must be in \[0, 1\)"),
        ("[baseline]\nscaling = 'minmax'\n", r"scaling .* must be one of: robust, standard, quantile, power"),
        ("[advanced]\nema = 1.0\n", r"\[advanced\] ema .* must be in \[0, 1\)"),
        ("[advanced]\nprecision = 'float8'\n", "must be one of: auto, float32"),
        ("[advanced]\nunits = [64, 0]\n", r"units .* must be in \[1, 65536\]"),
        ("[baseline]\nunits = [64.5]\n", r"units \(each value\) .* must be of type int"),
        ("seed = -1\n", r"seed .* must be in \[0,"),
        ("[search]\npruner = 'nosuch'\n", "Unknown pruner 'nosuch'"),  # not only where kit tune reads it
        ("[nope]\nx = 1\n", "Unknown setting 'nope'.*track's table: advanced, baseline"),
    ],
)
def test_a_parameter_out_of_range_is_refused_before_training(tmp_path, capsys, table, match):
    data = write_competition(tmp_path / "tiny", n=60)
    config = tmp_path / "bad.toml"
    config.write_text(table)
    with pytest.raises(InputError, match=match):
        kit.load(data, config=config)
    assert cli.main(["baseline", str(data), "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_leaderboard_names_every_track(tmp_path):
    data = write_competition(tmp_path / "tiny", n=60)
    comp, cfg = kit.load(data, folds=2)
    for name in ("baseline", str(TEAM_TRACK)):
        track = tracks.get(name)
        out = tmp_path / "submissions" / comp.name / track.name
        cross_validate(comp, cfg, track, params=quick_params(track), out=out, log=quiet, progress=False)
    board = kit.leaderboard(tmp_path / "submissions")
    assert set(board["track"]) == {"baseline", "my_track"} and board.height == 2
    assert isinstance(board, pl.DataFrame)


def _multiplicative(root: Path, n: int = 600) -> Path:
    """Sales-like counts: a store's level (1 to 1000) times a smooth effect of x, 10% noise."""
    rng = np.random.default_rng(0)
    total = n + n // 3
    store = rng.choice(["tiny", "small", "big", "huge"], size=total)
    level = np.select([store == "tiny", store == "small", store == "big"], [1.0, 10.0, 100.0], 1000.0)
    x = rng.uniform(-1, 1, total)
    y = 5 * level * np.exp(x) * rng.lognormal(sigma=0.1, size=total)
    frame = pl.DataFrame({"id": np.arange(total), "store": store, "x": x})
    root.mkdir(parents=True)
    frame[:n].with_columns(pl.Series("sold", y[:n])).write_csv(root / "train.csv")
    frame[n:].write_csv(root / "test.csv")
    frame[n:].select("id", pl.lit(1.0).alias("sold")).write_csv(root / "sample_submission.csv")
    return root


@pytest.mark.parametrize("name", ["baseline", "trees"])
def test_mape_is_learned_as_relative_error_across_scales(name, tmp_path):
    # on the target's own scale the small stores' errors are lost among the big ones'; learned
    # on log1p they count as much, as mape counts them
    comp, cfg = kit.load(_multiplicative(tmp_path / "sales"), metric="mape", folds=2, seed=0)
    params = {"epochs": 60, "patience": 60} if name == "baseline" else {}
    run = cross_validate(comp, cfg, name, params=params, out=tmp_path / "run", log=quiet, progress=False)
    assert run.score < 0.25
    small = comp.train["store"] == "tiny"
    pred, y = run.oof["prediction"].to_numpy(), comp.train["sold"].to_numpy()
    assert np.median(np.abs(pred[small] - y[small]) / y[small]) < 0.3


@pytest.mark.parametrize("split", ["kfold", "time"])
def test_the_test_predictions_weigh_each_fold_as_the_split_says(split, tmp_path):
    # a track whose test prediction is its fold's number shows each fold's share of the average
    track = tmp_path / "fold_number.py"
    track.write_text(
        "import numpy as np\nDEFAULTS = {}\n"
        "def fit_predict_fold(fold, params):\n"
        "    return np.full(fold.val.height, fold.y_train.mean()), np.full(fold.test.height, float(fold.index))\n"
    )
    data = write_competition(tmp_path / "data", task="regression", n=200)
    # the test rows come after train's, as a forecast's do (else the folds count equally)
    test = pl.read_csv(data / "test.csv")
    test.with_columns(pl.col("when").str.replace("2024-01-", "2024-02-")).write_csv(data / "test.csv")
    comp, cfg = kit.load(data, folds=4, split=split, time="when" if split == "time" else None)
    run = cross_validate(comp, cfg, str(track), out=tmp_path / "run", log=quiet, progress=False)
    # scikit-learn's TimeSeriesSplit trains fold k on the first k + 1 fifths of the sorted rows
    rows = np.arange(1.0, 5.0) if split == "time" else np.ones(4)
    want = float(np.dot(rows**2 / (rows**2).sum(), np.arange(4)))
    np.testing.assert_allclose(run.test_predictions["prediction"].to_numpy(), want, rtol=1e-9)
    shares = json.loads((run.run_dir / "metrics.json").read_text())["fold_weights"]
    assert shares == pytest.approx(rows**2 / (rows**2).sum(), abs=1e-6)


def test_labels_of_a_rare_class_come_from_the_cut_that_scores_best_on_held_out_folds(tmp_path):
    # 8% "yes" scored by f1: at 0.5 most of them would be called "no"
    data = write_competition(tmp_path / "rare", n=900, positives=0.08)
    comp, cfg = kit.load(data, metric="f1")
    lines = []
    run = cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=lines.append, progress=False)
    info = json.loads((run.run_dir / "metrics.json").read_text())
    cut = info["threshold"]
    assert 0 < cut < 0.5
    # the lines say which scores are at 0.5 and which at the cuts, as metrics.json keeps them
    assert all(" at 0.5 " in line for line in lines if line.strip().startswith("fold "))
    assert any(", ".join(f"{v:.5f}" for v in info["fold_scores"]) in line for line in lines)
    oof = run.oof.filter(pl.col("fold") >= 0)
    y = (oof["label"] == "yes").to_numpy()
    at_half = kit.metrics.get("f1")(y, oof.select("proba_no", "proba_yes").to_numpy())
    assert run.score > at_half  # the held-out folds' labels, each fold cut where the others chose
    # which the files alone reproduce: each fold's rows labelled at that fold's saved cut
    fold = oof["fold"].to_numpy()
    cuts = np.asarray(info["fold_thresholds"])[fold]
    labelled = oof["proba_yes"].to_numpy() > cuts
    assert f1_score(y, labelled) == pytest.approx(run.score)
    assert [f1_score(y[fold == k], labelled[fold == k]) for k in range(5)] == pytest.approx(
        info["fold_scores"]
    )
    submission = pl.read_csv(run.submission_path)
    expected = np.where(run.test_predictions["proba_yes"].to_numpy() > cut, "yes", "no")
    assert submission["label"].to_list() == expected.tolist()
    assert f"P &gt; {cut:.4f}" in (run.run_dir / "report.html").read_text()  # the page says so


def test_an_exported_model_writes_the_labels_its_run_wrote(tmp_path):
    data = write_competition(tmp_path / "rare", n=600, positives=0.06)
    comp, cfg = kit.load(data, metric="f1", folds=3)
    # trained long enough to rank the rare class: then its cut is far below 0.5
    params = {**QUICK, "epochs": 30, "patience": 10, "units": [32]}
    run = cross_validate(
        comp, cfg, "advanced", params=params, out=tmp_path / "run", log=quiet, progress=False
    )
    cut = json.loads((run.run_dir / "model" / "assets.extra" / "kit.json").read_text())["threshold"]
    assert cut is not None and cut == json.loads((run.run_dir / "metrics.json").read_text())["threshold"]
    sub = kit.predict(run.run_dir / "model", data / "test.csv", out=tmp_path / "sub.csv", log=quiet)
    assert pl.read_csv(sub).equals(pl.read_csv(run.submission_path))


def _one_row_class(root: Path, *, n: int = 300, seed: int = 5) -> Path:
    """Three classes and a fourth of a single row, which a fold's training rows lack."""
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c"], n)
    y[0] = "z"
    root.mkdir(parents=True)
    pl.DataFrame({"id": np.arange(n), "x": rng.normal(size=n) + (y == "a"), "t": y}).write_csv(
        root / "train.csv"
    )
    test = pl.DataFrame({"id": np.arange(n, n + 60), "x": rng.normal(size=60)})
    test.write_csv(root / "test.csv")
    test.select("id", pl.lit("a").alias("t")).write_csv(root / "sample_submission.csv")
    return root


@pytest.mark.parametrize("name", ["trees", "linear"])
def test_a_class_missing_from_a_folds_training_rows_is_predicted_at_zero_there(name, tmp_path):
    comp, cfg = kit.load(_one_row_class(tmp_path / "data"), folds=3)
    run = cross_validate(comp, cfg, name, out=tmp_path / "run", log=quiet, progress=False)
    proba = run.oof.select(f"proba_{c}" for c in comp.classes).to_numpy()
    assert proba.shape == (comp.train.height, 4) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    # the row of "z" is validated by the one fold that never saw it
    assert proba[0, comp.classes.index("z")] < 1e-3
    assert np.isfinite(run.score)


@pytest.mark.parametrize("name", tracks.names())
def test_a_fold_that_trains_on_one_class_is_refused_before_training(name, tmp_path, capsys):
    # the first half of the rows, in time order, has a single class: a time split's first fold too
    rng = np.random.default_rng(19)
    x = rng.normal(size=700)
    y = (x > 0).astype(int)
    y[:300] = 0
    data = tmp_path / "data"
    data.mkdir()
    frame = pl.DataFrame({"id": np.arange(700), "t": np.arange(700), "x": x})
    frame[:600].with_columns(pl.Series("y", y[:600])).write_csv(data / "train.csv")
    frame[600:].write_csv(data / "test.csv")
    frame[600:].select("id", pl.lit(0.5).alias("y")).write_csv(data / "sample_submission.csv")
    out = tmp_path / "run"
    args = [name, str(data), "--time", "t", "--folds", "2", "--metric", "log_loss", "--out", str(out)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Training fold 1 of the time split" in err[0] and "--split stratified" in err[0]
    assert not out.exists()


def test_a_track_sees_its_folds_rows_whether_it_reads_the_frames_or_the_row_numbers(tmp_path):
    data = write_competition(tmp_path / "c", n=300)
    seen = []

    def track(fold, params):
        frame, rows = fold.rows_of("val")
        np.testing.assert_array_equal(frame[rows]["x1"].to_numpy(), fold.val["x1"].to_numpy())
        assert fold.train.height == len(fold.y_train) and fold.val.height == len(fold.y_val)
        seen.append(set(fold.val["x1"].drop_nulls().to_list()))  # x1 tells the rows apart
        assert not seen[-1] & set(fold.train["x1"].drop_nulls().to_list())
        return np.full((len(fold.y_val), 2), 0.5), np.full((fold.test.height, 2), 0.5)

    comp, cfg = kit.load(data, folds=3)
    cross_validate(comp, cfg, track, out=tmp_path / "run", log=quiet, progress=False)
    assert len(seen) == 3 and not (seen[0] & seen[1]) and len(set.union(*seen)) > 250


def test_ctrl_c_before_the_first_fold_leaves_no_work_folder(tmp_path, monkeypatch):
    """Stopped while TensorFlow loads, a run has made its work folder and nothing to resume from
    in it: nothing of the run stays, as the message says."""
    from kit import runtime

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    comp, cfg = kit.load(write_competition(tmp_path / "tiny", n=60), folds=2)
    monkeypatch.setattr(runtime, "seed_everything", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(comp, cfg, "trees", out=tmp_path / "runs" / "run", log=quiet, progress=False)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
