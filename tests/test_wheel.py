"""Internet-off install: `make wheel` builds a pure-Python wheel that installs with
`pip install --no-index --no-deps` into an environment that already has the dependencies, as the
Kaggle image does, and runs the demo there.

The environment is a fresh venv whose site-packages holds a .pth file pointing at a folder of links
to this checkout's .venv packages, leaving out kit's editable install (so only the wheel can
provide kit) and tomli-w (the Kaggle image does not have it: the wheel carries a copy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
# not on the Kaggle image (kit must import without them), or kit itself
LEFT_OUT = ("kit-", "__editable__", "tomli_w")


def run(cmd, *, cwd, check=True, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`make wheel` on a copy of the sources, so the checkout's build/ and dist/ stay as they are."""
    if shutil.which("make") is None or not (VENV / "bin" / "python").exists():
        pytest.skip("needs make and the checkout's .venv")
    src = tmp_path_factory.mktemp("src")
    for name in ("kit", "pipelines"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "Makefile", "requirements.txt"):
        shutil.copy(REPO / name, src / name)
    (src / ".venv").symlink_to(VENV)
    # -o: the venv is already set up; never reinstall it from the copy
    run(["make", "-o", ".venv/.installed", "wheel"], cwd=src)
    (built,) = (src / "dist").glob("kit-*.whl")
    return built


def test_wheel_is_pure_python_and_carries_the_configs(wheel):
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kit/cli.py" in names and "kit/kaggle.py" in names and "kit/tfds.py" in names
    assert "kit/tracks/baseline.py" in names and "kit/tuning/workers.py" in names
    assert "kit/reporting/charts.py" in names and "kit/reporting/run_page.py" in names
    # tomli-w, which the Kaggle image lacks, with its licence
    assert {"kit/_vendor/tomli_w/__init__.py", "kit/_vendor/tomli_w/LICENSE"} <= set(names)
    configs = {p.name for p in (REPO / "pipelines" / "configs").glob("*.toml")}
    assert configs and {f"kit/configs/{c}" for c in configs} <= set(names)
    assert not [n for n in names if n.endswith((".so", ".pyd", ".c"))]


def kaggle_like_env(root: Path) -> Path:
    """A fresh venv that sees the dependencies but neither kit nor tomli-w; returns its python."""
    env = root / "env"
    run([sys.executable, "-m", "venv", "--without-pip", env], cwd=root)
    (site_packages,) = (VENV / "lib").glob("python*/site-packages")
    deps = root / "deps"
    deps.mkdir()
    for entry in site_packages.iterdir():
        if entry.name == "kit" or entry.name.startswith(LEFT_OUT) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    (env_site,) = (env / "lib").glob("python*/site-packages")
    (env_site / "image-packages.pth").write_text(f"{deps}\n")
    return env / "bin" / "python"


def test_wheel_installs_offline_and_runs_the_demo(wheel, tmp_path):
    python = kaggle_like_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    probe = "import kit, kit.config; print(kit.__file__); print(kit.config.CONFIG_DIR); print(kit.config.tomli_w.__file__)"
    missing = run([python, "-c", probe], cwd=work, check=False)
    assert missing.returncode != 0 and "No module named 'kit'" in missing.stderr

    run(
        [
            VENV / "bin" / "python",
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-index",
            "--no-deps",
            wheel,
        ],
        cwd=work,
    )
    kit_file, config_dir, tomli_w = run([python, "-c", probe], cwd=work).stdout.split()
    env_site = str(python.parent.parent / "lib")
    assert kit_file.startswith(env_site) and config_dir.startswith(env_site)
    assert tomli_w.startswith(f"{Path(kit_file).parent}/_vendor/")  # not in the image: the wheel's copy
    assert (Path(config_dir) / "titanic.toml").is_file()

    (work / "fast.toml").write_text("[baseline]\nepochs = 3\npatience = 2\n")
    done = run([python.parent / "kit", "baseline", "--folds", "2", "--config", "fast.toml"], cwd=work)
    assert "CV accuracy" in done.stdout
    (run_dir,) = (work / "submissions" / "penguins-demo").iterdir()
    submission = pl.read_csv(run_dir / "submission.csv")
    test = pl.read_csv(work / "data" / "penguins-demo" / "test.csv")
    assert submission["id"].to_list() == test["id"].to_list()
    assert set(submission["Sex"]) <= {"MALE", "FEMALE"}
    assert "Out-of-fold diagnostics" in (run_dir / "report.html").read_text()
    # written with the wheel's tomli-w, read back by tomllib: the run can be reproduced from it
    resolved = tomllib.loads((run_dir / "config.toml").read_text())
    assert resolved["folds"] == 2 and resolved["baseline"]["epochs"] == 3
    assert resolved["target"] == "Sex"
