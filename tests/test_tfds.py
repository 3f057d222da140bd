"""tensorflow-datasets as a source: `tfds:NAME` laid out as a competition, offline.

TFDS's titanic builder is run under `tfds.testing.mock_data` with rows shaped like its real ones
(sentinels included); a tiny builder defined here is prepared into a local TFDS data dir. Nothing
is downloaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import kit
from kit import tfds as kit_tfds
from kit.cli import main
from kit.errors import InputError

N_TITANIC = 150


def titanic_rows(n: int = N_TITANIC):
    """Rows as TFDS's titanic builder yields them: classes as indices, "?" written as -1 or "Unknown"."""
    rng = np.random.default_rng(0)
    for i in range(n):
        sex = i % 2
        yield {
            "pclass": i % 3,
            "survived": int(sex == 1 or rng.random() < 0.2),
            "name": f"Passenger {i}",
            "sex": sex,
            # every 10th age unknown, every 25th fare
            "age": -1.0 if i % 10 == 0 else float(1 + i % 70),
            "sibsp": i % 4,
            "parch": i % 3,
            "ticket": f"T{i % 40}",
            "fare": -1.0 if i % 25 == 0 else float(5 + (i * 7) % 200),
            "cabin": "Unknown" if i % 3 else f"C{i % 30}",
            "embarked": 3 if i % 50 == 7 else i % 3,  # 3 is the "Unknown" port
            "boat": "Unknown" if i % 4 else str(i % 16),
            "body": -1 if i % 9 else 100 + i,
            "home.dest": "Unknown" if i % 5 == 0 else f"Town {i % 12}",
        }


def mock_titanic(builder, split, **kwargs):
    rows = list(titanic_rows())
    return tf.data.Dataset.from_generator(
        lambda: iter(rows),
        output_types=builder.info.features.dtype,
        output_shapes=builder.info.features.shape,
    )


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A private TFDS data dir and current folder, so nothing lands in the home folder or the repo."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fast_config(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text("folds = 2\n[baseline]\nepochs = 3\npatience = 2\n")
    return path


def test_titanic_sentinels_become_missing(offline):
    with tfds.testing.mock_data(as_dataset_fn=mock_titanic):
        folder = kit_tfds.materialize("tfds:titanic")
    assert folder == kit.kaggle.data_root() / "tfds-titanic"
    train = pl.read_csv(folder / "train.csv")
    test = pl.read_csv(folder / "test.csv")
    rows = pl.concat([train.drop("survived"), test], how="vertical").sort("id")
    raw = list(titanic_rows())
    assert rows.height == len(raw)
    # ids follow TFDS's row order, so each row can be checked against what TFDS wrote
    for column, sentinel in [("age", -1.0), ("fare", -1.0), ("body", -1)]:
        written = [r[column] for r in raw]
        assert rows[column].is_null().to_list() == [v == sentinel for v in written], column
    for column in ("cabin", "boat", "home.dest"):
        assert rows[column].is_null().to_list() == [r[column] == "Unknown" for r in raw], column
    assert rows["embarked"].is_null().to_list() == [r["embarked"] == 3 for r in raw]
    assert set(rows["embarked"].drop_nulls()) == {"Cherbourg", "Queenstown", "Southampton"}
    # real values stay: no sentinel in these counts, and classes are spelled by name
    assert rows["sibsp"].null_count() == 0 and rows["sibsp"].min() == 0
    assert set(rows["pclass"]) == {"1st_class", "2nd_class", "3rd_class"}
    assert set(train["survived"]) == {"died", "survived"}

    info = json.loads((folder / "tfds.json").read_text())
    assert info["missing"]["age"] == sum(r["age"] == -1.0 for r in raw)


def test_nothing_is_left_in_the_system_temp_folder(offline, monkeypatch):
    temp = offline / "system-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with tfds.testing.mock_data(as_dataset_fn=mock_titanic):
        kit_tfds.materialize("tfds:titanic", dest=offline / "out")
    assert list(temp.iterdir()) == []


def test_holdout_is_seeded_disjoint_and_kept_across_runs(offline):
    with tfds.testing.mock_data(as_dataset_fn=mock_titanic):
        a = kit_tfds.materialize("tfds:titanic", dest=offline / "a", seed=0)
        b = kit_tfds.materialize("tfds:titanic", dest=offline / "b", seed=0)
        c = kit_tfds.materialize("tfds:titanic", dest=offline / "c", seed=1)
    ids = {k: pl.read_csv(p / "test.csv")["id"].to_list() for k, p in zip("abc", (a, b, c), strict=True)}
    train_ids = pl.read_csv(a / "train.csv")["id"].to_list()
    assert ids["a"] == ids["b"] and ids["a"] != ids["c"]
    assert len(ids["a"]) == round(N_TITANIC * 0.2)
    assert not set(ids["a"]) & set(train_ids)
    assert sorted(ids["a"] + train_ids) == list(range(1, N_TITANIC + 1))
    sample = pl.read_csv(a / "sample_submission.csv")
    assert sample.columns == ["id", "survived"] and sample["id"].to_list() == ids["a"]


def test_api_takes_tfds_names(offline):
    with tfds.testing.mock_data(as_dataset_fn=mock_titanic):
        comp = kit.inspect("tfds:titanic")
    assert comp.name == "tfds-titanic" and comp.root.resolve() == offline / "data" / "tfds-titanic"
    assert (comp.id, comp.target, comp.task, comp.metric) == ("id", "survived", "binary", "accuracy")
    assert comp.classes == ["died", "survived"]
    assert comp.test.height == round(N_TITANIC * 0.2)
    assert any("holdout" in n for n in comp.notes) and any("age" in n for n in comp.notes)
    # the prep sees real missing values, not -1 ages
    assert comp.train["age"].null_count() > 0 and comp.train["age"].min() >= 1


class KitTinyTabular(tfds.core.GeneratorBasedBuilder):
    """A structured dataset with train, validation and test splits, prepared from memory."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "x": np.float32,
                    "count": np.int32,
                    "color": tfds.features.ClassLabel(names=["red", "green", "blue"]),
                    "note": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["no", "yes"]),
                }
            ),
            supervised_keys=({"x": "x", "count": "count", "color": "color", "note": "note"}, "label"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(0, 100),
            "validation": self._generate_examples(100, 120),
            "test": self._generate_examples(120, 160),
        }

    def _generate_examples(self, start, stop):
        rng = np.random.default_rng(start)
        for i in range(start, stop):
            x = float(rng.normal())
            yield (
                i,
                {
                    "x": x,
                    "count": -1 if i % 7 == 0 else i % 11,
                    "color": i % 3,
                    "note": "?" if i % 5 == 0 else f"n{i % 4}",
                    "label": int(x + (i % 3 == 0) > 0.3),
                },
            )


def test_cli_baseline_on_a_local_tfds_data_dir(offline, fast_config, capsys):
    KitTinyTabular(data_dir=offline / "tensorflow_datasets").download_and_prepare()
    code = main(["baseline", "tfds:kit_tiny_tabular", "--config", str(fast_config), "--out", "run"])
    assert code == 0, capsys.readouterr().err
    folder = offline / "data" / "tfds-kit_tiny_tabular"
    info = json.loads((folder / "tfds.json").read_text())
    assert info["test"].startswith("the TFDS 'test' split")
    assert info["train"].startswith("train, validation (120 rows)")
    assert info["missing"] == {"count": sum(i % 7 == 0 for i in range(160)), "note": 32}
    test = pl.read_csv(folder / "test.csv")
    submission = pl.read_csv(offline / "run" / "submission.csv")
    assert submission["id"].to_list() == test["id"].to_list() == list(range(121, 161))
    assert set(submission["label"]) <= {"no", "yes"}


def test_bad_tfds_names_are_input_errors(offline, capsys):
    with pytest.raises(InputError, match="Name the TFDS dataset"):
        kit_tfds.materialize("tfds:")
    assert main(["inspect", "tfds:no_such_dataset_anywhere"]) == 2
    err = capsys.readouterr().err
    assert "no dataset named 'no_such_dataset_anywhere'" in err and err.count("\n") == 1
    # a config, a version or a spelling TFDS rejects: bad input too, not an internal error
    for spec in ("tfds:titanic/extra", "tfds:titanic:9.9.9", "tfds:titanic/"):
        assert main(["inspect", spec]) == 2, spec
        err = capsys.readouterr().err
        assert "TFDS cannot load" in err and "tfds:NAME/CONFIG" in err and err.count("\n") == 1, err


def test_image_datasets_are_refused_before_anything_downloads(offline, monkeypatch):
    def download(self, *args, **kwargs):
        raise AssertionError("mnist began to download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)
    with pytest.raises(InputError, match="not structured: feature 'image'"):
        kit_tfds.materialize("tfds:mnist")


def test_a_download_without_internet_fails_after_a_few_quiet_retries(offline, monkeypatch):
    from tensorflow_datasets.core.download import downloader

    seen = {}

    def download(self, *args, **kwargs):
        seen["retries"] = downloader.MAX_RETRIES
        # what a download cut off leaves: a temporary folder among the downloads, the dataset's folder
        (Path(self.data_dir_root) / "downloads" / "penguins" / "x.tmp.0123").mkdir(parents=True)
        Path(self.data_dir).mkdir(parents=True)
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    data_dir = offline / "tensorflow_datasets"
    (data_dir / "downloads" / "theirs").mkdir(parents=True)  # the data dir's own, kept
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)
    with pytest.raises(InputError, match="could not download and prepare 'penguins'.*Failed to resolve"):
        kit_tfds.materialize("tfds:penguins")
    assert sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")) == [
        "downloads",
        "downloads/theirs",
    ]
    # TFDS's 10 retries wait about 3.5 minutes with the internet off; kit's 3 about a second
    assert seen["retries"] == kit_tfds.DOWNLOAD_RETRIES < 10 == downloader.MAX_RETRIES
