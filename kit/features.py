"""TFT-style preprocessing: *analyze* a training fold in full passes, *map* rows with Keras layers.

`Features.analyze(frame)` makes full passes over the training fold with polars (means and
variances, quantile boundaries, vocabularies with top-k and a minimum frequency, missing rates);
the constants end up inside Keras preprocessing layers (`Normalization`, `Discretization`,
`StringLookup`), so the map is a graph of layers. During training it runs in the tf.data
pipeline on the host (TPUs reject string lookups); at export it is composed with the network.

The raw columns' derivation (datetime parts, delimited fields) comes before, from `kit.derive`:
`derive` in polars for training, `derive_graph` inside the exported model.

Example:
    >>> features = Features(fold.roles).analyze(fold.train)      # training fold only
    >>> encoded = features(to_tensors(fold.val))                  # {"numbers", "codes"}
"""

from __future__ import annotations

import keras
import numpy as np
import polars as pl
import tensorflow as tf
from keras import layers

from kit.derive import MISSING, is_datetime_part
from kit.errors import InputError
from kit.prep import bin_layout, robust_scale, skewed_columns

SCALINGS = ("robust", "standard")
BIN_ENCODINGS = ("linear", "embedding")


class Features(keras.layers.Layer):
    """Analyze a training fold, then map derived columns to model inputs.

    Numeric columns: missing values imputed with the median, then scaled: "robust" centres on
    the median, divides by the interquartile range and clips smoothly (RealMLP's, as
    `kit.prep.RobustScaleSmoothClip` does it for the baseline); "standard" clips to the `clip`
    and `1 - clip` quantiles and standardises. A missing indicator where the training fold had
    missing values, and quantile bins that let the network bend each feature on its own:
    "embedding", the bin's index (`Discretization`) for an embedding (piecewise constant);
    "linear", the piecewise-linear encoding of Gorishniy et al. (NeurIPS 2022), one value per bin
    in [0, 1]: 1 for the bins below the value, 0 above, its place within its own bin (continuous,
    so a smooth function stays smooth; the same as `kit.prep.PiecewiseLinear`). A date's parts get
    no bins (`kit.derive.is_datetime_part`). The constants are the layer's (non-trainable) weights.
    Categorical columns: one-hot over their vocabulary (`StringLookup`), missing as a value of its
    own. Text columns (many values): an integer index for an embedding. Values below
    `min_frequency` and unseen ones share the out-of-vocabulary index.

    Args:
        roles: derived column -> "numeric", "categorical" or "text" (`Fold.roles`).
        scaling: "robust" or "standard", for the numeric columns.
        log_skew: non-negative numeric columns skewed beyond this go in as log1p, before their
            median and scale are taken (`kit.prep.skewed_columns`); 0: none.
        n_bins: quantile bins per numeric column (0: no bins).
        bin_encoding: "linear" (piecewise-linear values among "numbers") or "embedding" (bin
            indices among "codes").
        max_tokens: the largest vocabulary kept per string column (most frequent first).
        min_frequency: rarer values go to the out-of-vocabulary index.
        clip: quantile at which numeric outliers are clipped before standardising.

    Attributes (set by `analyze`):
        numeric_, categorical_, text_: the columns of each kind, in input order.
        dropped_: string columns left out because no value reached `min_frequency`.
        logged_: per numeric column, 1 where it is taken as log1p.
        medians_, lower_, upper_, centers_, factors_: per numeric column: missing values become
            the median, values are clipped to [lower, upper] and scaled as (x - center) * factor.
        boundaries_: quantile bin boundaries per numeric column (inner ones; "linear" adds the
            training fold's minimum and maximum as the outer edges, in `edges_`).
        vocabularies_: per string column, most frequent first.
        missing_rates_: per column, in the training fold.
        n_dense_: width of the "numbers" output, whose first n_numeric_ columns are the scaled
            numeric columns; cardinalities_: vocabulary size per "codes" column.
    """

    def __init__(
        self,
        roles: dict[str, str],
        *,
        scaling: str = "robust",
        log_skew: float = 0.0,
        n_bins: int = 16,
        bin_encoding: str = "linear",
        max_tokens: int = 10_000,
        min_frequency: int = 2,
        clip: float = 0.001,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        unknown = {r for r in roles.values()} - {"numeric", "categorical", "text"}
        if unknown:
            raise InputError(
                f"Features takes derived columns (numeric, categorical, text); run kit.derive.derive "
                f"first. Received: roles={sorted(unknown)}"
            )
        if scaling not in SCALINGS:
            raise InputError(f"scaling must be one of {SCALINGS}. Received: scaling={scaling!r}")
        if bin_encoding not in BIN_ENCODINGS:
            raise InputError(
                f"bin_encoding must be one of {BIN_ENCODINGS}. Received: bin_encoding={bin_encoding!r}"
            )
        self.roles = dict(roles)
        self.bin_encoding = bin_encoding
        self.scaling = scaling
        self.log_skew = log_skew
        self.n_bins = n_bins
        self.max_tokens = max_tokens
        self.min_frequency = min_frequency
        self.clip = clip

    # -- analyze: full passes over the training fold ------------------------------------------
    def analyze(self, frame: pl.DataFrame) -> Features:
        """Compute the constants from a training fold and build the map layers.

        Args:
            frame: the derived training fold (`Fold.train`): Float64 and String columns.

        Returns:
            self.
        """
        # stats from the training fold only; the validation fold would leak
        self.numeric_ = [c for c, r in self.roles.items() if r == "numeric"]
        self.categorical_ = [c for c, r in self.roles.items() if r == "categorical"]
        self.text_ = [c for c, r in self.roles.items() if r == "text"]
        self.missing_rates_ = {
            c: float(frame[c].is_null().mean() or 0.0)
            + (float(frame[c].is_nan().mean() or 0.0) if frame[c].dtype.is_float() else 0.0)
            for c in self.roles
        }
        self._analyze_numeric(frame)
        self.vocabularies_ = {c: self._vocabulary(frame[c]) for c in self.categorical_ + self.text_}
        # a column whose every value is rarer than min_frequency (names, ticket numbers) carries
        # nothing a model could reuse on new rows
        self.dropped_ = [c for c, v in self.vocabularies_.items() if not v]
        self.categorical_ = [c for c in self.categorical_ if c not in self.dropped_]
        self.text_ = [c for c in self.text_ if c not in self.dropped_]

        # held as weights, so they are saved with an exported model; made now, eagerly: made
        # inside a tf.data trace they would keep that graph's tensors
        self.constants = {
            name: self.add_weight(
                name=name,
                shape=(len(self.numeric_),),
                initializer=keras.initializers.Constant(getattr(self, f"{name}_").astype(np.float32)),
                trainable=False,
            )
            for name in ("logged", "medians", "lower", "upper", "centers", "factors")
        }
        linear = self.bin_encoding == "linear"
        self.discretizers = [
            layers.Discretization(bin_boundaries=list(b), name=f"bins_{i}")
            for i, b in enumerate(self.boundaries_)
            if len(b) and not linear
        ]
        self.bin_columns_, starts, widths = bin_layout(self.edges_)
        self.bin_starts, self.bin_widths = (
            self.add_weight(
                name=name,
                shape=values.shape,
                initializer=keras.initializers.Constant(values.astype(np.float32)),
                trainable=False,
            )
            for name, values in (("bin_starts", starts), ("bin_widths", widths))
        )
        self.lookups = [
            layers.StringLookup(
                vocabulary=self.vocabularies_[c],
                num_oov_indices=1,
                output_mode="one_hot" if c in self.categorical_ else "int",
                name=f"lookup_{i}",
            )
            for i, c in enumerate(self.categorical_ + self.text_)
        ]
        self.indicated_ = [c for c in self.numeric_ if self.missing_rates_[c] > 0]
        # the scaled numbers come first among the dense columns (for a numeric embedding)
        self.n_numeric_ = len(self.numeric_)
        self.n_dense_ = (
            len(self.numeric_)
            + len(self.indicated_)
            + sum(len(self.vocabularies_[c]) + 1 for c in self.categorical_)
            + int(self.bin_starts.shape[0])
        )
        self.cardinalities_ = [len(b) + 1 for b in self.boundaries_ if len(b) and not linear] + [
            len(self.vocabularies_[c]) + 1 for c in self.text_
        ]
        self.built = True
        return self

    def _analyze_numeric(self, frame: pl.DataFrame) -> None:
        n = len(self.numeric_)
        if not n:
            self.logged_ = self.medians_ = self.lower_ = self.upper_ = self.centers_ = self.factors_ = (
                np.zeros(0)
            )
            self.boundaries_ = self.edges_ = []
            return
        values = np.array(frame.select(self.numeric_).cast(pl.Float64).fill_null(np.nan).to_numpy())
        empty = np.isnan(values).all(axis=0)
        # an all-missing column in this fold: zeros keep the math finite (it carries no signal)
        values[:, empty] = 0.0
        logged = skewed_columns(values, self.log_skew)
        values[:, logged] = np.log1p(values[:, logged])
        self.logged_ = logged.astype(np.float64)
        qs = np.concatenate([[0.5, self.clip, 1 - self.clip], np.linspace(0, 1, self.n_bins + 1)[1:-1]])
        quantiles = np.nanquantile(values, qs, axis=0)
        self.medians_ = quantiles[0]
        filled = np.where(np.isnan(values), self.medians_, values)
        if self.scaling == "robust":
            # the smooth clip after scaling pulls outliers in: no hard clip before it
            self.lower_, self.upper_ = np.full(n, -np.inf), np.full(n, np.inf)
            self.centers_, self.factors_ = robust_scale(filled)
        else:
            self.lower_, self.upper_ = quantiles[1], quantiles[2]
            clipped = np.clip(filled, self.lower_, self.upper_)
            std = clipped.std(axis=0)
            # a constant column stays at 0 after centring
            self.centers_, self.factors_ = (
                clipped.mean(axis=0),
                np.divide(1.0, std, out=np.zeros(n), where=std > 1e-6),
            )
        self.boundaries_ = [_distinct_in_float32(quantiles[3:, j]) for j in range(n)]
        # bins only help columns with spread (fewer than 3 distinct values add nothing over the
        # value) and that are not a date's parts (kit.derive.is_datetime_part)
        self.boundaries_ = [
            b
            if len(b) >= 2 and len(np.unique(filled[:, j])) > 2 and not is_datetime_part(column)
            else np.zeros(0)
            for j, (b, column) in enumerate(zip(self.boundaries_, self.numeric_, strict=True))
        ]
        # piecewise-linear: the fold's minimum and maximum are the outer edges
        linear = self.bin_encoding == "linear"
        self.edges_ = [
            _distinct_in_float32(np.concatenate([[low], b, [high]])) if linear and len(b) else np.zeros(0)
            for b, low, high in zip(self.boundaries_, filled.min(axis=0), filled.max(axis=0), strict=True)
        ]

    def _vocabulary(self, s: pl.Series) -> list[str]:
        counts = (
            s.cast(pl.String)
            .fill_null(MISSING)
            .value_counts(name="count")
            .filter(pl.col("count") >= self.min_frequency)
            # most frequent first, ties by value: the same fold gives the same vocabulary
            .sort(["count", s.name], descending=[True, False])
            .head(self.max_tokens)
        )
        return counts[s.name].to_list()

    # -- map: row-wise, with the analyzed constants ---------------------------------------------
    def call(self, columns: dict) -> dict:
        """Map a batch of derived columns to {"numbers": float32 (n, n_dense_), "codes": int32 (n, k)}."""
        dense, codes, ple = [], [], []
        if self.numeric_:
            w = {name: tf.convert_to_tensor(weight) for name, weight in self.constants.items()}
            x = tf.stack([tf.cast(columns[c], tf.float32) for c in self.numeric_], axis=1)
            missing = tf.math.is_nan(x)
            # skewed columns on log1p (kit.prep.LogSkewed); a negative value counts as 0
            x = tf.where(w["logged"] > 0, tf.math.log1p(tf.maximum(tf.where(missing, 0.0, x), 0.0)), x)
            x = tf.where(missing, w["medians"], x)
            x = tf.clip_by_value(x, w["lower"], w["upper"])
            scaled = (x - w["centers"]) * w["factors"]
            if self.scaling == "robust":  # kit.prep.smooth_clip, in the graph
                scaled = tf.clip_by_value(scaled, -1e6, 1e6)
                scaled = scaled / tf.sqrt(1 + (scaled / 3) ** 2)
            dense.append(scaled)
            if self.indicated_:
                index = [self.numeric_.index(c) for c in self.indicated_]
                dense.append(tf.cast(tf.gather(missing, index, axis=1), tf.float32))
            if self.discretizers:
                binned = [j for j, b in enumerate(self.boundaries_) if len(b)]
                for j, layer in zip(binned, self.discretizers, strict=True):
                    codes.append(tf.cast(layer(x[:, j]), tf.int32))
            if self.bin_starts.shape[0]:
                # each binned column repeated once per bin, then its place in each bin, clipped
                x_bins = tf.gather(x, self.bin_columns_, axis=1)
                starts, widths = tf.convert_to_tensor(self.bin_starts), tf.convert_to_tensor(self.bin_widths)
                ple.append(tf.clip_by_value((x_bins - starts) / widths, 0.0, 1.0))
        for c, layer in zip(self.categorical_ + self.text_, self.lookups, strict=True):
            out = layer(_as_string(columns[c]))
            if c in self.categorical_:
                dense.append(tf.cast(out, tf.float32))
            else:
                codes.append(tf.cast(out, tf.int32))
        dense += ple  # after the one-hot columns: the numeric embedding reads the first n_numeric_
        n = tf.shape(next(iter(columns.values())))[0]
        numbers = tf.concat(dense, axis=1) if dense else tf.zeros((n, 0), tf.float32)
        codes = tf.stack(codes, axis=1) if codes else tf.zeros((n, 0), tf.int32)
        return {"numbers": numbers, "codes": codes}

    def compute_output_spec(self, columns):
        batch = next(iter(columns.values())).shape[0]
        return {
            "numbers": keras.KerasTensor((batch, self.n_dense_), "float32"),
            "codes": keras.KerasTensor((batch, len(self.cardinalities_)), "int32"),
        }


def _as_string(x):
    return x if x.dtype == tf.string else tf.strings.as_string(x)


def _distinct_in_float32(edges: np.ndarray) -> np.ndarray:
    """Bin edges told apart as the graph tells them, in float32 with values below its smallest
    normal number flushed to 0 (as the CPU's kernels do): 0 and 1e-40 are one edge there, and a
    bin between them would divide by a zero width (a NaN loss at the first epoch)."""
    edges = edges.astype(np.float32)
    edges[np.abs(edges) < np.finfo(np.float32).tiny] = 0.0
    return np.unique(edges).astype(np.float64)
