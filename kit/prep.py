"""Data prep: stateless feature derivation, then scikit-learn transformers fit on each training fold.

`derive` turns raw columns into model columns without learning anything (datetime parts, booleans
as categories), so it may run on train and test alike. `Preprocessor` learns medians, categories
and scales, and must only ever see the training part of a fold.
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

from kit.competition import parse_datetime, part_name, split_parts
from kit.errors import InputError

SCALINGS = ("standard", "quantile", "power")
# datetime parts that act like categories (one-hot) rather than quantities
DATETIME_PARTS = {
    "year": ("numeric", lambda d: d.dt.year()),
    "month": ("categorical", lambda d: d.dt.month()),
    "day": ("numeric", lambda d: d.dt.day()),
    "weekday": ("categorical", lambda d: d.dt.weekday()),
    "hour": ("categorical", lambda d: d.dt.hour()),
    "dayofyear": ("numeric", lambda d: d.dt.ordinal_day()),
    "elapsed_days": ("numeric", lambda d: d.dt.epoch("d")),
}


def derive(
    frame: pl.DataFrame, roles: dict[str, str], parts: dict[str, dict] | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Model columns from raw columns; learns nothing, so train and test go through it alike.

    Args:
        frame: raw rows (train or test).
        roles: raw column -> role, from `Competition.roles`.
        parts: text column -> its delimited fields, from `Competition.parts`; each field that is
            not constant becomes a column of its own (`Cabin` "F/4/S" -> `Cabin__1` "F", ...).

    Returns:
        (frame, roles) where every column is Float64 with role "numeric", or String with role
        "categorical" (few values: one-hot) or "text" (many values: integer index + embedding).
    """
    columns, out_roles = [], {}
    for column, role in roles.items():
        s = frame[column]
        if role in ("constant", "missing"):
            continue
        if role == "numeric":
            columns.append(s.cast(pl.Float64))
            out_roles[column] = "numeric"
        elif role in ("categorical", "boolean", "text"):
            columns.append(s.cast(pl.String))
            out_roles[column] = "text" if role == "text" else "categorical"
        elif role == "datetime":
            stamp = parse_datetime(s)
            for part, (part_role, fn) in DATETIME_PARTS.items():
                values = fn(stamp)
                name = f"{column}__{part}"
                if part_role == "numeric":
                    columns.append(values.cast(pl.Float64).alias(name))
                else:
                    columns.append(values.cast(pl.String).alias(name))
                out_roles[name] = part_role
        else:
            raise InputError(f"Unknown role '{role}' for column '{column}'. Received: role={role}")
        if parts and column in parts:
            info = parts[column]
            for i, (field, part_role) in enumerate(
                zip(split_parts(s, info["sep"], len(info["roles"])), info["roles"], strict=True)
            ):
                name = part_name(column, i)
                if part_role == "numeric":
                    columns.append(field.cast(pl.Float64, strict=False).alias(name))
                elif part_role in ("categorical", "text"):
                    columns.append(field.replace("", None).alias(name))
                else:
                    continue
                out_roles[name] = part_role
    return pl.DataFrame(columns), out_roles


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
