"""The input contract, on a corpus of malformed and odd competitions.

Malformed input: exit code 2, ONE line on stderr naming the file or column and the fix, no
traceback, no run folder, nothing of the user's changed, and the failure comes before training
(`kit.run._cross_validate` is never reached). Odd but valid input: a clean run whose submission
passes `kit validate`. Plus `kit validate` on submissions Kaggle would reject, `kit predict`'s
checks, and what the installed command prints, two runs into one folder and a kill while a run
folder is published.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import shared_competition, write_competition

from kit import api, cli
from kit import io as kit_io
from kit import run as run_mod
from kit.preflight import preflight
from kit.submission import make_submission, validate_file

TINY = "[baseline]\nepochs = 2\npatience = 1\n[advanced]\nepochs = 2\npatience = 1\n"
KIT = Path(sys.executable).with_name("kit")
ROOT = Path(__file__).resolve().parents[1]
LINEAR = ROOT / "pipelines" / "my_track.py"


# ---------------------------------------------------------------------------------------------
# small editors of a competition folder written by `write_competition`


def edit(root: Path, name: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    fn(pl.read_csv(root / name)).write_csv(root / name)


def set_value(column: str, row_fn, value, dtype=None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A frame editor: `column` becomes `value` where row_fn(row index expr) holds."""

    def fn(frame):
        frame = frame.with_columns(pl.col(column).cast(dtype)) if dtype is not None else frame
        lit = pl.lit(value, dtype=frame[column].dtype) if value is not None else pl.lit(None)
        return frame.with_columns(
            pl.when(row_fn(pl.int_range(pl.len()))).then(lit).otherwise(pl.col(column)).alias(column)
        )

    return fn


def lines(root: Path, name: str, fn: Callable[[list[str]], list[str]]) -> None:
    path = root / name
    path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")


def config(root: Path, text: str) -> str:
    path = root.parent / "settings.toml"
    path.write_text(text)
    return str(path)


def tree(folder: Path) -> dict[str, str]:
    """Every file under a folder with a hash of its bytes: to see that nothing changed."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {folder.name: hashlib.md5(folder.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    found = err.strip().splitlines()
    assert len(found) == 1, err
    assert found[0].startswith("kit: error: "), err
    return found[0]


# ---------------------------------------------------------------------------------------------
# malformed input: each builder breaks a tiny competition and returns (data, flags)


@dataclass
class Bad:
    build: Callable[[Path], tuple[Path, list[str]]]
    expect: tuple[str, ...]
    task: str = "binary"


def _as_is(*flags):
    return lambda root: (root, list(flags))


def _renamed(name, to):
    def build(root):
        (root / name).rename(root / to)
        return root, []

    return build


def _zipped(root):
    # the competition's files in one archive, as `kaggle competitions download` leaves them
    with zipfile.ZipFile(root / "competition.zip", "w") as archive:
        for name in ("train.csv", "test.csv"):
            archive.write(root / name, name)
            (root / name).unlink()
    return root, []


def _zipped_two_in_one(root):
    with zipfile.ZipFile(root / "train.csv.zip", "w") as archive:
        archive.write(root / "train.csv", "train.csv")
        archive.write(root / "test.csv", "extra.csv")
    (root / "train.csv").unlink()
    return root, []


def _damaged_parquet(root):
    # pages cut short under an intact footer: polars 1.x/2.x panics on this one (a Rust panic
    # with its backtrace on fd 2) rather than raising an error
    pl.read_csv(root / "train.csv").write_parquet(root / "train.parquet", compression="uncompressed")
    (root / "train.csv").unlink()
    data = (root / "train.parquet").read_bytes()
    footer = int.from_bytes(data[-8:-4], "little") + 8
    body = data[:-footer]
    (root / "train.parquet").write_bytes(body[: int(len(body) * 0.8)] + data[-footer:])
    return root, []


def _truncated_parquet(root):
    pl.read_csv(root / "test.csv").write_parquet(root / "test.parquet")
    (root / "test.csv").unlink()
    data = (root / "test.parquet").read_bytes()
    (root / "test.parquet").write_bytes(data[: len(data) // 2])
    return root, []


def _binary_file(root):
    (root / "train.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00not a table")
    return root, []


def _ragged(root):
    lines(root, "train.csv", lambda ls: [*ls[:5], ls[5] + ",1,2", *ls[6:]])
    return root, []


def _sample(fn):
    def build(root):
        edit(root, "sample_submission.csv", fn)
        return root, []

    return build


def _train(fn, *flags):
    def build(root):
        edit(root, "train.csv", fn)
        return root, list(flags)

    return build


def _renamed_everywhere(column, name):
    def build(root):
        for file in ("train.csv", "test.csv", "sample_submission.csv"):
            edit(root, file, lambda f: f.rename({column: name}))
        return root, []

    return build


def _test(fn, *flags):
    def build(root):
        edit(root, "test.csv", fn)
        return root, list(flags)

    return build


def _both(fn, *flags):
    def build(root):
        edit(root, "train.csv", fn)
        edit(root, "test.csv", fn)
        return root, list(flags)

    return build


def _rare_class(root):
    # one row of a fourth class, scored by roc_auc, which needs every class in every fold
    edit(root, "train.csv", set_value("label", lambda i: i == 0, "rare"))
    return root, ["--metric", "roc_auc"]


def _negative_target(root):
    edit(root, "train.csv", lambda f: f.with_columns(pl.col("label") - 20))
    return root, ["--metric", "rmsle"]


def _numbers_with_text(root):
    edit(root, "train.csv", set_value("label", lambda i: i % 40 == 0, "missing", dtype=pl.String))
    return root, []


def _dates_missing(root):
    edit(root, "train.csv", set_value("when", lambda i: i % 8 == 0, None))
    return root, ["--time", "when"]


def _tiny_train(root):
    edit(root, "train.csv", lambda f: f.head(3))
    return root, []


def _out(kind):
    def build(root):
        out = root.parent / "run"
        if kind == "file":
            out.write_text("my notes\n")
        elif kind == "user_folder":
            out.mkdir()
            (out / "thesis.tex").write_text("\\section{Results}\n")
        elif kind == "user_manifest":
            out.mkdir()
            (out / "manifest.json").write_text(json.dumps({"project": "mine", "files": ["a.csv"]}))
            (out / "a.csv").write_text("a\n1\n")
        elif kind == "under_a_file":
            (root.parent / "notes.txt").write_text("x\n")
            out = root.parent / "notes.txt" / "run"
        elif kind == "symlink":
            (root.parent / "elsewhere").mkdir()
            out.symlink_to(root.parent / "elsewhere")
        return root, ["--out", str(out)]

    return build


def _toml(text):
    return lambda root: (root, ["--config", config(root, text)])


BAD: dict[str, Bad] = {
    # files
    "missing_folder": Bad(lambda r: (r.parent / "nope", []), ("nope", "does not exist")),
    "folder_is_a_file": Bad(lambda r: (r / "train.csv", []), ("train.csv", "is a file", "Pass")),
    "zipped_files": Bad(_zipped, ("No train file", "Unpack", "competition.zip")),
    "zip_of_two_tables": Bad(_zipped_two_in_one, ("train.csv.zip", "holds 2 files", "Unpack")),
    "excel_train_file": Bad(_renamed("train.csv", "train.xlsx"), ("No train file", "Save train.xlsx as CSV")),
    "empty_train_file": Bad(
        lambda r: ((r / "train.csv").write_bytes(b""), (r, []))[1], ("train.csv", "empty")
    ),
    "header_only_test": Bad(_test(lambda f: f.head(0)), ("test.csv", "no rows")),
    "binary_train_file": Bad(_binary_file, ("train.csv", "could not be parsed", "download it again")),
    "ragged_train_line": Bad(_ragged, ("train.csv", "more fields than the header")),
    "damaged_parquet_pages": Bad(_damaged_parquet, ("train.parquet", "could not be parsed")),
    "truncated_parquet": Bad(_truncated_parquet, ("test.parquet", "could not be parsed")),
    # ids and the sample file
    "duplicate_test_ids": Bad(
        _test(set_value("row_id", lambda i: i == 3, 1240)), ("'row_id'", "test.csv", "duplicate")
    ),
    "missing_test_id": Bad(
        _test(set_value("row_id", lambda i: i == 3, None)), ("'row_id'", "test.csv", "missing id")
    ),
    "sample_ids_not_tests": Bad(
        _sample(lambda f: f.with_columns(pl.col("row_id") + 7)),
        ("sample_submission.csv", "test.csv", "different ids", "1320"),
    ),
    "sample_short_of_rows": Bad(
        _sample(lambda f: f.head(-5)), ("sample_submission.csv", "different ids", "5 of test's ids")
    ),
    "sample_duplicate_id": Bad(
        _sample(lambda f: pl.concat([f, f.head(1)])), ("sample_submission.csv", "more than once")
    ),
    "sample_extra_column": Bad(
        _sample(lambda f: f.with_columns(pl.lit("Public").alias("Usage"))),
        ("sample_submission.csv", "'Usage'", "Remove"),
    ),
    "sample_without_rows": Bad(_sample(lambda f: f.head(0)), ("sample_submission.csv", "has no rows")),
    "sample_only_ids": Bad(
        _sample(lambda f: f.select("row_id")), ("sample_submission.csv", "only the id column")
    ),
    "sample_shares_no_column": Bad(
        _sample(lambda f: f.rename({"row_id": "key"})),
        ("sample_submission.csv", "shares no column", "test.csv"),
    ),
    "sample_id_other_capitals": Bad(
        _sample(lambda f: f.rename({"row_id": "ROW_ID"})), ("'ROW_ID'", "'row_id'", "Rename")
    ),
    "sample_id_without_the_space_after_it": Bad(
        _sample(lambda f: f.rename({"row_id": "row_id "})), ("'row_id '", "'row_id'", "Rename")
    ),
    "id_named_as_an_oof_column": Bad(
        _renamed_everywhere("row_id", "fold"), ("'fold'", "oof.parquet", "Rename")
    ),
    # month first in test only: every test row would lose its date's parts, and its season
    "test_dates_written_otherwise": Bad(
        _test(
            lambda f: f.with_columns(pl.col("when").str.slice(0, 10).str.to_date().dt.strftime("%m/%d/%Y"))
        ),
        ("'when'", "test.csv", "not dates written so", "Write them as train does"),
    ),
    "wrong_id_flag": Bad(_as_is("--id", "x2"), ("'x2'", "sample_submission.csv", "--id row_id")),
    "id_flag_not_in_test": Bad(_as_is("--id", "nope"), ("'nope'", "test.csv", "--id")),
    "target_flag_is_the_id": Bad(
        _as_is("--target", "row_id"), ("'row_id'", "both the id column and the target")
    ),
    # columns
    # in half the rows: too many to be a placeholder for missing values (those are read as such)
    "text_in_a_numeric_test_column": Bad(
        _test(set_value("x2", lambda i: i % 2 == 0, "?", dtype=pl.String)), ("'x2'", "test.csv", "--na '?'")
    ),
    "text_in_a_numeric_train_column": Bad(
        _train(set_value("x2", lambda i: i % 2 == 0, "?", dtype=pl.String)), ("'x2'", "train.csv", "--na '?'")
    ),
    "name_of_a_derived_column": Bad(
        _both(lambda f: f.with_columns(pl.col("x2").alias("when__year"))),
        ("'when__year'", "year of datetime column 'when'", "Rename"),
    ),
    # the target
    "target_all_missing": Bad(
        _train(set_value("label", lambda i: i >= 0, None)), ("'label'", "train.csv", "missing in every row")
    ),
    "target_single_value": Bad(
        _train(lambda f: f.with_columns(pl.lit("yes").alias("label"))),
        ("'label'", "single value", "--target"),
    ),
    "na_token_empties_the_target": Bad(
        _as_is("--na", "no"), ("'label'", "single value", "--na 'no' made", "tokens that mean missing")
    ),
    "target_numbers_with_text": Bad(
        _numbers_with_text, ("'label'", "'missing'", "--na 'missing'"), task="regression"
    ),
    "rmsle_negative_target": Bad(
        _negative_target, ("rmsle", "'label'", "negative", "--metric rmse"), task="regression"
    ),
    "class_of_one_row_under_roc_auc": Bad(_rare_class, ("'rare'", "1 row", "roc_auc", "--metric log_loss")),
    "unknown_metric": Bad(_as_is("--metric", "acuracy"), ("Unknown metric 'acuracy'", "roc_auc")),
    "metric_for_another_task": Bad(_as_is("--metric", "rmse"), ("'rmse'", "binary", "--metric")),
    # folds, groups, time
    "more_folds_than_rows": Bad(_as_is("--folds", "500"), ("--folds 500", "240 rows", "train.csv")),
    "fewer_rows_than_folds": Bad(_tiny_train, ("--folds 5", "3 rows"), task="regression"),
    "one_fold": Bad(_as_is("--folds", "1"), ("--folds must be at least 2",)),
    "zero_folds": Bad(_as_is("--folds", "0"), ("folds", "[1, 1000]")),
    "folds_not_a_number": Bad(_as_is("--folds", "five"), ("--folds", "invalid int value: 'five'", "--help")),
    "negative_seed": Bad(_as_is("--seed", "-1"), ("seed", "[0, 4294967295]")),
    "a_single_group": Bad(_as_is("--group", "constant"), ("'constant'", "single group", "--group")),
    "group_is_the_target": Bad(_as_is("--group", "label"), ("--group 'label'", "is the target")),
    "unknown_group": Bad(_as_is("--group", "nope"), ("'nope'", "train.csv", "--group")),
    "time_column_of_text": Bad(_as_is("--time", "color"), ("'color'", "neither numbers nor dates", "--time")),
    "time_column_with_missing_numbers": Bad(
        _as_is("--time", "x1"), ("--time column 'x1'", "train.csv", "no time in 26 of the 240 rows", "Fill")
    ),
    "time_column_with_missing_dates": Bad(
        _dates_missing, ("--time column 'when'", "train.csv", "no time in 30 of the 240 rows", "Fill")
    ),
    "unknown_split": Bad(_as_is("--split", "random"), ("Unknown split 'random'", "--split")),
    "time_split_without_a_time_column": Bad(_as_is("--split", "time"), ("--split time needs --time",)),
    "stratified_regression": Bad(
        _as_is("--split", "stratified"),
        ("--split stratified", "regression", "--split kfold"),
        task="regression",
    ),
    "target_of_unique_values": Bad(
        _as_is("--target", "when"), ("'when'", "different values in 240 rows", "--target")
    ),
    # settings
    "dropout_out_of_range": Bad(_toml("[baseline]\ndropout = 1.5\n"), ("dropout", "[0, 1)", "settings.toml")),
    "epochs_zero": Bad(_toml("[baseline]\nepochs = 0\n"), ("epochs", "[1, 100000]")),
    "na_token_not_text": Bad(_toml("na = [1]\n"), ("na", "type str", "settings.toml")),
    "unknown_setting": Bad(_toml("fold = 3\n"), ("Unknown setting 'fold'",)),
    "toml_syntax_error": Bad(_toml("[baseline\n"), ("settings.toml", "not valid TOML")),
    "config_is_a_folder": Bad(lambda r: (r, ["--config", str(r)]), ("Config file", "is a folder")),
    # the run folder
    "out_is_a_file": Bad(_out("file"), ("--out", "is a file")),
    "out_is_a_users_folder": Bad(_out("user_folder"), ("--out", "files kit did not write")),
    "out_has_a_users_manifest": Bad(_out("user_manifest"), ("--out", "files kit did not write")),
    "out_under_a_file": Bad(_out("under_a_file"), ("notes.txt", "is a file")),
    "out_is_a_symlink": Bad(_out("symlink"), ("--out", "symbolic link")),
}


def _no_training(*args, **kwargs):
    raise AssertionError("training started: this input should have been refused before it")


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_input_is_one_line_before_training(name, tmp_path, monkeypatch, capsys):
    case = BAD[name]
    data, flags = case.build(write_competition(tmp_path / "comp", task=case.task))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_mod, "_cross_validate", _no_training)
    out = tmp_path / "run"
    flags = flags if "--out" in flags else ["--out", str(out), *flags]
    before = {p.name: tree(p) for p in tmp_path.iterdir() if p.name != "comp"}
    assert cli.main(["baseline", str(data), *flags]) == 2
    line = one_error_line(capsys.readouterr().err)
    for text in case.expect:
        assert text in line, line
    after = {p.name: tree(p) for p in tmp_path.iterdir() if p.name != "comp"}
    assert after == before, "nothing outside the competition folder may change"
    assert not (tmp_path / "submissions").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_refused_before_training(tmp_path, monkeypatch, capsys):
    data = write_competition(tmp_path / "comp")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setattr(run_mod, "_cross_validate", _no_training)
    try:
        assert cli.main(["baseline", str(data), "--out", str(locked / "run")]) == 2
    finally:
        locked.chmod(0o700)
    assert "is not writable" in one_error_line(capsys.readouterr().err)


def test_a_polars_panic_on_a_damaged_file_is_one_line_on_fd_2(tmp_path, capfd):
    data, _ = _damaged_parquet(write_competition(tmp_path / "comp"))
    assert cli.main(["inspect", str(data)]) == 2
    line = one_error_line(capfd.readouterr().err)  # fd 2 itself: the Rust backtrace went nowhere
    assert "train.parquet" in line and "could not be parsed" in line


def test_export_names_never_collide():
    from kit.serving import _input_name

    columns = ["a b", "a_b", "A B", "A_b", "", "_", "1st", "âge", "c__ge", "x/y", "x-y", "Value", "value"]
    taken: set[str] = set()
    names = [_input_name(c, taken) for c in columns]
    # TensorFlow's node names, compared as its signatures do: lowercased
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", n) for n in names), names
    assert len({n.lower() for n in names}) == len(columns), names


def test_the_corpus_covers_every_class(tmp_path):
    # at least 40 malformed cases, and the odd-but-valid, validate and predict ones below
    assert len(BAD) >= 40 and len(BAD) + len(ODD) + len(SUBMISSIONS) + len(PREDICT) >= 80


# ---------------------------------------------------------------------------------------------
# odd but valid input: a clean run with a validated submission


@dataclass
class Odd:
    build: Callable[[Path], tuple[Path, list[str]]]
    notes: tuple[str, ...] = ()
    check: Callable[[Path, Path], None] | None = None  # (data, submission) -> assertions
    task: str = "binary"
    # the track that runs it: a team's linear model is fast; a few go through the Keras baseline
    track: str = "linear"


def _rewrite(fn_text: Callable[[str], str], *names):
    def build(root):
        for name in names or ("train.csv", "test.csv", "sample_submission.csv"):
            (root / name).write_text(fn_text((root / name).read_text()))
        return root, []

    return build


def _semicolons_with_decimal_commas(root):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        frame = pl.read_csv(root / name)
        rows = [";".join("" if v is None else str(v).replace(".", ",") for v in row) for row in frame.rows()]
        (root / name).write_text("\n".join([";".join(frame.columns), *rows]) + "\n")
    return root, []


def _decimal_commas_and_a_placeholder(root):
    _semicolons_with_decimal_commas(root)
    for name in ("train.csv", "test.csv"):
        lines(
            root,
            name,
            lambda ls: [
                ls[0],
                *(_first_field_after_id(row, "?") if i == 3 else row for i, row in enumerate(ls[1:])),
            ],
        )
    return root, []


def _first_field_after_id(line, value):
    fields = line.split(";")
    fields[1] = value  # x1
    return ";".join(fields)


def _thousands_separators(root):
    grouped = pl.format("{},{}", pl.col("x2") + 1, pl.lit("250"))  # "13,250": quoted in the file
    for name in ("train.csv", "test.csv"):
        edit(root, name, lambda f: f.with_columns(grouped.alias("x2")))
    return root, []


def _latin1(root):
    for name in ("train.csv", "test.csv"):
        edit(root, name, lambda f: f.with_columns(pl.col("color").str.replace("red", "rouge é")))
        (root / name).write_bytes((root / name).read_text().encode("latin-1"))
    return root, []


def _blank_lines(root):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        lines(root, name, lambda ls: [ls[0], ls[1], "", *ls[2:], "", ""])
    return root, []


def _infinities(root):
    for name in ("train.csv", "test.csv"):
        edit(root, name, set_value("x1", lambda i: i % 17 == 0, "inf", dtype=pl.String))
        edit(root, name, set_value("x1", lambda i: i % 19 == 0, "-inf", dtype=pl.String))
    return root, []


def _beyond_float32(root):
    for name in ("train.csv", "test.csv"):
        edit(root, name, set_value("x1", lambda i: i % 17 == 0, "1e39", dtype=pl.String))
        edit(root, name, set_value("x1", lambda i: i % 19 == 0, "-2.5e300", dtype=pl.String))
    return root, []


def _parquet_infinities(root):
    for name in ("train", "test", "sample_submission"):
        frame = pl.read_csv(root / f"{name}.csv")
        if "x1" in frame.columns:
            frame = frame.with_columns(
                pl.when(pl.int_range(pl.len()) % 13 == 0)
                .then(float("inf"))
                .otherwise(pl.col("x1"))
                .alias("x1")
            )
        frame.write_parquet(root / f"{name.upper()}.PARQUET")
        (root / f"{name}.csv").unlink()
    return root, []


def _float_ids(root):
    for name in ("train.csv", "test.csv"):
        edit(root, name, lambda f: f.with_columns(pl.col("row_id").cast(pl.Float64)))
    return root, []


def _test_ids_with_a_trailing_space(root):
    for name in ("train.csv", "test.csv"):
        edit(root, name, lambda f: f.with_columns(pl.format("P{} ", pl.col("row_id")).alias("row_id")))
    edit(
        root,
        "sample_submission.csv",
        lambda f: f.with_columns(pl.format("P{}", pl.col("row_id")).alias("row_id")),
    )
    return root, []


def _zero_padded_sample_ids(root):
    edit(
        root,
        "sample_submission.csv",
        lambda f: f.with_columns(pl.format("00{}", pl.col("row_id")).alias("row_id")),
    )
    return root, []


def _sample_names_the_prediction(root):
    edit(root, "sample_submission.csv", lambda f: f.rename({"label": "Prediction"}))
    return root, []


def _sample_columns_swapped(root):
    edit(root, "sample_submission.csv", lambda f: f.select("label", "row_id").reverse())
    return root, []


def _no_ids_in_train(root):
    edit(root, "train.csv", lambda f: f.drop("row_id"))
    return root, []


def _rare_class_scored_by_roc_auc(root):
    # three rows of a fourth class: 5 folds cannot each validate on it, 3 can
    edit(root, "train.csv", set_value("label", lambda i: i < 3, "rare"))
    return root, ["--metric", "roc_auc", "--folds", "5"]


def _rare_class_scored_by_accuracy(root):
    edit(root, "train.csv", set_value("label", lambda i: i == 0, "rare"))
    return root, []


def _gzipped(root):
    for name in ("train.csv", "test.csv"):
        (root / f"{name}.gz").write_bytes(gzip.compress((root / name).read_bytes()))
        (root / name).unlink()
    return root, []


def _zipped_alone(root):
    # each table zipped alone (train.csv.zip), as older competitions ship them
    for name in ("train.csv", "test.csv"):
        with zipfile.ZipFile(root / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(root / name, name)
        (root / name).unlink()
    return root, []


def _tsv(root):
    for name in ("train", "test"):
        (root / f"{name}.tsv").write_text((root / f"{name}.csv").read_text().replace(",", "\t"))
        (root / f"{name}.csv").unlink()
    return root, []


def _check_labels(allowed):
    def check(data, submission):
        assert {line.split(",")[1] for line in submission.read_text().splitlines()[1:]} <= allowed

    return check


def _check_header(expected):
    def check(data, submission):
        assert submission.read_text().splitlines()[0] == expected

    return check


def _check_role(column, role):
    def check(data, submission):
        assert api.inspect(data).roles[column] == role

    return check


def _check_ids(fn):
    def check(data, submission):
        ids = [line.split(",")[0] for line in submission.read_text().splitlines()[1:]]
        expected = [
            line.split(",")[0] for line in (data / "sample_submission.csv").read_text().splitlines()[1:]
        ]
        assert ids == expected and fn(ids), ids[:3]

    return check


ODD: dict[str, Odd] = {
    "semicolons": Odd(
        _rewrite(lambda t: t.replace(",", ";")), ("separated by semicolons",), track="baseline"
    ),
    "semicolons_and_decimal_commas": Odd(_semicolons_with_decimal_commas, ("decimal commas (x1)",)),
    # a "?" among them: still numbers, the "?" missing (it was all text, and the signal lost)
    "decimal_commas_and_a_placeholder": Odd(
        _decimal_commas_and_a_placeholder,
        ("decimal commas (x1)", "placeholders as missing values: 'x1' ('?'"),
    ),
    "thousands_separators": Odd(
        _thousands_separators,
        ("writes numbers with thousands separators (x2)",),
        check=_check_role("x2", "numeric"),
    ),
    "tabs": Odd(_rewrite(lambda t: t.replace(",", "\t")), ("separated by tabs",)),
    "latin1_text": Odd(_latin1, ("not UTF-8",)),
    "byte_order_mark_and_crlf": Odd(_rewrite(lambda t: "\ufeff" + t.replace("\n", "\r\n"))),
    "blank_lines": Odd(
        _blank_lines, ("empty line(s) in 'train.csv'", "empty line(s) in 'sample_submission.csv'")
    ),
    "inf_in_a_numeric_column": Odd(
        _infinities,
        ("inf, -inf and values beyond ±3.4e38 as missing values in 'x1' (train.csv:",),
        track="baseline",
    ),
    # what float32 cannot hold is infinite to a network: the advanced track's loss was NaN
    "values_beyond_float32": Odd(
        _beyond_float32, ("beyond ±3.4e38 as missing values in 'x1'",), track="advanced"
    ),
    "inf_in_parquet_upper_case_names": Odd(
        _parquet_infinities, ("inf, -inf and values beyond", "TRAIN.PARQUET")
    ),
    "float_ids_against_an_int_sample": Odd(_float_ids, check=_check_ids(lambda ids: "." not in ids[0])),
    "test_ids_with_a_trailing_space": Odd(
        _test_ids_with_a_trailing_space,
        check=_check_ids(lambda ids: ids[0].startswith("P") and ids[0] == ids[0].strip()),
    ),
    "zero_padded_sample_ids": Odd(
        _zero_padded_sample_ids, check=_check_ids(lambda ids: ids[0].startswith("00"))
    ),
    "sample_names_the_prediction": Odd(
        _sample_names_the_prediction,
        ("names the prediction 'Prediction'",),
        _check_header("row_id,Prediction"),
    ),
    "sample_columns_swapped": Odd(_sample_columns_swapped, check=_check_header("label,row_id")),
    "no_ids_in_train": Odd(_no_ids_in_train),
    "gzipped_csv": Odd(_gzipped),
    "zipped_csv": Odd(_zipped_alone),
    "tab_separated_tsv_files": Odd(_tsv),
    "sample_with_text_labels_train_lacks": Odd(
        _sample(lambda f: f.with_columns(pl.lit("maybe").alias("label"))), check=_check_labels({"yes", "no"})
    ),
    "fewer_groups_than_folds": Odd(
        _as_is("--group", "color", "--folds", "5"), ("has 4 groups, fewer than --folds 5: using 4 folds",)
    ),
    "rare_class_under_roc_auc": Odd(
        _rare_class_scored_by_roc_auc, ("class 'rare'", "using 3 folds"), track="baseline"
    ),
    "rare_class_under_accuracy": Odd(
        _rare_class_scored_by_accuracy, ("class 'rare'", "some validation folds have none of it")
    ),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_input_just_works(name, tmp_path, monkeypatch, capsys):
    case = ODD[name]
    data, flags = case.build(write_competition(tmp_path / "comp", n=120, task=case.task))
    monkeypatch.chdir(tmp_path)
    settings = config(data, TINY)
    out = tmp_path / "run"
    command = [case.track] if case.track in ("baseline", "advanced") else ["run", str(LINEAR)]
    code = cli.main([*command, str(data), "--out", str(out), "--folds", "2", "--config", settings, *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    for text in case.notes:
        assert text in captured.out, captured.out
    comp = api.inspect(data, **_settings(flags))
    validate_file(out / "submission.csv", comp)
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["score"]) and all(np.isfinite(metrics["fold_scores"]))
    if case.check is not None:
        case.check(data, out / "submission.csv")


def _settings(flags: list[str]) -> dict:
    keys = {"--metric": "metric", "--group": "group", "--id": "id", "--target": "target"}
    return {keys[f]: v for f, v in zip(flags[::2], flags[1::2], strict=True) if f in keys}


def test_tps_with_a_product_held_out_uses_fewer_folds_and_says_so(tmp_path):
    source = shared_competition("tps-aug-2022")
    # the folder's name picks up the competition's TOML (group = "product_code")
    data = tmp_path / "tps-aug-2022"
    data.mkdir()
    pl.read_csv(source / "train.csv").filter(pl.col("product_code") != "E").write_csv(data / "train.csv")
    for name in ("test.csv", "sample_submission.csv"):
        (data / name).write_bytes((source / name).read_bytes())
    comp, cfg = api.load(data)
    plan = preflight(comp, cfg)
    assert plan.strategy == "group" and len(plan.folds) == 4
    assert plan.notes == [
        "the group column 'product_code' has 4 groups, fewer than --folds 5: using 4 folds, one group each"
    ]


def test_a_time_column_beside_a_group_column_is_said_to_be_unused_by_the_folds(tmp_path):
    data = write_competition(tmp_path / "tiny", n=240)
    comp, cfg = api.load(data, group="color", time="when")
    plan = preflight(comp, cfg)
    assert plan.strategy == "group"
    assert any("not in the order of 'when'" in n and "--split time" in n for n in plan.notes)
    timed, timed_cfg = api.load(data, group="color", time="when", split="time")
    assert preflight(timed, timed_cfg).strategy == "time"
    assert not any("--split time" in n for n in preflight(*api.load(data, group="color")).notes)


def test_a_time_column_of_few_times_uses_one_fold_per_time_and_says_so(tmp_path):
    data = write_competition(tmp_path / "tiny", n=240)
    days = pl.format("2024-01-0{}", pl.int_range(pl.len()) % 4 + 1)
    edit(data, "train.csv", lambda f: f.with_columns(days.alias("when")))
    comp, cfg = api.load(data, time="when", split="time")
    plan = preflight(comp, cfg)
    assert len(plan.folds) == 3 and any("4 different times" in n and "using 3 folds" in n for n in plan.notes)


# ---------------------------------------------------------------------------------------------
# kit validate: what Kaggle would reject, in every kind of submission


def _proba_comp(root):
    edit(root, "sample_submission.csv", lambda f: f.with_columns(pl.lit(0.5).alias("label")))
    return root


KINDS = {
    "label": ("binary", lambda r: r),
    "proba": ("binary", _proba_comp),
    "proba_columns": ("multiclass", lambda r: r),
    "value": ("regression", lambda r: r),
}


def _cell(row: int, column: int, value: str):
    def fn(text):
        rows = text.splitlines()
        cells = rows[row].split(",")
        cells[column] = value
        rows[row] = ",".join(cells)
        return "\n".join(rows) + "\n"

    return fn


def _swap_rows(text):
    rows = text.splitlines()
    rows[1], rows[2] = rows[2], rows[1]
    return "\n".join(rows) + "\n"


# (kind, how to break a good file's text, what the one line says; None: it is fine)
SUBMISSIONS = {
    "text_in_a_value_column": (
        "value",
        _cell(3, 1, "abc"),
        ("column 'label'", "text where Kaggle expects numbers", "row 3", "'abc'"),
    ),
    "text_in_a_probability_column": (
        "proba",
        _cell(2, 1, "high"),
        ("text where Kaggle expects numbers", "'high'"),
    ),
    "text_in_a_class_column": ("proba_columns", _cell(5, 2, "x"), ("column 'label_low'", "'x'")),
    "nan_in_a_value_column": ("value", _cell(4, 1, "NaN"), ("column 'label'", "missing value(s)", "row 4")),
    "inf_in_a_value_column": ("value", _cell(4, 1, "inf"), ("NaN or infinite", "row 4")),
    "empty_probability": ("proba", _cell(1, 1, ""), ("missing value(s)",)),
    "wrong_id": ("label", _cell(3, 0, "999999"), ("row 3 has id '999999'", "sample file does not have")),
    "float_id_spelling": (
        "value",
        _cell(1, 0, "1240.0"),
        ("'1240.0'", "spells '1240'", "as the sample file does"),
    ),
    "rows_in_another_order_are_fine": ("label", _swap_rows, None),
    "missing_rows": (
        "proba",
        lambda t: "\n".join(t.splitlines()[:-3]) + "\n",
        ("lacks 3 of the sample file's ids", "77 rows against its 80"),
    ),
    "header_in_capitals": ("label", lambda t: t.replace("row_id,label", "ROW_ID,LABEL", 1), ("capitals",)),
    "no_header_row": ("value", lambda t: t.split("\n", 1)[1], ("no header row",)),
    "pandas_index_column": (
        "label",
        lambda t: (
            "\n".join(("," if i == 0 else f"{i - 1},") + r for i, r in enumerate(t.splitlines())) + "\n"
        ),
        ("index=False",),
    ),
    "label_not_spelled_as_in_train": (
        "label",
        lambda t: t.replace(",yes", ",Yes"),
        ("label 'Yes'", "train.csv"),
    ),
    "probability_above_one": ("proba", _cell(2, 1, "1.5"), ("outside [0, 1]",)),
    "probabilities_not_summing_to_one_are_fine": ("proba_columns", _cell(2, 1, "0.9"), None),
    "semicolon_separated": ("value", lambda t: t.replace(",", ";"), ("semicolons", "comma-separated")),
    "empty_file": ("label", lambda t: "", ("is empty",)),
    "blank_lines_are_fine": ("proba_columns", lambda t: t.replace("\n", "\n\n", 3) + "\n\n", None),
    "crlf_is_fine": ("label", lambda t: t.replace("\n", "\r\n"), None),
}


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_validate_rejects_what_kaggle_would(name, tmp_path, capsys):
    kind, break_it, expected = SUBMISSIONS[name]
    task, shape = KINDS[kind]
    data = shape(write_competition(tmp_path / "comp", task=task))
    comp = api.inspect(data)
    assert comp.submission.kind == kind
    rng = np.random.default_rng(0)
    pred = (
        rng.random(comp.test.height) * 10
        if task == "regression"
        else rng.dirichlet(np.ones(len(comp.classes)), comp.test.height)
    )
    good = tmp_path / "good.csv"
    make_submission(comp, pred).write_csv(good)
    assert cli.main(["validate", str(good), str(data)]) == 0
    capsys.readouterr()
    bad = tmp_path / "submission.csv"
    bad.write_text(break_it(good.read_text()))
    code = cli.main(["validate", str(bad), str(data)])
    captured = capsys.readouterr()
    if expected is None:
        assert code == 0 and "OK" in captured.out, captured.err
        return
    assert code == 2
    line = one_error_line(captured.err)
    assert "submission.csv" in line
    for text in expected:
        assert text in line, line


def test_validate_refuses_a_folder(tmp_path, capsys):
    data = write_competition(tmp_path / "comp")
    assert cli.main(["validate", str(tmp_path), str(data)]) == 2
    assert "is a folder" in one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------
# kit predict: everything checked before TensorFlow loads the model


def _fake_export(folder: Path, *, pb: bytes = b"not a graph", info: dict | None = None) -> Path:
    (folder / "assets.extra").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(pb)
    info = info or {
        "inputs": {"x1": {"role": "numeric", "kind": "float"}}, "id": "row_id", "target": "label",
        "task": "binary", "classes": ["no", "yes"], "folds": 2, "na": [],
        "submission": {"kind": "label", "columns": ["row_id", "label"], "class_columns": []},
    }  # fmt: skip
    (folder / "assets.extra" / "kit.json").write_text(json.dumps(info))
    return folder


def _predict_case(kind):
    def build(tmp: Path) -> list[str]:
        test = write_competition(tmp / "comp") / "test.csv"
        model, out = tmp / "model", tmp / "submission.csv"
        if kind == "out_is_a_folder":
            _fake_export(model)
            out.mkdir()
            (out / "keep.txt").write_text("mine\n")
        elif kind == "run_folder_as_model":
            _fake_export(tmp / "run" / "model")
            model = tmp / "run"
        elif kind == "not_an_export":
            model.mkdir()
        elif kind == "no_such_model":
            model = tmp / "modle"
        elif kind == "damaged_kit_json":
            _fake_export(model)
            (model / "assets.extra" / "kit.json").write_text('{"inputs": {')
        elif kind == "test_without_id":
            _fake_export(model)
            edit(test.parent, "test.csv", lambda f: f.drop("row_id"))
        elif kind == "test_without_a_model_input":
            _fake_export(model)
            edit(test.parent, "test.csv", lambda f: f.drop("x1"))
        return [str(model), str(test), "--out", str(out)]

    return build


PREDICT = {
    "out_is_a_folder": ("is a folder", "submission.csv/submission.csv"),
    "run_folder_as_model": ("is a run folder", "/run/model"),
    "not_an_export": ("is not a model exported",),
    "no_such_model": ("/modle' does not exist", "model/ folder"),
    "damaged_kit_json": ("kit.json", "damaged", "Export it again"),
    "test_without_id": ("test.csv", "no id column 'row_id'"),
    "test_without_a_model_input": ("test.csv", "lacks 1 column(s) the model was trained on: x1."),
}


@pytest.mark.parametrize("name", sorted(PREDICT))
def test_predict_checks_before_loading_the_model(name, tmp_path, monkeypatch, capsys):
    args = _predict_case(name)(tmp_path)
    before = tree(tmp_path)
    monkeypatch.setattr("kit.serving.ExportedModel.__init__", _no_training)
    assert cli.main(["predict", *args]) == 2
    line = one_error_line(capsys.readouterr().err)
    for text in PREDICT[name]:
        assert text in line, line
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--folds", "500"], ("--folds 500", "240 rows")),
        (["--group", "constant"], ("single group",)),
        (["--out", "USER"], ("--out", "files kit did not write")),
    ],
)
def test_tune_checks_before_the_study_starts(flags, expected, tmp_path, monkeypatch, capsys):
    data = write_competition(tmp_path / "comp")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(tmp_path)
    flags = [str(user) if f == "USER" else f for f in flags]
    assert cli.main(["tune", str(data), "--trials", "1", *flags]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert all(text in line for text in expected), line
    assert not (tmp_path / "submissions").exists() and [p.name for p in user.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------------------------------------
# failures in the middle of a run leave nothing behind


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    data = write_competition(tmp_path / "comp", n=80)
    monkeypatch.chdir(tmp_path)
    real = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst).endswith("oof.parquet"):  # the run's default folder is under the cwd, tmp_path
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(kit_io.os, "replace", full)
    code = cli.main(["baseline", str(data), "--folds", "2", "--config", config(data, TINY)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "no space left on the device" in line and "oof.parquet" in line and "--out" in line
    assert not (tmp_path / "submissions").exists(), "no empty submissions/<competition>/ left behind"


def test_a_failed_run_leaves_no_empty_submissions_folder(tmp_path, monkeypatch, capsys):
    data = write_competition(tmp_path / "comp", n=60)
    track = tmp_path / "fails.py"
    track.write_text(
        "from kit.errors import InputError\nDEFAULTS = {}\n"
        "def fit_predict_fold(fold, params):\n    raise InputError('this track refuses the fold')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(track), str(data), "--folds", "2"]) == 2
    assert "refuses the fold" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "submissions").exists()


def test_an_unexpected_error_is_one_line_with_the_traceback_saved(tmp_path, monkeypatch, capsys):
    data = write_competition(tmp_path / "comp", n=60)

    def buggy(fold, params):  # a bug in one of kit's own tracks
        return {}["missing"]

    monkeypatch.setattr("kit.tracks.trees.fit_predict_fold", buggy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIT_TRACEBACK", raising=False)
    assert cli.main(["trees", str(data), "--folds", "2"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("kit: internal error: KeyError: 'missing'")
    saved = Path(err.rsplit("the full traceback is in ", 1)[1].rstrip(")\n"))
    assert "Traceback" in saved.read_text() and "in buggy" in saved.read_text()
    assert not (tmp_path / "submissions").exists()


# ---------------------------------------------------------------------------------------------
# the installed command, in a process of its own


def run_kit(*args, cwd, **popen):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KIT_QUIET_TF")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [str(KIT), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_an_error_after_tensorflow_starts_is_still_one_line(tmp_path):
    # a damaged model: TensorFlow is imported to load it, and its start-up lines must not show
    data = write_competition(tmp_path / "comp")
    _fake_export(tmp_path / "model", pb=b"\x08\x01garbage" * 50)
    done = run_kit("predict", str(tmp_path / "model"), str(data / "test.csv"), cwd=tmp_path)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 2, err
    line = one_error_line(err)
    assert "could not be loaded as a SavedModel" in line and "Export it again" in line


def _seeds(folder: Path) -> set:
    """The seed each file of a run folder records: one value for a whole run."""
    text = (folder / "config.toml").read_text()
    return {
        json.loads((folder / "metrics.json").read_text())["seed"],
        json.loads((folder / "manifest.json").read_text())["seed"],
        int(next(line for line in text.splitlines() if line.startswith("seed")).split("=")[1]),
    }


RUN_FILES = {
    "submission.csv",
    "oof.parquet",
    "test_predictions.parquet",
    "metrics.json",
    "config.toml",
    "manifest.json",
}


def test_two_runs_into_one_folder_never_mix(tmp_path):
    data = write_competition(tmp_path / "comp", n=80)
    settings = config(data, TINY)
    runs = [
        run_kit(
            "baseline",
            str(data),
            "--folds",
            "2",
            "--seed",
            str(seed),
            "--config",
            settings,
            "--out",
            "run",
            cwd=tmp_path,
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, out, err in results:
        if code == 2:  # the second to start finds the first one holding the folder
            assert "Another kit run is writing" in one_error_line(err)
        else:  # a clean run of the command: nothing on stderr, TensorFlow's start-up lines included
            assert err == "" and "CV accuracy" in out
    folder = tmp_path / "run"
    validate_file(folder / "submission.csv", api.inspect(data))
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    assert len(_seeds(folder)) == 1, "every file from the same run"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


PUBLISHER = textwrap.dedent(
    """
    import copy, sys, time
    import numpy as np
    from kit import api, metrics
    from kit.io import publish_dir, stage_dir, write_atomic
    from kit.run_folder import write_run_files
    from kit.submission import make_submission

    comp, cfg = api.load(sys.argv[1])
    dest, n = sys.argv[2], comp.train.height
    pred = np.full((comp.test.height, 2), 0.5)
    print("ready", flush=True)
    for seed in range(1, 100000):
        run_cfg = copy.deepcopy(cfg)
        run_cfg.seed = seed
        staging = stage_dir(dest)
        for i in range(40):  # more files, so the publishing and the removal of the old run take a while
            write_atomic(staging / f"extra_{i}.json", {"seed": seed})
        write_run_files(
            staging, comp, run_cfg, track="baseline", metric=metrics.get(comp.metric), score=0.5,
            fold_scores=[0.5, 0.5], oof=np.full((n, 2), 0.5), fold_of=np.arange(n) % 2,
            test_pred=pred, submission=make_submission(comp, pred), strategy="stratified",
        )
        publish_dir(staging, dest)
    """
)


def test_a_kill_at_any_moment_leaves_the_old_run_or_the_new_one(tmp_path):
    data = write_competition(tmp_path / "comp", n=80)
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    dest = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in np.linspace(0.0, 1.2, 6):
        child = subprocess.Popen(
            [sys.executable, str(script), str(data), str(dest)], env=env, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if not dest.exists():
            assert delay < 0.3, "only a kill before the first publish leaves no run folder"
            continue
        names = {p.name for p in dest.iterdir()}
        assert RUN_FILES <= names and len([n for n in names if n.startswith("extra_")]) == 40, names
        seeds = _seeds(dest) | {json.loads(p.read_text())["seed"] for p in dest.glob("extra_*.json")}
        assert len(seeds) == 1, f"a folder mixing runs {seeds} after a kill at {delay:.2f} s"


def test_a_killed_runs_leftovers_are_tidied_or_named_by_the_next_run(tmp_path):
    from kit.run import cross_validate

    data = write_competition(tmp_path / "comp", n=120)
    comp, cfg = api.load(data, folds=2)
    parent = tmp_path / "submissions" / comp.name
    # as `kill -9` leaves them: a run with nothing to resume from, and one with checkpoints
    for name, files in (
        ("20250101-120000-trees", ["params.json"]),
        ("20250101-120500-advanced", ["params.json", "fold-1.weights.h5"]),
    ):
        (parent / f".{name}.work").mkdir(parents=True)
        for file in files:
            (parent / f".{name}.work" / file).write_text("{}")
        if name.endswith("trees"):  # the other's lock file is gone, as after a reboot
            (parent / f".{name}.lock").write_text("")
    lines = []
    cross_validate(comp, cfg, "trees", out=parent / "next", log=lines.append, progress=False)
    assert not (parent / ".20250101-120000-trees.work").exists()
    assert not (parent / ".20250101-120000-trees.lock").exists()
    assert (parent / ".20250101-120500-advanced.work" / "fold-1.weights.h5").is_file()
    assert not (parent / ".20250101-120500-advanced.lock").exists()
    assert any("--out" in line and "20250101-120500-advanced resumes it" in line for line in lines)
