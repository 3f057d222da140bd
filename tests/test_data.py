"""polars/Arrow -> tf.data: strings through Arrow buffers, index-shuffled batches, Parquet shards."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import tensorflow as tf

from kit.data import (
    ParquetSource,
    TableSource,
    encode,
    encode_together,
    raw_inputs,
    string_tensor,
    to_tensors,
)
from kit.errors import InputError
from kit.features import Features

ROLES = {"x": "numeric", "word": "text"}


def table(n=103):
    return pl.DataFrame(
        {
            "x": [float(i) if i % 7 else None for i in range(n)],
            "word": [None if i % 11 == 0 else f"wörd-{i % 13}" for i in range(n)],
            "y": np.arange(n) % 3,
        }
    )


def test_strings_cross_as_arrow_buffers_with_nulls_unicode_and_slices():
    s = pl.Series(["ab", None, "ünïcode", "", "x" * 1000])
    assert string_tensor(s).numpy().tolist() == [b"ab", b"", "ünïcode".encode(), b"", b"x" * 1000]
    # a slice of a frame starts mid-buffer: its offsets do not start at 0
    assert string_tensor(s[2:4]).numpy().tolist() == ["ünïcode".encode(), b""]
    assert string_tensor(pl.Series([None, None], dtype=pl.String)).numpy().tolist() == [b"", b""]


def test_to_tensors_keeps_missing_numbers_as_nan():
    out = to_tensors(table(8))
    assert out["x"].dtype == tf.float32 and np.isnan(out["x"].numpy()[0])
    assert out["word"].dtype == tf.string and out["word"].numpy()[0] == b""


def epoch_rows(source, **kwargs):
    rows = []
    for x, y in source.dataset(batch_size=10, **kwargs):
        rows += list(zip(x["x"].numpy().tolist(), y.numpy().tolist(), strict=True))
    return rows


def test_table_source_reads_every_row_once_per_epoch_in_a_new_seeded_order():
    frame = table()
    source = TableSource(to_tensors(frame.drop("y")), frame["y"].to_numpy())
    ds = source.dataset(batch_size=10, shuffle=True, seed=3)
    first = [x["x"].numpy().tolist() for x, _ in ds]
    second = [x["x"].numpy().tolist() for x, _ in ds]
    flat = sum(first, [])
    assert len(flat) == frame.height and len(first[-1]) == 3  # 103 rows in batches of 10
    np.testing.assert_array_equal(
        np.sort(np.nan_to_num(flat, nan=-1)), np.sort(np.nan_to_num(frame["x"].to_numpy(), nan=-1))
    )
    assert first != second  # reshuffled each epoch
    again = [x["x"].numpy().tolist() for x, _ in source.dataset(batch_size=10, shuffle=True, seed=3)]
    np.testing.assert_array_equal(np.nan_to_num(sum(again, [])), np.nan_to_num(flat))  # same seed, same order
    # targets stay with their rows
    rows = epoch_rows(source, shuffle=True, seed=1)
    for x, y in rows:
        if not np.isnan(x):
            assert y == int(x) % 3


def test_table_source_shards_split_the_rows_between_workers():
    frame = table()
    source = TableSource(to_tensors(frame.drop("y")), frame["y"].to_numpy())
    a = {r[0] for r in epoch_rows(source, shard=(2, 0)) if not np.isnan(r[0])}
    b = {r[0] for r in epoch_rows(source, shard=(2, 1)) if not np.isnan(r[0])}
    assert not a & b and len(a | b) == frame["x"].drop_nulls().len()


def test_map_in_the_pipeline_gives_the_same_inputs_cached_or_not():
    frame = table()
    features = Features(ROLES).analyze(frame)
    columns, y = to_tensors(frame.drop("y")), frame["y"].to_numpy()
    cached = TableSource(columns, y, map_fn=features, cache=True)
    mapped = TableSource(columns, y, map_fn=features, cache=False)
    for (xa, ya), (xb, yb) in zip(cached.dataset(batch_size=16), mapped.dataset(batch_size=16), strict=True):
        np.testing.assert_array_equal(xa["numbers"].numpy(), xb["numbers"].numpy())
        np.testing.assert_array_equal(xa["codes"].numpy(), xb["codes"].numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert xa["numbers"].shape[1] == features.n_dense_


def test_encoding_splits_together_gives_what_encoding_each_gives():
    train, other = table(), table(40)
    features = Features(ROLES).analyze(train)
    a, b = encode_together([to_tensors(train.drop("y")), to_tensors(other.drop("y"))], features)
    for joint, alone in (
        (a, encode(to_tensors(train.drop("y")), features)),
        (b, encode(to_tensors(other.drop("y")), features)),
    ):
        assert joint.keys() == alone.keys()
        np.testing.assert_array_equal(joint["codes"].numpy(), alone["codes"].numpy())
        # float32 rounding of the smooth clip can differ in the last bit between batch shapes
        np.testing.assert_allclose(joint["numbers"].numpy(), alone["numbers"].numpy(), rtol=1e-6, atol=1e-7)


def test_parquet_shards_stream_the_same_rows_as_the_table(tmp_path):
    frame = table(250)
    for i, start in enumerate(range(0, frame.height, 80)):
        frame[start : start + 80].write_parquet(tmp_path / f"part-{i}.parquet")
    features = Features(ROLES).analyze(frame)
    stream = ParquetSource(tmp_path, columns=ROLES, target="y", map_fn=features, read_rows=32)
    assert stream.n_rows == 250 and len(stream.files) == 4
    table_source = TableSource(to_tensors(frame.drop("y")), frame["y"].to_numpy(), map_fn=features)

    def collect(ds):
        numbers, ys = zip(*[(x["numbers"].numpy(), y.numpy()) for x, y in ds], strict=True)
        return np.concatenate(numbers), np.concatenate(ys)

    got_x, got_y = collect(stream.dataset(batch_size=64))
    want_x, want_y = collect(table_source.dataset(batch_size=64))
    # unshuffled: file order, then row order (float32 rounding of the scaling may differ in the last bit)
    np.testing.assert_allclose(got_x, want_x, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got_y, want_y)
    shuffled_x, _ = collect(stream.dataset(batch_size=64, shuffle=True, seed=0))
    assert not np.array_equal(shuffled_x, want_x)
    np.testing.assert_allclose(np.sort(shuffled_x, axis=0), np.sort(want_x, axis=0), rtol=1e-6, atol=1e-7)
    # two workers read disjoint shards that together hold every row
    half = [sum(len(y) for _, y in stream.dataset(batch_size=64, shard=(2, i))) for i in (0, 1)]
    assert sum(half) == 250


def test_parquet_source_without_files_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="No Parquet files"):
        ParquetSource(tmp_path, columns=ROLES)


def test_raw_inputs_follow_the_export_spec():
    spec = {"age": {"role": "numeric", "kind": "float"}, "sex": {"role": "boolean", "kind": "string"}}
    raw = pl.DataFrame({"age": ["3", "n/a", None], "sex": [True, None, False]})
    out = raw_inputs(raw, spec)
    assert out["age"].dtype == tf.float64
    np.testing.assert_array_equal(
        out["age"].numpy(), [3.0, np.nan, np.nan]
    )  # text that is no number: missing
    assert out["sex"].numpy().tolist() == [b"true", b"", b"false"]
    with pytest.raises(InputError, match="lack column"):
        raw_inputs(raw.drop("sex"), spec)


def test_shuffled_batches_cover_each_shards_rows_once_a_pass_in_a_new_order_each_pass():
    from kit.data import shuffled_batches

    passes = {}
    for index in (0, 1):
        ds = shuffled_batches(103, 10, seed=5, shard=(2, index), repeat=True)
        flat = np.concatenate([b.numpy() for b in ds.take(12)])  # 52 or 51 rows a pass
        n = len(range(index, 103, 2))
        first, second = flat[:n], flat[n : 2 * n]
        assert sorted(first) == sorted(second) == list(range(index, 103, 2))
        assert list(first) != list(second)
        passes[index] = first
    again = np.concatenate([b.numpy() for b in shuffled_batches(103, 10, seed=5, shard=(2, 0)).take(6)])
    np.testing.assert_array_equal(again, passes[0])  # the same seed, the same order
