"""The Python API: the same verbs and settings as the `kit` command.

>>> import kit
>>> run = kit.baseline("data/titanic", folds=5, seed=0)
>>> run.score, run.submission_path
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kit import config as config_mod
from kit.competition import Competition, discover
from kit.run import Run

COMPETITION_KEYS = ("target", "id", "metric", "na", "group", "time")
RUN_KEYS = ("folds", "split", "seed")


def load(
    data: str | Path | None = None, *, config: str | Path | None = None, **settings
) -> tuple[Competition, config_mod.Config]:
    """The competition and its resolved config.

    Args:
        data: competition folder; None builds and uses the built-in demo.
        config: a TOML file of settings.
        settings: target, id, metric, na, group, time, folds, split, seed (as the CLI flags).
    """
    from kit.demo import make_demo

    unknown = set(settings) - set(COMPETITION_KEYS) - set(RUN_KEYS)
    if unknown:
        raise TypeError(
            f"Unknown setting(s) {sorted(unknown)}. Use: {', '.join(COMPETITION_KEYS + RUN_KEYS)}"
        )
    if isinstance(settings.get("na"), str):
        settings["na"] = [settings["na"]]
    data = Path(data) if data is not None else make_demo()
    cfg = config_mod.resolve(data.resolve().name, config=config, **settings)
    comp = discover(
        data,
        target=cfg.target,
        id=cfg.id,
        metric=cfg.metric,
        na=tuple(cfg.na),
        group=cfg.group,
        time=cfg.time,
    )
    return comp, cfg


def inspect(data: str | Path | None = None, *, config=None, **settings) -> Competition:
    """What kit infers about a competition folder (files, id, target, task, metric, roles)."""
    comp, _ = load(data, config=config, **settings)
    return comp


def baseline(
    data: str | Path | None = None, *, config=None, out: str | Path | None = None, log=print, **settings
) -> Run:
    """Cross-validate the fast Keras baseline and write a validated submission.

    Example:
        >>> run = kit.baseline("data/titanic", folds=5)
        >>> run.score, run.fold_scores, run.submission_path
    """
    from kit.baseline import fit_predict_fold
    from kit.run import cross_validate

    comp, cfg = load(data, config=config, **settings)
    for note in comp.notes:
        log(f"note: {note}")
    return cross_validate(
        comp, cfg, fit_predict_fold, track="baseline", params=cfg.baseline, out=out, log=log
    )


def validate(submission: str | Path, data: str | Path, *, config=None, **settings) -> pl.DataFrame:
    """Check a submission file against the competition; returns it, or raises `InputError`."""
    from kit.submission import validate_file

    comp, _ = load(data, config=config, **settings)
    return validate_file(submission, comp)


def leaderboard(root: str | Path = "submissions") -> pl.DataFrame:
    """Every run under `root`, best CV first within each competition."""
    from kit.run import leaderboard as rows

    return pl.DataFrame(rows(root))
