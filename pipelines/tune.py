"""Tuning recipe: search a track's parameters with Optuna, then rerun the best with `--config`.

Each trial cross-validates the track with parameters drawn by a seeded TPE sampler; a median
pruner stops poor trials from their per-epoch validation scores. The study lives in a journal
file in the tuning folder, so running the same command again continues it, and several
terminals running it at once share it (`--storage postgresql://...` for several machines).

    python pipelines/tune.py path/to/competition --track baseline --trials 50 [--time-budget 3600]
    kit baseline path/to/competition --config submissions/<competition>/tune-baseline/best.toml

Copy this file to tune your own model: swap `fit_predict_fold` for one that takes the same
parameters, and narrow or widen `SEARCH_SPACE` below (or, without copying, the competition's
TOML: a [search.<track>] table changes kit's space entry by entry).
"""

from __future__ import annotations

import sys

from kit import tuning
from kit.api import load
from kit.cli import build_parser, settings

# None keeps kit's space for the track (kit.tuning.SEARCH_SPACES); a dict here replaces it, e.g.
# {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.5}}
SEARCH_SPACE: dict | None = None


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(["tune", *(sys.argv[1:] if argv is None else argv)])
    fit_predict_fold = tuning.fit_predict_fold_for(args.track)  # swap in your own model here
    comp, cfg = load(args.data, config=args.config, **settings(args))
    for note in comp.notes:
        print(f"note: {note}")
    if SEARCH_SPACE is not None:
        tuning.SEARCH_SPACES[args.track] = SEARCH_SPACE
    return tuning.tune(
        comp,
        cfg,
        fit_predict_fold,
        track=args.track,
        n_trials=args.trials,
        time_budget=args.time_budget,
        storage=args.storage,
        study_name=args.study,
        pruner=args.pruner,
        out=args.out,
    )


if __name__ == "__main__":
    main()
