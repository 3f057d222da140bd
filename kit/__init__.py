"""kit: a Kaggle-style competition starter kit on TensorFlow/Keras."""

import os

# TensorFlow prints C++ start-up chatter (CUDA probes, oneDNN notes) unless told otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from kit.api import advanced, baseline, inspect, leaderboard, load, predict, tune, validate  # noqa: E402

__all__ = ["advanced", "baseline", "inspect", "leaderboard", "load", "predict", "tune", "validate"]
