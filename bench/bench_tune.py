"""Tuning benchmark: the tuned CV score against the untuned track at the same seed, the share of
trials the pruner stopped early, and the tuner's memory across trials.

For each competition (default titanic and house-prices from ../shared/data), in its own process:
cross-validate the track with its default parameters, then tune it for 5 trials and continue
the same study to `--trials` (default 30), printing the peak RSS of the processes that ran the
trials after 5 and after all trials. Memory that grows with the trial count would show as a
larger second figure; a flat tuner holds about the same.

Trial 0 of a study is the track's own parameters, so the tuned score is never below the untuned
one on the same folds; the gain is what the search found beyond them.

The tuned score is the best of many CV scores on the same folds, so it is a little optimistic
against the single untuned run; the gap is still the figure a user sees.

    make bench-tune
    make bench-tune ARGS="--only titanic --trials 30 --folds 3 --out tune.md"
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_COMPETITIONS = ("titanic", "house-prices")


def peak_rss_mib(study) -> float:
    """The largest peak resident memory of the worker processes that ran the study's trials so far.

    Each worker records its own peak after every trial (trials.csv's peak_rss_mib). Not this
    process's RUSAGE_CHILDREN: that only counts children already waited for, and a `git` a
    process forks after loading TensorFlow counts there with the whole parent's size.
    """
    return max(t.user_attrs.get("peak_rss_mib", 0.0) for t in study.get_trials(deepcopy=False))


def one(
    name: str, *, track: str, trials: int, folds: int, seed: int, recycle_mib: float | None, work: Path
) -> dict:
    """Untuned run, then 5 trials, then up to `trials`, all in this process."""
    import kit
    from kit import metrics, tuning
    from kit.run import cross_validate

    quiet = lambda _: None  # noqa: E731
    comp, cfg = kit.load(SHARED_DATA / name, folds=folds, seed=seed)
    started = time.perf_counter()
    untuned = cross_validate(
        comp,
        cfg,
        track,
        out=work / "untuned",
        log=quiet,
        progress=False,
    )
    untuned_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if recycle_mib is None:
        recycle_mib = tuning.RECYCLE_MIB
    tune = functools.partial(
        tuning.tune,
        comp,
        cfg,
        track,
        out=work / "tune",
        log=print,
        recycle_mib=recycle_mib,
    )
    first = tune(n_trials=5)
    rss_5 = peak_rss_mib(first.study)
    result = tune(n_trials=trials)
    rss_all = peak_rss_mib(result.study)
    finished = result.n_complete + result.n_pruned
    return {
        "competition": name,
        "metric": comp.metric,
        "direction": metrics.get(comp.metric).direction,
        "untuned": untuned.score,
        "untuned_seconds": untuned_seconds,
        "tuned": result.best_score,
        "tuned_after_5": first.best_score,
        "trials": finished,
        "pruned": result.n_pruned,
        "pruned_share": result.n_pruned / finished if finished else 0.0,
        "tune_seconds": time.perf_counter() - started,
        "rss_5_mib": rss_5,
        "rss_all_mib": rss_all,
        "recycle_mib": recycle_mib,
        "workers": len({t.user_attrs.get("pid") for t in result.study.get_trials(deepcopy=False)}),
    }


def table(rows: list[dict], *, track: str, folds: int, seed: int) -> str:
    lines = [
        f"Tuning the {track} track, {folds} folds, seed {seed} (untuned = the track's defaults, same folds)",
        "",
        "| competition | metric | untuned | tuned (5 trials) | tuned (all) | gain | trials | pruned | "
        "tuning time | worker peak RSS after 5 | after all |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sign = 1 if r["direction"] == "maximize" else -1
        gain = sign * (r["tuned"] - r["untuned"])
        lines.append(
            f"| {r['competition']} | {r['metric']} | {r['untuned']:.5f} | {r['tuned_after_5']:.5f} | "
            f"{r['tuned']:.5f} | {gain:+.5f} ({'better' if gain > 0 else 'not better'}) | {r['trials']} | "
            f"{r['pruned']} ({r['pruned_share']:.0%}) | {r['tune_seconds']:.0f} s | "
            f"{r['rss_5_mib']:.0f} MiB | {r['rss_all_mib']:.0f} MiB (x{r['rss_all_mib'] / r['rss_5_mib']:.2f}, "
            f"{r['workers']} worker processes) |"
        )
    recycle = ", ".join(sorted({f"{r['recycle_mib']:g}" for r in rows}))
    lines += [
        "",
        f"A worker process hands over to a fresh one when its memory has grown by {recycle} MiB "
        "(TensorFlow keeps part of every model a process builds): a worker's peak is at most about that "
        "much above its first trial's.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DEFAULT_COMPETITIONS), help="comma-separated competitions")
    parser.add_argument("--track", default="baseline", help="baseline or advanced")
    parser.add_argument("--trials", type=int, default=30, help="trials in all (default 30)")
    parser.add_argument("--folds", type=int, default=3, help="folds (default 3, to keep it minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recycle-mib",
        type=float,
        help="memory growth after which a worker process hands over to a fresh one (default: kit's)",
    )
    parser.add_argument("--work", help="keep the run and tuning folders here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one competition, JSON out
    args = parser.parse_args(argv)

    if args.one:
        row = one(
            args.one,
            track=args.track,
            trials=args.trials,
            folds=args.folds,
            seed=args.seed,
            recycle_mib=args.recycle_mib,
            work=Path(args.work),
        )
        print("RESULT " + json.dumps(row))
        return 0

    names = [n for n in args.only.split(",") if n]
    missing = [n for n in names if not (SHARED_DATA / n).is_dir()]
    if missing:
        print(f"bench_tune: {', '.join(missing)} not found under {SHARED_DATA}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        for name in names:
            work = Path(args.work or tmp) / name
            # one process per competition, so each peak RSS is that competition's alone
            command = [
                sys.executable, __file__, "--one", name, "--track", args.track, "--trials", str(args.trials),
                "--folds", str(args.folds), "--seed", str(args.seed), "--work", str(work),
                *(["--recycle-mib", str(args.recycle_mib)] if args.recycle_mib is not None else []),
            ]  # fmt: skip
            print(f"== {name}", flush=True)
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            for line in child.stdout:
                if line.startswith("RESULT "):
                    rows.append(json.loads(line[len("RESULT ") :]))
                else:
                    print(f"   {line}", end="", flush=True)
            if child.wait() != 0:
                return child.returncode
    text = table(rows, track=args.track, folds=args.folds, seed=args.seed)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
