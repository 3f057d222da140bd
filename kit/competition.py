"""Find a competition's files and infer what it asks for: id, target, task, submission format, roles.

Every inference can be overridden (`target=`, `id=`, `metric=`, ...); what was inferred, dropped or
overridden is kept in `Competition.notes` so that `kit inspect` can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kit import metrics
from kit.columns import (
    ROLES,
    check_derived_names,
    check_ids,
    check_sample_rows,
    check_time_column,
    describe_parts,
    id_text,
    infer_parts,
    infer_roles,
    infinities_as_missing,
    is_datetime,
    na_hint,
    placeholders_as_missing,
)
from kit.errors import InputError
from kit.io import OTHER_TABLES, TABLE_SUFFIXES, read_table

TASKS = ("binary", "multiclass", "regression")
# An integer target with at most this many distinct values is a class label, above it a quantity.
MAX_INT_CLASSES = 10
SAVED_INDEX = re.compile(r"^Unnamed: \d+$")
SAMPLE_HINTS = ("sample", "submission")


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


@dataclass
class Competition:
    """A competition folder, read and understood. Build it with `discover`."""

    name: str
    root: Path
    train_path: Path
    test_path: Path
    sample_path: Path | None
    train: pl.DataFrame
    test: pl.DataFrame
    sample: pl.DataFrame | None
    id: str | None
    target: str
    task: str
    classes: list
    submission: SubmissionFormat
    metric: str
    roles: dict[str, str]
    group: str | None = None
    time: str | None = None
    notes: list[str] = field(default_factory=list)
    # text column -> {"sep": delimiter, "roles": role of each field}; see `infer_parts`
    parts: dict[str, dict] = field(default_factory=dict)
    # the sample file's ids as text, as the file spells them ("001", "1.0"); see `sample_ids`
    sample_id_text: pl.Series | None = None

    @property
    def features(self) -> list[str]:
        """Raw columns used as model inputs (constant and all-missing ones are left out)."""
        return [c for c, r in self.roles.items() if r not in ("constant", "missing")]

    def columns_with_role(self, *roles: str) -> list[str]:
        return [c for c, r in self.roles.items() if r in roles]

    def target_values(self):
        """The training target as numpy: class indices for classification, floats for regression."""
        y = self.train[self.target]
        if self.task == "regression":
            return y.cast(pl.Float64).to_numpy()
        lookup = {value: i for i, value in enumerate(self.classes)}
        return y.replace_strict(lookup, return_dtype=pl.Int32).to_numpy()

    def sample_ids(self) -> pl.Series | None:
        """The sample file's ids spelled as in the file, which the submission writes; None
        without a sample file or an id column."""
        if self.sample is None or self.id is None:
            return None
        if self.sample_id_text is not None:
            return self.sample_id_text
        return id_text(self.sample[self.id])

    def test_ids(self) -> pl.Series:
        if self.id is not None:
            return self.test[self.id]
        return pl.Series("row", range(self.test.height))

    def summary(self) -> list[tuple[str, str]]:
        """Rows for `kit inspect`: (what, value)."""
        rows = [
            ("competition", self.name),
            ("train", f"{self.train_path.name} ({self.train.height} rows, {self.train.width} columns)"),
            ("test", f"{self.test_path.name} ({self.test.height} rows)"),
            ("sample", self.sample_path.name if self.sample_path else "(none: id + target columns)"),
            ("id", self.id or "(none: row order)"),
            ("target", self.target),
            ("task", self.task),
        ]
        if self.task != "regression":
            rows.append(("classes", ", ".join(map(str, self.classes))))
        rows += [
            ("submission", f"{self.submission.kind}: {', '.join(self.submission.columns)}"),
            ("metric", f"{self.metric} ({metrics.get(self.metric).direction})"),
        ]
        if self.group:
            rows.append(("group", self.group))
        if self.time:
            rows.append(("time", self.time))
        for role in ROLES:
            cols = self.columns_with_role(role)
            if cols:
                rows.append((f"role: {role}", ", ".join(cols)))
        for column, info in self.parts.items():
            rows.append((f"parts: {column}", describe_parts(column, info)))
        return rows


def _pick_sample(tables: list[Path], notes: list[str] | None) -> Path | None:
    """The sample submission among the folder's tables: a name with "sample" in it, then one with
    "submission" in it (Titanic's gender_submission.csv), then submission.csv itself (the name a
    submission of the user's saved beside the data has most often); a CSV before Parquet. When
    several are alike, a note names the one taken."""
    names = [p.name.lower() for p in tables]
    ranked = [
        [p for p, n in zip(tables, names, strict=True) if "sample" in n],
        [
            p
            for p, n in zip(tables, names, strict=True)
            if "submission" in n and n.split(".")[0] != "submission"
        ],
        [p for p, n in zip(tables, names, strict=True) if n.split(".")[0] == "submission"],
    ]
    alike = next((group for group in ranked if group), [])
    if not alike:
        return None
    alike = sorted(alike, key=lambda p: (not p.name.lower().endswith(".csv"), p.name))
    others = [p.name for p in alike[1:] if p.stem.lower() != alike[0].stem.lower()]
    if others and notes is not None:
        notes.append(
            f"took '{alike[0].name}' as the sample submission, not {', '.join(repr(n) for n in others)}; "
            f"move the other file(s) out of the folder if that is wrong"
        )
    return alike[0]


def find_files(root: Path, notes: list[str] | None = None) -> tuple[Path, Path, Path | None]:
    """Find the train, test and sample-submission files in a competition folder."""
    if root.is_file():
        raise InputError(
            f"'{root}' is a file; kit takes the competition folder that holds it (train.csv, "
            f"test.csv and the sample submission). Pass '{root.parent}'. Received: path={root}"
        )
    if not root.is_dir():
        raise InputError(
            f"Competition folder '{root}' does not exist. Pass the folder that holds train.csv "
            f"and test.csv. Received: path={root}"
        )
    try:
        entries = sorted(root.iterdir())
    except OSError as err:
        raise InputError(
            f"Competition folder '{root}' cannot be read ({err.strerror}). Check its permissions. "
            f"Received: path={root}"
        ) from None
    tables = [p for p in entries if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES)]

    def pick(kind: str, candidates: list[Path]) -> Path | None:
        exact = [p for p in candidates if p.name.lower().split(".")[0] == kind]
        loose = [p for p in candidates if kind in p.name.lower()]
        found = exact or loose
        if len(found) > 1:
            # prefer CSV when both a CSV and a Parquet copy are there
            found = sorted(found, key=lambda p: (not p.name.lower().endswith(".csv"), p.name))
        return found[0] if found else None

    sample = _pick_sample(tables, notes)
    rest = [p for p in tables if p != sample]
    train, test = pick("train", rest), pick("test", rest)
    if (
        (train is None or test is None)
        and (root / "metrics.json").is_file()
        and (root / "oof.parquet").is_file()
    ):
        raise InputError(
            f"'{root}' is a run folder kit wrote, not a competition folder. Pass the folder with the "
            f"competition's train and test files. Received: path={root}"
        )
    if train is None or test is None:
        missing = "train" if train is None else "test"
        fix = ""
        for suffixes, how in OTHER_TABLES.items():
            found = [p.name for p in entries if p.name.lower().endswith(suffixes)]
            if found:
                fix = " " + how.format(", ".join(found))
                break
        raise InputError(
            f"No {missing} file in '{root}': expected a file named like {missing}.csv or "
            f"{missing}.parquet.{fix} Received: files={[p.name for p in entries][:12]}"
        )
    return train, test, sample


def discover(
    path: str | Path,
    *,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: tuple[str, ...] = (),
    group: str | None = None,
    time: str | None = None,
    positive: str | None = None,
) -> Competition:
    """Read a competition folder and infer id, target, task, submission format and column roles.

    Args:
        path: folder with train, test and (usually) a sample submission, CSV or Parquet.
        target, id, metric, group, time: override what would be inferred.
        na: extra strings that mean "missing" in these files.

    Returns:
        A `Competition`; raises `InputError` with the file or column and the fix when the folder
        cannot be used.

    Example:
        >>> comp = discover("data/titanic")
        >>> comp.target, comp.task, comp.metric
        ('Survived', 'binary', 'accuracy')
    """
    root = Path(path)
    notes: list[str] = []
    train_path, test_path, sample_path = find_files(root, notes)
    train = read_table(train_path, na=na, notes=notes)
    test = read_table(test_path, na=na, notes=notes)
    sample = read_table(sample_path, na=na, notes=notes) if sample_path else None

    if test.height == 0:
        raise InputError(f"Test file '{test_path}' has no rows. Download it again from the competition.")
    if train.height == 0:
        raise InputError(f"Train file '{train_path}' has no rows. Download it again from the competition.")

    unnamed = [c for c in train.columns if not c.strip()]
    if unnamed:
        # a header cell left empty: pandas' saved index (to_csv without index=False) most often
        train, test = train.drop(unnamed), test.drop([c for c in unnamed if c in test.columns])
        notes.append(
            f"dropped {len(unnamed)} column(s) without a name in '{train_path.name}' (a saved index?)"
        )
    # the name pandas gives such a column when it reads the file back, and then saves it again
    saved_index = [
        c
        for c in train.columns
        if SAVED_INDEX.match(c)
        and c != id
        and c in test.columns
        and (sample is None or c not in sample.columns)
    ]
    if saved_index:
        train, test = train.drop(saved_index), test.drop(saved_index)
        notes.append(
            f"dropped {', '.join(repr(c) for c in saved_index)}: pandas' name for a saved row index "
            f"(pass --id to keep it as the id)"
        )
    id = _infer_id(train, test, sample, id, test_path, sample_path)
    target, per_class = _infer_target(train, test, sample, id, target, train_path)
    if target == id:
        raise InputError(
            f"'{target}' is both the id column and the target. Pass --target with the column to "
            f"predict, or --id with the id column. Received: target={target}, id={id}"
        )
    check_ids(train, test, id, train_path, test_path, na)
    train, test = placeholders_as_missing(train, test, exclude={id, target}, notes=notes)
    train, test = infinities_as_missing(train, test, exclude={id}, paths=(train_path, test_path), notes=notes)
    train = _checked_target(train, target, train_path, na, notes)
    # the sample as its file spells it: the ids and labels a submission writes
    sample_text = read_table(sample_path, na=na, strings=True) if sample is not None else None
    if train[target].dtype == pl.Boolean:
        train = _booleans_as_spelled(train, target, sample_text, sample_path, train_path, na)
    train = _whole_numbers_as_integers(train, target, notes)

    task, classes = _infer_task(train[target])
    if metric and train[target].dtype.is_numeric() and task != "regression":
        # a few integer values (counts, 0/1) scored by a regression metric: the user says it is one
        scorer = metrics.get(metric)
        if task not in scorer.tasks and "regression" in scorer.tasks:
            task, classes = "regression", []
            notes.append(f"target '{target}' has few integer values; {scorer.name} scores it as a regression")
    if (
        task == "multiclass"
        and train[target].dtype.is_numeric()
        and not per_class
        and (not metric or "regression" in metrics.get(metric).tasks)
        and (fraction := _sample_fraction(sample, id)) is not None
    ):
        # a class is never 1.5: the sample file shows a quantity
        task, classes = "regression", []
        notes.append(
            f"target '{target}' has few integer values, but the sample file holds {fraction:g}: a regression"
        )
    if task != "regression" and len(classes) > max(20, train.height // 2):
        raise InputError(
            f"Target '{target}' in '{train_path.name}' has {len(classes)} different values in "
            f"{train.height} rows: as classes, most would be seen once, so there is nothing to learn "
            f"per class. Pass --target with the column to predict. Received: classes={len(classes)}"
        )
    classes = _positive_last(classes, task, target, positive, metric, notes)
    submission = _infer_submission(
        sample, id, target, task, classes, per_class, train, sample_path, notes, metric=metric
    )
    sample_id_text = None
    if sample is not None and id is not None:
        # as text too: the submission writes the ids as the sample spells them ("001", "1.0")
        sample_id_text = id_text(sample_text[id])
    if sample is not None:
        check_sample_rows(sample, sample_id_text, test, id, sample_path, test_path)
    metric = metrics.canonical(metric) if metric else metrics.default_for(task, submission.kind, submission.k)
    metrics.check(metric, task)
    _check_metric_target(metric, train[target], train_path)

    leaked = [c for c in train.columns if c not in test.columns and c not in (target, id)]
    if leaked:
        notes.append(f"dropped {', '.join(leaked)}: in train but not in test (would leak)")
    for flag, column in (("--group", group), ("--time", time)):
        if column is not None and column not in train.columns:
            raise InputError(
                f"Column '{column}' is not in '{train_path.name}'. Pass {flag} with one of its columns: "
                f"{', '.join(train.columns[:12])}. Received: column={column}"
            )
        if column is not None and column == target:
            raise InputError(
                f"{flag} '{column}' is the target: folds split on it would each validate on a single "
                f"target value. Pass {flag} with another column. Received: {flag[2:]}={column}"
            )
    if time is not None:
        check_time_column(train[time], train_path)
    unusable = [
        c
        for c in train.columns
        if c in test.columns
        and c not in (target, id)
        and (train[c].dtype.is_nested() or train[c].dtype in (pl.Binary, pl.Object))
    ]
    for column in unusable:
        notes.append(f"dropped '{column}': a {train[column].dtype} column, which kit cannot use")
    roles = infer_roles(train, test, exclude={target, id, *leaked, *unusable}, paths=(train_path, test_path))
    if id is not None and id in test.columns and id in train.columns and is_datetime(train[id]):
        roles[id] = "datetime"
        notes.append(f"id column '{id}' is a timestamp: its parts (hour, weekday, ...) are used as features")
    for column, role in roles.items():
        if role in ("constant", "missing"):
            notes.append(f"dropped '{column}': {'all missing' if role == 'missing' else 'constant'}")
        elif test[column].null_count() == test.height:
            # learned from train, it would meet only imputed values in test: predictions off by its effect
            roles[column] = "missing"
            notes.append(
                f"dropped '{column}': all missing in '{test_path.name}', so no test row could use it"
            )
    if group is not None and group in roles:
        notes.append(f"group column '{group}' splits the folds and is also a feature")
    parts = infer_parts(train, roles)
    for column, info in parts.items():
        notes.append(f"split '{column}' on '{info['sep']}' into {describe_parts(column, info)}")
    check_derived_names(roles, parts, train_path)
    return Competition(
        name=root.resolve().name,
        root=root,
        train_path=train_path,
        test_path=test_path,
        sample_path=sample_path,
        train=train,
        test=test,
        sample=sample,
        id=id,
        target=target,
        task=task,
        classes=classes,
        submission=submission,
        metric=metric,
        roles=roles,
        group=group,
        time=time,
        notes=notes,
        parts=parts,
        sample_id_text=sample_id_text,
    )


def _infer_id(train, test, sample, id, test_path, sample_path):
    if id is not None:
        if id not in test.columns:
            raise InputError(
                f"Id column '{id}' is not in '{test_path.name}'. Pass --id with one of its columns: "
                f"{', '.join(test.columns[:8])}. Received: id={id}"
            )
        if sample is not None and id not in sample.columns:
            ours = next((c for c in sample.columns if c in test.columns), None)
            fix = f"Pass --id {ours} (or leave --id out)" if ours else "Pass --id with the sample's id column"
            raise InputError(
                f"Id column '{id}' is not a column of the sample file '{sample_path.name}' "
                f"({', '.join(sample.columns[:8])}), whose ids and order the submission follows. {fix}. "
                f"Received: id={id}"
            )
        return id
    if sample is not None:
        # the sample's id is its column that test has too (the first one, as Kaggle writes them)
        shared = [c for c in sample.columns if c in test.columns]
        if shared:
            return shared[0]
        spelled = {c.strip().lower(): c for c in test.columns}
        first = sample.columns[0]
        if first.strip().lower() in spelled:
            raise InputError(
                f"The sample file '{sample_path.name}' names its id column {first!r}, "
                f"'{test_path.name}' spells it {spelled[first.strip().lower()]!r}. Rename one so they match "
                f"(the submission uses the sample's spelling). Received: sample_id={first}"
            )
        raise InputError(
            f"The sample file '{sample_path.name}' shares no column with '{test_path.name}', so its "
            f"ids cannot be matched to the test rows: its first column should be the test file's id "
            f"column. Check that it belongs to this competition. Received: columns={sample.columns[:8]}"
        )
    # No sample file: a unique column named like an id, present in both files.
    for column in test.columns:
        if column.lower() in ("id", "row_id", "index") or column.lower().endswith("id"):
            if column in train.columns and test[column].n_unique() == test.height:
                return column
    return None


def _infer_target(train, test, sample, id, target, train_path):
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
            raise InputError(
                f"The sample submission asks for several targets ({', '.join(in_train)}); kit "
                f"predicts one at a time. Pass --target with one of them. Received: targets={in_train}"
            )
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


def _booleans_as_spelled(train, target, sample_text, sample_path, train_path, na) -> pl.DataFrame:
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


def _whole_numbers_as_integers(train, target, notes) -> pl.DataFrame:
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


def _checked_target(train, target, train_path, na, notes) -> pl.DataFrame:
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
        if (
            text.len()
            and number.drop_nulls().n_unique() > MAX_INT_CLASSES
            and text.n_unique() <= 3
            and text.len() <= 0.1 * values.len()
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


def _check_metric_target(metric: str, y: pl.Series, train_path: Path) -> None:
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


def _infer_task(y: pl.Series) -> tuple[str, list]:
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


def _positive_last(classes: list, task: str, target: str, positive, metric, notes) -> list:
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


def _sample_fraction(sample, id) -> float | None:
    """A value of the sample's one prediction column that is not a whole number, if it has one."""
    if sample is None:
        return None
    others = [c for c in sample.columns if c != id]
    if len(others) != 1 or not sample[others[0]].dtype.is_float():
        return None
    values = sample[others[0]].drop_nulls()
    fractions = values.filter(values != values.round(0))
    return float(fractions[0]) if fractions.len() else None


def _infer_submission(
    sample, id, target, task, classes, per_class, train, sample_path=None, notes=None, *, metric=None
) -> SubmissionFormat:
    if sample is None:
        columns = [c for c in (id, target) if c is not None]
        kind = "value" if task == "regression" else "label"
        return SubmissionFormat(kind, columns, value_column=target)
    columns = sample.columns
    others = [c for c in columns if c != id]
    name = sample_path.name if sample_path is not None else "sample file"
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
            raise InputError(
                f"The sample file '{name}' has a probability column per class of '{target}', but "
                f"class(es) {absent} never occur in '{target}' of the train file, so kit cannot learn "
                f"them. Check that the train file is the competition's whole train file. "
                f"Received: columns={columns}"
            )
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
        return SubmissionFormat("value", columns, value_column=value_column)
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
    if task == "multiclass" or numbers.null_count():
        # one column holding a probability cannot describe several classes, nor hold text
        return SubmissionFormat("label", columns, value_column=value_column)
    return SubmissionFormat("proba", columns, value_column=value_column)
