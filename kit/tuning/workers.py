"""Who runs the trials: a worker, in a process of its own that is replaced when its memory grew.

A `Plan` is everything a worker needs (the loaded competition, the track, the space, the study's
name and storage); it travels to the worker process once, so the files are read once per command.
`Worker.run_one` runs one trial of the study and says whether to go on. `run` drives workers one
after another in a `concurrent.futures.ProcessPoolExecutor` of one spawned process, until the
study has enough trials, the time is up, or the worker's memory grew by `RECYCLE_MIB`: Keras and
TensorFlow keep about 16 MiB of every trial's models in a process, `clear_session()` or not, so
memory stays flat only by starting a fresh process now and then. The pool's own
`max_tasks_per_child` would replace it after a count of trials instead; what a trial leaves
behind varies with the model and the data (16 MiB on titanic's baseline, several times that for a
wide network), so the worker measures its growth and the pool is replaced when it says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from kit import runtime, tracks
from kit.competition import Competition
from kit.config import Config
from kit.tuning.callbacks import OutOfTime, _classes
from kit.tuning.space import suggest
from kit.tuning.study import (
    PerTrialSeedSampler,
    best_value,
    enough,
    make_pruner,
    open_storage,
    out_of_time,
    recover_interrupted,
    requeue,
    worker_attrs,
)

# a worker process whose memory grew this much since its first trial hands over to a fresh one:
# a trial leaves about 16 MiB behind (titanic, house-prices), so one worker runs about 8 trials,
# and a worker's start (4-5 s) costs under a tenth of their time. 384 let the peak grow by a third
# between trial 5 and trial 30; 128 keeps it within about a tenth (make bench-tune)
RECYCLE_MIB = 128
# a worker that fails this many trials in a row has a bug, not bad luck: stop and show it
MAX_CONSECUTIVE_FAILURES = 3


@dataclass
class Plan:
    """Everything a worker needs to run trials of one study; it travels to a worker process by
    pickle (the track by its `ref`, found again there)."""

    comp: Competition
    cfg: Config
    track: tracks.Track
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
    start: dict = field(default_factory=dict)

    def __getstate__(self):
        return {**self.__dict__, "track": self.track.ref}

    def __setstate__(self, state):
        self.__dict__.update({**state, "track": tracks.get(state["track"])})

    def study(self, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
        return optuna.create_study(
            storage=storage if storage is not None else open_storage(self.storage),
            study_name=self.study_name,
            direction=self.direction,
            sampler=PerTrialSeedSampler(seed=self.cfg.seed, start=self.start),
            pruner=make_pruner(self.pruner),
            load_if_exists=True,
        )

    def cross_validate(self, params: dict, *, out: Path, callbacks=None, refit: bool = True):
        """A run of the track; `refit=False` for a trial, which needs only its score."""
        from kit.run import cross_validate

        return cross_validate(
            self.comp,
            self.cfg,
            self.track,
            params=params,
            out=out,
            log=lambda _: None,
            fold_callbacks=callbacks,
            progress=False,
            refit=refit,
        )


class Worker:
    """One process's part of a study: the objective and what happens after each trial.

    Args:
        log: where its lines go (in a worker process, a list sent back with each trial).
        recycle_mib: memory growth after which `run_one` says "recycle"; None: never.
    """

    def __init__(self, plan: Plan, *, deadline: float | None, log: Callable[[str], None], recycle_mib=None):
        self.plan, self.deadline, self.log, self.recycle_mib = plan, deadline, log, recycle_mib
        self.study = plan.study()
        self.attrs = worker_attrs()
        self.timing: dict[str, float] = {}  # epoch times, for the deadline
        self.current: int | None = None
        self.failures: dict[int, BaseException] = {}
        self.consecutive_failures = 0
        self.rss_after_first: float | None = None

    def run_one(self) -> dict:
        """Run the next trial of the study, unless it has enough or the time is up.

        Returns:
            {"finished": a trial completed or was pruned, "best": the best value so far,
            "stop": None to go on, or why to stop: "enough", "time", "recycle" or "error"}.
        """
        study = self.study
        if out_of_time(study, self.deadline):
            return {"finished": False, "best": None, "stop": "time"}
        if enough(study, self.plan.n_trials):
            return {"finished": False, "best": None, "stop": "enough"}
        self.stop, self.finished = None, False
        try:
            # no gc_after_trial: the objective's clear_session() collects already, and a collection
            # costs seconds in a process with a large heap
            study.optimize(self.objective, n_trials=1, callbacks=[self.after_trial], catch=(Exception,))
        except KeyboardInterrupt:
            # optimize() marked the trial failed; queue it again so the next run picks it up
            current = self.current
            if current is not None and study.get_trials(deepcopy=False)[current].state == TrialState.FAIL:
                requeue(study, current)
            raise
        if self.stop == "error":
            raise self.error
        return {"finished": self.finished, "best": best_value(study), "stop": self.stop}

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
            trial.set_user_attr("peak_rss_mib", round(max(runtime.peak_rss_mib(), rss), 1))

    def _run_trial(self, trial: optuna.Trial) -> float:
        for key, value in self.attrs.items():
            trial.set_user_attr(key, value)
        params = {**self.plan.base, **suggest(trial, self.plan.space)}
        callbacks = _classes()

        def fold_callbacks(k: int) -> list:
            found = [callbacks["TrialPruning"](trial, fold=k, steps_per_fold=self.plan.steps_per_fold)]
            if self.deadline is not None:
                found.append(callbacks["StopAtDeadline"](self.deadline, self.timing))
            return found

        out = self.plan.trials_dir / f"{trial.number:04d}"
        return self.plan.cross_validate(params, out=out, callbacks=fold_callbacks, refit=False).score

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.current = None
        # a trial never resumes (a retry is a new trial): checkpoints of an unfinished one go
        shutil.rmtree(self.plan.trials_dir / f".{trial.number:04d}.work", ignore_errors=True)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        metric = self.plan.comp.metric
        if trial.state == TrialState.COMPLETE:
            self.consecutive_failures, self.finished = 0, True
            best = study.best_trial
            self.log(
                f"trial {trial.number} complete: {metric} {trial.value:.5f} "
                f"(best {best.value:.5f}, trial {best.number}) in {seconds:.1f} s  {_show(trial.params)}"
            )
            self._drop_worse_runs(study, best)
        elif trial.state == TrialState.PRUNED:
            self.consecutive_failures, self.finished = 0, True
            fold, epoch = divmod(trial.last_step or 0, self.plan.steps_per_fold)
            self.log(f"trial {trial.number} pruned at fold {fold + 1}, epoch {epoch + 1} in {seconds:.1f} s")
        else:
            err = self.failures.pop(trial.number, None)
            if isinstance(err, OutOfTime):
                requeue(study, trial.number)
                self.log(f"trial {trial.number} stopped: {err}; the next run retries it")
                self.stop = "time"
                return
            self.log(f"trial {trial.number} failed: {type(err).__name__}: {err}")
            self.consecutive_failures += 1
            if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                self.error, self.stop = err, "error"
                return
        # a sibling worker on this machine that died leaves its trial running: take it over
        recover_interrupted(study, log=self.log)
        if enough(study, self.plan.n_trials):
            self.stop = "enough"
        elif out_of_time(study, self.deadline):
            self.stop = "time"
        elif self.recycle_mib is not None:
            rss = psutil.Process().memory_info().rss / 2**20
            if self.rss_after_first is None:
                self.rss_after_first = rss
            elif rss - self.rss_after_first > self.recycle_mib:
                self.stop = "recycle"

    def _drop_worse_runs(self, study: optuna.Study, best: optuna.trial.FrozenTrial) -> None:
        """Remove the run folders of complete trials worse than the best.

        Only trials this worker sees as complete are touched: a trial better than the best seen
        here is still running (or just finished elsewhere), so its folder is never removed.
        """
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number != best.number:
                shutil.rmtree(self.plan.trials_dir / f"{t.number:04d}", ignore_errors=True)


def _show(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------------------------------------
# the driver


def run(
    plan: Plan,
    study: optuna.Study,
    *,
    deadline: float | None,
    processes: bool,
    log: Callable[[str], None],
    on_trial: Callable[[float | None], None] | None = None,
) -> None:
    """Run trials until the study has enough or the time is up: in worker processes one after
    another (each until its memory grew by `plan.recycle_mib`), or in this process."""
    if processes and plan.track.ref is None:
        log(
            "note: the track is defined in the running script or notebook, where a worker process "
            "cannot import it; trials run in this process, whose memory grows a little with each one"
        )
        processes = False
    deaths = 0
    while processes:
        # a worker process needs seconds to start (TensorFlow's import): measured, and kept in the
        # study so that the next call knows it too
        if out_of_time(study, deadline, extra=study.user_attrs.get("worker_start_seconds", 0.0)):
            log("the time left is shorter than a trial: no more trials")
            return
        if enough(study, plan.n_trials):
            return
        reason = _run_in_process(plan, study, deadline=deadline, log=log, on_trial=on_trial)
        if reason == "unstartable":
            log("note: no worker process could start (its error is above); trials run in this process")
            break
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
            return
        log(f"the worker's memory grew by over {plan.recycle_mib:g} MiB; a fresh worker process goes on")
    if out_of_time(study, deadline):
        log("the time left is shorter than a trial: no more trials")
        return
    worker = Worker(plan, deadline=deadline, log=log)
    while True:
        outcome = worker.run_one()
        if outcome["finished"] and on_trial is not None:
            on_trial(outcome["best"])
        if outcome["stop"]:
            return


@contextlib.contextmanager
def _main_script_left_out():
    """A spawned process runs the parent's main script again before anything else (as
    `__mp_main__`), so that what was defined there unpickles; a script that calls `kit.tune` without
    `if __name__ == '__main__':` would train all it trains before the call a second time. Nothing
    of a worker's comes from that script (its track travels as a module name or a file path), so
    the script is left out of what the process is told to prepare while it starts."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(getattr(main, "__spec__", None), "name", None) is not None:
        yield  # `python -m ...` and notebooks: nothing to leave out, or not by path
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _result(future):
    """`future.result()`, waking twice a second: Ctrl-C is often delivered to another of the
    process's threads (TensorFlow's, the pool's), and then raised in this one only when it runs
    again, which a plain wait did at the trial's end (seconds to minutes later)."""
    while True:
        try:
            return future.result(timeout=0.5)
        except TimeoutError:
            continue


@contextlib.contextmanager
def _tracker_quiet():
    """multiprocessing's resource tracker, started with the pool, warns at exit of the semaphore a
    worker killed on Ctrl-C leaves (a line of Python's internals after kit's own): it reads its
    warning filters from the environment it starts with."""
    before = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore:resource_tracker:UserWarning"
    os.environ["PYTHONWARNINGS"] = f"{before},{quiet}" if before else quiet
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


def _run_in_process(plan: Plan, study: optuna.Study, *, deadline, log, on_trial) -> str:
    """One worker process, trial after trial; returns why it stopped (see `Worker.run_one`), or
    "died" / "unstartable"."""
    # as a wall-clock time: the worker starts counting only after its imports, seconds later
    until = None if deadline is None else time.time() + deadline - time.monotonic()
    spawned = time.monotonic()
    with _tracker_quiet():
        pool = ProcessPoolExecutor(
            1,
            # spawn: a fresh interpreter; a fork would copy TensorFlow's threads and locks
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(plan, until, os.getpid()),
        )
    pid = None
    try:
        try:
            with _main_script_left_out():
                started = pool.submit(os.getpid)  # the process starts here
            pid = _result(started)
        except BrokenProcessPool:
            return "unstartable"
        study.set_user_attr("worker_start_seconds", round(time.monotonic() - spawned, 2))
        while True:
            lines, outcome = _result(pool.submit(_run_one))
            for line in lines:
                log(line)
            if outcome["finished"] and on_trial is not None:
                on_trial(outcome["best"])
            if outcome["stop"]:
                return outcome["stop"]
    except BrokenProcessPool:
        log("the worker process died; its trial will run again")
        return "died"
    except BaseException:
        # Ctrl-C or an error here: the worker goes now; the caller queues its trial again
        _kill(pid)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _kill(pid: int | None) -> None:
    if pid is None:
        return
    try:
        process = psutil.Process(pid)
        process.kill()
        process.wait(timeout=10)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass


# the worker process's state: set by `_start_worker`, used by every `_run_one`
_worker: Worker | None = None
_lines: list[str] = []


def _start_worker(plan: Plan, until: float | None, parent: int) -> None:
    """A worker process's start: die with the parent, import TensorFlow, open the study."""
    global _worker
    _die_with(parent)
    # Ctrl-C in a terminal reaches this process too; the parent stops it and retries its trial
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # kit prints a line per trial; Optuna's own and TensorFlow's retracing warnings would repeat it
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from kit import boundary, runtime

    if os.environ.get(boundary.QUIET_ENV):  # started by the `kit` command: its stderr stays quiet too
        boundary.quiet_tensorflow()
    # imports TensorFlow and Keras: the slow part of a start
    runtime.seed_everything(plan.cfg.seed, rows=plan.comp.train.height)
    deadline = None if until is None else time.monotonic() + until - time.time()
    _worker = Worker(plan, deadline=deadline, log=_lines.append, recycle_mib=plan.recycle_mib)


def _run_one() -> tuple[list[str], dict]:
    _lines.clear()
    try:
        outcome = _worker.run_one()
    except Exception as err:
        # what reaches the parent must pickle; an error of a type it cannot rebuild says what it was
        import pickle

        try:
            pickle.loads(pickle.dumps(err))
        except Exception:
            raise RuntimeError(f"{type(err).__name__}: {err}") from None
        raise
    return list(_lines), outcome


def _die_with(parent: int) -> None:
    """A worker outlives no parent: killed with it, its trial is retried when the command reruns."""
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_without, args=(parent,), daemon=True).start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
