"""Derived columns: datetime parts and delimited fields in polars (`derive`), and the same in the
graph (`derive_graph`), which must give exactly what `derive` gives."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import shared_competition, write_competition, write_frame

from kit.api import load
from kit.data import raw_inputs, to_tensors
from kit.derive import derive, derive_graph, raw_spec
from kit.errors import InputError

# -- derive: polars ---------------------------------------------------------------------------


def test_datetime_parts():
    frame = pl.DataFrame({"when": ["2024-03-15 13:45:00", "2023-12-31 00:00:00"]})
    out, roles = derive(frame, {"when": "datetime"})
    assert out["when__year"].to_list() == [2024.0, 2023.0]
    assert out["when__month"].to_list() == ["3", "12"]
    assert out["when__day"].to_list() == [15.0, 31.0]
    assert out["when__weekday"].to_list() == ["5", "7"]  # Friday, Sunday (ISO: Monday is 1)
    assert out["when__hour"].to_list() == ["13", "0"]
    assert out["when__dayofyear"].to_list() == [75.0, 365.0]
    assert out["when__elapsed_days"][0] - out["when__elapsed_days"][1] == 75.0
    assert roles["when__year"] == "numeric" and roles["when__hour"] == "categorical"
    assert "when" not in out.columns


def test_dates_without_a_time_are_parsed():
    out, _ = derive(pl.DataFrame({"d": ["2021-11-13", None]}), {"d": "datetime"})
    assert out["d__month"].to_list() == ["11", None]


def test_derive_casts_roles_and_drops_constant_and_missing():
    frame = pl.DataFrame(
        {
            "n": [1, 2],
            "b": [True, False],
            "c": ["x", "y"],
            "t": ["p", "q"],
            "k": ["s", "s"],
            "m": [None, None],
        }
    )
    roles = {"n": "numeric", "b": "boolean", "c": "categorical", "t": "text", "k": "constant", "m": "missing"}
    out, out_roles = derive(frame, roles)
    assert out_roles == {"n": "numeric", "b": "categorical", "c": "categorical", "t": "text"}
    assert out.schema == {"n": pl.Float64, "b": pl.Enum(["false", "true"]), "c": pl.String, "t": pl.String}
    with pytest.raises(InputError, match="Unknown role 'weird' for column 'n'"):
        derive(frame, {"n": "weird"})


def test_derive_adds_the_fields_of_a_split_column():
    frame = pl.DataFrame({"cabin": ["F/4/S", None, "G/x/P", "B/0"]})
    parts = {"cabin": {"sep": "/", "roles": ["categorical", "numeric", "categorical"]}}
    out, out_roles = derive(frame, {"cabin": "text"}, parts)
    assert out_roles == {
        "cabin": "text",
        "cabin__1": "categorical",
        "cabin__2": "numeric",
        "cabin__3": "categorical",
    }
    assert out["cabin__1"].to_list() == ["F", None, "G", "B"]
    assert out["cabin__2"].to_list() == [4.0, None, None, 0.0]  # not a number: missing, then imputed
    assert out["cabin__3"].to_list() == ["S", None, "P", None]
    # a constant field adds nothing
    out, out_roles = derive(
        frame, {"cabin": "text"}, {"cabin": {"sep": "/", "roles": ["constant", "numeric"]}}
    )
    assert list(out_roles) == ["cabin", "cabin__2"]


# -- derive_graph: derive in the graph, value for value ---------------------------------------


def assert_same_as_derive(
    raw: pl.DataFrame, roles: dict, train: pl.DataFrame | None = None, parts: dict | None = None
):
    spec = raw_spec(roles, raw if train is None else train, parts)
    got = {k: v.numpy() for k, v in derive_graph(raw_inputs(raw, spec), spec).items()}
    expected_frame, _ = derive(raw, roles, parts)
    expected = {k: v.numpy() for k, v in to_tensors(expected_frame).items()}
    assert sorted(got) == sorted(expected)
    for column, want in expected.items():
        if want.dtype == object:
            assert got[column].tolist() == want.tolist(), column
        else:
            np.testing.assert_array_equal(got[column], want, err_msg=column)


def test_derive_in_the_graph_matches_polars_on_edge_cases():
    raw = pl.DataFrame(
        {
            "when": [
                "2011-01-20 05:30:00",
                "1969-12-31 23:00:00",  # before the epoch: days round down
                "1900-03-01 00:00:00",
                None,
                "2024-02-29 10:00:00",
                "2000-12-31 23:59:59",
            ],
            "flag_int": [0, 1, None, 1, 0, 1],
            "flag_float": [0.0, 1.0, None, 1.0, 0.0, 1.0],
            "flag_bool": [True, False, None, True, True, False],
            "size": ["S", "M", None, "L", "M", "S"],
            "amount": [1, None, 3, 4, 5, 6],
        }
    )
    roles = {
        "when": "datetime",
        "flag_int": "boolean",
        "flag_float": "boolean",
        "flag_bool": "boolean",
        "size": "categorical",
        "amount": "numeric",
    }
    assert_same_as_derive(raw, roles)


def test_datetimes_with_a_utc_offset_or_a_time_zone_read_the_clock_as_written():
    from datetime import datetime

    written = ["2021-06-01T14:30:00+02:00", "2021-06-01T00:30:00-05:30", "2021-12-31T23:00:00Z", None]
    frame, _ = derive(pl.DataFrame({"when": written}), {"when": "datetime"})
    assert frame["when__hour"].to_list() == ["14", "0", "23", None]
    assert frame["when__day"].to_list() == [1.0, 1.0, 31.0, None]
    # a Parquet column with a time zone: its local clock, summer time or not
    zoned = pl.Series("when", [datetime(2021, 1, 1, 8), datetime(2021, 7, 1, 8), None])
    zoned = zoned.dt.replace_time_zone("Europe/Berlin")
    frame, _ = derive(pl.DataFrame({"when": zoned}), {"when": "datetime"})
    assert frame["when__hour"].to_list() == ["8", "8", None]
    for raw in (pl.DataFrame({"when": written}), pl.DataFrame({"when": zoned})):
        assert_same_as_derive(raw, {"when": "datetime"})


def test_delimited_fields_in_the_graph_match_polars():
    raw = pl.DataFrame({"cabin": ["F/4/S", "B/0/P", None, "G/12", "A/x/P", "C/7/S/extra", "D/-3.5/P"]})
    parts = {"cabin": {"sep": "/", "roles": ["categorical", "numeric", "categorical"]}}
    assert_same_as_derive(raw, {"cabin": "text"}, parts=parts)


def test_derive_in_the_graph_matches_polars_on_date_only_strings():
    raw = pl.DataFrame({"day": ["2020-01-01", "2020-06-15", None, "1999-12-31"]})
    assert_same_as_derive(raw, {"day": "datetime"})


def test_derive_in_the_graph_matches_polars_on_the_synthetic_competition(tmp_path):
    comp, _ = load(write_competition(tmp_path / "tiny"))
    assert_same_as_derive(comp.test, comp.roles, comp.train)


@pytest.mark.parametrize("name", ["bike-sharing-demand", "titanic", "spaceship-titanic"])
def test_derive_in_the_graph_matches_polars_on_real_test_files(name):
    comp, _ = load(shared_competition(name))
    assert_same_as_derive(comp.test, comp.roles, comp.train, comp.parts)


@pytest.mark.parametrize("name", ["spaceship-titanic", "tiny"])
def test_a_competition_is_held_in_compact_columns_with_the_values_as_read(tmp_path, name):
    from kit.io import read_table

    root = write_competition(tmp_path / "tiny") if name == "tiny" else shared_competition(name)
    comp, _ = load(root)
    for frame, path in ((comp.train, comp.train_path), (comp.test, comp.test_path)):
        raw = read_table(path)
        compacted = 0
        if comp.id:
            assert frame[comp.id].equals(raw[comp.id])  # as read: the submission writes them
        for column in [c for c in frame.columns if comp.roles.get(c) not in (None, "constant", "missing")]:
            s, read = frame[column], raw[column]
            if read.dtype == pl.String:  # text as an enum's codes, the same text
                assert s.dtype == pl.Enum and s.cast(pl.String).equals(read), column
                compacted += 1
            elif read.dtype == pl.Float64:  # float32, the precision the networks compute in
                assert s.dtype == pl.Float32 and s.equals(read.cast(pl.Float32)), column
                compacted += 1
        assert compacted and frame.estimated_size() < raw.estimated_size()


def test_numbers_beyond_float32s_whole_numbers_keep_their_64_bits(tmp_path):
    """float32 merges neighbours above 2**24 (16777217 reads as 16777216): a column with such
    values is held and derived in 64 bits, every distinct value kept; small ones go to float32."""
    n = 300
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({
        "id": range(n),
        "code": 2**24 + np.arange(n),  # integers
        "stamp": 1.7e9 + np.arange(n, dtype=float),  # a timestamp in seconds, as floats
        "small": rng.normal(size=n),
    })  # fmt: skip
    comp, _ = load(write_frame(tmp_path / "big", frame, (np.arange(n) % 2).astype(float), 200))
    assert comp.train["small"].dtype == pl.Float32
    out, _ = derive(comp.train, comp.roles, comp.parts)
    for column in ("code", "stamp"):
        assert comp.train[column].dtype in (pl.Int64, pl.Float64), column
        assert out[column].n_unique() == 200 and out[column].dtype == pl.Float64, column
