"""Cross-validation driver: folds -> track -> OOF and fold-averaged test predictions -> CV score
-> validated submission -> staged run folder (its files: `kit.run_folder`) -> leaderboard.

Every track goes through `cross_validate`, kit's own and a team's: the folds, the scores, the
submission checks and the run folder are the same for all of them.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kit import kaggle, metrics, runtime, tracks
from kit.competition import Competition
from kit.config import Config
from kit.derive import derive
from kit.errors import InputError
from kit.folds import Fold, FoldResult, as_result, fit_fold
from kit.io import publish_dir, stage_dir
from kit.preflight import preflight
from kit.reporting import timed_report
from kit.run_folder import check_work_dir, claim_run_dir, new_run_id, tidy_stopped_runs, write_run_files
from kit.split import fold_weights
from kit.submission import check_submission, make_submission

# seed s of a fold trains with seed + fold + SEED_STRIDE * s: other seeds than any fold's
SEED_STRIDE = 1000


@dataclass
class Run:
    """The result of a track: scores, predictions and where the files are (absolute paths)."""

    competition: str
    track: str
    metric: str
    score: float
    fold_scores: list[float]
    run_dir: Path
    submission_path: Path
    oof: pl.DataFrame
    test_predictions: pl.DataFrame
    seconds: float
    params: dict = field(default_factory=dict)
    # of `seconds`, what the report took (its permutation importance included)
    report_seconds: float | None = None

    def __post_init__(self):
        # absolute, so that they still point at the files after the notebook's %cd or os.chdir
        self.run_dir = Path(os.path.abspath(self.run_dir))
        self.submission_path = Path(os.path.abspath(self.submission_path))

    def __repr__(self) -> str:
        return f"Run({self.competition}, {self.track}, {self.metric}={self.score:.5f}, {self.run_dir})"

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    def show(self) -> None:
        """The run's report.html: in a notebook's output, else its path printed."""
        from kit.reporting import show

        show(self.report_path)


def cross_validate(
    comp: Competition,
    cfg: Config,
    track: str | tracks.Track | Callable,
    *,
    params: dict | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    fold_callbacks: Callable[[int], list] | None = None,
    progress: bool | None = None,
    refit: bool = True,
) -> Run:
    """Run a track on every fold, score the OOF predictions, write the run folder.

    Args:
        track: a registered track's name, a track file, a `kit.tracks.Track`, or a bare
            `fit_predict_fold(fold, params)` function.
        params: the track's parameters (over its defaults); default: the config's [<track>] table.
        out: run folder; default `submissions/<competition>/<run-id>/`.
        fold_callbacks: fold index -> extra Keras callbacks for that fold (e.g. pruning).
        progress: bars over folds and epochs (True, False, or None: only where a terminal or
            notebook shows them).
        refit: after a time split whose test comes later than train, predict the test with the
            track refit on every training row (`_refit`), where the track can; False: with the
            folds' models (a tuning trial, which needs only the score).

    Returns:
        A `Run`. The run folder appears whole, once: nothing is written when a check fails.

    Example:
        >>> comp, cfg = kit.load("data/titanic")
        >>> run = cross_validate(comp, cfg, "baseline", params={"dropout": 0.3})
    """
    started = time.perf_counter()
    phases = {"before_run": runtime.process_seconds()}
    track = tracks.get(track)
    params = track.params(cfg.tracks.get(track.name) if params is None else params)
    chief = runtime.is_chief()
    # every check that needs no training first, before a folder is made or TensorFlow imported
    plan = preflight(comp, cfg, track=track, params=params, out=out if chief else None)
    for note in plan.notes:
        log(f"note: {note}")
    folds = plan.folds
    metric = metrics.get(comp.metric)
    train, roles = derive(comp.train, comp.roles, comp.parts)
    test, _ = derive(comp.test, comp.roles, comp.parts)
    y = comp.target_values()
    n_classes = len(comp.classes) if comp.task != "regression" else 0
    scratch = None
    if chief:
        run_dir, claim = claim_run_dir(
            Path(out) if out is not None else kaggle.submissions_root() / comp.name / new_run_id(track.name),
            fixed=out is not None,
        )
    else:
        # every worker of a cluster trains; only the chief keeps files
        scratch = Path(tempfile.mkdtemp(prefix="kit-worker-"))
        run_dir, claim = claim_run_dir(scratch / "run", fixed=True)
    try:
        run = _cross_validate(
            comp, cfg, track, params, run_dir=run_dir, plan=plan, folds=folds, metric=metric,
            train=train, test=test, roles=roles, y=y, n_classes=n_classes, chief=chief, started=started,
            log=log, fold_callbacks=fold_callbacks, progress=progress, phases=phases, refit=refit,
        )  # fmt: skip
    except BaseException:
        claim.release(failed=True)
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    claim.release(failed=False)
    return run


# metrics.json's "test_from" where a forecast's test came from the folds' models for want of a refit
SKIPPED_REFIT = "the folds' models (a tuning trial's run: no refit on all rows)"


def _cross_validate(
    comp, cfg, track, params, *, run_dir, plan, folds, metric, train, test, roles, y, n_classes,
    chief, started, log, fold_callbacks, progress, phases, refit,
) -> Run:  # fmt: skip
    """The folds, the score and the run folder, for `cross_validate` once its checks have passed
    and its run folder is claimed."""
    strategy = plan.strategy
    log(
        f"{comp.name}: {comp.task}, target '{comp.target}', metric {comp.metric}, "
        f"{plan.describe()}, {len(folds)} fold(s), {train.height} train rows, {train.width} features"
    )
    tidy_stopped_runs(run_dir.parent, run_dir.name, log)
    work = run_dir.parent / f".{run_dir.name}.work"
    # checkpoints resume only where the same rows train the same network: the folds (so the seed,
    # the split and the data's rows) and the columns' roles and missing tokens count as much as
    # the parameters
    check_work_dir(work, {**params, "_run": _resume_key(comp, cfg, folds, roles)}, log)
    # from here on, a stop removes the work folder unless it holds checkpoints to resume from
    try:
        phases["checks_and_derive"] = time.perf_counter() - started
        t0 = time.perf_counter()
        runtime.seed_everything(cfg.seed, rows=train.height)  # the first call imports TensorFlow and Keras
        phases["import_tensorflow"] = time.perf_counter() - t0
        track.begin(params, log=log)
        width = max(n_classes, 1) if comp.task != "regression" else 1
        oof = np.full((train.height, width), np.nan)
        fold_of = np.full(train.height, -1)
        test_sum = np.zeros((test.height, width))
        # equal, but a time split's later folds count more where the test comes after them
        weights = fold_weights(folds, strategy, test_later=plan.test_later)
        fold_scores, results, histories, fold_seconds = [], [], [], []
        # a label metric's cut is chosen once every fold is in: until then a fold's labels are at 0.5
        at_half = " at 0.5" if metrics.tunes_threshold(metric, comp.task, comp.submission.kind) else ""
        from kit.progress import FoldProgress  # imports Keras, which `kit inspect` never needs

        def fold_of_rows(index: int, train_rows, val_rows, seed_index: int, callbacks: list) -> Fold:
            """Fold `index` (the refit on all rows: one past the last) of these rows, for a seed."""
            name = f"fold_{index}" if index < len(folds) else "refit"
            return Fold(
                index=index,
                rows=(train, train_rows, val_rows),
                test=test,
                y_train=y[train_rows],
                y_val=y[val_rows],
                roles=roles,
                task=comp.task,
                n_classes=n_classes,
                metric=comp.metric,
                seed=cfg.seed + index + SEED_STRIDE * seed_index,
                callbacks=callbacks,
                work_dir=work / (name if seed_index == 0 else f"{name}_seed_{seed_index}"),
                log=log,
            )

        bars = FoldProgress(
            len(folds),
            epochs=params.get("epochs"),
            desc=f"{comp.name} {track.name}",
            disable=None if progress is None else not progress,
        )
        log = bars.wrap_log(log)
        with bars:
            for k, (tr, va) in enumerate(folds):
                t0 = time.perf_counter()
                val_sum, test_sum_k, history = (
                    np.zeros((len(va), width)),
                    np.zeros((test.height, width)),
                    None,
                )
                # seed bagging: the fold trained cfg.seeds times with other seeds, predictions averaged
                for s in range(cfg.seeds):
                    fold = fold_of_rows(
                        k, tr, va, s, [*bars.start_fold(k), *(fold_callbacks(k) if fold_callbacks else [])]
                    )
                    result = as_result(fit_fold(track, fold, params), fold, comp, track.name, params)
                    if results:
                        results[-1].predict = None  # only the last fold's is used; the rest hold models
                    results.append(result)
                    val_sum += result.val.reshape(len(va), width)
                    test_sum_k += result.test.reshape(test.height, width)
                    history = history or result.history
                val_pred = val_sum / cfg.seeds
                histories.append(history)
                oof[va] = val_pred
                fold_of[va] = k
                test_sum += weights[k] * test_sum_k / cfg.seeds
                flat_val = val_pred.reshape(-1) if comp.task == "regression" else val_pred
                fold_scores.append(_finite_score(metric, y[va], flat_val, fold=k, track=track.name))
                bars.end_fold(fold_scores[-1])
                runtime.release_memory()  # before the next fold's copies are made
                fold_seconds.append(time.perf_counter() - t0)
                log(
                    f"  fold {k + 1}/{len(folds)}: {comp.metric} {fold_scores[-1]:.5f}{at_half} "
                    f"({time.perf_counter() - t0:.1f} s{f', {cfg.seeds} seeds' if cfg.seeds > 1 else ''})"
                )
        # the test from the folds' models (each result's share), or below from a refit on all rows
        test_pred, exported, refit_info = test_sum, results, {}
        shares = [w / cfg.seeds for w in weights for _ in range(cfg.seeds)]
        forecast = strategy == "time" and plan.test_later
        refit_with = track.refit_params(params, histories[-1]) if forecast else None
        if refit_with is not None and not refit:
            refit_with, refit_info = None, {"test_from": SKIPPED_REFIT}
        if refit_with is not None:
            t0 = time.perf_counter()
            refit_with, epochs = refit_with  # epochs None: a track without them
            # a budget (kit auto) that runs out during the refit keeps the folds' test predictions
            out_of_time = ()
            if fold_callbacks is not None:
                from kit.tuning.callbacks import OutOfTime

                out_of_time = (OutOfTime,)
            trained = f", {epochs} epochs" if epochs else ""
            try:
                test_pred, exported = _refit(
                    track, refit_with, epochs=epochs, comp=comp, cfg=cfg, fold_of_rows=fold_of_rows,
                    index=len(folds), rows=(np.arange(train.height), folds[-1][1]), width=width,
                    callbacks=fold_callbacks(len(folds)) if fold_callbacks else [],
                )  # fmt: skip
            except out_of_time:
                log(
                    "  the time budget ran out before the refit on all rows: the folds' models predict the test"
                )
            else:
                shares = [1.0 / cfg.seeds] * cfg.seeds
                phases["refit"] = time.perf_counter() - t0
                refit_info = {"test_from": f"a refit on all {train.height} training rows{trained}"}
                log(f"  refit on all {train.height} rows for the test{trained} ({phases['refit']:.1f} s)")
        finish_started = time.perf_counter()
        scored = fold_of >= 0  # time splits never validate the earliest rows
        flat = (lambda a: a.reshape(-1)) if comp.task == "regression" else (lambda a: a)
        score = _finite_score(metric, y[scored], flat(oof[scored]), fold=None, track=track.name)
        threshold, fold_cuts = None, []
        if metrics.tunes_threshold(metric, comp.task, comp.submission.kind):
            threshold, decided = metrics.decision_threshold(
                metric, y[scored], oof[scored], fold_of[scored], cuts=fold_cuts
            )
            if threshold is not None:
                score, fold_scores = scores_by_fold(metric, y[scored], decided, fold_of[scored])
                log(
                    f"  labels where P({comp.classes[1]}) > {threshold:.4f}, chosen on the folds (0.5 scored less); "
                    f"each fold at the cut the others chose: {', '.join(f'{v:.5f}' for v in fold_scores)}"
                )
        submission = make_submission(comp, flat(test_pred), threshold=threshold)
        check_submission(submission, comp)
        report_started = time.perf_counter()
        importance = (
            _importance(
                results[-1], fold, metric, seconds=importance_budget(report_started - started), seed=cfg.seed
            )
            if chief
            else None
        )
        report_seconds = time.perf_counter() - report_started
        staging = stage_dir(run_dir)
        try:
            files = write_run_files(
                staging,
                comp,
                # the folds used (fewer than asked where the groups or times are fewer)
                cfg.resolved(
                    comp, track=track.name, params=params, folds=None if strategy == "holdout" else len(folds)
                ),
                track=track.name,
                metric=metric,
                score=score,
                fold_scores=fold_scores,
                oof=oof,
                fold_of=fold_of,
                test_pred=test_pred,
                submission=submission,
                strategy=strategy,
                split_on={"group": plan.group, "time": plan.time},
                fold_weights=weights,
                histories=histories,
                started=started,
                importance=importance,
                phases=_phases(phases, fold_seconds, histories, finish_started),
                notes=plan.notes,
                # each fold's labels were cut where the other folds chose: the CV recomputes from them
                extra_metrics={
                    **refit_info,
                    **({} if threshold is None else {"threshold": threshold, "fold_thresholds": fold_cuts}),
                },
            )
            if chief:
                track.write_artifacts(
                    staging, comp=comp, cfg=cfg, params=params, results=exported, score=score, log=log,
                    work_dir=work, weights=shares,
                )  # fmt: skip
                report_seconds += timed_report(staging, dest=run_dir, log=log)
            publish_dir(staging, run_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        # checkpoints stay for a rerun to resume from; a work folder with nothing to resume goes
        if work.is_dir() and {p.name for p in work.iterdir()} <= {"params.json"}:
            shutil.rmtree(work, ignore_errors=True)
        raise
    spread = f" ± {np.std(fold_scores):.5f}" if len(fold_scores) > 1 else ""
    seconds = time.perf_counter() - started
    log(f"CV {comp.metric}: {score:.5f}{spread} ({metric.direction}) in {seconds:.1f} s")
    log(f"submission: {run_dir / 'submission.csv'}")
    return Run(
        competition=comp.name,
        track=track.name,
        metric=metric.name,
        score=score,
        fold_scores=fold_scores,
        run_dir=run_dir,
        submission_path=run_dir / "submission.csv",
        oof=files["oof"],
        test_predictions=files["test"],
        seconds=seconds,
        params=params,
        report_seconds=report_seconds if chief else None,
    )


def _refit(
    track, params, *, epochs, comp, cfg, fold_of_rows, index, rows, width, callbacks
) -> tuple[np.ndarray, list]:  # fmt: skip
    """A forecast's test predictions from the track trained on every training row for `epochs`
    epochs (the last fold's best; None: a track without epochs), and its results (per seed).

    A time split's folds estimate the score, but none of them trains on the latest rows (the last
    window only validates), which are the nearest to the test's days. Kaggle teams refit on all
    rows for the final model; so does this, as long as the last fold found best. The validation
    rows it is handed (`rows`: all, then the last window's) are among those it trains on: their
    score means nothing here.
    """
    from kit.training import StopAfter

    total, results = None, []
    for s in range(cfg.seeds):
        fold = fold_of_rows(index, *rows, s, [*([StopAfter(epochs)] if epochs else []), *callbacks])
        result = as_result(fit_fold(track, fold, params), fold, comp, track.name, params)
        test = result.test.reshape(-1, width)
        total = test if total is None else total + test
        results.append(result)
    return total / cfg.seeds, results


def _resume_key(comp, cfg, folds, roles) -> dict:
    digest = hashlib.sha1()
    for train_rows, val_rows in folds:
        digest.update(np.asarray(train_rows, dtype=np.int64).tobytes())
        digest.update(np.asarray(val_rows, dtype=np.int64).tobytes())
    return {
        "folds": digest.hexdigest(),
        "seed": cfg.seed,
        "seeds": cfg.seeds,
        "target": comp.target,
        "metric": comp.metric,
        "na": list(cfg.na),
        "roles": roles,
        "test_rows": comp.test.height,
    }


def _phases(phases: dict, fold_seconds: list[float], histories: list, finish_started: float) -> dict:
    """Where a run's seconds went, for the manifest. `first_fold_extra` is the first fold's time
    beyond its epochs at the later folds' median seconds per epoch: mostly tracing the model's
    graphs, which later folds reuse. `finish` is scoring, the submission, permutation importance
    and the files up to the manifest (the report and an export come after)."""
    epochs = [len((h or {}).get("loss") or []) for h in histories]
    extra = None
    if len(fold_seconds) > 1 and all(epochs):
        per_epoch = float(np.median([s / e for s, e in zip(fold_seconds[1:], epochs[1:], strict=True)]))
        extra = fold_seconds[0] - epochs[0] * per_epoch
    out = {**phases, "folds": fold_seconds, "first_fold_extra": extra,
           "finish": time.perf_counter() - finish_started}  # fmt: skip
    return {
        k: (None if v is None else [round(x, 2) for x in v] if isinstance(v, list) else round(max(v, 0.0), 2))
        for k, v in out.items()
    }


# Permutation importance for the report gets this share of the run's time so far, at most
# IMPORTANCE_SECONDS: with the page itself the report stays within a tenth of a run.
IMPORTANCE_SHARE = 0.03
IMPORTANCE_SECONDS = 5.0


def importance_budget(elapsed: float) -> float:
    return min(IMPORTANCE_SECONDS, IMPORTANCE_SHARE * elapsed)


def _importance(result: FoldResult, fold: Fold, metric, *, seconds: float, seed: int) -> dict | None:
    """The last fold's permutation importance, or None when the track gave no predict function.

    A failure is recorded (the report says what happened), never raised: the run is done.
    """
    if result.predict is None:
        return None
    from kit.reporting.importance import permutation_importance

    try:
        found = permutation_importance(
            result.predict, fold.val, fold.y_val, metric=metric, seconds=seconds, seed=seed
        )
    except Exception as err:  # noqa: BLE001
        return {"error": f"{type(err).__name__}: {err}", "fold": fold.index}
    finally:
        result.predict = None
    return {"fold": fold.index, **found}


def scores_by_fold(metric, y, pred, fold_of) -> tuple[float, list[float]]:
    """The CV score of out-of-fold predictions and each fold's (`fold_of`: the validated rows' folds)."""
    return float(metric(y, pred)), [
        float(metric(y[fold_of == k], pred[fold_of == k])) for k in np.unique(fold_of)
    ]


def _finite_score(metric, y_true, pred, *, fold: int | None, track: str) -> float:
    """The metric, which must be a number: a NaN would pass for a score in metrics.json and the
    leaderboard. The pre-flight checks make the usual cause (a fold without a class) impossible."""
    score = metric(y_true, pred)
    if not math.isfinite(score):
        where = f"fold {fold + 1}" if fold is not None else "the out-of-fold predictions"
        raise InputError(
            f"{metric.name} of {where} is {score}: the metric cannot score these rows (track '{track}'). "
            f"Pass another --metric or --split. Received: score={score}"
        )
    return score
