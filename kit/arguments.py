"""The Python API's arguments checked up front: a value of the wrong type is refused in one line
naming the argument, what it received and what it takes, not met as a TypeError deep inside."""

from __future__ import annotations

import os
import reprlib
from collections.abc import Callable
from types import ModuleType

from kit.errors import InputError

PATH = (str, os.PathLike)
_NUMBER = (int, float)


def _is_path(value) -> bool:
    return isinstance(value, PATH)


def _maybe(test: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or test(value)


def _is_number(value) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _is_run_or_path(value) -> bool:
    return _is_path(value) or hasattr(value, "run_dir")


# argument: (whether a value is one it takes, what it takes)
RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "data": (
        _maybe(_is_path),
        'a competition folder\'s path (a str or Path), "tfds:NAME", or None (the attached competition '
        "on Kaggle, else the demo)",
    ),
    "submission": (
        _is_path,
        "a submission file's path (a str or Path); write a DataFrame to a file first, e.g. "
        "df.write_csv('submission.csv')",
    ),
    "config": (
        _maybe(_is_path),
        "a TOML file's path (a str or Path); pass a dict of parameters as params instead",
    ),
    "out": (_maybe(_is_path), "a path (a str or Path), or None for the default"),
    "root": (_maybe(_is_path), "a folder's path (a str or Path), or None for submissions/"),
    "log": (callable, "a function that takes each line, e.g. print, or lambda line: None for silence"),
    "progress": (
        _maybe(lambda v: isinstance(v, bool)),
        "True, False or None (bars in a terminal or notebook only)",
    ),
    "params": (
        _maybe(lambda v: isinstance(v, dict)),
        'a dict of the track\'s parameters, e.g. {"dropout": 0.2}',
    ),
    "stream": (lambda v: isinstance(v, bool), "True or False"),
    "time_budget": (_is_number, "seconds as a number, e.g. time_budget=300"),
    "trials": (
        _maybe(lambda v: isinstance(v, int) and not isinstance(v, bool)),
        "a whole number, e.g. 50, or None",
    ),
    "track": (
        lambda v: _is_path(v) or isinstance(v, ModuleType),
        "a track's name (e.g. \"baseline\"), a track file's path or a module",
    ),
    "storage": (_maybe(_is_path), "a journal file's path or an Optuna storage URL, or None"),
    "study": (_maybe(lambda v: isinstance(v, str)), "a study's name (a str), or None"),
    "pruner": (_maybe(lambda v: isinstance(v, str)), '"median", "hyperband" or "none"'),
    "method": (lambda v: isinstance(v, str), '"auto", "hill", "bagged", "stack" or "best"'),
    "runs": (
        lambda v: _is_path(v) or (isinstance(v, list | tuple) and all(_is_run_or_path(r) for r in v)),
        "a list of run folders' paths or Runs, or one folder's path (a folder of run folders or a "
        "competition folder)",
    ),
    "run": (_is_run_or_path, "a Run, a TuneResult, or a run folder's or tuning folder's path"),
    "model": (_is_path, "the exported model folder's path (a str or Path), <run_dir>/model"),
}


def shown(value) -> str:
    """A value as a message shows it: short, on one line, with its type."""
    kind = type(value)
    name = (
        kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
    )
    if isinstance(value, str | int | float | bool | list | tuple | dict | set) or value is None:
        return f"{reprlib.repr(value)} ({name})"
    return f"a {name}"


def check(**given) -> None:
    """Raise `InputError` for the first argument (by name, see `RULES`) of a type it does not take."""
    for name, value in given.items():
        takes, what = RULES[name]
        if not takes(value):
            raise InputError(f"{name} takes {what}. Received: {name}={shown(value)}")
