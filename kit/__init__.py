"""kit: a Kaggle-style competition starter kit on TensorFlow/Keras."""

import os

# TensorFlow prints C++ start-up chatter (CUDA probes, oneDNN notes) unless told otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from kit import boundary as _boundary  # noqa: E402

# and the lines it writes before reading that setting, when a script or notebook imports it after kit
_boundary.quiet_tensorflow()

from kit.tracks import names as _track_names  # noqa: E402 - the modules' names: nothing imported

# one verb per registered track (kit/tracks/): kit.baseline(...), kit.advanced(...), ...
__all__ = [
    "auto", "blend", "inspect", "leaderboard", "load", "predict", "report", "run_track", "tune", "validate",
    *_track_names(),
]  # fmt: skip


def __getattr__(name: str):
    """The API (`kit.api`), imported on first use: `kit` on the command line parses its flags, and
    stops on Ctrl-C with its one line, before scikit-learn and polars are imported."""
    if name not in __all__:
        raise AttributeError(f"module 'kit' has no attribute {name!r}")
    from kit import api

    value = getattr(api, name)
    globals()[name] = value
    return value
