"""Benchmark: kit's tracks beside HistGradientBoosting, the plain Keras recipe and AutoGluon.

For each competition in ../shared/data: cut an internal holdout from train.csv (see holdout.py),
run each contender on it as its own process, so the wall time is the whole process (reading the
CSVs to writing the submission), score each submission against the held-out truth with the
competition's metric from `kit.metrics`, and print a table and whether the targets hold.

Contenders: `kit baseline` and `kit advanced`; `hgb.py` (HistGradientBoosting, default settings);
`plain_keras.py` (the tutorials' Keras model); AutoGluon 1.6 medium_quality with a 60 s limit
(`anchor_autogluon.py`, in its own `.venv-anchors`, made by `make bench-anchors`; left out where it is
absent); and, with `--previous REV`, the baseline of an earlier commit, run from a worktree.

    make bench                                   # every competition (several minutes)
    make bench-anchors                           # the same, with AutoGluon installed first
    make bench ARGS="--only titanic,house-prices --out results.md"
    make bench-anchors ARGS="--auto --contenders 'kit auto,AutoGluon best'"   # some contenders only
    .venv/bin/python bench/bench.py --only titanic --work /tmp/bench --previous HEAD~1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kit import metrics
from kit.errors import InputError
from kit.submission import validate_file

HERE = Path(__file__).resolve().parent
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = HERE.parent
ANCHORS = REPO / ".venv-anchors" / "bin" / "python"
DEFAULT_FOLDS = 5
BASELINE, ADVANCED, TREES, HGB, PLAIN, AUTOGLUON, PREVIOUS, AUTO, AUTOGLUON_BEST = (
    "kit baseline", "kit advanced", "kit trees", "HGB", "plain Keras", "AutoGluon", "kit previous", "kit auto",
    "AutoGluon best",
)  # fmt: skip
ORDER = (BASELINE, ADVANCED, TREES, AUTO, HGB, PLAIN, AUTOGLUON, AUTOGLUON_BEST, PREVIOUS)
# kit auto and AutoGluon's best_quality get the same budget (--auto)
AUTO_BUDGET = 300
# who must beat whom, on what share of the competitions
TARGETS = (
    (BASELINE, HGB, 0.9),
    (BASELINE, AUTOGLUON, 0.5),
    (ADVANCED, BASELINE, 0.8),
    (ADVANCED, AUTOGLUON, 0.6),
    (BASELINE, PLAIN, 1.0),
    (AUTO, AUTOGLUON, 0.8),
    (AUTO, AUTOGLUON_BEST, 0.6),
)

sys.path.insert(0, str(HERE))
from holdout import Holdout, make_holdout  # noqa: E402


@dataclass
class Result:
    score: float | None = None
    seconds: float | None = None  # wall
    cpu: float | None = None
    problem: str = ""  # why there is no score, or what the submission check said


@dataclass
class Row:
    name: str
    metric: str
    rule: str
    results: dict[str, Result] = field(default_factory=dict)
    members: dict[str, tuple[float, float]] = field(default_factory=dict)  # kit auto's


def kit_command(h: Holdout, out: Path, *, track: str = "baseline", python: str | None = None) -> list[str]:
    kit = Path(sys.executable).parent / "kit"
    command = [str(kit)] if kit.exists() and python is None else [python or sys.executable, "-m", "kit.cli"]
    command += [track, str(h.folder), "--out", str(out)]
    if h.comp.group is not None:
        # holding out a whole group (product E) can leave train with fewer groups than folds
        groups = h.comp.train[h.comp.group].n_unique()
        if groups < DEFAULT_FOLDS:
            command += ["--folds", str(groups)]
    return command


def recipe_command(script: str, h: Holdout, out: Path) -> list[str]:
    c = h.comp
    return [
        sys.executable, str(HERE / script), str(h.folder), "--target", c.target, "--id", c.id,
        "--task", c.task, "--metric", c.metric, "--kind", c.submission.kind, "--out", str(out),
    ]  # fmt: skip


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    command: list[str], *, env: dict | None = None, cwd: Path | None = None
) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, CPU seconds, "" or the last line of its error output).

    CPU seconds are less inflated than wall time when other processes share the cores.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    started, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return seconds, cpu, f"exit {done.returncode}: {lines[-1] if lines else '(no output)'}"
    return seconds, cpu, ""


def predictions(sub: pl.DataFrame, h: Holdout) -> np.ndarray:
    """The submission in kit's prediction form: (n, n_classes) probabilities or (n,) values."""
    c = h.comp
    if c.task == "regression":
        return sub[c.target].cast(pl.Float64).to_numpy()
    if c.submission.kind == "proba":
        p = sub[c.target].cast(pl.Float64).to_numpy()
        return np.stack([1 - p, p], axis=1)
    if c.submission.kind == "proba_columns":
        return sub.select(c.submission.class_columns).cast(pl.Float64).to_numpy()
    index = class_index(sub[c.target], c.classes)
    return np.eye(len(c.classes))[index]


def class_index(values: pl.Series, classes: list) -> np.ndarray:
    # polars writes booleans as true/false and Kaggle as True/False: compare case-blind
    lookup = {str(cls).lower(): i for i, cls in enumerate(classes)}
    return values.cast(pl.String).str.to_lowercase().replace_strict(lookup, return_dtype=pl.Int64).to_numpy()


def score(path: Path, h: Holdout) -> Result:
    """Score a submission file against the held-out truth; note it if kit's check rejects it."""
    if not path.is_file():
        return Result(problem="no submission written")
    problem = ""
    try:
        validate_file(path, h.comp)
    except InputError as err:
        problem = f"submission check: {err}"
    c = h.comp
    sub = pl.read_csv(path, infer_schema=False)
    if sub[c.id].to_list() != h.truth[c.id].to_list():
        return Result(problem=f"ids differ from the holdout's; {problem}".strip("; "))
    truth = h.truth[c.target]
    y = truth.cast(pl.Float64).to_numpy() if c.task == "regression" else class_index(truth, c.classes)
    return Result(score=metrics.get(c.metric)(y, predictions(sub, h)), problem=problem)


def contenders(h: Holdout, runs: Path, *, anchors: bool, previous: Path | None, auto: bool = False) -> dict:
    """Who runs on this holdout: name -> (command, submission path, extra environment). kit auto's
    folder starts empty: members left by an earlier bench in the same --work would be reused."""
    found = {
        BASELINE: (kit_command(h, runs / "baseline"), runs / "baseline" / "submission.csv", None),
        ADVANCED: (
            kit_command(h, runs / "advanced", track="advanced"),
            runs / "advanced" / "submission.csv",
            None,
        ),
        TREES: (kit_command(h, runs / "trees", track="trees"), runs / "trees" / "submission.csv", None),
        HGB: (recipe_command("hgb.py", h, runs / "hgb.csv"), runs / "hgb.csv", None),
        PLAIN: (
            recipe_command("plain_keras.py", h, runs / "plain_keras.csv"),
            runs / "plain_keras.csv",
            None,
        ),
    }
    if anchors:
        command = [str(ANCHORS), *recipe_command("anchor_autogluon.py", h, runs / "autogluon.csv")[1:]]
        found[AUTOGLUON] = (
            command + ["--presets", "medium_quality", "--time-limit", "60"],
            runs / "autogluon.csv",
            None,
        )
    if auto:
        shutil.rmtree(runs / "auto", ignore_errors=True)
        command = kit_command(h, runs / "auto", track="auto") + ["--time-budget", str(AUTO_BUDGET)]
        found[AUTO] = (command, runs / "auto" / "auto-blend" / "submission.csv", None)
        if anchors:
            command = [
                str(ANCHORS),
                *recipe_command("anchor_autogluon.py", h, runs / "autogluon_best.csv")[1:],
            ]
            command += ["--presets", "best_quality", "--time-limit", str(AUTO_BUDGET)]
            found[AUTOGLUON_BEST] = (command, runs / "autogluon_best.csv", None)
    if previous is not None:
        command = kit_command(h, runs / "previous", python=sys.executable)
        # run from its checkout: `python -m` puts the working folder first on sys.path
        found[PREVIOUS] = (command, runs / "previous" / "submission.csv", {"PYTHONPATH": str(previous)})
    return found


def run_competition(
    source: Path,
    work: Path,
    *,
    seed: int,
    anchors: bool,
    previous: Path | None,
    auto: bool = False,
    only: list[str] | None = None,
    log=print,
) -> Row:
    h = make_holdout(source, work / "data", seed=seed)
    runs = work / "runs" / h.name
    log(f"{h.name}: {h.comp.train.height} train rows, {h.truth.height} held out ({h.rule})")
    row = Row(h.name, h.comp.metric, h.rule)
    runs.mkdir(parents=True, exist_ok=True)
    found = contenders(h, runs, anchors=anchors, previous=previous, auto=auto)
    if only is not None:
        found = {who: found[who] for who in only if who in found}
    for who, (command, submission, env) in found.items():
        seconds, cpu, failed = timed(command, env=env, cwd=previous if who == PREVIOUS else None)
        if who == AUTO and not submission.is_file():  # one member finished: it is the submission
            submission = next(iter(sorted((runs / "auto").glob("auto-*/submission.csv"))), submission)
        result = Result(problem=failed) if failed else score(submission, h)
        result.seconds, result.cpu = seconds, cpu
        row.results[who] = result
        shown = "failed" if result.score is None else f"{result.score:.5f}"
        log(f"  {who:<13} {shown:>10}  {seconds:6.1f} s wall {cpu:6.1f} s CPU  {result.problem}".rstrip())
        if who == AUTO:
            row.members = _auto_members(runs / "auto", h)
            for member, (value, member_seconds) in row.members.items():
                log(f"    {member:<24} {value:>10.5f}  {member_seconds:6.1f} s (the member's own run)")
    return row


def _auto_members(folder: Path, h: Holdout) -> dict[str, tuple[float, float]]:
    """Each member's (and the blend's) holdout score and seconds, from kit auto's run folders."""
    import json

    found = {}
    # the tuned trees' member is the best trial of their study: auto-trees-tuning/best
    for run in sorted([*folder.glob("auto-*"), *folder.glob("auto-*-tuning/best")]):
        name = run.parent.name.replace("-tuning", "-tuned") if run.name == "best" else run.name
        result = score(run / "submission.csv", h)
        manifest = (
            json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").is_file() else {}
        )
        if result.score is not None:
            found[name] = (result.score, float(manifest.get("wall_seconds") or 0.0))
    return found


def beats(row: Row, a: str, b: str) -> bool:
    x, y = row.results[a].score, row.results[b].score
    if x is None or y is None:
        return x is not None  # a run that failed loses
    return metrics.get(row.metric).better(x, y)


def report(rows: list[Row]) -> str:
    who = [w for w in ORDER if w in rows[0].results]

    def cell(r: Result) -> str:
        value = "failed" if r.score is None else f"{r.score:.4f}"
        return f"{value} | {r.seconds:.1f}" if r.seconds is not None else f"{value} | -"

    lines = [
        "| competition | metric | " + " | ".join(f"{w} | s" for w in who) + " |",
        "|---|---|" + "---:|---:|" * len(who),
    ]
    for row in rows:
        direction = "↑" if metrics.get(row.metric).direction == "maximize" else "↓"
        cells = " | ".join(cell(row.results[w]) for w in who)
        lines.append(f"| {row.name} | {row.metric} {direction} | {cells} |")
    lines.append("")
    for a, b, share in TARGETS:
        if a not in who or b not in who:
            continue
        won = [r.name for r in rows if beats(r, a, b)]
        holds = len(won) >= share * len(rows) - 1e-9
        lines.append(
            f"target: {a} ahead of {b} on {share:.0%}: {'yes' if holds else 'NO'} ({len(won)}/{len(rows)})"
        )
        for r in rows:
            if r.name in won:
                continue
            x, y = r.results[a].score, r.results[b].score
            detail = (
                "no score to compare"
                if x is None or y is None
                else f"{x:.4f} vs {y:.4f}, off by {abs(x - y):.4f}"
            )
            lines.append(f"  {r.name}: {detail} ({r.metric})")
    for name, fast, slow, limit in (
        ("titanic", PREVIOUS, BASELINE, 1.0),
        ("titanic", AUTOGLUON, BASELINE, 1.0),
        ("spaceship-titanic", BASELINE, ADVANCED, 2.0),
    ):
        row = next((r for r in rows if r.name == name), None)
        if row is None or fast not in row.results or slow not in row.results:
            continue
        ratio = row.results[slow].seconds / row.results[fast].seconds
        holds = ratio <= limit * 1.05  # 5%: the noise of a whole process's wall time
        lines.append(
            f"target: {name}: {slow} within {limit:g}x {fast}'s whole process: {'yes' if holds else 'NO'} "
            f"({row.results[slow].seconds:.1f} s vs {row.results[fast].seconds:.1f} s: {ratio:.2f}x)"
        )
    for row in rows:
        if row.members:
            parts = ", ".join(f"{m} {v:.4f} ({t:.0f} s)" for m, (v, t) in row.members.items())
            lines.append(
                f"kit auto on {row.name}, holdout score and seconds of each member and the blend: {parts}"
            )
    for row in rows:
        if AUTO in row.results and AUTOGLUON_BEST in row.results:
            a, b = row.results[AUTO].seconds, row.results[AUTOGLUON_BEST].seconds
            lines.append(f"wall time on {row.name}: kit auto {a:.0f} s, AutoGluon best {b:.0f} s")
    problems = [(r.name, w, r.results[w].problem) for r in rows for w in who if r.results[w].problem]
    for name, contender, problem in problems:
        lines.append(f"note: {name} / {contender}: {problem}")
    return "\n".join(lines)


def _worktree(rev: str, root: Path) -> Path:
    """A checkout of an earlier commit, to run its kit beside this one (`--previous`)."""
    path = root / "previous"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path), rev],
                   check=True, capture_output=True)  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated competitions, e.g. titanic,house-prices")
    parser.add_argument("--out", help="also write the table and the target lines to this file")
    parser.add_argument("--work", help="keep the holdout folders and runs here (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the holdout split (default 0)")
    parser.add_argument(
        "--data", default=str(SHARED_DATA), help=f"competitions folder (default {SHARED_DATA})"
    )
    parser.add_argument(
        "--previous", metavar="REV", help="also run the baseline of this commit (e.g. HEAD~1)"
    )
    parser.add_argument("--no-anchors", action="store_true", help="leave AutoGluon out even where installed")
    parser.add_argument(
        "--auto", action="store_true", help=f"also kit auto and AutoGluon best_quality, {AUTO_BUDGET} s each"
    )
    parser.add_argument(
        "--contenders", help=f"comma-separated, only these (e.g. 'kit auto,HGB'); of: {', '.join(ORDER)}"
    )
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.contenders.split(",")] if args.contenders else None
    if only and set(only) - set(ORDER):
        print(
            f"bench: no contender {sorted(set(only) - set(ORDER))}. Use some of: {', '.join(ORDER)}",
            file=sys.stderr,
        )
        return 2

    data = Path(args.data)
    if not data.is_dir():
        print(f"bench: {data} is absent, so there is nothing to benchmark (it holds the real competitions)")
        return 0
    names = sorted(p.name for p in data.iterdir() if p.is_dir())
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(
                f"bench: no competition {unknown} in {data}. Use some of: {', '.join(names)}", file=sys.stderr
            )
            return 2
        names = [n for n in names if n in wanted]

    load = os.getloadavg()[0]
    print(f"bench: {len(names)} competition(s) on {os.cpu_count()} CPU(s), load average {load:.2f} at start")
    anchors = ANCHORS.exists() and not args.no_anchors
    if not anchors:
        print("bench: AutoGluon is left out (`make bench-anchors` installs it into .venv-anchors)")
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        previous = _worktree(args.previous, Path(tmp)) if args.previous else None
        try:
            rows = [
                run_competition(
                    data / name,
                    work,
                    seed=args.seed,
                    anchors=anchors,
                    previous=previous,
                    auto=args.auto,
                    only=only,
                )  # fmt: skip
                for name in names
            ]
        finally:
            if previous is not None:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(previous)],
                    capture_output=True,
                )
    text = report(rows)
    text += (
        f"\nload average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end on {os.cpu_count()} CPU(s): "
        "other processes inflate the times."
    )
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
