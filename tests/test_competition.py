"""Competition discovery: files, id, target, task, submission format, roles, notes and overrides."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import shared_competition, write_competition

from kit import api
from kit.columns import infer_parts
from kit.competition import discover, find_files
from kit.demo import make_demo
from kit.errors import InputError
from kit.submission import check_submission, make_submission

# name -> (id, target, task, submission kind, metric after the competition's TOML)
REAL = {
    "titanic": ("PassengerId", "Survived", "binary", "label", "accuracy"),
    "house-prices": ("Id", "SalePrice", "regression", "value", "rmsle"),
    "spaceship-titanic": ("PassengerId", "Transported", "binary", "label", "accuracy"),
    "playground-s3e26-cirrhosis": ("id", "Status", "multiclass", "proba_columns", "log_loss"),
    "bike-sharing-demand": ("datetime", "count", "regression", "value", "rmsle"),
    "tps-aug-2022": ("id", "failure", "binary", "proba", "roc_auc"),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_discovery_on_real_competitions(name):
    comp, _ = api.load(shared_competition(name))
    id, target, task, kind, metric = REAL[name]
    assert (comp.id, comp.target, comp.task, comp.submission.kind, comp.metric) == (
        id,
        target,
        task,
        kind,
        metric,
    )
    assert comp.submission.columns == comp.sample.columns
    assert comp.target not in comp.features
    assert comp.features, "every real competition has usable features"
    assert set(comp.roles) <= set(comp.test.columns)


def test_bike_sharing_drops_leakage_columns():
    comp = discover(shared_competition("bike-sharing-demand"))
    assert "casual" not in comp.roles and "registered" not in comp.roles
    assert any("casual" in n and "registered" in n and "leak" in n for n in comp.notes)
    # the id is a timestamp whose parts carry the signal (hour of day above all)
    assert comp.roles["datetime"] == "datetime"


def test_cirrhosis_has_one_probability_column_per_class():
    comp = discover(shared_competition("playground-s3e26-cirrhosis"))
    assert comp.classes == ["C", "CL", "D"]
    assert comp.submission.class_columns == ["Status_C", "Status_CL", "Status_D"]
    assert comp.submission.columns == ["id", "Status_C", "Status_CL", "Status_D"]


def test_tps_aug_2022_asks_for_a_probability():
    comp, cfg = api.load(shared_competition("tps-aug-2022"))
    assert comp.submission.kind == "proba"
    assert comp.classes == [0, 1]
    # the competition's TOML holds whole products out (test products never appear in train)
    assert comp.group == "product_code" and cfg.group == "product_code"


def test_spaceship_labels_are_true_false():
    comp = discover(shared_competition("spaceship-titanic"))
    assert comp.submission.kind == "label"
    # as its files spell them, which the submission writes
    assert comp.classes == ["False", "True"]


@pytest.mark.parametrize(
    ("sample", "classes"),
    [("false", ["false", "true"]), ("False", ["False", "True"]), (None, ["false", "true"])],
)
def test_true_false_labels_are_written_as_the_files_spell_them(tmp_path, sample, classes):
    root = write_competition(tmp_path / "c")
    train = pl.read_csv(root / "train.csv")
    train.with_columns((pl.col("label") == "yes").alias("label")).write_csv(root / "train.csv")  # true/false
    if sample is None:
        (root / "sample_submission.csv").unlink()
    else:
        pl.read_csv(root / "sample_submission.csv").with_columns(pl.lit(sample).alias("label")).write_csv(
            root / "sample_submission.csv"
        )
    comp = discover(root)
    # the sample's spelling (Kaggle scores against it), else train's
    assert comp.submission.kind == "label" and comp.classes == classes
    written = make_submission(comp, np.tile([0.2, 0.8], (comp.test.height, 1)))
    assert set(written["label"].to_list()) == {classes[1]}
    check_submission(written, comp)  # the check accepts what the files spell
    if sample is not None:
        check_submission(pl.read_csv(root / "sample_submission.csv", infer_schema=False), comp)


def test_spaceship_cabin_is_split_into_deck_number_and_side():
    comp = discover(shared_competition("spaceship-titanic"))
    assert comp.parts == {"Cabin": {"sep": "/", "roles": ["categorical", "numeric", "categorical"]}}
    assert any("split 'Cabin'" in note for note in comp.notes)
    assert comp.roles["Cabin"] == "text"  # the whole string stays a feature


def test_only_high_cardinality_strings_with_regular_fields_are_split():
    n = 200
    train = pl.DataFrame(
        {
            "code": [f"{'ABC'[i % 3]}-{i}" for i in range(n)],  # letter, number
            "name": [f"Person {i}" for i in range(n)],  # no delimiter
            "ragged": [f"x{i}" + "/y" * (i % 3) for i in range(n)],  # 0, 1 or 2 slashes
            "same": [f"k_{i}" for i in range(n)],  # the first field is constant, the second all distinct
            "size": ["S/M", "M/L"] * (n // 2),  # few values: categorical, not text
        }
    )
    roles = {"code": "text", "name": "text", "ragged": "text", "same": "text", "size": "categorical"}
    parts = infer_parts(train, roles)
    assert parts == {
        "code": {"sep": "-", "roles": ["categorical", "numeric"]},
        "same": {"sep": "_", "roles": ["constant", "numeric"]},
    }


def test_titanic_finds_gender_submission_as_sample():
    root = shared_competition("titanic")
    train, test, sample = find_files(root)
    assert (train.name, test.name, sample.name) == ("train.csv", "test.csv", "gender_submission.csv")


def test_synthetic_roles_and_constant_dropped(tiny):
    comp = discover(tiny)
    assert comp.roles == {
        "x1": "numeric",
        "x2": "numeric",
        "color": "categorical",
        "when": "datetime",
        "constant": "constant",
    }
    assert "constant" not in comp.features
    assert any("'constant'" in n and "constant" in n for n in comp.notes)
    assert (comp.id, comp.target, comp.task, comp.classes) == ("row_id", "label", "binary", ["no", "yes"])


@pytest.mark.parametrize(
    ("task", "kind", "metric"),
    [
        ("binary", "label", "accuracy"),
        ("multiclass", "proba_columns", "log_loss"),
        ("regression", "value", "rmse"),
    ],
)
def test_synthetic_task_and_default_metric(tmp_path, task, kind, metric):
    comp = discover(write_competition(tmp_path / task, task=task))
    assert (comp.task, comp.submission.kind, comp.metric) == (task, kind, metric)


def test_parquet_files_are_read(tmp_path):
    src = write_competition(tmp_path / "csv")
    dest = tmp_path / "pq"
    dest.mkdir()
    for name in ("train", "test", "sample_submission"):
        pl.read_csv(src / f"{name}.csv").write_parquet(dest / f"{name}.parquet")
    comp = discover(dest)
    assert comp.train_path.suffix == ".parquet"
    assert (comp.id, comp.target, comp.task) == ("row_id", "label", "binary")


def test_rows_with_missing_target_are_dropped_with_a_note(tmp_path):
    root = write_competition(tmp_path / "c")
    train = pl.read_csv(root / "train.csv")
    n = train.height
    train.with_columns(
        pl.when(pl.int_range(pl.len()) < 7).then(None).otherwise(pl.col("label")).alias("label")
    ).write_csv(root / "train.csv")
    comp = discover(root)
    assert comp.train.height == n - 7
    assert comp.train["label"].null_count() == 0
    assert any("7" in note and "missing target" in note for note in comp.notes)


def test_a_column_all_missing_in_test_is_dropped_with_a_note(tmp_path):
    root = write_competition(tmp_path / "c")
    test = pl.read_csv(root / "test.csv")
    test.with_columns(pl.lit(None, dtype=pl.Float64).alias("x1")).write_csv(root / "test.csv")
    comp = discover(root)
    # learned from train, x1 would meet only imputed values in test
    assert comp.roles["x1"] == "missing" and "x1" not in comp.features
    assert any("'x1'" in n and "all missing in 'test.csv'" in n for n in comp.notes)
    assert discover(write_competition(tmp_path / "full")).roles["x1"] == "numeric"


def test_a_count_target_scored_by_a_regression_metric_is_a_regression(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "counts"
    root.mkdir()
    x = rng.normal(size=400)
    pl.DataFrame({"id": range(300), "x": x[:300], "sold": rng.poisson(np.exp(0.5 * x[:300]))}).write_csv(
        root / "train.csv"
    )
    pl.DataFrame({"id": range(300, 400), "x": x[300:]}).write_csv(root / "test.csv")
    pl.DataFrame({"id": range(300, 400), "sold": [0] * 100}).write_csv(root / "sample_submission.csv")
    assert discover(root).task == "multiclass"  # a few integer values: classes, unless told
    comp = discover(root, metric="rmse")
    assert (comp.task, comp.classes, comp.submission.kind) == ("regression", [], "value")
    assert any("rmse scores it as a regression" in n for n in comp.notes)
    assert discover(root, metric="f1_macro").task == "multiclass"  # a label metric keeps the classes


def _no_sample(root):
    (root / "sample_submission.csv").unlink()
    return root


def test_target_override_picks_among_several_candidates(tmp_path):
    root = _no_sample(write_competition(tmp_path / "c"))
    train = pl.read_csv(root / "train.csv")
    train.with_columns((pl.col("x2") * 2).alias("other")).write_csv(root / "train.csv")
    with pytest.raises(InputError, match="No target found.*label, other.*--target"):
        discover(root)
    comp = discover(root, target="other")
    assert comp.target == "other" and comp.task == "regression"
    # the column that is not the target is absent from test, so it is dropped as leakage
    assert "label" not in comp.roles


def test_target_override_must_name_a_train_column(tiny):
    with pytest.raises(InputError, match="Target 'nope' is not a column of 'train.csv'"):
        discover(tiny, target="nope")


def test_id_override(tmp_path):
    root = _no_sample(write_competition(tmp_path / "c"))
    for name in ("train", "test"):
        pl.read_csv(root / f"{name}.csv").rename({"row_id": "key"}).write_csv(root / f"{name}.csv")
    assert discover(root).id is None  # "key" does not look like an id
    comp = discover(root, id="key")
    assert comp.id == "key"
    assert "key" not in comp.roles
    assert comp.submission.columns == ["key", "label"]
    with pytest.raises(InputError, match="Id column 'nope' is not in 'test.csv'"):
        discover(root, id="nope")


def test_na_override_reads_a_token_as_missing(tmp_path):
    root = write_competition(tmp_path / "c")
    test = pl.read_csv(root / "test.csv").with_columns(pl.col("x1").cast(pl.String))
    test.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.lit("?")).otherwise(pl.col("x1")).alias("x1")
    ).write_csv(root / "test.csv")
    with pytest.raises(InputError, match=r"'x1' is numeric in train but text in 'test.csv'.*--na '\?'"):
        discover(root)
    comp = discover(root, na=("?",))
    assert comp.roles["x1"] == "numeric"
    assert comp.test["x1"].dtype == pl.Float32  # held as float32, the networks' precision
    assert comp.test["x1"].null_count() >= comp.test.height // 5


def test_pandas_spellings_of_missing_are_missing_without_an_override(tmp_path):
    # what pandas.read_csv reads as NaN by default, so a notebook's numeric column stays numeric here
    root = write_competition(tmp_path / "c")
    tokens = ["n/a", "#N/A", "<NA>", "-nan", "NULL", "1.#QNAN"]
    train = pl.read_csv(root / "train.csv")
    train.with_columns(
        pl.when(pl.int_range(pl.len()) < len(tokens))
        .then(pl.Series(tokens + [""] * (train.height - len(tokens))))
        .otherwise(pl.col("x1").cast(pl.String))
        .alias("x1")
    ).write_csv(root / "train.csv")
    comp = discover(root)
    assert comp.roles["x1"] == "numeric"
    assert comp.train["x1"].head(len(tokens)).is_null().all()
    # the other values as they were
    assert comp.train["x1"].tail(-len(tokens)).equals(train["x1"].tail(-len(tokens)).cast(pl.Float32))


def test_na_override_through_the_api_accepts_a_string(tmp_path):
    root = write_competition(tmp_path / "c")
    test = pl.read_csv(root / "test.csv").with_columns(pl.col("x2").cast(pl.String))
    test.with_columns(
        pl.when(pl.col("x2") == "3").then(pl.lit("?")).otherwise(pl.col("x2")).alias("x2")
    ).write_csv(root / "test.csv")
    comp, cfg = api.load(root, na="?")
    assert cfg.na == ["?"]
    assert comp.test["x2"].dtype.is_numeric()


@pytest.mark.parametrize("spelling", ["%m/%d/%Y", "%d.%m.%Y %H:%M"])
def test_a_time_column_of_dates_written_month_or_day_first_orders_the_rows(tmp_path, spelling):
    import datetime

    import numpy as np

    from kit.preflight import time_order

    root = write_competition(tmp_path / "c", task="regression", n=200)
    first = datetime.datetime(2023, 1, 1, 6, 30)
    train_days = np.random.default_rng(0).permutation(200)  # rows not in time order
    for name, days in (("train", train_days), ("test", np.arange(200, 266))):
        frame = pl.read_csv(root / f"{name}.csv")
        spelled = [(first + datetime.timedelta(days=int(d))).strftime(spelling) for d in days]
        frame.with_columns(pl.Series("day", spelled)).write_csv(root / f"{name}.csv")
    comp = discover(root, time="day")
    # the rows in the order of their dates, whether the month ("12/31/2023") or the day
    # ("31.12.2023", told by a first field above 12) comes first
    np.testing.assert_array_equal(np.argsort(time_order(comp)), np.argsort(train_days))


def test_group_and_time_must_be_train_columns(tiny):
    with pytest.raises(InputError, match="Column 'nope' is not in 'train.csv'"):
        discover(tiny, group="nope")
    comp = discover(tiny, group="color", time="when")
    assert (comp.group, comp.time) == ("color", "when")


def test_metric_override_is_checked_against_the_task(tiny):
    assert discover(tiny, metric="roc_auc").metric == "roc_auc"
    with pytest.raises(InputError, match="Metric 'rmse' does not apply to a binary task"):
        discover(tiny, metric="rmse")
    with pytest.raises(InputError, match="Unknown metric 'nope'"):
        discover(tiny, metric="nope")


def test_demo_competition(tmp_path):
    root = make_demo(tmp_path / "demo")
    comp = discover(root)
    assert (comp.id, comp.target, comp.task, comp.classes) == ("id", "Sex", "binary", ["FEMALE", "MALE"])
    assert comp.submission.kind == "label"
    # what real competitions have: missing targets, every role, dropped constants
    assert any("missing target" in n for n in comp.notes)
    assert {"numeric", "categorical", "boolean", "datetime", "text", "constant"} <= set(comp.roles.values())
    assert comp.train["Sex"].null_count() == 0
    assert sum(comp.train[c].null_count() for c in comp.features) > 0
    # the demo is built once; a second call reuses the files
    before = (root / "train.csv").stat().st_mtime_ns
    assert make_demo(root) == root
    assert (root / "train.csv").stat().st_mtime_ns == before


def test_column_types_are_those_a_scan_of_every_row_infers(tmp_path, monkeypatch):
    import kit.io

    monkeypatch.setattr(kit.io, "INFER_ROWS", 50)  # types guessed from 50 rows, then checked
    n = 80
    frame = pl.DataFrame(
        {
            "ints_then_floats": [str(i) for i in range(60)] + ["2.5"] * (n - 60),
            "empty_then_numbers": [""] * 60 + ["7"] * (n - 60),
            "ints_then_text": [str(i) for i in range(70)] + ["n/a?"] * (n - 70),
            "ints": [str(i) for i in range(n)],
        }
    )
    path = tmp_path / "train.csv"
    frame.write_csv(path)
    read = kit.io.read_table(path)
    assert (
        read.schema
        == pl.read_csv(path, infer_schema_length=None, null_values=list(kit.io.NULL_TOKENS)).schema
    )
    assert read["ints_then_floats"].dtype == pl.Float64 and read["ints_then_text"].dtype == pl.String
    # and a file whose first rows tell every type is read in one pass, with the same types
    short = tmp_path / "short.csv"
    frame.select("ints").write_csv(short)
    assert kit.io.read_table(short)["ints"].dtype == pl.Int64


def _rewrite(path, **columns):
    """A file of the competition with some columns replaced (expressions over the file's own)."""
    pl.read_csv(path).with_columns(**columns).write_csv(path)


def test_a_target_of_whole_numbers_written_as_decimals_is_classes(tmp_path):
    root = write_competition(tmp_path / "c")
    # 0.0 and 1.0, as pandas writes a 0/1 column that had a missing value
    _rewrite(root / "train.csv", label=(pl.col("label") == "yes").cast(pl.Float64))
    _rewrite(root / "sample_submission.csv", label=pl.lit(0))
    comp = discover(root)
    assert (comp.task, comp.classes, comp.submission.kind, comp.metric) == (
        "binary",
        [0, 1],
        "label",
        "accuracy",
    )
    assert any("whole numbers" in note for note in comp.notes)
    written = make_submission(comp, np.tile([0.2, 0.8], (comp.test.height, 1)))
    assert written["label"].cast(pl.String).to_list() == ["1"] * comp.test.height
    # three of them: classes too, not a regression
    _rewrite(root / "train.csv", label=(pl.col("x2") % 3).cast(pl.Float64))
    assert discover(root).task == "multiclass"
    # and a sample with a probability column per class names them as integers
    pl.read_csv(root / "test.csv").select(
        "row_id", *[pl.lit(1 / 3).alias(f"label_{c}") for c in range(3)]
    ).write_csv(root / "sample_submission.csv")
    comp = discover(root)
    assert (comp.submission.kind, comp.classes) == ("proba_columns", [0, 1, 2])


def test_class_codes_written_with_leading_zeros_are_classes_spelled_as_the_files_do(tmp_path):
    root = write_competition(tmp_path / "c")
    # 20 codes "01".."20": as numbers they would be a regression, and 4 is not "04" to Kaggle
    _rewrite(root / "train.csv", label=(pl.col("x2") % 20 + 1).cast(pl.String).str.zfill(2))
    _rewrite(root / "sample_submission.csv", label=pl.lit("01"))
    comp = discover(root)
    assert comp.task == "multiclass" and comp.classes[:3] == ["01", "02", "03"]
    assert any("leading zeros" in note for note in comp.notes)
    written = make_submission(comp, np.eye(len(comp.classes))[np.arange(comp.test.height) % 20])
    assert written["label"].to_list()[:3] == ["01", "02", "03"]
    with pytest.raises(InputError, match="'4'"):
        check_submission(written.with_columns(pl.lit("4").alias("label")), comp)


def test_many_integer_values_are_classes_when_the_metric_scores_classes(tmp_path):
    root = write_competition(tmp_path / "c")
    _rewrite(root / "train.csv", label=pl.col("x2"))  # 50 integer values
    _rewrite(root / "sample_submission.csv", label=pl.lit(0))
    assert discover(root).task == "regression"
    comp = discover(root, metric="accuracy")
    assert (
        comp.task == "multiclass" and len(comp.classes) == pl.read_csv(root / "train.csv")["label"].n_unique()
    )
    assert any("accuracy scores them as classes" in note for note in comp.notes)
    # qwk scores ratings: still a regression, whose submission holds the whole ratings the CV scored
    comp = discover(root, metric="qwk")
    assert (comp.task, comp.submission.kind) == ("regression", "label")
    written = make_submission(comp, np.linspace(-5.0, 60.0, comp.test.height))
    ratings = written["label"].to_list()
    assert all(isinstance(r, int) for r in ratings) and (min(ratings), max(ratings)) == (0, 49)
    check_submission(written, comp)


def test_a_sample_of_0s_and_1s_holds_probabilities_when_the_metric_scores_them(tmp_path):
    root = write_competition(tmp_path / "c")
    _rewrite(root / "train.csv", label=(pl.col("label") == "yes").cast(pl.Int64))
    _rewrite(root / "sample_submission.csv", label=pl.lit(0))  # Santander's: 0 in every row
    assert discover(root).submission.kind == "label"  # no metric said: labels, as the sample shows
    comp = discover(root, metric="roc_auc")
    assert comp.submission.kind == "proba" and any("probabilities" in note for note in comp.notes)
    assert discover(root, metric="f1").submission.kind == "label"
    # 0s and 1s alike: a probability is what the metric scores
    _rewrite(root / "sample_submission.csv", label=pl.col("row_id") % 2)
    assert discover(root, metric="log_loss").submission.kind == "proba"
    assert discover(root, metric="accuracy").submission.kind == "label"
    # labels that are words cannot hold a probability: the note says the CV is not the labels'
    _rewrite(
        root / "train.csv", label=pl.when(pl.col("label") == 1).then(pl.lit("yes")).otherwise(pl.lit("no"))
    )
    _rewrite(root / "sample_submission.csv", label=pl.lit("no"))
    comp = discover(root, metric="roc_auc")
    assert comp.submission.kind == "label" and any("labels score worse" in note for note in comp.notes)


def test_a_count_target_with_a_fraction_in_the_sample_is_a_regression(tmp_path):
    root = write_competition(tmp_path / "c", task="regression")
    _rewrite(root / "train.csv", label=(pl.col("x2") % 5))
    _rewrite(root / "sample_submission.csv", label=pl.lit(1.5))
    comp = discover(root)
    assert (comp.task, comp.submission.kind) == ("regression", "value")
    assert any("1.5" in note for note in comp.notes)
    _rewrite(root / "sample_submission.csv", label=pl.lit(1))
    assert discover(root).task == "multiclass"
    _rewrite(root / "sample_submission.csv", label=pl.lit(1.5))
    assert discover(root, metric="accuracy").task == "multiclass"  # the metric says classes


def test_spaces_around_text_labels_are_stripped(tmp_path):
    root = write_competition(tmp_path / "c")
    spaced = pl.when(pl.col("row_id") % 3 == 0).then(pl.col("label")).otherwise(pl.col("label") + " ")
    _rewrite(root / "train.csv", label=spaced)
    comp = discover(root)
    assert comp.classes == ["no", "yes"] and any("stripped spaces" in note for note in comp.notes)


def test_a_numeric_column_with_placeholders_for_missing_is_read_as_numbers(tmp_path):
    root = write_competition(tmp_path / "c")
    # Telco's TotalCharges: " " for a customer with nothing charged yet, in both files
    charges = pl.when(pl.col("row_id") % 40 == 0).then(pl.lit(" ")).otherwise(pl.col("x2").cast(pl.String))
    _rewrite(root / "train.csv", x2=charges)
    _rewrite(root / "test.csv", x2=charges)
    comp = discover(root)
    assert comp.roles["x2"] == "numeric" and comp.train["x2"].dtype == pl.Float32
    assert comp.train["x2"].null_count() == comp.train.filter(pl.col("row_id") % 40 == 0).height > 0
    assert any("'x2' (' ' in" in note for note in comp.notes)
    # codes with a letter among them stay categories: too few numbers to be a quantity
    _rewrite(
        root / "train.csv",
        x2=pl.when(pl.col("row_id") % 40 == 0).then(pl.lit("XL")).otherwise(pl.col("row_id") % 4),
    )
    _rewrite(root / "test.csv", x2=pl.col("row_id") % 4)
    with pytest.raises(InputError, match="numeric in test but text"):
        discover(root)


def test_pandas_saved_index_column_is_dropped(tmp_path):
    root = write_competition(tmp_path / "c")
    for name in ("train.csv", "test.csv"):
        frame = pl.read_csv(root / name)
        frame.with_row_index("Unnamed: 0").write_csv(root / name)
    comp = discover(root)
    assert "Unnamed: 0" not in comp.roles and any("saved row index" in note for note in comp.notes)
    # kept where the sample file names it: then it is the id
    test = pl.read_csv(root / "test.csv")
    test.select("Unnamed: 0", pl.lit("no").alias("label")).write_csv(root / "sample_submission.csv")
    assert discover(root).id == "Unnamed: 0"


def test_mape_is_refused_for_a_target_with_zeros(tmp_path):
    root = write_competition(tmp_path / "c", task="regression")
    _rewrite(root / "train.csv", label=pl.col("x2"))  # 0 to 49
    with pytest.raises(InputError, match="'mape' divides .* is 0 in"):
        discover(root, metric="mape")


def test_a_class_column_of_the_sample_that_train_never_has_is_named(tmp_path):
    root = write_competition(tmp_path / "c", task="multiclass")
    _rewrite(
        root / "train.csv",
        label=pl.when(pl.col("label") == "mid").then(pl.lit("low")).otherwise(pl.col("label")),
    )
    with pytest.raises(InputError, match=r"class\(es\) \['mid'\] never occur"):
        discover(root)


def test_a_submission_of_the_users_beside_the_sample_is_not_taken_for_it(tmp_path):
    root = write_competition(tmp_path / "c")
    sample = pl.read_csv(root / "sample_submission.csv")
    # the user's own files with probabilities in them, saved into the data folder
    for name in ("my_submission.csv", "baseline_submission.csv"):
        sample.with_columns(pl.lit(0.3).alias("label")).write_csv(root / name)
    comp = discover(root)
    assert comp.sample_path.name == "sample_submission.csv" and comp.submission.kind == "label"
    # Titanic's sample beside the user's: submission.csv is the last choice; two alike, a note
    (root / "sample_submission.csv").rename(root / "gender_submission.csv")
    (root / "baseline_submission.csv").unlink()
    (root / "submission.csv").write_text((root / "my_submission.csv").read_text())
    notes = []
    assert find_files(root, notes)[2].name == "gender_submission.csv"
    assert "'gender_submission.csv' as the sample" in notes[0] and "'my_submission.csv'" in notes[0]
    (root / "my_submission.csv").unlink()
    notes = []
    assert find_files(root, notes)[2].name == "gender_submission.csv" and not notes


def test_a_run_folder_passed_as_the_competition_is_named_as_such(tmp_path):
    run = api.trees(
        write_competition(tmp_path / "c"), folds=2, out=tmp_path / "run", progress=False, log=print
    )
    with pytest.raises(InputError, match="is a run folder kit wrote, not a competition folder"):
        discover(run.run_dir)


def test_positive_names_the_class_f1_scores_and_a_probability_is_of(tmp_path):
    root = write_competition(tmp_path / "c")
    words = pl.when(pl.col("label") == "yes").then(pl.lit("fraud")).otherwise(pl.lit("legit"))
    _rewrite(root / "train.csv", label=words)
    _rewrite(root / "sample_submission.csv", label=pl.lit("legit"))
    comp = discover(root, metric="f1")
    # by default the last in sort order, said where f1 scores words
    assert comp.classes == ["fraud", "legit"] and any("--positive fraud" in note for note in comp.notes)
    comp = discover(root, metric="f1", positive="fraud")
    assert comp.classes == ["legit", "fraud"] and not any("--positive" in note for note in comp.notes)
    y = comp.target_values()
    assert (y == 1).sum() == (comp.train["label"] == "fraud").sum()
    written = make_submission(comp, np.tile([0.2, 0.8], (comp.test.height, 1)))
    assert set(written["label"].to_list()) == {"fraud"}
    with pytest.raises(InputError, match=r"--positive 'spam' is not a class of 'label' \(fraud, legit\)"):
        discover(root, positive="spam")
    with pytest.raises(InputError, match="is multiclass"):
        discover(write_competition(tmp_path / "m", task="multiclass"), positive="low")
    # the flag, through the settings and back from a run's config
    comp, cfg = api.load(root, metric="f1", positive="fraud")
    assert comp.classes == ["legit", "fraud"] and cfg.resolved(comp).positive == "fraud"


def test_a_sample_of_ranked_classes_asks_for_the_k_most_probable_scored_by_map_at_k(tmp_path):
    root = write_competition(tmp_path / "c", task="multiclass")
    pl.read_csv(root / "test.csv").select("row_id", pl.lit("mid low high").alias("label")).write_csv(
        root / "sample_submission.csv"
    )
    comp = discover(root)
    assert (comp.submission.kind, comp.submission.k, comp.metric) == ("ranked", 3, "map@3")
    proba = np.tile([0.2, 0.5, 0.3], (comp.test.height, 1))  # classes high, low, mid
    written = make_submission(comp, proba)
    assert set(written["label"].to_list()) == {"low mid high"}
    check_submission(written, comp)
    for bad in ("low mid high top", "low low high", "low mid top", ""):
        with pytest.raises(InputError, match="up to 3 different classes"):
            check_submission(written.with_columns(pl.lit(bad).alias("label")), comp)
    check_submission(written.with_columns(pl.lit("low mid").alias("label")), comp)  # fewer: scored too
    # two of them: MAP@2
    _rewrite(root / "sample_submission.csv", label=pl.lit("mid low"))
    assert discover(root).metric == "map@2"


def test_dates_written_day_first_are_said_to_give_no_datetime_parts(tmp_path):
    root = write_competition(tmp_path / "c")
    day_first = pl.col("when").str.slice(0, 10).str.to_date().dt.strftime("%d/%m/%Y")
    for name in ("train.csv", "test.csv"):
        _rewrite(root / name, when=day_first)
    comp = discover(root)
    assert comp.roles["when"] != "datetime"
    assert any("'when' holds dates written day or month first" in note for note in comp.notes)
    assert not any(
        "day or month first" in note for note in discover(write_competition(tmp_path / "iso")).notes
    )


def test_test_dates_all_after_train_dates_suggest_a_time_split(tmp_path):
    root = write_competition(tmp_path / "c")
    # test rows a month after every train row, as a forecasting competition's are
    _rewrite(root / "test.csv", when=pl.col("when").str.replace("2024-01-", "2024-02-"))
    assert any("--time when" in note and "later than train's" in note for note in discover(root).notes)
    assert not any("later than train's" in note for note in discover(root, time="when").notes)
    assert not any("later than train's" in note for note in discover(write_competition(tmp_path / "d")).notes)
