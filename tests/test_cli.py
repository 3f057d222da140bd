"""The `kit` command on bad input: exit code 2, one line on stderr naming the file or column, and
nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import write_competition

from kit import cli


def _missing_folder(root: Path) -> Path:
    return root.parent / "no-such-competition"


def _missing_test(root: Path) -> Path:
    (root / "test.csv").unlink()
    return root


def _empty_train(root: Path) -> Path:
    (root / "train.csv").write_bytes(b"")
    return root


def _binary_train(root: Path) -> Path:
    (root / "train.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00not a table")
    return root


def _ragged_train(root: Path) -> Path:
    lines = (root / "train.csv").read_text().splitlines()
    lines[7] += ",1,2,3"
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def _broken_parquet_test(root: Path) -> Path:
    (root / "test.csv").unlink()
    (root / "test.parquet").write_bytes(b"PAR1 cut short")
    return root


def _no_target(root: Path) -> Path:
    (root / "sample_submission.csv").unlink()
    train = pl.read_csv(root / "train.csv")
    train.with_columns((pl.col("x2") + 1).alias("other")).write_csv(root / "train.csv")
    return root


def _text_in_test(root: Path) -> Path:
    # in half the test rows: too many for a placeholder of missing values, which is read as one
    test = pl.read_csv(root / "test.csv").with_columns(pl.col("x2").cast(pl.String))
    test.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 1).then(pl.lit("?")).otherwise(pl.col("x2")).alias("x2")
    ).write_csv(root / "test.csv")
    return root


def _constant_target(root: Path) -> Path:
    pl.read_csv(root / "train.csv").with_columns(pl.lit("yes").alias("label")).write_csv(root / "train.csv")
    return root


def _duplicate_train_ids(root: Path) -> Path:
    train = pl.read_csv(root / "train.csv")
    train.with_columns(
        pl.when(pl.int_range(pl.len()) == 9).then(pl.lit(1000)).otherwise(pl.col("row_id")).alias("row_id")
    ).write_csv(root / "train.csv")
    return root


def _duplicate_test_ids(root: Path) -> Path:
    test = pl.read_csv(root / "test.csv")
    pl.concat([test, test.head(1)]).write_csv(root / "test.csv")
    sample = pl.read_csv(root / "sample_submission.csv")
    pl.concat([sample, sample.head(1)]).write_csv(root / "sample_submission.csv")
    return root


def _empty_test(root: Path) -> Path:
    pl.read_csv(root / "test.csv").head(0).write_csv(root / "test.csv")
    return root


def _zero_byte_test(root: Path) -> Path:
    (root / "test.csv").write_bytes(b"")
    return root


# (how to break the folder, extra flags, what stderr must mention)
BAD_INPUT = {
    "missing_folder": (_missing_folder, [], ["no-such-competition", "does not exist"]),
    "missing_test_file": (_missing_test, [], ["No test file", "test.csv"]),
    "empty_train_file": (_empty_train, [], ["train.csv", "is empty"]),
    "unparseable_train_file": (_binary_train, [], ["train.csv", "could not be parsed"]),
    "ragged_train_file": (_ragged_train, [], ["train.csv", "could not be parsed"]),
    "unparseable_parquet": (_broken_parquet_test, [], ["test.parquet", "could not be parsed"]),
    "no_target": (_no_target, [], ["No target found", "train.csv", "--target"]),
    "numeric_in_train_text_in_test": (_text_in_test, [], ["'x2'", "test.csv", "--na '?'"]),
    "constant_target": (_constant_target, [], ["Target 'label'", "train.csv", "single value", "--target"]),
    "duplicate_train_ids": (_duplicate_train_ids, [], ["'row_id'", "train.csv", "duplicate ids", "1000"]),
    "duplicate_test_ids": (_duplicate_test_ids, [], ["'row_id'", "test.csv", "duplicate ids"]),
    "empty_test_file": (_empty_test, [], ["test.csv", "no rows"]),
    "zero_byte_test_file": (_zero_byte_test, [], ["test.csv", "is empty"]),
    "unknown_metric": (
        lambda r: r,
        ["--metric", "acuracy"],
        ["Unknown metric 'acuracy'", "--metric", "roc_auc"],
    ),
    "metric_for_another_task": (lambda r: r, ["--metric", "rmse"], ["'rmse'", "binary"]),
    "unknown_target": (lambda r: r, ["--target", "nope"], ["Target 'nope'", "train.csv"]),
    "unknown_group": (lambda r: r, ["--group", "nope"], ["'nope'", "train.csv"]),
    "unknown_split": (lambda r: r, ["--split", "random"], ["Unknown split 'random'", "--split"]),
    "one_fold": (lambda r: r, ["--folds", "1"], ["--folds must be at least 2"]),
    # fewer groups than folds is no longer an error: the run uses one fold per group, with a note
    # (tests/test_input_contract.py); a single group leaves nothing to validate on
    "a_single_group": (lambda r: r, ["--group", "constant"], ["single group", "--group"]),
    "missing_config": (lambda r: r, ["--config", "nope.toml"], ["nope.toml", "does not exist"]),
}


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kit: error: ")
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    break_it, flags, expected = BAD_INPUT[case]
    data = break_it(write_competition(tmp_path / "comp"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["baseline", str(data), "--out", str(out), *flags]) == 2
    line = _one_error_line(capsys.readouterr().err)
    for text in expected:
        assert text in line
    assert not out.exists()
    assert not (tmp_path / "submissions").exists()
    assert not list(tmp_path.glob(".run*")), "no staging folder left behind"


@pytest.mark.parametrize("case", ["constant_target", "numeric_in_train_text_in_test", "missing_test_file"])
def test_inspect_reports_bad_input_the_same_way(case, tmp_path, capsys):
    break_it, flags, expected = BAD_INPUT[case]
    data = break_it(write_competition(tmp_path / "comp"))
    assert cli.main(["inspect", str(data), *flags]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert all(text in line for text in expected)


def _run_kit(*args, cwd):
    kit = Path(sys.executable).with_name("kit")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([str(kit), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_the_installed_command_prints_one_line(tmp_path):
    data = _constant_target(write_competition(tmp_path / "comp"))
    done = _run_kit("inspect", str(data), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    line = _one_error_line(done.stderr)
    assert "'label'" in line and "train.csv" in line


def test_kit_baseline_on_bad_data_prints_one_line(tmp_path):
    data = _constant_target(write_competition(tmp_path / "comp"))
    done = _run_kit("baseline", str(data), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "submissions").exists()
    line = _one_error_line(done.stderr)
    assert "'label'" in line and "train.csv" in line


def test_na_flag_fixes_text_in_a_numeric_column(tmp_path, capsys):
    data = _text_in_test(write_competition(tmp_path / "comp"))
    assert cli.main(["inspect", str(data), "--na", "?"]) == 0
    out = capsys.readouterr().out
    assert "x2" in out.split("role: numeric", 1)[1].splitlines()[0]


def test_inspect_prints_the_inferred_table(tmp_path, capsys):
    data = write_competition(tmp_path / "comp", task="multiclass")
    assert cli.main(["inspect", str(data)]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines() if " " in line)
    assert rows["target"].strip() == "label"
    assert rows["task"].strip() == "multiclass"
    assert rows["id"].strip() == "row_id"
    assert rows["metric"].strip() == "log_loss (minimize)"
    assert "proba_columns" in rows["submission"]


def test_inspect_flags_override_the_inference(tmp_path, capsys):
    data = write_competition(tmp_path / "comp")
    assert cli.main(["inspect", str(data), "--metric", "roc_auc", "--group", "color", "--time", "when"]) == 0
    out = capsys.readouterr().out
    assert "roc_auc (maximize)" in out
    assert any(line.split() == ["group", "color"] for line in out.splitlines())
    assert any(line.split() == ["time", "when"] for line in out.splitlines())


def test_leaderboard_with_no_runs(tmp_path, capsys):
    assert cli.main(["leaderboard", "--root", str(tmp_path / "none")]) == 0
    assert "no runs" in capsys.readouterr().out


def test_leaderboard_names_the_run_folders_it_leaves_out(tmp_path, capsys):
    for name, text in (("good", '{"competition": "c", "track": "trees", "metric": "accuracy", '
                                 '"direction": "maximize", "score": 0.8}'),
                       ("cut", '{"score": '), ("none", '{"competition": "c", "track": "trees", '
                        '"metric": "accuracy", "direction": "maximize", "score": null}')):  # fmt: skip
        (tmp_path / "c" / name).mkdir(parents=True)
        (tmp_path / "c" / name / "metrics.json").write_text(text)
    assert cli.main(["leaderboard", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "left out 2 run folder(s) whose metrics.json cannot be read" in out
    assert "c/cut" in out and "c/none" in out and str(tmp_path / "c" / "good") in out


def test_a_reader_who_stops_reading_does_not_stop_the_run(tmp_path):
    data = write_competition(tmp_path / "tiny", n=120)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "kit.cli", "trees", str(data), "--out", str(out), "--folds", "2"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run.stdout.readline()  # the first line, printed before any training; then go, as `| head -1` does
    run.stdout.close()
    err = run.communicate(timeout=300)[1]
    assert run.returncode == 0, err
    assert "Error" not in err and (out / "submission.csv").is_file()


def test_a_run_folder_with_a_users_file_added_is_not_replaced(tmp_path, capsys):
    data = write_competition(tmp_path / "c")
    out = tmp_path / "run"
    assert cli.main(["trees", str(data), "--folds", "2", "--out", str(out)]) == 0
    (out / "my_notes.txt").write_text("why fold 2 is worse\n")
    (out / "plots").mkdir()
    (out / "plots" / "p.txt").write_text("x\n")
    submission = (out / "submission.csv").read_bytes()
    capsys.readouterr()
    assert cli.main(["trees", str(data), "--folds", "2", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "my_notes.txt, plots" in err and len(err.strip().splitlines()) == 1
    assert (out / "my_notes.txt").read_text() == "why fold 2 is worse\n" and (
        out / "plots" / "p.txt"
    ).is_file()
    assert (out / "submission.csv").read_bytes() == submission  # the run folder as it was
    # once the user's files are moved out, the run folder is kit's to replace again
    (out / "my_notes.txt").unlink()
    (out / "plots" / "p.txt").unlink()
    (out / "plots").rmdir()
    assert cli.main(["trees", str(data), "--folds", "2", "--seed", "1", "--out", str(out)]) == 0


RECIPES = Path(__file__).resolve().parents[1] / "pipelines"


def test_the_recipe_scripts_run_and_say_bad_input_in_one_line(tmp_path):
    data = write_competition(tmp_path / "tiny", n=80)
    fast = tmp_path / "fast.toml"
    fast.write_text("folds = 2\n[baseline]\nepochs = 2\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, RECIPES / "baseline.py", data, "--config", fast, "--out", tmp_path / "run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "submission.csv").is_file()
    for recipe in ("baseline.py", "advanced.py", "tune.py"):
        done = subprocess.run(
            [sys.executable, RECIPES / recipe, tmp_path / "nope"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 2, (recipe, done.stderr)
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "'" in done.stderr, recipe
        assert "does not exist" in done.stderr and "Traceback" not in done.stderr, recipe


def test_leaderboard_with_a_root_that_is_a_file_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["leaderboard", "--root", str(tmp_path / "notes.txt")]) == 2
    assert "is a file: pass the folder of the runs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "said", "unsaid"),
    [
        ("auto", "the members that finished keep their run folders", "checkpoints"),
        ("tune", "the finished trials are kept in the study", "checkpoints"),
        ("baseline", "the unfinished run's folder was not written", "checkpoints"),
        ("advanced", "its checkpoints stay beside it", "members"),
    ],
)
def test_ctrl_c_says_what_the_interrupted_command_left(tmp_path, capsys, monkeypatch, command, said, unsaid):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, command, interrupted)
    assert cli.main([command, str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert said in err and unsaid not in err and len(err.strip().splitlines()) == 1


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """`timeout`, a scheduler or a notebook's stop sends SIGTERM: the command stops through the
    same path as Ctrl-C (its unfinished run folder removed, its message), with exit code 143."""
    script = (
        "import os, signal, sys, time\n"
        "from kit.cli import guarded, UNFINISHED_RUN\n"
        "def command():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "sys.exit(guarded(command))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == cli.UNFINISHED_RUN


def test_ctrl_c_while_kit_starts_says_one_line(capsys, monkeypatch):
    """Parsing the command line imports the tracks (scikit-learn, a second or two): Ctrl-C there
    says one line too, not an import's traceback."""

    def importing():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", importing)
    assert cli.main(["baseline"]) == 130
    assert capsys.readouterr().err.strip() == cli.NOTHING_WRITTEN


def test_the_command_line_starts_before_the_heavy_imports():
    """`kit` imports kit.cli before its guard can catch Ctrl-C: that import, and so `import kit`,
    must leave scikit-learn, polars and kit's API for later (the API loads on first use)."""
    script = (
        "import sys\n"
        "import kit.cli\n"
        "heavy = [m for m in ('sklearn', 'polars', 'tensorflow', 'kit.api') if m in sys.modules]\n"
        "import kit\n"
        "print(heavy, callable(kit.baseline), 'kit.api' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[] True True", done.stderr
