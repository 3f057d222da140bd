"""Files: polars readers for competition tables, and the one way kit writes anything.

Every file kit writes appears whole or not at all: it is written to a hidden sibling and renamed
over its path (`write_atomic`). Every folder kit writes (run folders, tuning outputs, built
competitions) is staged beside its destination and published in one step (`stage_dir`,
`publish_dir`), so a reader, a second run or a kill never sees half of one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gzip
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from kit import boundary
from kit.csv_quirks import decimal_commas, percentages, quoted, stray_quote, thousands
from kit.errors import InputError

# Spellings of a missing value besides an empty field: pandas' defaults for `read_csv`, which
# Kaggle's files and the notebooks that read them assume ("n/a" in a numeric column is missing)
NULL_TOKENS = (
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>",
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN",
)  # fmt: skip
# a table zipped alone (train.csv.zip), as older Kaggle competitions ship their files
ZIPPED_SUFFIXES = (".csv.zip", ".parquet.zip", ".tsv.zip")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz", ".tsv", *ZIPPED_SUFFIXES)
# tables kit does not read, and what to do about them
OTHER_TABLES = {
    (
        ".zip",
        ".7z",
        ".tar",
        ".tar.gz",
        ".tgz",
    ): "Unpack {} into a folder (on Kaggle, under /kaggle/working) and pass that one.",
    (".xlsx", ".xls", ".json", ".feather", ".arrow"): "Save {} as CSV or Parquet first.",
}


def read_table(
    path: str | os.PathLike,
    *,
    na: tuple[str, ...] = (),
    strings: bool = False,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame, with Kaggle's null tokens as missing.

    Odd but readable files are read, with a line in `notes` saying how: a CSV separated by
    semicolons, tabs or bars (semicolons with decimal commas too), one that is not UTF-8 (read as
    Windows-1252), blank lines (skipped). A damaged file is an `InputError`, never a library's
    traceback or a Rust panic on stderr.

    Args:
        path: a `.csv`, `.csv.gz` or `.parquet` file.
        na: extra strings to read as missing (e.g. `("?", "-1")`).
        strings: every column as text, spelled as in the file (for ids and submissions).
        notes: where to say what was odd about the file.

    Returns:
        The frame; raises `InputError` naming the file when it is missing, empty or unreadable.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"'{path}' is a folder, not a table. Pass a CSV or Parquet file. Received: path={path}"
        )
    if not path.is_file():
        raise InputError(f"File '{path}' does not exist. Check the path. Received: path={path}")
    if path.stat().st_size == 0:
        raise InputError(f"File '{path}' is empty. Download it again from the competition's data page.")
    if path.name.lower().endswith(ZIPPED_SUFFIXES):
        return _read_zipped(path, na=na, strings=strings, notes=notes)
    said: list[str] = []
    try:
        # polars panics (a damaged Parquet page) print a Rust backtrace straight to fd 2
        with boundary.captured_stderr() as captured:
            if path.name.lower().endswith(PARQUET_SUFFIXES):
                frame = _read_parquet(path, na=na, strings=strings)
            else:
                frame = _read_csv(path, na=na, strings=strings, notes=said)
    except InputError:
        raise
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, UnicodeDecodeError) as err:
        first = boundary.one_line(str(err).strip().splitlines()[0]) if str(err).strip() else ""
        if "more fields than defined" in first:
            first = "a line has more fields than the header"
        elif isinstance(err, pl.exceptions.PanicException):  # its text is polars' own internals
            first = "polars failed on its contents"
        kind = "Parquet file" if path.name.lower().endswith(PARQUET_SUFFIXES) else "CSV"
        stray = stray_quote(path, sniff_delimiter(path)) if kind == "CSV" and "malformed" in first else None
        if stray is not None:
            line, field = stray
            raise InputError(
                f"File '{path}' could not be parsed as a CSV: line {line} has a double quote inside a "
                f"field that is not enclosed in quotes ({field!r}), which starts a quoted field for the "
                f"reader. Enclose that field in quotes and double its quotes ({quoted(field)}), or remove "
                f"the quote. Received: error={type(err).__name__}"
            ) from None
        raise InputError(
            f"File '{path}' could not be parsed as a {kind}: {first or type(err).__name__}. It is damaged "
            f"or not a table: download it again, or check that it is a comma-separated CSV or a "
            f"Parquet file. Received: error={type(err).__name__}"
        ) from None
    boundary.replay(captured.text)  # a warning that was not a panic still reaches the user
    if frame.width == 0:
        raise InputError(f"File '{path}' has no columns. Download it again from the competition's data page.")
    blank = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if frame.height and blank.any():
        # a blank line is not a row; polars reads it as one with every field missing
        frame = frame.filter(~blank)
        said.append(f"skipped {blank.sum()} empty line(s) in '{path.name}'")
    if notes is not None:
        notes.extend(said)
    return frame


def _read_zipped(path: Path, *, na, strings, notes) -> pl.DataFrame:
    """A table zipped alone (Kaggle's train.csv.zip), read from a temporary copy of it unpacked:
    a competition's input folder may be read-only, as on Kaggle."""
    inner = path.name[: -len(".zip")]
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")
            ]
            if len(members) != 1:
                raise InputError(
                    f"File '{path}' holds {len(members)} files; kit reads a zip that holds one table. "
                    f"Unpack it into a folder of its own. Received: files={[m.filename for m in members][:6]}"
                )
            with tempfile.TemporaryDirectory(prefix="kit-unzip-") as folder:
                target = Path(folder) / inner
                with archive.open(members[0]) as source, open(target, "wb") as dest:
                    shutil.copyfileobj(source, dest, 1 << 20)
                try:
                    return read_table(target, na=na, strings=strings, notes=notes)
                except InputError as err:  # said of the zip, not of a temporary copy
                    raise InputError(str(err).replace(str(target), str(path))) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as err:
        raise InputError(
            f"File '{path}' could not be unpacked ({boundary.one_line(err)}). Download it again. "
            f"Received: error={type(err).__name__}"
        ) from None


PARQUET_SUFFIXES = (".parquet", ".pq")
# what a CSV may be separated by besides commas, tried in this order
CSV_SEPARATORS = (";", "\t", "|")


def sniff_delimiter(path: str | os.PathLike) -> str:
    """The field separator of a CSV, from its header line: a comma unless the header has none and
    has semicolons, tabs or bars."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(1 << 16)
    except (OSError, EOFError):
        return ","
    lines = [line for line in head.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return ","
    header = re.sub(r'"[^"]*"', "", lines[0])  # separators inside quotes do not count
    if "," in header:
        return ","
    counts = {sep: header.count(sep) for sep in CSV_SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# a CSV's column types are inferred from its first INFER_ROWS rows, and from all of them when that
# guess fails to parse a later value or leaves a column with no value to tell by (see _read_typed)
INFER_ROWS = 10_000


def _read_typed(source, options: dict) -> pl.DataFrame:
    """`pl.read_csv` with the types a full scan infers, at the cost of one scan in most files:
    inference over every row reads the file twice (24 s against 4 s for 10M rows here)."""
    if "infer_schema" in options:  # every column as text
        return pl.read_csv(source, **options)
    try:
        frame = pl.read_csv(source, infer_schema_length=INFER_ROWS, **options)
    except pl.exceptions.ComputeError as err:
        if "could not parse" not in str(err):
            raise
        frame = None  # a later value is not of the type the first rows suggested
    if frame is not None and frame.height > INFER_ROWS:
        head = frame.head(INFER_ROWS)
        if any(head[c].null_count() == INFER_ROWS for c in frame.columns):
            frame = None  # a column with nothing to infer from in its first rows
    if frame is None:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        frame = pl.read_csv(source, infer_schema_length=None, **options)
    return frame


DUPLICATED = re.compile(r"(.+)_duplicated_\d+")


def _read_csv(path: Path, *, na, strings: bool, notes: list[str]) -> pl.DataFrame:
    sep = sniff_delimiter(path)
    options = dict(
        separator=sep,
        null_values=[*NULL_TOKENS, *na],
        try_parse_dates=False,
        **({"infer_schema": False} if strings else {}),
    )
    try:
        frame = _read_typed(path, options)
    except pl.exceptions.ComputeError as err:
        if "utf-8" not in str(err).lower() and "utf8" not in str(err).lower():
            raise
        # not UTF-8: Kaggle's older files are Windows-1252 (a superset of Latin-1 for letters)
        data = _read_bytes(path)
        if b"\x00" in data[: 1 << 16]:  # no text file holds NUL bytes: an image, an archive, ...
            raise
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        frame = _read_typed(io.BytesIO(text.encode("utf-8")), options)
        notes.append(f"'{path.name}' is not UTF-8: read as Windows-1252 (Latin-1)")
    # polars renames a repeated header name: "f0", then "f0_duplicated_0"
    repeated = [c for c in frame.columns if (m := DUPLICATED.fullmatch(c)) and m[1] in frame.columns]
    if repeated and not strings:
        notes.append(
            f"'{path.name}' names more than one column alike: read as {', '.join(repeated[:5])}; "
            f"rename them in the file to choose the names"
        )
    if sep != "," and not (sep == "\t" and path.name.lower().endswith(".tsv")):
        shown = {"\t": "tabs", ";": "semicolons", "|": "'|'"}[sep]
        if sep == ";" and not strings:
            frame, converted = decimal_commas(frame)
            if converted:
                shown += f" with decimal commas ({', '.join(converted[:5])})"
        notes.append(f"'{path.name}' is separated by {shown}: read as such")
    elif sep == "," and not strings:
        frame, converted = thousands(frame)
        if converted:
            notes.append(
                f"'{path.name}' writes numbers with thousands separators ({', '.join(converted[:5])}): read as numbers"
            )
    if not strings:
        frame, converted = percentages(frame)
        if converted:
            notes.append(
                f"'{path.name}' writes numbers with a percent sign ({', '.join(converted[:5])}): read as "
                f"numbers, without it (45% as 45)"
            )
    return frame


def _read_bytes(path: Path) -> bytes:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def _read_parquet(path: Path, *, na, strings: bool) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    # categories are text to kit; decimals are numbers
    frame = frame.with_columns(
        *[pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t in (pl.Categorical, pl.Enum)],
        *[pl.col(c).cast(pl.Float64) for c, t in frame.schema.items() if isinstance(t, pl.Decimal)],
    )
    if na:
        frame = frame.with_columns(pl.col(pl.String).replace({token: None for token in na}).name.keep())
    if strings:
        frame = frame.with_columns(pl.all().cast(pl.String))
    return frame


def write_atomic(path: str | os.PathLike, content: pl.DataFrame | str | bytes | dict | list) -> Path:
    """Write a file so that a reader never sees half of it; returns the path.

    `content` is a frame (CSV, or Parquet for a `.parquet` path), text, bytes, or a JSON value
    (a dict or list, written as indented JSON). It goes to a hidden temporary file in the same
    folder, which is then renamed over `path`. A full disk or a folder that cannot be written is
    an `InputError` that says so, and leaves the old file as it was.
    """
    with _replacing(path) as tmp:
        if isinstance(content, pl.DataFrame):
            if Path(path).suffix == ".parquet":
                content.write_parquet(tmp)
            else:
                content.write_csv(tmp)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        elif isinstance(content, str):
            tmp.write_text(content)
        else:
            tmp.write_text(json.dumps(content, indent=2, default=_json_default))
    return Path(path)


def copy_atomic(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a file so that `dest` is either the old file or the whole new one."""
    with _replacing(dest) as tmp:
        shutil.copyfile(source, tmp)
    return Path(dest)


@contextlib.contextmanager
def _replacing(path: str | os.PathLike):
    """A hidden temporary file beside `path` to write, renamed over `path` when the block ends
    (and removed if it fails); disk errors become `InputError`s."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a submission is for sharing
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise_disk_error(err, path)
        raise


def raise_disk_error(err: BaseException, path: str | os.PathLike) -> None:
    """Raise an `InputError` for a write that failed on a full disk or a folder kit may not write
    to (the user's to fix); return for any other error. polars reports these as text ("No space
    left on device (os error 28)"), so the code is read from there too."""
    if not isinstance(err, Exception) or isinstance(err, InputError):
        return
    code = getattr(err, "errno", None)
    if code is None:
        found = re.search(r"os error (\d+)", str(err))
        code = int(found.group(1)) if found else None
    if code is None:
        return
    message = boundary.disk_error(OSError(code, os.strerror(code), str(path)))
    if message is not None:
        raise InputError(message) from err


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
    staging = dest.parent / f".{dest.name}.{os.getpid()}-{secrets.token_hex(3)}.partial"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as err:
        raise_disk_error(err, staging)
        raise
    return staging


def publish_dir(
    staging: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    may_replace: Callable[[Path], bool] | None = None,
) -> Path:
    """Put the staged folder at `dest` in one step, replacing what was there.

    Where the kernel can (Linux's renameat2), the two folders are exchanged atomically, so a kill
    at any moment leaves `dest` as the old folder or the new one, never neither; elsewhere the old
    one is moved aside first. The old folder is removed afterwards. Callers check `dest` before
    they start (see `check_out_dir`); it is checked again here, since another process may have
    put something there meanwhile: only an empty folder or one `may_replace` accepts (default:
    `written_by_kit`) is replaced, and a second writer that got there first is replaced whole.
    """
    staging, dest = Path(staging), Path(dest)
    may_replace = may_replace or written_by_kit
    _list_files(staging)
    if not dest.exists() and not dest.is_symlink():
        try:
            staging.rename(dest)
            return dest
        except OSError as err:
            # another writer published there first (rename onto a non-empty folder fails)
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    if dest.is_symlink() or not dest.is_dir() or (any(dest.iterdir()) and not may_replace(dest)):
        raise InputError(
            f"'{dest}' appeared while kit was writing it and holds files kit did not write; kit does not "
            f"replace it, so nothing was written. Move it away and run again. Received: dest={dest}"
        )
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


def kit_manifest(folder: Path) -> dict | None:
    """A folder's manifest.json where kit wrote it (its mark, or kit among the versions); else None."""
    try:
        info = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    # run folders before the marker existed carried kit's version among the package versions
    return info if info.get("written_by") == WRITTEN_BY or "kit" in (info.get("versions") or {}) else None


def added_files(folder: str | os.PathLike) -> list[str]:
    """What is in a folder kit wrote beside what it wrote there (the names its manifest lists)."""
    info = kit_manifest(Path(folder)) or {}
    if "files" not in info:
        return []
    # `kit report` writes the page again, where the run's own attempt may have failed
    ours = {*info["files"], "report.html"}
    return sorted(p.name for p in Path(folder).iterdir() if p.name not in ours)


def written_by_kit(folder: str | os.PathLike) -> bool:
    """Whether `folder` is one kit wrote, and holds nothing else: its manifest.json says so, and
    lists every file in it."""
    return kit_manifest(Path(folder)) is not None and not added_files(folder)


def _list_files(staging: Path) -> None:
    """The names in a staged run folder, in its manifest: a file added later is the user's."""
    info = kit_manifest(staging)
    if info is not None:
        names = sorted({p.name for p in staging.iterdir()} | {MANIFEST})
        write_atomic(staging / MANIFEST, {**info, "files": names})


def check_out_dir(
    path: str | os.PathLike, *, flag: str = "--out", may_replace: Callable[[Path], bool] | None = None
) -> Path:
    """Refuse an output folder kit may not replace; returns it as a Path.

    A new path, an empty folder or a folder kit wrote before (a run folder: `may_replace`, default
    `written_by_kit`) is fine. A file, a symbolic link, a folder of the user's with files in it
    (a manifest.json without kit's mark included), or a place that cannot be written to is refused
    before any work starts: kit never deletes what it did not write.
    """
    path = Path(path)
    may_replace = may_replace or written_by_kit
    if path.is_symlink():
        raise InputError(
            f"{flag} '{path}' is a symbolic link; kit replaces a run folder whole and would not follow "
            f"it. Pass the folder it points to, or a new one. Received: out={path}"
        )
    if path.exists() and not path.is_dir():
        raise InputError(
            f"{flag} '{path}' is a file, not a folder; kit writes a run folder there. Pass a new folder "
            f"path. Received: out={path}"
        )
    if path.is_dir() and any(path.iterdir()) and not may_replace(path) and (added := added_files(path)):
        raise InputError(
            f"{flag} '{path}' is a run folder kit wrote, but {', '.join(added[:5])} in it is not kit's; "
            f"kit replaces a run folder whole. Move that out, or pass a new folder. Received: out={path}"
        )
    if path.is_dir() and any(path.iterdir()) and not may_replace(path):
        raise InputError(
            f"{flag} '{path}' is a folder with files kit did not write. Pass a new folder (kit "
            f"never replaces a folder it did not write). Received: out={path}"
        )
    _check_writable(path.parent, what=f"{flag} '{path}'")
    if path.is_dir() and any(path.iterdir()):
        _check_writable(path, what=f"{flag} '{path}'")  # the old run folder is removed
    return path


def check_out_file(path: str | os.PathLike, *, flag: str = "--out") -> Path:
    """Refuse a path a file cannot be written to; returns it as a Path.

    An existing file is replaced (atomically): naming it is the user's request. A folder is
    refused, as is a place that cannot be written to.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{flag} '{path}' is a folder; kit writes the submission as one file there. Pass a file "
            f"path such as '{path / 'submission.csv'}'. Received: out={path}"
        )
    _check_writable(path.parent, what=f"{flag} '{path}'")
    return path


def _check_writable(folder: Path, *, what: str) -> None:
    """The first existing folder at or above `folder` must be a folder kit can write to."""
    existing = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), Path("."))
    if not existing.is_dir():
        raise InputError(
            f"{what} cannot be created: '{existing}' is a file, not a folder. Pass another path. "
            f"Received: out={existing}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{what} cannot be written: '{existing}' is not writable. Pass a folder you can "
            f"write to. Received: out={existing}"
        )
