"""Choose a track's defaults from CV on every competition at hand, never from one.

Runs the track with each variant of its parameters on the six shared competitions and the
synthetic ones (bench/synthetic.py), all with the same folds and seed, and prints the CV score
of each, which variant wins each competition, and each variant's mean rank. CV scores at a fixed
seed do not depend on the machine's load, so the table is the same on a busy machine.

    .venv/bin/python bench/defaults.py --track baseline base "k4:k=4" "plr:numeric_embedding='periodic'"
    .venv/bin/python bench/defaults.py --track advanced --only titanic,smooth base "k1:k=1"

A variant is `name:key=value;key=value` (values in TOML: 4, 0.1, "periodic", [256, 256]); `base` is
the track's defaults as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tomllib

HERE = Path(__file__).resolve().parent
SHARED_DATA = HERE.parents[1] / "shared" / "data"
sys.path.insert(0, str(HERE))
import synthetic  # noqa: E402

SYNTHETIC = ("smooth", "interaction", "heavy_tails")


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    params = tomllib.loads("\n".join(s.strip() for s in settings.split(";") if s.strip())) if settings else {}
    return name, params


def competitions(only: set[str] | None, work: Path) -> list[tuple[str, Path, dict]]:
    found = []
    for name in sorted(p.name for p in SHARED_DATA.iterdir()) if SHARED_DATA.is_dir() else []:
        found.append((name, SHARED_DATA / name, {}))
    for shape in SYNTHETIC:
        found.append((shape, synthetic.make(shape, work / shape), {"metric": synthetic.METRICS[shape]}))
    return [c for c in found if only is None or c[0] in only]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="name:key=value;key=value (see the module docstring)")
    parser.add_argument("--track", default="baseline")
    parser.add_argument("--only", help="comma-separated competitions")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="append each result as a JSON line to this file")
    args = parser.parse_args(argv)

    import kit
    from kit import metrics, tracks
    from kit.run import cross_validate

    track = tracks.get(args.track)
    variants = [parse_variant(v) for v in args.variants]
    only = set(args.only.split(",")) if args.only else None
    work = Path(tempfile.mkdtemp(prefix="kit-defaults-"))
    rows = []
    for name, folder, settings in competitions(only, work):
        comp, cfg = kit.load(folder, folds=args.folds, seed=args.seed, **settings)
        metric = metrics.get(comp.metric)
        row = {
            "competition": name,
            "metric": comp.metric,
            "direction": metric.direction,
            "scores": {},
            "seconds": {},
        }
        for variant, params in variants:
            started = time.perf_counter()
            run = cross_validate(
                comp, cfg, track, params={**cfg.tracks.get(track.name, {}), **params},
                out=work / "runs" / name / variant, log=lambda _: None, progress=False,
            )  # fmt: skip
            row["scores"][variant] = run.score
            row["seconds"][variant] = time.perf_counter() - started
            print(
                f"{name:28} {variant:16} {comp.metric} {run.score:.5f}  ({row['seconds'][variant]:.1f} s)",
                flush=True,
            )
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps({"track": track.name, "competition": name, "variant": variant,
                                          "params": params, "metric": comp.metric, "score": run.score,
                                          "seconds": row["seconds"][variant]}) + "\n")  # fmt: skip
        rows.append(row)
    print_table(rows, [v for v, _ in variants])


def print_table(rows: list[dict], names: list[str]) -> None:
    print()
    print("| competition (metric) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    ranks = {n: [] for n in names}
    for row in rows:
        scores = np.array([row["scores"][n] for n in names])
        sign = -1 if row["direction"] == "maximize" else 1
        order = (sign * scores).argsort().argsort() + 1
        best = scores[order == 1][0]
        for n, r in zip(names, order, strict=True):
            ranks[n].append(r)
        cells = [f"**{s:.4f}**" if s == best else f"{s:.4f}" for s in scores]
        arrow = "↑" if row["direction"] == "maximize" else "↓"
        print(f"| {row['competition']} ({row['metric']} {arrow}) | " + " | ".join(cells) + " |")
    print("| mean rank | " + " | ".join(f"{np.mean(ranks[n]):.2f}" for n in names) + " |")
    seconds = {n: sum(r["seconds"][n] for r in rows) for n in names}
    print("| seconds (all) | " + " | ".join(f"{seconds[n]:.0f}" for n in names) + " |")


if __name__ == "__main__":
    main()
