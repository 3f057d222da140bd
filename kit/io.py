"""Readers for competition files (CSV or Parquet) with polars."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from kit.errors import InputError

# Spellings of a missing value that Kaggle files use besides an empty field.
NULL_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")


def read_table(path: str | os.PathLike, *, na: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame, with Kaggle's null tokens as missing.

    Args:
        path: a `.csv`, `.csv.gz` or `.parquet` file.
        na: extra strings to read as missing (e.g. `("?", "-1")`).

    Returns:
        The frame; raises `InputError` naming the file when it is missing, empty or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"File '{path}' does not exist. Check the competition folder. Received: path={path}")
    if path.stat().st_size == 0:
        raise InputError(f"File '{path}' is empty. Download it again from the competition's data page.")
    try:
        if path.suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
            if na:
                frame = frame.with_columns(
                    pl.col(pl.String).replace({token: None for token in na}).name.keep()
                )
        else:
            frame = pl.read_csv(
                path,
                null_values=[*NULL_TOKENS, *na],
                infer_schema_length=None,
                try_parse_dates=False,
            )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"File '{path}' could not be parsed as a table: {first}. "
            "Check that it is a comma-separated CSV or a Parquet file."
        ) from None
    if frame.width == 0:
        raise InputError(f"File '{path}' has no columns. Download it again from the competition's data page.")
    return frame


def write_atomic(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write a CSV or Parquet file so that a reader never sees half of it.

    The frame goes to a temporary file in the same folder, which is then renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a submission is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
