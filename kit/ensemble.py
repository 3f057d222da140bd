"""Blend runs by their out-of-fold predictions, as Kaggle teams do.

Runs of any tracks on the same rows and folds (same split and seed) leave out-of-fold predictions
that a blend can be fit on without leaking: each row's prediction comes from a model that never
saw it. Three ways to combine them, judged against each other and against the best run alone by
CV on those same folds:

- `hill`: ensemble selection (Caruana et al., ICML 2004): start from the best run, then add, with
  replacement, whichever run improves the blend's OOF score most, until none does. The weights
  are how often each run was picked.
- `bagged`: the same on bootstrap samples of the rows, weights averaged, so that a few lucky rows
  do not decide them.
- `stack`: a level-2 model on the runs' predictions: logistic regression for classification,
  ridge for regression.
- `best`: the best run alone. `auto` falls back to it when, on the held-out folds, every
  combination scores below it: weights that only fit the OOF rows they were chosen on.

Predictions are blended where the metric measures them: probabilities for classification, and
log1p(values) for rmsle (so a blend of good log predictions stays good). The blend's own run
folder holds what every run folder holds (OOF, fold-averaged test predictions, metrics, a
validated submission), plus `weights.csv` and `blend.json`; when every member exported a model,
`model/` is one SavedModel of the weighted blend that `kit predict` serves.

Example:
    >>> run = kit.blend(["submissions/titanic/a", "submissions/titanic/b"])
    >>> run.score, run.run_dir
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from kit import kaggle, metrics
from kit.errors import InputError
from kit.io import check_out_dir, publish_dir, stage_dir, write_atomic, written_by_kit
from kit.run import Run, scores_by_fold
from kit.run_folder import new_run_id, write_run_files
from kit.split import describe
from kit.submission import check_submission, make_submission
from kit.targets import class_probabilities

METHODS = ("auto", "hill", "bagged", "stack", "best")
MAX_STEPS = 100  # additions of hill climbing; it stops sooner when no run helps
BAGS = 20  # bootstrap samples of the rows for "bagged"


@dataclass
class Member:
    """A run folder's out-of-fold and test predictions, in kit's prediction form."""

    run_dir: Path
    track: str
    score: float
    info: dict
    oof: pl.DataFrame
    test: pl.DataFrame

    def matrix(self, frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
        return frame.select(columns).to_numpy().astype(np.float64)


def read_member(run_dir: str | Path) -> Member:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        here = "" if run_dir.is_absolute() else f" (looked for under {Path.cwd()})"
        raise InputError(
            f"Run folder '{run_dir}' not found{here}. Pass run folders, e.g. "
            f"submissions/<competition>/<run-id>. Received: run={run_dir}"
        )
    needed = ("metrics.json", "oof.parquet", "test_predictions.parquet", "manifest.json")
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing or not written_by_kit(run_dir):
        raise InputError(
            f"'{run_dir}' is not a run folder of kit's (it lacks {', '.join(missing) or 'its manifest'}). "
            f"Pass run folders, e.g. submissions/<competition>/<run-id>. Received: run={run_dir}"
        )
    name = "metrics.json"
    try:
        info = json.loads((run_dir / name).read_text())
        score = float(info["score"])
        name = "oof.parquet"
        oof = pl.read_parquet(run_dir / name)
        name = "test_predictions.parquet"
        test = pl.read_parquet(run_dir / name)
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(
            f"'{run_dir / name}' could not be read ({first}): the run folder is damaged. Run its track "
            f"again, or leave the folder out. Received: run={run_dir}"
        ) from None
    model = run_dir / "model"
    if (model / "saved_model.pb").is_file() and not (model / "variables" / "variables.index").is_file():
        raise InputError(
            f"'{model}' is damaged: its variables are missing, so a blend cannot export it. Run its track "
            f"again, or remove '{model}' (the blend then has no exported model). Received: run={run_dir}"
        )
    return Member(run_dir=run_dir, track=info.get("track", "?"), score=score, info=info, oof=oof, test=test)


def _runs_in(folder: Path) -> list[Path]:
    """The run folders kit wrote directly inside `folder` (blends left out), and a tuning folder's
    best run where it has their folds (`kit auto`'s tuned member); other folds could not blend."""
    inside = sorted(folder.iterdir()) if folder.is_dir() else []
    found = [p for p in inside if _is_run(p)]
    if not found:
        return []
    folds = _folds(found[0])
    return found + [p / "best" for p in inside if _is_run(p / "best") and _folds(p / "best").equals(folds)]


def _is_run(path: Path) -> bool:  # a run folder kit wrote, not a blend's
    if not (path.is_dir() and written_by_kit(path) and (path / "oof.parquet").is_file()):
        return False
    return json.loads((path / "metrics.json").read_text()).get("track") != "blend"


def _folds(run_dir: Path) -> pl.Series:
    return pl.read_parquet(run_dir / "oof.parquet", columns=["fold"])["fold"]


def runs_of(folder: str | Path) -> list[Path]:
    """The runs a folder stands for: the run folders in it (`submissions/<competition>/`), else, for a
    competition folder, every run of it under the submissions folder (blends left out; a tuning
    folder's best run where it has the others' folds)."""
    folder = Path(folder)
    root = folder
    found = _runs_in(folder)
    if not found:
        root = kaggle.submissions_root() / folder.resolve().name
        found = _runs_in(root)
    if len(found) < 2:
        name = folder.resolve().name
        where = f"in {folder}" if root == folder else f"in {folder} or under {root}"
        raise InputError(
            f"Blending needs at least two runs, found {len(found)} {where}. Pass two "
            f"run folders, a folder of run folders, or a competition folder with runs under "
            f"submissions/{name}/ (run two tracks first, e.g. kit baseline {folder}; kit trees {folder}). "
            f"Received: runs={len(found)}"
        )
    return found


def check_distinct(paths: list[Path]) -> None:
    """Refuse a run given twice: blended with itself it only adds weight to one run."""
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            same = "" if str(seen[key]) == str(p) else f" (as '{seen[key]}' and '{p}')"
            raise InputError(
                f"Run '{p}' is given twice{same}; a blend takes each run once. Received: "
                f"runs={[str(q) for q in paths]}"
            )
        seen[key] = p


def check_same_folds(members: list[Member]) -> None:
    """Refuse runs that do not share rows and folds: their OOF predictions cannot be combined."""
    first = members[0]
    for m in members[1:]:
        problem = None
        if m.info.get("competition") != first.info.get("competition"):
            problem = (
                f"it is of competition '{m.info.get('competition')}', not '{first.info.get('competition')}'"
            )
        elif m.info.get("metric") != first.info.get("metric"):
            problem = f"it is scored by {m.info.get('metric')}, not {first.info.get('metric')}"
        elif m.oof.height != first.oof.height or not m.oof["fold"].equals(first.oof["fold"]):

            def split(i):
                on = describe(i.get("split"), group=i.get("group"), time=i.get("time"))
                return f"{on}, {i.get('folds')} folds, seed {i.get('seed')}"

            if split(m.info) != split(first.info):
                problem = f"its folds differ ({split(m.info)} against {split(first.info)})"
            else:  # the same settings drew other folds: other rows, or other targets to stratify
                problem = f"its folds differ under the same settings ({split(m.info)}): its data differ"
        elif m.oof.columns[0] == first.oof.columns[0] and not m.oof[:, 0].equals(first.oof[:, 0]):
            problem = "its training rows differ"
        elif not _targets(m).equals(_targets(first)):  # folds a stratified split drew alike
            problem = "its training targets differ"
        elif not m.test[:, 0].equals(first.test[:, 0]):
            problem = "its test rows differ"
        if problem:
            raise InputError(
                f"Run '{m.run_dir}' cannot be blended with '{first.run_dir}': {problem}. Blend runs made with "
                f"the same --metric, --split, --group, --time, --folds and --seed on the same data. Received: run={m.run_dir}"
            )


def _targets(member: Member) -> pl.Series:
    """The training targets a run was scored on: its OOF's column before "fold"."""
    return member.oof[:, member.oof.columns.index("fold") - 1]


def _largest_blendable(members: list[Member], log) -> list[Member]:
    """Of a competition's runs, those that share rows, folds and metric with the most others (ties:
    the set with the best run); the rest are named and left out."""

    def key(m: Member):
        return (
            m.info.get("competition"), m.info.get("metric"), m.oof.height, m.oof["fold"].to_numpy().tobytes(),
            m.test.height,
        )  # fmt: skip

    groups: dict = {}
    for m in members:
        groups.setdefault(key(m), []).append(m)
    if len(groups) == 1:
        return members

    def best(group):
        metric = metrics.get(group[0].info["metric"])
        return max(_key(m.score, metric.better) for m in group)

    chosen = max(groups.values(), key=lambda g: (len(g), best(g)))
    left = [m for m in members if m not in chosen]
    if len(chosen) < 2:
        return members  # no two alike: check_same_folds names the first mismatch
    log(
        f"blending the {len(chosen)} runs of one competition on the same folds and metric; left out "
        f"(another competition, other folds, seed or metric): {', '.join(m.run_dir.name for m in left)}"
    )
    return chosen


def validation_folds(oof: pl.DataFrame) -> int:
    """How many folds validated a run's rows (a holdout: one), from its out-of-fold frame."""
    folds = oof["fold"].to_numpy()
    return len(np.unique(folds[folds >= 0]))


def check_folds_to_judge(members: list[Member]) -> None:
    """Refuse runs with one validation fold: a blend's weights are judged on folds they were not
    chosen on, and a holdout leaves no other fold."""
    if validation_folds(members[0].oof) < 2:
        raise InputError(
            f"Run '{members[0].run_dir}' validated on one fold (a holdout), so a blend's weights would be "
            f"chosen and scored on the same rows. Blend runs made with --folds 2 or more (--split kfold, "
            f"stratified, group or time). Received: folds=1"
        )


# ---------------------------------------------------------------------------------------------
# the three ways to combine predictions


def hill_climb(preds: list[np.ndarray], y: np.ndarray, score: Callable, better: Callable) -> np.ndarray:
    """Caruana's forward selection with replacement; returns the weights (picks / all picks)."""
    best = _best_index(preds, y, score, better)
    counts = np.zeros(len(preds))
    counts[best], current, current_score = 1, preds[best], score(y, preds[best])
    for _ in range(MAX_STEPS):
        n = counts.sum()
        candidates = [(current * n + p) / (n + 1) for p in preds]
        tried = [score(y, c) for c in candidates]
        j = max(range(len(preds)), key=lambda i: _key(tried[i], better))
        if not better(tried[j], current_score):
            break
        counts[j] += 1
        current, current_score = candidates[j], tried[j]
    return counts / counts.sum()


def _key(value: float, better: Callable):
    # max() by "better": a score that beats another sorts higher
    return value if better(1.0, 0.0) else -value


def _best_index(preds, y, score, better) -> int:
    """The member whose predictions score best."""
    return max(range(len(preds)), key=lambda i: _key(score(y, preds[i]), better))


def best_member(preds, y, score, better) -> np.ndarray:
    """All the weight on the member that scores best."""
    weights = np.zeros(len(preds))
    weights[_best_index(preds, y, score, better)] = 1.0
    return weights


def bagged_hill_climb(preds, y, score, better, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = []
    for _ in range(BAGS):
        rows = rng.integers(0, len(y), len(y))
        weights.append(hill_climb([p[rows] for p in preds], y[rows], score, better))
    return np.mean(weights, axis=0)


class Stack:
    """A level-2 model on the members' predictions (in the blend's space)."""

    def __init__(self, task: str, *, seed: int = 0):
        self.task, self.seed = task, seed

    def fit(self, preds: list[np.ndarray], y: np.ndarray) -> Stack:
        from sklearn.linear_model import LogisticRegression, RidgeCV

        x = self._features(preds)
        if self.task == "regression":
            self.model_ = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y)
        else:
            self.model_ = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
        return self

    def predict(self, preds: list[np.ndarray]) -> np.ndarray:
        x = self._features(preds)
        if self.task == "regression":
            return self.model_.predict(x)
        return class_probabilities(self.model_, preds[0].shape[1])(x)

    def _features(self, preds):
        if self.task == "regression":
            return np.column_stack(preds)
        # log-odds of each class's probability: where a linear model combines probabilities best
        p = np.clip(np.concatenate(preds, axis=1), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


@dataclass
class Blend:
    """What `fit_blend` chose: the method, the members' weights (or the level-2 model), the
    nested-CV score of each method, and the blend's OOF and test predictions (kit's form)."""

    method: str
    weights: np.ndarray
    stack: Stack | None
    nested: dict[str, float]
    oof: np.ndarray
    test: np.ndarray
    # why the method is not the one with the best nested CV, where it is not
    reason: str | None = None


def fit_blend(
    members: list[Member],
    y: np.ndarray,
    *,
    task: str,
    metric,
    method: str = "auto",
    seed: int = 0,
    thresholded: bool = False,
) -> Blend:
    """Choose how to combine the members by CV on their folds, then combine them on all rows.

    `thresholded`: a binary task's labels come from a cut chosen for the blend
    (`kit.metrics.decision_threshold`), so a combination is worth its score at its best cut (f1,
    mcc, ...; accuracy's is 0.5 for calibrated probabilities: climbing at the best cut of the rows
    it climbs on is optimistic). The blend falls back to its best member where that scores better
    with the cut chosen honestly, as each member's run chose its own.
    """
    if method not in METHODS:
        raise InputError(
            f"Unknown blend method '{method}'. Use one of: {', '.join(METHODS)}. Received: method={method}"
        )
    columns = [c for c in members[0].oof.columns if c.startswith("proba_") or c == "prediction"]
    to_space, from_space = _space(metric)
    oof = [to_space(m.matrix(m.oof, columns)) for m in members]
    test = [to_space(m.matrix(m.test, columns)) for m in members]
    fold = members[0].oof["fold"].to_numpy()
    scored = fold >= 0  # time splits never validate the earliest rows
    flat = (lambda a: a.reshape(-1)) if task == "regression" else (lambda a: a)
    # the level-2 model learns the target in the blend's space (log1p for rmsle), as the members are
    y_space = to_space(y) if task == "regression" else y

    def score(y_, p):
        if thresholded and not metrics.best_cut_is_half(metric):
            return metrics.at_best_threshold(metric, y_, p)
        return metric(y_, flat(from_space(p)))

    better = metric.better
    # in order of preference where their nested scores tie: the simpler first
    ways = {
        "hill": lambda p, y_: hill_climb(p, y_, score, better),
        "best": lambda p, y_: best_member(p, y_, score, better),
        "bagged": lambda p, y_: bagged_hill_climb(p, y_, score, better, seed=seed),
    }
    # each way judged on rows it was not fit on: fit on the other folds, score the held-out one
    nested_oof = {name: np.zeros_like(oof[0]) for name in [*ways, "stack"]}
    for k in np.unique(fold[scored]):
        fit_rows, held = scored & (fold != k), fold == k
        for name, way in ways.items():
            w = way([p[fit_rows] for p in oof], y[fit_rows])
            nested_oof[name][held] = sum(wi * p[held] for wi, p in zip(w, oof, strict=True))
        stack = Stack(task, seed=seed).fit([p[fit_rows] for p in oof], y_space[fit_rows])
        nested_oof["stack"][held] = stack.predict([p[held] for p in oof]).reshape(
            nested_oof["stack"][held].shape
        )

    def honest(p):
        # labels as a run writes them: each fold cut where the other folds chose (where that beats
        # 0.5); a cut chosen on the rows it is scored on would flatter every way alike
        return metric(y[scored], metrics.decision_threshold(metric, y[scored], p[scored], fold[scored])[1])

    judge = honest if thresholded else (lambda p: score(y[scored], p[scored]))
    nested = {name: judge(p) for name, p in nested_oof.items()}
    chosen = method if method != "auto" else max(nested, key=lambda n: _key(nested[n], better))
    picked = chosen

    best_single = _best_index([p[scored] for p in oof], y[scored], score, better)
    if chosen == "stack":
        stack = Stack(task, seed=seed).fit([p[scored] for p in oof], y_space[scored])
        weights = np.full(len(members), np.nan)
        blend_oof = nested_oof["stack"]
        blend_test = stack.predict(test).reshape(test[0].shape)
        if not better(judge(blend_oof), judge(oof[best_single])) and method == "auto":
            # a blend never scores below its best member: the best of the ways that start there
            chosen = max(ways, key=lambda n: _key(nested[n], better))
    if chosen != "stack":
        stack = None
        weights = ways[chosen]([p[scored] for p in oof], y[scored])
        blend_oof = sum(w * p for w, p in zip(weights, oof, strict=True))
        blend_test = sum(w * p for w, p in zip(weights, test, strict=True))
    if thresholded and method in ("auto", "hill", "best"):
        # the members' scores and the blend's are honest ones, which the climb did not see: the
        # best member where it wins there
        scores = [honest(p) for p in oof]
        top = max(range(len(oof)), key=lambda i: _key(scores[i], better))
        if better(scores[top], honest(blend_oof)):
            chosen, stack, weights = "best", None, np.eye(len(oof))[top]
            blend_oof, blend_test = oof[top], test[top]
    reason = None
    if chosen != picked:
        reason = (
            f"{picked} has the best nested CV, but fit on every row it scores below its best member, "
            f"which a blend never does"
        )
    return Blend(
        method=chosen,
        weights=weights,
        stack=stack,
        nested=nested,
        oof=flat(from_space(blend_oof)),
        test=flat(from_space(blend_test)),
        reason=reason,
    )


def _space(metric):
    """(to, from) the space the metric measures predictions in: log1p for rmsle, else as they are."""
    if metric.log_target:
        return (lambda p: np.log1p(np.clip(p, 0, None))), np.expm1
    return (lambda p: p), (lambda p: p)


# ---------------------------------------------------------------------------------------------
# the command


def blend(
    runs: list[str | Path] | str | Path,
    *,
    out: str | Path | None = None,
    method: str = "auto",
    log: Callable[[str], None] = print,
) -> Run:
    """Blend run folders (or every run of a competition) into a run folder of its own.

    Args:
        runs: run folders of the same competition, rows and folds; or one folder of run folders
            (`submissions/<competition>/`), whose runs are all blended; or one competition folder,
            whose runs under `submissions/<competition>/` are all blended.
        out: the blend's run folder (default `submissions/<competition>/<run-id>-blend/`).
        method: "auto" (the best by CV of the four), "hill", "bagged", "stack" or "best".

    Returns:
        A `Run` whose `track` is "blend".
    """
    from kit import api

    started = time.perf_counter()
    paths = [Path(r) for r in ([runs] if isinstance(runs, str | Path) else runs)]
    every_run = len(paths) == 1 and not (paths[0] / "metrics.json").is_file()
    if every_run:
        # on Kaggle, a competition's name as the other commands take it
        paths = [kaggle.resolve_data(paths[0])]
        if not paths[0].exists():
            raise InputError(
                f"'{paths[0]}' does not exist. Pass run folders, or a competition folder to blend its runs "
                f"under submissions/. Received: path={paths[0]}"
            )
        paths = runs_of(paths[0])
    if len(paths) < 2:
        raise InputError(f"Blending needs at least two run folders. Received: runs={[str(p) for p in paths]}")
    check_distinct(paths)
    members = [read_member(p) for p in paths]
    if every_run:
        members = _largest_blendable(members, log)
    check_same_folds(members)
    check_folds_to_judge(members)
    manifest = json.loads((members[0].run_dir / "manifest.json").read_text())
    data = manifest.get("data")
    if not data or not Path(data).is_dir():
        raise InputError(
            f"The competition folder of '{members[0].run_dir}' ({data}) is gone; it is needed for the "
            f"submission checks. Put it back. Received: data={data}"
        )
    comp, cfg = api.load(data, config=members[0].run_dir / "config.toml")
    metric = metrics.get(comp.metric)
    y = comp.target_values()
    if len(y) != members[0].oof.height:
        raise InputError(
            f"The competition folder {data} has {len(y)} training rows, the runs {members[0].oof.height}: it "
            f"changed since they ran. Run them again. Received: rows={len(y)}"
        )
    thresholded = metrics.tunes_threshold(metric, comp.task, comp.submission.kind)
    result = fit_blend(
        members, y, task=comp.task, metric=metric, method=method, seed=cfg.seed, thresholded=thresholded
    )
    fold = members[0].oof["fold"].to_numpy()
    scored = fold >= 0
    threshold, decided, fold_cuts = None, result.oof[scored], []
    if thresholded:
        # the blend's own cut: its probabilities are not any member's
        threshold, decided = metrics.decision_threshold(
            metric, y[scored], decided, fold[scored], cuts=fold_cuts
        )
    score, fold_scores = scores_by_fold(metric, y[scored], decided, fold[scored])
    submission = make_submission(comp, result.test, threshold=threshold)
    check_submission(submission, comp)

    run_dir = Path(out) if out is not None else kaggle.submissions_root() / comp.name / new_run_id("blend")
    check_out_dir(run_dir)
    width = 1 if comp.task == "regression" else len(comp.classes)
    best = max(members, key=lambda m: _key(m.score, metric.better))
    summary = {
        "method": result.method,
        "nested_cv": result.nested,
        "reason": result.reason,
        "members": [
            {"run_dir": str(m.run_dir), "track": m.track, "score": m.score, "weight": _weight(result, i)}
            for i, m in enumerate(members)
        ],
        "score": score,
        "best_member": {"run_dir": str(best.run_dir), "score": best.score},
        "gain": abs(score - best.score) * (1 if metric.better(score, best.score) else -1) + 0.0,  # no -0.0
    }
    staging = stage_dir(run_dir)
    try:
        files = write_run_files(
            staging, comp, cfg.resolved(comp, folds=members[0].info.get("folds")), track="blend", metric=metric, score=score, fold_scores=fold_scores,
            oof=result.oof.reshape(-1, width), fold_of=fold, test_pred=result.test.reshape(-1, width),
            submission=submission, strategy=members[0].info.get("split", "?"), started=started,
            split_on={"group": members[0].info.get("group"), "time": members[0].info.get("time")},
            extra_metrics={"blend": result.method,
                           **({} if threshold is None else {"threshold": threshold, "fold_thresholds": fold_cuts})},
        )  # fmt: skip
        write_atomic(staging / "blend.json", summary)
        write_atomic(
            staging / "weights.csv",
            pl.DataFrame([{k: v for k, v in m.items()} for m in summary["members"]]),
        )
        if all((m.run_dir / "model" / "saved_model.pb").is_file() for m in members):
            from kit.serving import export_blend

            export_blend(
                [m.run_dir / "model" for m in members], result, staging / "model", metric=metric, score=score,
                threshold=threshold,
            )  # fmt: skip
            log("model: model/ in the run folder (the weighted blend, takes raw rows; `kit predict` uses it)")
        from kit.reporting import timed_report

        timed_report(staging, dest=run_dir, log=log)  # last: it says where the page is
        publish_dir(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for i, m in enumerate(members):
        weight = _weight(result, i)
        shown = "level-2 input" if weight is None else f"weight {weight:.3f}"
        log(f"  {m.track:<10} {comp.metric} {m.score:.5f}  {shown}  {m.run_dir}")
    log(
        f"blend ({result.method}) {comp.metric}: {score:.5f} on the rows its combination was fit on; best "
        f"member {best.score:.5f}; nested CV (fit on the other folds, so the honest estimate): "
        + ", ".join(f"{k} {v:.5f}" for k, v in result.nested.items())
        + (f" ({result.reason})" if result.reason else "")
    )
    log(f"submission: {run_dir / 'submission.csv'}")
    return Run(
        competition=comp.name, track="blend", metric=metric.name, score=score, fold_scores=fold_scores,
        run_dir=run_dir, submission_path=run_dir / "submission.csv", oof=files["oof"],
        test_predictions=files["test"], seconds=time.perf_counter() - started,
        params={"method": result.method, "runs": [str(m.run_dir) for m in members]},
    )  # fmt: skip


def _weight(result: Blend, i: int) -> float | None:
    w = result.weights[i]
    return None if np.isnan(w) else float(w)
