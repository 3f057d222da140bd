"""report.html in a real browser: headless Chromium opens the report of a baseline run on titanic
(../shared/data), finds every section and a drawn chart in each that should have one, logs no
console error, and leaves a screenshot beside the test's output (its path is printed; `pytest -s`
shows it). Skipped where Chromium or ../shared is absent; `.ci/run` installs Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_competition

import kit
from kit.reporting import RUN_SECTIONS

BROWSER = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
# the flags that keep headless Chromium off the network (updates, sync, QUIC probes)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)  # fmt: skip
CONSOLE_ERROR = re.compile(r"ERROR:CONSOLE|Uncaught")

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does it)"
)


def browse(url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile:
        return subprocess.run(
            [BROWSER, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, url],
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_the_console_check_catches_an_error(tmp_path):
    """The check below would see an error: a page that throws one is caught by it."""
    page = tmp_path / "throws.html"
    page.write_text("<!DOCTYPE html><html><body><script>throw new Error('seen')</script></body></html>")
    assert CONSOLE_ERROR.search(browse(page.as_uri(), "--dump-dom").stderr)


def test_a_titanic_report_opens_in_chromium_with_every_section(tmp_path):
    data = shared_competition("titanic")
    run = kit.baseline(data, out=tmp_path / "titanic", progress=False, log=lambda _: None)
    url = run.report_path.as_uri()

    shown = browse(url, "--dump-dom")
    assert shown.returncode == 0, shown.stderr[-2000:]
    errors = [line for line in shown.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    assert not errors, errors
    dom = shown.stdout
    for key in RUN_SECTIONS:
        match = re.search(rf'<section id="{key}" data-section="{key}">(.*?)</section>', dom, re.S)
        assert match, f"section {key} is missing"
        body = match.group(1)
        assert 'class="missing"' not in body, f"section {key} says something is missing"
        if key in ("cv", "curves", "oof", "drift", "importance"):
            assert "<svg" in body and re.search(r"<(path|rect|circle) ", body), f"section {key} draws nothing"

    for width, height in ((1280, 5200), (820, 7200)):  # a laptop; a Kaggle notebook's output cell
        shot = tmp_path / f"titanic-report-{width}.png"
        taken = browse(url, f"--screenshot={shot}", f"--window-size={width},{height}")
        assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
        print(f"screenshot: {shot}")
        pixels = _grey(shot)
        # a page, not a blank: dark text and coloured charts on most of its height
        inked = (pixels < 200).any(axis=1)
        assert inked[: len(inked) // 2].mean() > 0.3


def _grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"))
