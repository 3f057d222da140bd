"""What a split does with the group and time columns, said as it does it: a time split does not
keep groups apart, a holdout keeps them whole (or takes the last rows in time), a k-fold split
follows neither, rows without a group are one group, and the run folder records the folds used."""

from __future__ import annotations

import html
import json

import numpy as np
import polars as pl
import pytest
from conftest import write_frame

from kit import api
from kit.ensemble import Member, check_same_folds
from kit.errors import InputError
from kit.preflight import preflight, time_order
from kit.split import fold_weights


def _series(root, *, n_series=30, steps=20, new_groups=True, later=False, seed=0):
    """Sensor series: each row a series' step; test holds new series (or later steps of the same)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n_series + 10)

    def frame(series, step_from, first_id):
        sid = np.repeat(series, steps)
        step = np.tile(np.arange(step_from, step_from + steps), len(series))
        a = level[sid] + rng.normal(scale=0.3, size=len(sid))
        return pl.DataFrame(
            {"id": np.arange(first_id, first_id + len(sid)), "series_id": sid, "time_step": step, "a": a}
        )

    train = frame(np.arange(n_series), 0, 0)
    train = train.with_columns(pl.Series("state", (level[train["series_id"].to_numpy()] > 0).astype(int)))
    test_series = np.arange(n_series, n_series + 10) if new_groups else np.arange(10)
    test = frame(test_series, steps if later else 0, train.height)
    root.mkdir(parents=True)
    train.write_csv(root / "train.csv")
    test.write_csv(root / "test.csv")
    test.select("id", pl.lit(0.5).alias("state")).write_csv(root / "sample_submission.csv")
    return root


def _patients(root, *, n_patients=60, visits=4, missing=0):
    """Patients with a few visits each; test holds new patients. `missing`: rows without a patient."""
    rng = np.random.default_rng(1)
    total = n_patients + 20
    pid = np.repeat([f"P{i:03d}" for i in range(total)], visits)
    sick = np.repeat(rng.random(total) < 0.5, visits)
    x = sick + rng.normal(scale=0.8, size=len(pid))
    day = np.tile(np.arange(visits), total) + np.repeat(np.arange(total), visits)
    frame = pl.DataFrame({"id": np.arange(len(pid)), "patient_id": pid, "day": day, "x": x})
    n = n_patients * visits
    train = frame[:n].with_columns(pl.Series("y", sick[:n].astype(int)))
    if missing:
        train = train.with_columns(
            pl.when(pl.int_range(pl.len()) % (n // missing) == 0)
            .then(None)
            .otherwise(pl.col("patient_id"))
            .alias("patient_id")
        )
    root.mkdir(parents=True)
    train.write_csv(root / "train.csv")
    frame[n:].write_csv(root / "test.csv")
    frame[n:].select("id", pl.lit(0.5).alias("y")).write_csv(root / "sample_submission.csv")
    return root


def _crossing(folds, groups):
    return {g for tr, va in folds for g in set(groups[tr]) & set(groups[va])}


def test_a_time_split_with_a_group_says_the_groups_cross_and_leak_where_test_groups_are_new(tmp_path):
    data = _series(tmp_path / "sensors")
    comp, cfg = api.load(data, group="series_id", time="time_step", split="time", folds=3)
    assert not any("splits the folds" in n for n in comp.notes)
    plan = preflight(comp, cfg)
    assert plan.strategy == "time"
    crossing = [n for n in plan.notes if "does not keep the groups of 'series_id' apart" in n]
    assert len(crossing) == 1
    assert "30 of its 30 groups are on both sides" in crossing[0]
    assert "leaks" in crossing[0] and "the leaderboard scores new groups" in crossing[0]
    assert "pass --split group" in crossing[0]
    # without --split the folds are groups, and the note that suggests --split time says what it costs
    auto = preflight(*api.load(data, group="series_id", time="time_step", folds=3))
    assert auto.strategy == "group"
    suggest = [n for n in auto.notes if "--split time" in n]
    assert suggest and "groups of 'series_id' on both sides of the folds" in suggest[0]
    # test's series seen in train: the groups still cross, but no leak is claimed
    same = _series(tmp_path / "same", new_groups=False)
    notes = preflight(*api.load(same, group="series_id", time="time_step", split="time", folds=3)).notes
    assert any("does not keep the groups" in n and "leaks" not in n for n in notes)


@pytest.mark.parametrize("via_toml", [False, True])
def test_a_holdout_with_a_group_keeps_every_group_whole(tmp_path, via_toml):
    data = _patients(tmp_path / "patients")
    if via_toml:
        toml = tmp_path / "pat.toml"
        toml.write_text('group = "patient_id"\nfolds = 3\n')
        comp, cfg = api.load(data, config=str(toml), split="holdout")
    else:
        comp, cfg = api.load(data, group="patient_id", split="holdout")
    plan = preflight(comp, cfg)
    groups = comp.train["patient_id"].to_numpy()
    ((tr, va),) = plan.folds
    assert not set(groups[tr]) & set(groups[va])
    assert len(set(groups[va])) == 12  # 20% of the 60 patients
    assert any(
        "the holdout validates on 20% of the groups of 'patient_id', each group whole" in n
        for n in plan.notes
    )
    assert plan.describe() == "holdout of 20% of the groups of 'patient_id'"


def test_a_holdout_with_a_time_column_validates_on_the_last_rows(tmp_path):
    data = _patients(tmp_path / "patients")
    comp, cfg = api.load(data, time="day", split="holdout")
    plan = preflight(comp, cfg)
    order = time_order(comp)
    ((tr, va),) = plan.folds
    assert order[tr].max() < order[va].min()  # no day on both sides
    assert 0.15 < len(va) / comp.train.height < 0.25
    assert any("the last 20% of the rows in the order of 'day'" in n for n in plan.notes)


@pytest.mark.parametrize("split", ["kfold", "stratified"])
def test_kfold_says_it_honours_neither_the_group_nor_the_time(tmp_path, split):
    data = _patients(tmp_path / "patients")
    comp, cfg = api.load(data, group="patient_id", time="day", split=split, folds=3)
    plan = preflight(comp, cfg)
    assert plan.strategy == split
    notes = comp.notes + plan.notes
    assert not any("splits the folds" in n for n in notes)
    group_note = [
        n for n in plan.notes if f"--split {split} does not keep the groups of 'patient_id' apart" in n
    ]
    groups = comp.train["patient_id"].to_numpy()
    assert group_note and f"{len(_crossing(plan.folds, groups))} of its 60 groups" in group_note[0]
    assert any(f"--split {split} does not follow the order of 'day'" in n for n in plan.notes)


def test_rows_without_a_group_are_said_to_be_one_group(tmp_path):
    data = _patients(tmp_path / "patients", missing=24)
    comp, cfg = api.load(data, group="patient_id", folds=3)
    plan = preflight(comp, cfg)
    assert any(
        "24 of the 240 rows have no 'patient_id'" in n and "kept together as one group" in n
        for n in plan.notes
    )
    blank = comp.train["patient_id"].is_null().to_numpy()
    assert len({k for k, (_, va) in enumerate(plan.folds) if blank[va].any()}) == 1


def test_a_constant_group_column_is_refused_without_a_note_that_it_was_dropped(tmp_path):
    data = _patients(tmp_path / "patients")
    frame = pl.read_csv(data / "train.csv").with_columns(pl.lit("A").alias("site"))
    frame.write_csv(data / "train.csv")
    pl.read_csv(data / "test.csv").with_columns(pl.lit("A").alias("site")).write_csv(data / "test.csv")
    comp, cfg = api.load(data, group="site")
    assert not any("'site'" in n for n in comp.notes)
    with pytest.raises(InputError, match="single group"):
        preflight(comp, cfg)


def test_a_time_split_weighs_the_folds_equally_where_test_times_overlap_train(tmp_path):
    overlap = preflight(
        *api.load(_series(tmp_path / "overlap", new_groups=False), time="time_step", split="time", folds=3)
    )
    assert not overlap.test_later
    assert any(
        "200 of the 200 test rows have a 'time_step' no later than train's latest" in n for n in overlap.notes
    )
    assert np.allclose(fold_weights(overlap.folds, "time", test_later=overlap.test_later), 1 / 3)
    later = preflight(
        *api.load(
            _series(tmp_path / "later", new_groups=False, later=True), time="time_step", split="time", folds=3
        )
    )
    assert later.test_later and not any("no later than" in n for n in later.notes)
    assert fold_weights(later.folds, "time", test_later=later.test_later)[-1] > 0.5


def _member(tmp_path, name, group, fold):
    info = {"competition": "c", "metric": "rmse", "split": "group", "group": group, "folds": 3, "seed": 0}
    oof = pl.DataFrame({"id": np.arange(6), "y": np.zeros(6), "fold": fold, "pred": np.zeros(6)})
    test = pl.DataFrame({"id": np.arange(3), "pred": np.zeros(3)})
    return Member(run_dir=tmp_path / name, track="trees", score=1.0, info=info, oof=oof, test=test)


def test_the_blend_refusal_names_each_runs_group_column(tmp_path):
    a = _member(tmp_path, "a", "patient_id", [0, 0, 1, 1, 2, 2])
    b = _member(tmp_path, "b", "ward", [0, 1, 2, 0, 1, 2])
    with pytest.raises(InputError) as err:
        check_same_folds([a, b])
    assert (
        "group split on 'ward', 3 folds, seed 0 against group split on 'patient_id', 3 folds, seed 0"
        in str(err.value)
    )


def test_a_run_folder_records_the_folds_it_used(tmp_path):
    data = _patients(tmp_path / "patients", n_patients=7, visits=12)
    out = tmp_path / "run"
    run = api.run_track(
        "linear",
        data,
        group="patient_id",
        metric="log_loss",
        folds=10,
        out=out,
        progress=False,
        log=lambda _: None,
    )
    assert "folds = 7\n" in (run.run_dir / "config.toml").read_text()
    info = json.loads((run.run_dir / "metrics.json").read_text())
    assert info["folds"] == 7 and info["group"] == "patient_id"


@pytest.mark.parametrize("new_groups", [True, False])
def test_a_group_column_whose_test_values_are_all_new_is_not_a_feature(tmp_path, new_groups):
    """Test series that never occur in train: a model that learned each training series' level
    could apply none of it, and it fits the training rows by their series instead."""
    data = _series(tmp_path / "sensors", new_groups=new_groups)
    comp, _ = api.load(data, group="series_id")
    dropped = [n for n in comp.notes if "dropped 'series_id' as a feature" in n]
    if new_groups:
        assert "series_id" not in comp.roles and len(dropped) == 1 and "new groups" in dropped[0]
        assert not any("is also a feature" in n for n in comp.notes)
    else:  # the same series in test: what is learned of each applies there
        assert "series_id" in comp.roles and not dropped


def test_groups_written_as_floats_in_one_file_are_the_same_groups(tmp_path):
    """A group column with a missing value is read as floats ("17.0"), the other file's as ints."""
    data = _series(tmp_path / "sensors", new_groups=False)
    train = pl.read_csv(data / "train.csv")
    train.with_columns(pl.col("series_id").cast(pl.Float64)).write_csv(data / "train.csv")
    comp, cfg = api.load(data, group="series_id", time="time_step", split="time", folds=3)
    assert "series_id" in comp.roles
    assert not any("dropped 'series_id'" in n or "new groups" in n for n in comp.notes), comp.notes
    plan = preflight(comp, cfg)
    assert any("does not keep the groups of 'series_id' apart" in n for n in plan.notes)
    assert not any("new groups" in n for n in plan.notes), plan.notes


def _jump(root, *, days=400, test_days=40):
    """Daily values whose level jumps from 0 to 10 in train's last 15% of days, where only the
    last fold validates, and stays there in the test's later days."""
    rng = np.random.default_rng(0)
    day = np.arange(days + test_days)
    y = np.where(day >= int(days * 0.85), 10.0, 0.0) + rng.normal(scale=0.1, size=len(day))
    frame = pl.DataFrame({"id": day, "day": day, "x": rng.normal(size=len(day))})
    return write_frame(root, frame, y, days)


def test_a_forecast_predicts_the_test_with_a_refit_on_every_row_the_latest_included(tmp_path):
    """No fold of a time split trains on the last window, the nearest to a later test; the test
    predictions come from the track refit on all rows, which has seen the jump."""
    run = api.trees(
        _jump(tmp_path / "jump"), time="day", split="time", folds=5, metric="rmse", out=tmp_path / "run",
        log=lambda line: None,
    )  # fmt: skip
    assert run.test_predictions["prediction"].mean() > 5  # the folds' models never saw a 10: about 0
    info = json.loads((run.run_dir / "metrics.json").read_text())
    assert info["test_from"] == "a refit on all 400 training rows"
    assert run.oof.filter(pl.col("fold") == 4)["prediction"].mean() < 2  # the CV stays the folds'


def test_dotted_dates_are_read_day_first_where_no_day_is_above_12():
    """ "01.02.2024" is the 1st of February wherever dates are dotted; slashed dates stay month
    first, as pandas reads them, until a first field above 12 says otherwise."""
    from kit.columns import parse_time_column

    dotted = parse_time_column(pl.Series(["10.01.2024", "01.02.2024", "03.02.2024"]))
    assert dotted.dt.strftime("%Y-%m-%d").to_list() == ["2024-01-10", "2024-02-01", "2024-02-03"]
    slashed = parse_time_column(pl.Series(["01/02/2024", "03/02/2024"]))
    assert slashed.dt.strftime("%Y-%m-%d").to_list() == ["2024-01-02", "2024-03-02"]


def test_a_time_column_with_an_offset_in_some_rows_only_is_refused_naming_both(tmp_path):
    data = _series(tmp_path / "sensors", new_groups=False)
    train = pl.read_csv(data / "train.csv")
    when = [
        f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00" + ("+05:00" if i % 3 == 0 else "")
        for i in range(train.height)
    ]
    train.with_columns(pl.Series("when", when)).write_csv(data / "train.csv")
    pl.read_csv(data / "test.csv").with_columns(pl.lit("2024-02-01T00:00:00").alias("when")).write_csv(
        data / "test.csv"
    )
    with pytest.raises(
        InputError, match=r"UTC offset in some rows \('2024-01-01T00:00:00\+05:00'\) and none"
    ):
        api.load(data, time="when")
    train.with_columns(pl.Series("when", [w.removesuffix("+05:00") for w in when])).write_csv(
        data / "train.csv"
    )
    assert api.load(data, time="when")[0].time == "when"  # none with an offset: in time order


def test_a_time_column_of_names_some_ending_in_z_is_refused_as_no_dates(tmp_path):
    """'Kink, Mr. Vincenz' ends as a UTC time may ("...Z"): the column is still not a time."""
    data = _series(tmp_path / "names", new_groups=False)
    train = pl.read_csv(data / "train.csv")
    names = [f"Kink, Mr. Vincen{'z' if i % 5 == 0 else 't'}" for i in range(train.height)]
    train.with_columns(pl.Series("name", names)).write_csv(data / "train.csv")
    pl.read_csv(data / "test.csv").with_columns(pl.lit("Braund, Mr. Owen").alias("name")).write_csv(
        data / "test.csv"
    )
    with pytest.raises(InputError, match=r"--time column 'name' .* is neither numbers nor dates"):
        api.load(data, time="name")


def test_iso_months_order_a_time_split(tmp_path):
    """ "2016-06" is ISO 8601's month: a --time column of months splits by them, in calendar order
    (written unpadded too, "2017-9", which as text sorts after "2017-10")."""
    months = [f"{2016 + m // 12}-{m % 12 + 1}" for m in range(24)]
    rng = np.random.default_rng(0)
    when = np.repeat(months, 10)
    frame = pl.DataFrame({"id": range(240), "month": when, "x": rng.normal(size=240)})
    data = write_frame(tmp_path / "monthly", frame, rng.normal(size=200), 200)
    comp, cfg = api.load(data, time="month", folds=4)
    plan = preflight(comp, cfg)
    order = time_order(comp)
    assert plan.strategy == "time" and len(plan.folds) == 4
    for tr, va in plan.folds:
        assert order[tr].max() < order[va].min()
    calendar = {m: i for i, m in enumerate(months)}
    np.testing.assert_array_equal(
        np.argsort(order, kind="stable"), np.argsort([calendar[m] for m in when[:200]], kind="stable")
    )


def test_the_splits_notes_are_kept_in_the_run_folder_and_its_report(tmp_path):
    """What the split did with the group (fewer groups than folds) is said on the terminal and
    kept where a reader of the run folder looks: competition.json and the report's notes."""
    from kit.run import cross_validate

    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"id": range(120), "site": np.arange(120) % 3, "x": rng.normal(size=120)})
    data = write_frame(tmp_path / "sites", frame, rng.normal(size=100), 100)
    comp, cfg = api.load(data, group="site", folds=5)
    lines = []
    run = cross_validate(comp, cfg, "linear", out=tmp_path / "run", log=lines.append, progress=False)
    said = next(line for line in lines if "groups, fewer than --folds 5" in line).removeprefix("note: ")
    assert said in json.loads((run.run_dir / "competition.json").read_text())["notes"]
    assert html.escape(said.split(":")[0]) in (run.run_dir / "report.html").read_text()


def test_a_quantity_scored_as_classes_is_told_to_take_a_regression_metric(tmp_path):
    # sale prices under roc_auc: 60 values of 5 rows each and one of a single row
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"id": np.arange(400), "x": rng.normal(size=400)})
    y = np.r_[np.repeat(np.arange(1000, 1060), 5)[:299], 999, np.zeros(100, int)] * 100
    comp, cfg = api.load(write_frame(tmp_path / "prices", frame, y, 300), metric="roc_auc")
    assert comp.task == "multiclass"
    with pytest.raises(
        InputError, match="looks like a quantity: pass a regression metric such as --metric rmse"
    ):
        preflight(comp, cfg)
    # so many values that most would be seen once: refused at once, with the same hint
    y = rng.integers(1000, 1300, 400) * 100
    with pytest.raises(InputError, match=r"a regression metric \(--metric rmse\) instead of roc_auc"):
        api.load(write_frame(tmp_path / "many", frame, y, 300), metric="roc_auc")
