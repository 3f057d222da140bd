"""kit: a Kaggle-style competition starter kit on TensorFlow/Keras."""

import os

# TensorFlow prints C++ start-up chatter (CUDA probes, oneDNN notes) unless told otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
