"""What a study leaves in its tuning folder: trials.csv, best.toml, best/, the plots, summary.json
and report.html.

Workers finishing together take turns (a lock file), and each file is replaced whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import polars as pl
from optuna.trial import TrialState

from kit.config import dumps
from kit.io import WRITTEN_BY, publish_dir, stage_dir, write_atomic, written_by_kit
from kit.reporting import timed_report
from kit.tuning.space import decode
from kit.tuning.study import safe_url
from kit.tuning.workers import Plan


@dataclass
class TuneResult:
    """What a tuning call leaves: the study, the best trial and where its files are."""

    study: optuna.Study
    track: str
    metric: str
    best_score: float | None
    best_trial: int | None
    best_params: dict | None
    n_complete: int
    n_pruned: int
    n_failed: int
    out: Path
    best_config: Path | None
    best_run: Path | None
    seconds: float

    def __post_init__(self):
        # absolute, so that they still point at the files after the notebook's %cd or os.chdir
        self.out = Path(os.path.abspath(self.out))
        if self.best_config is not None:
            self.best_config = Path(os.path.abspath(self.best_config))
        if self.best_run is not None:
            self.best_run = Path(os.path.abspath(self.best_run))

    def __repr__(self) -> str:
        score = "none" if self.best_score is None else f"{self.best_score:.5f}"
        return (
            f"TuneResult({self.track}, {self.metric}={score}, {self.n_complete} complete, "
            f"{self.n_pruned} pruned, {self.out})"
        )

    @property
    def report_path(self) -> Path:
        return self.out / "report.html"

    def show(self) -> None:
        """The study's report.html: in a notebook's output, else its path printed."""
        from kit.reporting import show

        show(self.report_path)


def summarize(
    study: optuna.Study,
    *,
    plan: Plan,
    metric,
    out: Path,
    started: float,
    deadline: float | None = None,
    log: Callable[[str], None] = print,
) -> TuneResult:
    """Write trials.csv, the plots, best.toml, best/ and summary.json for the study as it stands;
    best/ is run again (`Plan.cross_validate`) only where the time to `deadline` fits the best trial."""
    comp, cfg, track, space, base = plan.comp, plan.cfg, plan.track.name, plan.space, plan.base
    with _locked(out / ".summary.lock"):
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in TrialState}
        complete, pruned = counts[TrialState.COMPLETE], counts[TrialState.PRUNED]
        retried = stopped_trials(trials)  # only the others failed
        failed = sum(t.state == TrialState.FAIL and t.number not in retried for t in trials)
        said_failed = f"{failed} failed" + (f", {len(retried)} stopped and run again" if retried else "")
        write_atomic(out / "trials.csv", trials_frame(study).write_csv())
        best = study.best_trial if complete else None
        best_config = best_run = best_params = None
        if best is not None:
            best_params = {**base, **decode(space, best.params)}
            best_config = out / "best.toml"
            write_atomic(
                best_config, _best_toml(comp, cfg, plan.track, best_params, best, study, best_config)
            )
            left = math.inf if deadline is None else deadline - time.monotonic()
            fits = best.duration is None or left > 1.2 * best.duration.total_seconds()
            best_run = _publish_best(out, best.number, best_params, plan if fits else None, log)
            _plots(study, out, seed=cfg.seed, log=log)
        importances = _importances(study, seed=cfg.seed) if complete > 1 else None
        seconds = time.monotonic() - started
        summary = {
            "written_by": WRITTEN_BY,  # the tuning folder's mark (`kit.tuning.is_tuning_dir`)
            "competition": comp.name,
            "track": track,
            "study": study.study_name,
            "storage": safe_url(plan.storage),
            "metric": comp.metric,
            "direction": metric.direction,
            "best_score": None if best is None else best.value,
            "best_trial": None if best is None else best.number,
            "best_params": best_params,
            # a trial stopped and run again is "stopped", not one of the failures
            "trials": {
                **{s.name.lower(): n for s, n in counts.items()},
                "fail": failed,
                "stopped": len(retried),
            },
            "pruned_share": pruned / (complete + pruned) if complete + pruned else 0.0,
            "search_space": space,
            "importances": importances,
            "seconds": round(seconds, 2),
        }
        write_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
        timed_report(out, dest=out, log=log)
    if best is None:
        log(f"no trial complete yet ({pruned} pruned, {said_failed}); run again to go on")
    else:
        log(
            f"best {comp.metric} {best.value:.5f} (trial {best.number}); {complete} complete, {pruned} pruned, "
            f"{said_failed} in {seconds:.1f} s"
        )
        log(f"best config: {best_config}  ({plan.track.command} {comp.root} --config {best_config})")
        if best_run is not None:
            log(f"submission: {best_run / 'submission.csv'}")
    return TuneResult(
        study=study,
        track=track,
        metric=comp.metric,
        best_score=None if best is None else best.value,
        best_trial=None if best is None else best.number,
        best_params=best_params,
        n_complete=complete,
        n_pruned=pruned,
        n_failed=failed,
        out=out,
        best_config=best_config,
        best_run=best_run,
        seconds=seconds,
    )


# Optuna's trials_dataframe columns -> trials.csv's
_RENAMES = {
    "user_attrs_host": "host",
    "user_attrs_pid": "pid",
    "user_attrs_rss_mib": "rss_mib",
    "user_attrs_peak_rss_mib": "peak_rss_mib",
    "system_attrs_failed_trial": "retry_of",
}


def stopped_trials(trials: list) -> set[int]:
    """The trials stopped by Ctrl-C, a kill or the budget: Optuna marks them failed, and kit
    queues each again under a new number whose `failed_trial` (trials.csv's retry_of) names it."""
    return {t.system_attrs.get("failed_trial") for t in trials} - {None}


def trials_frame(study: optuna.Study) -> pl.DataFrame:
    """Every trial: number, state, value, seconds, last step, the retried trial, the worker and its
    memory, and each parameter (as text, so "256,128" shapes and floats read back alike)."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "datetime_start", "params",
                                          "user_attrs", "system_attrs"), multi_index=False)  # fmt: skip
    if frame.empty:
        return pl.DataFrame({"number": []})
    frame = pl.from_pandas(frame)
    trials = study.get_trials(deepcopy=False)
    last_step = {t.number: t.last_step for t in trials}
    frame = frame.rename({k: v for k, v in _RENAMES.items() if k in frame.columns}).with_columns(
        pl.col("state").str.to_lowercase(),
        pl.col("duration").dt.total_microseconds().truediv(1e6).alias("seconds"),
        pl.col("number").replace_strict(last_step, default=None).alias("last_step"),
        pl.col("datetime_start").dt.strftime("%Y-%m-%dT%H:%M:%S").alias("started"),
        *[pl.col(c).cast(pl.String).alias(c.replace("params_", "param_", 1)) for c in frame.columns if c.startswith("params_")],
    )  # fmt: skip
    # trial numbers and process ids as whole numbers (pandas held them as floats beside NaN)
    whole = [
        c for c in ("retry_of", "pid", "last_step") if c in frame.columns and frame[c].dtype.is_numeric()
    ]
    frame = frame.with_columns(*[pl.col(c).cast(pl.Int64, strict=False) for c in whole])
    # a stopped trial's row says so: "fail" is what failed on its own
    frame = frame.with_columns(
        pl.when(pl.col("number").is_in(list(stopped_trials(trials))) & (pl.col("state") == "fail"))
        .then(pl.lit("stopped"))
        .otherwise(pl.col("state"))
        .alias("state")
    )
    keep = ["number", "state", "value", "seconds", "last_step", *_RENAMES.values(), "started"]
    params = [c for c in frame.columns if c.startswith("param_")]
    return frame.select([c for c in keep if c in frame.columns] + params)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _best_toml(comp, cfg, track, params, best, study, path) -> str:
    resolved = cfg.resolved(comp, track=track.name, params=params)
    resolved.search = {}  # the search ranges stay in the competition's TOML
    header = (
        f"# Best trial of study '{study.study_name}': {comp.metric} {best.value:.5f} (trial {best.number}).\n"
        f"# Rerun it: {track.command} {comp.root} --config {path}\n"
    )
    return header + dumps(resolved.to_dict())


def _publish_best(out: Path, number: int, params: dict, rerun: Plan | None, log) -> Path | None:
    """Copy the best trial's run folder to out/best/, or run its parameters again (`rerun`, None
    where the time budget cannot fit it) where it ran on another machine or is a forecast, whose
    trial predicted the test with its folds' models instead of a refit on all rows."""
    source, dest = out / "trials" / f"{number:04d}", out / "best"
    if written_by_kit(dest) and _same_run(dest, number):
        return dest
    here = written_by_kit(source)
    skipped = here and _skipped_refit(source)
    if here and (rerun is None or not skipped):
        if skipped:
            log(
                f"best/ is trial {number}'s run, whose test came from its folds' models (the time budget "
                f"cannot fit a run with the refit on all rows): its best.toml given to the track refits"
            )

        def make(staging: Path) -> None:
            staging.rmdir()
            shutil.copytree(source, staging)

    elif rerun is not None:
        log(
            f"trial {number} ran on another machine; refitting its parameters here for the submission"
            if not here
            else f"running trial {number}'s parameters again with the refit on all rows for the forecast's submission"
        )

        def make(staging: Path) -> None:
            rerun.cross_validate(params, out=staging)

    else:
        log(f"trial {number}'s run folder is not here and the time budget is spent; best/ is not updated")
        return dest if dest.is_dir() else None
    staging = stage_dir(dest)
    try:
        make(staging)
        write_atomic(staging / "trial.json", {"trial": number})
        # the trial's page listed the other trials beside it; here it stands alone
        timed_report(staging, dest=dest, log=log)
    except BaseException:  # a failure or Ctrl-C leaves best/ as it was, and no half-made copy
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_dir(staging, dest)
    return dest


def _skipped_refit(run_dir: Path) -> bool:
    from kit.run import SKIPPED_REFIT

    try:
        return json.loads((run_dir / "metrics.json").read_text()).get("test_from") == SKIPPED_REFIT
    except (OSError, ValueError, AttributeError):
        return False


def _same_run(dest: Path, number: int) -> bool:
    try:
        return json.loads((dest / "trial.json").read_text())["trial"] == number
    except (OSError, ValueError, KeyError):
        return False


def _importances(study: optuna.Study, *, seed: int) -> dict | None:
    """fANOVA importance of each parameter (as importances.png draws it), for summary.json and
    the study's report; None where it cannot be computed (all trials alike)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
            )
        except (ValueError, RuntimeError):
            return None
    return {name: round(float(value), 6) for name, value in found.items()}


def _plots(study: optuna.Study, out: Path, *, seed: int, log) -> None:
    """history.png (score by trial) and importances.png (fANOVA importance of each parameter)."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are marked experimental
        plots = {
            "history.png": lambda: ovm.plot_optimization_history(study),
            "importances.png": lambda: ovm.plot_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
            ),
        }
        for name, plot in plots.items():
            try:
                ax = plot()
            except (ValueError, RuntimeError) as err:  # e.g. importances of a single trial
                log(f"note: no {name}: {err}")
                continue
            image = io.BytesIO()
            ax.figure.savefig(image, format="png", dpi=110, bbox_inches="tight")
            plt.close(ax.figure)
            write_atomic(out / name, image.getvalue())
