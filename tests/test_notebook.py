"""pipelines/kaggle.ipynb runs top to bottom (executed, not parsed) on the demo competition, in a
kernel on this venv's python, inside a faked Kaggle layout: its outputs land in the working folder
and the best run's submission becomes /kaggle/working/submission.csv."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import polars as pl
from nbclient import NotebookClient

import kit
from kit import kaggle

NOTEBOOK = Path(__file__).resolve().parents[1] / "pipelines" / "kaggle.ipynb"
# few folds, epochs and trials: the test checks that the path works, not the scores
FAST = """
[baseline]
epochs = 3
patience = 2

[advanced]
epochs = 2
patience = 2
"""


def with_parameters(nb, **values):
    """Insert a cell after the one tagged `parameters`, as papermill does."""
    (index,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    source = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def venv_kernel(root: Path) -> str:
    """A kernelspec for this interpreter, so the notebook cannot run on some other python."""
    spec = root / "kernels" / "kit-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "kit", "language": "python"}))
    return "kit-test"


def test_kaggle_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    working = tmp_path / "working"
    for folder in (tmp_path / "input", working, tmp_path / "jupyter"):
        folder.mkdir()
    monkeypatch.setenv(kaggle.INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(kaggle.WORKING_ENV, str(working))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    (working / "fast.toml").write_text(FAST)

    nb = with_parameters(nbformat.read(NOTEBOOK, as_version=4), CONFIG="fast.toml", FOLDS=2, TRIALS=2)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(
        nb,
        kernel_name=venv_kernel(tmp_path / "jupyter"),
        timeout=300,
        resources={"metadata": {"path": str(working)}},
    )
    client.execute()

    text = lambda cell: "".join(o.get("text", "") for o in cell.get("outputs", []))  # noqa: E731
    assert text(nb.cells[-1]).strip() == sys.executable
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

    # the demo was built in the working folder, and every track ran there
    runs = sorted(p.name for p in (working / "submissions" / "penguins-demo").iterdir())
    tracks = [n.rsplit("-", 1)[-1] for n in runs if n != "tune-baseline"]
    assert "tune-baseline" in runs and sorted(tracks) == ["advanced", "baseline", "baseline"], runs
    submission = pl.read_csv(working / "submission.csv")
    test = pl.read_csv(working / "data" / "penguins-demo" / "test.csv")
    assert submission["id"].to_list() == test["id"].to_list()
    # the last cell published the best run's submission, which it named
    (final,) = [c for c in nb.cells if "publish(best)" in c.source]
    assert f"submission: {working / 'submission.csv'}" in text(final)
    board = kit.leaderboard()
    best = board.filter(board["score"] == board["score"][0])["run_dir"]
    published = (working / "submission.csv").read_bytes()
    assert any(published == (Path(d) / "submission.csv").read_bytes() for d in best)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input", "jupyter", "working"]
