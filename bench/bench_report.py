"""Report benchmark: what report.html costs a baseline run, and how big it is.

For each competition in ../shared/data (default all six), run `kit.baseline` with its defaults
(5 folds, seed 0) and print, from that same run, the size of its report.html, the seconds the
report took (the permutation importance on the last fold and writing the page) and their share
of the run's own wall time (`Run.seconds`: folds to published folder, the part the report is
added to; reading the CSVs and importing TensorFlow are left out, so the share is the larger
one). The targets: under 2 MB and under 10% of the run.

    make bench-report
    make bench-report ARGS="--only titanic,house-prices --work /tmp/bench-report"   # keep the runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COMPETITIONS = (
    "titanic",
    "house-prices",
    "spaceship-titanic",
    "playground-s3e26-cirrhosis",
    "bike-sharing-demand",
    "tps-aug-2022",
)
MAX_MB = 2.0
MAX_SHARE = 0.10


def one(name: str, work: Path, *, seed: int) -> dict:
    import json

    import kit

    started = time.perf_counter()
    run = kit.baseline(SHARED_DATA / name, out=work / name, seed=seed, progress=False, log=lambda _: None)
    whole = time.perf_counter() - started
    importance = json.loads((run.run_dir / "importance.json").read_text())
    return {
        "competition": name,
        "metric": run.metric,
        "score": run.score,
        "run_seconds": run.seconds,
        "whole_seconds": whole,
        "report_seconds": run.report_seconds,
        "importance_seconds": importance.get("seconds"),
        "importance_rows": importance.get("rows"),
        "importance_repeats": importance.get("repeats"),
        "kb": run.report_path.stat().st_size / 1024,
        "report": str(run.report_path),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| competition | CV | run s | report s | share | importance s (rows × repeats) | report KB | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = r["report_seconds"] / r["run_seconds"]
        ok = share <= MAX_SHARE and r["kb"] <= MAX_MB * 1024
        lines.append(
            f"| {r['competition']} | {r['metric']} {r['score']:.5f} | {r['run_seconds']:.1f} | "
            f"{r['report_seconds']:.2f} | {share:.1%} | {r['importance_seconds']:.2f} "
            f"({r['importance_rows']} × {r['importance_repeats']}) | {r['kb']:.0f} | {'ok' if ok else 'MISSED'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(COMPETITIONS), help="comma-separated competitions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)

    names = [n for n in args.only.split(",") if n]
    missing = [n for n in names if not (SHARED_DATA / n).is_dir()]
    if missing:
        print(f"bench_report: {', '.join(missing)} not found under {SHARED_DATA}", file=sys.stderr)
        return 2
    import tensorflow  # noqa: F401  (imported before the first run's clock starts, as for the others)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(args.work or tmp)
        for name in names:
            print(f"== {name}", flush=True)
            rows.append(one(name, work, seed=args.seed))
    text = table(rows)
    print(text)
    if args.work:
        print("\n".join(f"{r['competition']}: {r['report']}" for r in rows))
    if args.out:
        Path(args.out).write_text(text + "\n")
    missed = [
        r["competition"]
        for r in rows
        if r["report_seconds"] / r["run_seconds"] > MAX_SHARE or r["kb"] > MAX_MB * 1024
    ]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
