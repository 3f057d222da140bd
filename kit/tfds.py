"""tensorflow-datasets as a competition source: `kit baseline tfds:titanic`.

A supervised structured dataset from TFDS is laid out as a Kaggle competition folder, so
everything downstream (discovery, folds, submission checks) runs unchanged:

- `train.csv`: the TFDS train (and validation) split, with an `id` column and the target;
- `test.csv`: the TFDS test split without the target, or, when TFDS has no test split, a seeded
  holdout of the train split (the same rows for every run, whatever the run's seed);
- `sample_submission.csv`: id + the most frequent class (or the mean) as a placeholder;
- `tfds.json`: where it came from, how the test rows were chosen, and what was made missing.

TFDS builders write sentinels where the source had no value (its titanic writes -1 for an unknown
age or fare and "Unknown" for an unknown cabin or port); those become missing values again, so the
prep imputes them with indicators instead of learning -1 as an age.

    >>> folder = materialize("tfds:titanic")        # downloads once into the TFDS data dir
    >>> kit.baseline(folder) ; kit.baseline("tfds:titanic")   # the same
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from kit import kaggle
from kit.errors import InputError
from kit.io import publish_dir, stage_dir, write_atomic
from kit.split import make_folds

PREFIX = "tfds:"
# what TFDS builders write for a missing string or class (titanic: convert_to_string, _EMBARKED_DICT)
MISSING_STRINGS = ("Unknown", "unknown", "?", "")
# what they write for a missing number (titanic: convert_to_float, convert_to_int)
MISSING_NUMBER = -1
TEST_SPLITS = ("test",)
TRAIN_SPLITS = ("train", "validation")
LAYOUT_FILES = ("train.csv", "test.csv", "sample_submission.csv", "tfds.json")


def is_source(data) -> bool:
    return isinstance(data, str) and data.startswith(PREFIX)


def materialize(
    spec: str,
    *,
    dest: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    download: bool = True,
    missing_strings: tuple[str, ...] = MISSING_STRINGS,
    missing_number: float | None = MISSING_NUMBER,
) -> Path:
    """Lay out a TFDS dataset as a competition folder; return the folder.

    Args:
        spec: "tfds:NAME", optionally with TFDS's config and version: "tfds:NAME/CONFIG:1.0.0".
        dest: the folder to write (default `data/tfds-NAME`, under /kaggle/working on Kaggle). An
            existing layout built with the same settings is reused.
        data_dir: TFDS data directory (default: $TFDS_DATA_DIR, else TFDS's own default; on Kaggle
            `/kaggle/working/tensorflow_datasets`).
        test_size: share of the train split held out as test when TFDS has no test split.
        seed: seed of that holdout.
        download: let TFDS download and prepare the dataset if the data dir lacks it.
        missing_strings: string (and class-name) values that mean missing.
        missing_number: the number that means missing in a column whose other values are all
            non-negative and not binary; None keeps numbers as they are.
    """
    name = spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec
    if not name:
        raise InputError(f"Name the TFDS dataset after 'tfds:', e.g. tfds:titanic. Received: data={spec!r}")
    dest = Path(dest) if dest is not None else kaggle.data_root() / ("tfds-" + _slug(name))
    settings = {
        "source": PREFIX + name,
        "test_size": test_size,
        "seed": seed,
        "missing_strings": list(missing_strings),
        "missing_number": missing_number,
    }
    if _is_built(dest, settings):
        return dest

    builder = _builder(name, spec, data_dir=data_dir, download=download)
    inputs, target = _supervised_columns(builder, spec)
    splits = set(builder.info.splits) or {"train"}  # unknown when the data dir has no metadata
    train_splits = [s for s in TRAIN_SPLITS if s in splits]
    test_split = next((s for s in TEST_SPLITS if s in splits), None)
    if not train_splits:
        raise InputError(
            f"TFDS dataset '{name}' has no train split to learn from; it has {sorted(splits)}. "
            f"Received: data={spec!r}"
        )
    frames = [_read_split(builder, s, inputs, target) for s in train_splits]
    if test_split is not None:
        frames.append(_read_split(builder, test_split, inputs, target))
    n_train = sum(f.height for f in frames[: len(train_splits)])
    frame = pl.concat(frames, how="vertical")
    features = [c for c in frame.columns if c != target]
    frame, missing = _restore_missing(frame, features, missing_strings, missing_number)
    # ids in TFDS's row order (train splits first), so a row can be traced back to its source
    id_name = next(n for n in ("id", "row_id", "kit_id") if n not in frame.columns)
    frame = frame.with_row_index(id_name, offset=1).with_columns(pl.col(id_name).cast(pl.Int64))
    is_test = np.arange(frame.height) >= n_train
    if test_split is not None:
        test_from = f"the TFDS '{test_split}' split"
    else:
        ((_, held),) = make_folds(n_train, strategy="holdout", seed=seed, holdout_size=test_size)
        is_test[held] = True
        test_from = f"a {test_size:.0%} holdout of the train split (seed {seed}); TFDS has no test split"
    train = frame.filter(pl.Series(~is_test))
    test = frame.filter(pl.Series(is_test)).drop(target)

    y = train[target]
    if y.dtype.is_float():
        placeholder = pl.lit(float(y.mean()))
    else:
        placeholder = pl.lit(y.mode().sort()[0], dtype=y.dtype)
    sample = test.select(id_name, placeholder.alias(target))

    info = {
        **settings,
        "version": str(builder.info.version),
        "target": target,
        "id": id_name,
        "train": f"{', '.join(train_splits)} ({train.height} rows)",
        "test": f"{test_from} ({test.height} rows)",
        "missing": missing,
    }
    # built in a hidden sibling and put in place whole, so a half-written layout is never picked up
    if dest.exists() and any(dest.iterdir()) and not (dest / "tfds.json").is_file():
        raise InputError(
            f"'{dest}' holds files kit did not write; kit does not replace it. Move them or pass "
            f"another folder. Received: dest={dest}"
        )
    staging = stage_dir(dest)
    try:
        write_atomic(staging / "train.csv", train)
        write_atomic(staging / "test.csv", test)
        write_atomic(staging / "sample_submission.csv", sample)
        write_atomic(staging / "tfds.json", info)
        publish_dir(staging, dest, may_replace=lambda d: (d / "tfds.json").is_file())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def notes(folder: str | os.PathLike) -> list[str]:
    """What `kit inspect` should say about a TFDS layout: source, test rows, restored missing values."""
    path = Path(folder) / "tfds.json"
    if not path.is_file():
        return []
    info = json.loads(path.read_text())
    lines = [f"built from {info['source']} (version {info['version']}); test rows: {info['test']}"]
    if info["missing"]:
        counts = ", ".join(f"{c} {n}" for c, n in info["missing"].items())
        lines.append(f"TFDS sentinels for missing values made missing again: {counts}")
    return lines


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "-" for c in name)


def _is_built(dest: Path, settings: dict) -> bool:
    if not all((dest / f).is_file() for f in LAYOUT_FILES):
        return False
    info = json.loads((dest / "tfds.json").read_text())
    return all(info.get(k) == v for k, v in settings.items())


def _data_dir(data_dir) -> str | None:
    if data_dir is not None:
        return str(data_dir)
    if os.environ.get("TFDS_DATA_DIR"):
        return os.environ["TFDS_DATA_DIR"]
    # TFDS's default (~/tensorflow_datasets) is outside the only folder a Kaggle notebook keeps
    return str(kaggle.working_root() / "tensorflow_datasets") if kaggle.on_kaggle() else None


@contextlib.contextmanager
def _temp_folder_of_our_own():
    """TFDS leaves an empty `tmp…tfds` folder in the system's temp dir each time it makes a builder
    whose data dir holds no metadata yet (DatasetInfo.initialize_from_bucket); make them in a folder
    kit removes."""
    with tempfile.TemporaryDirectory(prefix="kit-tfds-") as folder:
        before, tempfile.tempdir = tempfile.tempdir, folder
        try:
            yield
        finally:
            tempfile.tempdir = before


# TFDS retries a download 10 times with a growing wait (about 3.5 minutes) before it fails: a
# notebook with the internet off (a Kaggle code competition) would wait that long to be told
DOWNLOAD_RETRIES = 3


@contextlib.contextmanager
def _few_retries():
    from tensorflow_datasets.core.download import downloader

    before = getattr(downloader, "MAX_RETRIES", None)
    if before is None:  # another TFDS version: its own retries
        yield
        return
    downloader.MAX_RETRIES = min(before, DOWNLOAD_RETRIES)
    # a warning line per retry; the failure is said once, in kit's error
    urllib3 = logging.getLogger("urllib3")
    level, urllib3.level = urllib3.level, logging.ERROR
    try:
        yield
    finally:
        downloader.MAX_RETRIES = before
        urllib3.setLevel(level)


def _builder(name: str, spec: str, *, data_dir, download: bool):
    import tensorflow_datasets as tfds

    data_dir = _data_dir(data_dir)
    try:
        with _temp_folder_of_our_own():
            builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise InputError(
            f"TFDS has no dataset named '{name}'. See https://www.tensorflow.org/datasets/catalog "
            f"for names (structured ones: titanic, penguins, wine_quality, ...). Received: data={spec!r}"
        ) from None
    except (ValueError, AssertionError) as err:  # a config or version it lacks, a name it cannot parse
        said = " ".join(str(err).split())
        raise InputError(
            f"TFDS cannot load '{name}': {said[:300]}{'...' if len(said) > 300 else ''}. Write it "
            f"tfds:NAME, tfds:NAME/CONFIG or tfds:NAME:VERSION. Received: data={spec!r}"
        ) from None
    _supervised_columns(builder, spec)  # an image dataset is refused before it downloads
    if download:
        left = _LeftBehind(Path(builder.data_dir_root), builder.name)
        try:
            with _few_retries():
                builder.download_and_prepare()
        except Exception as err:  # network, disk, a source that moved: TFDS raises many kinds
            left.remove()  # the attempt's partial downloads and empty folders
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputError(
                f"TFDS could not download and prepare '{name}' in {builder.data_dir}: {first}. "
                f"Connect to the internet once, or point TFDS_DATA_DIR at a data dir that holds it "
                f"(on Kaggle, attach that data dir as a dataset and set TFDS_DATA_DIR to its folder "
                f"under /kaggle/input). Received: data={spec!r}"
            ) from err
    return builder


class _LeftBehind:
    """What a failed download adds to a TFDS data dir (the downloads' temporary folders, the
    dataset's empty folder), noted before it starts so that only the attempt's own is removed."""

    def __init__(self, root: Path, name: str):
        # deepest first: a folder the attempt made is removed whole
        watched = [
            root / "downloads" / name,
            root / "downloads" / "extracted",
            root / "downloads",
            root / name,
            root,
        ]
        self.before = {w: set(w.iterdir()) if w.is_dir() else None for w in watched}

    def remove(self) -> None:
        for folder, had in self.before.items():
            if not folder.is_dir():
                continue
            if had is None:  # made by the attempt
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for entry in set(folder.iterdir()) - had:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                elif ".tmp." in entry.name or entry.name.endswith(".incomplete"):
                    entry.unlink(missing_ok=True)


def _leaves(feature, prefix: str):
    """(column name, feature) for every leaf of a (nested) FeaturesDict."""
    import tensorflow_datasets as tfds

    if isinstance(feature, tfds.features.FeaturesDict):
        for key, sub in feature.items():
            yield from _leaves(sub, f"{prefix}/{key}" if prefix else key)
    else:
        yield prefix, feature


def _supervised_columns(builder, spec: str) -> tuple[dict, str]:
    """Input columns ({column: (path, feature)}) and the target, from the builder's supervised keys."""
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    if not keys or not isinstance(keys[1], str):
        raise InputError(
            f"TFDS dataset '{builder.name}' has no (features, target) supervised keys, so kit cannot "
            f"tell what to predict. Use a supervised structured dataset such as tfds:titanic. "
            f"Received: data={spec!r}, supervised_keys={keys!r}"
        )
    names = keys[0]
    names = (
        list(names.values())
        if isinstance(names, dict)
        else [names]
        if isinstance(names, str)
        else list(names)
    )
    features = builder.info.features
    leaves = {}
    for name in names:
        for path, feature in _leaves(features[name], name):
            column = path.split("/")[-1]
            leaves[path if column in leaves else column] = (path, feature)
    target = keys[1]
    for path, feature in [*leaves.values(), (target, features[target])]:
        rank = len(feature.shape) if isinstance(feature, tfds.features.Tensor) else None
        if rank is None or rank > 1 or (rank == 1 and feature.shape[0] is None):
            raise InputError(
                f"TFDS dataset '{builder.name}' is not structured: feature '{path}' is a "
                f"{type(feature).__name__} of shape {getattr(feature, 'shape', '?')}, not a number, "
                f"a string or a class. Use a tabular dataset such as tfds:titanic. Received: data={spec!r}"
            )
    return leaves, target


def _read_split(builder, split: str, inputs: dict, target: str) -> pl.DataFrame:
    """One split as a polars frame: class labels as their names, bytes as text, vectors as columns."""
    import tensorflow_datasets as tfds

    batches = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=4096, shuffle_files=False)))
    columns: dict[str, pl.Series] = {}
    features = builder.info.features
    for column, (path, feature) in [*inputs.items(), (target, (target, features[target]))]:
        parts = []
        for batch in batches:
            value = batch
            for key in path.split("/"):
                value = value[key]
            parts.append(np.asarray(value))
        values = np.concatenate(parts) if parts else np.array([])
        if values.ndim == 2:
            for j in range(values.shape[1]):
                columns[f"{column}_{j}"] = _series(f"{column}_{j}", values[:, j], feature)
        else:
            columns[column] = _series(column, values, feature)
    return pl.DataFrame(list(columns.values()))


def _series(name: str, values: np.ndarray, feature) -> pl.Series:
    import tensorflow_datasets as tfds

    if isinstance(feature, tfds.features.ClassLabel):
        return pl.Series(name, [feature.int2str(int(v)) for v in values], dtype=pl.String)
    if values.dtype.kind in "SO":
        return pl.Series(name, [v.decode("utf-8", "replace") for v in values], dtype=pl.String)
    if values.dtype.kind == "b":
        return pl.Series(name, values, dtype=pl.Boolean)
    if values.dtype.kind == "f":
        return pl.Series(name, values.astype(np.float64))
    return pl.Series(name, values.astype(np.int64))


def _restore_missing(
    frame: pl.DataFrame, features: list[str], missing_strings, missing_number
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Turn TFDS's sentinels back into nulls in the feature columns; count them per column.

    A number is a sentinel only where it cannot be a real value: the column's other values are all
    non-negative (ages, fares, counts) and take more than two values, so a -1/1 or -1/0/1 coding stays.
    """
    counts, replaced = {}, []
    for column in features:
        s = frame[column]
        if s.dtype == pl.String and missing_strings:
            hit = s.is_in(list(missing_strings))
        elif s.dtype.is_numeric() and missing_number is not None:
            hit = s == missing_number
            rest = s.filter(~hit)
            if not hit.any() or rest.len() == 0 or rest.min() < 0 or rest.n_unique() <= 2:
                continue
        else:
            continue
        n = int(hit.sum())
        if n:
            counts[column] = n
            replaced.append(pl.when(hit).then(None).otherwise(pl.col(column)).alias(column))
    return (frame.with_columns(replaced) if replaced else frame), counts
