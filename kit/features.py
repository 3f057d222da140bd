"""TFT-style preprocessing: *analyze* a training fold in full passes, *map* rows with Keras layers.

`Features.analyze(frame)` makes full passes over the training fold with polars (means and
variances, quantile boundaries, vocabularies with top-k and a minimum frequency, missing rates);
the constants end up inside Keras preprocessing layers (`Normalization`, `Discretization`,
`StringLookup`), so the map is a graph of layers. During training it runs in the tf.data
pipeline on the host (TPUs reject string lookups); at export it is composed with the network.

`Derive` is `kit.prep.derive` written in TensorFlow ops (datetime parsing and parts, booleans as
categories), so an exported model takes the competition's raw columns and cannot drift from
what training saw: the test suite checks both against each other on real data.

Missing values travel as NaN in numeric columns and as "" in string columns: polars reads an
empty CSV field as null, so "" never is a real value.

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

from kit.competition import part_name
from kit.errors import InputError
from kit.prep import DATETIME_PARTS

MISSING = ""


class Features(keras.layers.Layer):
    """Analyze a training fold, then map derived columns to model inputs.

    Numeric columns: missing values imputed with the median, clipped to the `clip` and
    `1 - clip` quantiles, standardised (`Normalization`), a missing indicator where the
    training fold had missing values, and a quantile bin (`Discretization`) whose embedding
    lets the network bend each feature on its own. Categorical columns: one-hot over their
    vocabulary (`StringLookup`), missing as a value of its own. Text columns (many values): an
    integer index for an embedding. Values below `min_frequency` and unseen ones share the
    out-of-vocabulary index.

    Args:
        roles: derived column -> "numeric", "categorical" or "text" (`Fold.roles`).
        n_bins: quantile bins per numeric column (0: no bins).
        max_tokens: the largest vocabulary kept per string column (most frequent first).
        min_frequency: rarer values go to the out-of-vocabulary index.
        clip: quantile at which numeric outliers are clipped before standardising.

    Attributes (set by `analyze`):
        numeric_, categorical_, text_: the columns of each kind, in input order.
        dropped_: string columns left out because no value reached `min_frequency`.
        medians_, means_, variances_, lower_, upper_: per numeric column.
        boundaries_: quantile bin boundaries per numeric column.
        vocabularies_: per string column, most frequent first.
        missing_rates_: per column, in the training fold.
        n_dense_: width of the "numbers" output; cardinalities_: vocabulary size per "codes" column.
    """

    def __init__(
        self,
        roles: dict[str, str],
        *,
        n_bins: int = 16,
        max_tokens: int = 10_000,
        min_frequency: int = 2,
        clip: float = 0.001,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        unknown = {r for r in roles.values()} - {"numeric", "categorical", "text"}
        if unknown:
            raise InputError(
                f"Features takes derived columns (numeric, categorical, text); run kit.prep.derive "
                f"first. Received: roles={sorted(unknown)}"
            )
        self.roles = dict(roles)
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

        if self.numeric_:
            self.normalization = layers.Normalization(mean=self.means_, variance=self.variances_)
            # build now, eagerly: built inside a tf.data trace it would keep that graph's tensors
            self.normalization.build((None, len(self.numeric_)))
        self.discretizers = [
            layers.Discretization(bin_boundaries=list(b), name=f"bins_{i}")
            for i, b in enumerate(self.boundaries_)
            if len(b)
        ]
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
        self.n_dense_ = (
            len(self.numeric_)
            + len(self.indicated_)
            + sum(len(self.vocabularies_[c]) + 1 for c in self.categorical_)
        )
        self.cardinalities_ = [len(b) + 1 for b in self.boundaries_ if len(b)] + [
            len(self.vocabularies_[c]) + 1 for c in self.text_
        ]
        self.built = True
        return self

    def _analyze_numeric(self, frame: pl.DataFrame) -> None:
        n = len(self.numeric_)
        if not n:
            self.medians_ = self.means_ = self.variances_ = self.lower_ = self.upper_ = np.zeros(0)
            self.boundaries_ = []
            return
        values = np.array(frame.select(self.numeric_).cast(pl.Float64).fill_null(np.nan).to_numpy())
        empty = np.isnan(values).all(axis=0)
        # an all-missing column in this fold: zeros keep the math finite (it carries no signal)
        values[:, empty] = 0.0
        qs = np.concatenate([[0.5, self.clip, 1 - self.clip], np.linspace(0, 1, self.n_bins + 1)[1:-1]])
        quantiles = np.nanquantile(values, qs, axis=0)
        self.medians_, self.lower_, self.upper_ = quantiles[0], quantiles[1], quantiles[2]
        filled = np.where(np.isnan(values), self.medians_, values)
        clipped = np.clip(filled, self.lower_, self.upper_)
        self.means_ = clipped.mean(axis=0)
        # a constant column would divide by zero; 1 leaves it at 0 after centring
        self.variances_ = np.where(clipped.var(axis=0) > 1e-12, clipped.var(axis=0), 1.0)
        self.boundaries_ = [np.unique(quantiles[3:, j]) for j in range(n)]
        # bins only help columns with spread: fewer than 3 distinct values add nothing over the value
        self.boundaries_ = [
            b if len(b) >= 2 and len(np.unique(filled[:, j])) > 2 else np.zeros(0)
            for j, b in enumerate(self.boundaries_)
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
        dense, codes = [], []
        if self.numeric_:
            x = tf.stack([tf.cast(columns[c], tf.float32) for c in self.numeric_], axis=1)
            missing = tf.math.is_nan(x)
            x = tf.where(missing, tf.constant(self.medians_, tf.float32), x)
            x = tf.clip_by_value(x, self.lower_.astype(np.float32), self.upper_.astype(np.float32))
            dense.append(self.normalization(x))
            if self.indicated_:
                index = [self.numeric_.index(c) for c in self.indicated_]
                dense.append(tf.cast(tf.gather(missing, index, axis=1), tf.float32))
            binned = [j for j, b in enumerate(self.boundaries_) if len(b)]
            for j, layer in zip(binned, self.discretizers, strict=True):
                codes.append(tf.cast(layer(x[:, j]), tf.int32))
        for c, layer in zip(self.categorical_ + self.text_, self.lookups, strict=True):
            out = layer(_as_string(columns[c]))
            if c in self.categorical_:
                dense.append(tf.cast(out, tf.float32))
            else:
                codes.append(tf.cast(out, tf.int32))
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


# ---------------------------------------------------------------------------------------------
# Raw columns -> derived columns, in the graph


def raw_spec(
    roles: dict[str, str], train: pl.DataFrame, parts: dict[str, dict] | None = None
) -> dict[str, dict]:
    """What the exported model takes per raw column: its role and the input's kind.

    kind "float": a float64 input, NaN for missing (numeric columns, and boolean columns stored
    as numbers, as "int" when the train file holds integers); "string": everything else, ""
    for missing. A text column split into delimited fields (`Competition.parts`) also carries
    them as "parts".
    """
    spec = {}
    for column, role in roles.items():
        if role in ("constant", "missing"):
            continue
        dtype = train[column].dtype
        if dtype.is_numeric() and role in ("numeric", "boolean", "categorical"):
            kind = "int" if dtype.is_integer() and role != "numeric" else "float"
        else:
            kind = "string"
        spec[column] = {"role": role, "kind": kind}
        if parts and column in parts and kind == "string":
            spec[column]["parts"] = parts[column]
    return spec


class Derive(keras.layers.Layer):
    """`kit.prep.derive` in TensorFlow ops: raw columns in, derived columns out.

    Numeric columns become float32; categorical, boolean and text columns strings spelled as
    polars casts them ("1", "1.0", "true"); datetime columns ("YYYY-MM-DD[ HH...]") their parts,
    with the same names and roles as `derive` gives them.

    Args:
        spec: raw column -> {"role", "kind"}, from `raw_spec`.
    """

    def __init__(self, spec: dict[str, dict[str, str]], **kwargs):
        super().__init__(trainable=False, **kwargs)
        missing = set(DATETIME_PARTS) - set(_DATETIME_PARTS_TF)
        if missing:
            # kit.prep grew a datetime part this graph does not compute: the export would drift
            raise NotImplementedError(
                f"Derive has no TensorFlow version of datetime part(s) {sorted(missing)}"
            )
        self.spec = dict(spec)
        self.built = True

    def call(self, raw: dict) -> dict:
        out = {}
        for column, info in self.spec.items():
            x, role, kind = raw[column], info["role"], info["kind"]
            if role == "numeric":
                out[column] = tf.cast(x, tf.float32)
            elif role in ("categorical", "boolean", "text"):
                out[column] = x if kind == "string" else _number_to_string(x, integer=kind == "int")
                if "parts" in info:
                    out.update(_split_parts(column, x, info["parts"]))
            elif role == "datetime":
                parts = _parse_datetime(x)
                for part, (part_role, _) in DATETIME_PARTS.items():
                    value, valid = _DATETIME_PARTS_TF[part](parts), parts["valid"]
                    name = f"{column}__{part}"
                    if part_role == "numeric":
                        out[name] = tf.where(valid, tf.cast(value, tf.float32), np.float32(np.nan))
                    else:
                        out[name] = tf.where(valid, tf.strings.as_string(value), MISSING)
            else:
                raise InputError(f"Unknown role '{role}' for column '{column}'. Received: role={role}")
        return out


# what polars' String -> Float64 cast reads as a number
_NUMBER_PATTERN = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def _split_parts(column: str, x, info: dict) -> dict:
    """`kit.prep.derive`'s delimited fields: `<column>__1`, ... as strings or float32 numbers."""
    n = len(info["roles"])
    fields = tf.strings.split(x, info["sep"]).to_tensor(default_value=MISSING, shape=[None, n])
    out = {}
    for i, role in enumerate(info["roles"]):
        field, name = fields[:, i], part_name(column, i)
        if role == "numeric":
            valid = tf.strings.regex_full_match(field, _NUMBER_PATTERN)
            number = tf.strings.to_number(tf.where(valid, field, "0"), tf.float64)
            out[name] = tf.where(valid, tf.cast(number, tf.float32), np.float32(np.nan))
        elif role in ("categorical", "text"):
            out[name] = field
    return out


def _number_to_string(x, *, integer: bool):
    """Numbers spelled as polars casts them to String: 1 -> "1", 1.0 -> "1.0", NaN -> missing."""
    missing = tf.math.is_nan(tf.cast(x, tf.float64))
    safe = tf.where(missing, tf.zeros_like(x), x)
    if integer:
        text = tf.strings.as_string(tf.cast(safe, tf.int64))
    else:
        text = tf.strings.as_string(tf.cast(safe, tf.float64), shortest=True)
        # polars keeps a ".0" on whole floats ("1.0"); shortest=True drops it ("1")
        whole = tf.logical_not(tf.strings.regex_full_match(text, r".*[.eEn].*"))
        text = tf.where(whole, text + ".0", text)
    return tf.where(missing, MISSING, text)


_DATETIME_PATTERN = r"\d{4}-\d{2}-\d{2}([ T]\d{2}(:.*)?)?(\.\d*)?"


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), int64."""
    y = y - tf.cast(m <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.math.floormod(m + 9, 12)  # March = 0
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_datetime(s):
    valid = tf.strings.regex_full_match(s, _DATETIME_PATTERN)
    safe = tf.where(valid, s, "1970-01-01 00")

    def number(start, length, text=safe):
        return tf.strings.to_number(tf.strings.substr(text, start, length), tf.int64)

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    has_time = tf.strings.length(safe) >= 13
    # substr fails on strings too short for the hour, so date-only rows read a stand-in
    hour = tf.where(has_time, number(11, 2, tf.where(has_time, safe, "1970-01-01 00")), 0)
    days = _days_from_civil(year, month, day)
    valid &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour <= 23)
    return {"year": year, "month": month, "day": day, "hour": hour, "days": days, "valid": valid}


_DATETIME_PARTS_TF = {
    "year": lambda p: p["year"],
    "month": lambda p: p["month"],
    "day": lambda p: p["day"],
    # ISO weekday as polars counts it: Monday 1 .. Sunday 7; 1970-01-01 was a Thursday
    "weekday": lambda p: tf.math.floormod(p["days"] + 3, 7) + 1,
    "hour": lambda p: p["hour"],
    "dayofyear": lambda p: (
        p["days"] - _days_from_civil(p["year"], tf.ones_like(p["month"]), tf.ones_like(p["day"])) + 1
    ),
    "elapsed_days": lambda p: p["days"],
}
