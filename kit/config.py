"""Run configuration: defaults < the competition's TOML < --config FILE < command-line flags.

A TOML holds the competition's settings (`metric = "rmsle"`, `group = ...`), one table per track
(`[baseline]`, `[advanced]`, any registered track: its parameters, checked against the track's
DEFAULTS and LIMITS) and a `[search]` table for tuning.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path

import tomllib

from kit import tracks
from kit.errors import InputError
from kit.tracks import check_limit, check_type

try:
    import tomli_w
except ModuleNotFoundError:  # the Kaggle image lacks it; kit's wheel carries a copy (`make wheel`)
    import sys

    sys.path.append(str(Path(__file__).resolve().parent / "_vendor"))
    import tomli_w


def _config_dir() -> Path:
    # a checkout keeps the competition TOMLs in pipelines/configs; the wheel ships them as kit/configs
    checkout = Path(__file__).resolve().parent.parent / "pipelines" / "configs"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "configs"


CONFIG_DIR = _config_dir()

SETTING_TYPES = {
    "target": str, "id": str, "metric": str, "na": list, "group": str, "time": str, "positive": str,
    "split": str, "folds": int, "seed": int, "seeds": int,
}  # fmt: skip
SETTING_LIMITS = {"folds": "[1, 1000]", "seed": "[0, 4294967295]", "seeds": "[1, 100]"}


def _team_track_file(name: str, source: str) -> Path | None:
    """A team's track file for a table named `name`: in pipelines/ (of the current folder or the
    TOML's project) or beside the TOML."""
    toml = Path(source)
    places = [Path("pipelines"), Path(".")]
    if toml.suffix == ".toml":
        places += [toml.parent, toml.parent.parent]  # pipelines/configs/<competition>.toml
    return next((p / f"{name}.py" for p in places if (p / f"{name}.py").is_file()), None)


@dataclass
class Config:
    """Settings of a run; `params(track)` gives a track's parameters.

    Attributes:
        tracks: per track, the parameters a TOML or a tuner set (the rest are the defaults).
        search: the [search] table for tuning.
    """

    target: str | None = None
    id: str | None = None
    metric: str | None = None
    na: list[str] = field(default_factory=list)
    group: str | None = None
    time: str | None = None
    # a binary target's positive class: the one f1 scores, whose probability a one-column
    # submission holds (default: the class that sorts last, as "1", "True", "Yes" do)
    positive: str | None = None
    split: str = "auto"
    folds: int = 5
    seed: int = 0
    seeds: int = 1  # seed bagging: each fold trained this many times, predictions averaged
    tracks: dict[str, dict] = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    # where each setting came from (a TOML's path, the flags), for errors that name it
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def params(self, track: str) -> dict:
        """The track's parameters: its defaults with this config's [<track>] table on top."""
        return tracks.get(track).params(self.tracks.get(track))

    def update(self, values: dict, *, source: str) -> Config:
        """Override fields from a mapping (a TOML file or flags); None values are skipped."""
        for key, value in values.items():
            if value is None:
                continue
            if key in SETTING_TYPES:
                if key == "na" and isinstance(value, str):
                    value = [value]
                check_type(key, value, SETTING_TYPES[key], source)
                if key == "na":
                    for token in value:
                        check_type("na (each token)", token, str, source)
                if key in SETTING_LIMITS:
                    check_limit(key, value, SETTING_LIMITS[key], source)
                setattr(self, key, value)
                self.sources[key] = source
            elif key == "search":
                check_type(key, value, dict, source)
                # [search.<track>] tables merge entry by entry, so a --config file can add one range
                # to the competition's without repeating the others
                for name, item in value.items():
                    current = self.search.get(name)
                    both = isinstance(item, dict) and isinstance(current, dict)
                    self.search[name] = {**current, **item} if both else item
                if "pruner" in value:  # the track tables are checked where the tracks are known
                    check_search_table({"pruner": value["pruner"]})
            elif key in tracks.known():
                check_type(key, value, dict, source)
                tracks.get(key).check(value, source=source)
                self.tracks.setdefault(key, {}).update(value)
            elif isinstance(value, dict) and _team_track_file(key, source) is not None:
                # a team track's table in the competition's TOML, for `kit run` of its file: the
                # other tracks leave it be (it is checked when that track loads)
                self.tracks.setdefault(key, {}).update(value)
            else:
                close = difflib.get_close_matches(key, [*SETTING_TYPES, "search", *tracks.known()], n=1)
                raise InputError(
                    f"Unknown setting '{key}' in {source}{f' (did you mean {close[0]!r}?)' if close else ''}. "
                    f"Use one of: {', '.join(SETTING_TYPES)}, search, "
                    f"or a track's table: {', '.join(tracks.known())} (or a team track's, where its file "
                    f"{key}.py is in pipelines/ or beside the TOML). Received: {key}={value!r}"
                )
        return self

    def resolved(
        self, comp, *, track: str | None = None, params: dict | None = None, folds: int | None = None
    ) -> Config:
        """A copy with what the competition inferred filled in (and a track's full parameters, and
        the number of folds used where the data allowed fewer than asked), as a run folder's
        config.toml records it: passing it back reproduces the run."""
        out = copy.deepcopy(self).update(
            {
                "target": comp.target,
                "id": comp.id,
                "metric": comp.metric,
                "group": comp.group,
                "time": comp.time,
                "positive": str(comp.classes[1]) if comp.task == "binary" else None,
                "folds": folds,
            },
            source="the run",
        )
        if track is not None and params is not None:
            out.tracks[track] = dict(params)
        return out

    def to_dict(self) -> dict:
        """The TOML's mapping: settings, one table per track, [search]."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("tracks", "search", "sources")
        }
        out = {k: v for k, v in out.items() if v is not None and v != []}
        out.update({name: dict(table) for name, table in self.tracks.items() if table})
        if self.search:
            out["search"] = copy.deepcopy(self.search)
        return out

    def write(self, path: Path) -> None:
        from kit.io import write_atomic

        write_atomic(path, dumps(self.to_dict()))


def dumps(data: dict) -> str:
    """TOML text for a config mapping."""
    return tomli_w.dumps(data)


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"Config file '{path}' is a folder. Pass a TOML file. Received: config={path}")
    if not path.is_file():
        raise InputError(f"Config file '{path}' does not exist. Received: config={path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"Config file '{path}' is not valid TOML: {err}. Fix the file.") from None


FLAGS = "the flags (or keyword arguments)"


def resolve(competition: str, *, config: str | Path | None = None, **flags) -> Config:
    """Build the config for a competition folder's name, a --config file and flags."""
    cfg = Config()
    own = CONFIG_DIR / f"{competition}.toml"
    if own.is_file():
        cfg.update(read_toml(own), source=str(own))
    if config is not None:
        cfg.update(read_toml(config), source=str(config))
    return cfg.update(flags, source=FLAGS)


def from_a_file(err: InputError, cfg: Config) -> InputError:
    """The error, saying which TOML set the settings its fix names as flags ("Pass --time ...")
    where a file did: the competition's own config in pipelines/configs is read by folder name."""
    said = [
        f"{key} = {getattr(cfg, key)!r} is set by {source}"
        for key, source in cfg.sources.items()
        if source != FLAGS and f"--{key} " in str(err) + " "
    ]
    if not said:
        return err
    return InputError(f"{err} ({'; '.join(said)})")


PRUNERS = ("median", "hyperband", "none")
SEARCH_SETTINGS = ("pruner",)  # [search] keys that are not track tables


def check_search_table(search: dict) -> None:
    """Reject [search] keys that are neither a track table nor a known setting."""
    for key, value in search.items():
        if key in tracks.known():
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
                f"Unknown [search] setting '{key}'. Use a track table ({', '.join(tracks.known())}) or "
                f"one of: {', '.join(SEARCH_SETTINGS)}. Received: {key}={value!r}"
            )
