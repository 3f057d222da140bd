"""Optuna tuning of any track: its search space, a seeded TPE sampler, pruning fed every epoch, a
storage that parallel workers share, resume after a kill, and a time budget.

A trial is one cross-validation of the track (`kit.run.cross_validate`) with sampled parameters;
its value is the CV score. Everything a study needs lives in one tuning folder:

    study.journal        the Optuna journal (default storage; any storage URL works instead)
    trials/NNNN/         the run folder of the best trial so far (worse ones are removed)
    best/                the best trial's run folder: submission.csv, oof.parquet, ...
    best.toml            `kit baseline DIR --config best.toml` reruns the best parameters
    trials.csv           every trial: state, value, duration, parameters, worker, its memory
    history.png, importances.png, summary.json

Running the same command again continues the study: finished trials are kept, and a trial whose
worker died (SIGKILL, out of memory, Ctrl-C, the time budget) is run again with the same
parameters. The parts, each readable on its own: `space` (what is searched), `study` (sampler,
pruner, storage, recovery), `callbacks` (pruning and the deadline, per epoch), `workers` (who
runs the trials) and `outputs` (the files above).

Example:
    >>> comp, cfg = kit.load("data/titanic", folds=3)
    >>> result = tune(comp, cfg, "baseline", n_trials=30)
    >>> result.best_score, result.best_config
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from kit import kaggle, metrics, tracks
from kit.competition import Competition
from kit.config import Config
from kit.errors import InputError
from kit.io import WRITTEN_BY, check_out_dir, kit_manifest, written_by_kit
from kit.preflight import preflight
from kit.tuning import workers
from kit.tuning.callbacks import OutOfTime
from kit.tuning.outputs import TuneResult, summarize
from kit.tuning.space import decode, search_space, start_point, suggest
from kit.tuning.study import (
    WARMUP_EPOCHS,
    PerTrialSeedSampler,
    is_journal,
    make_pruner,
    open_storage,
    recover_interrupted,
    safe_url,
)
from kit.tuning.workers import RECYCLE_MIB, Plan

__all__ = [
    "WARMUP_EPOCHS", "OutOfTime", "PerTrialSeedSampler", "RECYCLE_MIB", "TuneResult", "decode", "make_pruner",
    "open_storage", "search_space", "suggest", "tune",
]  # fmt: skip

DEFAULT_TRIALS = 50


def __getattr__(name: str):
    # `kit.tuning.TrialPruning` and `kit.tuning.StopAtDeadline` without importing Keras up front
    if name in ("TrialPruning", "StopAtDeadline"):
        from kit.tuning import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tune(
    comp: Competition,
    cfg: Config,
    track: str | tracks.Track | Callable = "baseline",
    *,
    n_trials: int | None = None,
    time_budget: float | None = None,
    storage: str | Path | None = None,
    study_name: str | None = None,
    pruner: str | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    processes: bool = True,
    recycle_mib: float = RECYCLE_MIB,
    progress: bool | None = None,
) -> TuneResult:
    """Run (or continue) an Optuna study over a track's parameters; write best.toml and the rest.

    Trials run in a worker process that gets the loaded data once and is replaced by a fresh one
    when its memory has grown by `recycle_mib` (see `kit.tuning.workers`).

    Args:
        track: a registered track's name, a track file, or a `kit.tracks.Track`.
        n_trials: finished (complete or pruned) trials the study should reach, counting trials of
            earlier runs and of other workers. Default 50, or no limit when `time_budget` is set.
        time_budget: seconds for this call, a trial in progress included: it is stopped at an
            epoch end before the budget runs out and run again by the next call.
        storage: a journal file path or an Optuna storage URL; default `<out>/study.journal`.
        study_name: default `<competition>-<track>`.
        pruner: "median" (default), "hyperband" or "none"; the TOML's [search] pruner otherwise.
        out: the tuning folder; default `submissions/<competition>/tune-<track>/`, so running
            the same command again continues the same study.
        processes: False runs the trials in this process (memory then grows with each trial).
        recycle_mib: memory growth (MiB) after which a worker process hands over to a fresh one.
        progress: a bar over the trials (True, False, or None: only where a terminal or notebook
            shows it).

    Returns:
        A `TuneResult`.
    """
    started = time.monotonic()
    # every check before anything is written
    if n_trials is not None and n_trials < 1:
        raise InputError(f"--trials must be at least 1. Received: trials={n_trials}")
    if time_budget is not None and not (0 < time_budget < math.inf):  # nan and inf too
        raise InputError(f"--time-budget must be a positive number of seconds. Received: {time_budget}")
    if n_trials is None and time_budget is None:
        n_trials = DEFAULT_TRIALS
    track = tracks.get(track)
    space, fixed = search_space(track, cfg)
    pruner = pruner or cfg.search.get("pruner", "median")
    make_pruner(pruner)
    # the track's parameters with the config's values: best.toml then lists every parameter
    base = {**cfg.params(track.name), **fixed}
    # the folds, classes and groups as every trial will see them; said once here
    for note in preflight(comp, cfg, track=track, params=base).notes:
        log(f"note: {note}")
    metric = metrics.get(comp.metric)
    out = Path(out) if out is not None else kaggle.submissions_root() / comp.name / f"tune-{track.name}"
    # a tuning folder is written into (the study goes on), not replaced: it must be new or kit's
    if out.is_dir() and kit_manifest(out) is not None:
        raise InputError(
            f"--out '{out}' is a run folder kit wrote, not a tuning folder; a study would write its "
            f"files among the run's. Pass a new folder. Received: out={out}"
        )
    check_out_dir(out, may_replace=is_tuning_dir)
    _check_same_study(out, comp.name, track.name)
    storage = str(storage if storage is not None else out / "study.journal")
    # the most epochs a fold can run: every trial reports fold k on the same steps
    spec = space.get("epochs", {})
    steps_per_fold = int(max(base.get("epochs") or 0, spec.get("high", 0), *spec.get("choices", [0]))) or 1000
    plan = Plan(
        comp=comp,
        cfg=cfg,
        track=track,
        space=space,
        base=base,
        trials_dir=out / "trials",
        steps_per_fold=steps_per_fold,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name or f"{comp.name}-{track.name}",
        pruner=pruner,
        direction=metric.direction,
        recycle_mib=recycle_mib,
        start=start_point(space, base),
    )
    opened = open_storage(storage)  # a database that cannot be reached leaves no folder behind
    out.mkdir(parents=True, exist_ok=True)
    # the summary step (plots, copies) needs a few seconds of the budget too
    deadline = started + time_budget - min(10.0, max(1.0, 0.05 * time_budget)) if time_budget else None
    with _optuna_quiet():
        study = plan.study(opened)
        # the parameters no trial searches are the same in every trial: best.toml writes them
        fixed_params = json.loads(json.dumps({k: v for k, v in sorted(base.items()) if k not in space}))
        _check_settings(
            study, {"track": track.name, **study_settings(comp, cfg), "fixed": fixed_params}, storage
        )
        if study.direction.name.lower() != metric.direction:
            raise InputError(
                f"Study '{plan.study_name}' in {storage} was made to {study.direction.name.lower()}, but "
                f"{comp.metric} is to {metric.direction}. Pass --study with a new name. Received: metric={comp.metric}"
            )
        log(
            f"{comp.name}: tuning {track.name} ({len(space)} parameters: {', '.join(space)}), "
            f"study '{plan.study_name}' in {safe_url(storage)}, {comp.metric} ({metric.direction}), "
            f"{pruner} pruner, {_limits(n_trials, time_budget)}"
        )
        recover_interrupted(study, log=log)
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        trial_bar = _trial_bar(comp.name, track.name, n_trials, len(finished), progress)
        if log is print and not trial_bar.disable:
            log = trial_bar.write  # lines go above the bar, not through it

        def on_trial(best: float | None) -> None:
            trial_bar.update(1)
            if best is not None:
                trial_bar.set_postfix(best=f"{best:.5f}", refresh=False)

        try:
            workers.run(plan, study, deadline=deadline, processes=processes, log=log, on_trial=on_trial)
        except KeyboardInterrupt:  # the command says what it left (kit.cli.INTERRUPTED)
            recover_interrupted(study, log=log)
            raise
        finally:
            trial_bar.close()
        return summarize(
            study,
            plan=plan,
            metric=metric,
            out=out,
            started=started,
            deadline=deadline,
            log=log,
        )


def _check_same_study(out: Path, competition: str, track: str) -> None:
    """A tuning folder goes on with its own study: another's would replace its best.toml and best/."""
    try:
        held = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return
    if not isinstance(held, dict):
        return
    had = (held.get("competition"), held.get("track"))
    if None not in had and had != (competition, track):
        raise InputError(
            f"--out '{out}' holds the {had[1]} study of {had[0]}, whose best.toml, best/ and trials.csv "
            f"a {track} study of {competition} would replace. Pass another --out. "
            f"Received: track={track}, competition={competition}"
        )


def is_tuning_dir(folder: Path) -> bool:
    """Whether a folder is a tuning folder kit wrote (a study going on, or one finished): its
    summary.json has kit's mark, its study.journal is Optuna's, or its best/ or trials/ hold run
    folders kit wrote. Files of those names alone do not make it one: they would be replaced."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
        if isinstance(summary, dict) and summary.get("written_by") == WRITTEN_BY:
            return True
    except (OSError, ValueError):
        pass
    if is_journal(folder / "study.journal"):
        return True
    trials = folder / "trials"
    runs = [p for p in trials.iterdir() if p.is_dir()] if trials.is_dir() else []
    return written_by_kit(folder / "best") or bool(runs) and all(kit_manifest(p) is not None for p in runs)


def _trial_bar(name: str, track: str, n_trials: int | None, done: int, progress: bool | None):
    """A bar over the study's finished trials; no total when only a time budget limits it."""
    from kit.progress import bar

    total = max(n_trials, done) if n_trials is not None else None
    disable = None if progress is None else not progress
    return bar(total, initial=done, desc=f"{name} {track}", unit="trial", disable=disable)


@contextlib.contextmanager
def _optuna_quiet():
    """Optuna's own line per trial off while tuning (kit prints its own), and TensorFlow's warning
    that predict functions are retraced (each trial builds new models, so they must be); both
    back as they were after."""
    verbosity = optuna.logging.get_verbosity()
    tf_logger = logging.getLogger("tensorflow")
    tf_level = tf_logger.level
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        tf_logger.setLevel(tf_level)


def _limits(n_trials, time_budget) -> str:
    parts = [f"until {n_trials} finished trials" if n_trials else "no trial limit"]
    if time_budget:
        parts.append(f"time budget {time_budget:g} s")
    return ", ".join(parts)


def study_settings(comp: Competition, cfg: Config) -> dict:
    """What a study's trials are scored under: the same target, metric and folds make their scores
    comparable, and a study goes on only under the settings it was made with."""
    return {
        "target": comp.target, "metric": comp.metric, "group": comp.group, "time": comp.time,
        "na": list(cfg.na), "split": cfg.split, "folds": cfg.folds, "seed": cfg.seed, "seeds": cfg.seeds,
        "positive": str(comp.classes[1]) if comp.task == "binary" else None,
    }  # fmt: skip


def _check_settings(study: optuna.Study, settings: dict, storage: str) -> None:
    """Record the settings in a new study; refuse to go on with a study made under others."""
    recorded = study.user_attrs.get("kit_settings")
    if recorded is None:
        study.set_user_attr("kit_settings", settings)
        return
    # a setting the study's kit did not record yet is recorded now, not held against it
    changed = [k for k in settings if k in recorded and recorded[k] != settings[k]]
    if not changed and set(settings) - set(recorded):
        study.set_user_attr("kit_settings", {**settings, **recorded})
    if changed:

        def differing(k):  # of the fixed parameters, only those that changed
            if k != "fixed" or not isinstance(recorded[k], dict):
                return [(k, recorded[k], settings[k])]
            keys = sorted(set(recorded[k]) | set(settings[k]))
            return [(f"[{settings['track']}] {p}", recorded[k].get(p), settings[k].get(p))
                    for p in keys if recorded[k].get(p) != settings[k].get(p)]  # fmt: skip

        diffs = [d for k in changed for d in differing(k)]
        was = ", ".join(f"{k}={old!r}" for k, old, _ in diffs)
        now = ", ".join(f"{k}={new!r}" for k, _, new in diffs)
        raise InputError(
            f"Study '{study.study_name}' in {safe_url(storage)} was made with {was}; its trials' scores do "
            f"not compare with this run's. Pass --study with a new name (or another --out). Received: {now}"
        )
