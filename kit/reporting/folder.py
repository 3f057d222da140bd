"""What a run folder, a blend's run folder or a tuning folder holds, read for the report.

Every piece is optional: an absent or unreadable file is None, and the section that needs it
says so instead of failing (a run folder from an older kit, a blend.json with fewer keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass
class Folder:
    """The files of one folder, each None where it is absent or unreadable.

    Attributes:
        path: where the files are (a staging folder while a run is written).
        dest: where the folder is published; the leaderboard is read beside it.
    """

    path: Path
    dest: Path
    metrics: dict | None = None
    competition: dict | None = None
    manifest: dict | None = None
    config: str | None = None
    history: list | None = None
    importance: dict | None = None
    blend: dict | None = None
    # oof.parquet's validated rows (fold >= 0), and how many rows each fold value has (-1: rows a
    # time split never validates): at 10M rows a holdout validates a fifth of the file, and the
    # report reads no more than that
    oof: pl.DataFrame | None = None
    fold_rows: dict[int, int] = field(default_factory=dict)
    test: pl.DataFrame | None = None
    summary: dict | None = None  # a tuning folder's
    trials: pl.DataFrame | None = None
    files: list[str] = field(default_factory=list)
    # what the sections compute from the files and share (the out-of-fold predictions read once)
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, path: Path, *, dest: Path | None = None) -> Folder:
        history = read_json(path / "history.json")
        oof, fold_rows = _validated(path / "oof.parquet")
        return cls(
            path=path,
            dest=dest or path,
            metrics=read_json(path / "metrics.json"),
            competition=read_json(path / "competition.json"),
            manifest=read_json(path / "manifest.json"),
            config=_text(path / "config.toml") or _text(path / "best.toml"),
            history=history.get("folds") if isinstance(history, dict) else None,
            importance=read_json(path / "importance.json"),
            blend=read_json(path / "blend.json"),
            oof=oof,
            fold_rows=fold_rows,
            test=_table(path / "test_predictions.parquet"),
            summary=read_json(path / "summary.json"),
            trials=_table(path / "trials.csv"),
            files=sorted(p.name for p in path.iterdir() if not p.name.startswith(".")),
        )

    @property
    def train_rows(self) -> int:
        return sum(self.fold_rows.values())

    @property
    def is_study(self) -> bool:
        return self.summary is not None and self.trials is not None

    def get(self, key: str, default=None):
        """A fact from metrics.json, else competition.json, else the manifest."""
        for source in (self.metrics, self.competition, self.manifest):
            if isinstance(source, dict) and source.get(key) is not None:
                return source[key]
        return default


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _validated(path: Path) -> tuple[pl.DataFrame | None, dict[int, int]]:
    """(the validated rows of an oof.parquet, its rows per fold value); (None, {}) where it is
    absent, unreadable or has no fold column."""
    if not path.is_file():
        return None, {}
    try:
        rows = pl.scan_parquet(path)
        if "fold" not in rows.collect_schema().names():
            return None, {}
        counts = dict(rows.group_by("fold").len().collect().iter_rows())
        return rows.filter(pl.col("fold") >= 0).collect(), counts
    except (OSError, pl.exceptions.PolarsError):
        return None, {}


def _table(path: Path) -> pl.DataFrame | None:
    if not path.is_file():
        return None
    try:
        if path.suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=None)
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return None
