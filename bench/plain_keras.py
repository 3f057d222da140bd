"""Reference recipe: the plain Keras model the tutorials teach.

fillna, one-hot the text columns (`pd.get_dummies`, here polars `to_dummies`), StandardScaler,
Dense 64-32, 20 epochs at batch 32 with `validation_split=0.2`, id dropped. For an rmsle metric
it trains on log1p(target), as the tutorials for those competitions do.

    python bench/plain_keras.py path/to/competition --target Survived --id PassengerId \
        --task binary --metric accuracy --kind label --out submission.csv
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from recipe_io import parser, read_competition, write_submission  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

# Tutorials drop names, tickets and cabins before get_dummies; this drops text columns with more
# distinct values than this, which are those (one-hot of every name would only memorise rows).
MAX_CATEGORIES = 255


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    keras.utils.set_random_seed(0)
    x_train, y, x_test, ids, sample = read_competition(args.data, target=args.target, id=args.id)

    text = [c for c in x_train.columns if x_train[c].dtype == pl.String]
    many = [c for c in text if x_train[c].n_unique() > MAX_CATEGORIES]
    numbers = [c for c in x_train.columns if c not in text]
    # train and test together through get_dummies, as the tutorials do, so the columns line up
    both = pl.concat([x_train, x_test], how="vertical_relaxed").drop(many)
    medians = x_train.select(pl.col(numbers).cast(pl.Float64).median())
    # fillna with the training medians; booleans become 0/1
    both = both.with_columns(pl.col(c).cast(pl.Float64).fill_null(medians[c][0]) for c in numbers)
    both = both.to_dummies([c for c in text if c not in many]).cast(pl.Float64)
    scaler = StandardScaler().fit(both[: x_train.height].to_numpy())
    a_train = scaler.transform(both[: x_train.height].to_numpy())
    a_test = scaler.transform(both[x_train.height :].to_numpy())

    classes = sorted(y.unique().to_list()) if args.task != "regression" else None
    if args.task == "binary":
        out, loss = keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy"
        target = (y == classes[1]).cast(pl.Float64).to_numpy()
    elif args.task == "multiclass":
        out, loss = keras.layers.Dense(len(classes), activation="softmax"), "sparse_categorical_crossentropy"
        target = y.replace_strict({c: i for i, c in enumerate(classes)}, return_dtype=pl.Int32).to_numpy()
    else:
        out, loss = keras.layers.Dense(1), "mse"
        target = y.cast(pl.Float64).to_numpy()
        if args.metric == "rmsle":
            target = np.log1p(target)

    model = keras.Sequential(
        [
            keras.Input((a_train.shape[1],)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            out,
        ]
    )
    model.compile(optimizer="adam", loss=loss)
    model.fit(a_train, target, epochs=20, batch_size=32, validation_split=0.2, verbose=0)
    raw = model.predict(a_test, verbose=0).astype(np.float64)

    if args.task == "binary":
        pred = np.hstack([1 - raw, raw])
    elif args.task == "multiclass":
        pred = raw
    else:
        pred = raw.reshape(-1)
        if args.metric == "rmsle":
            pred = np.expm1(pred)
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
