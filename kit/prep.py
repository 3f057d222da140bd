"""Data prep for the baseline: scikit-learn transformers fit on each training fold.

`Preprocessor` takes the derived columns (`kit.derive.derive`) and learns medians, categories and
scales, so it must only ever see the training part of a fold.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from scipy import stats
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
)

from kit.derive import is_datetime_part
from kit.errors import InputError

SCALINGS = ("robust", "standard", "quantile", "power")
# a training fold above FIT_ROWS rows is fit on a sample of that many (its medians, quartiles,
# categories and vocabularies hardly move); frames are transformed TRANSFORM_ROWS rows at a time,
# so scikit-learn's float64 intermediates stay the size of a chunk
FIT_ROWS = 200_000
TRANSFORM_ROWS = 262_144
F16_MAX = float(np.finfo(np.float16).max)


def smooth_clip(x):
    """x / sqrt(1 + (x / 3)^2): the identity near 0, bounded by 3 far out (RealMLP's smooth clipping)."""
    # clipped first: squaring a huge value would overflow, and 1e6 maps to 3 within 1e-11 anyway
    x = np.clip(x, -1e6, 1e6)
    return x / np.sqrt(1 + (x / 3) ** 2)


def skewed_columns(values: np.ndarray, threshold: float) -> np.ndarray:
    """Which columns of a 2-d array (missing values as NaN) to take as log1p before scaling: those
    with no negative value and a skewness above `threshold` (0: none).

    Spending, areas, counts, lab values: zero-inflated or heavy-tailed columns, whose large values
    a robust scale and smooth clip would squeeze together near 3; on log1p they keep their order
    and their ratios.
    """
    if threshold <= 0 or values.shape[0] == 0:
        return np.zeros(values.shape[1], bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant or all-missing column: NaN, not logged
        skew = stats.skew(values, axis=0, nan_policy="omit")
        lowest = np.nanmin(values, axis=0)
    return (lowest >= 0) & (np.nan_to_num(np.asarray(skew)) > threshold)


class LogSkewed(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """log1p of the non-negative, skewed columns of a fold (`skewed_columns`); others as they are.
    A negative value at prediction time counts as 0; a missing one stays missing."""

    def __init__(self, threshold: float = 2.0):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.logged_ = skewed_columns(X, self.threshold)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.array(X, dtype=np.float64)
        X[:, self.logged_] = np.log1p(np.maximum(X[:, self.logged_], 0))
        return X


class RobustScaleSmoothClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Centre on the median, divide by the interquartile range, then clip smoothly (RealMLP).

    A column whose quartiles coincide (mostly one value) is scaled by half its range instead; a
    constant column becomes 0, also at prediction time. Heavy tails are pulled in without the
    rank transform's loss of distances, so a test row far out stays within the network's range.

    Attributes:
        median_: per column. factor_: 1 / (IQR, or half the range), 0 for a constant column.
    """

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.median_, self.factor_ = robust_scale(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return smooth_clip((np.asarray(X, dtype=np.float64) - self.median_) * self.factor_)


def bin_layout(edges: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every column's bins side by side, from each column's bin edges (empty: no bins): per bin,
    its column's index, its left edge and its width. A piecewise-linear encoding is then
    clip((x[:, columns] - starts) / widths, 0, 1)."""
    columns = np.array([j for j, e in enumerate(edges) for _ in range(len(e) - 1)], int)
    starts = np.concatenate([e[:-1] for e in edges if len(e)] or [np.zeros(0)])
    widths = np.concatenate([np.diff(e) for e in edges if len(e)] or [np.zeros(0)])
    return columns, starts, widths


class PiecewiseLinear(TransformerMixin, BaseEstimator):
    """Each numeric column as its piecewise-linear encoding over its quantile bins (Gorishniy et
    al., NeurIPS 2022): one value per bin, 1 for the bins below the value, 0 above, its place
    within its own bin. Continuous in the value, and bounded: beyond the training range it stays
    at the outer bins' ends. Columns of fewer than 3 distinct values get no bins.

    Input without missing values (impute first). The encoding `kit.features.Features` gives the
    advanced track, in numpy (the layer takes its quantiles over the present values only, this
    over the imputed ones).
    """

    def __init__(self, n_bins: int = 16):
        self.n_bins = n_bins

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        quantiles = np.quantile(X, np.linspace(0, 1, self.n_bins + 1), axis=0)
        self.edges_ = [
            np.unique(quantiles[:, j]) if len(np.unique(X[:, j])) > 2 else np.zeros(0)
            for j in range(X.shape[1])
        ]
        self.columns_, self.starts_, self.widths_ = bin_layout(self.edges_)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        return np.clip((X[:, self.columns_] - self.starts_) / self.widths_, 0.0, 1.0)


def robust_scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median, factor) per column of a 2-d array without missing values, as RealMLP scales.

    The spread is the interquartile range, or half the range where that is 0 (a column mostly of
    one value); a constant column gets a factor of 0. (Widening to the 10th-90th and then wider
    percentiles before half the range, for zero-inflated columns, left the CV of the six shared
    competitions as it was but for titanic's, 0.843 -> 0.836: the paper's fallback stays.)
    """
    if values.shape[0] == 0:
        return np.zeros(values.shape[1]), np.zeros(values.shape[1])
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75], axis=0)
    spread = q75 - q25
    flat = spread == 0
    spread[flat] = 0.5 * (values.max(axis=0) - values.min(axis=0))[flat]
    factor = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > 0)
    return median, factor


class Preprocessor:
    """Impute, encode and scale the derived columns; fit on a training fold only.

    Numeric columns: median imputation with missing indicators, then robust scaling with smooth
    clipping (`RobustScaleSmoothClip`), standard, quantile or Yeo-Johnson ("power") scaling; with
    `n_bins`, also their piecewise-linear encoding over that many quantile bins (`PiecewiseLinear`).
    Categorical columns: most-frequent imputation with missing indicators, then one-hot (unseen and
    rare values fall into an "infrequent" column). Text columns (high cardinality): an integer index
    per value for an embedding; values seen once share one index, unseen and missing values get 0.

    With `one_hot="codes"`, the one-hots are not written out: "categories" holds, per categorical
    column, which of the `n_one_hot_` one-hot columns (all columns' side by side, `depths_` of
    each) is set, or one past the last where none is (an unseen value where no rare one was), and
    the network makes the one-hots (`kit.models`). A row then takes 4 bytes a categorical column
    instead of 4 a one-hot column.

    Example:
        >>> prep = Preprocessor(roles, scaling="quantile").fit(train_fold)
        >>> inputs = prep.transform(test)      # {"numbers": float32 (n, d), "codes": int32 (n, k)}
    """

    def __init__(
        self,
        roles: dict[str, str],
        *,
        scaling: str = "robust",
        log_skew: float = 0.0,
        n_bins: int = 0,
        min_frequency: int = 3,
        text_min_frequency: int = 10,
        one_hot: str = "dense",
    ):
        if scaling not in SCALINGS:
            raise InputError(
                f"Unknown scaling '{scaling}'. Use one of: {', '.join(SCALINGS)}. Received: scaling={scaling}"
            )
        self.roles = roles
        self.scaling = scaling
        self.log_skew = log_skew
        self.n_bins = n_bins
        self.min_frequency = min_frequency
        self.text_min_frequency = text_min_frequency
        if one_hot not in ("dense", "codes"):
            raise ValueError(f"one_hot must be 'dense' or 'codes'. Received: one_hot={one_hot!r}")
        self.one_hot = one_hot

    def _columns(self, role):
        return [c for c, r in self.roles.items() if r == role]

    def fit(self, frame: pl.DataFrame, *, seed: int = 0, rows: np.ndarray | None = None) -> Preprocessor:
        """Learn the constants from a training fold (a seeded sample of FIT_ROWS rows of a bigger
        one: the frequency thresholds then count in the sample's proportion); with `rows`, the
        fold is those rows of `frame` (`Fold.rows_of`), and only the sample is gathered."""
        n = frame.height if rows is None else len(rows)
        share = 1.0
        if n > FIT_ROWS:
            share = FIT_ROWS / n
            if rows is None:
                frame = frame.sample(n=FIT_ROWS, seed=seed)
            else:  # the rows frame[rows].sample(n=FIT_ROWS, seed=seed) would hold
                frame = frame[pl.Series(rows).sample(n=FIT_ROWS, seed=seed).to_numpy()]
        elif rows is not None:
            frame = frame[rows]
        min_frequency = max(1, round(self.min_frequency * share))
        text_min_frequency = max(1, round(self.text_min_frequency * share))
        numeric, categorical, text = (self._columns(r) for r in ("numeric", "categorical", "text"))
        # each string column's values in sorted order, so that its codes sort as its strings do
        self.values_ = {c: frame[c].drop_nulls().unique().sort().to_list() for c in categorical + text}
        first, frame = frame.head(1), self._coded(frame)
        scaler = {
            "robust": RobustScaleSmoothClip,
            "standard": StandardScaler,
            "quantile": lambda: QuantileTransformer(
                n_quantiles=min(1000, frame.height), output_distribution="normal", subsample=None
            ),
            # Yeo-Johnson: heavy tails pulled in, so a test row far out does not push the net off its range
            "power": lambda: PowerTransformer(method="yeo-johnson"),
        }[self.scaling]()
        parts = []
        if numeric:
            parts += [
                (
                    "numeric",
                    make_pipeline(
                        LogSkewed(self.log_skew),
                        SimpleImputer(strategy="median", keep_empty_features=True),
                        scaler,
                    ),
                    numeric,
                ),
                ("numeric_missing", MissingIndicator(features="missing-only", error_on_new=False), numeric),
            ]
            binned = [c for c in numeric if not is_datetime_part(c)]  # see is_datetime_part
            if self.n_bins and binned:
                parts.append(
                    (
                        "numeric_bins",
                        make_pipeline(
                            LogSkewed(self.log_skew),
                            SimpleImputer(strategy="median", keep_empty_features=True),
                            PiecewiseLinear(self.n_bins),
                        ),
                        binned,
                    )
                )

        def one_hot(sparse: bool):
            return make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=min_frequency, sparse_output=sparse
                ),
            )

        # in "codes", one encoder a column, so each column's one-hots are told apart
        self.one_hots_ = (
            {c: one_hot(sparse=True).fit(frame.select(c)) for c in categorical}
            if self.one_hot == "codes"
            else {}
        )
        self.depths_ = [len(e.get_feature_names_out()) for e in self.one_hots_.values()]
        self.n_one_hot_ = sum(self.depths_)
        if categorical:
            if self.one_hot == "dense":
                parts.append(("categorical", one_hot(sparse=False), categorical))
            parts += [
                (
                    "categorical_missing",
                    MissingIndicator(features="missing-only", error_on_new=False),
                    categorical,
                ),
            ]
        self.dense_ = ColumnTransformer(parts, sparse_threshold=0) if parts else None
        if self.dense_ is not None:
            self.dense_.fit(frame)
        self.text_ = None
        self.cardinalities_: list[int] = []
        if text:
            self.text_ = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                encoded_missing_value=-1,
                min_frequency=text_min_frequency,
                dtype=np.int64,
            ).fit(frame.select(text))
            codes = self.text_.transform(frame.select(text))
            # +1 everywhere: index 0 is shared by unseen and missing values (rare ones share the
            # encoder's "infrequent" index, the last one)
            self.cardinalities_ = [int(c) + 2 for c in codes.max(axis=0)]
        self.n_dense_ = self.transform(first)["numbers"].shape[1]
        # the scaled numbers come first among the dense columns (for a numeric embedding)
        self.n_numeric_ = len(numeric)
        return self

    def _coded(self, frame: pl.DataFrame) -> pl.DataFrame:
        """String columns as float codes (their rank among the fit's values; a value the fit never
        saw gets one past the last, missing stays missing as NaN). scikit-learn's encoders then
        work on numbers, several times faster than on Python strings, and give what they would
        give on the strings: categories sort the same way, and an unseen code is unknown to them."""
        return frame.with_columns(
            pl.when(pl.col(c).is_null())
            .then(np.nan)  # replace_strict would give a missing value the default, too
            .otherwise(
                pl.col(c).replace_strict(
                    values, range(len(values)), default=len(values), return_dtype=pl.Float64
                )
            )
            .alias(c)
            for c, values in self.values_.items()
        )

    def _dense(self, frame: pl.DataFrame, width: int = 0) -> np.ndarray:
        """The fitted ColumnTransformer's columns as float32, each part's copied into its place
        (its own transform stacks the parts into a float64 array first, a second full-width copy),
        zero columns after them up to `width`."""
        if self.dense_ is None:
            return np.zeros((frame.height, width), np.float32)
        parts = [
            transformer.transform(frame.select(columns))
            for name, transformer, columns in self.dense_.transformers_
            if name != "remainder" and transformer != "drop"
        ]
        n_columns = sum(p.shape[1] for p in parts)
        out = np.empty((frame.height, max(width, n_columns)), np.float32)
        out[:, n_columns:] = 0
        at = 0
        for part in parts:
            out[:, at : at + part.shape[1]] = part
            at += part.shape[1]
        return out

    def transform(
        self,
        frame: pl.DataFrame,
        *,
        rows: np.ndarray | None = None,
        width: int = 0,
        one_hot_width: int = 0,
        stored: bool = False,
    ) -> dict[str, np.ndarray]:
        """{"numbers": float32 (n, n_dense_), "codes": int32 (n, text columns)}, and "categories"
        int32 (n, categorical columns) with `one_hot="codes"` and categorical columns, for `frame`, or its `rows` in
        that order (gathered a chunk at a time). With `width`, "numbers" gets zero columns up to
        that many (made in place, not a padded copy); with `one_hot_width`, "none" in
        "categories" is that, one past a block of that many one-hot columns.

        With `stored`, the tables a big training fold is held in: the numbers as float16 (robust
        scaling's smooth clipping keeps them within 3 of 0, where float16 has 3 decimals; a value
        beyond its range is clipped to it) and the codes as int16 where they fit, half the memory;
        each batch is widened back as it is gathered."""
        n = frame.height if rows is None else len(rows)
        if n > TRANSFORM_ROWS or stored:
            # each chunk into its rows of the output: no list of parts beside the whole
            out = None
            for i, part in zip(
                range(0, n, TRANSFORM_ROWS),
                self.transform_chunks(frame, rows=rows, width=width, one_hot_width=one_hot_width),
                strict=True,
            ):
                if out is None:
                    out = {
                        k: np.empty((n, v.shape[1]), self._stored(k, one_hot_width) if stored else v.dtype)
                        for k, v in part.items()
                    }
                for k, v in part.items():
                    if out[k].dtype == np.float16:  # a standard-scaled outlier beyond float16's range
                        np.clip(v, -F16_MAX, F16_MAX, out=v)
                    out[k][i : i + len(v)] = v
            return out
        if rows is not None:
            frame = frame[rows]  # one chunk: gathered whole
        frame = self._coded(frame)
        n = frame.height
        dense = self._dense(frame, width)
        embed = (
            (self.text_.transform(frame.select(self._columns("text"))) + 1).astype(np.int32)
            if self.text_ is not None
            else np.zeros((n, 0), np.int32)
        )
        if not self.one_hots_:
            return {"numbers": dense, "codes": embed}
        return {"numbers": dense, "codes": embed, "categories": self._one_hot_columns(frame, one_hot_width)}

    def _stored(self, table: str, one_hot_width: int) -> type:
        if table == "numbers":
            return np.float16
        largest = (
            max(self.cardinalities_, default=0) if table == "codes" else max(one_hot_width, self.n_one_hot_)
        )
        return np.int16 if largest < np.iinfo(np.int16).max else np.int32

    def transform_chunks(self, frame: pl.DataFrame, *, rows: np.ndarray | None = None, **widths):
        """`transform` of `frame` (or its `rows`, in that order) a chunk of TRANSFORM_ROWS rows at a
        time, each chunk's tables yielded as made (at least one chunk, empty for no rows)."""
        n = frame.height if rows is None else len(rows)
        for i in range(0, max(n, 1), TRANSFORM_ROWS):
            chunk = frame.slice(i, TRANSFORM_ROWS) if rows is None else frame[rows[i : i + TRANSFORM_ROWS]]
            yield self.transform(chunk, **widths)

    def _one_hot_columns(self, frame: pl.DataFrame, one_hot_width: int) -> np.ndarray:
        """Per row and categorical column, its one-hot column among all columns' side by side;
        where none is set, one past the last (`one_hot_width`, at least `n_one_hot_`)."""
        out = np.full((frame.height, len(self.one_hots_)), max(one_hot_width, self.n_one_hot_), np.int32)
        offset = 0
        for j, (column, encoder) in enumerate(self.one_hots_.items()):
            hot = encoder.transform(frame.select(column)).tocsr()  # at most one entry a row
            rows = np.flatnonzero(np.diff(hot.indptr))
            out[rows, j] = offset + hot.indices[hot.indptr[rows]]
            offset += self.depths_[j]
        return out
