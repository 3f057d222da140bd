"""What odd but valid CSV files write, read as what they mean: numbers with decimal commas,
thousands separators or a percent sign; and the one oddity polars cannot read, a double quote
inside a field not enclosed in quotes, found to be named (`kit.io.read_table` uses them)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

_DECIMAL_COMMA = r"^[+-]?\d+(,\d+)?$"
# a number with thousands separators, and one without, around spaces
_THOUSANDS = r"^\s*[+-]?\d{1,3}(,\d{3})+(\.\d+)?\s*$"
_PLAIN_NUMBER = r"^\s*[+-]?\d+(\.\d+)?\s*$"
_PERCENT = r"^\s*[+-]?\d+(\.\d+)?\s*%\s*$"


def stray_quote(path: Path, sep: str, limit: int = 1 << 23) -> tuple[int, str] | None:
    """(line, field) of the first double quote inside a field not enclosed in quotes (`5'9"`),
    which pandas reads as text and polars as the start of a quoted field; None if none is found in
    the first `limit` bytes of a plain CSV."""
    if not path.name.lower().endswith((".csv", ".tsv", ".txt")):
        return None
    sep = sep.encode()
    with open(path, "rb") as handle:
        data = handle.read(limit)
    line, inside, start = 1, False, 0  # start: where the current field began
    for match in re.finditer(b'"+|' + re.escape(sep) + b"|\n", data):
        token, at = match.group(), match.start()
        if token == b"\n":
            line += 1
            if not inside:
                start = at + 1
        elif token == sep:
            if not inside:
                start = at + 1
        elif inside:  # a run of quotes: pairs are escaped quotes, an odd one closes the field
            inside = len(token) % 2 == 0
        elif at == start:  # opens a quoted field (a run of an even length is an empty one or text)
            inside = len(token) % 2 == 1
        else:
            ends = [x for x in (data.find(sep, at), data.find(b"\n", at)) if x >= 0]
            return line, data[start : min(ends, default=len(data))].decode("utf-8", "replace").strip()
    return None


def quoted(field: str) -> str:
    """A CSV field enclosed in quotes, its own quotes doubled."""
    return '"' + field.replace('"', '""') + '"'


def decimal_commas(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Text columns of a semicolon file that are numbers written with a decimal comma ("2,5")."""
    return _numbers_written(
        frame, shows=",", number=_DECIMAL_COMMA, normalize=lambda s: s.str.replace(",", ".", literal=True)
    )


def thousands(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Text columns of a comma file that are numbers with thousands separators ("172,550", quoted
    in the file)."""
    return _numbers_written(
        frame,
        shows=_THOUSANDS,
        number=f"{_THOUSANDS}|{_PLAIN_NUMBER}",
        normalize=lambda s: s.str.replace_all(",", "", literal=True).str.strip_chars(),
    )


def percentages(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Text columns that are numbers with a percent sign ("45%", read as 45)."""
    return _numbers_written(
        frame,
        shows=_PERCENT,
        number=f"{_PERCENT}|{_PLAIN_NUMBER}",
        normalize=lambda s: s.str.replace_all("%", "", literal=True).str.strip_chars(),
    )


def _numbers_written(
    frame: pl.DataFrame, *, shows: str, number: str, normalize
) -> tuple[pl.DataFrame, list[str]]:
    """Text columns whose values are numbers written another way (`number`, a regex; a value of the
    column `shows` it), read as numbers through `normalize`. A column of such numbers but for a few
    other values ("?", "inf") becomes the normalized text, for the checks that read such values as
    missing (kit.columns.placeholders_as_missing, infinities_as_missing)."""
    converted = []
    for column in frame.columns:
        s = frame[column]
        if s.dtype != pl.String or s.null_count() == s.len():
            continue
        values = s.drop_nulls()
        if not values.str.contains(shows).any():
            continue
        numbers = values.str.contains(number)
        if numbers.all():
            frame = frame.with_columns(normalize(s).cast(pl.Float64).alias(column))
        elif numbers.mean() >= 0.95:
            frame = frame.with_columns(normalize(s).alias(column))
        else:
            continue
        converted.append(column)
    return frame, converted
