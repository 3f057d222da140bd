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
- what the split does with the group and time columns, in a note where it does not follow them
  both (a time split puts groups on both sides of its folds; k-fold follows neither), and the
  rows without a group (one group); a holdout keeps groups whole, or takes the last rows in time;
- whether every test row comes after train's (a time split's later folds count more only then);
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
from kit.columns import id_number
from kit.competition import Competition
from kit.config import Config, from_a_file
from kit.errors import InputError
from kit.io import check_out_dir
from kit.split import describe, make_folds, resolve_strategy


@dataclass
class Plan:
    """What the run will do, checked: its split, the folds (train, validation index pairs) and
    what changed from the settings and why."""

    strategy: str
    folds: list[tuple[np.ndarray, np.ndarray]]
    notes: list[str] = field(default_factory=list)
    # the group and time columns the folds follow (None: the split ignores them)
    group: str | None = None
    time: str | None = None
    # every test row is later than train's (or test has no time): a time split's later folds count more
    test_later: bool = True

    def describe(self) -> str:
        """The split in words, with the columns it follows ("group split on 'patient_id'")."""
        return describe(self.strategy, group=self.group, time=self.time)


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
    try:
        return _preflight(comp, cfg, track=track, params=params, out=out)
    except InputError as err:  # "Pass --group ...": and which TOML set the group, where one did
        raise from_a_file(err, cfg) from None


def _preflight(comp, cfg, *, track, params, out) -> Plan:
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
    notes: list[str] = []
    # the columns the split follows: a holdout keeps groups whole, or else validates on the last rows
    holdout = strategy == "holdout"
    group_on = comp.group if strategy == "group" or holdout else None
    time_on = comp.time if strategy == "time" or (holdout and comp.group is None) else None
    groups = _groups(comp, notes) if group_on is not None else None
    order = time_order(comp) if time_on is not None else None
    notes.extend(_order_notes(comp, strategy))
    n_splits = _n_splits(comp, cfg, strategy, metric, y, groups, order, notes)
    stratify = strategy == "stratified" or (strategy == "holdout" and groups is None and order is None)
    folds = make_folds(
        comp.train.height,
        strategy=strategy,
        n_splits=n_splits,
        seed=cfg.seed,
        y=y if classification and stratify else None,
        groups=groups,
        order=order,
    )
    if comp.group is not None and group_on is None:
        notes.extend(_crossing_notes(comp, strategy, folds))
    _check_folds(comp, folds, strategy, metric, y)
    test_later = True
    if strategy == "time":
        before = _test_not_later(comp)
        if before is not None and before[0] > 0:
            test_later = False
            notes.append(
                f"{before[0]} of the {before[1]} test rows have a '{comp.time}' no later than train's "
                f"latest: the test does not all come after the folds, so their models count equally in "
                f"the test predictions (not more for the later folds)"
            )
    return Plan(
        strategy=strategy, folds=folds, notes=notes, group=group_on, time=time_on, test_later=test_later
    )


MISSING_GROUP = "\x00missing"  # the label of the rows without a group: they form one group


def _groups(comp: Competition, notes: list[str] | None = None) -> np.ndarray:
    """The group of every train row, as text; the rows without one are one group (said in a note)."""
    s = comp.train[comp.group]
    s = s.fill_nan(None) if s.dtype.is_float() else s
    if notes is not None and s.null_count():
        notes.append(
            f"{s.null_count()} of the {s.len()} rows have no '{comp.group}' (missing): they are kept "
            f"together as one group, in one fold; fill them to put them in groups of their own"
        )
    return id_number(s).fill_null(MISSING_GROUP).to_numpy()


def _order_notes(comp: Competition, strategy: str) -> list[str]:
    """What the split does with a group and a time column that it does not both follow."""
    g, t = comp.group, comp.time
    crossing = f"--split time would order them in time, but put groups of '{g}' on both sides of the folds"
    if strategy == "group" and t is not None:
        return [
            f"the folds keep the groups of '{g}' apart, not in the order of '{t}' (the group comes first); {crossing}"
        ]
    if strategy == "holdout" and g is not None:
        if t is None:
            return [f"the holdout validates on 20% of the groups of '{g}', each group whole"]
        return [
            f"the holdout validates on 20% of the groups of '{g}', each group whole, not on the last rows in "
            f"the order of '{t}' (the group comes first); {crossing}"
        ]
    if strategy == "holdout" and t is not None:
        return [
            f"the holdout validates on the last 20% of the rows in the order of '{t}' (no time on both sides)"
        ]
    if strategy in ("kfold", "stratified") and t is not None:
        return [
            f"--split {strategy} does not follow the order of '{t}': its folds validate on rows earlier than "
            f"rows they trained on; pass --split time for time-ordered folds"
        ]
    return []


def _crossing_notes(comp: Competition, strategy: str, folds) -> list[str]:
    """Where a split ignores the group column: how many groups it puts on both sides of the folds,
    and whether that leaks (test's groups are all new)."""
    g, groups = comp.group, _groups(comp)
    crossing: set = set()
    for tr, va in folds:
        crossing |= set(np.unique(groups[tr])) & set(np.unique(groups[va]))
    if not crossing:
        return []
    what = "the time split" if strategy == "time" else f"--split {strategy}"
    note = (
        f"{what} does not keep the groups of '{g}' apart: {len(crossing)} of its "
        f"{len(np.unique(groups))} groups are on both sides of the folds"
    )
    if g in comp.test.columns:
        test_groups = set(id_number(comp.test[g].drop_nulls()).to_list())
        if test_groups and not test_groups & set(groups.tolist()):
            note += (
                f"; none of test's '{g}' values is in train, so the leaderboard scores new groups, and this "
                f"CV, validated on groups it trained on, leaks (it flatters)"
            )
    return [f"{note}; pass --split group to keep them apart"]


def _test_not_later(comp: Competition) -> tuple[int, int] | None:
    """How many test rows have a time no later than train's latest, of how many have one (None:
    test has no such column, or its times do not read)."""
    from kit.columns import parse_time_column

    if comp.time not in comp.test.columns:
        return None
    train_s, test_s = comp.train[comp.time], comp.test[comp.time]
    try:
        if train_s.dtype.is_numeric() and test_s.dtype.is_numeric():
            key = pl.concat([train_s.cast(pl.Float64), test_s.cast(pl.Float64)]).fill_nan(None)
        else:
            # parsed together, so both are read day or month first alike
            key = parse_time_column(pl.concat([train_s.cast(pl.String), test_s.cast(pl.String)]))
            key = key.dt.epoch("s").cast(pl.Float64)
    except pl.exceptions.PolarsError:
        return None
    latest, test_key = key[: train_s.len()].max(), key[train_s.len() :].drop_nulls()
    if latest is None or test_key.len() == 0:
        return None
    return int((test_key <= latest).sum()), test_key.len()


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
    if strategy == "holdout" and groups is not None:
        if len(np.unique(groups)) < 2:
            raise InputError(
                f"The group column '{comp.group}' has a single group in '{name}', so a holdout of groups "
                f"has none to validate on. Pass --group with another column, or --split kfold. Received: groups=1"
            )
        return k
    if strategy == "holdout" and order is not None:
        n_times = len(np.unique(order))
        if n_times < 2:
            raise InputError(
                f"The time column '{comp.time}' has a single time in '{name}', so a holdout in time has no "
                f"later rows to validate on. Pass --time with another column, or --split kfold. Received: times=1"
            )
        return k
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
                    f"every class in every validation fold, so every class needs 2 rows or more. "
                    + (
                        f"With {len(comp.classes)} values it looks like a quantity: pass a regression "
                        f"metric such as --metric rmse. "
                        if len(comp.classes) > 20 and comp.train[comp.target].dtype.is_numeric()
                        else "Remove or relabel that row, or pass --metric log_loss. "
                    )
                    + f"Received: rows={m}"
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
                + ("" if m > 1 else ", and the fold that validates its row trains without it")
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
