"""What a study searches: a track's SEARCH_SPACE with the competition's [search.<track>] changes.

An entry is {low, high} (optionally log = true or step = ...), {choices = [...]}, or a plain value,
which fixes the parameter. A competition's TOML changes entries key by key:

    [search.baseline]
    learning_rate = { low = 3e-4, high = 3e-3, log = true }
    units = { choices = [[128, 64], [256, 128]] }
    scaling = "standard"       # no longer searched
    patience = { low = 5, high = 30 }
"""

from __future__ import annotations

import math

import optuna

from kit import tracks
from kit.config import Config, check_search_table
from kit.errors import InputError


def search_space(track: str | tracks.Track, cfg: Config) -> tuple[dict[str, dict], dict]:
    """The track's search space with the config's [search.<track>] table applied.

    Returns:
        (space, fixed): the searched parameters with their specs, and the parameters the
        [search] table fixes to a plain value.
    """
    track = tracks.get(track)
    check_search_table(cfg.search)
    params = cfg.params(track.name)
    known = set(params)
    space = {}
    for name, spec in track.search_space.items():
        spec = _check_spec(track.name, name, spec, params.get(name))
        # the competition's own choice stays reachable, so trial 0 can rerun the untuned track exactly
        if "choices" in spec and name in params and params[name] not in spec["choices"]:
            spec["choices"] = [*spec["choices"], params[name]]
        space[name] = spec
    fixed = {}
    for name, spec in cfg.search.get(track.name, {}).items():
        if name not in known:
            raise InputError(
                f"[search.{track.name}] names '{name}', which is not a {track.name} parameter. Use one of: "
                f"{', '.join(sorted(known))}. Received: {name}={spec!r}"
            )
        space.pop(name, None)
        if isinstance(spec, dict):
            space[name] = _check_spec(track.name, name, spec, params.get(name))
        else:
            track.check({name: spec}, source=f"[search.{track.name}]")
            fixed[name] = spec
    if not space:
        raise InputError(
            f"The {track.name} search space is empty. Add entries to [search.{track.name}] in the "
            f"competition's TOML, e.g. learning_rate = {{ low = 1e-4, high = 1e-2, log = true }}. "
            f"Received: {cfg.search}"
        )
    for name, spec in space.items():
        # a range the track would refuse fails now, not in the middle of the study
        for value in spec.get("choices", [spec.get("low"), spec.get("high")]):
            track.check({name: value}, source=f"[search.{track.name}] entry '{name}'")
    return space, fixed


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
    if "log" in spec and not isinstance(spec["log"], bool):
        raise InputError(f"{where} takes log = true or false. Received: log={spec['log']!r}")
    if spec.get("log") and (low <= 0 or "step" in spec):
        raise InputError(
            f"{where} is on a log scale, which needs low > 0 and no step. Received: {name}={spec!r}"
        )
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
        raise InputError(f"{where} needs a step above 0. Received: step={step!r}")
    if step is not None and not math.isclose((high - low) / step, round((high - low) / step), abs_tol=1e-9):
        # Optuna would warn and move high to the last step below it (a range of one value)
        raise InputError(
            f"{where} needs a step that divides high - low ({high - low:g}) into whole steps, such as "
            f"{(high - low) / max(1, round((high - low) / step)):g}. Received: step={step!r}"
        )
    # the type of the track's default decides: learning_rate = {low = 1, high = 2} is still a float
    is_int = isinstance(default, int) and not isinstance(default, bool)
    if default is None:
        is_int = all(isinstance(v, int) for v in (low, high, spec.get("step", 1)))
    return {**spec, "int": is_int}


def encode(choice):
    """Optuna's choices are scalars; a list choice (a layer shape) travels as "256,128"."""
    return ",".join(str(v) for v in choice) if isinstance(choice, list) else choice


def suggest(trial: optuna.Trial, space: dict[str, dict]) -> dict:
    """Sample one value per searched parameter, in the track's own types."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            decoded = {encode(c): c for c in spec["choices"]}
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
        out[name] = {encode(c): c for c in spec.get("choices", [])}.get(value, value)
    return out


def start_point(space: dict[str, dict], params: dict) -> dict:
    """The track's own parameters, in Optuna's encoding, where the space can hold them: trial 0.

    A study that starts there never ends below the untuned track, and TPE searches around a good
    point.
    """
    start = {}
    for name, spec in space.items():
        value = params.get(name)
        if value is None:
            continue
        if "choices" in spec:
            if value in spec["choices"]:
                start[name] = encode(value)
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and spec["low"] <= value <= spec["high"]
        ):
            step = spec.get("step")
            if step is None or math.isclose(
                (value - spec["low"]) / step, round((value - spec["low"]) / step)
            ):
                start[name] = value
    return start
