"""Kaggle notebooks: /kaggle/input/<competition> recognised, outputs only under /kaggle/working, and
the final submission copied to /kaggle/working/submission.csv. The layout is faked in a temporary
folder through KIT_KAGGLE_INPUT and KIT_KAGGLE_WORKING."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from conftest import write_competition

import kit
from kit import cli, kaggle
from kit.errors import InputError
from kit.run import Run


def snapshot(root: Path) -> dict[str, float]:
    """Every file under `root` with its modification time: what a run must leave alone."""
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.fixture
def fake_kaggle(tmp_path, monkeypatch):
    """A Kaggle layout: input/ and working/ folders, run from an unrelated current folder."""
    layout = {name: tmp_path / name for name in ("input", "working", "elsewhere")}
    for path in layout.values():
        path.mkdir()
    monkeypatch.setenv(kaggle.INPUT_ENV, str(layout["input"]))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(layout["working"]))
    # a notebook may change folder; kit's default outputs must still land in the working folder
    monkeypatch.chdir(layout["elsewhere"])
    return layout


@pytest.fixture
def fast_config(tmp_path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text("folds = 2\n[baseline]\nepochs = 3\npatience = 2\n")
    return path


def test_off_kaggle_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "no-working"))
    assert not kaggle.on_kaggle()
    assert kaggle.submissions_root() == Path("submissions")
    assert kaggle.data_root() == Path("data")
    assert kaggle.resolve_data("titanic") == Path("titanic")
    assert kaggle.resolve_data(None) is None


def test_baseline_on_kaggle_writes_only_to_working_and_publishes(fake_kaggle, fast_config):
    comp_dir = write_competition(fake_kaggle["input"] / "tiny-comp")
    # an older submission from an earlier session is replaced, not appended to
    (fake_kaggle["working"] / "submission.csv").write_text("stale\n")
    before_input = snapshot(fake_kaggle["input"])

    run = kit.baseline("tiny-comp", config=fast_config, seed=0, progress=False, log=lambda _: None)

    working = fake_kaggle["working"]
    assert run.submission_path == working / "submission.csv"
    assert run.run_dir.parent == working / "submissions" / "tiny-comp"
    assert run.submission_path.read_bytes() == (run.run_dir / "submission.csv").read_bytes()
    submitted = pl.read_csv(run.submission_path)
    assert submitted.columns == ["row_id", "label"]
    assert submitted["row_id"].to_list() == pl.read_csv(comp_dir / "test.csv")["row_id"].to_list()
    # atomic copy: no temporary files left beside it
    assert sorted(p.name for p in working.iterdir()) == ["submission.csv", "submissions"]
    # nothing outside the working folder
    assert snapshot(fake_kaggle["input"]) == before_input
    assert list(fake_kaggle["elsewhere"].iterdir()) == []
    # the leaderboard looks where the runs went
    board = kit.leaderboard()
    assert board["run_dir"].to_list() == [str(run.run_dir)]


def test_attached_competition_is_the_default(fake_kaggle, capsys):
    # the wheel's dataset is attached too; it has no train/test files and is not a competition
    (fake_kaggle["input"] / "kit-wheel").mkdir()
    (fake_kaggle["input"] / "kit-wheel" / "kit-0.1.0-py3-none-any.whl").write_bytes(b"")
    write_competition(fake_kaggle["input"] / "tiny-comp")
    comp = kit.inspect()
    assert comp.name == "tiny-comp" and comp.target == "label"
    assert cli.main(["inspect"]) == 0  # the command too, as `kit baseline` with no folder
    assert "tiny-comp" in capsys.readouterr().out


def test_competition_found_one_level_down(fake_kaggle):
    write_competition(fake_kaggle["input"] / "competitions" / "tiny-comp")
    assert kaggle.resolve_data("tiny-comp") == fake_kaggle["input"] / "competitions" / "tiny-comp"
    assert kaggle.competitions() == [fake_kaggle["input"] / "competitions" / "tiny-comp"]
    # a local folder of the same name wins over the input mount
    (fake_kaggle["elsewhere"] / "tiny-comp").mkdir()
    assert kaggle.resolve_data("tiny-comp") == Path("tiny-comp")


def test_without_a_competition_the_demo_is_built_in_working(fake_kaggle):
    comp = kit.inspect()
    assert comp.name == "penguins-demo"
    assert comp.root.resolve() == (fake_kaggle["working"] / "data" / "penguins-demo").resolve()
    assert list(fake_kaggle["elsewhere"].iterdir()) == []


def test_two_competitions_need_a_name(fake_kaggle, capsys):
    write_competition(fake_kaggle["input"] / "a")
    write_competition(fake_kaggle["input"] / "b")
    # not the demo, whose submission would replace the working folder's
    with pytest.raises(
        InputError, match=r"2 competitions are attached to this notebook \(a, b\); pass the one"
    ):
        kaggle.resolve_data(None)
    assert cli.main(["baseline"]) == 2 and "kit baseline a" in capsys.readouterr().err
    assert (
        not (fake_kaggle["working"] / "data").exists()
        and not (fake_kaggle["working"] / "submission.csv").exists()
    )
    assert kit.inspect("b").name == "b"


def test_kaggle_detection_needs_both_folders(tmp_path, monkeypatch):
    (tmp_path / "input").mkdir()
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(tmp_path / "working"))
    assert not kaggle.on_kaggle()
    os.mkdir(tmp_path / "working")
    assert kaggle.on_kaggle()


def fake_run(run_dir: Path, content: str) -> Run:
    run_dir.mkdir(parents=True)
    (run_dir / "submission.csv").write_text(content)
    empty = pl.DataFrame()
    return Run(
        "c", "baseline", "accuracy", 0.5, [0.5], run_dir, run_dir / "submission.csv", empty, empty, 1.0
    )


def test_publishing_an_earlier_run_brings_its_submission_back(fake_kaggle):
    runs = fake_kaggle["working"] / "submissions" / "c"
    first = kaggle.publish(fake_run(runs / "first", "id,y\n1,a\n"), log=lambda _: None)
    second = kaggle.publish(fake_run(runs / "second", "id,y\n1,b\n"), log=lambda _: None)
    target = fake_kaggle["working"] / "submission.csv"
    assert first.submission_path == second.submission_path == target
    assert target.read_text() == "id,y\n1,b\n"
    # the best run is often not the last one: publishing it again puts its own file back
    kaggle.publish(first, log=lambda _: None)
    assert target.read_text() == "id,y\n1,a\n"
    assert (runs / "second" / "submission.csv").read_text() == "id,y\n1,b\n"


def test_off_kaggle_publish_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "no-input"))
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path / "run", "id,y\n1,a\n")
    assert kaggle.publish(run) is run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_blend_takes_an_attached_competitions_name_as_the_other_commands_do(fake_kaggle, fast_config):
    write_competition(fake_kaggle["input"] / "tiny-comp")
    for track in (kit.trees, kit.linear):
        track("tiny-comp", config=fast_config, progress=False, log=lambda _: None)
    run = kit.blend("tiny-comp", log=lambda _: None)
    assert run.run_dir.parent == fake_kaggle["working"] / "submissions" / "tiny-comp"
    assert run.submission_path == fake_kaggle["working"] / "submission.csv"
