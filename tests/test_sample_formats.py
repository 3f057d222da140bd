"""What a competition folder's files tell where they say something odd: a sample file whose
labels, columns or name disagree with train's target, and a header that repeats a name."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

from kit.competition import discover
from kit.errors import InputError


def _with_sample(root, **columns):
    """The competition's sample file with these prediction columns (name -> value) after the id."""
    sample = pl.read_csv(root / "sample_submission.csv").select("row_id")
    sample.with_columns(pl.lit(v).alias(k) for k, v in columns.items()).write_csv(
        root / "sample_submission.csv"
    )
    return root


def _integers(root, k: int, *, columns) -> None:
    """Train's target as k integer values; the sample: a probability column per value."""
    train = pl.read_csv(root / "train.csv")
    y = np.arange(train.height) % k
    train.with_columns(pl.Series("label", y)).write_csv(root / "train.csv")
    _with_sample(root, **{columns.format(c): 1 / k for c in range(k)})


def test_labels_spelled_otherwise_by_the_sample_are_refused_under_a_label_metric(tmp_path):
    # train says yes/no, the sample 0: which of them is 1 kit cannot know where labels are scored
    root = _with_sample(write_competition(tmp_path / "yn"), label=0)
    with pytest.raises(InputError, match=r"shows 0 in 'label', none of the labels .*\(no, yes\).*accuracy"):
        discover(root, metric="accuracy")
    # where probabilities are scored, the 0s are a probability's placeholder, as before
    comp = discover(root)
    assert (comp.submission.kind, comp.metric) == ("proba", "roc_auc")


@pytest.mark.parametrize("columns", ["{}", "label_{}"])
def test_a_probability_column_per_integer_value_makes_them_classes_however_many(tmp_path, columns):
    root = write_competition(tmp_path / "k11")
    _integers(root, 11, columns=columns)
    comp = discover(root)
    assert comp.task == "multiclass" and comp.classes == list(range(11))
    assert comp.submission.kind == "proba_columns" and comp.metric == "log_loss"
    assert any(
        "11 integer values, and the sample file a probability column for each" in n for n in comp.notes
    )
    with pytest.raises(
        InputError, match=r"rmse scores a regression. Pass a --metric of classes \(log_loss\)"
    ):
        discover(root, metric="rmse")


@pytest.mark.parametrize("target", [None, "label"])
def test_several_targets_are_refused_with_a_fix_that_works(tmp_path, target):
    root = write_competition(tmp_path / "two")
    train = pl.read_csv(root / "train.csv")
    train.with_columns(pl.col("x2").alias("second")).drop("x2").write_csv(root / "train.csv")
    pl.read_csv(root / "test.csv").drop("x2").write_csv(root / "test.csv")
    _with_sample(root, label="no", second=0)
    with pytest.raises(InputError, match=r"several targets \(label, second\).*copy the competition folder"):
        discover(root, target=target)
    # the fix it names: the sample file of a copy keeps the id and one target
    _with_sample(root, label="no")
    assert discover(root, target=target).target == "label"


def test_ratings_written_as_words_are_refused_under_qwk(tmp_path):
    root = write_competition(tmp_path / "words", task="multiclass")  # low, mid, high
    _with_sample(root, label="low")
    with pytest.raises(InputError, match=r"qwk scores ratings in their order, but 'label' .* holds text"):
        discover(root, metric="qwk")
    train = pl.read_csv(root / "train.csv")
    ranks = train["label"].replace_strict({"low": 0, "mid": 1, "high": 2}, return_dtype=pl.Int64)
    train.with_columns(ranks.alias("label")).write_csv(root / "train.csv")
    _with_sample(root, label=0)
    assert discover(root, metric="qwk").classes == [0, 1, 2]


def test_a_second_sample_like_file_is_named_in_a_note(tmp_path):
    root = write_competition(tmp_path / "two-samples")
    (root / "gender_submission.csv").write_bytes((root / "sample_submission.csv").read_bytes())
    comp = discover(root)
    assert comp.sample_path.name == "sample_submission.csv"
    assert any("not 'gender_submission.csv'" in n for n in comp.notes), comp.notes


def test_a_header_that_repeats_a_name_is_named_in_a_note(tmp_path):
    root = write_competition(tmp_path / "repeated")
    for name in ("train.csv", "test.csv"):
        lines = (root / name).read_text().splitlines()
        header = lines[0].replace("x2", "x1")  # two columns named x1
        (root / name).write_text("\n".join([header, *lines[1:]]) + "\n")
    comp = discover(root)
    assert "x1_duplicated_0" in comp.train.columns
    assert any(
        "'train.csv' names more than one column alike: read as x1_duplicated_0" in n for n in comp.notes
    )


def test_log_loss_of_a_class_a_fold_trained_without_is_scored_as_recomputed_from_oof(tmp_path):
    """A class of one row: the fold that validates it trains without it and most models give it 0.
    The CV, the OOF kept and the submission agree (scikit-learn recomputes the CV from oof.parquet)."""
    import json

    from sklearn.metrics import log_loss

    from kit import cli

    root = write_competition(tmp_path / "rare", task="multiclass")
    train = pl.read_csv(root / "train.csv")
    train.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("rare")).otherwise("label").alias("label")
    ).write_csv(root / "train.csv")
    sample = pl.read_csv(root / "sample_submission.csv")
    sample.with_columns(pl.lit(0.25).alias("label_rare")).write_csv(root / "sample_submission.csv")
    out = tmp_path / "run"
    assert cli.main(["trees", str(root), "--metric", "log_loss", "--folds", "3", "--out", str(out)]) == 0
    oof = pl.read_parquet(out / "oof.parquet")
    classes = ["high", "low", "mid", "rare"]
    p = oof.select(f"proba_{c}" for c in classes).to_numpy()
    assert p.min() > 0
    score = json.loads((out / "metrics.json").read_text())["score"]
    assert score == pytest.approx(log_loss(oof["label"].to_numpy(), p, labels=classes), rel=1e-6)
    submitted = pl.read_csv(out / "submission.csv").drop("row_id").to_numpy()
    assert submitted.min() > 0 and np.allclose(submitted.sum(axis=1), 1)


@pytest.mark.parametrize("start", [0, 1])
def test_a_test_file_without_ids_whose_sample_numbers_the_rows_says_what_to_add(tmp_path, start):
    """Digit Recognizer's layout: no id in train or test, the sample's ImageId counts the test rows."""
    root = write_competition(tmp_path / "digits")
    for name in ("train.csv", "test.csv"):
        pl.read_csv(root / name).drop("row_id").write_csv(root / name)
    n = pl.read_csv(root / "test.csv").height
    pl.DataFrame({"ImageId": range(start, start + n), "label": ["no"] * n}).write_csv(
        root / "sample_submission.csv"
    )
    with pytest.raises(
        InputError, match=rf"'test.csv' has no id column: .*'ImageId' {start} to {start + n - 1}"
    ):
        discover(root)


def test_classes_written_as_numbers_with_a_stray_word_are_refused(tmp_path):
    """A 0/1 target with "unknown" in one row would train three classes and predict a label the
    sample never shows: refused before training, naming the word and the --na that drops it."""
    root = write_competition(tmp_path / "stray")
    train = pl.read_csv(root / "train.csv")
    y = [str(i % 2) for i in range(train.height)]
    y[7] = "unknown"
    train.with_columns(pl.Series("label", y)).write_csv(root / "train.csv")
    with pytest.raises(InputError, match=r"'label' in 'train.csv' is numbers except 1 value.*--na 'unknown'"):
        discover(root)
    assert discover(root, na=["unknown"]).classes == [0, 1]
    # a word that is a class of its own (a fifth of the rows) stays one
    y[: train.height // 5] = ["other"] * (train.height // 5)
    train.with_columns(pl.Series("label", y)).write_csv(root / "train.csv")
    assert discover(root).task == "multiclass"
