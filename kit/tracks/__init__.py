"""The tracks: one module each, found by name. This is the one place that lists them.

A track is what a team thinks in ("the baseline", "trees", "my transformer"). Every module in
this folder whose name does not start with "_" is a track; the config, the CLI and the API verbs
(`kit baseline`, `kit.baseline(...)`), the tuner and the run folder find it here. A team's own
track is a Python file with the same names, run with `kit run path/to/my_track.py DIR`.

A track module defines:

    DEFAULTS = {...}                  every parameter and its default; a TOML's [<track>] table
                                      overrides them key by key (same types)
    def fit_predict_fold(fold, params):
        ...                           train on `fold` (a `kit.run.Fold`), return (validation
        return val_pred, test_pred    predictions, test predictions) in kit's prediction form,
                                      or a `kit.run.FoldResult` with the fold's history too

and may define:

    DESCRIPTION = "..."               one line for `kit --help` (default: the docstring's first)
    SEARCH_SPACE = {...}              what `kit tune --track NAME` searches (see kit.tuning.space)
    LIMITS = {"ema": "[0, 1)",        the range of a parameter, or the strings it may be, checked
              "mode": ("a", "b")}     before any training (COMMON_LIMITS covers units, dropout, ...)
    def begin(params, *, log): ...    once per run, before the first fold (e.g. pick a device)
    def refit_params(params, history) -> (params, epochs): ...
                                      the parameters of a refit on all training rows after a
                                      forecast's time split (see kit.run) and its epochs (None:
                                      as the parameters say), from the last fold's history;
                                      without it the folds' models predict the test
    def write_artifacts(staging, *, comp, cfg, params, results, score, log, work_dir, weights): ...
                                      extra files for the run folder (an exported model),
                                      written into its staging folder before it is published;
                                      `weights`: each result's share of the test predictions

Keep a track module's top level light (no TensorFlow import): the config reads DEFAULTS and
LIMITS before training starts, so that a bad value fails in a second, not after an import.

Example:
    >>> from kit import tracks
    >>> tracks.names()
    ['advanced', 'baseline']
    >>> tracks.get("baseline").params({"dropout": 0.3})["units"]
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kit.errors import InputError

# names a track cannot take: they are kit's other commands
RESERVED = ("inspect", "predict", "tune", "validate", "leaderboard", "run", "blend", "auto", "report")

# tracks loaded from a team's file (or a function) in this process, by name
_loaded: dict[str, Track] = {}

# the range of a parameter that means the same in any track that has it; a track's LIMITS add or
# override entries
COMMON_LIMITS = {
    "units": "[1, 65536]",
    "dropout": "[0, 1)",
    "learning_rate": "(0, 10]",
    "weight_decay": "[0, 1]",
    "batch_size": "[0, 1048576]",  # 0: chosen from the number of rows
    "epochs": "[1, 100000]",
    "patience": "[1, 100000]",
    "embedding_size": "[0, 1024]",  # 0: chosen per column
}


@dataclass(frozen=True)
class Track:
    """A track module and what kit reads from it.

    Attributes:
        name: the track's name ("baseline", or a file's stem).
        module: the module.
        ref: how another process finds it again (a module name under kit.tracks, or a file's
            path); None for a function defined in a notebook or the running script.
    """

    name: str
    module: ModuleType
    ref: str | None

    @property
    def defaults(self) -> dict:
        return dict(self.module.DEFAULTS)

    @property
    def search_space(self) -> dict:
        return dict(getattr(self.module, "SEARCH_SPACE", {}))

    @property
    def limits(self) -> dict:
        common = {k: v for k, v in COMMON_LIMITS.items() if k in self.module.DEFAULTS}
        return {**common, **getattr(self.module, "LIMITS", {})}

    @property
    def description(self) -> str:
        text = getattr(self.module, "DESCRIPTION", None) or (self.module.__doc__ or self.name)
        return text.strip().splitlines()[0]

    @property
    def command(self) -> str:
        """How a shell runs it: `kit baseline`, or `kit run path/to/my_track.py` for a file."""
        if self.ref is not None and self.ref.endswith(".py"):
            return f"kit run {self.ref}"
        return f"kit {self.name}" if self.ref is not None else "kit run <your track file>"

    @property
    def fit_predict_fold(self) -> Callable:
        return self.module.fit_predict_fold

    def params(self, overrides: dict | None = None) -> dict:
        """The track's parameters: its defaults, with `overrides` (a config table, a trial) on top."""
        return {**self.defaults, **(overrides or {})}

    def check(self, table: dict, *, source: str) -> None:
        """Raise `InputError` for an unknown parameter, a value of the wrong type or out of range."""
        defaults = self.defaults
        unknown = sorted(set(table) - set(defaults))
        if unknown:
            raise InputError(
                f"Unknown [{self.name}] setting(s) {unknown} in {source}. Use: {', '.join(defaults)}. "
                f"Received: {unknown}"
            )
        for name, value in table.items():
            default = defaults[name]
            # an int where a float is expected is fine (learning_rate = 1)
            expected = (int, float) if isinstance(default, float) else type(default)
            check_type(f"[{self.name}] {name}", value, expected, source)
            if isinstance(default, list) and default:  # units = [64.5] is no layer width
                each = (int, float) if isinstance(default[0], float) else type(default[0])
                for item in value:
                    check_type(f"[{self.name}] {name} (each value)", item, each, source)
            if name in self.limits:
                check_limit(f"[{self.name}] {name}", value, self.limits[name], source)

    def begin(self, params: dict, *, log: Callable[[str], None]) -> None:
        hook = getattr(self.module, "begin", None)
        if hook is not None:
            hook(params, log=log)

    def refit_params(self, params: dict, history: dict | None) -> tuple[dict, int | None] | None:
        """The parameters of a refit on all training rows after a forecast's time split, given
        the last fold's history (how long it trained), and the epochs it trains (None: as the
        parameters say); None: the track does not refit."""
        hook = getattr(self.module, "refit_params", None)
        return None if hook is None or history is None else hook(params, history)

    def write_artifacts(self, staging: Path, **context) -> None:
        hook = getattr(self.module, "write_artifacts", None)
        if hook is not None:
            hook(staging, **context)


def names() -> list[str]:
    """kit's own tracks: the modules in this folder."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def known() -> list[str]:
    """kit's own tracks, then those loaded from a team's file in this process: the tables a
    config may hold."""
    return names() + sorted(n for n in _loaded if n not in names())


def get(track: str | Path | ModuleType | Track | Callable) -> Track:
    """The track for a name, a track file's path, a module or a `fit_predict_fold` function.

    A file or module is checked for the names a track needs and remembered by its name, so its
    [<name>] table in a config is accepted from then on.
    """
    if isinstance(track, Track):
        return track
    if isinstance(track, ModuleType):
        return _remember(_checked(track, track.__name__.rsplit(".", 1)[-1], getattr(track, "__file__", None)))
    if callable(track):
        return _from_function(track)
    text = str(track)
    if text in _loaded:
        return _loaded[text]
    if text.endswith(".py") or "/" in text:
        return _remember(_from_file(Path(text)))
    if text in names():
        module = importlib.import_module(f"{__name__}.{text}")
        return Track(text, module, text)
    raise InputError(
        f"Unknown track '{text}'. Use one of: {', '.join(names())}, or a track file "
        f"(kit run path/to/my_track.py DIR). Received: track={text}"
    )


def _from_file(path: Path) -> Track:
    if not path.is_file():
        raise InputError(f"Track file '{path}' does not exist. Received: track={path}")
    name = path.stem
    module_name = "kit_track_" + re.sub(r"\W", "_", name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, as `import` does: dataclasses and pickling look modules up here
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise InputError(
            f"Track file '{path}' failed to import: {type(err).__name__}: {err}. Fix the file."
        ) from err
    return _checked(module, name, str(path.resolve()))


def _checked(module: ModuleType, name: str, ref: str | None) -> Track:
    where = f"Track file '{ref}'" if ref else f"Track module '{module.__name__}'"
    if name in RESERVED or (name in names() and name not in _loaded):
        raise InputError(
            f"{where} is named '{name}', which is a kit command or one of kit's own tracks. Rename it. "
            f"Received: name={name}"
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise InputError(
            f"{where}: a track's name is letters, digits, _ and -. Rename it. Received: name={name!r}"
        )
    if not isinstance(getattr(module, "DEFAULTS", None), dict) or not callable(
        getattr(module, "fit_predict_fold", None)
    ):
        raise InputError(
            f"{where} must define DEFAULTS (a dict of parameters) and fit_predict_fold(fold, params). "
            f"See pipelines/my_track.py. Received: {sorted(n for n in vars(module) if not n.startswith('_'))[:12]}"
        )
    return Track(name, module, ref)


def _from_function(fit_predict_fold: Callable) -> Track:
    """A track around a bare function (a notebook's own model): no defaults, no search space."""
    name = re.sub(r"\W", "_", getattr(fit_predict_fold, "__name__", "custom"))
    module = ModuleType(name, getattr(fit_predict_fold, "__doc__", None))
    module.DEFAULTS = {}
    module.fit_predict_fold = fit_predict_fold
    return Track(name, module, None)


def _remember(track: Track) -> Track:
    _loaded[track.name] = track
    return track


# ---------------------------------------------------------------------------------------------
# the checks every parameter table goes through (the config's own settings use them too)


def check_type(name: str, value, expected, source: str) -> None:
    # bool is an int to Python, never to a user
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        wanted = (
            " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
        )
        raise InputError(
            f"Setting {name} in {source} must be of type {wanted}. Fix the value. Received: {name}={value!r}"
        )


_INTERVAL = re.compile(r"^([\[(])\s*([^,]+),\s*([^\])]+)([\])])$")


def check_limit(name: str, value, limit: str | tuple, source: str) -> None:
    """Check a value against a limit: an interval such as "[0, 1)" or "(0, inf)" for a number (or
    each number of a list), or a tuple of the strings it may be."""
    if isinstance(limit, tuple | list):
        if value not in limit:
            raise InputError(
                f"Setting {name} in {source} must be one of: {', '.join(map(str, limit))}. Fix the value. "
                f"Received: {name}={value!r}"
            )
        return
    interval = limit
    match = _INTERVAL.match(interval)
    if match is None:
        raise ValueError(f"LIMITS entry for {name} must look like '[0, 1)'. Received: {interval!r}")
    left, low, high, right = match.groups()
    low, high = float(low), float(high)
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        above = item >= low if left == "[" else item > low
        below = item <= high if right == "]" else item < high
        if not (above and below):
            raise InputError(
                f"Setting {name} in {source} must be in {interval}. Fix the value. Received: {name}={value!r}"
            )
