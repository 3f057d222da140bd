"""How much a fold trains, by its number of rows: the batch size, the epochs and patience within a
budget of examples, and the validation rows scored each epoch. Both networks' tracks use them."""

from __future__ import annotations

import numpy as np

from kit.split import sample_rows


def batch_size_for(n_rows: int) -> int:
    """About 30-100 steps an epoch up to 130k rows: small data keeps small batches; above, batches
    grow to 4096, so a step keeps two cores busy and an epoch of a million rows is 250 steps."""
    return int(np.clip(2 ** round(np.log2(max(n_rows, 1) / 64)), 32, 4096))


def fit_budget(n_rows: int, *, epochs: int, patience: int, max_examples: int) -> tuple[int, int]:
    """(epochs, patience) for a training fold of `n_rows`: at most `max_examples` rows seen in all.

    Small data keeps its epochs (100 epochs of 40k rows is 4M examples); a fold of 600k rows gets
    6, and the patience shrinks with them (to one epoch there: a big fold's best epoch comes early,
    and its validation score is steady enough to stop at the first epoch that is not better), so
    the cost of a fold stops growing with its rows.
    """
    allowed = max(1, max_examples // max(n_rows, 1))
    kept = min(epochs, max(allowed, 3))
    return kept, max(1, min(patience, round(patience * kept / epochs)))


# rows of the validation fold scored after each epoch for early stopping: a sample is enough to
# tell the best epoch, and scoring a million rows every epoch would cost more than training
VALIDATION_SAMPLE = 50_000


def validation_sample(n_rows: int, *, seed: int) -> np.ndarray | None:
    """The rows of a validation fold scored each epoch (None: all of them)."""
    return sample_rows(n_rows, VALIDATION_SAMPLE, seed=seed)
