"""The study: its sampler and pruner, the storage parallel workers share, and what happens to the
trials of a worker that died.

A journal file (the default) serves several workers on one machine; a database (PostgreSQL,
MySQL, SQLite) serves workers on several machines, and its trials send heartbeats, so a trial
whose machine died is retried by the others after `GRACE_S` seconds.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from kit.config import PRUNERS
from kit.errors import InputError

# a trial that keeps killing its worker (out of memory, ...) is dropped after this many retries
MAX_RETRY = 2
# database storages: a running trial whose worker stopped beating for GRACE_S seconds is retried
HEARTBEAT_S, GRACE_S = 30, 90
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


class PerTrialSeedSampler(optuna.samplers.BaseSampler):
    """`TPESampler(seed=seed + trial.number)` for each trial; trial 0 starts from `start`.

    One seeded TPESampler per worker would make two workers started with the same command draw
    the same parameters for their first trials. Seeding by trial number keeps a one-worker study
    reproducible and gives parallel workers different draws. TPE itself keeps no state between
    trials (it reads the finished trials from the storage), so a fresh one per trial loses nothing.

    `start` (the track's own parameters in Optuna's encoding, `space.start_point`) is trial 0's
    draw: the study never ends below the untuned track. Not `study.enqueue_trial(...,
    skip_if_exists=True)`: two workers started together would both enqueue it (the check and the
    write are two steps of the storage), while trial numbers are handed out once by the storage.
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
    """A journal file (a path) or a database (a URL with '://')."""
    text = str(storage)
    if "://" not in text:
        path = Path(text)
        _check_journal(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _repair_journal(path)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if text.startswith("sqlite:///") and text != "sqlite:///:memory:":
        # a file database's folder is made as a journal's is (SQLite says only "unable to open")
        Path(text[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
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
                f"Received: storage={safe_url(text)}"
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
        f"the URL and that the server is up. Received: storage={safe_url(text)}"
    ) from None


def is_journal(path: Path) -> bool:
    """Whether a file is a journal Optuna wrote: its first line a JSON operation."""
    try:
        with open(path, "rb") as handle:
            line = json.loads(handle.readline(1 << 16))
    except (OSError, ValueError, TypeError):
        return False
    return isinstance(line, dict) and "op_code" in line


def _check_journal(path: Path) -> None:
    """A journal storage is a new file or one Optuna wrote: a line of JSON per operation."""
    if path.is_dir():
        raise InputError(
            f"--storage '{path}' is a folder. Pass a journal file's path in it ({path / 'study.journal'}) "
            f"or a database URL. Received: storage={path}"
        )
    if not path.is_file() or path.stat().st_size == 0:
        return
    if not is_journal(path):
        raise InputError(
            f"--storage '{path}' is a file that is not a study's journal (a line of JSON per operation), "
            f"which kit would write into. Pass a new file's path or a study's journal. Received: storage={path}"
        )


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


def safe_url(url: str) -> str:
    """The URL without its password, for logs and summary.json."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.rsplit("@", 1)
    return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}" if ":" in auth else url


# ---------------------------------------------------------------------------------------------
# who runs a trial, and what happens to the trials of a worker that died


def worker_attrs() -> dict:
    """Identifies this process: machine, pid and the pid's start time (pids get reused)."""
    return {
        "host": f"{socket.gethostname()}/{uuid.getnode():012x}",
        "pid": os.getpid(),
        "pid_started": psutil.Process().create_time(),
    }


def _worker_alive(attrs: dict) -> bool:
    try:
        process = psutil.Process(attrs["pid"])
        # a killed worker whose parent died too can linger as a zombie until something reaps it
        same = abs(process.create_time() - attrs["pid_started"]) < 0.01
        return same and process.status() != psutil.STATUS_ZOMBIE
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


def best_value(study: optuna.Study) -> float | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_value if complete else None
