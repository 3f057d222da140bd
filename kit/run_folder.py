"""Run folders: claiming one (a lock against a second writer), the files in it, and the
leaderboard over them. `kit.run.cross_validate` stages a run's folder with `write_run_files`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from kit import kaggle, runtime
from kit.competition import Competition
from kit.config import Config
from kit.errors import InputError
from kit.io import MANIFEST, WRITTEN_BY, raise_disk_error, write_atomic


def prediction_columns(comp: Competition) -> list[str]:
    if comp.task == "regression":
        return ["prediction"]
    return [f"proba_{c}" for c in comp.classes]


class Claim:
    """A run folder this process is writing: its lock, and the folders made for it.

    The lock (`.<name>.lock` beside the folder, flock) keeps a second run from writing the same
    folder at the same time: its checkpoints and its publishing would mix with this one's. On a
    failure, the folders made for the run (`submissions/<competition>/`, ...) go again if empty.
    """

    def __init__(self, path: Path, handle, made: list[Path]):
        self.path, self.handle, self.made = path, handle, made

    def release(self, *, failed: bool) -> None:
        if self.handle is None:
            return
        Path(self.handle.name).unlink(missing_ok=True)
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None
        if failed:
            for folder in reversed(self.made):  # the deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty


def claim_run_dir(run_dir: Path, *, fixed: bool) -> tuple[Path, Claim]:
    """Lock the run folder for this run; a default (`fixed=False`) one that another run holds or
    wrote in the same second gets a suffix (-2, -3, ...) instead.

    Raises:
        InputError: `fixed` and another kit run is writing it now.
    """
    made = [p for p in reversed(run_dir.parents) if not p.exists()]
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise_disk_error(err, run_dir.parent)
        raise
    base = run_dir
    for n in range(2, 1000):
        handle = _lock(run_dir.parent / f".{run_dir.name}.lock")
        if handle is not None and (fixed or not run_dir.exists()):
            return run_dir, Claim(run_dir, handle, made)
        if handle is not None:
            Claim(run_dir, handle, []).release(failed=False)
        if fixed:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise InputError(
                f"Another kit run is writing '{run_dir}' right now; two runs into one folder would mix "
                f"their files. Wait for it to finish, or pass another --out. Received: out={run_dir}"
            )
        run_dir = base.with_name(f"{base.name}-{n}")
    raise InputError(f"Too many runs named '{base}' this second. Pass --out. Received: out={base}")


def _lock(path: Path):
    """An open file holding an exclusive flock on `path`, or None where another process holds it."""
    while True:
        handle = open(path, "a+")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        # the holder before us may have removed the file as it let go: lock the file now there
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()


def new_run_id(track: str) -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{track}"


def tidy_stopped_runs(parent: Path, this: str, log) -> None:
    """Runs beside this one that were killed (no process holds their lock): the leftovers of one
    that saved nothing to resume from (`.<name>.work/` holding its params.json only, and its lock)
    go; one that saved checkpoints is named, with how to resume it."""
    for work in sorted(parent.glob(".*.work")):
        name = work.name[1 : -len(".work")]
        lock = parent / f".{name}.lock"
        if name == this or not work.is_dir() or (parent / name).exists():
            continue
        # a running run holds its lock file: where there is none, none is running (and none is made)
        handle = _lock(lock) if lock.exists() else open(os.devnull)  # noqa: SIM115
        if handle is None:  # running now
            continue
        try:
            if {p.name for p in work.iterdir()} <= {"params.json"}:
                shutil.rmtree(work, ignore_errors=True)
                lock.unlink(missing_ok=True)
            else:
                log(
                    f"note: {work} holds the checkpoints of a run that was stopped; --out {parent / name} "
                    f"resumes it (or delete the folder)"
                )
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def check_work_dir(work: Path, params: dict, log) -> None:
    """Keep a crashed run's checkpoints only when they come from the same parameters: others would
    not load."""
    saved = work / "params.json"
    current = json.dumps(params, sort_keys=True, default=str)
    if work.is_dir() and (not saved.exists() or saved.read_text() != current):
        log(f"note: {work} holds checkpoints of other parameters; starting over")
        shutil.rmtree(work)
    elif work.is_dir() and any(p.name != "params.json" for p in work.iterdir()):
        log(f"note: resuming from the checkpoints in {work}")
    work.mkdir(parents=True, exist_ok=True)
    saved.write_text(current)


def write_run_files(
    folder: Path,
    comp: Competition,
    cfg: Config,
    *,
    track: str,
    metric,
    score: float,
    fold_scores: list[float],
    oof: np.ndarray,
    fold_of: np.ndarray,
    test_pred: np.ndarray,
    submission: pl.DataFrame,
    strategy: str,
    split_on: dict | None = None,
    fold_weights: np.ndarray | None = None,
    histories: list | None = None,
    started: float | None = None,
    extra_metrics: dict | None = None,
    importance: dict | None = None,
    phases: dict | None = None,
    notes: list[str] | tuple = (),
) -> dict[str, pl.DataFrame]:
    """The files of a run folder, into `folder` (a staging folder): submission, OOF and test
    predictions, metrics, the config that reproduces it, history, what kit understood about the
    competition, the permutation importance (when given) and the manifest. Once every other file
    is in the folder (a blend's blend.json too), `kit.reporting.write_report(folder, dest=...)`
    adds report.html.

    Returns:
        {"oof": the OOF frame, "test": the test predictions frame}.
    """
    write_atomic(folder / "submission.csv", submission)
    columns = prediction_columns(comp)
    ids = {comp.id: comp.train[comp.id]} if comp.id and comp.id in comp.train.columns else {}
    oof_frame = pl.DataFrame(
        {
            **ids,
            comp.target: comp.train[comp.target],
            "fold": fold_of,
            **{c: oof[:, i] for i, c in enumerate(columns)},
        }
    )
    test_frame = pl.DataFrame(
        {comp.id or "row": comp.test_ids(), **{c: test_pred[:, i] for i, c in enumerate(columns)}}
    )
    write_atomic(folder / "oof.parquet", oof_frame)
    write_atomic(folder / "test_predictions.parquet", test_frame)
    info = {
        "competition": comp.name,
        "track": track,
        "metric": metric.name,
        "direction": metric.direction,
        "score": score,
        "fold_scores": fold_scores,
        "split": strategy,
        # the group and time columns the folds follow (None: the split ignores them)
        "group": (split_on or {}).get("group"),
        "time": (split_on or {}).get("time"),
        "folds": len(fold_scores),
        # each fold's share of the test predictions (a time split's later folds count more)
        "fold_weights": None if fold_weights is None else [round(float(w), 6) for w in fold_weights],
        "seed": cfg.seed,
        "seeds": cfg.seeds,
        **(extra_metrics or {}),
    }
    write_atomic(folder / "metrics.json", info)
    cfg.write(folder / "config.toml")
    if histories and any(h is not None for h in histories):
        write_atomic(folder / "history.json", {"folds": histories})
    write_atomic(folder / "competition.json", competition_info(comp, notes))
    if importance is not None:
        write_atomic(folder / "importance.json", importance)
    seconds = time.perf_counter() - started if started is not None else None
    write_atomic(
        folder / MANIFEST,
        {
            "written_by": WRITTEN_BY,
            "track": track,
            "seed": cfg.seed,
            "started": datetime.now().isoformat(timespec="seconds"),
            "wall_seconds": round(seconds, 2) if seconds is not None else None,
            "peak_rss_mib": round(runtime.peak_rss_mib(), 1),  # this process's, up to now
            **({"phases": phases} if phases else {}),  # seconds: kit.run._phases
            "command": sys.argv,
            "git_commit": runtime.git_commit(),
            "data": str(comp.root.resolve()),
            "versions": runtime.versions(),
        },
    )
    return {"oof": oof_frame, "test": test_frame}


def competition_info(comp: Competition, notes: list[str] | tuple = ()) -> dict:
    """What kit understood about the competition, as `kit inspect` prints it, for the report, with
    the run's own `notes` (what its split did with the group and time columns)."""
    return {
        "name": comp.name,
        "target": comp.target,
        "id": comp.id,
        "task": comp.task,
        "classes": [c if isinstance(c, int | float | str) else str(c) for c in comp.classes],
        "metric": comp.metric,
        "summary": [list(row) for row in comp.summary()],
        "notes": [*comp.notes, *(n for n in notes if n not in comp.notes)],
    }


def leaderboard(root: str | Path | None = None, *, skipped: list[Path] | None = None) -> list[dict]:
    """Every run in or under `root` (default: where runs go here), best CV first within each competition.

    A folder whose metrics.json cannot be read (a run being written, a damaged file) or holds no
    finite score is left out (and appended to `skipped`), and so is a hidden one (a run's staging
    folder).
    """
    root = kaggle.submissions_root() if root is None else root
    # runs by competition (submissions/<competition>/<run>/), and run folders right in it (a
    # `kit auto --out` folder, a folder of --out runs)
    return _board({*Path(root).glob("*/*/metrics.json"), *Path(root).glob("*/metrics.json")}, skipped)


def leaderboard_beside(run_dir: str | Path) -> list[dict]:
    """`leaderboard` of the runs in the folder that holds `run_dir` (the competition's runs when
    runs go to submissions/<competition>/<run-id>/), `run_dir` itself included once written."""
    return _board(Path(run_dir).parent.glob("*/metrics.json"))


def _board(paths, skipped: list[Path] | None = None) -> list[dict]:
    rows = []
    for path in sorted(paths):
        if path.parent.name.startswith("."):
            continue
        try:
            info = json.loads(path.read_text())
            row = {k: info[k] for k in ("competition", "track", "metric", "direction", "score")}
            score = float(row["score"])
        except (OSError, ValueError, KeyError, TypeError):
            score = math.nan
        if not math.isfinite(score):  # unreadable, or no number to rank it by
            if skipped is not None:
                skipped.append(path.parent)
            continue
        rows.append({**info, **row, "run_dir": str(path.parent)})
    rows.sort(key=lambda r: (r["competition"], -r["score"] if r["direction"] == "maximize" else r["score"]))
    return rows
