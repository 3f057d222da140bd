"""kit: a Kaggle-style competition starter kit on TensorFlow/Keras."""

import os

# TensorFlow prints C++ start-up chatter (CUDA probes, oneDNN notes) unless told otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from kit import boundary as _boundary  # noqa: E402

# and the lines it writes before reading that setting, when a script or notebook imports it after kit
_boundary.quiet_tensorflow()

from kit import api as _api  # noqa: E402
from kit.api import auto, blend, inspect, leaderboard, load, predict, report, run_track, tune, validate  # noqa: E402

# one verb per registered track (kit/tracks/): kit.baseline(...), kit.advanced(...), ...
globals().update({name: getattr(_api, name) for name in _api.TRACK_VERBS})

__all__ = [
    "auto", "blend", "inspect", "leaderboard", "load", "predict", "report", "run_track", "tune", "validate",
    *_api.TRACK_VERBS,
]  # fmt: skip
