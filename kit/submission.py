"""Build a submission from predictions, check it against the sample file, and write it atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from kit import metrics
from kit.columns import id_number, id_text, match_ids
from kit.competition import Competition
from kit.errors import InputError
from kit.io import read_table, sniff_delimiter, write_atomic
from kit.metrics import at_threshold, labels, round_ratings


def make_submission(comp: Competition, pred: np.ndarray, *, threshold: float | None = None) -> pl.DataFrame:
    """The submission frame for test predictions, in the sample file's row and column order, with
    the ids as the sample spells them.

    Args:
        pred: (n_test, n_classes) probabilities, or (n_test,) values for regression.
        threshold: for a binary task's labels, class 1 where its probability is above this
            (`kit.metrics.decision_threshold`); None: the most probable class.
    """
    fmt, target = comp.submission, comp.target
    value = fmt.value_column or target
    columns = {}
    if comp.id is not None:
        columns[comp.id] = comp.test[comp.id]
    if fmt.kind == "label":
        if comp.task == "regression":  # qwk on an integer target: rounded ratings
            y_train = comp.train[target].to_numpy()
            columns[value] = pl.Series(value, round_ratings(pred, y_train), dtype=pl.Int64)
        else:
            values = np.asarray(comp.classes, dtype=object)[labels(at_threshold(pred, threshold))].tolist()
            columns[value] = _spelled(pl.Series(value, values, dtype=comp.train[target].dtype))
    elif fmt.kind == "ranked":
        top = np.argsort(-pred, axis=1, kind="stable")[:, : fmt.k]
        names = np.asarray([str(c) for c in comp.classes], dtype=object)
        columns[value] = pl.Series(value, [" ".join(row) for row in names[top]], dtype=pl.String)
    elif fmt.kind == "proba":
        columns[value] = pl.Series(value, pred[:, 1], dtype=pl.Float64)
    elif fmt.kind == "proba_columns":
        for i, column in enumerate(fmt.class_columns):
            columns[column] = pl.Series(column, pred[:, i], dtype=pl.Float64)
    else:
        if metrics.get(comp.metric).log_target:
            # scored on log(1 + value): a value below 0 (a linear model's -1e-9) is refused there
            pred = np.maximum(pred, 0.0)
        columns[value] = pl.Series(value, pred, dtype=pl.Float64)
    frame = pl.DataFrame(columns)
    if comp.sample is not None and comp.id is not None:
        # the sample file's order, which Kaggle's scorer expects, and its spelling of the ids
        keys = match_ids(comp.test[comp.id], comp.sample_ids())
        if keys is None:
            raise InputError(
                f"The test rows' ids in '{comp.id}' are not the sample file's, so the submission cannot "
                f"follow it. Pass the competition's own test file. Received: rows={comp.test.height}"
            )
        # the files spell the ids differently ("1.0" and "1", "P7 " and "P7"): write them as the sample does
        respelled = not (
            keys[0].equals(comp.test[comp.id].cast(pl.String)) and keys[1].equals(comp.sample_ids())
        )
        if keys[0].equals(keys[1]):  # test's rows in the sample's order already (most competitions)
            if respelled:
                frame = frame.with_columns(comp.sample_ids().alias(comp.id))
            return frame.select(fmt.columns)
        key = "__kit_id_key"
        while key in frame.columns:
            key += "_"
        order = pl.DataFrame({key: keys[1]})
        if respelled:
            order = order.with_columns(comp.sample_ids().alias(comp.id))
            frame = frame.drop(comp.id)
        frame = order.join(frame.with_columns(keys[0].alias(key)), on=key, how="left", maintain_order="left")
    return frame.select(fmt.columns)


def _spelled(s: pl.Series) -> pl.Series:
    """Labels as text the way Kaggle files spell them: booleans as True/False (polars writes
    true/false, which does not match a train file's spelling or the sample's)."""
    if s.dtype == pl.Boolean:
        return s.replace_strict({True: "True", False: "False"}, return_dtype=pl.String)
    return s.cast(pl.String)


def _numeric_kinds(comp: Competition) -> bool:
    """Whether the submission's value columns hold numbers (everything but class labels)."""
    return comp.submission.kind not in ("label", "ranked") or comp.task == "regression"


def check_submission(frame: pl.DataFrame, comp: Competition, *, name: str = "submission") -> None:
    """Raise `InputError` unless the frame is what Kaggle would accept: the sample file's columns,
    ids (in any order: Kaggle's scorer matches rows by id), a value in every row, numbers that are
    finite where numbers belong, labels spelled as in train, probabilities in [0, 1], not all 0
    across a row's class columns (other sums are rescaled by Kaggle's scorer)."""
    fmt = comp.submission
    if frame.columns != fmt.columns:
        raise InputError(
            f"{name} has columns {frame.columns}, the sample file expects {fmt.columns}{_header_hint(frame, comp)}. "
            f"Write the same columns in the same order. Received: columns={frame.columns}"
        )
    _check_ids(frame, comp, name)
    values = [c for c in frame.columns if c != comp.id]
    for column in values:
        s = frame[column]
        if s.null_count():
            row = int(s.is_null().arg_true()[0])
            raise InputError(
                f"{name} column '{column}' has {s.null_count()} missing value(s) (first at row {row + 1}). "
                f"Predict every row. Received: missing={s.null_count()}"
            )
        if _numeric_kinds(comp) and not s.dtype.is_numeric():
            number = s.cast(pl.Float64, strict=False)
            row = int(number.is_null().arg_true()[0]) if number.null_count() else 0
            raise InputError(
                f"{name} column '{column}' holds text where Kaggle expects numbers: row {row + 1} has "
                f"{s[row]!r}. Write a number in every row. Received: value={s[row]!r}"
            )
        if s.dtype.is_float() and not s.is_finite().all():
            row = int((~s.is_finite()).arg_true()[0])
            raise InputError(
                f"{name} column '{column}' has NaN or infinite values (first at row {row + 1}: {s[row]}). "
                f"Predict finite values. Received: value={s[row]}"
            )
    if fmt.kind == "label" and comp.task != "regression":
        allowed = {str(v) for v in comp.classes}  # booleans are "True"/"False", as _spelled writes them
        spelled = _spelled(frame[values[0]])
        bad = spelled.filter(~spelled.is_in(list(allowed)))
        if bad.len():
            number = frame[values[0]].cast(pl.Float64, strict=False)
            probabilities = (
                comp.task == "binary" and number.is_between(0, 1).all() and (number != number.round()).any()
            )
            hint = (
                " It holds probabilities: a run under --metric roc_auc or log_loss writes them; check it "
                "with the same --metric (or --config with the run's config.toml)."
                if probabilities
                else ""
            )
            raise InputError(
                f"{name} column '{values[0]}' has label {bad[0]!r}, which {comp.train_path.name} never spells "
                f"that way; expected one of {sorted(allowed)}.{hint} Received: label={bad[0]!r}"
            )
    if fmt.kind == "ranked":
        allowed = {str(v) for v in comp.classes}
        for row, text in enumerate(frame[values[0]].cast(pl.String).to_list()):
            names = text.split(" ")
            # fewer than k is scored too (the missing ranks count nothing), as Kaggle's MAP@k does
            if not 1 <= len(names) <= fmt.k or len(set(names)) != len(names) or not set(names) <= allowed:
                raise InputError(
                    f"{name} column '{values[0]}' has {text!r} at row {row + 1}; the sample file asks for "
                    f"up to {fmt.k} different classes of {comp.train_path.name} a row, most probable first, "
                    f"separated by spaces. Received: value={text!r}"
                )
    if fmt.kind == "value" and comp.metric and metrics.get(comp.metric).log_target:
        numbers = frame[values[0]].cast(pl.Float64, strict=False)
        if (numbers < 0).any():
            row = int((numbers < 0).arg_true()[0])
            raise InputError(
                f"{name} column '{values[0]}' has values below 0 (first at row {row + 1}: {numbers[row]:.6g}); "
                f"{comp.metric} scores log(1 + value), which they do not have. Clip them at 0. "
                f"Received: value={numbers[row]:.6g}"
            )
    if fmt.kind in ("proba", "proba_columns"):
        probs = frame.select(values).cast(pl.Float64).to_numpy()
        low, high = float(probs.min()), float(probs.max())
        if low < 0 or high > 1:
            fix = (
                "They look like percentages: divide them by 100."
                if low >= 0 and high <= 100
                else "Apply a sigmoid or softmax to scores, or clip rounding errors."
            )
            raise InputError(
                f"{name} has probabilities outside [0, 1] (min {low:.4g}, max {high:.4g}). {fix} "
                f"Received: min={low:.4g}, max={high:.4g}"
            )
        if fmt.kind == "proba_columns":
            # a row need not sum to 1: Kaggle's scorer rescales each (rounded probabilities are
            # fine); one of zeros has nothing to rescale
            empty = np.flatnonzero(probs.sum(axis=1) == 0)
            if len(empty):
                raise InputError(
                    f"{name} row {empty[0] + 1} has a probability of 0 for every class ({len(empty)} such "
                    f"row(s)). Predict each class's probability. Received: rows={len(empty)}"
                )


def _header_hint(frame: pl.DataFrame, comp: Competition) -> str:
    """Why the columns are wrong, where it is a usual slip."""
    got, expected = frame.columns, comp.submission.columns
    if got and (got[0] == "" or got[0].startswith("Unnamed")) and got[1:] == expected:
        return " (the first column looks like a pandas index: write the file with index=False)"
    if sorted(got) == sorted(expected):
        return " (the same columns in another order)"
    if [c.lower() for c in got] == [c.lower() for c in expected]:
        return " (spelled with other capitals)"
    if comp.sample is not None and comp.id is not None:
        ids = set(comp.sample_ids().to_list())
        if any(c.strip() in ids for c in got):
            return " (the first row holds values, not column names: the file has no header row)"
    return ""


def _check_ids(frame: pl.DataFrame, comp: Competition, name: str) -> None:
    if comp.id is None:
        if frame.height != comp.test.height:
            raise InputError(
                f"{name} has {frame.height} rows, test has {comp.test.height}. Predict every test row "
                f"once. Received: rows={frame.height}"
            )
        return
    got = id_text(frame[comp.id])
    if got.null_count():
        row = int(got.is_null().arg_true()[0])
        raise InputError(
            f"{name} row {row + 1} has no id in '{comp.id}'. Write every test row's id. Received: id=None"
        )
    if comp.sample is None:
        if frame.height != comp.test.height:
            raise InputError(
                f"{name} has {frame.height} rows, test has {comp.test.height}. Predict every test row "
                f"once. Received: rows={frame.height}"
            )
        if match_ids(frame[comp.id], comp.test[comp.id]) is None:
            raise InputError(
                f"{name} has ids in '{comp.id}' that are not the test file's, or some more than once. "
                f"Write each test id once. Received: rows={frame.height}"
            )
        return
    expected = comp.sample_ids()
    if got.equals(expected):
        return
    repeated = got.filter(got.is_duplicated()) if got.n_unique() < got.len() else got.clear()
    if repeated.len():
        raise InputError(
            f"{name} has id {repeated[0]!r} in '{comp.id}' more than once ({repeated.n_unique()} id(s) "
            f"repeated, {got.len()} rows against the sample file's {expected.len()}). Write each test "
            f"id once. Received: id={repeated[0]!r}"
        )
    extra = got.filter(~got.is_in(expected.implode()))
    if extra.len():
        i = int((got == extra[0]).arg_true()[0])
        alike = expected.filter(id_number(expected) == id_number(extra[:1])[0])
        if alike.len():
            raise InputError(
                f"{name} row {i + 1} has id {extra[0]!r}, which the sample file spells {alike[0]!r}. "
                f"Write the ids as the sample file does. Received: id={extra[0]!r}"
            )
        raise InputError(
            f"{name} row {i + 1} has id {extra[0]!r}, which the sample file does not have ({extra.len()} "
            f"such id(s)). Write only the test ids. Received: id={extra[0]!r}"
        )
    missing = expected.filter(~expected.is_in(got.implode()))
    if missing.len():
        raise InputError(
            f"{name} lacks {missing.len()} of the sample file's ids (such as {missing[0]!r}): "
            f"{got.len()} rows against its {expected.len()}. Predict every test row once. "
            f"Received: rows={got.len()}"
        )
    # the sample's ids in another order: Kaggle's scorer matches the rows by id


def write_submission(frame: pl.DataFrame, comp: Competition, path: str | Path) -> Path:
    """Check the frame against the sample file, then write it atomically; nothing is written if it fails."""
    check_submission(frame, comp)
    write_atomic(path, frame)
    return Path(path)


def validate_file(submission: str | Path, comp: Competition) -> pl.DataFrame:
    """Read a submission file and run the checks Kaggle's would: those kit runs before writing
    one, on the file as it is spelled (ids, labels), plus a comma-separated CSV.

    Blank lines are skipped. Returns the frame, values as numbers, and ids and class labels in the
    test and train files' types where they spell them the same.
    """
    path = Path(submission)
    name = f"'{submission}'"
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(
            f"{name} is empty. Write the sample file's header and a row per test id. Received: bytes=0"
        )
    frame = read_table(path, strings=True)
    if not path.name.lower().endswith((".parquet", ".pq")):
        sep = sniff_delimiter(path)
        if sep != ",":
            shown = {"\t": "tabs", ";": "semicolons"}.get(sep, repr(sep))
            raise InputError(
                f"{name} is separated by {shown}; Kaggle reads comma-separated files. Write it with "
                f"commas (pandas: to_csv(path, index=False)). Received: separator={sep!r}"
            )
    if frame.columns != comp.submission.columns:
        check_submission(frame, comp, name=name)  # the columns' error, with its hint
    if _numeric_kinds(comp):
        for column in [c for c in frame.columns if c != comp.id]:
            s = frame[column]
            number = s.cast(pl.Float64, strict=False)
            text = s.is_not_null() & number.is_null()
            if text.any():
                row = int(text.arg_true()[0])
                raise InputError(
                    f"{name} column '{column}' holds text where Kaggle expects numbers: row {row + 1} "
                    f"has {s[row]!r}. Write a number in every row. Received: value={s[row]!r}"
                )
            frame = frame.with_columns(number.alias(column))
    check_submission(frame, comp, name=name)
    if comp.id is not None and comp.id in comp.test.columns:
        # the ids in the test file's type (it spells them the same for valid files)
        frame = frame.with_columns(_typed(frame[comp.id], comp.test[comp.id].dtype))
    label = comp.submission.value_column
    y = comp.train.get_column(comp.target, default=None)
    if comp.submission.kind == "label" and label in frame.columns and y is not None and y.dtype.is_numeric():
        # class labels written as numbers (titanic's 0 and 1) in the train target's number type
        frame = frame.with_columns(_typed(id_text(frame[label]), y.dtype))
    return frame


def _typed(s: pl.Series, dtype: pl.DataType) -> pl.Series:
    """`s`, text as a file spells it, in `dtype` where that spells every value the same; else `s`."""
    typed = s.cast(dtype, strict=False)
    return typed if typed.null_count() == s.null_count() and id_text(typed).equals(s) else s
