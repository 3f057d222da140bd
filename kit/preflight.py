"""Pre-flight: everything about a run that can be known before training, checked before training.

Discovery (`kit.competition.discover`) checks what the files alone decide: that they read, the
ids of train, test and sample, the sample's columns, the target, the metric against the target,
the group and time columns, names the model could not carry. `preflight` checks what the run's
settings decide too, at the start of `kit.run.cross_validate` and of `kit tune`, before any
folder is written or TensorFlow is imported:

- the split and its folds against the rows, the classes, the groups and the times: fewer folds
  than asked, with a note, where the data has fewer groups or different times (or, for a metric
  that needs every class in every validation fold, fewer rows of a class) than folds; a refusal
  where no fold count works, or where a row has no time for a time split;
- that every fold trains on two classes or more, and that the metric can score every
  validation fold (roc_auc is NaN on a fold without a class);
- the track's parameters (types and ranges);
- the output folder (writable, not a file, not a folder kit did not write).

Example:
    >>> comp, cfg = kit.load("data/titanic")
    >>> plan = preflight(comp, cfg, track=tracks.get("baseline"))
    >>> plan.strategy, len(plan.folds), plan.notes
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kit import metrics, tracks
from kit.competition import Competition
from kit.config import Config
from kit.errors import InputError
from kit.io import check_out_dir
from kit.split import make_folds, resolve_strategy


@dataclass
class Plan:
    """What the run will do, checked: its split, the folds (train, validation index pairs) and
    what changed from the settings and why."""

    strategy: str
    folds: list[tuple[np.ndarray, np.ndarray]]
    notes: list[str] = field(default_factory=list)


def preflight(
    comp: Competition,
    cfg: Config,
    *,
    track: tracks.Track | None = None,
    params: dict | None = None,
    out: str | Path | None = None,
) -> Plan:
    """Check a run before it trains; return its folds, or raise `InputError` naming the fix.

    Args:
        track, params: the track and its full parameters, checked against its DEFAULTS and LIMITS.
        out: the run folder, checked with `kit.io.check_out_dir` (None: not checked here).
    """
    if track is not None and params is not None:
        track.check({k: v for k, v in params.items() if k in track.defaults}, source="the run's parameters")
    if out is not None:
        check_out_dir(out)
    strategy = resolve_strategy(cfg.split, task=comp.task, group=comp.group, time=comp.time)
    metric = metrics.get(comp.metric)
    classification = comp.task != "regression"
    needs = {"group": ("--group", comp.group), "time": ("--time", comp.time)}
    if strategy in needs and needs[strategy][1] is None:
        flag = needs[strategy][0]
        raise InputError(
            f"--split {strategy} needs {flag} COLUMN to split on. Pass {flag}, or another --split. "
            f"Received: split={strategy}"
        )
    if strategy == "stratified" and not classification:
        raise InputError(
            f"--split stratified keeps each class's share in every fold, but '{comp.target}' is a "
            f"regression target. Pass --split kfold. Received: split=stratified, task={comp.task}"
        )
    y = comp.target_values()
    groups = _groups(comp) if strategy == "group" else None
    order = time_order(comp) if strategy == "time" else None
    notes: list[str] = []
    if strategy == "group" and comp.time is not None:
        notes.append(
            f"the folds split on groups of '{comp.group}', not in the order of '{comp.time}' (the group "
            f"comes first); pass --split time for time-ordered folds"
        )
    n_splits = _n_splits(comp, cfg, strategy, metric, y, groups, order, notes)
    folds = make_folds(
        comp.train.height,
        strategy=strategy,
        n_splits=n_splits,
        seed=cfg.seed,
        y=y if classification and strategy in ("stratified", "holdout") else None,
        groups=groups,
        order=order,
    )
    _check_folds(comp, folds, strategy, metric, y)
    return Plan(strategy=strategy, folds=folds, notes=notes)


def _groups(comp: Competition) -> np.ndarray:
    return comp.train[comp.group].cast(pl.String).fill_null("").to_numpy()


def time_order(comp: Competition) -> np.ndarray:
    """The sort key of the train rows for a time split; every row needs a time."""
    from kit.columns import parse_time_column

    s = comp.train[comp.time]
    key = s.cast(pl.Float64) if s.dtype.is_numeric() else parse_time_column(s).dt.epoch("s")
    # a row without a time has no place in time order: sorted first or last, it would train
    # every fold or fill the last validation fold, and the folds would no longer be in time
    missing = key.fill_nan(None).null_count() if key.dtype.is_float() else key.null_count()
    if missing:
        raise InputError(
            f"--time column '{comp.time}' has no time in {missing} of the {s.len()} rows of "
            f"'{comp.train_path.name}', so they cannot be put in time order. Fill those values, or "
            f"pass --time with a column every row has. Received: missing={missing}"
        )
    return key.to_numpy()


def _n_splits(comp, cfg, strategy, metric, y, groups, order, notes) -> int:
    """The number of folds the data allows, from the settings'."""
    n, k, name = comp.train.height, cfg.folds, comp.train_path.name
    classification = comp.task != "regression"
    if strategy == "holdout":
        if classification:
            counts = np.bincount(y, minlength=len(comp.classes))
            val = math.ceil(0.2 * n)
            if counts.min() < 2 or val < len(comp.classes) or n - val < len(comp.classes):
                rare = comp.classes[int(counts.argmin())]
                raise InputError(
                    f"A stratified holdout of the {n} rows of '{name}' cannot put every class of "
                    f"'{comp.target}' on both sides (class {rare!r} has {int(counts.min())} row(s)). "
                    f"Pass --split kfold. Received: rows={n}, classes={len(comp.classes)}"
                )
        elif n < 2:
            raise InputError(f"'{name}' has {n} row; a holdout needs 2 or more. Received: rows={n}")
        return k
    if k < 2:
        raise InputError(f"--folds must be at least 2 for a {strategy} split. Received: folds={k}")
    most = n - 1 if strategy == "time" else n
    if k > most:
        raise InputError(
            f"--folds {k} is more than the {n} rows of '{name}' allow for a {strategy} split. Pass "
            f"--folds {max(2, min(5, most))} (at most {most}). Received: folds={k}, rows={n}"
        )
    if strategy == "group":
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise InputError(
                f"The group column '{comp.group}' has a single group in '{name}', so no fold can be "
                f"validated on other groups. Pass --group with another column, or --split kfold. "
                f"Received: groups={n_groups}"
            )
        if n_groups < k:
            notes.append(
                f"the group column '{comp.group}' has {n_groups} groups, fewer than --folds {k}: "
                f"using {n_groups} folds, one group each"
            )
            return n_groups
    if strategy == "time":
        # rows of one time stay in one fold, so a fold needs a time of its own
        n_times = len(np.unique(order))
        if n_times < 3:
            raise InputError(
                f"The time column '{comp.time}' has {n_times} different time(s) in '{name}'; a time "
                f"split needs 3 or more (a training window and 2 validation folds after it). Pass "
                f"--time with another column, or --split kfold. Received: times={n_times}"
            )
        if n_times - 1 < k:
            notes.append(
                f"the time column '{comp.time}' has {n_times} different times, too few for --folds "
                f"{k} after a first training window: using {n_times - 1} folds, one time each"
            )
            return n_times - 1
    if strategy == "stratified" and classification:
        counts = np.bincount(y, minlength=len(comp.classes))
        m, rare = int(counts.min()), comp.classes[int(counts.argmin())]
        if m < k and metric.needs_every_class:
            if m < 2:
                raise InputError(
                    f"Class {rare!r} of '{comp.target}' has {m} row in '{name}'; {metric.name} needs "
                    f"every class in every validation fold, so every class needs 2 rows or more. Remove "
                    f"or relabel that row, or pass --metric log_loss. Received: rows={m}"
                )
            notes.append(
                f"class {rare!r} of '{comp.target}' has {m} rows, fewer than --folds {k}, and "
                f"{metric.name} needs every class in every validation fold: using {m} folds"
            )
            return m
        if m < k:
            notes.append(
                f"class {rare!r} of '{comp.target}' has {m} row(s), fewer than --folds {k}: some "
                f"validation folds have none of it"
            )
    return k


def _check_folds(comp, folds, strategy, metric, y) -> None:
    """Every fold trains on two classes or more, and every validation fold is one the metric can
    score."""
    if comp.task != "regression" and metric.needs_every_class:
        for k, (_, va) in enumerate(folds):
            absent = sorted(set(range(len(comp.classes))) - set(np.unique(y[va]).tolist()))
            if absent:
                fix = "Pass --split stratified" if strategy != "stratified" else "Pass fewer --folds"
                if strategy == "group":
                    fix += f", or --group with a column of more groups than '{comp.group}'"
                raise InputError(
                    f"Validation fold {k + 1} of the {strategy} split has no rows of class "
                    f"{comp.classes[absent[0]]!r} of '{comp.target}', so {metric.name} cannot score it "
                    f"(it would be NaN). {fix}, or pass --metric log_loss. Received: split={strategy}"
                )
    if comp.task != "regression":
        # a fold trained on one class can only predict that class: every track would (the
        # baseline's network learns a constant, the others refuse to fit), so no track does
        for k, (tr, _) in enumerate(folds):
            seen = np.unique(y[tr])
            if len(seen) < 2:
                raise InputError(
                    f"Training fold {k + 1} of the {strategy} split has rows of class "
                    f"{comp.classes[int(seen[0])]!r} of '{comp.target}' only, so its model could only "
                    f"predict that class. {_one_class_fix(comp, strategy, len(folds), y)}. "
                    f"Received: split={strategy}, folds={len(folds)}"
                )
    if metric.name == "r2":
        small = [k for k, (_, va) in enumerate(folds) if len(va) < 2]
        if small:
            raise InputError(
                f"Validation fold {small[0] + 1} has fewer than 2 rows; r2 is undefined there. Pass "
                f"fewer --folds. Received: folds={len(folds)}"
            )


def _one_class_fix(comp, strategy, n_folds, y) -> str:
    """What to pass where a fold's training rows hold a single class."""
    if strategy == "time":
        # the first fold trains on the earliest rows: fewer folds give it more of them
        fewer = "Pass fewer --folds, or --split stratified" if n_folds > 2 else "Pass --split stratified"
        return f"{fewer} (the earliest rows have a single class)"
    if strategy == "group":
        return f"Pass --split stratified, or --group with a column of more groups than '{comp.group}'"
    if strategy != "stratified":
        return "Pass --split stratified"
    counts = np.bincount(y, minlength=len(comp.classes))
    rare = int(counts.argmin())
    return f"Class {comp.classes[rare]!r} has {int(counts[rare])} row(s): add rows of it, or remove them"
