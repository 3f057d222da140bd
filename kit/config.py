"""Run configuration: defaults < the competition's TOML < --config FILE < command-line flags."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomllib

from kit.errors import InputError

try:
    import tomli_w
except ModuleNotFoundError:  # the Kaggle image lacks it; `dumps` below writes kit's configs then
    tomli_w = None


def _config_dir() -> Path:
    # a checkout keeps the competition TOMLs in pipelines/configs; the wheel ships them as kit/configs
    checkout = Path(__file__).resolve().parent.parent / "pipelines" / "configs"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "configs"


CONFIG_DIR = _config_dir()

# Track parameters; a TOML's [baseline] / [advanced] tables override them key by key.
TRACK_DEFAULTS = {
    "baseline": {
        "units": [128, 64],
        "dropout": 0.25,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "batch_size": 0,  # 0: chosen from the number of rows
        "epochs": 200,
        "patience": 10,
        "scaling": "standard",
        "embedding_size": 0,  # 0: chosen per column from its cardinality
    },
    # kit/tracks/advanced.py: TFT-style features, custom loop, any tf.distribute strategy
    "advanced": {
        "units": [512, 256],
        "dropout": 0.1,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "batch_size": 0,  # per replica; 0: chosen from the number of rows
        "epochs": 60,  # the cosine schedule spans them; early stopping usually ends sooner
        "patience": 12,
        "warmup": 0.05,  # fraction of all steps
        "clipnorm": 1.0,  # global gradient norm; 0: off
        "ema": 0.99,  # momentum of the weights' moving average (per step); 0: off
        "n_bins": 16,  # quantile bins per numeric column, embedded
        "min_frequency": 2,  # rarer strings share the out-of-vocabulary index
        "max_tokens": 10000,
        "embedding_size": 0,  # 0: chosen per column from its cardinality
        "strategy": "auto",  # auto, default, mirrored, multi_worker, tpu
        "precision": "auto",  # auto (bfloat16 on TPU, float16 on GPU, float32 on CPU), float32, ...
        "jit_compile": "auto",  # XLA: auto (on for GPUs), on, off
        "steps_per_execution": 0,  # train steps per call into the graph; 0: a whole epoch
        "checkpoint_seconds": 30.0,  # at most one checkpoint per this long, plus the last; 0: every epoch
    },
}


@dataclass
class Config:
    target: str | None = None
    id: str | None = None
    metric: str | None = None
    na: list[str] = field(default_factory=list)
    group: str | None = None
    time: str | None = None
    split: str = "auto"
    folds: int = 5
    seed: int = 0
    baseline: dict = field(default_factory=lambda: dict(TRACK_DEFAULTS["baseline"]))
    advanced: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)

    def update(self, values: dict, *, source: str) -> Config:
        """Override fields from a mapping (a TOML file or flags); None values are skipped."""
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise InputError(
                    f"Unknown setting '{key}' in {source}. Use one of: {', '.join(sorted(known))}. "
                    f"Received: {key}={value!r}"
                )
            if value is None:
                continue
            if key == "na" and isinstance(value, str):
                value = [value]
            _check_type(key, value, SETTING_TYPES.get(key, dict), source)
            if key in TRACK_DEFAULTS:
                unknown = set(value) - set(TRACK_DEFAULTS[key])
                if unknown:
                    raise InputError(
                        f"Unknown [{key}] setting(s) {sorted(unknown)} in {source}. Use: "
                        f"{', '.join(TRACK_DEFAULTS[key])}. Received: {sorted(unknown)}"
                    )
                for name, item in value.items():
                    default = TRACK_DEFAULTS[key][name]
                    # an int where a float is expected is fine (learning_rate = 1)
                    expected = (int, float) if isinstance(default, float) else type(default)
                    _check_type(f"[{key}] {name}", item, expected, source)
                getattr(self, key).update(value)
            elif key == "search":
                # [search.<track>] tables merge entry by entry, so a --config file can add one range
                # to the competition's without repeating the others
                for name, item in value.items():
                    current = self.search.get(name)
                    both = isinstance(item, dict) and isinstance(current, dict)
                    self.search[name] = {**current, **item} if both else item
            elif key == "advanced":
                getattr(self, key).update(value)
            else:
                setattr(self, key, value)
        return self

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    def write(self, path: Path) -> None:
        path.write_text(dumps(self.to_dict()))


def dumps(data: dict) -> str:
    """TOML text for a config mapping: tomli_w when installed, else a writer for what configs hold.

    That is strings, numbers, booleans, lists of them, and tables of them (nested tables inline).
    """
    if tomli_w is not None:
        return tomli_w.dumps(data)
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{_toml_key(name)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"Cannot write {type(value).__name__} to TOML. Received: {value!r}")


SETTING_TYPES = {
    "target": str, "id": str, "metric": str, "na": list, "group": str, "time": str,
    "split": str, "folds": int, "seed": int,
}  # fmt: skip


def _check_type(name: str, value, expected, source: str) -> None:
    # bool is an int to Python, never to a user
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        wanted = (
            " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
        )
        raise InputError(
            f"Setting {name} in {source} must be of type {wanted}. Fix the value. Received: {name}={value!r}"
        )


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Config file '{path}' does not exist. Received: config={path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"Config file '{path}' is not valid TOML: {err}. Fix the file.") from None


def resolve(competition: str, *, config: str | Path | None = None, **flags) -> Config:
    """Build the config for a competition folder's name, a --config file and flags."""
    cfg = Config()
    own = CONFIG_DIR / f"{competition}.toml"
    if own.is_file():
        cfg.update(read_toml(own), source=str(own))
    if config is not None:
        cfg.update(read_toml(config), source=str(config))
    return cfg.update(flags, source="the command line")
