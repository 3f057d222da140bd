"""Baseline recipe: discover a competition, cross-validate the fast Keras MLP, write a submission.

To try your own model, copy pipelines/my_track.py instead: a track file runs with
`kit run my_track.py DIR` and gets the same folds, scores, submission and tuning.

    python pipelines/baseline.py path/to/competition [--folds 5 --seed 0 ...]
"""

from __future__ import annotations

import sys

from kit.api import load
from kit.cli import build_parser, guarded, settings
from kit.run import cross_validate


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(["baseline", *(sys.argv[1:] if argv is None else argv)])
    comp, cfg = load(args.data, config=args.config, **settings(args))
    for note in comp.notes:
        print(f"note: {note}")
    # parameters from the config's [baseline] table over the track's DEFAULTS
    return cross_validate(comp, cfg, "baseline", out=args.out)


if __name__ == "__main__":
    sys.exit(guarded(main))
