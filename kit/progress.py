"""Progress bars for folds, epochs and trials that draw in a terminal and in a notebook.

`tqdm.auto` picks a widget in Jupyter and Kaggle notebooks and a text bar in a terminal. Bars are
left out where they would only clutter a log: with `disable=None`, tqdm hides a text bar when its
stream is not a terminal (CI, `kit ... > log.txt`), while a notebook always shows its widget.

    with FoldProgress(5, epochs=200, desc="titanic baseline") as progress:
        for k in range(5):
            callbacks = progress.start_fold(k)     # pass to model.fit, or call on_epoch_end
            ...
            progress.end_fold(score)

A tuner shows its trials with `bar(n_trials, desc="trials", unit="trial")`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from tqdm.auto import tqdm


def bar(
    total: int | None,
    *,
    desc: str,
    unit: str,
    initial: int = 0,
    leave: bool = True,
    disable: bool | None = None,
    file=None,
):
    """A tqdm bar for `total` steps, `initial` of them done; `disable=None` hides it where the
    output is not a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        disable=disable,
        file=file,
        dynamic_ncols=True,
    )


@functools.cache
def _epoch_bar_class() -> type:
    """`EpochBar`, built on first use: a process that only shows a bar over trials (the tuner's
    coordinator) never imports Keras."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        """Advances a bar once an epoch and shows the validation score.

        Only `on_epoch_end(epoch, logs)` is used, so it works inside `model.fit` and in a custom loop
        that calls the fold's callbacks itself (the same contract as pruning callbacks).
        """

        def __init__(self, progress_bar):
            super().__init__()
            self.progress_bar = progress_bar

        def on_epoch_end(self, epoch, logs=None):
            self.progress_bar.update(1)
            if logs and "val_score" in logs:
                self.progress_bar.set_postfix(val_score=f"{float(logs['val_score']):.5f}", refresh=False)

    return EpochBar


def __getattr__(name: str):
    # `kit.progress.EpochBar` without importing Keras up front
    if name == "EpochBar":
        return _epoch_bar_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FoldProgress:
    """One bar over the folds (kept when done) and one over each fold's epochs (removed when done).

    Args:
        n_folds: number of folds.
        epochs: epochs per fold, the epoch bar's length (None: a counter without a total).
        desc: label of the fold bar, e.g. "titanic baseline".
        disable: True hides the bars, False forces them, None decides from the output stream.
        file: stream for text bars (default stderr).
    """

    def __init__(
        self,
        n_folds: int,
        *,
        epochs: int | None = None,
        desc: str = "folds",
        disable: bool | None = None,
        file=None,
    ):
        self.n_folds, self.epochs, self.file = n_folds, epochs, file
        self.folds = bar(n_folds, desc=desc, unit="fold", disable=disable, file=file)
        self.epoch_bar = None
        self.scores: list[float] = []

    @property
    def shown(self) -> bool:
        return not self.folds.disable

    def start_fold(self, index: int) -> list:
        """Callbacks that advance the epoch bar of fold `index` (none when bars are hidden)."""
        self._close_epochs()
        if not self.shown:
            return []
        self.epoch_bar = bar(
            self.epochs,
            desc=f"fold {index + 1}/{self.n_folds}",
            unit="epoch",
            leave=False,
            disable=False,
            file=self.file,
        )
        return [_epoch_bar_class()(self.epoch_bar)]

    def end_fold(self, score: float) -> None:
        self._close_epochs()
        self.scores.append(float(score))
        mean = sum(self.scores) / len(self.scores)
        self.folds.set_postfix(last=f"{score:.5f}", mean=f"{mean:.5f}", refresh=False)
        self.folds.update(1)

    def wrap_log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """`print` goes through tqdm.write while a text bar is drawn, so lines do not cut through it."""
        if log is print and self.shown:
            return lambda message: tqdm.write(str(message))
        return log

    def _close_epochs(self) -> None:
        if self.epoch_bar is not None:
            self.epoch_bar.close()
            self.epoch_bar = None

    def close(self) -> None:
        self._close_epochs()
        self.folds.close()

    def __enter__(self) -> FoldProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
