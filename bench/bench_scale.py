"""Big competitions on one machine: whole-process time, peak memory and score as the rows grow.

Synthetic competitions from bench/synthetic.py: the `scale` shape at each size (100k, 1M and 10M
rows by default) and the 177k-row shape of a real playground competition (`sales`, daily sales by
date, country, store and product, scored by MAPE). Each contender runs as its own process; its
wall time, peak resident memory (the process's own, from wait4) and test score go in a table, with
the ratios between sizes and the peak against the training data's size in memory.

    make bench-scale                                  # 100k, 1M, 10M and sales (an hour or more)
    make bench-scale ARGS="--sizes 100000,1000000 --no-sales"

Up to 1M rows the kit tracks cross-validate with 5 folds; above, with one 80/20 holdout
(`--split holdout`), as a team would on data that size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import synthetic  # noqa: E402

from bench import ANCHORS  # noqa: E402

FOLDS_UP_TO = 1_000_000  # rows; more get a holdout


def run(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB of the process and its children, "" or the error's last line)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    err = process.stderr.read()
    failed = "" if status == 0 else (err.strip().splitlines() or ["(no output)"])[-1]
    return seconds, usage.ru_maxrss / 1024, failed


def score(submission: Path, truth: Path, metric: str) -> float | None:
    from kit import metrics

    if not submission.is_file():
        return None
    sub, want = pl.read_csv(submission), pl.read_csv(truth)
    joined = want.join(sub, on="id", how="left", suffix="_pred")
    target = [c for c in want.columns if c != "id"][0]
    # rows without a true value (the sales shape's missing days) are not scored
    joined = joined.filter(pl.col(target).is_not_null() & ~pl.col(target).cast(pl.Float64).is_nan())
    pred = joined[f"{target}_pred"].cast(pl.Float64).to_numpy()
    y = joined[target].to_numpy()
    if metric == "roc_auc":
        return metrics.get(metric)(y.astype(int), np.stack([1 - pred, pred], axis=1))
    return metrics.get(metric)(y.astype(float), pred)


def contenders(
    folder: Path, out: Path, *, metric: str, rows: int, time_column: str | None, anchors: bool
) -> dict:
    kit = [sys.executable, "-m", "kit.cli"]
    flags = ["--metric", metric, *(["--time", time_column] if time_column else [])]
    if rows > FOLDS_UP_TO:
        flags += ["--split", "holdout"]
    found = {
        "kit baseline": kit + ["baseline", str(folder), "--out", str(out / "baseline"), *flags],
        "kit advanced": kit + ["advanced", str(folder), "--out", str(out / "advanced"), *flags],
    }
    recipe = ["--target", synthetic.TARGETS[folder.name.split("-")[0]], "--id", "id", "--metric", metric,
              "--task", "regression" if metric in ("mape", "rmse", "rmsle") else "binary",
              "--kind", "value" if metric in ("mape", "rmse", "rmsle") else "proba"]  # fmt: skip
    found["HGB"] = [sys.executable, str(HERE / "hgb.py"), str(folder), *recipe, "--out", str(out / "hgb.csv")]
    if anchors:
        found["AutoGluon"] = [str(ANCHORS), str(HERE / "anchor_autogluon.py"), str(folder), *recipe,
                              "--out", str(out / "autogluon.csv"), "--presets", "medium_quality", "--time-limit", "60"]  # fmt: skip
    return found


def submission_of(who: str, out: Path) -> Path:
    return {"kit baseline": out / "baseline" / "submission.csv", "kit advanced": out / "advanced" / "submission.csv",
            "HGB": out / "hgb.csv", "AutoGluon": out / "autogluon.csv"}[who]  # fmt: skip


def prepare(shape: str, rows: int, folder: Path) -> float:
    """Make the competition unless it is there; its training data's size in memory (MiB) as polars
    reads it."""
    if not (folder / "train.csv").is_file():
        synthetic.make(shape, folder, rows=rows, truth=True)
    return pl.read_csv(folder / "train.csv", infer_schema_length=10_000).estimated_size("mb")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--prepare"]:
        print(prepare(argv[1], int(argv[2]), Path(argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="rows of the scale shape")
    parser.add_argument("--no-sales", action="store_true", help="leave out the 177k-row playground shape")
    parser.add_argument("--only", help="comma-separated contenders, e.g. 'kit baseline,HGB'")
    parser.add_argument("--work", help="keep the generated data and runs here")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    work = Path(args.work or tempfile.mkdtemp(prefix="kit-scale-"))
    cases = [("scale", int(n)) for n in args.sizes.split(",") if n]
    if not args.no_sales:
        cases.append(("sales", synthetic.DEFAULT_ROWS["sales"]))
    rows_out = []
    for shape, n in cases:
        folder = work / f"{shape}-{n}"
        # made and measured in a process of their own: a child's peak (ru_maxrss) starts from what
        # this process held when it forked, so this one must stay small (10M rows read here made
        # every contender's peak 10 GB, HistGradientBoosting's too)
        train_mib = float(
            subprocess.run(
                [sys.executable, __file__, "--prepare", shape, str(n), str(folder)],
                check=True, capture_output=True, text=True,
            ).stdout.split()[-1]
        )  # fmt: skip
        truth = work / f"{shape}-{n}-truth.csv"
        metric = synthetic.METRICS[shape]
        found = contenders(folder, work / "runs" / folder.name, metric=metric, rows=n,
                           time_column="date" if shape == "sales" else None, anchors=ANCHORS.exists())  # fmt: skip
        for who, command in found.items():
            if only and who not in only:
                continue
            seconds, rss, failed = run(command)
            rows_out.append({"data": folder.name, "rows": n, "contender": who, "metric": metric,
                             "seconds": seconds, "peak_mib": rss, "train_mib": train_mib, "problem": failed,
                             "scored": None if failed else (submission_of(who, work / "runs" / folder.name), truth)})  # fmt: skip
            print(f"{folder.name:16} {who:13} {seconds:8.1f} s  {rss:8.0f} MiB  {failed}", flush=True)
    # scored once every contender has run: reading the submissions here would have grown this
    # process, and with it the peak of each contender it forks after
    for r in rows_out:
        r["score"] = None if r["scored"] is None else score(*r.pop("scored"), r["metric"])
    print()
    print(report(rows_out))
    return 0


def report(rows: list[dict]) -> str:
    lines = ["| data | rows | contender | metric | score | seconds | peak MiB | peak / train data |",
             "|---|---:|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        value = "failed" if r["score"] is None else f"{r['score']:.4f}"
        lines.append(f"| {r['data']} | {r['rows']} | {r['contender']} | {r['metric']} | {value} | {r['seconds']:.0f} | "
                     f"{r['peak_mib']:.0f} | {r['peak_mib'] / max(r['train_mib'], 1e-9):.1f}x |")  # fmt: skip
    lines.append("")
    scale = [r for r in rows if r["data"].startswith("scale-")]
    for who in dict.fromkeys(r["contender"] for r in scale):
        mine = sorted((r for r in scale if r["contender"] == who), key=lambda r: r["rows"])
        for a, b in zip(mine, mine[1:], strict=False):
            growth = b["rows"] / a["rows"]
            lines.append(f"{who}: {a['rows']} -> {b['rows']} rows ({growth:g}x): time {b['seconds'] / a['seconds']:.2f}x, "
                         f"peak memory {b['peak_mib'] / a['peak_mib']:.2f}x")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
