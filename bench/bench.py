"""Benchmark: the kit baseline against HistGradientBoosting and the plain Keras recipe.

For each competition in ../shared/data: cut an internal holdout from train.csv (see holdout.py),
run `kit baseline`, `hgb.py` and `plain_keras.py` on it, each as its own process so the wall time
is the whole process (reading the CSVs to writing the submission), score each submission against
the held-out truth with the competition's metric from `kit.metrics`, and print a table and
whether the targets hold.

    make bench                                   # every competition (several minutes)
    make bench ARGS="--only titanic,house-prices --out results.md"
    .venv/bin/python bench/bench.py --only titanic --work /tmp/bench   # keep the folders
"""

from __future__ import annotations

import argparse
import os
import resource
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
DEFAULT_FOLDS = 5
CONTENDERS = ("kit", "HGB", "plain Keras")
# Whole-process time targets for `kit baseline`, in seconds, on the 2-core reference machine.
TIME_TARGETS = {"titanic": 20.0, "spaceship-titanic": 45.0}

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


def kit_command(h: Holdout, out: Path) -> list[str]:
    kit = Path(sys.executable).parent / "kit"
    command = [str(kit)] if kit.exists() else [sys.executable, "-m", "kit.cli"]
    command += ["baseline", str(h.folder), "--out", str(out)]
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


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, CPU seconds, "" or the last line of its error output).

    CPU seconds are less inflated than wall time when other processes share the cores.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
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


def run_competition(source: Path, work: Path, *, seed: int, log=print) -> Row:
    h = make_holdout(source, work / "data", seed=seed)
    runs = work / "runs" / h.name
    log(f"{h.name}: {h.comp.train.height} train rows, {h.truth.height} held out ({h.rule})")
    row = Row(h.name, h.comp.metric, h.rule)
    commands = {
        "kit": (kit_command(h, runs / "kit"), runs / "kit" / "submission.csv"),
        "HGB": (recipe_command("hgb.py", h, runs / "hgb.csv"), runs / "hgb.csv"),
        "plain Keras": (
            recipe_command("plain_keras.py", h, runs / "plain_keras.csv"),
            runs / "plain_keras.csv",
        ),
    }
    runs.mkdir(parents=True, exist_ok=True)
    for who, (command, submission) in commands.items():
        seconds, cpu, failed = timed(command)
        result = Result(problem=failed) if failed else score(submission, h)
        result.seconds, result.cpu = seconds, cpu
        row.results[who] = result
        shown = "failed" if result.score is None else f"{result.score:.5f}"
        log(f"  {who:<12} {shown:>10}  {seconds:6.1f} s wall {cpu:6.1f} s CPU  {result.problem}".rstrip())
    return row


def beats(row: Row, other: str) -> bool:
    a, b = row.results["kit"].score, row.results[other].score
    if a is None or b is None:
        return a is not None  # a run that failed loses
    return metrics.get(row.metric).better(a, b)


def report(rows: list[Row]) -> str:
    def cell(r: Result) -> str:
        value = "failed" if r.score is None else f"{r.score:.4f}"
        return f"{value} | {r.seconds:.1f}" if r.seconds is not None else f"{value} | -"

    lines = [
        "| competition | metric | " + " | ".join(f"{w} | {w} s" for w in CONTENDERS) + " |",
        "|---|---|" + "---:|---:|" * len(CONTENDERS),
    ]
    for row in rows:
        direction = "↑" if metrics.get(row.metric).direction == "maximize" else "↓"
        cells = " | ".join(cell(row.results[w]) for w in CONTENDERS)
        lines.append(f"| {row.name} | {row.metric} {direction} | {cells} |")
    lines.append("")

    for other, need in (("plain Keras", "every"), ("HGB", "half")):
        won = [r.name for r in rows if beats(r, other)]
        lost = [r for r in rows if not beats(r, other)]
        holds = not lost if need == "every" else 2 * len(won) >= len(rows)
        want = "on every competition" if need == "every" else "on at least half"
        lines.append(f"target: kit beats {other} {want}: {'yes' if holds else 'NO'} ({len(won)}/{len(rows)})")
        for r in lost:
            a, b = r.results["kit"].score, r.results[other].score
            if a is None or b is None:
                lines.append(f"  {r.name}: no score to compare (kit {a}, {other} {b})")
            else:
                lines.append(
                    f"  {r.name}: kit {a:.4f} vs {other} {b:.4f} ({r.metric}; off by {abs(a - b):.4f})"
                )
    for name, limit in TIME_TARGETS.items():
        row = next((r for r in rows if r.name == name), None)
        if row is None:
            continue
        kit, hgb, keras_ = (row.results[w] for w in CONTENDERS)
        ok = kit.score is not None and kit.seconds <= limit
        lines.append(
            f"target: {name} whole kit process <= {limit:.0f} s: {'yes' if ok else 'NO'} "
            f"({kit.seconds:.1f} s wall, {kit.cpu:.1f} s CPU; in this run "
            f"{kit.seconds / keras_.seconds:.2f}x the plain Keras recipe's {keras_.seconds:.1f} s and "
            f"{kit.seconds / hgb.seconds:.1f}x HGB's {hgb.seconds:.1f} s)"
        )
    problems = [(r.name, w, r.results[w].problem) for r in rows for w in CONTENDERS if r.results[w].problem]
    for name, who, problem in problems:
        lines.append(f"note: {name} / {who}: {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated competitions, e.g. titanic,house-prices")
    parser.add_argument("--out", help="also write the table and the target lines to this file")
    parser.add_argument("--work", help="keep the holdout folders and runs here (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the holdout split (default 0)")
    parser.add_argument(
        "--data", default=str(SHARED_DATA), help=f"competitions folder (default {SHARED_DATA})"
    )
    args = parser.parse_args(argv)

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
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        rows = [run_competition(data / name, work, seed=args.seed) for name in names]
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
