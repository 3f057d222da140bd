"""Submissions: built in the sample's order, checked against it, written atomically."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import shared_competition, write_competition

from kit import cli
from kit.competition import discover
from kit.errors import InputError
from kit.submission import check_submission, make_submission, validate_file, write_submission


def _proba(n: int, k: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).random((n, k)) + 0.01
    return p / p.sum(axis=1, keepdims=True)


def _comp(tmp_path, task="binary"):
    return discover(write_competition(tmp_path / task, task=task))


def _good(comp):
    if comp.task == "regression":
        return make_submission(comp, np.linspace(5, 15, comp.test.height))
    return make_submission(comp, _proba(comp.test.height, len(comp.classes)))


@pytest.fixture
def binary(tmp_path):
    return _comp(tmp_path, "binary")


@pytest.fixture
def multiclass(tmp_path):
    return _comp(tmp_path, "multiclass")


@pytest.fixture
def proba(tmp_path):
    """A binary competition whose sample file asks for the positive class's probability."""
    root = write_competition(tmp_path / "proba")
    sample = pl.read_csv(root / "sample_submission.csv").with_columns(pl.lit(0.5).alias("label"))
    sample.write_csv(root / "sample_submission.csv")
    comp = discover(root)
    assert comp.submission.kind == "proba"
    return comp


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_made_submission_passes_the_checks(tmp_path, task):
    comp = _comp(tmp_path, task)
    frame = _good(comp)
    check_submission(frame, comp)
    assert frame.columns == comp.sample.columns
    assert frame[comp.id].to_list() == comp.sample[comp.id].to_list()


def test_submission_follows_the_sample_files_order(tmp_path):
    root = write_competition(tmp_path / "c")
    sample = pl.read_csv(root / "sample_submission.csv")
    sample.reverse().write_csv(root / "sample_submission.csv")
    comp = discover(root)
    frame = _good(comp)
    assert frame["row_id"].to_list() == comp.test["row_id"].reverse().to_list()
    check_submission(frame, comp)


def test_labels_are_spelled_as_in_train(binary):
    frame = _good(binary)
    assert set(frame["label"].to_list()) <= {"yes", "no"}
    with pytest.raises(InputError, match=r"column 'label' has label 'Yes'.*train.csv.*\['no', 'yes'\]"):
        check_submission(frame.with_columns(pl.lit("Yes").alias("label")), binary)


def test_spaceship_labels_are_written_true_false(tmp_path):
    comp = discover(shared_competition("spaceship-titanic"))
    path = write_submission(make_submission(comp, _proba(comp.test.height, 2)), comp, tmp_path / "s.csv")
    values = {line.split(",")[1] for line in path.read_text().splitlines()[1:]}
    assert values == {"True", "False"}
    validate_file(path, comp)
    lower = tmp_path / "lower.csv"
    lower.write_text(path.read_text().replace("True", "yes"))
    with pytest.raises(InputError, match="label 'yes'"):
        validate_file(lower, comp)


def test_titanic_labels_are_written_as_integers(tmp_path):
    comp = discover(shared_competition("titanic"))
    path = write_submission(make_submission(comp, _proba(comp.test.height, 2)), comp, tmp_path / "s.csv")
    values = {line.split(",")[1] for line in path.read_text().splitlines()[1:]}
    assert values == {"0", "1"}
    floats = tmp_path / "floats.csv"
    floats.write_text(path.read_text().replace(",1\n", ",1.0\n").replace(",0\n", ",0.0\n"))
    with pytest.raises(InputError, match="label '(0|1).0'"):
        validate_file(floats, comp)


def test_wrong_columns_are_rejected(binary):
    frame = _good(binary)
    for bad in (
        frame.rename({"label": "target"}),
        frame.select("label", "row_id"),
        frame.with_columns(pl.lit(1).alias("extra")),
        frame.drop("label"),
    ):
        with pytest.raises(InputError, match="the sample file expects \\['row_id', 'label'\\]"):
            check_submission(bad, binary)


def test_wrong_ids_are_rejected(binary):
    frame = _good(binary)
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(999999).otherwise(pl.col("row_id")).alias("row_id")
    )
    with pytest.raises(InputError, match="row 3 has id '999999'"):
        check_submission(changed, binary)


def test_rows_in_another_order_pass_as_kaggle_matches_them_by_id(binary):
    check_submission(_good(binary).reverse(), binary)
    check_submission(_good(binary).sample(fraction=1.0, shuffle=True, seed=0), binary)


def test_missing_repeated_and_unknown_ids_are_named(binary):
    frame = _good(binary)
    last = frame["row_id"][-1]
    with pytest.raises(InputError, match=f"lacks 1 of the sample file's ids \\(such as '{last}'\\)"):
        check_submission(frame.head(-1), binary)
    repeated = pl.concat([frame.head(-1), frame.head(1)])  # the first id again, in the last one's place
    with pytest.raises(InputError, match=f"id '{frame['row_id'][0]}' in 'row_id' more than once"):
        check_submission(repeated, binary)
    with pytest.raises(InputError, match="more than once .*81 rows against the sample file's 80"):
        check_submission(pl.concat([frame, frame.head(1)]), binary)
    unknown = pl.concat(
        [frame, frame.head(1).with_columns(pl.lit(999999, dtype=frame["row_id"].dtype).alias("row_id"))]
    )
    with pytest.raises(InputError, match="row 81 has id '999999', which the sample file does not have"):
        check_submission(unknown, binary)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_nan_inf_and_missing_values_are_rejected(tmp_path, value):
    comp = _comp(tmp_path, "regression")
    frame = _good(comp)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit(value, dtype=pl.Float64))
        .otherwise(pl.col("label"))
        .alias("label")
    )
    with pytest.raises(InputError, match=r"column 'label' has (NaN or infinite values|1 missing value\(s\))"):
        check_submission(bad, comp)


def test_under_rmsle_values_are_clipped_at_0_and_a_negative_one_is_refused(tmp_path):
    comp = discover(write_competition(tmp_path / "regression", task="regression"), metric="rmsle")
    pred = np.linspace(-1e-9, 15, comp.test.height)  # a linear model's log target, just below 0
    frame = make_submission(comp, pred)
    assert frame["label"].min() == 0.0
    check_submission(frame, comp)
    with pytest.raises(InputError, match=r"values below 0 \(first at row \d+: -0.5\); rmsle scores log"):
        check_submission(frame.with_columns(pl.col("label").clip(upper_bound=3) - 0.5), comp)
    check_submission(frame.with_columns(pl.col("label") - 0.5), discover(comp.root, metric="rmse"))


def test_probability_must_lie_in_0_1(proba):
    frame = _good(proba)
    check_submission(frame, proba)
    assert frame["label"].dtype == pl.Float64
    for value in (1.2, -0.1):
        with pytest.raises(
            InputError, match=rf"probabilities outside \[0, 1\] .*Received: min={value}, max={value}"
        ):
            check_submission(frame.with_columns(pl.col("label") * 0 + value), proba)
    with pytest.raises(InputError, match="percentages: divide them by 100"):
        check_submission(frame.with_columns(pl.col("label") * 100), proba)


def test_class_probabilities_need_not_sum_to_1_as_kaggle_rescales_them(multiclass):
    frame = _good(multiclass)
    assert multiclass.submission.kind == "proba_columns"
    np.testing.assert_allclose(frame.select(pl.sum_horizontal(pl.exclude("row_id"))).to_series(), 1.0)
    check_submission(frame.with_columns(pl.col("label_high", "label_low", "label_mid").round(2)), multiclass)
    check_submission(frame.with_columns(pl.col("label_high", "label_low", "label_mid") / 2), multiclass)
    zeros = pl.when(pl.int_range(pl.len()) == 4).then(0.0)
    empty = frame.with_columns(
        zeros.otherwise(pl.col(c)).alias(c) for c in ("label_high", "label_low", "label_mid")
    )
    with pytest.raises(InputError, match="row 5 has a probability of 0 for every class"):
        check_submission(empty, multiclass)
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):
        check_submission(frame.with_columns(pl.col("label_high") + 1), multiclass)


def test_class_columns_follow_the_class_order(multiclass):
    # class 0 is "high": all its probability must land in the label_high column
    pred = np.zeros((multiclass.test.height, 3))
    pred[:, multiclass.classes.index("mid")] = 1.0
    frame = make_submission(multiclass, pred)
    assert frame["label_mid"].to_list() == [1.0] * frame.height
    assert frame["label_high"].sum() == 0 and frame["label_low"].sum() == 0


def test_a_failing_check_writes_nothing(binary, tmp_path):
    path = tmp_path / "out" / "submission.csv"
    with pytest.raises(InputError):
        write_submission(_good(binary).head(-1), binary, path)
    assert not path.exists()
    assert not path.parent.exists() or not any(path.parent.iterdir())  # no temporary file left either


def test_a_failing_check_keeps_the_previous_file(binary, tmp_path):
    path = write_submission(_good(binary), binary, tmp_path / "out" / "submission.csv")
    before = path.read_bytes()
    with pytest.raises(InputError):
        write_submission(_good(binary).head(3), binary, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]


def test_written_file_validates(binary, tmp_path):
    frame = _good(binary)
    path = write_submission(frame, binary, tmp_path / "submission.csv")
    assert validate_file(path, binary).equals(frame)


def test_kit_validate_on_a_good_and_a_bad_file(binary, tmp_path, capsys):
    good = write_submission(_good(binary), binary, tmp_path / "good.csv")
    assert cli.main(["validate", str(good), str(binary.root)]) == 0
    out = capsys.readouterr()
    assert "OK" in out.out and str(binary.test.height) in out.out and out.err == ""

    bad = tmp_path / "bad.csv"
    _good(binary).with_columns(pl.lit("maybe").alias("label")).write_csv(bad)
    assert cli.main(["validate", str(bad), str(binary.root)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    assert "bad.csv" in out.err and "'maybe'" in out.err


def test_kit_validate_checks_a_runs_submission_under_the_runs_settings(tmp_path, capsys):
    import kit
    from kit.run import cross_validate

    data = write_competition(tmp_path / "c")
    for name, label in (
        ("train.csv", (pl.col("label") == "yes").cast(pl.Int64)),
        ("sample_submission.csv", 0),
    ):
        pl.read_csv(data / name).with_columns(label=label).write_csv(data / name)
    comp, cfg = kit.load(data, metric="roc_auc", folds=2)  # probabilities, where the sample holds 0s
    run = cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=lambda _: None, progress=False)
    assert cli.main(["validate", str(run.submission_path), str(data)]) == 0
    assert "config.toml" in capsys.readouterr().out
    # the file copied out of its run folder: the same check says what the probabilities need
    copy = tmp_path / "copy.csv"
    copy.write_bytes(run.submission_path.read_bytes())
    assert cli.main(["validate", str(copy), str(data)]) == 2
    assert "--metric" in capsys.readouterr().err
    assert cli.main(["validate", str(copy), str(data), "--metric", "roc_auc"]) == 0


def test_a_runs_submission_validates_without_its_competition_folder_and_other_files_ask_for_it(
    tmp_path, monkeypatch, capsys
):
    import kit
    from kit import kaggle
    from kit.run import cross_validate

    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-kaggle-input"))
    data = write_competition(tmp_path / "c")
    comp, cfg = kit.load(data, folds=2)
    cross_validate(comp, cfg, "trees", out=tmp_path / "run", log=lambda _: None, progress=False)
    elsewhere = tmp_path / "notebook"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # the run's own competition, not the built-in demo (whose ids it lacks)
    assert kit.validate(tmp_path / "run" / "submission.csv").height == comp.test.height
    assert cli.main(["validate", str(tmp_path / "run" / "submission.csv")]) == 0
    assert "OK" in capsys.readouterr().out
    # a file of the user's in the run folder (kit predict's output) is checked the same way
    beside = tmp_path / "run" / "predicted.csv"
    beside.write_bytes((tmp_path / "run" / "submission.csv").read_bytes())
    assert kit.validate(beside).height == comp.test.height
    copy = tmp_path / "copy.csv"
    copy.write_bytes((tmp_path / "run" / "submission.csv").read_bytes())
    with pytest.raises(InputError, match="pass the competition folder"):
        kit.validate(copy)
    assert cli.main(["validate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "copy.csv" in err and "competition folder" in err and len(err.strip().splitlines()) == 1
    assert list(elsewhere.iterdir()) == []  # no data/penguins-demo written on the way


def test_kit_validate_on_a_missing_file(binary, tmp_path, capsys):
    assert cli.main(["validate", str(tmp_path / "nope.csv"), str(binary.root)]) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_no_sample_file_gives_id_and_target_columns(tmp_path):
    root = write_competition(tmp_path / "c")
    (root / "sample_submission.csv").unlink()
    comp = discover(root)
    frame = _good(comp)
    assert frame.columns == ["row_id", "label"]
    check_submission(frame, comp)
    with pytest.raises(InputError, match="rows"):
        check_submission(frame.head(5), comp)


def test_a_parquet_test_file_with_timestamp_ids_submits_the_samples_spelling(tmp_path):
    """A CSV train and sample spell the id moments as text; a Parquet test file holds them as a
    timestamp: the same ids, which the submission spells as the sample does."""
    import datetime as dt

    stamps = [dt.datetime(2011, 5, 1) + dt.timedelta(hours=h) for h in range(40)]
    text = [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]
    rng = np.random.default_rng(0)
    pl.DataFrame(
        {"datetime": text[:30], "x": rng.normal(size=30), "count": rng.gamma(2.0, 9.0, 30)}
    ).write_csv(tmp_path / "train.csv")
    pl.DataFrame({"datetime": stamps[30:], "x": rng.normal(size=10)}).write_parquet(tmp_path / "test.parquet")
    pl.DataFrame({"datetime": text[30:], "count": [0.0] * 10}).write_csv(tmp_path / "sample_submission.csv")
    comp = discover(tmp_path)
    submission = make_submission(comp, np.arange(10.0))
    assert submission["datetime"].to_list() == text[30:]
    check_submission(submission, comp)


def test_a_class_column_spelled_with_a_space_in_the_sample_names_the_space(tmp_path):
    """'label_low ' in the sample's header is the class 'low' with a stray space, not a class the
    train file lacks: the error says to remove the space."""
    data = write_competition(tmp_path / "spaced", task="multiclass")
    sample = pl.read_csv(data / "sample_submission.csv")
    sample.rename({"label_low": "label_low "}).write_csv(data / "sample_submission.csv")
    with pytest.raises(InputError, match=r"\['label_low '\] with spaces around the class.*\['low'\]"):
        discover(data)


def test_a_validated_submission_keeps_labels_written_as_numbers_as_numbers(tmp_path):
    """Titanic's 0 and 1: kit.validate returns them as the train target's integers, not as text."""
    data = write_competition(tmp_path / "numbered")
    for name in ("train.csv", "sample_submission.csv"):
        frame = pl.read_csv(data / name)
        numbers = (frame["label"] == "yes").cast(pl.Int64) if name == "train.csv" else pl.lit(0)
        frame.with_columns(label=numbers).write_csv(data / name)
    comp = discover(data)
    path = tmp_path / "submission.csv"
    comp.test.select(comp.id, pl.lit(1).alias("label")).write_csv(path)
    frame = validate_file(path, comp)
    assert frame["label"].dtype == comp.train["label"].dtype == pl.Int64
    assert frame["label"].to_list() == [1] * comp.test.height
