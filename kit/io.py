"""Files: polars readers for competition tables, and the one way kit writes anything.

Every file kit writes appears whole or not at all: it is written to a hidden sibling and renamed
over its path (`write_atomic`). Every folder kit writes (run folders, tuning outputs, built
competitions) is staged beside its destination and published in one step (`stage_dir`,
`publish_dir`), so a reader, a second run or a kill never sees half of one.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
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


def write_atomic(path: str | os.PathLike, content: pl.DataFrame | str | bytes | dict | list) -> Path:
    """Write a file so that a reader never sees half of it; returns the path.

    `content` is a frame (CSV, or Parquet for a `.parquet` path), text, bytes, or a JSON value
    (a dict or list, written as indented JSON). It goes to a hidden temporary file in the same
    folder, which is then renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(content, pl.DataFrame):
            if path.suffix == ".parquet":
                content.write_parquet(tmp)
            else:
                content.write_csv(tmp)
        elif isinstance(content, bytes):
            Path(tmp).write_bytes(content)
        elif isinstance(content, str):
            Path(tmp).write_text(content)
        else:
            Path(tmp).write_text(json.dumps(content, indent=2, default=_json_default))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a submission is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def copy_atomic(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a file so that `dest` is either the old file or the whole new one."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------------------------
# folders: staged beside the destination, then published in one step


def stage_dir(dest: str | os.PathLike) -> Path:
    """A new hidden folder beside `dest` to build it in; unique, so two writers never mix files."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}-{secrets.token_hex(3)}.partial"
    staging.mkdir()
    return staging


def publish_dir(staging: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Put the staged folder at `dest` in one step, replacing what was there.

    Where the kernel can (Linux's renameat2), the two folders are exchanged atomically, so a kill
    at any moment leaves `dest` as the old folder or the new one, never neither; elsewhere the old
    one is moved aside first. The old folder is removed afterwards. Only call it for a `dest` that
    kit wrote (see `check_out_dir`).
    """
    staging, dest = Path(staging), Path(dest)
    if not dest.exists():
        staging.rename(dest)
        return dest
    if _exchange(staging, dest):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old folder
        return dest
    old = dest.parent / f".{dest.name}.{os.getpid()}-{secrets.token_hex(3)}.old"
    dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where it is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


# the file in every folder kit writes as a whole (run folders, tuning's best/), with this key
MANIFEST = "manifest.json"
WRITTEN_BY = "kit"


def written_by_kit(folder: str | os.PathLike) -> bool:
    """Whether `folder` is one kit wrote: its manifest.json says so."""
    try:
        info = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict):
        return False
    # run folders before the marker existed carried kit's version among the package versions
    return info.get("written_by") == WRITTEN_BY or "kit" in (info.get("versions") or {})


def check_out_dir(path: str | os.PathLike, *, flag: str = "--out") -> Path:
    """Refuse an output folder kit may not replace; returns it as a Path.

    A new path, an empty folder or a folder kit wrote before (a run folder) is fine. A file, a
    folder of the user's with other files in it, or a folder that cannot be written to is refused
    before any work starts: kit never deletes what it did not write.
    """
    path = Path(path)
    if path.is_file() or (path.exists() and not path.is_dir()):
        raise InputError(f"{flag} '{path}' is a file. Pass a folder path for the run. Received: out={path}")
    if path.is_dir() and any(path.iterdir()) and not written_by_kit(path):
        raise InputError(
            f"{flag} '{path}' is a folder with files kit did not write. Pass a new folder (kit "
            f"never replaces a folder it did not write). Received: out={path}"
        )
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"{flag} '{path}' cannot be written: '{parent}' is not writable. Pass a folder you can "
            f"write to. Received: out={path}"
        )
    return path
