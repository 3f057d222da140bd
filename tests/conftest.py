"""Shared fixtures: the real competitions in ../shared/data and a tiny synthetic one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

# `make test` runs a worker process per core: scikit-learn's OpenMP threads, two a process, spin
# while another worker holds the cores (a trees fold of 0.2 s took 20 s beside two busy processes),
# so each worker's OpenMP keeps to one thread; set before scikit-learn loads it
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COMPETITIONS = sorted(p.name for p in SHARED_DATA.iterdir()) if SHARED_DATA.is_dir() else []


def shared_competition(name: str) -> Path:
    """Path of a real competition; the test is skipped where ../shared is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (../shared/data holds the real competitions)")
    return path


def write_frame(root: Path, frame: pl.DataFrame, y: np.ndarray, n: int) -> Path:
    """A competition folder from `frame` (with an "id" column) and its regression target `y`
    (column "y"): the first `n` rows train, the rest are the test, with a sample of zeros."""
    root.mkdir(parents=True)
    frame[:n].with_columns(pl.Series("y", y[:n])).write_csv(root / "train.csv")
    frame[n:].write_csv(root / "test.csv")
    frame[n:].select("id", pl.lit(0.0).alias("y")).write_csv(root / "sample_submission.csv")
    return root


def write_competition(
    root: Path, *, n: int = 240, task: str = "binary", seed: int = 0, positives: float | None = None
) -> Path:
    """A tiny competition folder with missing values, categories, a datetime and a sample file.
    `positives`: for a binary task, the share of "yes" (the rows with the highest noisy signal)."""
    rng = np.random.default_rng(seed)
    total = n + n // 3
    x1 = rng.normal(size=total)
    color = rng.choice(["red", "green", "blue"], size=total)
    stamp = [f"2024-01-{1 + i % 28:02d} {i % 24:02d}:00:00" for i in range(total)]
    signal = x1 + (color == "red") * 1.5
    if task == "binary":
        noisy = signal + rng.normal(scale=0.5, size=total)
        cut = 0.5 if positives is None else np.quantile(noisy, 1 - positives)
        y = np.where(noisy > cut, "yes", "no")
    elif task == "multiclass":
        y = np.digitize(signal, [-0.5, 0.8]).astype(str)
        y = np.array(["low", "mid", "high"])[y.astype(int)]
    else:
        y = 10 + 3 * signal + rng.normal(scale=0.3, size=total)
    frame = pl.DataFrame(
        {
            "row_id": np.arange(1000, 1000 + total),
            # NaN, then null below: an object array of floats and None does not cast in polars
            "x1": np.where(rng.random(total) < 0.1, np.nan, x1),
            "x2": rng.integers(0, 50, total),
            "color": np.where(rng.random(total) < 0.05, None, color),
            "when": stamp,
            "constant": ["same"] * total,
        }
    ).with_columns(pl.col("x1").fill_nan(None))
    train = frame[:n].with_columns(pl.Series("label", y[:n]))
    test = frame[n:]
    root.mkdir(parents=True, exist_ok=True)
    train.write_csv(root / "train.csv")
    test.write_csv(root / "test.csv")
    if task == "multiclass":
        sample = test.select("row_id").with_columns(
            *[pl.lit(1 / 3).alias(f"label_{c}") for c in ("high", "low", "mid")]
        )
    else:
        sample = test.select("row_id", pl.lit(y[0]).alias("label"))
    sample.write_csv(root / "sample_submission.csv")
    return root


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_competition(tmp_path / "tiny")
