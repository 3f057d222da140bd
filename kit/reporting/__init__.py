"""report.html: one self-contained page per run folder, blend and tuning study.

A run folder is Parquet, JSON and TOML; the report is what a team looks at: what kit understood
about the competition, the CV score against the competition's other runs, learning curves per
fold, out-of-fold diagnostics for the task (confusion matrix, ROC, precision-recall and
calibration; predicted against actual and residuals), test predictions beside the OOF ones,
permutation importance, the blend's members or the study's trials, the config and the manifest.

The page is built from the folder's files alone, so a run writes it into its staging folder
before it is published and `kit report RUN_DIR` writes it again the same way; whatever a folder
lacks (no history, no importance, a blend.json with fewer keys) leaves its section saying so.
The page is one file with inline SVG and CSS: no JavaScript, nothing fetched, readable offline
and inside a notebook's output (`show`).

This module is `kit.reporting`, not `kit.report`: `kit.report(...)` is the API verb, and a
submodule of that name would replace it as an attribute of the package once imported.

Example:
    >>> path = write_report("submissions/titanic/20250101-120000-baseline")
    >>> show(path)          # in a notebook: the page in the cell's output
"""

from __future__ import annotations

import html
import os
import time
import warnings
from pathlib import Path

from kit.io import write_atomic
from kit.reporting.folder import Folder
from kit.reporting.layout import page
from kit.reporting.run_page import RUN_SECTIONS, run_page
from kit.reporting.study_page import STUDY_SECTIONS, study_page

REPORT = "report.html"

__all__ = ["REPORT", "RUN_SECTIONS", "STUDY_SECTIONS", "Folder", "render", "show", "write_report"]


def render(folder: Folder) -> str:
    """The report's HTML for a folder: a study's page (summary.json and trials.csv) or a run's (a
    blend's run folder included: its blend.json adds a section)."""
    title, top, sections = study_page(folder) if folder.is_study else run_page(folder)
    return page(title, top, sections, where=str(folder.dest))


def write_report(folder: str | os.PathLike, *, dest: str | os.PathLike | None = None) -> Path:
    """Write `folder`/report.html (atomically) from the folder's files; returns its path.

    Args:
        folder: a run folder, a blend's run folder or a tuning folder (a staging folder too).
        dest: where the folder will be published, when it is a staging folder: the leaderboard
            is read beside it and its own earlier version there is not listed.

    Example:
        >>> write_report("submissions/titanic/20250101-120000-baseline")
    """
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / name).is_file() for name in ("metrics.json", "summary.json")):
        from kit.errors import InputError

        what = "is not a folder" if not folder.is_dir() else "holds neither metrics.json nor summary.json"
        runs = (
            sorted(p.name for p in folder.glob("*/metrics.json") for p in [p.parent])
            if folder.is_dir()
            else []
        )
        if runs:  # kit auto's --out, or a competition's folder of runs
            first = "auto-blend" if "auto-blend" in runs else runs[0]
            raise InputError(
                f"'{folder}' is a folder of run folders ({', '.join(runs)}), each with its report.html. "
                f"Pass one of them, e.g. {folder / first}. Received: path={folder}"
            )
        raise InputError(
            f"'{folder}' {what}: it is not a run folder or a tuning folder. Pass one (e.g. "
            f"submissions/<competition>/<run-id>). Received: path={folder}"
        )
    page = render(Folder.read(folder, dest=Path(dest) if dest is not None else folder))
    return write_atomic(folder / REPORT, page)


def show(path: str | os.PathLike, *, height: int = 900):
    """Show a report: in a notebook's output (an iframe holding the page), else print its path.

    The page goes in the iframe's `srcdoc`, so it needs no file server (Kaggle, Colab, VS Code)
    and its styles cannot leak into the notebook's.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT
    shell = None
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        pass
    if shell is None or getattr(shell, "kernel", None) is None:
        print(path)
        return None
    from IPython.display import HTML, display

    page = path.read_text()
    frame = (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="{html.escape(path.parent.name)}" '
        f'style="width:100%;height:{int(height)}px;border:1px solid #ddd;border-radius:6px"></iframe>'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IPython suggests IFrame, which needs the file served
        display(HTML(frame))
    return None


def timed_report(folder: Path, *, dest: Path, log) -> float:
    """`write_report` for a run being written: logs a line and returns its seconds; a failure is
    logged, never raised (a report is not worth a finished run)."""
    started = time.perf_counter()
    try:
        path = write_report(folder, dest=dest)
    except Exception as err:  # noqa: BLE001
        log(f"note: report.html not written: {type(err).__name__}: {err}")
        return time.perf_counter() - started
    seconds = time.perf_counter() - started
    log(f"report: {Path(dest) / REPORT} ({path.stat().st_size / 1024:.0f} KB)")
    return seconds
