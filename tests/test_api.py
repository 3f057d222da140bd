"""The Python API: verbs and keywords named like the CLI, the run object, and progress bars."""

from __future__ import annotations

import inspect
import io
import json
import typing

import keras
import numpy as np
import polars as pl
import pytest
from conftest import write_competition

import kit
from kit import api, kaggle, metrics
from kit.cli import build_parser
from kit.errors import InputError
from kit.progress import FoldProgress
from kit.run import cross_validate


def subcommands() -> dict:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return action.choices


def keywords(verb) -> set[str]:
    """A verb's keywords: its own, and those of the settings it unpacks (`**settings: Unpack[...]`)."""
    names = set(inspect.signature(verb).parameters)
    hints = typing.get_type_hints(getattr(verb, "__wrapped__", verb))
    if "settings" in hints:
        names |= set(typing.get_args(hints["settings"])[0].__annotations__)
    return names


# `kit run FILE` is `kit.run_track(FILE)`: `kit.run` is the module of the driver
API_NAME = {"run": "run_track"}


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_api_keywords_mirror_cli_flags(command):
    verb = getattr(api, API_NAME.get(command, command), None)
    assert verb is not None, f"`kit {command}` has no kit.api.{API_NAME.get(command, command)}"
    params = keywords(verb)
    flags = [a.dest for a in subcommands()[command]._actions if a.dest != "help"]
    missing = [f for f in flags if f not in params]
    assert not missing, f"kit.{command} lacks keyword(s) for the CLI flags {missing}"


def test_public_verbs_exported():
    for command in subcommands():
        name = API_NAME.get(command, command)
        assert getattr(kit, name) is getattr(api, name)


def test_every_registered_track_is_a_command_and_a_verb():
    from kit import tracks

    assert {"baseline", "advanced"} <= set(tracks.names())
    for name in tracks.names():
        assert name in subcommands() and callable(getattr(kit, name))
        assert tracks.get(name).description.lower() in getattr(kit, name).__doc__.lower()


@pytest.fixture
def off_kaggle(tmp_path, monkeypatch):
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-kaggle-input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "no-kaggle-working"))


def test_baseline_returns_a_run_with_scores_predictions_and_paths(tmp_path, off_kaggle):
    data = write_competition(tmp_path / "tiny")
    fast = tmp_path / "fast.toml"
    fast.write_text("[baseline]\nepochs = 3\npatience = 2\n")
    run = kit.baseline(
        data,
        config=fast,
        folds=2,
        seed=3,
        metric="roc_auc",
        out=tmp_path / "run",
        progress=False,
        log=lambda _: None,
    )

    assert run.run_dir == tmp_path / "run"
    assert run.submission_path == run.run_dir / "submission.csv"
    saved = json.loads((run.run_dir / "metrics.json").read_text())
    assert run.metric == "roc_auc" == saved["metric"]
    assert run.score == saved["score"] and run.fold_scores == saved["fold_scores"]
    assert len(run.fold_scores) == 2
    config = (run.run_dir / "config.toml").read_text()
    assert "seed = 3" in config and "folds = 2" in config

    train = pl.read_csv(data / "train.csv")
    assert isinstance(run.oof, pl.DataFrame)
    assert run.oof["row_id"].to_list() == train["row_id"].to_list()
    assert set(run.oof["fold"]) == {0, 1}
    # the CV score is the metric on the out-of-fold predictions the run hands back
    y = (train["label"] == "yes").cast(pl.Int32).to_numpy()
    proba = run.oof.select("proba_no", "proba_yes").to_numpy()
    assert metrics.get("roc_auc")(y, proba) == pytest.approx(run.score)

    test = pl.read_csv(data / "test.csv")
    assert isinstance(run.test_predictions, pl.DataFrame)
    assert run.test_predictions["row_id"].to_list() == test["row_id"].to_list()
    # the submission is the test predictions' most likely class, spelled as in train
    submission = kit.validate(run.submission_path, data)
    best = np.where(run.test_predictions["proba_yes"].to_numpy() > 0.5, "yes", "no")
    assert submission["label"].to_list() == best.tolist()


def fake_loop(fold, params):
    """A custom training loop: calls the fold's callbacks after each epoch, as every track must."""
    fold.seen = len(fold.callbacks)
    for epoch in range(params["epochs"]):
        for cb in fold.callbacks:
            cb.on_epoch_end(epoch, {"val_score": 0.5 + epoch / 100})
    prior = np.bincount(fold.y_train, minlength=fold.n_classes) / len(fold.y_train)
    return np.tile(prior, (len(fold.y_val), 1)), np.tile(prior, (fold.test.height, 1))


@pytest.mark.parametrize("progress", [True, False])
def test_cross_validate_draws_fold_and_epoch_bars(tmp_path, off_kaggle, capsys, progress):
    comp, cfg = api.load(write_competition(tmp_path / "tiny"), folds=2)
    seen = []

    def fit(fold, params):
        out = fake_loop(fold, params)
        seen.append(fold.seen)
        return out

    cross_validate(comp, cfg, fit, params={"epochs": 4}, out=tmp_path / "run", progress=progress)
    err = capsys.readouterr().err
    if progress:
        assert seen == [1, 1]  # the epoch bar rides in the fold's callbacks
        assert "tiny fit" in err and "2/2" in err and "fold 2/2" in err and "epoch" in err
    else:
        assert seen == [0, 0] and "fold" not in err


def test_epoch_bar_follows_keras_fit():
    stream = io.StringIO()
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with FoldProgress(2, epochs=3, desc="toy", disable=False, file=stream) as progress:
        callbacks = progress.start_fold(0)
        model.fit(x, x[:, 0], epochs=3, verbose=0, callbacks=callbacks)
        assert progress.epoch_bar.n == 3
        progress.end_fold(0.25)
        assert progress.folds.n == 1 and progress.epoch_bar is None
    assert "toy" in stream.getvalue() and "0.25000" in stream.getvalue()


def test_hidden_bars_add_no_callbacks():
    with FoldProgress(3, epochs=5, disable=True) as progress:
        assert progress.start_fold(0) == []
        assert progress.wrap_log(print) is print


def test_verbs_survive_importing_every_module():
    """A module named like a verb (kit/blend.py) would replace kit.blend once imported."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(kit.__path__, "kit."):
        if not module.name.startswith("kit._vendor"):
            importlib.import_module(module.name)
    for command in subcommands():
        name = API_NAME.get(command, command)
        assert callable(getattr(kit, name)), f"kit.{name} is no longer the API verb"


def test_a_script_that_imports_kit_imports_tensorflow_without_its_start_up_lines():
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "KIT_QUIET_TF", "KIT_TF_LOGS")
    }
    # tensorflow-datasets looks TensorFlow up (find_spec) before it imports it
    script = (
        "import kit, importlib.util, sys; importlib.util.find_spec('tensorflow'); import tensorflow; "
        "print('ok'); print('mine', file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout == "ok\n"
    assert result.stderr == "mine\n"  # the script's own line, and none of TensorFlow's oneDNN or CUDA lines


def test_tensorflow_retracing_warnings_stay_off_the_terminal_and_its_other_warnings_pass():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("KIT_QUIET_TF", "KIT_TF_LOGS")}
    # each fold's new model traces its functions anew: TensorFlow warns as for a function made in a loop
    script = (
        "import kit, tensorflow as tf\n"
        "for i in range(8):\n"
        "    tf.function(lambda x: x + 1)(tf.constant(float(i)))\n"
        "tf.get_logger().warning('mine')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "retracing" not in result.stderr
    assert result.stderr.strip().splitlines() == ["WARNING:tensorflow:mine"]


def test_a_tune_results_paths_are_absolute_so_they_outlast_a_change_of_folder(tmp_path, monkeypatch):
    from pathlib import Path

    from kit.tuning.outputs import TuneResult

    monkeypatch.chdir(tmp_path)
    result = TuneResult(
        study=None, track="trees", metric="accuracy", best_score=0.8, best_trial=0, best_params={},
        n_complete=1, n_pruned=0, n_failed=0, out=Path("tune"), best_config=Path("tune/best.toml"),
        best_run=Path("tune/best"), seconds=1.0,
    )  # fmt: skip
    assert result.out == tmp_path / "tune"
    assert result.best_config == tmp_path / "tune" / "best.toml"
    assert result.best_run == tmp_path / "tune" / "best"


@pytest.mark.parametrize(
    "call, argument, received",
    [
        (lambda d: kit.trees(5), "data", "5 (int)"),
        (lambda d: kit.validate(pl.DataFrame({"row_id": ["1"]}), d), "submission", "a polars.DataFrame"),
        (lambda d: kit.trees(d, config={"folds": 2}), "config", "{'folds': 2} (dict)"),
        (lambda d: kit.auto(d, time_budget="300"), "time_budget", "'300' (str)"),
        (lambda d: kit.trees(d, folds=2, log="quiet"), "log", "'quiet' (str)"),
        (lambda d: kit.trees(d, folds=2, progress="no"), "progress", "'no' (str)"),
        (lambda d: kit.tune(d, trials="5"), "trials", "'5' (str)"),
        (lambda d: kit.blend(kit), "runs", "a module"),
        (lambda d: kit.report(3), "run", "3 (int)"),
    ],
    ids=["data", "submission", "config", "time_budget", "log", "progress", "trials", "runs", "run"],
)
def test_an_argument_of_a_wrong_type_is_refused_in_one_line_naming_it(
    tmp_path, off_kaggle, monkeypatch, call, argument, received
):
    data = write_competition(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as refused:
        call(data)
    message = str(refused.value)
    assert message.startswith(f"{argument} takes ") and message.endswith(f"Received: {argument}={received}")
    assert "\n" not in message
    assert not (tmp_path / "submissions").exists()  # refused before any work
    if argument == "config":
        assert "params" in message


def test_inspect_and_validate_refuse_a_runs_settings_naming_them(tmp_path, off_kaggle):
    data = write_competition(tmp_path / "tiny")
    with pytest.raises(TypeError, match="kit.inspect does not take folds: folds, split, seed and seeds"):
        kit.inspect(data, folds=3)
    with pytest.raises(TypeError, match="kit.inspect does not take foo. Use: config, target"):
        kit.inspect(data, foo=1)
    with pytest.raises(TypeError, match="kit.validate does not take seed"):
        kit.validate(data / "sample_submission.csv", data, seed=1)


def test_leaderboard_refuses_a_root_it_cannot_list_as_the_command_does(tmp_path):
    with pytest.raises(InputError, match=r"root takes a folder's path .*Received: root=5"):
        kit.leaderboard(5)
    (tmp_path / "train.csv").write_text("a\n1\n")
    with pytest.raises(InputError, match="is a file: pass the folder of the runs"):
        kit.leaderboard(tmp_path / "train.csv")
    assert kit.leaderboard(tmp_path / "not-yet").is_empty()  # a folder not made yet has no runs yet


def test_load_names_the_settings_it_takes_and_not_a_tracks_keywords_as_its_own(tmp_path):
    with pytest.raises(
        TypeError, match=r"Unknown setting\(s\) \['out'\]\. Settings are: config, .*also takes out"
    ):
        kit.load(write_competition(tmp_path / "tiny"), out="x")
