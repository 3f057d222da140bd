"""What a competition asks to predict, from its train and sample files: the target, the task and
its classes (in the order a prediction's columns take), and what the submission looks like.

`kit.competition.discover` calls these in turn; each says what it inferred or changed in `notes`
and raises `InputError` where the files cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kit import metrics
from kit.columns import na_hint
from kit.errors import InputError
from kit.io import read_table

TASKS = ("binary", "multiclass", "regression")
# An integer target with at most this many distinct values is a class label, above it a quantity.
MAX_INT_CLASSES = 10


@dataclass
class SubmissionFormat:
    """What the submission file looks like.

    kind: "label" (the class as spelled in train), "proba" (one column with the positive class's
    probability), "proba_columns" (one probability column per class), "ranked" (the `k` most
    probable classes, most probable first, separated by spaces: MAP@k) or "value" (regression).
    columns: the sample file's columns, id first.
    class_columns: for "proba_columns", the column that holds each class, in class order.
    value_column: for the other kinds, the column the prediction goes in: the target's name,
        or the sample file's own name for it when the sample spells it differently.
    """

    kind: str
    columns: list[str]
    class_columns: list[str] = field(default_factory=list)
    value_column: str | None = None
    k: int = 0  # for "ranked"


def infer_target(train, test, sample, id, target, train_path):
    """Return (target, sample_has_class_columns)."""
    if target is not None:
        if target not in train.columns:
            raise InputError(
                f"Target '{target}' is not a column of '{train_path.name}'. Pass --target with one "
                f"of: {', '.join(train.columns)}. Received: target={target}"
            )
        return target, _has_class_columns(sample, id, target, train)
    absent = [c for c in train.columns if c not in test.columns and c != id]
    if sample is not None:
        wanted = [c for c in sample.columns if c != id]
        in_train = [c for c in wanted if c in train.columns]
        if len(in_train) == 1:
            return in_train[0], False
        if len(in_train) > 1:
            raise _several_targets(in_train, "sample submission")
        for column in absent:
            if _has_class_columns(sample, id, column, train):
                return column, True
    if len(absent) == 1:
        return absent[0], False
    raise InputError(
        f"No target found in '{train_path.name}': "
        + (
            f"several columns are missing from test ({', '.join(absent)})"
            if absent
            else "every column is also in test"
        )
        + ". Pass --target COLUMN."
    )


def booleans_as_spelled(train, target, sample_text, sample_path, train_path, na) -> pl.DataFrame:
    """A true/false target as text, spelled as the competition's files spell it ("true", "True",
    "TRUE"): the labels a submission writes and a check accepts. The sample file's spelling first
    (`sample_text`: the sample read as text), as Kaggle scores it; else the train file's;
    "True"/"False" for a file without one (Parquet)."""
    raw = None
    if sample_text is not None and target in sample_text.columns and sample_path.suffix != ".parquet":
        raw = sample_text[target]
    elif train_path.suffix != ".parquet":
        raw = read_table(train_path, na=na, strings=True)[target]
    seen = raw.drop_nulls() if raw is not None else None
    word = seen[0] if seen is not None and seen.len() else "True"
    case = str.lower if word.islower() else str.upper if word.isupper() else str.title
    return train.with_columns(
        pl.col(target).replace_strict({True: case("true"), False: case("false")}, return_dtype=pl.String)
    )


def codes_as_spelled(train, target, sample_text, train_path, na, notes) -> pl.DataFrame:
    """An integer target that the files spell with leading zeros ("01", "007") as the text it is: a
    code, which a submission must spell as the files do (4 is not "04" to Kaggle's scorer). Train is
    read again as text only where the sample spells a value so."""
    zeros = r"^[+-]?0\d"
    if (
        not train[target].dtype.is_integer()
        or sample_text is None
        or target not in sample_text.columns
        or not sample_text[target].str.contains(zeros).any()
        or train_path.name.lower().endswith(".parquet")
    ):
        return train
    raw = read_table(train_path, na=na, strings=True)[target]
    if raw.len() != train.height or not raw.str.contains(zeros).any():
        return train
    notes.append(
        f"target '{target}' is written with leading zeros ({raw.drop_nulls()[0]!r}, ...): classes, spelled so"
    )
    return train.with_columns(raw.str.strip_chars().alias(target))


def whole_numbers_as_integers(train, target, notes) -> pl.DataFrame:
    """A float target of a few whole numbers (0.0 and 1.0, as pandas writes a 0/1 column that had a
    missing value) as the integers they are, so that it is classes, as an integer target is."""
    y = train[target]
    if not y.dtype.is_float():
        return train
    values = y.drop_nulls()
    if values.n_unique() > MAX_INT_CLASSES or not (values == values.round(0)).all():
        return train
    notes.append(f"target '{target}' holds whole numbers written as decimals ({values.min()}, ...): classes")
    return train.with_columns(pl.col(target).cast(pl.Int64))


def checked_target(train, target, train_path, na, notes) -> pl.DataFrame:
    """The train rows with a target; raises when the target cannot be learned."""
    y = train[target]
    if y.null_count() == y.len():
        raise InputError(
            f"Target '{target}' in '{train_path.name}' is missing in every row{na_hint(train_path, target, na)}, "
            f"so there is nothing to learn. Pass --target with the column to predict. "
            f"Received: rows={y.len()}, missing={y.null_count()}"
        )
    if y.dtype == pl.String:
        values = y.drop_nulls()
        number = values.cast(pl.Float64, strict=False)
        text = values.filter(number.is_null())
        distinct = number.drop_nulls().n_unique()
        # numbers with a word or two among them: a measure (many values) with up to a tenth of its
        # rows spelled as words, or classes written as numbers (0/1) with a word in at most one row
        # a hundred, which would otherwise become a class of its own
        if (
            text.len()
            and text.n_unique() <= 3
            and (
                (distinct > MAX_INT_CLASSES and text.len() <= 0.1 * values.len())
                or (distinct >= 2 and text.len() <= 0.01 * values.len())
            )
        ):
            raise InputError(
                f"Target '{target}' in '{train_path.name}' is numbers except {text.len()} value(s) such "
                f"as {text[0]!r}, so it was read as text. Pass --na {text[0]!r} if that means missing, "
                f"or fix the file. Received: dtype=String"
            )
    if y.dtype == pl.String:
        stripped = y.str.strip_chars()
        changed = int((stripped != y).sum())
        if changed:
            # " no" and "no" are one class; the submission spells it as the sample does, or stripped
            train = train.with_columns(stripped.replace("", None).alias(target))
            notes.append(f"stripped spaces around {changed} value(s) of target '{target}'")
            y = train[target]
    missing = y.null_count()
    if missing:
        train = train.filter(pl.col(target).is_not_null())
        notes.append(f"dropped {missing} train rows with a missing target '{target}'")
    if train[target].n_unique() < 2:
        raise InputError(
            f"Target '{target}' in '{train_path.name}' has a single value{na_hint(train_path, target, na)}, "
            f"so there is nothing to learn. Pass --target with the column to predict. "
            f"Received: value={train[target][0]!r}"
        )
    return train


def check_metric_target(metric: str, y: pl.Series, train_path: Path) -> None:
    if metric == "mape" and y.dtype.is_numeric():
        zeros = int((y == 0).sum())
        if zeros:
            raise InputError(
                f"Metric 'mape' divides each error by the target, but '{y.name}' in '{train_path.name}' is 0 "
                f"in {zeros} row(s), whose errors would be without bound. Pass --metric mae (or rmsle), "
                f"or check the target column. Received: zeros={zeros}"
            )
    if not metrics.get(metric).log_target:
        return
    negative = y.cast(pl.Float64, strict=False) < 0
    if negative.any():
        low = y.filter(negative).min()
        raise InputError(
            f"Metric '{metric}' scores log(1 + target), so it needs a target of 0 or more, but "
            f"'{y.name}' in '{train_path.name}' has {int(negative.sum())} negative value(s) (down to "
            f"{low:.6g}). Pass --metric rmse, or check the target column. Received: min={low:.6g}"
        )


def _has_class_columns(sample, id, target, train) -> bool:
    if sample is None:
        return False
    wanted = [c for c in sample.columns if c != id]
    values = _spellings(train[target])
    if len(wanted) < 2 or len(values) > 1000:
        return False
    names = {c.removeprefix(f"{target}_") for c in wanted}
    return names <= values


def _spellings(y: pl.Series) -> set[str]:
    """A target's values as a sample file's column names may spell them: 1.0 also as "1" (a float
    target of whole numbers is read as the integers it holds)."""
    values = y.drop_nulls().unique()
    out = {str(v) for v in values.to_list()}
    if values.dtype.is_float():
        out |= {str(int(v)) for v in values.to_list() if v == v // 1}
    return out


def infer_task(y: pl.Series) -> tuple[str, list]:
    values = y.drop_nulls()
    distinct = values.n_unique()
    if y.dtype == pl.Boolean or distinct == 2:
        return "binary", sorted(values.unique().to_list())
    if y.dtype == pl.String:
        return "multiclass", sorted(values.unique().to_list())
    if y.dtype.is_integer() and distinct <= MAX_INT_CLASSES:
        return "multiclass", sorted(values.unique().to_list())
    if not y.dtype.is_numeric():
        raise InputError(
            f"Target '{y.name}' has type {y.dtype}, which kit cannot learn. Pass --target with a "
            f"numeric, boolean or text column. Received: dtype={y.dtype}"
        )
    return "regression", []


# labels whose last one in sort order is the positive class as a matter of course
_USUAL_PAIRS = ({"0", "1"}, {"false", "true"}, {"no", "yes"}, {"n", "y"}, {"-1", "1"})


def positive_last(classes: list, task: str, target: str, positive, metric, notes) -> list:
    """A binary target's classes with the positive one last: the one f1 scores and a one-column
    submission's probability is of. `positive` names it; by default the last in sort order, which
    a note names where f1 scores it and the labels are words."""
    if positive is None:
        spelled = {str(c).lower() for c in classes}
        if task == "binary" and metric and metrics.canonical(metric) == "f1" and spelled not in _USUAL_PAIRS:
            notes.append(
                f"f1 scores '{classes[1]}' as the positive class of '{target}' (the last in sort order); "
                f"--positive {classes[0]} names the other"
            )
        return classes
    if task != "binary":
        raise InputError(
            f"--positive names the positive class of a binary target, but '{target}' is {task}. "
            f"Leave --positive out. Received: positive={positive}"
        )
    spelled = [str(c) for c in classes]
    match = [i for i, s in enumerate(spelled) if s == str(positive)] or [
        i for i, s in enumerate(spelled) if s.lower() == str(positive).lower()
    ]
    if not match:
        raise InputError(
            f"--positive '{positive}' is not a class of '{target}' ({', '.join(spelled)}). Pass one of "
            f"them. Received: positive={positive}"
        )
    return [classes[1 - match[0]], classes[match[0]]]


def _several_targets(targets: list[str], where: str) -> InputError:
    return InputError(
        f"The {where} asks for several targets ({', '.join(targets)}); kit predicts one target a run "
        f"and cannot write the others. To predict one of them, copy the competition folder and keep "
        f"only the id and that column in its sample file. Received: targets={targets}"
    )


def sample_fraction(sample, id) -> float | None:
    """A value of the sample's one prediction column that is not a whole number, if it has one."""
    if sample is None:
        return None
    others = [c for c in sample.columns if c != id]
    if len(others) != 1 or not sample[others[0]].dtype.is_float():
        return None
    values = sample[others[0]].drop_nulls()
    fractions = values.filter(values != values.round(0))
    return float(fractions[0]) if fractions.len() else None


def infer_submission(
    sample, id, target, task, classes, per_class, train, sample_path=None, notes=None, *, metric=None
) -> SubmissionFormat:
    # qwk scores whole ratings: a regression's submission writes the rounded ones its CV scored
    ratings = task == "regression" and metric is not None and metrics.get(metric).labels
    if sample is None:
        columns = [c for c in (id, target) if c is not None]
        kind = "value" if task == "regression" and not ratings else "label"
        return SubmissionFormat(kind, columns, value_column=target)
    columns = sample.columns
    others = [c for c in columns if c != id]
    name = sample_path.name if sample_path is not None else "sample file"
    if per_class and task == "regression":
        raise InputError(
            f"The sample file '{name}' has a probability column per value of '{target}', as for classes, "
            f"but {metrics.canonical(metric) if metric else 'the metric'} scores a regression. Pass a "
            f"--metric of classes (log_loss), or fix the sample file. Received: metric={metric}"
        )
    if per_class:
        by_name = {c.removeprefix(f"{target}_"): c for c in others}
        class_columns = [by_name.get(str(c)) for c in classes]
        if None in class_columns:
            missing = [c for c, col in zip(classes, class_columns, strict=True) if col is None]
            raise InputError(
                f"The sample submission has no column for class(es) {missing} of '{target}'. Check "
                f"that the sample file belongs to this competition. Received: columns={columns}"
            )
        extra = [c for c in others if c not in class_columns]
        if extra:
            raise InputError(
                f"The sample file '{name}' has column(s) {extra} besides the id and a probability column "
                f"per class of '{target}'; kit cannot predict them. Remove them from the sample file. "
                f"Received: columns={columns}"
            )
        return SubmissionFormat("proba_columns", columns, class_columns)
    if not others:
        raise InputError(
            f"The sample file '{name}' has only the id column '{id}', so it does not say what to "
            f"predict. Download it again from the competition. Received: columns={columns}"
        )
    if len(others) > 1:
        extra = [c for c in others if c != target]
        named = {c.removeprefix(f"{target}_") for c in others}
        seen = _spellings(train[target])
        if task != "regression" and named - seen and len(named & seen) >= max(1, len(named) // 2):
            # a probability column per class, one of them for a class train never has
            absent = sorted(named - seen)
            if all(a.strip() in seen for a in absent):
                spaced = [c for c in others if c.removeprefix(f"{target}_") in absent]
                raise InputError(
                    f"The sample file '{name}' spells column(s) {spaced} with spaces around the class, "
                    f"which '{target}' of the train file spells {sorted(a.strip() for a in absent)}. Remove "
                    f"the spaces from the sample file's header. Received: columns={columns}"
                )
            raise InputError(
                f"The sample file '{name}' has a probability column per class of '{target}', but "
                f"class(es) {absent} never occur in '{target}' of the train file, so kit cannot learn "
                f"them. Check that the train file is the competition's whole train file. "
                f"Received: columns={columns}"
            )
        if target in others and all(c in train.columns for c in extra):
            raise _several_targets(others, f"sample file '{name}'")
        raise InputError(
            f"The sample file '{name}' has column(s) {extra} besides the id and the target '{target}'; "
            f"kit writes one prediction column. Remove them from the sample file, or pass --target "
            f"with the column to predict. Received: columns={columns}"
        )
    value_column = others[0]
    if value_column != target:
        if value_column in train.columns:
            raise InputError(
                f"The sample file '{name}' asks for '{value_column}', a column of train, but the target "
                f"is '{target}'. Pass --target {value_column}, or fix the sample file. "
                f"Received: target={target}"
            )
        if notes is not None:
            notes.append(
                f"the sample file names the prediction '{value_column}' (train's target is '{target}'); "
                f"the submission uses the sample's name"
            )
    if task == "regression":
        return SubmissionFormat("label" if ratings else "value", columns, value_column=value_column)
    spelled = {str(v) for v in train[target].drop_nulls().unique().to_list()}
    shown = {str(v) for v in sample[value_column].drop_nulls().unique().to_list()}
    if sample[value_column].dtype == pl.Boolean:  # read as true/false, whichever case the file has
        spelled, shown = {v.lower() for v in spelled}, {v.lower() for v in shown}
    if task == "multiclass" and not (shown and shown <= spelled):
        # "14-35-14 10-26-26 Urea": the k most probable classes, for MAP@k
        tokens = sample[value_column].drop_nulls().cast(pl.String).str.split(" ")
        sizes = tokens.list.len()
        if tokens.len() and sizes.min() == sizes.max() >= 2 and set(tokens.explode().to_list()) <= spelled:
            return SubmissionFormat("ranked", columns, value_column=value_column, k=int(sizes.max()))
    if shown and shown <= spelled:
        scores_probabilities = bool(metric) and not metrics.get(metric).labels
        if task == "binary" and sample[value_column].dtype.is_numeric() and scores_probabilities:
            # 0s and 1s (Santander's 0 in every row) hold a probability as well; the metric scores
            # probabilities, so they are what the submission holds
            if notes is not None:
                notes.append(
                    f"the sample file's '{value_column}' shows {' and '.join(sorted(shown))}; "
                    f"{metrics.canonical(metric)} scores probabilities, so the submission holds them"
                )
            return SubmissionFormat("proba", columns, value_column=value_column)
        if scores_probabilities and notes is not None:
            notes.append(
                f"the sample file's '{value_column}' holds labels, so the submission does, but "
                f"{metrics.canonical(metric)} scores probabilities: the CV is the probabilities', and "
                f"labels score worse"
            )
        return SubmissionFormat("label", columns, value_column=value_column)
    numbers = sample[value_column].drop_nulls().cast(pl.Float64, strict=False)
    if task == "binary" and shown and metric and metrics.get(metric).labels:
        # the metric scores labels, and the sample spells them as none of train's ("0" for "no")
        raise InputError(
            f"The sample file '{name}' shows {', '.join(sorted(shown))} in '{value_column}', none of the "
            f"labels of '{target}' in the train file ({', '.join(sorted(spelled))}), and "
            f"{metrics.canonical(metric)} scores labels, so kit cannot tell how the submission spells them. "
            f"Write '{target}' in the train file as the sample file does, or pass a --metric that scores "
            f"probabilities if the competition scores them. Received: metric={metric}"
        )
    if task == "multiclass" or numbers.null_count():
        # one column holding a probability cannot describe several classes, nor hold text
        return SubmissionFormat("label", columns, value_column=value_column)
    return SubmissionFormat("proba", columns, value_column=value_column)
