"""What each column of a competition is, and the checks of its columns and ids.

Roles (numeric, categorical, boolean, datetime, high-cardinality text, constant, all-missing),
delimited strings split into fields, datetimes told from text, infinities read as missing, and ids
matched however the files spell them (1, 1.0, "001"). `kit.competition.discover` calls these; each
check raises `InputError` naming the file, the column and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from kit.derive import UTC_OFFSET, parse_datetime, parse_wall_clock, part_name, split_parts
from kit.errors import InputError
from kit.io import read_table

ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "constant", "missing")
# Above this many distinct values a string column is high-cardinality text (integer index + embedding).
MAX_CATEGORIES = 32


def na_hint(path: Path, column: str, na) -> str:
    """How --na tokens turned values of a column into missing ones (the reason behind a target
    that looks empty or single-valued), or ""."""
    if not na:
        return ""
    raw = read_table(path, strings=True)[column]
    hits = {token: int((raw == token).sum()) for token in na}
    hits = {t: n for t, n in hits.items() if n}
    if not hits:
        return ""
    said = ", ".join(f"--na {t!r} made {n} of its values missing" for t, n in hits.items())
    return f" ({said}: pass --na only with tokens that mean missing)"


def check_ids(train, test, id, train_path, test_path, na) -> None:
    if id is None:
        return
    for frame, where in ((train, train_path), (test, test_path)):
        if id not in frame.columns:
            continue
        s = frame[id]
        if where is test_path and s.null_count():
            row = int(s.is_null().arg_true()[0])
            raise InputError(
                f"Column '{id}' in '{where.name}' has {s.null_count()} missing id(s) (first at row "
                f"{row + 1}){na_hint(where, id, na)}; every test row needs its id. Fix the file or pass "
                f"--id with the right column. Received: id={id}"
            )
        if s.n_unique() < s.len():  # is_duplicated() takes 100 bytes a row (800 MB at 7.5M rows)
            dup = frame.filter(s.is_duplicated())[id][0]
            raise InputError(
                f"Column '{id}' in '{where.name}' has duplicate ids (e.g. {dup!r}); ids must be "
                f"unique. Pass --id with the right column or remove the duplicates. Received: id={id}"
            )


# beyond float32's range (about 3.4e38) a value is infinite to the networks, which compute in float32
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _infinite(s: pl.Series) -> pl.Series:
    return s.is_infinite() | (s.abs() > FLOAT32_MAX)


def infinities_as_missing(train, test, *, exclude, paths, notes):
    """inf and -inf (Parquet floats, or a CSV's "inf" text, which polars leaves as text), and
    values beyond float32's range (1e39), which the exported model reads as inf, become missing
    values, with a note naming the columns. A text column is read as numbers only when every value
    is one and some are infinite: other text stays text."""
    counts: dict[str, list[str]] = {}
    frames = [train, test]
    for i, (frame, path) in enumerate(zip(frames, paths, strict=True)):
        for column in frame.columns:
            if column in exclude:
                continue
            s = frame[column]
            if s.dtype == pl.String:
                number = s.cast(pl.Float64, strict=False)
                if number.null_count() != s.null_count() or not _infinite(number).any():
                    continue
                s = number
            elif not s.dtype.is_float() or not _infinite(s).any():
                continue
            n = int(_infinite(s).sum())
            frames[i] = frames[i].with_columns(pl.when(_infinite(s)).then(None).otherwise(s).alias(column))
            counts.setdefault(column, []).append(f"{path.name}: {n}")
    if counts:
        said = "; ".join(f"'{c}' ({', '.join(where)})" for c, where in counts.items())
        notes.append(f"read inf, -inf and values beyond ±3.4e38 as missing values in {said}")
    return frames[0], frames[1]


# a numeric column's placeholders for "no value" (Telco's " " in TotalCharges, "?", "-"): at most
# this many distinct ones, in at most this share of the values, among at least this many numbers
PLACEHOLDERS, PLACEHOLDER_SHARE, PLACEHOLDER_NUMBERS = 3, 0.05, 20


def placeholders_as_missing(train, test, *, exclude, notes):
    """A text column that is numbers but for a few placeholder values (in train, test or both)
    becomes a numeric column with those values missing, with a note naming them. Read as text, each
    number would be a category of its own. Too many numbers are needed for codes ("1", "2", "XL")
    to qualify, and too few placeholders for a text column to."""
    frames = [train, test]
    said, kept = [], []
    for column in train.columns:
        if column in exclude or column not in test.columns:
            continue
        if train[column].dtype != pl.String and test[column].dtype != pl.String:
            continue
        # each distinct value once, with its count in train and test (10M values read one by one
        # took 400 MB a column)
        counts = (
            pl.concat(
                [
                    f[column].cast(pl.String).drop_nulls().alias("value").value_counts(name="rows")
                    for f in frames
                ]
            )
            .group_by("value")
            .agg(pl.col("rows").sum())
        )
        number = counts["value"].str.strip_chars().cast(pl.Float64, strict=False)
        token = number.is_null()
        n_values, n_tokens = counts["rows"].sum(), counts["rows"].filter(token).sum()
        if not (
            0 < n_tokens < n_values / 2
            and token.sum() <= PLACEHOLDERS
            and number.drop_nulls().n_unique() >= PLACEHOLDER_NUMBERS
        ):
            continue
        shown = ", ".join(repr(t) for t in sorted(counts["value"].filter(token).to_list()))
        if n_tokens > PLACEHOLDER_SHARE * n_values:  # too many to be sure: said, not done
            kept.append((column, shown, n_tokens / n_values))
            continue
        for i, frame in enumerate(frames):
            frames[i] = frame.with_columns(
                pl.col(column).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            )
        said.append(f"'{column}' ({shown} in {n_tokens} row(s))")
    if said:
        notes.append(
            f"read as numbers, with placeholders as missing values: {'; '.join(said)} "
            f"(--na names such values for every column)"
        )
    for column, shown, share in kept:
        notes.append(
            f"'{column}' is read as text: it holds numbers but for {shown} in {share:.0%} of its values; "
            f"if that means a missing value, pass --na with it to read the column as numbers"
        )
    return frames[0], frames[1]


# a date written with its day and month first, as "31/12/2024", "12/31/2024", "31.12.2024" or
# "31-12-2024", with an optional time "23:59[:59]"
NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
DOTTED_DATE = r"^\s*\d{1,2}\.\d{1,2}\.\d{4}"
ISO_MONTH = r"^\s*\d{4}-\d{1,2}\s*$"  # ISO 8601's month, "2016-06": its first day


def parse_time_column(s: pl.Series) -> pl.Series:
    """A time column's values as datetimes: ISO dates (`kit.derive.parse_datetime`), or dates whose
    day and month come first. Those are month first ("12/31/2024", as pandas reads them) unless a
    first field above 12 shows the day is ("31/12/2024"), or the fields are dotted: "01.02.2024" is
    the 1st of February wherever dates are written so. What does not parse becomes null.

    Only for ordering rows in time; as features such dates stay text split into their fields.
    """
    if s.dtype in (pl.Date, pl.Datetime):
        return s.cast(pl.Datetime)
    text = s.cast(pl.String)
    values = text.drop_nulls()
    if values.len() and values.str.contains(ISO_MONTH).all():
        return (text.str.strip_chars() + "-01").str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime)
    if values.len() == 0 or not values.str.contains(NUMERIC_DATE).all():
        return parse_datetime(text)
    fields = text.str.extract_groups(NUMERIC_DATE).struct.unnest()
    first, second = (fields[str(i)].cast(pl.Int64) for i in (1, 2))
    day_first = bool((first > 12).any()) or bool(values.str.contains(DOTTED_DATE).all())
    day, month = (first, second) if day_first else (second, first)
    clock = [fields[str(i)].cast(pl.Int64).fill_null(0) for i in (4, 5, 6)]
    iso = pl.select(
        pl.format(
            "{}-{}-{} {}:{}:{}",
            fields["3"],
            month.cast(pl.String).str.zfill(2),
            day.cast(pl.String).str.zfill(2),
            *(c.cast(pl.String).str.zfill(2) for c in clock),
        )
    ).to_series()
    return iso.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).alias(s.name)


def check_time_column(s: pl.Series, train_path: Path) -> None:
    if s.dtype.is_numeric() or s.dtype in (pl.Date, pl.Datetime):
        return
    values = s.drop_nulls()
    offset = values.cast(pl.String).str.contains(UTC_OFFSET)
    # only where the rows with an offset are times: a name ending in "z" is not one
    if offset.any() and not offset.all() and not parse_time_column(values.filter(offset)).null_count():
        raise InputError(
            f"--time column '{s.name}' in '{train_path.name}' writes a UTC offset in some rows "
            f"({values.filter(offset)[0]!r}) and none in others ({values.filter(~offset)[0]!r}), so their "
            f"order is unknown. Write every time with its offset, or none. Received: dtype={s.dtype}"
        )
    parsed = parse_time_column(values.cast(pl.String)) if values.len() else values
    if values.len() == 0 or parsed.null_count():
        bad = values.filter(parsed.is_null())[0] if values.len() else None
        raise InputError(
            f"--time column '{s.name}' in '{train_path.name}' is neither numbers nor dates "
            f"(e.g. {bad!r}), so rows cannot be put in time order. Pass --time with a date or "
            f"number column. Received: dtype={s.dtype}"
        )


def check_sample_rows(sample, sample_id_text, test, id, sample_path, test_path) -> None:
    """The sample file's ids are the test file's, once each, however each file spells them."""
    if sample.height == 0:
        raise InputError(
            f"The sample file '{sample_path.name}' has no rows, so it cannot say which test rows to "
            f"predict. Download it again from the competition. Received: rows=0"
        )
    if id is None:
        if sample.height != test.height:
            raise InputError(
                f"The sample file '{sample_path.name}' has {sample.height} rows, '{test_path.name}' has "
                f"{test.height}, and neither has an id column to match them by. Check that both files "
                f"belong to this competition. Received: sample_rows={sample.height}"
            )
        return
    s = sample_id_text
    if s.null_count():
        row = int(s.is_null().arg_true()[0])
        raise InputError(
            f"The sample file '{sample_path.name}' has {s.null_count()} row(s) without an id in "
            f"'{id}' (first at row {row + 1}). Download it again from the competition. Received: id={id}"
        )
    if s.n_unique() < s.len():
        dup = sample.filter(s.is_duplicated())[id][0]
        raise InputError(
            f"The sample file '{sample_path.name}' lists id {dup!r} more than once; Kaggle scores each "
            f"test row once. Download it again from the competition. Received: id={dup!r}"
        )
    if match_ids(test[id], s) is None:
        test_keys, sample_keys = set(id_text(test[id]).to_list()), set(id_text(s).to_list())
        only_sample = sorted(sample_keys - test_keys)
        only_test = sorted(test_keys - sample_keys)
        parts = []
        if only_sample:
            parts.append(f"{len(only_sample)} of the sample's ids are not in test (e.g. {only_sample[0]!r})")
        if only_test:
            parts.append(f"{len(only_test)} of test's ids are not in the sample (e.g. {only_test[0]!r})")
        raise InputError(
            f"The sample file '{sample_path.name}' and '{test_path.name}' have different ids in "
            f"'{id}': {' and '.join(parts)}. Check that both files belong to the same competition "
            f"and version. Received: sample_rows={sample.height}, test_rows={test.height}"
        )


def id_text(s: pl.Series) -> pl.Series:
    """Ids as text, as a file spells them (surrounding spaces dropped)."""
    return s.cast(pl.String).str.strip_chars()


def id_number(s: pl.Series) -> pl.Series:
    """Ids as one spelling of their number where they are numbers: 1, 1.0, "1.0" and "001" are all
    "1"; other ids as text."""
    text = id_text(s)
    number = (s if s.dtype.is_numeric() else text).cast(pl.Float64, strict=False)
    whole = number.is_finite() & (number == number.round(0)) & (number.abs() < 2.0**53)
    return (
        pl.select(
            pl.when(whole.fill_null(False))
            .then(number.cast(pl.Int64, strict=False).cast(pl.String))
            .when(number.is_not_null())
            .then(number.cast(pl.String))
            .otherwise(text)
        )
        .to_series()
        .alias(s.name)
    )


def match_ids(a: pl.Series, b: pl.Series) -> tuple[pl.Series, pl.Series] | None:
    """Keys under which two files' ids are the same set, or None where they are not.

    The ids as spelled first; where the files spell numbers differently (test "1.0", sample "1";
    sample "001", test 1), as numbers, if that keeps each file's ids apart; where they spell
    moments differently (a Parquet timestamp, "2011-05-01 00:00:00" in a CSV), as moments.
    """
    for key in (id_text, id_number, id_moment):
        ka, kb = key(a), key(b)
        # sorted and compared in polars: Python sets of 2.5M ids took 700 MB
        if ka.len() == kb.len() == ka.n_unique() and ka.sort().equals(kb.sort()):  # then kb's are unique too
            return ka, kb
    return None


def id_moment(s: pl.Series) -> pl.Series:
    """Ids that are moments (a timestamp column, or ISO-like text) as one spelling of the moment;
    other ids as text."""
    text = id_text(s)
    if not (s.dtype in (pl.Date, pl.Datetime) or s.dtype == pl.String):
        return text
    stamp = parse_wall_clock(s if s.dtype != pl.String else text)
    return stamp.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").fill_null(text).alias(s.name)


def is_datetime(s: pl.Series) -> bool:
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


def infer_roles(train, test, *, exclude, paths) -> dict[str, str]:
    roles = {}
    for column in train.columns:
        if column in exclude or column not in test.columns:
            continue
        s = train[column]
        check_same_kind(s, test[column], paths)
        distinct = s.drop_nulls().n_unique()
        if s.null_count() == s.len():
            roles[column] = "missing"
        elif distinct == 1 and s.null_count() == 0:
            roles[column] = "constant"
        elif s.dtype == pl.Boolean or distinct <= 2:
            roles[column] = "boolean"
        elif is_datetime(s):
            roles[column] = "datetime"
            check_test_dates(s, test[column], paths)
        elif s.dtype.is_numeric():
            roles[column] = "numeric"
        elif distinct <= MAX_CATEGORIES:
            roles[column] = "categorical"
        else:
            roles[column] = "text"
    return roles


def check_test_dates(train_s: pl.Series, test_s: pl.Series, paths) -> None:
    """A datetime column's test values are dates too: written otherwise ("01/15/2017" against train's
    "2017-01-15"), they would lose their parts (year, month, ...) and every test row its season."""
    if test_s.null_count() == test_s.len():
        return
    parsed = parse_datetime(test_s.cast(pl.String) if test_s.dtype not in (pl.Date, pl.Datetime) else test_s)
    bad = test_s.filter(parsed.is_null() & test_s.is_not_null())
    if bad.len():
        example = train_s.drop_nulls()[0]
        raise InputError(
            f"Column '{train_s.name}' holds dates written as {str(example)!r} in '{paths[0].name}', but "
            f"{bad.len()} of {test_s.len()} of its values in '{paths[1].name}' are not dates written so "
            f"(such as {str(bad[0])!r}): their date parts would be lost. Write them as train does, or pass "
            f"--na {str(bad[0])!r} if that means missing. Received: value={str(bad[0])!r}"
        )


def check_same_kind(train_s: pl.Series, test_s: pl.Series, paths) -> None:
    """A column is numbers, booleans or text in both files (an all-missing column is any kind)."""
    kinds = (_kind(train_s.dtype), _kind(test_s.dtype))
    if kinds[0] == kinds[1] or train_s.null_count() == train_s.len() or test_s.null_count() == test_s.len():
        return
    column = train_s.name
    if "number" in kinds and "text" in kinds:
        which = 0 if kinds[0] == "text" else 1
        text, path = (train_s, test_s)[which], paths[which]
        other = "test" if which == 0 else "train"
        bad = text.drop_nulls().cast(pl.String)
        bad = bad.filter(bad.cast(pl.Float64, strict=False).is_null())
        if bad.len():
            raise InputError(
                f"Column '{column}' is numeric in {other} but text in '{path.name}' (values such "
                f"as {bad[0]!r}). Pass --na {bad[0]!r} if that means missing, or fix the file. "
                f"Received: dtype={text.dtype}"
            )
    dtypes = (train_s.dtype, test_s.dtype)
    raise InputError(
        f"Column '{column}' is {dtypes[0]} in '{paths[0].name}' but {dtypes[1]} in '{paths[1].name}'. "
        f"Fix the file or pass --na with the token that marks missing values. Received: dtype={dtypes[1]}"
    )


# the share of test rows with a category train never has above which discovery says so (a rare
# new value in a few rows is usual)
UNSEEN_NOTE_SHARE = 0.01


def unseen_categories(train, test, columns: list[str]) -> list[str]:
    """Notes on categorical columns whose test rows have values train never has, where they are
    UNSEEN_NOTE_SHARE of the test rows or more: the model can only take them as unseen."""
    notes = []
    for column in columns:
        seen = train[column].drop_nulls().cast(pl.String).unique().implode()
        values = test[column].drop_nulls().cast(pl.String)
        new = values.filter(~values.is_in(seen))
        if new.len() >= max(1, UNSEEN_NOTE_SHARE * test.height):
            notes.append(
                f"{new.len()} test row(s) have a value of '{column}' that train never has (such as "
                f"{new[0]!r}): the model takes them as an unseen category"
            )
    return notes


# a text feature of at most this many distinct values (train and test) is held as an enum's codes
# (1, 2 or 4 bytes a row) rather than polars' strings (16 bytes a row and up): 10M rows of a few
# text columns take gigabytes as strings
ENUM_UP_TO = 1 << 16
# float32 holds every whole number up to this; beyond it neighbours merge (16777217 reads as
# 16777216, a timestamp in seconds to the nearest 128), so a column with larger values keeps 64 bits
FLOAT32_EXACT = 2**24


def _largest(s: pl.Series) -> float:
    """The largest magnitude in a numeric column (0 for one without values), without an |s| copy."""
    low, high = s.min(), s.max()
    return 0.0 if low is None else max(abs(float(low)), abs(float(high)))


def compact(train: pl.DataFrame, test: pl.DataFrame, roles: dict[str, str], *, keep=()) -> None:
    """Hold train's and test's feature columns in compact types, in place (each column's old values
    let go before the next is cast): numbers as float32 where no value is beyond FLOAT32_EXACT
    (the precision the networks compute in; values beyond float32's range are already missing)
    and text as `pl.Enum` of train's and test's values sorted (so it sorts, compares and casts to
    text as the strings do). The id, target and `keep` columns stay as read."""
    for column, role in roles.items():
        if column in keep or column not in test.columns:
            continue
        a, b = train[column], test[column]
        if role == "numeric" and a.dtype.is_numeric() and b.dtype.is_numeric():
            if a.dtype == b.dtype == pl.Float32 or max(_largest(a), _largest(b)) > FLOAT32_EXACT:
                continue
            dtype = pl.Float32
        elif role in ("categorical", "boolean", "text", "datetime") and a.dtype == b.dtype == pl.String:
            values = pl.concat([a.unique(), b.unique()]).drop_nulls().unique()
            if values.len() > ENUM_UP_TO:
                continue
            dtype = pl.Enum(values.sort())
        else:
            continue
        del a, b
        for frame in (train, test):
            frame.replace_column(frame.get_column_index(column), frame[column].cast(dtype))


def check_derived_names(roles: dict[str, str], parts: dict[str, dict], train_path: Path) -> None:
    """The columns kit derives (a datetime's parts, a text's fields) must not take a name that a
    column of the file already has: the model would see one of the two only."""
    from kit.derive import DATETIME_PARTS

    made: dict[str, str] = {}
    for column, role in roles.items():
        if role == "datetime":
            made.update(
                {f"{column}__{part}": f"the {part} of datetime column '{column}'" for part in DATETIME_PARTS}
            )
        for i in range(len(parts.get(column, {}).get("roles", []))):
            made[part_name(column, i)] = f"field {i + 1} of column '{column}'"
    for column in roles:
        if column in made:
            raise InputError(
                f"Column '{column}' in '{train_path.name}' has the name kit gives {made[column]}. Rename "
                f"the column. Received: column={column}"
            )


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
