"""Reference recipe: scikit-learn's HistGradientBoosting with default settings.

What a user who knows scikit-learn writes in five minutes: drop the id, ordinal-encode the text
columns and pass them as categorical features, fit on the raw target, predict the test file.

    python bench/hgb.py path/to/competition --target Survived --id PassengerId \
        --task binary --metric accuracy --kind label --out submission.csv
"""

from __future__ import annotations

import numpy as np
import polars as pl
from recipe_io import parser, read_competition, write_submission
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

# HistGradientBoosting bins a categorical feature's codes into at most max_bins (255) bins and
# refuses more; text with more distinct values (names, tickets, cabins) is dropped, as users do.
MAX_CATEGORIES = 255


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    x_train, y, x_test, ids, sample = read_competition(args.data, target=args.target, id=args.id)

    text = [c for c in x_train.columns if x_train[c].dtype == pl.String]
    keep = [c for c in text if x_train[c].n_unique() <= MAX_CATEGORIES]
    numbers = [c for c in x_train.columns if c not in text]
    # booleans become 0/1; nulls stay missing, which HistGradientBoosting handles itself
    x_train, x_test = (f.select(pl.col(keep), pl.col(numbers).cast(pl.Float64)) for f in (x_train, x_test))
    encode = make_column_transformer(
        (
            OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
            ),
            keep,
        ),
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="polars")

    if args.task == "regression":
        model = make_pipeline(
            encode, HistGradientBoostingRegressor(categorical_features=keep, random_state=0)
        )
        model.fit(x_train, y.cast(pl.Float64).to_numpy())
        pred, classes = model.predict(x_test), None
    else:
        model = make_pipeline(
            encode, HistGradientBoostingClassifier(categorical_features=keep, random_state=0)
        )
        model.fit(x_train, y.to_numpy())
        pred, classes = model.predict_proba(x_test), [str(c) for c in model.classes_]
    write_submission(
        args.out,
        sample=sample,
        id=args.id,
        ids=ids,
        target=args.target,
        kind=args.kind,
        classes=classes,
        pred=pred,
    )


if __name__ == "__main__":
    main()
