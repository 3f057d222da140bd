"""Cross-validation driver and run folders: folds -> OOF and fold-averaged test predictions ->
CV score -> validated submission -> run folder -> leaderboard."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from kit import kaggle, metrics, runtime
from kit.competition import Competition
from kit.config import Config
from kit.errors import InputError
from kit.prep import derive
from kit.split import make_folds, resolve_strategy
from kit.submission import make_submission, write_submission


@dataclass
class Fold:
    """What a model sees of one fold: derived feature frames, targets and the task."""

    index: int
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    y_train: np.ndarray
    y_val: np.ndarray
    roles: dict[str, str]
    task: str
    n_classes: int
    metric: str
    seed: int
    callbacks: list = field(default_factory=list)


@dataclass
class Run:
    """The result of a track: scores, predictions and where the files are."""

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

    def __repr__(self) -> str:
        return f"Run({self.competition}, {self.track}, {self.metric}={self.score:.5f}, {self.run_dir})"


def prediction_columns(comp: Competition) -> list[str]:
    if comp.task == "regression":
        return ["prediction"]
    return [f"proba_{c}" for c in comp.classes]


def cross_validate(
    comp: Competition,
    cfg: Config,
    fit_predict_fold: Callable[[Fold, dict], tuple[np.ndarray, np.ndarray]],
    *,
    track: str,
    params: dict,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    fold_callbacks: Callable[[int], list] | None = None,
    progress: bool | None = None,
) -> Run:
    """Run `fit_predict_fold` on every fold, score the OOF predictions, write the run folder.

    Args:
        fit_predict_fold: (fold, params) -> (validation predictions, test predictions).
        track: "baseline", "advanced", ... (names the run folder and the leaderboard row).
        params: the track's parameters, passed to `fit_predict_fold` as they are.
        out: run folder; default `submissions/<competition>/<run-id>/`.
        progress: bars over folds and epochs (True, False, or None: only where a terminal or
            notebook shows them).

    Returns:
        A `Run`. Nothing is written when a check fails.
    """
    started = time.perf_counter()
    runtime.seed_everything(cfg.seed)
    metric = metrics.get(comp.metric)
    train, roles = derive(comp.train, comp.roles, comp.parts)
    test, _ = derive(comp.test, comp.roles, comp.parts)
    y = comp.target_values()
    n_classes = len(comp.classes) if comp.task != "regression" else 0
    strategy = resolve_strategy(cfg.split, task=comp.task, group=comp.group, time=comp.time)
    folds = make_folds(
        train.height,
        strategy=strategy,
        n_splits=cfg.folds,
        seed=cfg.seed,
        y=y if comp.task != "regression" and strategy in ("stratified", "holdout") else None,
        groups=comp.train[comp.group].cast(pl.String).fill_null("").to_numpy() if comp.group else None,
        order=_time_order(comp) if strategy == "time" else None,
    )
    log(
        f"{comp.name}: {comp.task}, target '{comp.target}', metric {comp.metric}, "
        f"{strategy} split, {len(folds)} fold(s), {train.height} train rows, {train.width} features"
    )
    width = max(n_classes, 1) if comp.task != "regression" else 1
    oof = np.full((train.height, width), np.nan)
    fold_of = np.full(train.height, -1)
    test_sum = np.zeros((test.height, width))
    fold_scores = []
    from kit.progress import FoldProgress  # imports Keras, which `kit inspect` never needs

    bars = FoldProgress(
        len(folds),
        epochs=params.get("epochs"),
        desc=f"{comp.name} {track}",
        disable=None if progress is None else not progress,
    )
    log = bars.wrap_log(log)
    with bars:
        for k, (tr, va) in enumerate(folds):
            t0 = time.perf_counter()
            fold = Fold(
                index=k,
                train=train[tr],
                val=train[va],
                test=test,
                y_train=y[tr],
                y_val=y[va],
                roles=roles,
                task=comp.task,
                n_classes=n_classes,
                metric=comp.metric,
                seed=cfg.seed + k,
                callbacks=[*bars.start_fold(k), *(fold_callbacks(k) if fold_callbacks else [])],
            )
            val_pred, test_pred = fit_predict_fold(fold, params)
            oof[va] = val_pred.reshape(len(va), width)
            fold_of[va] = k
            test_sum += test_pred.reshape(test.height, width)
            fold_scores.append(metric(y[va], val_pred))
            bars.end_fold(fold_scores[-1])
            log(
                f"  fold {k + 1}/{len(folds)}: {comp.metric} {fold_scores[-1]:.5f} ({time.perf_counter() - t0:.1f} s)"
            )
    test_pred = test_sum / len(folds)
    scored = fold_of >= 0  # time splits never validate the earliest rows
    flat = (lambda a: a.reshape(-1)) if comp.task == "regression" else (lambda a: a)
    score = metric(y[scored], flat(oof[scored]))
    submission = make_submission(comp, flat(test_pred))
    run = _write_run(
        comp,
        cfg,
        track=track,
        params=params,
        metric=metric,
        score=score,
        fold_scores=fold_scores,
        oof=oof,
        fold_of=fold_of,
        test_pred=test_pred,
        submission=submission,
        out=out,
        started=started,
        strategy=strategy,
    )
    spread = f" ± {np.std(fold_scores):.5f}" if len(fold_scores) > 1 else ""
    log(f"CV {comp.metric}: {score:.5f}{spread} ({metric.direction}) in {run.seconds:.1f} s")
    log(f"submission: {run.submission_path}")
    return run


def _time_order(comp: Competition) -> np.ndarray:
    from kit.competition import parse_datetime

    s = comp.train[comp.time]
    if s.dtype.is_numeric():
        return s.to_numpy()
    return parse_datetime(s).dt.epoch("s").fill_null(0).to_numpy()


def new_run_id(track: str) -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{track}"


def _write_run(
    comp,
    cfg,
    *,
    track,
    params,
    metric,
    score,
    fold_scores,
    oof,
    fold_of,
    test_pred,
    submission,
    out,
    started,
    strategy,
) -> Run:
    run_dir = Path(out) if out is not None else kaggle.submissions_root() / comp.name / new_run_id(track)
    if run_dir.exists() and any(run_dir.iterdir()) and not (run_dir / "manifest.json").exists():
        raise InputError(
            f"--out '{run_dir}' is a folder with other files in it. Pass a new or empty folder, or "
            f"a previous run folder to replace. Received: out={run_dir}"
        )
    # everything goes to a hidden sibling first; the rename at the end publishes it whole
    staging = run_dir.parent / f".{run_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write_submission(submission, comp, staging / "submission.csv")
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
        oof_frame.write_parquet(staging / "oof.parquet")
        test_frame.write_parquet(staging / "test_predictions.parquet")
        seconds = time.perf_counter() - started
        (staging / "metrics.json").write_text(
            json.dumps(
                {
                    "competition": comp.name,
                    "track": track,
                    "metric": metric.name,
                    "direction": metric.direction,
                    "score": score,
                    "fold_scores": fold_scores,
                    "split": strategy,
                    "folds": len(fold_scores),
                },
                indent=2,
            )
        )
        # the config that reproduces this run, inferred values included
        resolved = copy.deepcopy(cfg).update(
            {
                "target": comp.target,
                "id": comp.id,
                "metric": comp.metric,
                "group": comp.group,
                "time": comp.time,
            },
            source="the run",
        )
        if track in ("baseline", "advanced"):
            setattr(resolved, track, dict(params))
        resolved.write(staging / "config.toml")
        (staging / "manifest.json").write_text(
            json.dumps(
                {
                    "track": track,
                    "seed": cfg.seed,
                    "started": datetime.now().isoformat(timespec="seconds"),
                    "wall_seconds": round(seconds, 2),
                    "command": sys.argv,
                    "git_commit": runtime.git_commit(),
                    "data": str(comp.root.resolve()),
                    "versions": runtime.versions(),
                },
                indent=2,
            )
        )
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Run(
        competition=comp.name,
        track=track,
        metric=metric.name,
        score=score,
        fold_scores=fold_scores,
        run_dir=run_dir,
        submission_path=run_dir / "submission.csv",
        oof=oof_frame,
        test_predictions=test_frame,
        seconds=seconds,
    )


def leaderboard(root: str | Path | None = None) -> list[dict]:
    """Every run under `root` (default: where runs go here), best CV first within each competition."""
    root = kaggle.submissions_root() if root is None else root
    rows = []
    for path in sorted(Path(root).glob("*/*/metrics.json")):
        info = json.loads(path.read_text())
        info["run_dir"] = str(path.parent)
        rows.append(info)
    rows.sort(key=lambda r: (r["competition"], -r["score"] if r["direction"] == "maximize" else r["score"]))
    return rows
