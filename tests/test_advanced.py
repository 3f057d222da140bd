"""The advanced track end to end: the run folder, the one exported model of all folds that takes
raw rows, `kit predict` from it alone in a fresh process, resume after a kill, the pruning
contract, and real competitions from ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import polars as pl
import pytest
from conftest import shared_competition, write_competition

from kit import api, cli, kaggle, tracks
from kit.errors import InputError
from kit.run import cross_validate
from kit.run_folder import check_work_dir
from kit.serving import ExportedModel

REPO = Path(__file__).resolve().parents[1]
FAST = "[advanced]\nepochs = 3\nunits = [16]\npatience = 5\ncheckpoint_seconds = 0\n"


def quiet(_line):
    pass


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.toml"
    path.write_text(FAST)
    return path


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory, fast_config):
    root = tmp_path_factory.mktemp("binary")
    data = write_competition(root / "tiny")
    run = api.advanced(data, folds=2, config=fast_config, out=root / "run", progress=False, log=quiet)
    return data, run


def prediction_matrix(run) -> np.ndarray:
    columns = [c for c in run.test_predictions.columns if c.startswith("proba_") or c == "prediction"]
    return run.test_predictions.select(columns).to_numpy()


FRESH = """
import sys, numpy as np
from kit.io import read_table
from kit.serving import ExportedModel
model, test, out = sys.argv[1:4]
np.save(out + ".npy", ExportedModel(model).predict(read_table(test)))
from kit.cli import main
sys.exit(main(["predict", model, test, "--out", out]))
"""


def test_run_folder_has_the_baseline_layout_plus_one_model_and_tensorboard(binary_run):
    _, run = binary_run
    files = {p.name for p in run.run_dir.iterdir()}
    assert {
        "submission.csv",
        "oof.parquet",
        "test_predictions.parquet",
        "metrics.json",
        "config.toml",
    } <= files
    assert {"model", "tensorboard"} <= files
    assert sorted(p.name for p in (run.run_dir / "tensorboard").iterdir()) == ["fold_0", "fold_1"]
    assert json.loads((run.run_dir / "metrics.json").read_text())["track"] == "advanced"
    # the run's config.toml reproduces it: every [advanced] parameter, read back as it was
    _, cfg = api.load(binary_run[0], config=run.run_dir / "config.toml")
    assert cfg.params("advanced") == tracks.get("advanced").params(
        {"epochs": 3, "units": [16], "patience": 5, "checkpoint_seconds": 0}
    )
    assert not any(p.name.endswith(".work") for p in run.run_dir.parent.iterdir())  # checkpoints cleaned up
    info = json.loads((run.run_dir / "model" / "assets.extra" / "kit.json").read_text())
    assert info["folds"] == 2 and info["id"] == "row_id" and info["classes"] == ["no", "yes"]
    assert info["inputs"]["when"] == {"role": "datetime", "kind": "string"}  # raw, parsed in the graph


def test_export_reloaded_in_a_fresh_process_predicts_like_the_fold_models_and_writes_the_submission(
    binary_run, tmp_path
):
    data, run = binary_run
    out = tmp_path / "sub.csv"
    result = subprocess.run(
        [sys.executable, "-c", FRESH, str(run.run_dir / "model"), str(data / "test.csv"), str(out)],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(f"{out}.npy"), prediction_matrix(run), rtol=1e-6, atol=1e-9)
    assert "submission:" in result.stdout
    assert out.read_text() == run.submission_path.read_text()
    api.validate(out, data)


def test_predict_without_out_keeps_a_submission_csv_that_is_there(binary_run, tmp_path, monkeypatch):
    data, run = binary_run
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "no-kaggle-working"))
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-kaggle-input"))
    (tmp_path / "submission.csv").write_text("my own\n")
    with pytest.raises(InputError, match="--out submission.csv to replace it"):
        api.predict(run.run_dir / "model", data / "test.csv", log=quiet)
    assert (tmp_path / "submission.csv").read_text() == "my own\n"
    (tmp_path / "submission.csv").unlink()  # the default is written where nothing is
    assert (
        api.predict(run.run_dir / "model", data / "test.csv", log=quiet).read_text()
        == run.submission_path.read_text()
    )


def test_predict_refuses_to_write_over_its_own_test_file(binary_run, tmp_path):
    data, run = binary_run
    test = tmp_path / "test.csv"
    test.write_bytes((data / "test.csv").read_bytes())
    with pytest.raises(InputError, match="is the test file itself"):
        api.predict(run.run_dir / "model", test, out=tmp_path / "." / "test.csv", log=quiet)
    assert test.read_bytes() == (data / "test.csv").read_bytes()


def test_predict_replaces_only_a_submission_of_the_competition(binary_run, tmp_path):
    data, run = binary_run
    model = run.run_dir / "model"
    notes = tmp_path / "notes.csv"
    notes.write_text("my notes\n")
    with pytest.raises(InputError, match="is not a submission of this competition"):
        api.predict(model, data / "test.csv", out=notes, log=quiet)
    assert notes.read_text() == "my notes\n"
    copy = tmp_path / "comp"
    copy.mkdir()
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (copy / name).write_bytes((data / name).read_bytes())
    for name in ("train.csv", "sample_submission.csv"):  # the sample has the submission's columns
        with pytest.raises(InputError, match="one of the competition's own files"):
            api.predict(model, data / "test.csv", out=copy / name, log=quiet)
        assert (copy / name).read_bytes() == (data / name).read_bytes()
    with pytest.raises(InputError, match="inside the model folder"):
        api.predict(model, data / "test.csv", out=model / "saved_model.pb", log=quiet)
    # an older submission of the competition is what --out asks to replace
    old = tmp_path / "old.csv"
    old.write_text("".join(run.submission_path.read_text().splitlines(keepends=True)[:-5]))
    assert old.read_text() != run.submission_path.read_text()
    api.predict(model, data / "test.csv", out=old, log=quiet)
    assert old.read_text() == run.submission_path.read_text()


def test_predict_says_when_a_column_is_empty_or_spelled_otherwise_than_in_train(binary_run, tmp_path):
    data, run = binary_run
    test = pl.read_csv(data / "test.csv")
    odd = tmp_path / "test.csv"
    test.with_columns(pl.col("color").str.to_uppercase(), pl.lit(None, pl.Float64).alias("x1")).write_csv(odd)
    said = []
    api.predict(run.run_dir / "model", odd, out=tmp_path / "s.csv", log=said.append)
    notes = [n for n in said if n.startswith("note:")]
    assert any("'x1' is empty in every one of the" in n for n in notes), said
    unseen = [n for n in notes if "value(s) of 'color' never appear in training (such as" in n]
    assert (
        unseen
        and "'blue', 'green', 'red'" in unseen[0]
        and unseen[0].split("such as ")[1][:4] in ("'RED", "'GRE", "'BLU")
    ), said
    said.clear()  # the competition's own test file: nothing to say
    api.predict(run.run_dir / "model", data / "test.csv", out=tmp_path / "s.csv", log=said.append)
    assert not [n for n in said if n.startswith("note:")], said


def test_predict_takes_the_test_rows_as_a_dataframe_too(binary_run, tmp_path):
    data, run = binary_run
    out = api.predict(
        run.run_dir / "model", pl.read_csv(data / "test.csv"), out=tmp_path / "sub.csv", log=quiet
    )
    assert out.read_text() == run.submission_path.read_text()
    rows = pl.read_csv(data / "test.csv")
    # values the model cannot read are said, not silently taken as missing
    changed = rows.with_columns(
        pl.col("x1").cast(pl.String) + "x",
        pl.col("when").str.replace(r"^(\d{4})-(\d{2})-(\d{2})", "$3.$2.$1"),
    )
    lines = []
    api.predict(run.run_dir / "model", changed, out=tmp_path / "changed.csv", log=lines.append)
    notes = [line for line in lines if line.startswith("note:")]
    assert any("value(s) of 'x1' are not numbers" in n for n in notes)
    assert any(f"{rows.height} of {rows.height} value(s) of 'when' are not dates" in n for n in notes)
    with pytest.raises(InputError, match="has no rows"):
        api.predict(run.run_dir / "model", rows.head(0), out=tmp_path / "other.csv", log=quiet)
    with pytest.raises(InputError, match=r"1 id\(s\) in 'row_id' more than once"):
        api.predict(
            run.run_dir / "model", pl.concat([rows, rows.head(1)]), out=tmp_path / "other.csv", log=quiet
        )
    with pytest.raises(InputError, match="path or a DataFrame"):
        api.predict(run.run_dir / "model", [1, 2, 3], out=tmp_path / "other.csv", log=quiet)
    assert not (tmp_path / "other.csv").exists()


def test_exported_model_takes_raw_rows_with_unseen_values_and_gaps(binary_run):
    data, run = binary_run
    model = ExportedModel(run.run_dir / "model")
    rows = pl.read_csv(data / "test.csv").head(4)
    rows = rows.with_columns(
        pl.Series("color", ["purple", None, "red", ""]),  # unseen, missing, known, empty
        pl.Series("x1", [None, None, 1e9, -3.0]),
        pl.Series("when", ["not a date", None, "2031-07-04 12:00:00", "2024-01-02"]),
        pl.Series("x2", ["7", None, "n/a", "3"]),  # a numeric column read as text
    )
    pred = model.predict(rows)
    assert pred.shape == (4, 2) and np.isfinite(pred).all()
    np.testing.assert_allclose(pred.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("task", "split"), [("multiclass", "holdout"), ("regression", "holdout"), ("regression", "time")]
)
def test_export_matches_the_fold_models_for_other_tasks(tmp_path, fast_config, task, split):
    # a time split weighs its later folds more (kit.split.fold_weights): the export does too
    data = write_competition(tmp_path / task, task=task)
    run = api.advanced(
        data, split=split, time="when" if split == "time" else None, folds=3, config=fast_config,
        out=tmp_path / "run", progress=False, log=quiet,
    )  # fmt: skip
    pred = ExportedModel(run.run_dir / "model").predict(pl.read_csv(data / "test.csv"))
    np.testing.assert_allclose(pred.reshape(len(pred), -1), prediction_matrix(run), rtol=1e-6, atol=1e-9)
    sub = api.predict(run.run_dir / "model", data / "test.csv", out=tmp_path / "sub.csv", log=quiet)
    frame = api.validate(sub, data)
    if task == "multiclass":  # one probability column per class, as the sample file has
        assert frame.columns == ["row_id", "label_high", "label_low", "label_mid"]


def test_a_killed_run_resumes_each_fold_from_its_checkpoints(tmp_path, fast_config):
    comp, cfg = api.load(write_competition(tmp_path / "tiny"), folds=2, config=fast_config)

    class Kill(keras.callbacks.Callback):
        def __init__(self, fold):
            super().__init__()
            self.fold = fold

        def on_epoch_end(self, epoch, logs=None):
            if self.fold == 1 and epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        cross_validate(
            comp, cfg, "advanced", out=out, progress=False, log=quiet, fold_callbacks=lambda k: [Kill(k)]
        )
    assert not out.exists()  # nothing published for the unfinished run
    work = tmp_path / ".run.work"
    assert (work / "fold_0" / "checkpoints" / "ckpt-3.index").exists()
    assert (work / "fold_1" / "checkpoints" / "ckpt-2.index").exists()

    lines = []
    run = cross_validate(comp, cfg, "advanced", out=out, progress=False, log=lines.append)
    text = "\n".join(lines)
    assert "resuming from the checkpoints" in text
    assert "fold_0/checkpoints/ckpt-3 at epoch 4" in text  # fold 0 had finished: nothing to train
    assert "fold_1/checkpoints/ckpt-2 at epoch 3" in text
    assert (run.run_dir / "model" / "saved_model.pb").exists() and not work.exists()
    # each fold's learning curve holds the epochs before the kill too
    for fold in json.loads((run.run_dir / "history.json").read_text())["folds"]:
        assert len(fold["loss"]) == len(fold["val_score"]) == 3 and fold["first_epoch"] == 0


def test_a_killed_run_started_again_with_another_seed_starts_over(tmp_path, fast_config):
    data = write_competition(tmp_path / "tiny")
    comp, cfg = api.load(data, folds=2, config=fast_config)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        cross_validate(
            comp, cfg, "advanced", out=out, progress=False, log=quiet, fold_callbacks=lambda k: [Kill()]
        )
    assert (tmp_path / ".run.work" / "fold_0" / "checkpoints").is_dir()
    # other folds (the seed shuffles the rows), so other rows behind every checkpoint
    comp, cfg = api.load(data, folds=2, config=fast_config, seed=1)
    lines = []
    run = cross_validate(comp, cfg, "advanced", out=out, progress=False, log=lines.append)
    assert any("starting over" in line for line in lines) and not any("resuming" in line for line in lines)
    assert (
        run.score
        == api.advanced(
            data, folds=2, config=fast_config, seed=1, out=tmp_path / "fresh", progress=False, log=quiet
        ).score
    )


def test_checkpoints_of_other_parameters_are_not_resumed(tmp_path):
    work = tmp_path / ".run.work"
    messages = []
    check_work_dir(work, {"epochs": 3}, messages.append)
    (work / "fold_0").mkdir()
    check_work_dir(work, {"epochs": 3}, messages.append)
    assert (work / "fold_0").exists() and "resuming" in messages[-1]
    check_work_dir(work, {"epochs": 4}, messages.append)
    assert not (work / "fold_0").exists() and "starting over" in messages[-1]


def test_every_fold_callback_gets_the_validation_score_after_each_epoch(tmp_path, fast_config):
    comp, cfg = api.load(write_competition(tmp_path / "tiny"), folds=2, config=fast_config)
    seen = []

    class Record(keras.callbacks.Callback):
        def __init__(self, fold):
            super().__init__()
            self.fold = fold

        def on_epoch_end(self, epoch, logs=None):
            seen.append((self.fold, epoch, logs["val_score"]))

    cross_validate(
        comp,
        cfg,
        "advanced",
        out=tmp_path / "run",
        log=quiet,
        progress=False,
        fold_callbacks=lambda k: [Record(k)],
    )
    assert [(f, e) for f, e, _ in seen] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert all(0 <= score <= 1 for *_, score in seen)  # accuracy on the validation fold


def test_predict_needs_an_exported_model(tmp_path, capsys):
    with pytest.raises(InputError, match="not a model exported by `kit advanced`"):
        ExportedModel(tmp_path)
    assert (
        cli.main(["predict", str(tmp_path), str(tmp_path / "test.csv"), "--out", str(tmp_path / "s.csv")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("kit: error:") and err.count("\n") == 1
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("name", ["titanic", "bike-sharing-demand"])
def test_real_competition_end_to_end(tmp_path, name):
    data = shared_competition(name)
    config = tmp_path / "fast.toml"
    config.write_text("[advanced]\nepochs = 2\n")
    run = api.advanced(data, folds=2, config=config, out=tmp_path / "run", progress=False, log=quiet)
    assert np.isfinite(run.score)
    test = (data / "test.csv").resolve()
    pred = ExportedModel(run.run_dir / "model").predict(pl.read_csv(test, infer_schema_length=None))
    np.testing.assert_allclose(pred.reshape(len(pred), -1), prediction_matrix(run), rtol=1e-6, atol=1e-9)
    sub = api.predict(run.run_dir / "model", test, out=tmp_path / "submission.csv", log=quiet)
    got, want = api.validate(sub, data), api.validate(run.submission_path, data)
    assert got.columns == want.columns and got[got.columns[0]].equals(want[want.columns[0]])
    for column in got.columns[1:]:  # labels exactly, values to float32 rounding (the network's)
        if got[column].dtype.is_float():
            np.testing.assert_allclose(got[column].to_numpy(), want[column].to_numpy(), rtol=1e-6)
        else:
            assert got[column].equals(want[column])


def test_a_failed_export_leaves_no_run_folder_and_a_rerun_resumes(tmp_path, fast_config, monkeypatch):
    import kit.serving

    comp, cfg = api.load(write_competition(tmp_path / "tiny"), folds=2, config=fast_config)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kit.serving, "export", full_disk)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        cross_validate(comp, cfg, "advanced", out=out, progress=False, log=quiet)
    assert not out.exists()  # no run folder with a submission and no model
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    monkeypatch.undo()
    lines = []
    run = cross_validate(comp, cfg, "advanced", out=out, progress=False, log=lines.append)
    assert "resuming from the checkpoints" in "\n".join(lines)  # the folds are not trained again
    assert (run.run_dir / "model" / "saved_model.pb").is_file() and (run.run_dir / "submission.csv").is_file()


def test_column_names_the_graph_cannot_spell_are_mapped(tmp_path, fast_config):
    data = write_competition(tmp_path / "tiny")
    for name in ("train.csv", "test.csv"):
        frame = pl.read_csv(data / name)
        # TensorFlow lowercases signature names: "Value" and "value" must not both become "value"
        frame = frame.with_columns((pl.col("x1") * 2).alias("Value"), (pl.col("x2") - 1).alias("value"))
        frame.rename({"x1": "âge years", "x2": "2nd-value (%)"}).write_csv(data / name)
    run = api.advanced(data, folds=2, config=fast_config, out=tmp_path / "run", progress=False, log=quiet)
    sub = api.predict(run.run_dir / "model", data / "test.csv", out=tmp_path / "sub.csv", log=quiet)
    assert sub.read_text() == run.submission_path.read_text()


@pytest.mark.parametrize("written", ["utc_offset", "time_zone"])
def test_predict_reproduces_the_submission_on_datetimes_with_a_utc_offset_or_a_time_zone(
    tmp_path, fast_config, written
):
    # the hour decides the label, so a model that reads another hour than training did disagrees
    rng = np.random.default_rng(33)
    n, m = 300, 100
    seconds = rng.integers(0, 365 * 24 * 3600, n + m).astype("m8[s]")
    local = (np.datetime64("2021-01-01T00:00:00") + seconds).astype("M8[ms]")
    stamps = pl.Series("when", local)
    if written == "utc_offset":  # text, as "2021-03-01T14:30:00+02:00"
        stamps = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    else:  # a Parquet column with a time zone, summer time and winter time
        stamps = stamps.dt.replace_time_zone("Europe/Berlin", ambiguous="earliest", non_existent="null")
    rows = pl.DataFrame({"id": np.arange(n + m), "when": stamps, "x": rng.normal(size=n + m)})
    rows = rows.with_columns((pl.Series(local).dt.hour() >= 12).cast(pl.Int64).alias("y"))
    data = tmp_path / "c"
    data.mkdir()
    write = pl.DataFrame.write_csv if written == "utc_offset" else pl.DataFrame.write_parquet
    suffix = "csv" if written == "utc_offset" else "parquet"
    write(rows[:n], data / f"train.{suffix}")
    write(rows[n:].drop("y"), data / f"test.{suffix}")
    rows[n:].select("id", pl.lit(0.5).alias("y")).write_csv(data / "sample_submission.csv")
    run = api.advanced(data, folds=2, config=fast_config, out=tmp_path / "run", progress=False, log=quiet)
    test = data / f"test.{suffix}"
    sub = api.predict(run.run_dir / "model", test, out=tmp_path / "sub.csv", log=quiet)
    np.testing.assert_allclose(
        pl.read_csv(sub)["y"].to_numpy(),
        pl.read_csv(run.submission_path)["y"].to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_fold_above_the_memory_threshold_streams_from_parquet_shards(tmp_path, monkeypatch):
    """`stream_above_mib` is the memory limit here: the training fold (about 30 KB) is above it."""
    import kit.data

    def no_tensor_of_the_fold(*args, **kwargs):
        raise AssertionError("a streamed fold must not be held as a TableSource")

    monkeypatch.setattr(kit.data, "TableSource", no_tensor_of_the_fold)
    data = write_competition(tmp_path / "regression", n=600, task="regression")
    config = tmp_path / "stream.toml"
    config.write_text(
        "[advanced]\nepochs = 30\nunits = [32]\ncheckpoint_seconds = 0\nstream_above_mib = 0.01\n"
    )
    lines = []
    run = api.advanced(data, folds=2, config=config, out=tmp_path / "run", progress=False, log=lines.append)
    streamed = [line for line in lines if "streaming" in line]
    assert len(streamed) == 2 and all("from 4 Parquet shards" in line for line in streamed)
    # it learned the signal: y = 10 + 3 * signal + noise has a spread of about 3.7
    assert run.score < 0.6 * pl.read_csv(data / "train.csv")["label"].std()
    pred = ExportedModel(run.run_dir / "model").predict(pl.read_csv(data / "test.csv"))
    np.testing.assert_allclose(pred.reshape(len(pred), -1), prediction_matrix(run), rtol=1e-6, atol=1e-9)
    assert not (tmp_path / ".run.work").exists()  # the shards went with the work folder


def test_stream_flag_streams_a_small_fold_too(tmp_path, fast_config, capsys):
    data = write_competition(tmp_path / "tiny", n=400)
    code = cli.main(["advanced", str(data), "--stream", "--split", "holdout", "--config", str(fast_config),
                     "--out", str(tmp_path / "run")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "streaming 320 training rows from 4 Parquet shards" in out
    assert 'stream = "on"' in (tmp_path / "run" / "config.toml").read_text()
    api.validate(tmp_path / "run" / "submission.csv", data)


def test_a_column_named_like_the_shards_target_is_kept_apart_from_it(tmp_path):
    from kit.tracks.advanced import TARGET, target_column, write_shards

    frame = pl.DataFrame({TARGET: [7.0, 8.0, 9.0], "x": [1.0, 2.0, 3.0]})
    name = target_column(frame.columns)
    assert name != TARGET
    shards = write_shards(frame, np.array([0.1, 0.2, 0.3]), tmp_path / "shards", target=name)
    back = pl.concat([pl.read_parquet(p) for p in shards])
    assert back[TARGET].to_list() == [7.0, 8.0, 9.0]  # the data's column, not the target
    np.testing.assert_allclose(back[name].to_numpy(), [0.1, 0.2, 0.3])


def test_a_direct_streamed_fold_that_fails_leaves_no_temporary_shards(tmp_path, monkeypatch):
    import tempfile

    from kit.run import Fold
    from kit.training import Trainer

    def broken(*args, **kwargs):
        raise RuntimeError("training failed")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(Trainer, "fit", broken)
    comp, _ = api.load(write_competition(tmp_path / "tiny", n=120), folds=2)
    from kit.derive import derive

    train, roles = derive(comp.train, comp.roles, comp.parts)
    test, _ = derive(comp.test, comp.roles, comp.parts)
    y = (comp.train[comp.target] == comp.classes[1]).cast(pl.Int64).to_numpy()
    fold = Fold(index=0, train=train[:80], val=train[80:], test=test, y_train=y[:80], y_val=y[80:],
                roles=roles, task="binary", n_classes=2, metric="log_loss", seed=0, log=quiet)  # fmt: skip
    params = tracks.get("advanced").params({"stream": "on", "checkpoint_seconds": 0.0})
    with pytest.raises(RuntimeError, match="training failed"):
        tracks.get("advanced").fit_predict_fold(fold, params)
    assert not list(tmp_path.glob("kit-stream-*"))


def test_stream_is_refused_by_a_track_that_holds_its_folds_in_memory(tmp_path):
    data = write_competition(tmp_path / "tiny")
    with pytest.raises(InputError, match="Track 'baseline' cannot stream"):
        api.baseline(data, stream=True, out=tmp_path / "run", log=quiet)
    assert not (tmp_path / "run").exists()


def test_a_fold_whose_mapped_rows_would_not_fit_in_memory_streams_though_its_table_would():
    """Bins and one-hots make a mapped row many times wider than the row as read: the fold's
    tensors, not its table, are what would exhaust the memory."""
    from kit.tracks.advanced import DEFAULTS, streams

    frame = pl.DataFrame({"x": np.zeros(100_000)})  # 0.76 MiB as read
    params = {**DEFAULTS, "stream_above_mib": 8.0}
    assert not streams(params, frame, mapped_row_bytes=8)  # 0.76 MiB mapped
    assert streams(params, frame, mapped_row_bytes=4 * 200)  # 76 MiB: 200 bins and one-hots a row
    assert not streams({**params, "stream": "off"}, frame, mapped_row_bytes=4 * 200)


def test_the_track_streams_a_fold_by_the_width_of_its_mapped_rows(tmp_path, fast_config):
    data = write_competition(tmp_path / "wide", n=2000)
    table_mib = pl.read_csv(data / "train.csv").estimated_size("mb")
    config = tmp_path / "wide.toml"
    # above the fold as read (half the table), below it mapped to 64 bins per numeric column
    config.write_text(fast_config.read_text() + f"n_bins = 64\nstream_above_mib = {table_mib}\n")
    lines = []
    api.advanced(data, folds=2, config=config, out=tmp_path / "run", progress=False, log=lines.append)
    assert sum("streaming" in line for line in lines) == 2
