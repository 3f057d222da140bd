"""The tracks: per-fold functions for `kit.run.cross_validate`.

`kit.tracks.baseline` trains an MLP with Keras `fit()`; `kit.tracks.advanced` runs the custom
TensorFlow loop and exports a model that takes raw rows.
"""
