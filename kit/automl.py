"""`kit auto DIR --time-budget SECONDS`: the best submission a time budget allows.

The plan follows what pays off first on tabular data: gradient-boosted trees and a linear model
(seconds each), then the baseline network, then the advanced track when the baseline's time says
it fits, then a slice of the budget for tuning the trees with Optuna (their best trial joins as a
member), then more seeds of the baseline and then of the advanced track while time is left. Every
member runs on the same folds (so they blend), as a run folder of its own under the competition's
submissions folder (`auto-trees/`, `auto-baseline/`, ...), and `auto-blend/` blends those that
finished. A member is started only when the time left
is expected to hold it, and one that would overrun is stopped at an epoch's end: the whole call
ends within the budget and a tenth. A kill leaves every finished member in place, and running the
same command again reuses them (and resumes the advanced track from its checkpoints).

Example:
    >>> result = kit.auto("data/titanic", time_budget=300)
    >>> result.score, result.submission_path
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit import boundary, kaggle, metrics, tracks
from kit.competition import Competition
from kit.config import Config
from kit.errors import InputError
from kit.io import written_by_kit
from kit.run import Run, cross_validate

DEFAULT_BUDGET = 300.0
# the advanced track against the baseline, per run, measured on the shared competitions
ADVANCED_OVER_BASELINE = 2.5
# the share of the budget kept for the blend at the end
BLEND_SHARE = 0.05
MAX_SEEDS = 5
# the share of the budget for tuning the trees, when it holds at least MIN_TRIALS of their runs
TUNE_SHARE = 0.2
MIN_TRIALS = 4


@dataclass
class Step:
    track: str
    seeds: int = 1
    tuned: bool = False  # the best trial of an Optuna study of the track, in a slice of the budget

    @property
    def name(self) -> str:
        return (
            f"auto-{self.track}"
            + (f"-seeds{self.seeds}" if self.seeds > 1 else "")
            + ("-tuned" if self.tuned else "")
        )

    @property
    def folder(self) -> str:
        """Its folder under `--out`: a tuned step's is the study's (its best run in `best/`)."""
        return f"auto-{self.track}-tuning" if self.tuned else self.name


@dataclass
class AutoResult:
    """What `auto` leaves: the final run (the blend, or the one member), and every member's."""

    final: Run
    members: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return self.final.score

    @property
    def submission_path(self) -> Path:
        return self.final.submission_path

    def __repr__(self) -> str:
        return f"AutoResult({self.final.competition}, {self.final.metric}={self.score:.5f}, {len(self.members)} members)"


def auto(
    comp: Competition,
    cfg: Config,
    *,
    time_budget: float = DEFAULT_BUDGET,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> AutoResult:
    """Run the plan within the budget, blend what finished, and write the blend's submission.

    Args:
        time_budget: seconds for the whole call, the blend included.
        out: the folder the members' and the blend's run folders go in (default
            `submissions/<competition>/`).
    """
    from kit.ensemble import blend, validation_folds
    from kit.tuning.callbacks import OutOfTime, _classes

    if time_budget is None or not (0 < time_budget < math.inf):  # nan and inf too
        raise InputError(f"--time-budget must be a positive number of seconds. Received: {time_budget}")
    started = time.monotonic()
    deadline = started + time_budget * (1 - BLEND_SHARE)
    root = Path(out) if out is not None else kaggle.submissions_root() / comp.name
    _check_outs(root)
    metric = metrics.get(comp.metric)
    log(
        f"{comp.name}: auto within {time_budget:g} s: trees and a linear model, then the networks while time is left"
    )
    finished: list[tuple[Step, Run]] = []
    seconds: dict[str, float] = {}
    timing: dict[str, float] = {}

    def deadline_callbacks(_fold: int) -> list:
        # called as each fold starts, whatever the track, so a track without epochs (trees, linear)
        # stops between folds too; the first member finishes, so that there is a submission
        if finished and time.monotonic() >= deadline:
            raise OutOfTime("the time budget ran out before a fold")
        return [_classes()["StopAtDeadline"](deadline, timing)]

    for planned in PLAN:
        step = planned
        if planned.seeds > 1:
            step = _seeds_step(planned, seconds, deadline - time.monotonic())
            if step is None:
                name = Step(planned.track).name
                log(f"{name}-seeds: skipped, the time left holds fewer than two more of its runs")
                continue
        if step.tuned:
            run = _tuned(step, comp, cfg, root, seconds, time_budget, deadline - time.monotonic(), log)
            if run is not None:
                finished.append((step, run))
            continue
        run_dir = root / step.folder
        reused = _reuse(run_dir, comp, cfg, step)
        if reused is not None:
            log(f"{step.name}: reusing {run_dir} ({comp.metric} {reused.score:.5f})")
            finished.append((step, reused))
            seconds[step.name] = reused.seconds
            continue
        estimate = _estimate(step, seconds)
        left = deadline - time.monotonic()
        if finished and left <= 0:
            log(f"{step.name}: skipped, the budget ran out")
            continue
        if estimate is not None and estimate > left:
            log(
                f"{step.name}: skipped, it would take about {estimate:.0f} s and {max(left, 0):.0f} s are left"
            )
            continue
        step_cfg = dataclasses.replace(cfg, seeds=step.seeds)
        t0 = time.monotonic()
        try:
            run = cross_validate(
                comp, step_cfg, step.track, out=run_dir, log=_indented(log), progress=progress,
                fold_callbacks=deadline_callbacks,
            )  # fmt: skip
        except OutOfTime:
            resumes = "checkpoint_seconds" in tracks.get(step.track).defaults
            log(
                f"{step.name}: stopped, the budget ran out "
                + ("(its checkpoints stay; run again to go on)" if resumes else "(run again to train it)")
            )
            break
        except InputError:
            raise  # the data or the settings: every member would meet it
        except Exception as err:  # noqa: BLE001 - one member's failure (a loss gone NaN) leaves the others
            saved = boundary.save_traceback(traceback.format_exc())
            log(
                f"{step.name}: failed, left out ({type(err).__name__}: {boundary.one_line(err)}; traceback: {saved})"
            )
            continue
        seconds[step.name] = time.monotonic() - t0
        finished.append((step, run))
        log(f"{step.name}: {comp.metric} {run.score:.5f} in {seconds[step.name]:.0f} s")
    if not finished:
        raise InputError(
            f"No member finished within --time-budget {time_budget:g} s. Give it more time. "
            f"Received: time_budget={time_budget:g}"
        )
    runs = [run for _, run in finished]
    if len(runs) > 1 and validation_folds(runs[0].oof) > 1:
        final = blend([r.run_dir for r in runs], out=root / "auto-blend", log=_indented(log))
    else:
        if len(runs) > 1:  # a holdout: no other fold to judge a blend's weights on
            log("auto-blend: skipped, one validation fold (a holdout); the best member's submission stands")
        sign = 1 if metric.direction == "maximize" else -1
        final = max(runs, key=lambda r: sign * r.score)
    weights = _weights(final)
    members = [
        {"member": step.name, "track": step.track, "score": run.score, "seconds": round(seconds.get(step.name, 0.0), 1),
         "weight": weights.get(str(run.run_dir)), "run_dir": str(run.run_dir)}
        for step, run in finished
    ]  # fmt: skip
    total = time.monotonic() - started
    _print_table(members, final, metric, log)
    log(f"auto: {comp.metric} {final.score:.5f} in {total:.0f} s (budget {time_budget:g} s)")
    final = kaggle.publish(final, log=log)
    log(f"submission: {final.submission_path}")
    return AutoResult(final=final, members=members, seconds=total)


# trees, a linear model, baseline, advanced, tuned trees, then more seeds of each network; what
# fits is decided as it goes. The linear member errs unlike the others: with it, the blend of trees
# and baseline gained CV on 6 of the shared six and synthetic competitions (tps-aug-2022 0.5834 ->
# 0.5852), tied on 2 and lost on 1 (bike-sharing 0.3663 -> 0.3684)
def _check_outs(root: Path) -> None:
    """Every folder the plan may write, refused before the first member trains where it is a user's
    (`kit.io.check_out_dir`): met after the members, it would leave their runs written and the
    budget spent for nothing."""
    from kit.io import check_out_dir
    from kit.tuning import is_tuning_dir

    for planned in PLAN:
        for seeds in range(2, planned.seeds + 1) if planned.seeds > 1 else [1]:
            step = dataclasses.replace(planned, seeds=seeds)
            check_out_dir(root / step.folder, may_replace=is_tuning_dir if step.tuned else None)
    check_out_dir(root / "auto-blend")


PLAN = (
    Step("trees"),
    Step("linear"),
    Step("baseline"),
    Step("advanced"),
    Step("trees", tuned=True),
    Step("baseline", seeds=MAX_SEEDS),
    Step("advanced", seeds=MAX_SEEDS),
)


def _tuned(
    step: Step, comp, cfg, root: Path, seconds: dict, time_budget: float, left: float, log
) -> Run | None:
    """Tune the track for a slice of the budget (the study goes on where an earlier call left it);
    its best trial's run folder is the member. None when the slice holds too few runs of it or
    its own parameters stay the best."""
    from kit import tuning

    single = seconds.get(Step(step.track).name)
    budget = min(TUNE_SHARE * time_budget, left)
    if single is None or budget < MIN_TRIALS * max(single, 1.0):
        log(f"{step.name}: skipped, the time left holds fewer than {MIN_TRIALS} runs of it")
        return None
    t0 = time.monotonic()
    # a study per set of settings: a call with another metric or split starts its own, beside it
    key = hashlib.sha1(json.dumps(tuning.study_settings(comp, cfg), sort_keys=True).encode()).hexdigest()[:8]
    result = tuning.tune(
        comp, cfg, step.track, time_budget=budget, out=root / step.folder,
        study_name=f"{comp.name}-{step.track}-{key}", log=_indented(log), processes=False, progress=False,
    )  # fmt: skip
    seconds[step.name] = time.monotonic() - t0
    if result.best_run is None or result.best_trial == 0:
        log(f"{step.name}: its own parameters stay the best after {result.n_complete} trials")
        return None
    log(
        f"{step.name}: {comp.metric} {result.best_score:.5f} (trial {result.best_trial}) in {seconds[step.name]:.0f} s"
    )
    return _run_of(result.best_run, step.track)


def _seeds_step(step: Step, seconds: dict, left: float) -> Step | None:
    """As many seeds of the track (up to step.seeds) as the time left holds, from its one-seed run's
    time; None for fewer than 2 (or when its one-seed run did not finish)."""
    single = seconds.get(Step(step.track).name)
    if single is None:
        return None
    n = min(step.seeds, int(left // max(single, 1e-9)))
    return Step(step.track, seeds=n) if n >= 2 else None


def _estimate(step: Step, seconds: dict) -> float | None:
    """Seconds a step is expected to take, from what ran before it (None: nothing to go by)."""
    single, baseline = seconds.get(Step(step.track).name), seconds.get("auto-baseline")
    if step.seeds > 1 and single is not None:
        return step.seeds * single
    if step.track == "advanced" and baseline is not None:
        return ADVANCED_OVER_BASELINE * baseline
    return None


def _reuse(run_dir: Path, comp: Competition, cfg: Config, step: Step) -> Run | None:
    """An earlier call's member, if it ran the same track on the same folds with the same
    parameters; None otherwise (it is then run again, replacing it)."""
    import tomllib

    if not written_by_kit(run_dir) or not (run_dir / "oof.parquet").is_file():
        return None
    try:
        info = json.loads((run_dir / "metrics.json").read_text())
        saved = tomllib.loads((run_dir / "config.toml").read_text())
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    # the settings as they resolve now, against the member's config.toml: a member scored by another
    # metric or split on another column is run again, never blended under the new settings' names
    # (and its folds as they were used: fewer than asked where the groups or times are fewer)
    from kit.preflight import preflight

    plan = preflight(comp, cfg)
    now = cfg.resolved(comp, folds=None if plan.strategy == "holdout" else len(plan.folds)).to_dict()
    settings = ("target", "id", "metric", "group", "time", "positive", "na", "folds", "split")
    same = (
        info.get("track") == step.track
        and info.get("seed") == cfg.seed
        and info.get("seeds", 1) == step.seeds
        and all(saved.get(k) == now.get(k) for k in settings)
        and saved.get(step.track) == tracks.get(step.track).params(cfg.tracks.get(step.track))
        and manifest.get("data") == str(comp.root.resolve())
    )
    return _run_of(run_dir, step.track) if same else None


def _run_of(run_dir: Path, track: str) -> Run:
    """The `Run` of a finished run folder."""
    import polars as pl

    info = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return Run(
        competition=info["competition"], track=track, metric=info["metric"], score=info["score"],
        fold_scores=info["fold_scores"], run_dir=run_dir, submission_path=run_dir / "submission.csv",
        oof=pl.read_parquet(run_dir / "oof.parquet"), test_predictions=pl.read_parquet(run_dir / "test_predictions.parquet"),
        seconds=float(manifest.get("wall_seconds") or 0.0),
    )  # fmt: skip


def _weights(final: Run) -> dict:
    path = final.run_dir / "blend.json"
    if not path.is_file():
        return {str(final.run_dir): 1.0}
    return {m["run_dir"]: m["weight"] for m in json.loads(path.read_text())["members"]}


def _indented(log):
    return lambda line: log(f"  {line}")


def _print_table(members: list[dict], final: Run, metric, log) -> None:
    log("")
    log(f"| member | {metric.name} | seconds | weight |")
    log("|---|---:|---:|---:|")
    for m in members:
        weight = "-" if m["weight"] is None else f"{m['weight']:.3f}"
        log(f"| {m['member']} | {m['score']:.5f} | {m['seconds']:.0f} | {weight} |")
    if final.track == "blend":
        log(f"| blend | {final.score:.5f} | | |")
    log("")
