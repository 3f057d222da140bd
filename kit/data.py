"""polars / Arrow -> tf.data, with no per-row Python.

Columns cross from polars to TensorFlow whole: numbers through NumPy, strings through their Arrow
buffers (one bytes object and an offsets array, cut into a string tensor by `tf.strings.substr`).
Batches are gathered from those tensors by a shuffled index, so an epoch costs a few graph ops
per batch whatever the number of rows.

Two sources of batches, both with `dataset(batch_size=..., shuffle=..., seed=..., shard=...)`:
`TableSource` for a frame in memory, `ParquetSource` streaming Parquet shards larger than memory.

Example:
    >>> source = TableSource(to_tensors(fold.train), fold.y_train, map_fn=features)
    >>> ds = source.dataset(batch_size=256, shuffle=True, seed=0)   # ((numbers, codes), y)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import tensorflow as tf

from kit.derive import MISSING
from kit.errors import InputError

AUTOTUNE = tf.data.AUTOTUNE
# rows per step when a map runs once over a whole table (bounded memory for the intermediates)
ENCODE_BATCH = 65_536


def string_parts(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow string column as (its bytes as a 0-d NumPy object array, int64 offsets), nulls as ""."""
    array = pc.fill_null(array, MISSING)
    array = pc.cast(array, pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    blob = data.to_pybytes()[offsets[0] : offsets[-1]] if data is not None else b""
    return np.array(blob, dtype=object), offsets - offsets[0]


def strings_from_parts(blob, offsets):
    """The string tensor that `string_parts` described; runs in the graph."""
    offsets = tf.convert_to_tensor(offsets, tf.int64)
    return tf.strings.substr(blob, offsets[:-1], offsets[1:] - offsets[:-1])


def string_tensor(s: pl.Series) -> tf.Tensor:
    """A polars column as a tf.string tensor, nulls as "" (`MISSING`), without a Python loop."""
    blob, offsets = string_parts(s.cast(pl.String).to_arrow())
    return strings_from_parts(tf.constant(blob.item()), offsets)


def to_tensors(frame: pl.DataFrame, *, float_dtype=tf.float32) -> dict[str, tf.Tensor]:
    """Derived columns as tensors: numbers -> float32 with NaN for missing, text -> tf.string with ""."""
    out = {}
    number = pl.Float32 if float_dtype == tf.float32 else pl.Float64  # no float64 copy of a float32 column
    for column in frame.columns:
        s = frame[column]
        if s.dtype.is_numeric():
            out[column] = tf.constant(s.cast(number).fill_null(np.nan).to_numpy(), dtype=float_dtype)
        else:
            out[column] = string_tensor(s)
    return out


def raw_inputs(frame: pl.DataFrame, spec: dict[str, dict[str, str]]) -> dict[str, tf.Tensor]:
    """Raw rows (a test file as read) in the exported model's input form, from its spec.

    float/int kinds: float64 with NaN for missing (text that is not a number counts as missing);
    string kinds: what polars casts the column to ("true", "2011-01-20 00:00:00.000000"), "" for missing.
    """
    missing = [c for c in spec if c not in frame.columns]
    if missing:
        raise InputError(
            f"The test rows lack column(s) {missing} that the model was trained on. Pass the "
            f"competition's test file. Received: columns={frame.columns[:12]}"
        )
    out = {}
    for column, info in spec.items():
        s = frame[column]
        if info["kind"] in ("float", "int"):
            values = s.cast(pl.Float64, strict=False) if s.dtype != pl.String else s.str.strip_chars()
            values = values.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
            out[column] = tf.constant(values, tf.float64)
        else:
            out[column] = string_tensor(s)
    return out


def _gather(columns: dict, index):
    return {k: tf.gather(v, index) for k, v in columns.items()}


class TableSource:
    """Rows held in memory as tensors -> batches, shuffled by index each epoch.

    Args:
        columns: column name -> tensor with one row per example (see `to_tensors`).
        y: targets (class indices or floats), or None for prediction.
        map_fn: a map from a batch of columns to model inputs (e.g. `Features`); it runs in the
            pipeline on the host. With `cache=True` it runs once over the table, not every epoch.
        cache: keep the mapped table instead of mapping each epoch's batches again.
    """

    def __init__(
        self,
        columns: dict,
        y: np.ndarray | None = None,
        *,
        map_fn: Callable | None = None,
        cache: bool = True,
    ):
        self.n_rows = int(next(iter(columns.values())).shape[0])
        self.y = (
            None
            if y is None
            else tf.constant(
                np.asarray(y), dtype=tf.int32 if np.asarray(y).dtype.kind in "iub" else tf.float32
            )
        )
        if map_fn is not None and cache:
            columns, map_fn = encode(columns, map_fn), None
        self.columns, self.map_fn = columns, map_fn

    def dataset(
        self,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        shard: tuple[int, int] = (1, 0),
        repeat: bool = False,
    ) -> tf.data.Dataset:
        """Batches of (inputs, y), or inputs alone when there is no target.

        Args:
            batch_size: rows per batch (per replica under `distribute_datasets_from_function`).
            shuffle: a new order each epoch (iteration), from `seed`.
            shard: (number of input pipelines, this one's index): each worker reads its own rows.
        """
        if shuffle:
            batches = shuffled_batches(
                self.n_rows, batch_size, seed=seed, shard=shard, repeat=repeat, drop_remainder=drop_remainder
            )
        else:
            index = tf.data.Dataset.range(self.n_rows)
            if shard[0] > 1:
                index = index.shard(*shard)
            if repeat:
                index = index.repeat()
            batches = index.batch(batch_size, drop_remainder=drop_remainder)
        columns, y = self.columns, self.y

        def take(i):
            x = _gather(columns, i)
            return x if y is None else (x, tf.gather(y, i))

        ds = batches.map(take, num_parallel_calls=AUTOTUNE)
        if self.map_fn is not None:
            fn = self.map_fn
            ds = ds.map((lambda x, t: (fn(x), t)) if y is not None else fn, num_parallel_calls=AUTOTUNE)
        return ds.prefetch(AUTOTUNE)


SEED_RANGE = 4096  # see shuffled_batches


def shuffled_batches(
    n_rows: int,
    batch_size: int,
    *,
    seed: int,
    shard: tuple[int, int] = (1, 0),
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of row indices (int64) in a new seeded order at each iteration, or, with `repeat`,
    one endless stream of passes over the rows, each in a new order, batched across the passes
    (as a repeated shuffle is: the same stream of rows whatever the batch size, so two replicas'
    batches of 32 are one device's batches of 64); with `shard` (count, index), the rows index,
    index + count, ...

    One permutation tensor a pass: a shuffle buffer would hold each index as a tensor of its own,
    about 150 bytes a row (1 GB for 7M rows), and take twice as long.
    """
    count, index = shard
    rows = tf.range(index, n_rows, count, dtype=tf.int64)
    fixed = tf.constant(seed, tf.int64)

    def one_pass(draw):
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(rows, seed=tf.stack([draw, fixed]))
        )

    # a number drawn anew at each iteration (each pass, repeated), from a small reshuffled range
    draws = (
        tf.data.Dataset.range(SEED_RANGE)
        .shuffle(SEED_RANGE, seed=seed, reshuffle_each_iteration=True)
        .take(2)
        .batch(2)
        .map(lambda pair: pair[0] * SEED_RANGE + pair[1])
    )
    if repeat:
        return draws.repeat().flat_map(one_pass).batch(batch_size, drop_remainder=drop_remainder)
    # a known length, as a batched range has: Keras counts an epoch's steps by it
    n = len(range(index, n_rows, count))
    n_batches = n // batch_size if drop_remainder else -(-n // batch_size)
    batches = draws.flat_map(one_pass).batch(batch_size, drop_remainder=drop_remainder)
    return batches.apply(tf.data.experimental.assert_cardinality(n_batches))


def encode(columns: dict, map_fn: Callable) -> dict:
    """Run a map over a whole table in the tf.data pipeline (host), in large batches."""
    ds = (
        tf.data.Dataset.from_tensor_slices(columns)
        .batch(ENCODE_BATCH)
        .map(map_fn, num_parallel_calls=AUTOTUNE)
    )
    parts = list(ds.prefetch(AUTOTUNE))
    if not parts:
        return map_fn({k: v[:0] for k, v in columns.items()})
    return {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}


def encode_together(tables: list[dict], map_fn: Callable) -> list[dict]:
    """`encode` for several tables with the same columns in one pass: the map is traced once."""
    sizes = [int(next(iter(t.values())).shape[0]) for t in tables]
    joined = encode({k: tf.concat([t[k] for t in tables], axis=0) for k in tables[0]}, map_fn)
    parts = {k: tf.split(v, sizes, axis=0) for k, v in joined.items()}
    return [{k: parts[k][i] for k in parts} for i in range(len(tables))]


class ParquetSource:
    """Parquet shards streamed batch by batch, for training data larger than memory.

    Each shard is read in record batches by pyarrow on a tf.data worker thread; strings cross
    as Arrow buffers, the map runs in the pipeline, and rows are shuffled within a buffer of
    `shuffle_buffer` rows after the shard order itself is shuffled.

    Args:
        paths: Parquet files (or a folder of them) with the derived columns and the target.
        columns: the input columns to read, with their roles as in `Fold.roles`.
        target: column holding the class index or value; None for prediction.
        map_fn: as for `TableSource`.
    """

    def __init__(
        self,
        paths,
        *,
        columns: dict[str, str],
        target: str | None = None,
        map_fn: Callable | None = None,
        shuffle_buffer: int = 65_536,
        read_rows: int = 8192,
    ):
        paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        files = sorted(f for p in paths for f in (p.glob("*.parquet") if p.is_dir() else [p]))
        if not files:
            raise InputError(f"No Parquet files found in {[str(p) for p in paths]}. Received: paths={paths}")
        self.files = [str(f) for f in files]
        self.columns, self.target, self.map_fn = dict(columns), target, map_fn
        self.shuffle_buffer, self.read_rows = shuffle_buffer, read_rows
        self.n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        schema = pq.read_schema(self.files[0])
        self._y_dtype = None
        if target is not None:
            kind = schema.field(target).type
            self._y_dtype = tf.int32 if pa.types.is_integer(kind) or pa.types.is_boolean(kind) else tf.float32
        self._signature = self._make_signature()

    def _make_signature(self):
        sig = {}
        for c, role in self.columns.items():
            if role == "numeric":
                sig[c] = tf.TensorSpec([None], tf.float32)
            else:
                sig[c] = (tf.TensorSpec([], tf.string), tf.TensorSpec([None], tf.int64))
        if self.target is not None:
            sig["__target__"] = tf.TensorSpec([None], self._y_dtype)
        return sig

    def _read(self, path):
        names = list(self.columns) + ([self.target] if self.target is not None else [])
        for batch in pq.ParquetFile(path.decode()).iter_batches(batch_size=self.read_rows, columns=names):
            out = {}
            for c, role in self.columns.items():
                a = batch.column(c)
                if role == "numeric":
                    out[c] = pc.fill_null(pc.cast(a, pa.float32()), np.nan).to_numpy(zero_copy_only=False)
                else:
                    blob, offsets = string_parts(a)
                    out[c] = (blob, offsets)
            if self.target is not None:
                out["__target__"] = (
                    batch.column(self.target)
                    .to_numpy(zero_copy_only=False)
                    .astype(self._y_dtype.as_numpy_dtype)
                )
            yield out

    def dataset(
        self,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        shard: tuple[int, int] = (1, 0),
        repeat: bool = False,
    ) -> tf.data.Dataset:
        """Batches of (inputs, y), or inputs alone without a target; see `TableSource.dataset`."""
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if shard[0] > 1:
            files = files.shard(*shard)
        if shuffle:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        signature = self._signature
        rows = files.interleave(
            lambda f: tf.data.Dataset.from_generator(self._read, args=(f,), output_signature=signature),
            # training mixes a few shards at a time; without shuffling, rows keep file order
            cycle_length=min(4, len(self.files)) if shuffle else 1,
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )

        def unpack(raw):
            x = {
                c: strings_from_parts(*v) if isinstance(v, tuple) else v
                for c, v in raw.items()
                if c != "__target__"
            }
            return (x, raw["__target__"]) if "__target__" in raw else x

        rows = rows.map(unpack, num_parallel_calls=AUTOTUNE).unbatch()
        if shuffle:
            rows = rows.shuffle(self.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            rows = rows.repeat()
        ds = rows.batch(batch_size, drop_remainder=drop_remainder)
        if self.map_fn is not None:
            fn = self.map_fn
            ds = ds.map(
                (lambda x, t: (fn(x), t)) if self.target is not None else fn, num_parallel_calls=AUTOTUNE
            )
        return ds.prefetch(AUTOTUNE)
