"""Advanced recipe: TFT-style features, tf.data, a custom TensorFlow loop on whatever accelerator
this machine has, then every fold exported as one SavedModel that takes raw test rows.

Per fold: analyze the training fold (means, quantiles, vocabularies) into Keras preprocessing
layers, map all splits through them in the tf.data pipeline, train an MLP with the custom loop
(AdamW, warm-up + cosine decay, clipping, optional EMA, early stopping on the competition metric,
mixed precision and XLA on GPU/TPU, checkpoints, TensorBoard), predict. The run folder is the
baseline's plus `model/` and `tensorboard/`. Run it again with the same `--out` after a kill and
it resumes from the checkpoints.

The [advanced] table of a TOML (`--config`) sets its parameters (units, epochs, ema, precision,
strategy, ...); `kit/tracks/advanced.py` is the track itself, and pipelines/my_track.py shows how
a track of your own plugs in.

    python pipelines/advanced.py path/to/competition [--folds 5 --seed 0 --out DIR ...]
    kit predict DIR/model path/to/competition/test.csv --out submission.csv
"""

from __future__ import annotations

import sys

from kit.api import load
from kit.cli import INTERRUPTED, build_parser, guarded, settings
from kit.run import cross_validate


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(["advanced", *(sys.argv[1:] if argv is None else argv)])
    comp, cfg = load(args.data, config=args.config, **settings(args))
    for note in comp.notes:
        print(f"note: {note}")
    return cross_validate(comp, cfg, "advanced", out=args.out)


if __name__ == "__main__":
    sys.exit(guarded(main, interrupted=INTERRUPTED["advanced"]))
