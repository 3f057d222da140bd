"""Data prep for the baseline: scikit-learn transformers fit on each training fold.

`Preprocessor` takes the derived columns (`kit.derive.derive`) and learns medians, categories and
scales, so it must only ever see the training part of a fold.
"""

from __future__ import annotations

import numpy as np
import polars as pl
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

from kit.errors import InputError

SCALINGS = ("standard", "quantile", "power")


class Preprocessor:
    """Impute, encode and scale the derived columns; fit on a training fold only.

    Numeric columns: median imputation with missing indicators, then standard or quantile scaling.
    Categorical columns: most-frequent imputation with missing indicators, then one-hot (unseen and
    rare values fall into an "infrequent" column). Text columns (high cardinality): an integer index
    per value for an embedding; values seen once share one index, unseen and missing values get 0.

    Example:
        >>> prep = Preprocessor(roles, scaling="quantile").fit(train_fold)
        >>> inputs = prep.transform(test)      # {"numbers": float32 (n, d), "codes": int32 (n, k)}
    """

    def __init__(
        self,
        roles: dict[str, str],
        *,
        scaling: str = "standard",
        min_frequency: int = 3,
        text_min_frequency: int = 10,
    ):
        if scaling not in SCALINGS:
            raise InputError(
                f"Unknown scaling '{scaling}'. Use one of: {', '.join(SCALINGS)}. Received: scaling={scaling}"
            )
        self.roles = roles
        self.scaling = scaling
        self.min_frequency = min_frequency
        self.text_min_frequency = text_min_frequency

    def _columns(self, role):
        return [c for c, r in self.roles.items() if r == role]

    def fit(self, frame: pl.DataFrame) -> Preprocessor:
        numeric, categorical, text = (self._columns(r) for r in ("numeric", "categorical", "text"))
        scaler = (
            QuantileTransformer(
                n_quantiles=min(1000, frame.height), output_distribution="normal", subsample=None
            )
            if self.scaling == "quantile"
            # Yeo-Johnson: heavy tails pulled in, so a test row far out does not push the net off its range
            else PowerTransformer(method="yeo-johnson")
            if self.scaling == "power"
            else StandardScaler()
        )
        parts = []
        if numeric:
            parts += [
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), scaler),
                    numeric,
                ),
                ("numeric_missing", MissingIndicator(features="missing-only", error_on_new=False), numeric),
            ]
        if categorical:
            parts += [
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent", missing_values=None),
                        OneHotEncoder(
                            handle_unknown="infrequent_if_exist",
                            min_frequency=self.min_frequency,
                            sparse_output=False,
                        ),
                    ),
                    categorical,
                ),
                (
                    "categorical_missing",
                    MissingIndicator(missing_values=None, features="missing-only", error_on_new=False),
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
                min_frequency=self.text_min_frequency,
                dtype=np.int64,
            ).fit(frame.select(text))
            codes = self.text_.transform(frame.select(text))
            # +1 everywhere: index 0 is shared by unseen and missing values (rare ones share the
            # encoder's "infrequent" index, the last one)
            self.cardinalities_ = [int(c) + 2 for c in codes.max(axis=0)]
        self.n_dense_ = self.transform(frame.head(1))["numbers"].shape[1]
        return self

    def transform(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        n = frame.height
        dense = (
            self.dense_.transform(frame).astype(np.float32)
            if self.dense_ is not None
            else np.zeros((n, 0), np.float32)
        )
        embed = (
            (self.text_.transform(frame.select(self._columns("text"))) + 1).astype(np.int32)
            if self.text_ is not None
            else np.zeros((n, 0), np.int32)
        )
        return {"numbers": dense, "codes": embed}
