"""Tuning recipe: search a track's parameters with Optuna, then rerun the best with `--config`.

Each trial cross-validates the track with parameters drawn by a seeded TPE sampler; a median
pruner stops poor trials from their per-epoch validation scores. The study lives in a journal
file in the tuning folder, so running the same command again continues it, and several
terminals running it at once share it (`--storage postgresql://...` for several machines).

    python pipelines/tune.py path/to/competition --track baseline --trials 50 [--time-budget 3600]
    kit baseline path/to/competition --config submissions/<competition>/tune-baseline/best.toml

A track's search space is its SEARCH_SPACE (kit/tracks/<track>.py, or your own track file); a
competition's TOML changes it entry by entry in a [search.<track>] table, without copying.
`--track pipelines/my_track.py` tunes your own track.
"""

from __future__ import annotations

import sys

from kit import tuning
from kit.api import load
from kit.cli import INTERRUPTED, build_parser, guarded, settings


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(["tune", *(sys.argv[1:] if argv is None else argv)])
    from kit import tracks

    track = tracks.get(args.track)  # before the config: a track file's [<name>] table is then known
    comp, cfg = load(args.data, config=args.config, **settings(args))
    for note in comp.notes:
        print(f"note: {note}")
    return tuning.tune(
        comp,
        cfg,
        track,
        n_trials=args.trials,
        time_budget=args.time_budget,
        storage=args.storage,
        study_name=args.study,
        pruner=args.pruner,
        out=args.out,
    )


if __name__ == "__main__":
    sys.exit(guarded(main, interrupted=INTERRUPTED["tune"]))
