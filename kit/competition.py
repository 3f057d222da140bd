"""Find a competition's files and infer what it asks for: id, target, task, submission format, roles.

Every inference can be overridden (`target=`, `id=`, `metric=`, ...); what was inferred, dropped or
overridden is kept in `Competition.notes` so that `kit inspect` can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kit import metrics
from kit.derive import parse_datetime, part_name, split_parts
from kit.errors import InputError
from kit.io import TABLE_SUFFIXES, read_table

TASKS = ("binary", "multiclass", "regression")
ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "constant", "missing")
# Above this many distinct values a string column is high-cardinality text (integer index + embedding).
MAX_CATEGORIES = 32
# An integer target with at most this many distinct values is a class label, above it a quantity.
MAX_INT_CLASSES = 10
SAMPLE_HINTS = ("sample", "submission")


@dataclass
class SubmissionFormat:
    """What the submission file looks like.

    kind: "label" (the class as spelled in train), "proba" (one column with the positive class's
    probability), "proba_columns" (one probability column per class) or "value" (regression).
    columns: the sample file's columns, id first.
    class_columns: for "proba_columns", the column that holds each class, in class order.
    """

    kind: str
    columns: list[str]
    class_columns: list[str] = field(default_factory=list)


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


def find_files(root: Path) -> tuple[Path, Path, Path | None]:
    """Find the train, test and sample-submission files in a competition folder."""
    if not root.is_dir():
        raise InputError(
            f"Competition folder '{root}' does not exist. Pass the folder that holds train.csv "
            f"and test.csv. Received: path={root}"
        )
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES))

    def pick(kind: str, candidates: list[Path]) -> Path | None:
        exact = [p for p in candidates if p.name.lower().split(".")[0] == kind]
        loose = [p for p in candidates if kind in p.name.lower()]
        found = exact or loose
        if len(found) > 1:
            # prefer CSV when both a CSV and a Parquet copy are there
            found = sorted(found, key=lambda p: (not p.name.lower().endswith(".csv"), p.name))
        return found[0] if found else None

    sample = next((p for p in tables if any(h in p.name.lower() for h in SAMPLE_HINTS)), None)
    rest = [p for p in tables if p != sample]
    train, test = pick("train", rest), pick("test", rest)
    if train is None or test is None:
        missing = "train" if train is None else "test"
        raise InputError(
            f"No {missing} file in '{root}': expected a file named like {missing}.csv or "
            f"{missing}.parquet. Received: files={[p.name for p in tables]}"
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
    train_path, test_path, sample_path = find_files(root)
    train = read_table(train_path, na=na)
    test = read_table(test_path, na=na)
    sample = read_table(sample_path, na=na) if sample_path else None
    notes: list[str] = []

    if test.height == 0:
        raise InputError(f"Test file '{test_path}' has no rows. Download it again from the competition.")
    if train.height == 0:
        raise InputError(f"Train file '{train_path}' has no rows. Download it again from the competition.")

    id = _infer_id(train, test, sample, id, test_path)
    target, per_class = _infer_target(train, test, sample, id, target, train_path)
    for name, frame, where in ((id, train, train_path), (id, test, test_path)):
        if name is not None and name in frame.columns and frame[name].is_duplicated().any():
            dup = frame.filter(frame[name].is_duplicated())[name][0]
            raise InputError(
                f"Column '{name}' in '{where.name}' has duplicate ids (e.g. {dup!r}); ids must be "
                f"unique. Pass --id with the right column or remove the duplicates. Received: id={name}"
            )

    missing_target = train[target].null_count()
    if missing_target:
        train = train.filter(pl.col(target).is_not_null())
        notes.append(f"dropped {missing_target} train rows with a missing target '{target}'")
    if train[target].n_unique() < 2:
        raise InputError(
            f"Target '{target}' in '{train_path.name}' has a single value, so there is nothing to "
            f"learn. Pass --target with the column to predict. Received: value={train[target][0]!r}"
        )

    task, classes = _infer_task(train[target])
    submission = _infer_submission(sample, id, target, task, classes, per_class, train)
    metric = metric or metrics.default_for(task, submission.kind)
    metrics.check(metric, task)

    leaked = [c for c in train.columns if c not in test.columns and c not in (target, id)]
    if leaked:
        notes.append(f"dropped {', '.join(leaked)}: in train but not in test (would leak)")
    for column in (group, time):
        if column is not None and column not in train.columns:
            raise InputError(
                f"Column '{column}' is not in '{train_path.name}'. Pass --group/--time with one of "
                f"its columns. Received: column={column}"
            )
    roles = _infer_roles(train, test, exclude={target, id, *leaked}, test_path=test_path)
    if id is not None and id in test.columns and _is_datetime(train[id]):
        roles[id] = "datetime"
        notes.append(f"id column '{id}' is a timestamp: its parts (hour, weekday, ...) are used as features")
    for column, role in roles.items():
        if role in ("constant", "missing"):
            notes.append(f"dropped '{column}': {'all missing' if role == 'missing' else 'constant'}")
    if group is not None and group in roles:
        notes.append(f"group column '{group}' splits the folds and is also a feature")
    parts = infer_parts(train, roles)
    for column, info in parts.items():
        notes.append(f"split '{column}' on '{info['sep']}' into {describe_parts(column, info)}")
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
    )


def _infer_id(train, test, sample, id, test_path):
    if id is not None:
        if id not in test.columns:
            raise InputError(
                f"Id column '{id}' is not in '{test_path.name}'. Pass --id with one of its columns: "
                f"{', '.join(test.columns[:8])}. Received: id={id}"
            )
        return id
    if sample is not None and sample.columns[0] in test.columns:
        return sample.columns[0]
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


def _has_class_columns(sample, id, target, train) -> bool:
    if sample is None:
        return False
    wanted = [c for c in sample.columns if c != id]
    values = {str(v) for v in train[target].drop_nulls().unique().to_list()}
    if len(wanted) < 2 or len(values) > 1000:
        return False
    names = {c.removeprefix(f"{target}_") for c in wanted}
    return names <= values


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


def _infer_submission(sample, id, target, task, classes, per_class, train) -> SubmissionFormat:
    if sample is None:
        columns = [c for c in (id, target) if c is not None]
        kind = "value" if task == "regression" else "label"
        return SubmissionFormat(kind, columns)
    columns = sample.columns
    if per_class:
        by_name = {c.removeprefix(f"{target}_"): c for c in columns if c != id}
        class_columns = [by_name.get(str(c)) for c in classes]
        if None in class_columns:
            missing = [c for c, col in zip(classes, class_columns, strict=True) if col is None]
            raise InputError(
                f"The sample submission has no column for class(es) {missing} of '{target}'. Check "
                f"that the sample file belongs to this competition. Received: columns={columns}"
            )
        return SubmissionFormat("proba_columns", columns, class_columns)
    if task == "regression":
        return SubmissionFormat("value", columns)
    spelled = {str(v) for v in train[target].drop_nulls().unique().to_list()}
    shown = {str(v) for v in sample[target].drop_nulls().unique().to_list()}
    if shown and shown <= spelled:
        return SubmissionFormat("label", columns)
    if task == "multiclass":
        # one column holding a probability cannot describe several classes
        return SubmissionFormat("label", columns)
    return SubmissionFormat("proba", columns)


def _is_datetime(s: pl.Series) -> bool:
    if s.dtype in (pl.Date, pl.Datetime):
        return True
    if s.dtype != pl.String:
        return False
    values = s.drop_nulls().head(1000)
    if values.len() == 0 or not values.str.contains(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return parse_datetime(values).null_count() == 0


def _kind(dtype) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "number"
    return "text"


def _infer_roles(train, test, *, exclude, test_path) -> dict[str, str]:
    roles = {}
    for column in train.columns:
        if column in exclude or column not in test.columns:
            continue
        s = train[column]
        if _kind(s.dtype) != _kind(test[column].dtype) and test[column].null_count() < test.height:
            if _kind(s.dtype) == "number":
                bad = test[column].drop_nulls().cast(pl.String)
                bad = bad.filter(bad.cast(pl.Float64, strict=False).is_null())
                example = f" such as {bad[0]!r}" if bad.len() else ""
                raise InputError(
                    f"Column '{column}' is numeric in train but text in '{test_path.name}' (values"
                    f"{example}). Pass --na {bad[0]!r} if that means missing, or fix the file. "
                    f"Received: dtype={test[column].dtype}"
                    if bad.len()
                    else f"Column '{column}' is numeric in train but text in '{test_path.name}'. "
                    f"Fix the file. Received: dtype={test[column].dtype}"
                )
            raise InputError(
                f"Column '{column}' is {s.dtype} in train but {test[column].dtype} in "
                f"'{test_path.name}'. Fix the file or pass --na with the token that marks missing "
                f"values. Received: dtype={test[column].dtype}"
            )
        distinct = s.drop_nulls().n_unique()
        if s.null_count() == s.len():
            roles[column] = "missing"
        elif distinct == 1 and s.null_count() == 0:
            roles[column] = "constant"
        elif s.dtype == pl.Boolean or distinct <= 2:
            roles[column] = "boolean"
        elif _is_datetime(s):
            roles[column] = "datetime"
        elif s.dtype.is_numeric():
            roles[column] = "numeric"
        elif distinct <= MAX_CATEGORIES:
            roles[column] = "categorical"
        else:
            roles[column] = "text"
    return roles


DELIMITERS = ("/", "_", "-", "|", ":", ";")
MAX_PARTS = 4


def infer_parts(train: pl.DataFrame, roles: dict[str, str]) -> dict[str, dict]:
    """High-cardinality strings made of a fixed number of delimited fields, such as a cabin
    "F/4/S" (deck, number, side), and the role of each field.

    A column qualifies when at least 95% of its values hold the same number (1 to 3) of one
    delimiter and at least one field is a number or has few values: those fields carry what an
    embedding of the whole, mostly rare, string cannot. `kit.derive.derive` adds the fields as
    columns `<column>__1`, `<column>__2`, ...; the whole string stays a feature too.
    """
    parts = {}
    for column, role in roles.items():
        if role != "text" or train[column].dtype != pl.String:
            continue
        values = train[column].drop_nulls()
        for sep in DELIMITERS:
            counts = values.str.count_matches(sep, literal=True)
            n = int(counts.median())
            if not 1 <= n < MAX_PARTS or (counts == n).mean() < 0.95:
                continue
            fields = split_parts(values, sep, n + 1)
            part_roles = [_part_role(f) for f in fields]
            if any(r in ("numeric", "categorical") for r in part_roles):
                parts[column] = {"sep": sep, "roles": part_roles}
                break
    return parts


def describe_parts(column: str, info: dict) -> str:
    return ", ".join(f"{part_name(column, i)} ({r})" for i, r in enumerate(info["roles"]))


def _part_role(s: pl.Series) -> str:
    values = s.drop_nulls().filter(s.drop_nulls() != "")
    if values.n_unique() <= 1:
        return "constant"
    if values.cast(pl.Float64, strict=False).null_count() <= 0.05 * values.len():
        return "numeric"
    return "categorical" if values.n_unique() <= MAX_CATEGORIES else "text"
