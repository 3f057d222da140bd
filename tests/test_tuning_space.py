"""Optuna tuning without a study run: search spaces from the TOML and the track, the storages
kit opens, and the pruning callback fed every epoch."""

from __future__ import annotations

import optuna
import pytest

from kit import tracks, tuning
from kit.config import Config
from kit.errors import InputError


def _cfg(**search) -> Config:
    return Config(search=search)


# ---------------------------------------------------------------------------------------------
# search spaces


def test_search_space_takes_the_tracks_table_and_the_tomls_changes():
    space, fixed = tuning.search_space(
        "baseline",
        _cfg(
            baseline={
                "learning_rate": {"low": 1e-3, "high": 2e-3, "log": True},
                "patience": {"low": 5, "high": 30},
                "scaling": "standard",
            }
        ),
    )
    assert space["learning_rate"]["low"] == 1e-3 and not space["learning_rate"]["int"]
    assert space["patience"]["int"]  # an int parameter searches ints
    assert "scaling" not in space and fixed == {"scaling": "standard"}
    assert set(tracks.get("baseline").search_space) - {"scaling"} <= set(space)


def test_the_competitions_own_choice_stays_in_the_space():
    cfg = Config().update({"baseline": {"scaling": "power", "units": [64, 64]}}, source="house-prices.toml")
    space, _ = tuning.search_space("baseline", cfg)
    assert "power" in space["scaling"]["choices"] and [64, 64] in space["units"]["choices"]


def test_search_tables_merge_entry_by_entry_across_config_files():
    cfg = Config().update({"search": {"baseline": {"dropout": {"low": 0.0, "high": 0.2}}}}, source="a.toml")
    cfg.update({"search": {"baseline": {"scaling": "standard"}, "pruner": "none"}}, source="b.toml")
    space, fixed = tuning.search_space("baseline", cfg)
    assert space["dropout"]["high"] == 0.2 and fixed == {"scaling": "standard"}
    assert cfg.search["pruner"] == "none"


@pytest.mark.parametrize(
    "search, match",
    [
        ({"baseline": {"learning_rat": {"low": 1e-4, "high": 1e-2}}}, "not a baseline parameter"),
        ({"baseline": {"dropout": {"low": 0.5, "high": 0.1}}}, "low < high"),
        ({"baseline": {"dropout": {"min": 0.0, "max": 0.5}}}, "must be"),
        ({"baseline": {"learning_rate": {"low": 0.0, "high": 1e-2, "log": True}}}, "log scale"),
        ({"baseline": {"units": {"choices": []}}}, "non-empty list"),
        ({"baseline": {"units": {"choices": [[64.5]]}}}, r"units \(each value\) .* must be of type int"),
        ({"baseline": {"patience": {"low": 4, "high": 64, "step": 0}}}, "step above 0"),
        ({"trees": {"max_leaf_nodes": {"low": 4, "high": 64, "step": -4}}}, "step above 0"),
        # Optuna would warn and keep low alone, a range of one value
        ({"baseline": {"dropout": {"low": 0.1, "high": 0.2, "step": 0.5}}}, "step that divides high - low"),
        ({"baseline": {"patience": {"low": 4, "high": 64, "step": 7}}}, r"into whole steps, such as 6\."),
        ({"baseline": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": "yes"}}}, "log = true or false"),
        ({"pruner": "sometimes"}, "Unknown pruner"),
        ({"trials": 5}, "Unknown \\[search\\] setting"),
    ],
)
def test_bad_search_table_names_the_entry_and_the_fix(search, match):
    with pytest.raises(InputError, match=match):
        tuning.search_space(next(iter(search)) if "trees" in search else "baseline", _cfg(**search))


def test_a_storage_that_is_a_folder_or_not_a_journal_is_refused_and_left_as_it_was(tmp_path):
    with pytest.raises(InputError, match="is a folder. Pass a journal file's path in it"):
        tuning.open_storage(tmp_path)
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes, no newline at the end")  # a journal repair would cut it to nothing
    with pytest.raises(InputError, match="is a file that is not a study's journal"):
        tuning.open_storage(mine)
    assert mine.read_text() == "my notes, no newline at the end"
    tuning.open_storage(tmp_path / "new" / "study.journal")  # a new journal's folder is made


def test_list_choices_are_sampled_and_decoded_as_lists():
    space, _ = tuning.search_space("baseline", _cfg(baseline={"units": {"choices": [[64, 32], [128]]}}))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(8):
        trial = study.ask()
        params = tuning.suggest(trial, space)
        assert params["units"] in ([64, 32], [128])
        assert tuning.decode(space, trial.params)["units"] == params["units"]
        seen.add(tuple(params["units"]))
        study.tell(trial, 0.5)
    assert len(seen) == 2


def test_parallel_workers_draw_different_parameters_with_the_same_seed():
    """Two samplers built by the same command (same seed) must not propose the same trial."""
    space, _ = tuning.search_space("baseline", Config())
    storage = optuna.storages.InMemoryStorage()
    studies = [
        optuna.create_study(
            storage=storage, study_name="s", sampler=tuning.PerTrialSeedSampler(seed=0), load_if_exists=True
        )
        for _ in range(2)
    ]
    drawn = [tuning.suggest(study.ask(), space)["learning_rate"] for study in studies]
    assert drawn[0] != drawn[1]
    # and a one-worker study is reproducible: trial n's draws depend on (seed, n)
    again = optuna.create_study(sampler=tuning.PerTrialSeedSampler(seed=0))
    assert tuning.suggest(again.ask(), space)["learning_rate"] == drawn[0]


# ---------------------------------------------------------------------------------------------
# pruning


def test_pruning_callback_reports_every_fold_on_its_own_steps_and_prunes_a_bad_trial():
    study = optuna.create_study(direction="maximize", pruner=tuning.make_pruner("median"))
    good = {k * 100 + e: 0.8 + 0.005 * e for k in range(2) for e in range(20)}
    dist = optuna.distributions.FloatDistribution(0, 1)
    for i in range(5):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": i / 10}, distributions={"x": dist}, value=0.9, intermediate_values=good
            )
        )
    warmup = tuning.WARMUP_EPOCHS
    trial = study.ask()
    fold0 = tuning.TrialPruning(trial, fold=0, steps_per_fold=100)
    with pytest.raises(optuna.TrialPruned, match=f"fold 1, epoch {warmup + 1}"):
        for epoch in range(20):
            # as a custom loop calls it: no model, just the logs
            fold0.on_epoch_end(epoch, {"val_score": 0.5})
    # the warm-up epochs never prune; the first epoch after them does
    assert sorted(study.trials[-1].intermediate_values) == list(range(warmup + 1))

    trial = study.ask()
    for k in range(2):
        callback = tuning.TrialPruning(trial, fold=k, steps_per_fold=100)
        for epoch in range(20):
            callback.on_epoch_end(epoch, {"val_score": 0.95})
    # a good trial runs every fold, fold k on steps k * 100 + epoch
    assert sorted(study.trials[-1].intermediate_values) == [*range(20), *range(100, 120)]


def test_pruning_callback_says_what_the_track_must_log():
    study = optuna.create_study()
    callback = tuning.TrialPruning(study.ask(), fold=0, steps_per_fold=10)
    with pytest.raises(KeyError, match="val_score"):
        callback.on_epoch_end(0, {"loss": 0.3})


def test_a_sqlite_storage_in_a_folder_not_made_yet_opens_as_a_journal_does(tmp_path):
    storage = tuning.open_storage(f"sqlite:///{tmp_path}/tune/study.db")  # a new --out folder
    assert storage.get_all_studies() == [] and (tmp_path / "tune" / "study.db").is_file()
