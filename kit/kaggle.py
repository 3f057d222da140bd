"""Kaggle notebooks: where the inputs are, where kit may write, and the file Kaggle submits.

In a Kaggle notebook the competition is mounted read-only under `/kaggle/input/<competition>` and
only `/kaggle/working` is kept after the session; Kaggle submits `/kaggle/working/submission.csv`.
So on Kaggle kit resolves a bare competition name under the input folder, writes its run folders
(and any data it builds) under the working folder, and copies each final submission to
`/kaggle/working/submission.csv`. Elsewhere nothing changes: paths are relative to the current
folder, as on a laptop.

Both roots can be moved with environment variables (`KIT_KAGGLE_INPUT`, `KIT_KAGGLE_WORKING`),
which is how the tests fake a Kaggle layout in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from kit.errors import InputError
from kit.io import TABLE_SUFFIXES, copy_atomic

INPUT_ENV = "KIT_KAGGLE_INPUT"
WORKING_ENV = "KIT_KAGGLE_WORKING"
SUBMISSION_NAME = "submission.csv"


def input_root() -> Path:
    """Where Kaggle mounts competitions and datasets (read-only)."""
    return Path(os.environ.get(INPUT_ENV, "/kaggle/input"))


def working_root() -> Path:
    """The one folder a Kaggle notebook keeps, and where Kaggle looks for submission.csv."""
    return Path(os.environ.get(WORKING_ENV, "/kaggle/working"))


def on_kaggle() -> bool:
    """True inside a Kaggle notebook (or a faked layout): both the input and working folders exist."""
    return input_root().is_dir() and working_root().is_dir()


def output_root() -> Path:
    """The base of kit's default output paths: the working folder on Kaggle, else the current folder."""
    return working_root() if on_kaggle() else Path(".")


def submissions_root() -> Path:
    """Default parent of run folders: `submissions/`, under `/kaggle/working` on Kaggle."""
    return output_root() / "submissions"


def data_root() -> Path:
    """Default parent of the folders kit builds (the demo, tfds: datasets): `data/`."""
    return output_root() / "data"


def _has_tables(folder: Path) -> bool:
    names = [n.lower() for n in os.listdir(folder) if n.lower().endswith(TABLE_SUFFIXES)]
    return any("train" in n for n in names) and any("test" in n for n in names)


def competitions(*, depth: int = 3) -> list[Path]:
    """Folders under the input root that hold a train and a test file.

    Kaggle mounts a competition at `/kaggle/input/<name>`; datasets may sit one or two levels
    deeper (`<owner>/<name>`, or a layout's own subfolder), so `depth` levels are searched. A
    folder that holds tables is not searched further, which keeps image folders out of the walk.
    """
    found: list[Path] = []

    def walk(folder: Path, level: int) -> None:
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if _has_tables(child):
                found.append(child)
            elif level < depth:
                walk(child, level + 1)

    if input_root().is_dir():
        walk(input_root(), 1)
    return found


def resolve_data(data: str | os.PathLike | None) -> Path | None:
    """The competition folder that `data` means here.

    On Kaggle, a name that is not a folder of the current directory ("titanic") is looked up under
    `/kaggle/input`, and no data at all picks the one competition attached to the notebook (with
    several attached, it is refused: which one is meant?).
    Elsewhere `data` is returned as a path, and None stays None (the built-in demo).
    """
    if data is None:
        found = competitions() if on_kaggle() else []
        if len(found) > 1:  # the demo would run instead, and its submission replace theirs
            names = [str(p.relative_to(input_root())) for p in found]
            raise InputError(
                f"{len(found)} competitions are attached to this notebook ({', '.join(names[:6])}); "
                f"pass the one to run, e.g. kit baseline {names[0]} (or kit.baseline({names[0]!r})). "
                f"Received: data=None"
            )
        return found[0] if found else None
    path = Path(data)
    if path.exists() or path.is_absolute() or not on_kaggle():
        return path
    root = input_root()
    for candidate in (root / path, *sorted(root.glob(f"*/{path}")), *sorted(root.glob(f"*/*/{path}"))):
        if candidate.is_dir():
            return candidate
    return path


def publish(run, *, log: Callable[[str], None] = print):
    """On Kaggle, copy the run's submission to `/kaggle/working/submission.csv`; return the run.

    The copy goes to a temporary file in the working folder first and is renamed over the old one,
    so Kaggle never picks up half a file. The returned run's `submission_path` is that file, which
    the next run replaces; the run's own submission stays in its run folder, and publishing the run
    again (e.g. the best of several) copies it back. Off Kaggle the run is returned as it is.
    """
    if not on_kaggle():
        return run
    dest = working_root() / SUBMISSION_NAME
    source = Path(run.run_dir) / SUBMISSION_NAME
    if not source.is_file():  # a run without a run folder of its own
        source = Path(run.submission_path)
    if source.resolve() == dest.resolve():
        return run
    copy_atomic(source, dest)
    log(f"Kaggle submission file: {dest}")
    return dataclasses.replace(run, submission_path=dest)
