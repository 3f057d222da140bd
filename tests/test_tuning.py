"""Optuna tuning studies: outputs a track accepts, the time budget, resume after SIGKILL, and
parallel workers on a journal file and on PostgreSQL (search spaces and pruning: test_tuning_space.py)."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import polars as pl
import pytest
import tomllib
from conftest import write_competition
from optuna.trial import TrialState

import kit
from kit import cli, tracks, tuning
from kit.errors import InputError

# small and quick: a few epochs of small networks on 2 folds of 240 rows
SETTINGS = """
split = "holdout"
[baseline]
epochs = 4
patience = 2
[search.baseline]
units = { choices = [[16], [32, 16]] }
batch_size = { choices = [32, 64] }
"""
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def competition(tmp_path_factory) -> tuple[Path, Path]:
    root = write_competition(tmp_path_factory.mktemp("tune") / "tiny")
    config = root.parent / "settings.toml"
    config.write_text(SETTINGS)
    return root, config


def _load(storage: str | Path, name: str = "tiny-baseline") -> optuna.Study:
    storage = tuning.open_storage(storage)
    return optuna.load_study(study_name=name, storage=storage)


# ---------------------------------------------------------------------------------------------
# a study in this process: outputs, the time budget, resume, best.toml accepted by the track


@pytest.fixture(scope="module")
def tuned(competition, tmp_path_factory):
    """Three calls on one study: a budget too short for a trial, 3 trials in worker processes,
    then a 15 s budget."""
    root, config = competition
    out = tmp_path_factory.mktemp("tuned") / "study"
    lines = []
    # this one in the test's process, where it starts at once (a worker process takes seconds)
    comp, cfg = kit.load(root, config=config)
    stopped = tuning.tune(
        comp,
        cfg,
        "baseline",
        time_budget=2.0,
        out=out,
        log=lines.append,
        processes=False,
    )
    after_stop = stopped.study.get_trials(deepcopy=True)
    # a worker whose memory grew at all hands over to a fresh one: two workers for three trials
    counted = tuning.tune(comp, cfg, "baseline", n_trials=3, out=out, log=lines.append, recycle_mib=0)
    after_count = counted.study.get_trials(deepcopy=True)
    budget = 15.0
    started = time.monotonic()
    last = kit.tune(root, config=config, time_budget=budget, out=out, log=lines.append)
    return {
        "root": root,
        "out": out,
        "after_stop": after_stop,
        "after_count": after_count,
        "result": last,
        "budget": budget,
        "seconds": time.monotonic() - started,
        "lines": lines,
    }


def test_the_first_trial_runs_the_tracks_own_parameters_where_the_space_holds_them(tuned):
    first = tuned["after_stop"][0].params
    defaults = tracks.get("baseline").defaults
    for name in (
        "learning_rate",
        "dropout",
        "weight_decay",
        "scaling",
        "numeric_embedding",
        "label_smoothing",
    ):
        assert first[name] == defaults[name]
    # the test's space has no room for the default shape and batch size: those are drawn
    assert first["units"] in ("16", "32,16") and first["batch_size"] in (32, 64)


def test_a_trial_stopped_by_the_budget_is_run_again_by_the_next_call(tuned):
    first, queued = tuned["after_stop"]
    assert first.state == TrialState.FAIL and queued.state == TrialState.WAITING
    assert any(line.startswith("trial 0 stopped: the time budget ran out") for line in tuned["lines"])
    retried = tuned["after_count"][1]
    assert retried.system_attrs["failed_trial"] == 0 and retried.params == first.params
    assert retried.state in (TrialState.COMPLETE, TrialState.PRUNED)
    # trials=3 counts finished trials: the failed one does not count
    finished = [t for t in tuned["after_count"] if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 3


def test_a_worker_process_whose_memory_grew_hands_over_to_a_fresh_one(tuned):
    assert any("a fresh worker process goes on" in line for line in tuned["lines"])
    first, second, third = tuned["after_count"][1:]
    # trials run outside the test's process, and the third in another worker than the first two
    assert first.user_attrs["pid"] == second.user_attrs["pid"] != third.user_attrs["pid"]
    assert os.getpid() not in (first.user_attrs["pid"], third.user_attrs["pid"])


def test_time_budget_is_respected_within_ten_percent(tuned):
    budget, seconds = tuned["budget"], tuned["seconds"]
    assert seconds <= 1.1 * budget, "\n".join(tuned["lines"])
    # and used: it stops early only when one more trial (as long as the longest so far, plus the
    # start of a worker process where it needs a new one) would not fit
    study = tuned["result"].study
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    longest = max(t.duration.total_seconds() for t in complete)
    assert seconds + longest + study.user_attrs["worker_start_seconds"] >= 0.9 * budget
    # earlier calls' trials are kept
    trials = tuned["result"].study.get_trials(deepcopy=False)
    assert [(t.number, t.value) for t in trials[:4]] == [(t.number, t.value) for t in tuned["after_count"]]


def test_outputs_csv_plots_best_run_and_summary(tuned):
    out, result = tuned["out"], tuned["result"]
    trials = pl.read_csv(out / "trials.csv")
    assert trials.height == len(result.study.trials)
    assert {"number", "state", "value", "seconds", "param_learning_rate", "param_units"} <= set(
        trials.columns
    )
    # each finished trial says how much memory its worker held after it and at its peak
    finished = trials.filter(pl.col("state").is_in(["complete", "pruned"]))
    assert finished.height >= 1
    assert (finished["rss_mib"] > 0).all() and (finished["peak_rss_mib"] >= finished["rss_mib"]).all()
    for name in ("history.png", "importances.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.best_run == out / "best"
    assert kit.validate(out / "best" / "submission.csv", tuned["root"]).height > 0
    best = result.study.best_trial
    assert result.best_trial == best.number and result.best_score == best.value
    # only the best trial's run folder is kept
    assert [p.name for p in (out / "trials").iterdir()] == [f"{best.number:04d}"]


def test_best_toml_is_accepted_by_the_track_and_reproduces_the_best_score(tuned, tmp_path):
    result = tuned["result"]
    text = result.best_config.read_text()
    params = tomllib.loads(text)["baseline"]
    assert params["learning_rate"] == result.study.best_params["learning_rate"]
    assert isinstance(params["units"], list)
    code = cli.main(
        ["baseline", str(tuned["root"]), "--config", str(result.best_config), "--out", str(tmp_path / "run")]
    )
    assert code == 0
    rerun = pl.read_parquet(tmp_path / "run" / "oof.parquet")
    best = pl.read_parquet(result.best_run / "oof.parquet")
    assert rerun.equals(best)


def test_advanced_track_tunes_through_its_custom_loop_and_accepts_best_toml(competition, tmp_path):
    from kit.run import cross_validate

    root, _ = competition
    config = tmp_path / "advanced.toml"
    config.write_text(
        'split = "holdout"\n[advanced]\nepochs = 4\npatience = 2\n'
        "[search.advanced]\nunits = { choices = [[16], [32, 16]] }\nbatch_size = { choices = [32, 64] }\n"
    )
    result = kit.tune(root, track="advanced", config=config, trials=2, out=tmp_path / "study", log=print)
    trials = result.study.get_trials(deepcopy=False)
    # the custom loop fed the pruner every epoch
    assert all(len(t.intermediate_values) >= 1 for t in trials)
    assert set(tracks.get("advanced").search_space) - {"units", "batch_size"} <= set(trials[0].params)
    # best.toml loads as `kit advanced --config` loads it, and reruns the best trial exactly
    comp, cfg = kit.load(root, config=result.best_config)
    assert cfg.params("advanced")["n_bins"] == result.best_params["n_bins"]
    rerun = cross_validate(comp, cfg, "advanced", out=tmp_path / "run", log=print)
    assert rerun.score == result.best_score


def test_progress_bar_counts_the_trials_of_worker_processes(competition, tmp_path, capsys):
    root, config = competition
    kit.tune(root, config=config, trials=2, out=tmp_path / "study", progress=True)
    out, err = capsys.readouterr()
    # the bar (on stderr) ends at 2 of 2 trials; the trial lines still go to stdout
    assert re.search(r"tiny baseline: 100%.*\b2/2 ", err.replace("\r", "\n").splitlines()[-1]), err
    assert "trial 0 complete" in out


# ---------------------------------------------------------------------------------------------
# worker processes: SIGKILL and resume, two workers on one journal file or one PostgreSQL study


def _command(root: Path, config: Path, out: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kit.cli",
        "tune",
        str(root),
        "--config",
        str(config),
        "--out",
        str(out),
        *flags,
    ]


def _finished(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_sigkill_mid_trial_then_rerun_keeps_finished_trials_and_retries_the_interrupted_one(
    competition, tmp_path
):
    root, _ = competition
    # trials of several seconds (150 epochs, no early stop), so that the kill lands inside one
    config = tmp_path / "slow.toml"
    config.write_text(SETTINGS.replace("epochs = 4\npatience = 2", "epochs = 150\npatience = 150"))
    out = tmp_path / "study"
    command = _command(root, config, out, "--trials", "2")
    worker = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        killed = None
        while time.monotonic() < deadline and killed is None:
            time.sleep(0.2)
            if not (out / "study.journal").is_file():
                continue
            study = _load(out / "study.journal")
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            # mid-trial: at least one epoch reported, after one trial finished
            if _finished(study) and running and running[0].intermediate_values:
                worker.send_signal(signal.SIGKILL)
                killed = running[0]
        assert killed is not None, "the worker never got to a second trial"
    finally:
        worker.kill()
        worker.wait()
    before = {t.number: t.value for t in _finished(_load(out / "study.journal"))}

    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"trial {killed.number} was interrupted" in rerun.stdout
    assert "0 failed, 1 stopped and run again" in rerun.stdout  # not counted as a failure
    study = _load(out / "study.journal")
    trials = study.get_trials(deepcopy=False)
    assert {t.number: t.value for t in trials if t.number in before} == before
    assert trials[killed.number].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params
    assert retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert len(_finished(study)) == 2
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    table = pl.read_csv(out / "trials.csv")  # the retried trial's number as a number, not "2.0"
    assert table["retry_of"].dtype == pl.Int64 and killed.number in table["retry_of"].to_list()
    # the table, the summary and the page call it stopped, as the command line did, not failed
    assert table.filter(pl.col("number") == killed.number)["state"].to_list() == ["stopped"]
    assert "fail" not in table["state"].to_list()
    counts = json.loads((out / "summary.json").read_text())["trials"]
    assert (counts["fail"], counts["stopped"]) == (0, 1)
    assert "0 failed, 1 stopped and run again" in (out / "report.html").read_text()


def _two_workers(root: Path, config: Path, out: Path, *flags: str, n_trials: int, storage: str | Path):
    """Run two `kit tune` processes on one study; check that no trial was lost or run twice."""
    command = _command(root, config, out, "--trials", str(n_trials), *flags)
    workers = [
        subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, log in zip(workers, logs, strict=True):
        assert worker.returncode == 0, log
    ran = [{int(n) for n in re.findall(r"^trial (\d+) (?:complete|pruned)", log, re.M)} for log in logs]
    study = _load(storage)
    finished = {t.number for t in _finished(study)}
    assert ran[0] and ran[1], logs  # both workers took part
    assert not ran[0] & ran[1]  # no trial ran twice
    assert ran[0] | ran[1] == finished  # and none was lost
    # both stop at the target; a race in the last moment may add one trial, never more
    assert n_trials <= len(finished) <= n_trials + 1
    assert not study.get_trials(
        deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL)
    )
    draws = [t.params["learning_rate"] for t in _finished(study)]
    assert len(set(draws)) == len(draws)


def test_two_workers_share_one_journal_file(competition, tmp_path):
    root, config = competition
    out = tmp_path / "study"
    _two_workers(root, config, out, n_trials=3, storage=out / "study.journal")


# ---------------------------------------------------------------------------------------------
# PostgreSQL on loopback (installed by .ci/run from the system packages)


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg", reason="psycopg is not installed (requirements.txt has psycopg[binary])")
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(
            "PostgreSQL is not installed (no initdb); .ci/run installs it with apt-get install postgresql"
        )
    # the server refuses to run as root; the Debian package's 'postgres' user runs it then
    as_user = []
    if os.geteuid() == 0:
        try:
            import pwd

            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="kit-pg-"))
    if as_user:
        os.chown(home, account.pw_uid, account.pw_gid)
    data = home / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = "kit" if as_user else getpass.getuser()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", user, "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", b"") or b""
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {err} {detail.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(competition, tmp_path, postgres_url):
    root, config = competition
    _two_workers(
        root,
        config,
        tmp_path / "study",
        "--storage",
        postgres_url,
        n_trials=3,
        storage=postgres_url,
    )


# ---------------------------------------------------------------------------------------------
# the command on bad input


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--time-budget", "-5"], "--time-budget must be a positive"),
        (["--time-budget", "nan"], "--time-budget must be a positive"),
        (["--time-budget", "inf"], "--time-budget must be a positive"),
        (["--track", "fancy"], "Unknown track 'fancy'"),
        (["--pruner", "sometimes"], "Unknown pruner"),
        # nothing listens on port 1; without the driver the message says what to install instead
        (["--storage", "postgresql://nobody@127.0.0.1:1/x"], "Received: storage=postgresql://"),
    ],
)
def test_bad_tune_flags_exit_2_with_one_line(competition, tmp_path, capsys, flags, match):
    root, config = competition
    code = cli.main(["tune", str(root), "--config", str(config), "--out", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_tune_refuses_a_folder_of_the_users_with_a_tuning_folders_file_names(competition, tmp_path, capsys):
    root, config = competition
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in {
        "summary.json": '{"my": "summary"}',
        "trials.csv": "my,trials\n",
        "best.toml": "x = 1\n",
    }.items():
        (mine / name).write_text(text)
    before = {p.name: p.read_text() for p in mine.iterdir()}
    code = cli.main(["tune", str(root), "--config", str(config), "--out", str(mine), "--trials", "1"])
    err = capsys.readouterr().err
    assert (
        code == 2 and "is a folder with files kit did not write" in err and len(err.strip().splitlines()) == 1
    )
    assert {p.name: p.read_text() for p in mine.iterdir()} == before
    (mine / "manifest.json").write_text('{"written_by": "kit"}')  # a run folder of kit's
    code = cli.main(["tune", str(root), "--config", str(config), "--out", str(mine), "--trials", "1"])
    assert code == 2 and "is a run folder kit wrote, not a tuning folder" in capsys.readouterr().err


def test_a_study_goes_on_only_under_the_settings_it_was_made_with(tmp_path):
    from conftest import write_competition

    root = write_competition(tmp_path / "tiny", n=120)
    out = tmp_path / "study"
    kit.tune(
        root, track="trees", trials=1, metric="accuracy", folds=3, out=out, log=lambda _: None, progress=False
    )
    # f1 also maximizes, so only the recorded settings tell the trials' scores apart
    with pytest.raises(InputError, match=r"made with metric='accuracy'.*--study with a new name"):
        kit.tune(
            root, track="trees", trials=2, metric="f1", folds=3, out=out, log=lambda _: None, progress=False
        )
    # another track's study in the same folder would replace this one's best.toml and best/
    with pytest.raises(
        InputError, match=r"holds the trees study of tiny, whose best.toml, best/ and trials.csv"
    ):
        kit.tune(root, track="linear", trials=1, metric="accuracy", folds=3, out=out, log=lambda _: None)
    assert "[trees]" in (out / "best.toml").read_text()
    # a parameter no trial searches, changed by --config: best.toml would write it for trials run without it
    other = tmp_path / "other.toml"
    other.write_text("[trees]\nn_iter_no_change = 10\n")
    with pytest.raises(
        InputError, match=r"made with \[trees\] n_iter_no_change=50.*Received: \[trees\] n_iter_no_change=10"
    ):
        kit.tune(
            root, track="trees", trials=2, metric="accuracy", folds=3, out=out, config=other, log=lambda _: None,
            progress=False,
        )  # fmt: skip
    again = kit.tune(
        root, track="trees", trials=2, metric="accuracy", folds=3, out=out, log=lambda _: None, progress=False
    )
    assert again.n_complete == 2
    # one study named for two tracks: the second would read the first's trials as its own
    shared = dict(
        storage=tmp_path / "shared.journal", study="s1", folds=3, log=lambda _: None, progress=False
    )
    kit.tune(root, track="trees", trials=1, out=tmp_path / "trees", **shared)
    with pytest.raises(InputError, match=r"made with track='trees'.*Received: track='linear'"):
        kit.tune(root, track="linear", trials=1, out=tmp_path / "linear", **shared)


SCRIPT = """
import kit
with open({marks!r}, "a") as f:
    f.write("ran\\n")  # what a script does before it tunes: run once
kit.tune({data!r}, track="trees", trials=1, folds=2, out={out!r}, progress=False)
"""


def test_a_script_without_a_main_guard_runs_once_while_a_worker_process_tunes(competition, tmp_path):
    data, _ = competition
    marks, out = tmp_path / "marks.txt", tmp_path / "tuning"
    script = tmp_path / "tune_it.py"
    script.write_text(SCRIPT.format(marks=str(marks), data=str(data), out=str(out)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert marks.read_text() == "ran\n"
    assert "no worker process could start" not in result.stdout + result.stderr  # trials ran in a worker
    assert len(pl.read_csv(out / "trials.csv")) == 1


def test_a_forecasts_best_run_predicts_the_test_with_the_refit_on_all_rows(tmp_path, monkeypatch):
    """A trial needs only its score, so a forecast's trial predicts the test with its folds' models;
    best/, the submission a user sends, is run again with the refit a plain run of the track makes."""
    import json

    import numpy as np
    from conftest import write_frame

    rng = np.random.default_rng(0)
    days = pl.date_range(pl.date(2023, 1, 1), pl.date(2023, 1, 1) + pl.duration(days=199), eager=True)
    x = rng.normal(size=200)
    frame = pl.DataFrame({"id": range(200), "date": days, "x": x})
    root = write_frame(tmp_path / "forecast", frame, 2 * x + rng.normal(scale=0.1, size=200), 150)
    # Ctrl-C during the run again: best/ is not made, nor left half-made
    run_again = tuning.workers.Plan.cross_validate

    def interrupted(self, params, *, out, callbacks=None, refit=True):
        if refit:
            raise KeyboardInterrupt
        return run_again(self, params, out=out, callbacks=callbacks, refit=refit)

    monkeypatch.setattr(tuning.workers.Plan, "cross_validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kit.tune(root, track="linear", trials=1, time="date", out=tmp_path / "study", log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "study").iterdir() if "best" in p.name) == ["best.toml"]
    monkeypatch.undo()
    lines = []  # the same command again: the trial is done, best/ is made
    result = kit.tune(root, track="linear", trials=1, time="date", out=tmp_path / "study", log=lines.append)
    trial = json.loads((tmp_path / "study" / "trials" / "0000" / "metrics.json").read_text())
    best = json.loads((result.best_run / "metrics.json").read_text())
    assert trial["split"] == best["split"] == "time" and "no refit" in trial["test_from"]
    assert best["test_from"].startswith("a refit on all 150 training rows")
    assert best["score"] == trial["score"]  # the same folds and parameters
    assert any("again with the refit" in line for line in lines)


def test_ctrl_c_that_another_thread_receives_stops_the_wait_for_a_trial_at_once():
    """A terminal's SIGINT goes to any thread of the process (TensorFlow's, the pool's); the main
    thread, waiting for the worker's trial, must raise it then, not when the trial ends."""
    import signal
    import threading
    from concurrent.futures import Future

    from kit.tuning.workers import _result

    trial = Future()
    threading.Timer(0.3, signal.raise_signal, args=(signal.SIGINT,)).start()  # raised in the timer's thread
    threading.Timer(4.0, trial.set_result, args=("done",)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _result(trial)
    assert time.monotonic() - started < 2.0
