"""Baseline recipe: discover a competition, cross-validate the fast Keras MLP, write a submission.

Copy this file to try your own model: replace `fit_predict_fold` with a function that takes a
`kit.run.Fold` and the params, and returns (validation predictions, test predictions).

    python pipelines/baseline.py path/to/competition [--folds 5 --seed 0 ...]
"""

from __future__ import annotations

import sys

from kit.api import load
from kit.cli import build_parser, settings
from kit.run import cross_validate
from kit.tracks.baseline import fit_predict_fold  # swap in your own model here


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(["baseline", *(sys.argv[1:] if argv is None else argv)])
    comp, cfg = load(args.data, config=args.config, **settings(args))
    for note in comp.notes:
        print(f"note: {note}")
    return cross_validate(comp, cfg, fit_predict_fold, track="baseline", params=cfg.baseline, out=args.out)


if __name__ == "__main__":
    main()
