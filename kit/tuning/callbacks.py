"""The callbacks a track calls after every epoch of a trial: pruning, and the time budget.

Both work from `model.fit(callbacks=...)` and from a custom loop that calls `on_epoch_end(epoch,
{"val_score": ...})` itself. Keras is imported on first use, so the process that only coordinates
workers (opens the storage, writes the plots) never imports TensorFlow.
"""

from __future__ import annotations

import functools
import time

import optuna


class OutOfTime(Exception):
    """The time budget ran out in the middle of a trial."""


@functools.cache
def _classes() -> dict[str, type]:
    import keras

    class TrialPruning(keras.callbacks.Callback):
        """Reports each epoch's `val_score` to an Optuna trial; raises `optuna.TrialPruned` when the
        pruner says so.

        Every fold is reported, on steps `fold * steps_per_fold + epoch`: fold k's epoch e lands on the
        same step in every trial, so other trials' values at a step are always the same fold at the
        same epoch. The median pruner weighs the trial's best value so far against them, so a trial is
        judged mostly on its first fold (where pruning saves the most), and a later fold can still stop
        it when it falls behind the others there.
        """

        def __init__(
            self, trial: optuna.Trial, *, fold: int, steps_per_fold: int, monitor: str = "val_score"
        ):
            super().__init__()
            self.trial, self.fold, self.steps_per_fold, self.monitor = trial, fold, steps_per_fold, monitor

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if value is None:
                raise KeyError(
                    f"TrialPruning needs logs['{self.monitor}'] after each epoch: the track must put the "
                    f"competition metric on the validation fold there. Received: logs keys {sorted(logs or {})}"
                )
            self.trial.report(float(value), self.fold * self.steps_per_fold + epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at fold {self.fold + 1}, epoch {epoch + 1}")

    class StopAtDeadline(keras.callbacks.Callback):
        """Raises `OutOfTime` when the next epoch would end past `deadline` (a `time.monotonic()` value).

        Epoch times are measured as the folds go and kept in `timing`, shared by all the folds and
        trials of a worker, so a fold is not even started when its first epoch (the slowest: it also
        traces the graph) cannot end in time. A custom loop that only calls `on_epoch_end` gets the
        check after each epoch.
        """

        def __init__(self, deadline: float, timing: dict):
            super().__init__()
            self.deadline, self.timing = deadline, timing
            self._last = None

        def on_train_begin(self, logs=None):
            self._last = time.monotonic()
            if self._last + self.timing.get("first_epoch", 0.0) >= self.deadline:
                raise OutOfTime("the time budget ran out before a fold")

        def on_epoch_end(self, epoch, logs=None):
            now = time.monotonic()
            if self._last is not None:
                self.timing["first_epoch" if epoch == 0 else "epoch"] = now - self._last
            self._last = now
            if now + self.timing.get("epoch", 0.0) >= self.deadline:
                raise OutOfTime(f"the time budget ran out at epoch {epoch + 1}")

    return {"TrialPruning": TrialPruning, "StopAtDeadline": StopAtDeadline}


def __getattr__(name: str):
    # `kit.tuning.callbacks.TrialPruning` without importing Keras up front
    if name in ("TrialPruning", "StopAtDeadline"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
