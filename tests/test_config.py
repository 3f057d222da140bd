"""Run configuration: defaults < the competition's TOML < --config FILE < flags, checked keys."""

from __future__ import annotations

import pytest
from conftest import write_competition

from kit import api, cli, config, metrics, tracks
from kit.config import Config, read_toml, resolve
from kit.errors import InputError


def _toml(path, text: str):
    path.write_text(text)
    return path


def test_defaults():
    cfg = resolve("no-such-competition")
    assert (cfg.split, cfg.folds, cfg.seed, cfg.na) == ("auto", 5, 0, [])
    assert cfg.target is None and cfg.metric is None
    assert cfg.params("baseline") == tracks.get("baseline").defaults and cfg.tracks == {}
    # the defaults are copied, so a run's changes do not leak into the next one
    cfg.params("baseline")["epochs"] = 1
    assert (
        resolve("no-such-competition").params("baseline")["epochs"]
        == tracks.get("baseline").defaults["epochs"]
    )


def test_config_file_then_flags_override_the_competitions_toml(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path / "configs")
    (tmp_path / "configs").mkdir()
    _toml(
        tmp_path / "configs" / "comp.toml",
        'metric = "roc_auc"\nfolds = 3\nseed = 7\n[baseline]\nepochs = 50\n',
    )
    own = resolve("comp")
    assert (own.metric, own.folds, own.seed, own.params("baseline")["epochs"]) == ("roc_auc", 3, 7, 50)

    extra = _toml(tmp_path / "extra.toml", "folds = 4\n[baseline]\ndropout = 0.3\n")
    with_file = resolve("comp", config=extra)
    assert (with_file.metric, with_file.folds, with_file.seed) == ("roc_auc", 4, 7)
    # a table overrides key by key: the competition's epochs stay, the file's dropout is added
    params = with_file.params("baseline")
    assert params["epochs"] == 50 and params["dropout"] == 0.3
    assert params["units"] == tracks.get("baseline").defaults["units"]

    with_flags = resolve("comp", config=extra, folds=2, seed=None, metric="log_loss")
    assert (with_flags.metric, with_flags.folds, with_flags.seed) == ("log_loss", 2, 7)


def test_unknown_setting_is_rejected(tmp_path):
    path = _toml(tmp_path / "bad.toml", "fold = 3\n")
    with pytest.raises(
        InputError, match=r"Unknown setting 'fold' in .*bad.toml \(did you mean 'folds'\?\).*Received: fold=3"
    ):
        resolve("x", config=path)


def test_a_team_tracks_table_beside_its_file_is_left_to_that_track(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # pipelines/configs/<competition>.toml with the table of pipelines/team_model.py: the other
    # tracks read the same file
    configs = tmp_path / "pipelines" / "configs"
    configs.mkdir(parents=True)
    (tmp_path / "pipelines" / "team_model.py").write_text("# a team's track\n")
    path = _toml(configs / "comp.toml", "folds = 3\n[team_model]\nC = 0.5\n")
    cfg = resolve("x", config=path)
    assert cfg.folds == 3 and cfg.tracks["team_model"] == {"C": 0.5}
    # without the file it is a typo as likely as a track's
    (tmp_path / "pipelines" / "team_model.py").unlink()
    with pytest.raises(InputError, match=r"Unknown setting 'team_model'.*team_model.py is in pipelines/"):
        resolve("x", config=path)


def test_unknown_track_setting_is_rejected(tmp_path):
    path = _toml(tmp_path / "bad.toml", "[baseline]\nepoch = 3\n")
    with pytest.raises(
        InputError, match=r"Unknown \[baseline\] setting\(s\) \['epoch'\] in .*bad.toml.*epochs"
    ):
        resolve("x", config=path)


def test_missing_and_invalid_toml_are_rejected(tmp_path):
    with pytest.raises(InputError, match="Config file '.*nope.toml' does not exist"):
        read_toml(tmp_path / "nope.toml")
    path = _toml(tmp_path / "broken.toml", "folds = \n")
    with pytest.raises(InputError, match="Config file '.*broken.toml' is not valid TOML"):
        read_toml(path)


def test_invalid_toml_through_the_cli(tmp_path, capsys):
    data = write_competition(tmp_path / "comp")
    path = _toml(tmp_path / "broken.toml", "[baseline\n")
    assert cli.main(["inspect", str(data), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "broken.toml" in err and "not valid TOML" in err


def test_written_config_reads_back_the_same(tmp_path):
    cfg = Config().update(
        {"target": "y", "na": ["?"], "folds": 3, "seed": 4, "split": "kfold", "baseline": {"epochs": 9}},
        source="test",
    )
    cfg.write(tmp_path / "config.toml")
    again = resolve("x", config=tmp_path / "config.toml")
    assert again.to_dict() == cfg.to_dict()
    # None is not written (TOML has no null) and reads back as None
    assert "id" not in read_toml(tmp_path / "config.toml") and again.id is None


def test_a_run_folders_config_reproduces_its_settings(tmp_path):
    data = write_competition(tmp_path / "comp")
    settings = {"metric": "roc_auc", "folds": 3, "seed": 5, "na": ["?"], "split": "kfold"}
    comp, cfg = api.load(data, **settings)
    # what cross_validate writes: the config with the inferred values filled in
    resolved = cfg.update({"target": comp.target, "id": comp.id, "metric": comp.metric}, source="the run")
    resolved.write(tmp_path / "config.toml")
    comp2, cfg2 = api.load(data, config=tmp_path / "config.toml")
    assert cfg2.to_dict() == resolved.to_dict()
    assert (comp2.target, comp2.id, comp2.metric) == (comp.target, comp.id, "roc_auc")


@pytest.mark.parametrize("path", sorted(config.CONFIG_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_each_competitions_toml_is_valid(path):
    cfg = resolve(path.stem)  # raises on an unknown key
    assert cfg.metric is None or cfg.metric in metrics.REGISTRY
    assert cfg.to_dict() != Config().to_dict(), "a competition's TOML changes something"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('folds = "two"\n', "folds"),
        ("seed = 1.5\n", "seed"),
        ("baseline = 3\n", "baseline"),
        ('[baseline]\nepochs = "3"\n', "epochs"),
    ],
)
def test_a_value_of_the_wrong_type_is_rejected(tmp_path, text, key):
    path = _toml(tmp_path / "bad.toml", text)
    with pytest.raises(InputError, match=key):
        resolve("x", config=path)


def test_an_error_whose_fix_names_a_flag_says_which_file_set_it(tmp_path):
    # a folder named as a competition kit has a config for: its TOML applies by the name alone
    data = write_competition(tmp_path / "bike-sharing-demand", task="regression")
    with pytest.raises(
        InputError, match=r"Pass --time .*\(time = 'datetime' is set by .*bike-sharing-demand\.toml\)"
    ):
        api.load(data)
    own = _toml(tmp_path / "mine.toml", 'group = "nosuch"\n')
    with pytest.raises(InputError, match=r"Pass --group .*\(group = 'nosuch' is set by .*mine\.toml\)"):
        api.load(write_competition(tmp_path / "tiny"), config=own)
    with pytest.raises(InputError, match=r"Pass --group .*column=nosuch$"):  # a flag says no more
        api.load(tmp_path / "tiny", group="nosuch")


def test_a_run_refused_for_a_group_a_file_set_says_which_file(tmp_path):
    import numpy as np
    import polars as pl
    from conftest import write_frame

    from kit.preflight import preflight

    frame = pl.DataFrame({"id": range(60), "x": np.arange(60.0), "site": ["a"] * 60})
    data = write_frame(tmp_path / "one-site", frame, np.arange(40.0), 40)
    own = _toml(tmp_path / "mine.toml", 'group = "site"\n')
    comp, cfg = api.load(data, config=own)
    with pytest.raises(InputError, match=r"Pass --group .*\(group = 'site' is set by .*mine\.toml\)"):
        preflight(comp, cfg)
    comp, cfg = api.load(data, group="site")
    with pytest.raises(InputError, match=r"Pass --group .*groups=1$"):  # a flag says no more
        preflight(comp, cfg)
