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
    NUMERIC_DATE,
    ROLES,
    check_derived_names,
    check_ids,
    check_sample_rows,
    check_time_column,
    compact,
    describe_parts,
    id_number,
    id_text,
    infer_parts,
    infer_roles,
    infinities_as_missing,
    is_datetime,
    placeholders_as_missing,
    unseen_categories,
)
from kit.errors import InputError
from kit.io import OTHER_TABLES, TABLE_SUFFIXES, read_table
from kit.task import (
    SubmissionFormat,
    booleans_as_spelled,
    check_metric_target,
    checked_target,
    codes_as_spelled,
    infer_submission,
    infer_target,
    infer_task,
    positive_last,
    sample_fraction,
    whole_numbers_as_integers,
)

SAVED_INDEX = re.compile(r"^Unnamed: \d+$")


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
    there are several, a note names the one taken."""
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
    # a sample-like file of another name too (titanic's gender_submission.csv beside a sample_...);
    # not submission.csv, the name of the user's own submissions
    later = [p for group in ranked[ranked.index(alike) + 1 : 2] for p in group]
    alike = sorted(alike, key=lambda p: (not p.name.lower().endswith(".csv"), p.name))
    others = [p.name for p in [*alike[1:], *later] if p.stem.lower() != alike[0].stem.lower()]
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
    # tables beside them that kit does not read (a second train file, an original dataset, a copy
    # in another format); other sample-like files have their note from _pick_sample
    unused = [
        p.name
        for p in rest
        if p not in (train, test) and not any(w in p.name.lower() for w in ("sample", "submission"))
    ]
    if unused and notes is not None:
        notes.append(
            f"kit trains on '{train.name}' and predicts '{test.name}'; {', '.join(map(repr, unused[:4]))}"
            f"{' and more' if len(unused) > 4 else ''} in the folder are not read (to train on another "
            f"file's rows too, add them to '{train.name}')"
        )
    return train, test, sample


def _check_output_names(id, target, task, classes, train_path) -> None:
    """The id and the target keep their names in oof.parquet, beside the columns kit adds there
    ("fold", "prediction", "proba_<class>"): one of those names would overwrite the other."""
    ours = ["fold", *(["prediction"] if task == "regression" else [f"proba_{c}" for c in classes])]
    for role, column in (("id", id), ("target", target)):
        if column in ours:
            raise InputError(
                f"The {role} column '{column}' of '{train_path.name}' has the name of a column kit writes "
                f"beside it in oof.parquet ({', '.join(ours[:3])}{', ...' if len(ours) > 3 else ''}). Rename "
                f"it in the competition's files (train, test and sample). Received: {role}={column}"
            )


def _shares_values(train: pl.Series, test: pl.Series) -> bool:
    """Whether a value of test's column occurs in train's, as one spelling of a number where it is
    one (7, 7.0 and "7" meet: a column with missing values is read as floats in one file only)."""
    seen = id_number(train.drop_nulls()).unique()
    return bool(id_number(test.drop_nulls()).is_in(seen.implode()).any())


def _all_later(train_s: pl.Series, test_s: pl.Series) -> bool:
    from kit.derive import parse_datetime

    if train_s.dtype == test_s.dtype == pl.String:
        # ISO text sorts as time does: two values parsed, not every row
        train_s, test_s = (
            pl.Series([train_s.max()], dtype=pl.String),
            pl.Series([test_s.min()], dtype=pl.String),
        )
    first, last = parse_datetime(test_s).min(), parse_datetime(train_s).max()
    return first is not None and last is not None and first > last


def _day_or_month_first(s: pl.Series) -> bool:
    values = s.drop_nulls().head(1000)
    return s.dtype == pl.String and values.len() > 0 and values.str.contains(NUMERIC_DATE).all()


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
        # a header cell left empty: pandas' saved index (to_csv without index=False) most often, or
        # a trailing comma on every line (a column with no value at all)
        empty = all(train[c].null_count() == train.height for c in unnamed)
        train, test = train.drop(unnamed), test.drop([c for c in unnamed if c in test.columns])
        notes.append(
            f"dropped {len(unnamed)} column(s) without a name in '{train_path.name}' "
            + ("(empty: a comma ending every line?)" if empty else "(a saved index?)")
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
    target, per_class = infer_target(train, test, sample, id, target, train_path)
    if target == id:
        raise InputError(
            f"'{target}' is both the id column and the target. Pass --target with the column to "
            f"predict, or --id with the id column. Received: target={target}, id={id}"
        )
    check_ids(train, test, id, train_path, test_path, na)
    train, test = placeholders_as_missing(train, test, exclude={id, target}, notes=notes)
    train, test = infinities_as_missing(train, test, exclude={id}, paths=(train_path, test_path), notes=notes)
    # the sample as its file spells it: the ids and labels a submission writes
    sample_text = read_table(sample_path, na=na, strings=True) if sample is not None else None
    train = codes_as_spelled(train, target, sample_text, train_path, na, notes)
    train = checked_target(train, target, train_path, na, notes)
    if train[target].dtype == pl.Boolean:
        train = booleans_as_spelled(train, target, sample_text, sample_path, train_path, na)
    train = whole_numbers_as_integers(train, target, notes)

    task, classes = infer_task(train[target])
    if metric and train[target].dtype.is_numeric() and task != "regression":
        # a few integer values (counts, 0/1) scored by a regression metric: the user says it is one
        scorer = metrics.get(metric)
        if task not in scorer.tasks and "regression" in scorer.tasks:
            task, classes = "regression", []
            notes.append(f"target '{target}' has few integer values; {scorer.name} scores it as a regression")
    if metric and task == "regression" and train[target].dtype.is_integer():
        # many integer values scored by a metric of classes (accuracy, log_loss): the user says they are
        scorer = metrics.get(metric)
        if "regression" not in scorer.tasks and "multiclass" in scorer.tasks:
            task, classes = "multiclass", sorted(train[target].drop_nulls().unique().to_list())
            notes.append(
                f"target '{target}' has {len(classes)} integer values; {scorer.name} scores them as classes"
            )
    if per_class and task == "regression" and train[target].dtype.is_integer():
        # many integer values, and the sample file a probability column for each: they are classes
        if not metric or "multiclass" in metrics.get(metric).tasks:
            task, classes = "multiclass", sorted(train[target].drop_nulls().unique().to_list())
            notes.append(
                f"target '{target}' has {len(classes)} integer values, and the sample file a "
                f"probability column for each: they are classes"
            )
    if (
        task == "multiclass"
        and train[target].dtype.is_numeric()
        and not per_class
        and (not metric or "regression" in metrics.get(metric).tasks)
        and (fraction := sample_fraction(sample, id)) is not None
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
            f"per class. Pass --target with the column to predict"
            + (
                f", or, for a quantity, a regression metric (--metric rmse) instead of {metric}"
                if metric and train[target].dtype.is_numeric()
                else ""
            )
            + f". Received: classes={len(classes)}"
        )
    if (
        metric
        and metrics.canonical(metric) == "qwk"
        and task == "multiclass"
        and train[target].dtype == pl.String
    ):
        shown = ", ".join(str(c) for c in classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise InputError(
            f"qwk scores ratings in their order, but '{target}' in '{train_path.name}' holds text "
            f"({shown}), whose order kit cannot know. Write the ratings as whole numbers in the train "
            f"file (0 for the lowest), or pass another --metric. Received: metric={metric}"
        )
    classes = positive_last(classes, task, target, positive, metric, notes)
    _check_output_names(id, target, task, classes, train_path)
    submission = infer_submission(
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
    check_metric_target(metric, train[target], train_path)

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
    # a group whose test values are all new (other patients, other series): what a model learns of
    # each group applies to no test row, and fits the training rows by their group instead
    new_groups = (
        group is not None
        and group != id
        and group in test.columns
        and not _shares_values(train[group], test[group])
    )  # an id is never a feature: nothing to drop
    if new_groups:
        notes.append(
            f"dropped '{group}' as a feature: none of its values in '{test_path.name}' occurs in "
            f"'{train_path.name}' (new groups), so no test row could use what is learned of a group"
        )
    unusable = [
        c
        for c in train.columns
        if c in test.columns
        and c not in (target, id)
        and (train[c].dtype.is_nested() or train[c].dtype in (pl.Binary, pl.Object))
    ]
    for column in unusable:
        notes.append(f"dropped '{column}': a {train[column].dtype} column, which kit cannot use")
    roles = infer_roles(
        train, test, exclude={target, id, *leaked, *unusable, *([group] if new_groups else [])},
        paths=(train_path, test_path),
    )  # fmt: skip
    if id is not None and id in test.columns and id in train.columns and is_datetime(train[id]):
        roles[id] = "datetime"
        notes.append(f"id column '{id}' is a timestamp: its parts (hour, weekday, ...) are used as features")
    for column, role in roles.items():
        if role in ("constant", "missing") and column == group:
            pass  # as a feature it goes; the split says what it does with the group (kit.preflight)
        elif role in ("constant", "missing"):
            notes.append(f"dropped '{column}': {'all missing' if role == 'missing' else 'constant'}")
        elif test[column].null_count() == test.height:
            # learned from train, it would meet only imputed values in test: predictions off by its effect
            roles[column] = "missing"
            notes.append(
                f"dropped '{column}': all missing in '{test_path.name}', so no test row could use it"
            )
    if group is not None and roles.get(group) not in (None, "constant", "missing"):
        # what the split does with it depends on --split: kit.preflight says so
        notes.append(f"group column '{group}' is also a feature")
    if time is None:
        for column in [c for c, r in roles.items() if r == "datetime"]:
            if _all_later(train[column], test[column]):
                notes.append(
                    f"every test row's '{column}' is later than train's: a forecast, which --time {column} "
                    f"validates as the leaderboard will (on later rows), where k-fold CV flatters"
                )
                break
    notes.extend(
        unseen_categories(train, test, [c for c, r in roles.items() if r == "categorical" and c != group])
    )
    parts = infer_parts(train, roles)
    for column, info in parts.items():
        notes.append(f"split '{column}' on '{info['sep']}' into {describe_parts(column, info)}")
    for column, role in roles.items():
        if role in ("categorical", "text") and _day_or_month_first(train[column]):
            notes.append(
                f"'{column}' holds dates written day or month first ({train[column].drop_nulls()[0]!r}); "
                f"kit takes datetime parts (year, month, weekday, ...) from dates written YYYY-MM-DD only"
            )
    check_derived_names(roles, parts, train_path)
    # every check above reads the columns as read; the run holds them compact
    compact(train, test, roles, keep={id, target, group, time})
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
        numbers = sample[first].cast(pl.Int64, strict=False)
        for start in (0, 1):
            if sample.height == test.height and numbers.equals(
                pl.Series(first, range(start, start + test.height))
            ):
                raise InputError(
                    f"'{test_path.name}' has no id column: the sample file '{sample_path.name}' numbers its "
                    f"rows ({first!r} {start} to {start + test.height - 1}). Add that column to "
                    f"'{test_path.name}' (its rows numbered in order from {start}), so that kit can match "
                    f"the submission's rows to them. Received: sample_id={first}"
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
