"""Optuna tuning of a track: search spaces, a seeded TPE sampler, pruning fed every epoch, a storage
that parallel workers share, resume after a kill, and a time budget.

A trial is one cross-validation of the track (`kit.run.cross_validate`) with sampled parameters;
its value is the CV score. Everything a study needs lives in one tuning folder:

    study.journal        the Optuna journal (default storage; any storage URL works instead)
    trials/NNNN/         the run folder of the best trial so far (worse ones are removed)
    best/                the best trial's run folder: submission.csv, oof.parquet, ...
    best.toml            `kit baseline DIR --config best.toml` reruns the best parameters
    trials.csv           every trial: state, value, duration, parameters, worker, its memory
    history.png, importances.png, summary.json

Running the same command again continues the study: finished trials are kept, and a trial whose
worker died (SIGKILL, out of memory, Ctrl-C, the time budget) is run again with the same parameters.
Trials run in a worker process that gets the loaded competition once and is replaced when its
memory has grown (see `tune`); several commands on one storage are parallel workers.

Example:
    >>> comp, cfg = kit.load("data/titanic", folds=3)
    >>> result = tune(comp, cfg, fit_predict_fold, track="baseline", n_trials=30)
    >>> result.best_score, result.best_config
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import functools
import inspect
import json
import logging
import math
import os
import pickle
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import psutil
from optuna.trial import TrialState

from kit import kaggle, metrics
from kit.competition import Competition
from kit.config import TRACK_DEFAULTS, Config, dumps
from kit.errors import InputError
from kit.prep import SCALINGS
from kit.run import Fold, cross_validate

# What each track searches. An entry is {low, high} (optionally log = true or step = ...),
# {choices = [...]}, or a plain value, which fixes the parameter. A competition's TOML changes
# entries key by key in a [search.<track>] table:
#
#     [search.baseline]
#     learning_rate = { low = 3e-4, high = 3e-3, log = true }
#     units = { choices = [[128, 64], [256, 128]] }
#     scaling = "standard"       # no longer searched
#     patience = { low = 5, high = 30 }
SEARCH_SPACES: dict[str, dict[str, dict]] = {
    "baseline": {
        "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
        # width and depth together: a few tapering shapes search better than free widths per layer
        "units": {"choices": [[128], [256], [128, 64], [256, 128], [512, 256], [256, 128, 64]]},
        "dropout": {"low": 0.0, "high": 0.5},
        "batch_size": {"choices": [0, 64, 128, 256, 512]},  # 0: chosen from the number of rows
        "embedding_size": {"choices": [0, 4, 8, 16]},  # 0: chosen per column from its cardinality
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "scaling": {"choices": list(SCALINGS)},
    },
    "advanced": {
        "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
        "units": {"choices": [[256, 128], [512, 256], [1024, 512], [512, 256, 128]]},
        "dropout": {"low": 0.0, "high": 0.4},
        "batch_size": {"choices": [0, 128, 256, 512, 1024]},  # per replica; 0: from the number of rows
        "embedding_size": {"choices": [0, 8, 16, 32]},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        # numeric columns go in as embedded quantile bins: the bin count is its "scaling choice"
        "n_bins": {"choices": [8, 16, 32, 64]},
        "warmup": {"low": 0.0, "high": 0.1},
        "ema": {"choices": [0.0, 0.99, 0.999]},
    },
}
TRACKS = ("baseline", "advanced")
PRUNERS = ("median", "hyperband", "none")
SEARCH_SETTINGS = ("pruner",)  # [search] keys that are not track tables
DEFAULT_TRIALS = 50
# a trial that keeps killing its worker (out of memory, ...) is dropped after this many retries
MAX_RETRY = 2
# a worker that fails this many trials in a row has a bug, not bad luck: stop and show it
MAX_CONSECUTIVE_FAILURES = 3
# database storages: a running trial whose worker stopped beating for GRACE_S seconds is retried
HEARTBEAT_S, GRACE_S = 30, 90
# a worker process whose memory grew this much since its first trial hands over to a fresh one:
# a trial leaves about 16 MiB behind (titanic, house-prices), so one worker runs about 8 trials,
# and a worker's start (4-5 s) costs under a tenth of their time. 384 let the peak grow by a third
# between trial 5 and trial 30; 128 keeps it within about a tenth (make bench-tune)
RECYCLE_MIB = 128
# epochs the pruner never prunes in: early epochs say more about the learning rate than about
# where a configuration ends up (5 pruned three quarters of the trials on house-prices)
WARMUP_EPOCHS = 10


# Optuna 4.9 renamed the retry callback and the RDBStorage keyword; the Kaggle image may be older
_RETRY = (
    getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    or optuna.storages.RetryFailedTrialCallback
)
_STALE = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
    else "failed_trial_callback"
)


class OutOfTime(Exception):
    """The time budget ran out in the middle of a trial."""


@dataclass
class TuneResult:
    """What a tuning call leaves: the study, the best trial and where its files are."""

    study: optuna.Study
    track: str
    metric: str
    best_score: float | None
    best_trial: int | None
    best_params: dict | None
    n_complete: int
    n_pruned: int
    n_failed: int
    out: Path
    best_config: Path | None
    best_run: Path | None
    seconds: float

    def __repr__(self) -> str:
        score = "none" if self.best_score is None else f"{self.best_score:.5f}"
        return (
            f"TuneResult({self.track}, {self.metric}={score}, {self.n_complete} complete, "
            f"{self.n_pruned} pruned, {self.out})"
        )


# ---------------------------------------------------------------------------------------------
# search spaces


def search_space(track: str, cfg: Config) -> tuple[dict[str, dict], dict]:
    """The track's search space with the config's [search.<track>] table applied.

    Returns:
        (space, fixed): the searched parameters with their specs, and the parameters the
        [search] table fixes to a plain value.
    """
    check_search_table(cfg.search)
    params = {**TRACK_DEFAULTS.get(track, {}), **getattr(cfg, track)}
    known = set(params)
    space = {}
    for name, spec in SEARCH_SPACES.get(track, {}).items():
        spec = _check_spec(track, name, spec, params.get(name))
        # the competition's own choice stays reachable (house-prices sets scaling = "power"), so
        # trial 0 can rerun the untuned track exactly
        if "choices" in spec and name in params and params[name] not in spec["choices"]:
            spec["choices"] = [*spec["choices"], params[name]]
        space[name] = spec
    fixed = {}
    for name, spec in cfg.search.get(track, {}).items():
        if name not in known:
            raise InputError(
                f"[search.{track}] names '{name}', which is not a {track} parameter. Use one of: "
                f"{', '.join(sorted(known))}. Received: {name}={spec!r}"
            )
        space.pop(name, None)
        if isinstance(spec, dict):
            space[name] = _check_spec(track, name, spec, params.get(name))
        else:
            fixed[name] = spec
    if not space:
        raise InputError(
            f"The {track} search space is empty. Add entries to [search.{track}] in the competition's "
            f"TOML, e.g. learning_rate = {{ low = 1e-4, high = 1e-2, log = true }}. Received: {cfg.search}"
        )
    return space, fixed


def check_search_table(search: dict) -> None:
    """Reject [search] keys that are neither a track table nor a known setting."""
    for key, value in search.items():
        if key in TRACKS:
            if not isinstance(value, dict):
                raise InputError(
                    f"[search] key '{key}' must be a table of parameter ranges, "
                    f"e.g. [search.{key}]. Received: {key}={value!r}"
                )
        elif key == "pruner":
            if value not in PRUNERS:
                raise InputError(
                    f"Unknown pruner '{value}'. Use one of: {', '.join(PRUNERS)}. Received: {value}"
                )
        else:
            raise InputError(
                f"Unknown [search] setting '{key}'. Use a track table ({', '.join(TRACKS)}) or one of: "
                f"{', '.join(SEARCH_SETTINGS)}. Received: {key}={value!r}"
            )


def _check_spec(track: str, name: str, spec: dict, default) -> dict:
    where = f"[search.{track}] entry '{name}'"
    unknown = set(spec) - {"low", "high", "log", "step", "choices"}
    if unknown or ("choices" in spec) == ("low" in spec or "high" in spec):
        raise InputError(
            f"{where} must be {{ low = ..., high = ... }} (with log = true or step = ... if you like), "
            f"{{ choices = [...] }}, or a plain value that fixes it. Received: {name}={spec!r}"
        )
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise InputError(f"{where} needs a non-empty list of choices. Received: choices={choices!r}")
        return {"choices": choices}
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise InputError(f"{where} needs numbers with low < high. Received: low={low!r}, high={high!r}")
    if spec.get("log") and (low <= 0 or "step" in spec):
        raise InputError(
            f"{where} is on a log scale, which needs low > 0 and no step. Received: {name}={spec!r}"
        )
    # the type of the track's default decides: learning_rate = {low = 1, high = 2} is still a float
    is_int = isinstance(default, int) and not isinstance(default, bool)
    if default is None:
        is_int = all(isinstance(v, int) for v in (low, high, spec.get("step", 1)))
    return {**spec, "int": is_int}


def _encode(choice):
    """Optuna's choices are scalars; a list choice (a layer shape) travels as "256,128"."""
    return ",".join(str(v) for v in choice) if isinstance(choice, list) else choice


def suggest(trial: optuna.Trial, space: dict[str, dict]) -> dict:
    """Sample one value per searched parameter, in the track's own types."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            decoded = {_encode(c): c for c in spec["choices"]}
            params[name] = decoded[trial.suggest_categorical(name, list(decoded))]
        elif spec["int"]:
            step = int(spec.get("step", 1))
            params[name] = trial.suggest_int(
                name, spec["low"], spec["high"], step=step, log=bool(spec.get("log"))
            )
        else:
            params[name] = trial.suggest_float(
                name, spec["low"], spec["high"], step=spec.get("step"), log=bool(spec.get("log"))
            )
    return params


def decode(space: dict[str, dict], sampled: dict) -> dict:
    """A finished trial's Optuna parameters in the track's own types (lists back from "256,128")."""
    out = {}
    for name, value in sampled.items():
        spec = space.get(name, {})
        out[name] = {_encode(c): c for c in spec.get("choices", [])}.get(value, value)
    return out


# ---------------------------------------------------------------------------------------------
# callbacks the tracks call after every epoch


@functools.cache
def _callbacks() -> dict[str, type]:
    """The Keras callbacks, built on first use: the process that only coordinates workers (and
    opens the storage, writes the plots) never imports TensorFlow."""
    import keras

    class TrialPruning(keras.callbacks.Callback):
        """Reports each epoch's `val_score` to an Optuna trial; raises `optuna.TrialPruned` when the
        pruner says so.

        Works from `model.fit(callbacks=...)` and from a custom loop that calls `on_epoch_end` itself.
        Every fold is reported, on steps `fold * steps_per_fold + epoch`: fold k's epoch e lands on the
        same step in every trial, so other trials' values at a step are always the same fold at the
        same epoch. The median pruner weighs the trial's best value so far against them, so a trial is
        judged mostly on its first fold (where pruning saves the most), and a later fold can still stop
        it when it falls behind the others there.
        """

        def __init__(
            self, trial: optuna.Trial, *, fold: int, steps_per_fold: int, monitor: str = "val_score"
        ):
            super().__init__()
            self.trial, self.fold, self.steps_per_fold, self.monitor = trial, fold, steps_per_fold, monitor

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(self.monitor)
            if value is None:
                raise KeyError(
                    f"TrialPruning needs logs['{self.monitor}'] after each epoch: the track must put the "
                    f"competition metric on the validation fold there. Received: logs keys {sorted(logs or {})}"
                )
            self.trial.report(float(value), self.fold * self.steps_per_fold + epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at fold {self.fold + 1}, epoch {epoch + 1}")

    class StopAtDeadline(keras.callbacks.Callback):
        """Raises `OutOfTime` when the next epoch would end past `deadline` (a `time.monotonic()` value).

        Epoch times are measured as the folds go and kept in `timing`, shared by all the folds and
        trials of a worker, so a fold is not even started when its first epoch (the slowest: it also
        traces the graph) cannot end in time. A custom loop that only calls `on_epoch_end` gets the
        check after each epoch.
        """

        def __init__(self, deadline: float, timing: dict):
            super().__init__()
            self.deadline, self.timing = deadline, timing
            self._last = None

        def on_train_begin(self, logs=None):
            self._last = time.monotonic()
            if self._last + self.timing.get("first_epoch", 0.0) >= self.deadline:
                raise OutOfTime("the time budget ran out before a fold")

        def on_epoch_end(self, epoch, logs=None):
            now = time.monotonic()
            if self._last is not None:
                self.timing["first_epoch" if epoch == 0 else "epoch"] = now - self._last
            self._last = now
            if now + self.timing.get("epoch", 0.0) >= self.deadline:
                raise OutOfTime(f"the time budget ran out at epoch {epoch + 1}")

    return {"TrialPruning": TrialPruning, "StopAtDeadline": StopAtDeadline}


def __getattr__(name: str):
    # `kit.tuning.TrialPruning` and `kit.tuning.StopAtDeadline` without importing Keras up front
    if name in ("TrialPruning", "StopAtDeadline"):
        return _callbacks()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# sampler, pruner, storage


class PerTrialSeedSampler(optuna.samplers.BaseSampler):
    """`TPESampler(seed=seed + trial.number)` for each trial; trial 0 starts from `start`.

    One seeded TPESampler per worker would make two workers started with the same command draw
    the same parameters for their first trials. Seeding by trial number keeps a one-worker study
    reproducible and gives parallel workers different draws. TPE itself keeps no state between
    trials (it reads the finished trials from the storage), so a fresh one per trial loses nothing.

    `start` (the track's defaults, in Optuna's encoding) is trial 0's draw wherever the space holds
    it: the study then never ends below the untuned track, and TPE searches around a good point.
    Trial numbers are handed out by the storage, so parallel workers run it once.
    """

    def __init__(self, *, seed: int, start: dict | None = None, **tpe_kwargs):
        # constant liar: a worker's draw steers clear of the trials other workers are running
        tpe_kwargs.setdefault("constant_liar", True)
        self.seed, self.start, self.tpe_kwargs = seed, start or {}, tpe_kwargs
        self._tpe = optuna.samplers.TPESampler(seed=seed, **tpe_kwargs)
        self._first = False

    def before_trial(self, study, trial):
        self._first = trial.number == 0
        self._tpe = optuna.samplers.TPESampler(seed=self.seed + trial.number, **self.tpe_kwargs)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        value = self.start.get(param_name)
        if self._first and value is not None and _holds(param_distribution, value):
            return value
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self._tpe.reseed_rng()


def _holds(distribution, value) -> bool:
    """Whether an Optuna distribution can take `value` as it is."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not distribution.low <= value <= distribution.high:
        return False
    step = getattr(distribution, "step", None)
    return step is None or math.isclose(
        (value - distribution.low) / step, round((value - distribution.low) / step)
    )


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=WARMUP_EPOCHS)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=WARMUP_EPOCHS, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise InputError(f"Unknown pruner '{name}'. Use one of: {', '.join(PRUNERS)}. Received: pruner={name}")


def open_storage(storage: str | Path) -> optuna.storages.BaseStorage:
    """A journal file (a path) or a database (a URL with '://').

    A journal file is safe for several workers on one machine (it locks the file). A database
    serves workers on several machines; its trials send heartbeats, so a trial whose machine
    died is failed and retried by the other workers after `GRACE_S` seconds.
    """
    text = str(storage)
    if "://" not in text:
        path = Path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        _repair_journal(path)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    # workers started together on a new database all create its tables; the losers of that race
    # get a duplicate-key error and find the tables there when they try again
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    text,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    **{_STALE: _RETRY(max_retry=MAX_RETRY)},
                )
        except ImportError:
            raise InputError(
                "The storage URL needs a database driver that is not installed: for PostgreSQL run "
                "pip install 'psycopg[binary]', for MySQL pip install PyMySQL. "
                f"Received: storage={_safe_url(text)}"
            ) from None
        except Exception as err:  # SQLAlchemy raises many types: bad URL, refused connection, ...
            failure = err
            # SQLite says "database is locked" (OperationalError) where a server says duplicate key;
            # a server's OperationalError is a refused connection, which waiting does not fix
            retry_on = (
                "IntegrityError",
                "ProgrammingError",
                *(("OperationalError",) if text.startswith("sqlite") else ()),
            )
            if type(err).__name__ not in retry_on:
                break
            time.sleep(0.2 + random.random() * attempt)
    raise InputError(
        f"Could not open the storage: {type(failure).__name__}: {str(failure).splitlines()[0]}. Check "
        f"the URL and that the server is up. Received: storage={_safe_url(text)}"
    ) from None


def _repair_journal(path: Path) -> None:
    """Drop the half line a worker killed while appending leaves at the end of the journal.

    Optuna refuses a journal with a broken line in the middle, so without this every append after
    the kill would make the file unreadable. The journal's own lock keeps other writers out.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    lock = optuna.storages.journal.JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = path.read_bytes()
            handle.truncate(data.rfind(b"\n") + 1)
    finally:
        lock.release()


def _safe_url(url: str) -> str:
    """The URL without its password, for logs and summary.json."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.rsplit("@", 1)
    return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}" if ":" in auth else url


# ---------------------------------------------------------------------------------------------
# workers: who runs a trial, and what happens to the trials of a worker that died


def worker_attrs() -> dict:
    """Identifies this process: machine, pid and the pid's start time (pids get reused)."""
    return {
        "host": f"{socket.gethostname()}/{uuid.getnode():012x}",
        "pid": os.getpid(),
        "pid_started": psutil.Process().create_time(),
    }


def _worker_alive(attrs: dict) -> bool:
    try:
        return abs(psutil.Process(attrs["pid"]).create_time() - attrs["pid_started"]) < 0.01
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError):
        return False


def retry(study: optuna.Study, number: int) -> bool:
    """Fail a running trial and queue its parameters again; False if another worker got there first."""
    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        # it was no longer running: someone else failed (and requeued) it, or it finished
        return False
    return requeue(study, number)


def requeue(study: optuna.Study, number: int) -> bool:
    """Queue a failed trial's parameters as a new trial (up to MAX_RETRY times per original trial)."""
    failed = study.get_trials(deepcopy=True)[number]
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _RETRY(max_retry=MAX_RETRY)(study, failed)
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) > before


def recover_interrupted(study: optuna.Study, *, log: Callable[[str], None] = print) -> list[int]:
    """Retry the running trials whose worker on this machine is gone (killed, crashed).

    Workers on other machines are judged by their heartbeats instead (database storages).
    """
    host = worker_attrs()["host"]
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == host and not _worker_alive(attrs) and retry(study, trial.number):
            log(
                f"trial {trial.number} was interrupted (worker {attrs.get('pid')} is gone); it will run again"
            )
            recovered.append(trial.number)
    return recovered


# ---------------------------------------------------------------------------------------------
# the study


def tune(
    comp: Competition,
    cfg: Config,
    fit_predict_fold: Callable[[Fold, dict], tuple[np.ndarray, np.ndarray]],
    *,
    track: str,
    n_trials: int | None = None,
    time_budget: float | None = None,
    storage: str | Path | None = None,
    study_name: str | None = None,
    pruner: str | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    processes: bool = True,
    recycle_mib: float = RECYCLE_MIB,
    progress: bool | None = None,
) -> TuneResult:
    """Run (or continue) an Optuna study over the track's parameters; write best.toml and the rest.

    Trials run in a worker process that loads the data once and is replaced by a fresh one when
    its memory has grown by `RECYCLE_MIB`: Keras and TensorFlow keep about 16 MiB of every trial's
    models in a process, `clear_session()` or not, so memory stays flat only this way.

    Args:
        n_trials: finished (complete or pruned) trials the study should reach, counting trials of
            earlier runs and of other workers. Default 50, or no limit when `time_budget` is set.
        time_budget: seconds for this call, a trial in progress included: it is stopped at an
            epoch end before the budget runs out and run again by the next call.
        storage: a journal file path or an Optuna storage URL; default `<out>/study.journal`.
        study_name: default `<competition>-<track>`.
        pruner: "median" (default), "hyperband" or "none"; the TOML's [search] pruner otherwise.
        out: the tuning folder; default `submissions/<competition>/tune-<track>/`, so running
            the same command again continues the same study.
        processes: False runs the trials in this process (memory then grows with each trial).
        recycle_mib: memory growth (MiB) after which a worker process hands over to a fresh one.
        progress: a bar over the trials (True, False, or None: only where a terminal or notebook
            shows it).

    Returns:
        A `TuneResult`.
    """
    started = time.monotonic()
    # every check before anything is written
    if n_trials is not None and n_trials < 1:
        raise InputError(f"--trials must be at least 1. Received: trials={n_trials}")
    if time_budget is not None and time_budget <= 0:
        raise InputError(f"--time-budget must be a positive number of seconds. Received: {time_budget}")
    if n_trials is None and time_budget is None:
        n_trials = DEFAULT_TRIALS
    space, fixed = search_space(track, cfg)
    pruner = pruner or cfg.search.get("pruner", "median")
    make_pruner(pruner)
    # the track's defaults under the config's values: best.toml then lists every parameter
    base = {**TRACK_DEFAULTS.get(track, {}), **getattr(cfg, track), **fixed}
    metric = metrics.get(comp.metric)
    out = Path(out) if out is not None else kaggle.submissions_root() / comp.name / f"tune-{track}"
    storage = str(storage if storage is not None else out / "study.journal")
    # the most epochs a fold can run: every trial reports fold k on the same steps
    spec = space.get("epochs", {})
    steps_per_fold = int(max(base.get("epochs") or 0, spec.get("high", 0), *spec.get("choices", [0]))) or 1000
    plan = Plan(
        comp=comp,
        cfg=cfg,
        fit_predict_fold=fit_predict_fold,
        track=track,
        space=space,
        base=base,
        trials_dir=out / "trials",
        steps_per_fold=steps_per_fold,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name or f"{comp.name}-{track}",
        pruner=pruner,
        direction=metric.direction,
        recycle_mib=recycle_mib,
    )
    opened = open_storage(storage)  # a database that cannot be reached leaves no folder behind
    out.mkdir(parents=True, exist_ok=True)
    # the summary step (plots, copies) needs a few seconds of the budget too
    deadline = started + time_budget - min(10.0, max(1.0, 0.05 * time_budget)) if time_budget else None
    with _optuna_quiet():
        study = plan.study(opened)
        if study.direction.name.lower() != metric.direction:
            raise InputError(
                f"Study '{plan.study_name}' in {storage} was made to {study.direction.name.lower()}, but "
                f"{comp.metric} is to {metric.direction}. Pass --study with a new name. Received: metric={comp.metric}"
            )
        log(
            f"{comp.name}: tuning {track} ({len(space)} parameters: {', '.join(space)}), "
            f"study '{plan.study_name}' in {_safe_url(storage)}, {comp.metric} ({metric.direction}), "
            f"{pruner} pruner, {_limits(n_trials, time_budget)}"
        )
        recover_interrupted(study, log=log)
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        trial_bar = _trial_bar(comp.name, track, n_trials, len(finished), progress)
        if log is print and not trial_bar.disable:
            log = trial_bar.write  # lines go above the bar, not through it

        def on_trial(best: float | None) -> None:
            trial_bar.update(1)
            if best is not None:
                trial_bar.set_postfix(best=f"{best:.5f}", refresh=False)

        try:
            _run_workers(plan, study, deadline=deadline, processes=processes, log=log, on_trial=on_trial)
        except KeyboardInterrupt:
            recover_interrupted(study, log=log)
            log("interrupted: finished trials are kept in the study; run the same command to go on")
            raise
        finally:
            trial_bar.close()
        return summarize(
            study,
            plan=plan,
            metric=metric,
            out=out,
            started=started,
            can_refit=deadline is None or time.monotonic() < deadline,
            log=log,
        )


def _trial_bar(name: str, track: str, n_trials: int | None, done: int, progress: bool | None):
    """A bar over the study's finished trials; no total when only a time budget limits it."""
    from kit.progress import bar

    total = max(n_trials, done) if n_trials is not None else None
    disable = None if progress is None else not progress
    return bar(total, initial=done, desc=f"{name} {track}", unit="trial", disable=disable)


def _run_workers(plan: Plan, study: optuna.Study, *, deadline, processes: bool, log, on_trial=None) -> None:
    """Worker processes one after another, each until the study has enough, the time is up, or
    its memory grew by RECYCLE_MIB."""
    if processes and not _importable(plan.fit_predict_fold):
        log(
            "note: fit_predict_fold is defined in the running script or notebook, where a worker process "
            "cannot import it; trials run in this process, whose memory grows a little with each one"
        )
        processes = False
    deaths = 0
    while True:
        # a worker process needs seconds to start (TensorFlow's import): measured, and kept in the
        # study so that the next call knows it too
        start = study.user_attrs.get("worker_start_seconds", 0.0) if processes else 0.0
        if out_of_time(study, deadline, extra=start):
            log("the time left is shorter than a trial: no more trials")
            break
        if enough(study, plan.n_trials):
            break
        if not processes:
            run_trials(plan, deadline=deadline, log=log, recycle_mib=None, on_trial=on_trial)
            break
        reason = _run_worker_process(plan, study, deadline=deadline, log=log, on_trial=on_trial)
        if reason == "died":
            # killed from outside (out of memory, ...): its trial is queued again; a worker
            # that keeps dying is not bad luck
            recover_interrupted(study, log=log)
            deaths += 1
            if deaths >= MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(f"the worker process died {deaths} times in a row; see the messages above")
            continue
        deaths = 0
        if reason != "recycle":
            break
        log(f"the worker's memory grew by over {plan.recycle_mib:g} MiB; a fresh worker process goes on")


@contextlib.contextmanager
def _optuna_quiet():
    """Optuna's own line per trial off while tuning (kit prints its own), and TensorFlow's warning
    that predict functions are retraced (each trial builds new models, so they must be); both
    back as they were after."""
    verbosity = optuna.logging.get_verbosity()
    tf_logger = logging.getLogger("tensorflow")
    tf_level = tf_logger.level
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        tf_logger.setLevel(tf_level)


def _limits(n_trials, time_budget) -> str:
    parts = [f"until {n_trials} finished trials" if n_trials else "no trial limit"]
    if time_budget:
        parts.append(f"time budget {time_budget:g} s")
    return ", ".join(parts)


@dataclass
class Plan:
    """Everything a worker process needs to run trials of one study (it travels by pickle)."""

    comp: Competition
    cfg: Config
    fit_predict_fold: Callable
    track: str
    space: dict
    base: dict
    trials_dir: Path
    steps_per_fold: int
    n_trials: int | None
    storage: str
    study_name: str
    pruner: str
    direction: str
    recycle_mib: float = RECYCLE_MIB

    def study(self, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
        return optuna.create_study(
            storage=storage if storage is not None else open_storage(self.storage),
            study_name=self.study_name,
            direction=self.direction,
            # trial 0 starts from the track's own parameters
            sampler=PerTrialSeedSampler(
                seed=self.cfg.seed, start={k: _encode(self.base[k]) for k in self.space if k in self.base}
            ),
            pruner=make_pruner(self.pruner),
            load_if_exists=True,
        )

    def cross_validate(self, params: dict, *, out: Path, callbacks=None):
        return cross_validate(
            self.comp,
            self.cfg,
            self.fit_predict_fold,
            track=self.track,
            params=params,
            out=out,
            log=lambda _: None,
            fold_callbacks=callbacks,
            progress=False,
        )


def enough(study: optuna.Study, n_trials: int | None) -> bool:
    """Whether a worker should start no more trials.

    Running trials of other workers count as finished-to-be, so that N workers stop at about
    n_trials together; a queued (retried) trial is always run.
    """
    if n_trials is None:
        return False
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return False
    started = TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING
    return sum(t.state in started for t in trials) >= n_trials


def out_of_time(study: optuna.Study, deadline: float | None, *, extra: float = 0.0) -> bool:
    """Whether the budget left is shorter than the longest complete trial so far (plus `extra`
    seconds, e.g. for starting a worker process).

    A trial stopped by the deadline is thrown away (and run again by the next call), so there is
    no point in starting one that may not finish.
    """
    if deadline is None:
        return False
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    longest = max((t.duration.total_seconds() for t in done if t.duration), default=0.0)
    return time.monotonic() + extra + longest >= deadline


def run_trials(
    plan: Plan,
    *,
    deadline: float | None,
    log: Callable[[str], None],
    recycle_mib: float | None,
    on_trial: Callable[[float | None], None] | None = None,
) -> str:
    """Run trials of the study in this process until it has enough, the time is up, or this
    process's memory has grown by `recycle_mib` since its first trial.

    Returns:
        Why it stopped: "enough", "time" or "recycle".
    """
    study = plan.study()
    worker = Worker(plan, deadline=deadline, log=log, recycle_mib=recycle_mib, on_trial=on_trial)
    if out_of_time(study, deadline):
        return "time"
    if enough(study, plan.n_trials):
        return "enough"
    try:
        study.optimize(
            worker.objective,
            timeout=None if deadline is None else max(deadline - time.monotonic(), 0.0),
            callbacks=[worker.after_trial],
            catch=(Exception,),
            # no gc_after_trial: the objective's clear_session() collects already, and a collection
            # costs seconds in a process with a large heap
        )
    except KeyboardInterrupt:
        # optimize() marked the trial failed; queue it again so the next run picks it up
        current = worker.current
        if current is not None and study.get_trials(deepcopy=False)[current].state == TrialState.FAIL:
            requeue(study, current)
        raise
    if worker.error is not None:
        raise worker.error
    return worker.reason or ("time" if deadline is not None and time.monotonic() >= deadline else "enough")


def _best_value(study: optuna.Study) -> float | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_value if complete else None


class Worker:
    """One process's part of a study: the objective and what happens after each trial.

    The competition is loaded once per worker process; each trial only cross-validates.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        deadline: float | None,
        log: Callable[[str], None],
        recycle_mib=None,
        on_trial: Callable[[float | None], None] | None = None,
    ):
        self.plan, self.deadline, self.log, self.recycle_mib = plan, deadline, log, recycle_mib
        self.on_trial = on_trial  # called with the best value so far after each finished trial
        self.attrs = worker_attrs()
        self.timing: dict[str, float] = {}  # epoch times, for the deadline
        self.current: int | None = None
        self.failures: dict[int, BaseException] = {}
        self.consecutive_failures = 0
        self.error: BaseException | None = None
        self.reason: str | None = None
        self.rss_after_first: float | None = None

    def objective(self, trial: optuna.Trial) -> float:
        import keras

        self.current = trial.number
        try:
            return self._run_trial(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            self.failures[trial.number] = err
            raise
        finally:
            # each trial's models and traced graphs go (most of them: see RECYCLE_MIB)
            keras.backend.clear_session()
            # the worker's memory after this trial and its peak so far, in trials.csv: a study's
            # memory across trials is there to see (and to benchmark)
            rss = psutil.Process().memory_info().rss / 2**20
            trial.set_user_attr("rss_mib", round(rss, 1))
            # the kernel updates the peak lazily: it can lag the current figure by a page or two
            trial.set_user_attr("peak_rss_mib", round(max(_peak_rss_mib(), rss), 1))

    def _run_trial(self, trial: optuna.Trial) -> float:
        for key, value in self.attrs.items():
            trial.set_user_attr(key, value)
        params = {**self.plan.base, **suggest(trial, self.plan.space)}
        callbacks = _callbacks()

        def fold_callbacks(k: int) -> list:
            found = [callbacks["TrialPruning"](trial, fold=k, steps_per_fold=self.plan.steps_per_fold)]
            if self.deadline is not None:
                found.append(callbacks["StopAtDeadline"](self.deadline, self.timing))
            return found

        out = self.plan.trials_dir / f"{trial.number:04d}"
        return self.plan.cross_validate(params, out=out, callbacks=fold_callbacks).score

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.current = None
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        metric = self.plan.comp.metric
        if trial.state == TrialState.COMPLETE:
            self.consecutive_failures = 0
            best = study.best_trial
            self.log(
                f"trial {trial.number} complete: {metric} {trial.value:.5f} "
                f"(best {best.value:.5f}, trial {best.number}) in {seconds:.1f} s  {_show(trial.params)}"
            )
            self.drop_worse_runs(study, best)
            if self.on_trial is not None:
                self.on_trial(best.value)
        elif trial.state == TrialState.PRUNED:
            self.consecutive_failures = 0
            step = trial.last_step or 0
            fold, epoch = divmod(step, self.plan.steps_per_fold)
            self.log(f"trial {trial.number} pruned at fold {fold + 1}, epoch {epoch + 1} in {seconds:.1f} s")
            if self.on_trial is not None:
                self.on_trial(_best_value(study))
        else:
            err = self.failures.pop(trial.number, None)
            if isinstance(err, OutOfTime):
                requeue(study, trial.number)
                self.log(f"trial {trial.number} stopped: {err}; the next run retries it")
                self._stop(study, "time")
                return
            self.log(f"trial {trial.number} failed: {type(err).__name__}: {err}")
            self.consecutive_failures += 1
            if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                self.error = err
                self._stop(study, "error")
                return
        # a sibling worker on this machine that died leaves its trial running: take it over
        recover_interrupted(study, log=self.log)
        if enough(study, self.plan.n_trials):
            self._stop(study, "enough")
        elif out_of_time(study, self.deadline):
            self._stop(study, "time")
        elif self.recycle_mib is not None:
            rss = psutil.Process().memory_info().rss / 2**20
            if self.rss_after_first is None:
                self.rss_after_first = rss
            elif rss - self.rss_after_first > self.recycle_mib:
                self._stop(study, "recycle")

    def _stop(self, study: optuna.Study, reason: str) -> None:
        self.reason = reason
        study.stop()

    def drop_worse_runs(self, study: optuna.Study, best: optuna.trial.FrozenTrial) -> None:
        """Remove the run folders of complete trials worse than the best.

        Only trials this worker sees as complete are touched: a trial better than the best seen
        here is still running (or just finished elsewhere), so its folder is never removed.
        """
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number != best.number:
                shutil.rmtree(self.plan.trials_dir / f"{t.number:04d}", ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# worker processes


def _importable(function) -> bool:
    """Whether another Python process can import `function` by its module and name."""
    if getattr(function, "__module__", "__main__") == "__main__":
        return False
    try:
        pickle.dumps(function)
    except Exception:
        return False
    return True


_MESSAGE = "@@kit-tune "  # marks the worker's messages among whatever else it prints


def _run_worker_process(
    plan: Plan,
    study: optuna.Study,
    *,
    deadline: float | None,
    log: Callable[[str], None],
    on_trial: Callable[[float | None], None] | None = None,
) -> str:
    """Run `run_trials` in a fresh Python process; pass its lines to `log`; return why it stopped.

    A new interpreter (not a fork, which would copy TensorFlow's threads and locks, and not
    multiprocessing's spawn, which reruns the caller's script) gets the loaded competition by
    pickle, so the files are read once.
    """
    with tempfile.NamedTemporaryFile(
        dir=plan.trials_dir.parent, prefix=".plan-", suffix=".pkl", delete=False
    ) as f:
        pickle.dump(plan, f)
    # as a wall-clock time: the worker starts counting only after its imports, seconds later
    until = "none" if deadline is None else f"{time.time() + deadline - time.monotonic():.3f}"
    command = [
        sys.executable,
        "-c",
        "import sys; from kit.tuning import worker_main; sys.exit(worker_main(sys.argv[1:]))",
    ]
    spawned = time.monotonic()
    process = subprocess.Popen(
        [*command, f.name, until, str(os.getpid())], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    reason = None
    try:
        for line in process.stdout:
            line = line.rstrip("\n")
            if not line.startswith(_MESSAGE):
                log(line)  # the track's own lines
                continue
            kind, value = json.loads(line[len(_MESSAGE) :])
            if kind == "log":
                log(value)
            elif kind == "trial":
                if on_trial is not None:
                    on_trial(value)
            elif kind == "ready":
                study.set_user_attr("worker_start_seconds", round(time.monotonic() - spawned, 2))
            elif kind == "error":
                raise pickle.loads(base64.b64decode(value))
            else:
                reason = value
                break
        # the worker has nothing left to say; its interpreter takes a second to wind down, which
        # need not hold up the summary
        threading.Thread(target=process.wait, daemon=True).start()
    except KeyboardInterrupt:
        # in a terminal the worker got the Ctrl-C too and queues its trial again itself; give it
        # a moment, then stop it (a trial it leaves running is queued again by the caller)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
        raise
    except BaseException:
        process.terminate()
        process.wait()
        raise
    finally:
        Path(f.name).unlink(missing_ok=True)
    if reason is None:
        log(f"the worker process died (exit code {process.wait()}); its trial will run again")
        return "died"
    if reason == "interrupted":
        raise KeyboardInterrupt
    return reason


def worker_main(argv: list[str]) -> int:
    """A worker process (`_run_worker_process` starts it): run trials, report on stdout."""
    plan_path, until, parent = argv
    # a worker outlives no parent: killed with it, its trial is retried when the command reruns
    threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()
    with open(plan_path, "rb") as f:
        plan = pickle.load(f)  # imports the track, and with it TensorFlow
    deadline = None if until == "none" else time.monotonic() + float(until) - time.time()

    def send(kind: str, value) -> None:
        print(_MESSAGE + json.dumps([kind, value]), flush=True)

    send("ready", None)

    try:
        with _optuna_quiet():
            reason = run_trials(
                plan,
                deadline=deadline,
                log=lambda line: send("log", line),
                recycle_mib=plan.recycle_mib,
                on_trial=lambda best: send("trial", best),
            )
        send("done", reason)
    except KeyboardInterrupt:
        send("done", "interrupted")
    except Exception as err:
        try:
            blob = pickle.dumps(err)
        except Exception:
            blob = pickle.dumps(RuntimeError(f"{type(err).__name__}: {err}"))
        send("error", base64.b64encode(blob).decode())
    return 0


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _show(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------------------------------------
# outputs


def summarize(
    study: optuna.Study,
    *,
    plan: Plan,
    metric,
    out: Path,
    started: float,
    can_refit: bool = True,
    log: Callable[[str], None] = print,
) -> TuneResult:
    """Write trials.csv, the plots, best.toml, best/ and summary.json for the study as it stands.

    Workers finishing together take turns (a lock file), and each file is replaced whole.
    """
    comp, cfg, track, space, base = plan.comp, plan.cfg, plan.track, plan.space, plan.base
    with _locked(out / ".summary.lock"):
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in TrialState}
        complete, pruned = counts[TrialState.COMPLETE], counts[TrialState.PRUNED]
        _write_text(out / "trials.csv", _trials_frame(trials, space).write_csv())
        best = study.best_trial if complete else None
        best_config = best_run = best_params = None
        if best is not None:
            best_params = {**base, **decode(space, best.params)}
            best_config = out / "best.toml"
            _write_text(best_config, _best_toml(comp, cfg, track, best_params, best, study, best_config))
            best_run = _publish_best(out, best.number, best_params, plan if can_refit else None, log)
            _plots(study, out, seed=cfg.seed, log=log)
        seconds = time.monotonic() - started
        summary = {
            "competition": comp.name,
            "track": track,
            "study": study.study_name,
            "storage": _safe_url(plan.storage),
            "metric": comp.metric,
            "direction": metric.direction,
            "best_score": None if best is None else best.value,
            "best_trial": None if best is None else best.number,
            "best_params": best_params,
            "trials": {s.name.lower(): n for s, n in counts.items()},
            "pruned_share": pruned / (complete + pruned) if complete + pruned else 0.0,
            "search_space": space,
            "seconds": round(seconds, 2),
        }
        _write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    if best is None:
        log(f"no trial complete yet ({pruned} pruned, {counts[TrialState.FAIL]} failed); run again to go on")
    else:
        log(
            f"best {comp.metric} {best.value:.5f} (trial {best.number}); {complete} complete, {pruned} pruned, "
            f"{counts[TrialState.FAIL]} failed in {seconds:.1f} s"
        )
        log(f"best config: {best_config}  (kit {track} {comp.root} --config {best_config})")
        if best_run is not None:
            log(f"submission: {best_run / 'submission.csv'}")
    return TuneResult(
        study=study,
        track=track,
        metric=comp.metric,
        best_score=None if best is None else best.value,
        best_trial=None if best is None else best.number,
        best_params=best_params,
        n_complete=complete,
        n_pruned=pruned,
        n_failed=counts[TrialState.FAIL],
        out=out,
        best_config=best_config,
        best_run=best_run,
        seconds=seconds,
    )


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _trials_frame(trials: list, space: dict) -> pl.DataFrame:
    names = list(dict.fromkeys([*space, *(n for t in trials for n in t.params)]))
    rows = []
    for t in trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value if t.state != TrialState.FAIL else None,
                "seconds": t.duration.total_seconds() if t.duration else None,
                "last_step": t.last_step,
                "retry_of": t.system_attrs.get("failed_trial"),
                "host": t.user_attrs.get("host"),
                "pid": t.user_attrs.get("pid"),
                "rss_mib": t.user_attrs.get("rss_mib"),
                "peak_rss_mib": t.user_attrs.get("peak_rss_mib"),
                "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
                # strings, so a column of "256,128" shapes and a column of floats read back alike
                **{f"param_{n}": None if n not in t.params else str(t.params[n]) for n in names},
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame({"number": []})


def _best_toml(comp, cfg, track, params, best, study, path) -> str:
    resolved = copy.deepcopy(cfg).update(
        {
            "target": comp.target,
            "id": comp.id,
            "metric": comp.metric,
            "group": comp.group,
            "time": comp.time,
            track: dict(params),
        },
        source="the tuned trial",
    )
    resolved.search = {}  # the search ranges stay in the competition's TOML
    header = (
        f"# Best trial of study '{study.study_name}': {comp.metric} {best.value:.5f} (trial {best.number}).\n"
        f"# Rerun it: kit {track} {comp.root} --config {path}\n"
    )
    return header + dumps(resolved.to_dict())


def _publish_best(out: Path, number: int, params: dict, refit: Plan | None, log) -> Path | None:
    """Copy the best trial's run folder to out/best/ (a refit when it ran on another machine)."""
    source, dest = out / "trials" / f"{number:04d}", out / "best"
    if (dest / "manifest.json").is_file() and _same_run(dest, number):
        return dest
    staging = out / f".best.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    if (source / "manifest.json").is_file():
        shutil.copytree(source, staging)
    elif refit is not None:
        log(f"trial {number} ran on another machine; refitting its parameters here for the submission")
        refit.cross_validate(params, out=staging)
    else:
        log(f"trial {number}'s run folder is not here and the time budget is spent; best/ is not updated")
        return dest if dest.is_dir() else None
    (staging / "trial.json").write_text(json.dumps({"trial": number}))
    old = out / f".best.{os.getpid()}.old"
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def _same_run(dest: Path, number: int) -> bool:
    try:
        return json.loads((dest / "trial.json").read_text())["trial"] == number
    except (OSError, ValueError, KeyError):
        return False


def _plots(study: optuna.Study, out: Path, *, seed: int, log) -> None:
    """history.png (score by trial) and importances.png (fANOVA importance of each parameter)."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are marked experimental
        plots = {
            "history.png": lambda: ovm.plot_optimization_history(study),
            "importances.png": lambda: ovm.plot_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
            ),
        }
        for name, plot in plots.items():
            try:
                ax = plot()
            except (ValueError, RuntimeError) as err:  # e.g. importances of a single trial
                log(f"note: no {name}: {err}")
                continue
            fig = ax.figure
            fig.savefig(out / f".{name}.tmp.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            os.replace(out / f".{name}.tmp.png", out / name)


def fit_predict_fold_for(track: str) -> Callable:
    """The track's `fit_predict_fold` (kit.tracks.baseline, kit.tracks.advanced)."""
    import importlib

    if track not in TRACKS:
        raise InputError(f"Unknown track '{track}'. Use one of: {', '.join(TRACKS)}. Received: track={track}")
    try:
        module = importlib.import_module(f"kit.tracks.{track}")
    except ModuleNotFoundError as err:
        if err.name != f"kit.tracks.{track}":
            raise
        raise InputError(
            f"The {track} track is not available in this version of kit. Received: track={track}"
        ) from None
    return module.fit_predict_fold
