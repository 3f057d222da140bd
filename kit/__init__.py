"""kit: a Kaggle-style competition starter kit on TensorFlow/Keras."""

import os
import sys
import types

# TensorFlow prints C++ start-up chatter (CUDA probes, oneDNN notes) unless told otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from kit.api import advanced, baseline, inspect, leaderboard, load, predict, tune, validate  # noqa: E402

__all__ = ["advanced", "baseline", "inspect", "leaderboard", "load", "predict", "tune", "validate"]


class _Package(types.ModuleType):
    """The `kit` package, whose API verbs outlive the import of a submodule of the same name.

    Importing a submodule binds it on its package, so the first `kit.baseline(...)` call (which
    imports the `kit.baseline` module) would turn `kit.baseline` into that module and break the
    second call. The module stays where imports look for it: sys.modules["kit.baseline"].
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in __all__ and callable(self.__dict__.get(name)):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
