"""Derived columns: raw columns -> model columns, learning nothing, in polars and in TensorFlow.

Datetime strings become their parts (year, month, ..., elapsed days), delimited strings such as a
cabin "F/4/S" their fields, booleans and numbers-as-categories their text. Nothing is learned, so
train, validation and test go through it alike.

`derive` is the polars version that training uses; `derive_graph` is the same in TensorFlow ops,
so an exported model takes the competition's raw columns and cannot drift from what training saw
(the test suite checks both against each other on real data). Keep the two side by side: a change
to one is a change to the other.

Missing values travel as NaN in numeric columns and as "" (`MISSING`) in string columns: polars
reads an empty CSV field as null, so "" never is a real value.
"""

from __future__ import annotations

import polars as pl

from kit.errors import InputError

MISSING = ""
# the text of booleans and of a datetime's categorical parts (month 1-12, weekday 1-7, hour 0-23)
# as enums of fixed values, sorted as text: the same type in train and test, 1 byte a row
BOOLEAN_TEXT = pl.Enum(["false", "true"])
PART_TEXT = pl.Enum(sorted(str(v) for v in range(32)))
# datetime parts that act like categories (one-hot) rather than quantities
DATETIME_PARTS = {
    "year": ("numeric", lambda d: d.dt.year()),
    "month": ("categorical", lambda d: d.dt.month()),
    "day": ("numeric", lambda d: d.dt.day()),
    "weekday": ("categorical", lambda d: d.dt.weekday()),
    "hour": ("categorical", lambda d: d.dt.hour()),
    "dayofyear": ("numeric", lambda d: d.dt.ordinal_day()),
    "elapsed_days": ("numeric", lambda d: d.dt.epoch("d")),
}


def is_datetime_part(column: str) -> bool:
    """Whether a derived column is a datetime's part (`when__dayofyear`). Such parts get no quantile
    bins: a later test period's dates lie at or beyond the training dates' range, where bins
    would only replay the level of the training period's last stretch (bike-sharing-demand's CV
    rmsle 0.451 -> 0.415 in the advanced track without them)."""
    head, sep, part = column.rpartition("__")
    return bool(head and sep) and part in DATETIME_PARTS


def parse_datetime(s: pl.Series) -> pl.Series:
    """Parse ISO-like date or datetime strings; unparsable values become null."""
    if s.dtype in (pl.Date, pl.Datetime):
        return s.cast(pl.Datetime)
    try:
        parsed = s.str.to_datetime(strict=False)
        if parsed.null_count() <= s.null_count():
            return parsed
        return s.str.to_date(strict=False).cast(pl.Datetime)
    except pl.exceptions.ComputeError:  # no date format fits any value: none is a date
        return pl.Series(s.name, [None] * s.len(), dtype=pl.Datetime)


# a UTC offset or zone letter ending an ISO datetime: "+02:00", "-0530", "Z"
UTC_OFFSET = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"


def parse_wall_clock(s: pl.Series) -> pl.Series:
    """`parse_datetime`, but read on the clock as written: "2021-06-01T14:30:00+02:00" is 14:30,
    and a datetime with a time zone reads in its zone, not in UTC. A datetime's parts are the
    local hour, day and weekday people lived by (a rush hour at 8 stays at 8 across a change of
    summer time), and the exported model reads the same digits from the text it is given."""
    if s.dtype == pl.Datetime and s.dtype.time_zone is not None:
        return s.dt.replace_time_zone(None)
    if s.dtype == pl.Enum:  # `kit.columns.compact`'s text: each value parsed once, placed by its code
        return parse_wall_clock(s.dtype.categories).gather(s.to_physical()).alias(s.name)
    if s.dtype == pl.String:
        s = s.str.replace(UTC_OFFSET, "")
    return parse_datetime(s)


def split_parts(s: pl.Series, sep: str, n: int) -> list[pl.Series]:
    """The first `n` fields of each value split on `sep`; fields a value lacks are missing."""
    fields = s.cast(pl.String).str.split_exact(sep, n - 1).struct.unnest()
    return [fields[f"field_{i}"] for i in range(n)]


def part_name(column: str, i: int) -> str:
    return f"{column}__{i + 1}"


def derive(
    frame: pl.DataFrame, roles: dict[str, str], parts: dict[str, dict] | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Model columns from raw columns; learns nothing, so train and test go through it alike.

    Args:
        frame: raw rows (train or test).
        roles: raw column -> role, from `Competition.roles`.
        parts: text column -> its delimited fields, from `Competition.parts`; each field that is
            not constant becomes a column of its own (`Cabin` "F/4/S" -> `Cabin__1` "F", ...).

    Returns:
        (frame, roles) where every column is a number (Float32, or Float64 where the raw column
        is not float32) with role "numeric" (infinities and text that is not a number become
        missing), or text (String, or an Enum: `kit.columns.compact`)
        with role "categorical" (few values: one-hot) or "text" (many values: integer index +
        embedding).
    """
    columns, out_roles = [], {}
    for column, role in roles.items():
        s = frame[column]
        if role in ("constant", "missing"):
            continue
        if role == "numeric":
            # text that is not a number (a test file's stray "n/a") and infinities are missing; a
            # float32 column without them is the raw one, not a copy (`kit.columns.compact` left
            # the others in 64 bits for their large values, or never saw them: raw text)
            number = s if s.dtype == pl.Float32 else s.cast(pl.Float64, strict=False)
            if number.is_infinite().any():
                number = number.replace([float("inf"), float("-inf")], None)
            if number.is_nan().any():
                number = number.fill_nan(None)
            columns.append(number.alias(column))
            out_roles[column] = "numeric"
        elif role in ("categorical", "boolean", "text"):
            text = BOOLEAN_TEXT if s.dtype == pl.Boolean else pl.String
            columns.append(s if s.dtype == pl.Enum else s.cast(pl.String).cast(text))
            out_roles[column] = "text" if role == "text" else "categorical"
        elif role == "datetime":
            stamp = parse_wall_clock(s)
            for part, (part_role, fn) in DATETIME_PARTS.items():
                values = fn(stamp)
                name = f"{column}__{part}"
                if part_role == "numeric":
                    columns.append(values.cast(pl.Float32).alias(name))
                else:
                    columns.append(values.cast(pl.String).cast(PART_TEXT).alias(name))
                out_roles[name] = part_role
        else:
            raise InputError(f"Unknown role '{role}' for column '{column}'. Received: role={role}")
        if parts and column in parts:
            info = parts[column]
            for i, (field, part_role) in enumerate(
                zip(split_parts(s, info["sep"], len(info["roles"])), info["roles"], strict=True)
            ):
                name = part_name(column, i)
                if part_role == "numeric":
                    columns.append(field.cast(pl.Float64, strict=False).alias(name))
                elif part_role in ("categorical", "text"):
                    columns.append(field.replace("", None).alias(name))
                else:
                    continue
                out_roles[name] = part_role
    return pl.DataFrame(columns), out_roles


# ---------------------------------------------------------------------------------------------
# The same in the graph: what an exported model takes, and the TensorFlow ops that derive it


def raw_spec(
    roles: dict[str, str], train: pl.DataFrame, parts: dict[str, dict] | None = None
) -> dict[str, dict]:
    """What the exported model takes per raw column: its role and the input's kind.

    kind "float": a float64 input, NaN for missing (numeric columns, and boolean columns stored
    as numbers, as "int" when the train file holds integers); "string": everything else, ""
    for missing. A text column split into delimited fields (`Competition.parts`) also carries
    them as "parts".
    """
    spec = {}
    for column, role in roles.items():
        if role in ("constant", "missing"):
            continue
        dtype = train[column].dtype
        if dtype.is_numeric() and role in ("numeric", "boolean", "categorical"):
            kind = "int" if dtype.is_integer() and role != "numeric" else "float"
        else:
            kind = "string"
        spec[column] = {"role": role, "kind": kind}
        if parts and column in parts and kind == "string":
            spec[column]["parts"] = parts[column]
    return spec


def derive_graph(raw: dict, spec: dict[str, dict]) -> dict:
    """`derive` in TensorFlow ops: raw column tensors in, derived column tensors out.

    Numeric columns become float32 (infinities missing, as NaN); categorical, boolean and text columns strings spelled as
    polars casts them ("1", "1.0", "true"); datetime columns ("YYYY-MM-DD[ HH...]") their parts,
    with the same names and roles as `derive` gives them.

    Args:
        raw: raw column -> tensor, as `kit.data.raw_inputs` makes them.
        spec: raw column -> {"role", "kind"}, from `raw_spec`.
    """
    import numpy as np
    import tensorflow as tf

    out = {}
    for column, info in spec.items():
        x, role, kind = raw[column], info["role"], info["kind"]
        if role == "numeric":
            x = tf.cast(x, tf.float32)
            out[column] = tf.where(tf.math.is_inf(x), np.float32(np.nan), x)
        elif role in ("categorical", "boolean", "text"):
            out[column] = x if kind == "string" else _number_to_string(x, integer=kind == "int")
            if "parts" in info:
                out.update(_split_parts_graph(column, x, info["parts"]))
        elif role == "datetime":
            stamp = _parse_datetime_graph(x)
            for part, (part_role, _) in DATETIME_PARTS.items():
                value, valid = _DATETIME_PARTS_GRAPH[part](stamp), stamp["valid"]
                name = f"{column}__{part}"
                if part_role == "numeric":
                    out[name] = tf.where(valid, tf.cast(value, tf.float32), np.float32(np.nan))
                else:
                    out[name] = tf.where(valid, tf.strings.as_string(value), MISSING)
        else:
            raise InputError(f"Unknown role '{role}' for column '{column}'. Received: role={role}")
    return out


# what polars' String -> Float64 cast reads as a number
_NUMBER_PATTERN = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def _split_parts_graph(column: str, x, info: dict) -> dict:
    """`derive`'s delimited fields: `<column>__1`, ... as strings or float32 numbers."""
    import numpy as np
    import tensorflow as tf

    n = len(info["roles"])
    fields = tf.strings.split(x, info["sep"]).to_tensor(default_value=MISSING, shape=[None, n])
    out = {}
    for i, role in enumerate(info["roles"]):
        field, name = fields[:, i], part_name(column, i)
        if role == "numeric":
            valid = tf.strings.regex_full_match(field, _NUMBER_PATTERN)
            number = tf.strings.to_number(tf.where(valid, field, "0"), tf.float64)
            out[name] = tf.where(valid, tf.cast(number, tf.float32), np.float32(np.nan))
        elif role in ("categorical", "text"):
            out[name] = field
    return out


def _number_to_string(x, *, integer: bool):
    """Numbers spelled as polars casts them to String: 1 -> "1", 1.0 -> "1.0", NaN -> missing."""
    import tensorflow as tf

    missing = tf.math.is_nan(tf.cast(x, tf.float64))
    safe = tf.where(missing, tf.zeros_like(x), x)
    if integer:
        text = tf.strings.as_string(tf.cast(safe, tf.int64))
    else:
        text = tf.strings.as_string(tf.cast(safe, tf.float64), shortest=True)
        # polars keeps a ".0" on whole floats ("1.0"); shortest=True drops it ("1")
        whole = tf.logical_not(tf.strings.regex_full_match(text, r".*[.eEn].*"))
        text = tf.where(whole, text + ".0", text)
    return tf.where(missing, MISSING, text)


_DATETIME_PATTERN = r"\d{4}-\d{2}-\d{2}([ T]\d{2}(:.*)?)?(\.\d*)?"


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), int64."""
    import tensorflow as tf

    y = y - tf.cast(m <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.math.floormod(m + 9, 12)  # March = 0
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_datetime_graph(s):
    import tensorflow as tf

    s = tf.strings.regex_replace(s, UTC_OFFSET, "")  # the clock as written, as `parse_wall_clock`
    valid = tf.strings.regex_full_match(s, _DATETIME_PATTERN)
    safe = tf.where(valid, s, "1970-01-01 00")

    def number(start, length, text=safe):
        return tf.strings.to_number(tf.strings.substr(text, start, length), tf.int64)

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    has_time = tf.strings.length(safe) >= 13
    # substr fails on strings too short for the hour, so date-only rows read a stand-in
    hour = tf.where(has_time, number(11, 2, tf.where(has_time, safe, "1970-01-01 00")), 0)
    days = _days_from_civil(year, month, day)
    valid &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour <= 23)
    return {"year": year, "month": month, "day": day, "hour": hour, "days": days, "valid": valid}


def _weekday(p):
    import tensorflow as tf

    # ISO weekday as polars counts it: Monday 1 .. Sunday 7; 1970-01-01 was a Thursday
    return tf.math.floormod(p["days"] + 3, 7) + 1


def _day_of_year(p):
    import tensorflow as tf

    return p["days"] - _days_from_civil(p["year"], tf.ones_like(p["month"]), tf.ones_like(p["day"])) + 1


_DATETIME_PARTS_GRAPH = {
    "year": lambda p: p["year"],
    "month": lambda p: p["month"],
    "day": lambda p: p["day"],
    "weekday": _weekday,
    "hour": lambda p: p["hour"],
    "dayofyear": _day_of_year,
    "elapsed_days": lambda p: p["days"],
}
if set(_DATETIME_PARTS_GRAPH) != set(DATETIME_PARTS):
    # a datetime part without its graph version would make the export drift from training
    raise NotImplementedError(
        f"derive_graph lacks datetime part(s) {set(DATETIME_PARTS) - set(_DATETIME_PARTS_GRAPH)}"
    )
