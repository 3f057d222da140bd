"""Run configuration: defaults < the competition's TOML < --config FILE < command-line flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomli_w
import tomllib

from kit.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "pipelines" / "configs"

# Track parameters; a TOML's [baseline] / [advanced] tables override them key by key.
TRACK_DEFAULTS = {
    "baseline": {
        "units": [256, 128],
        "dropout": 0.15,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "batch_size": 0,  # 0: chosen from the number of rows
        "epochs": 200,
        "patience": 15,
        "scaling": "quantile",
        "embedding_size": 0,  # 0: chosen per column from its cardinality
    },
    # kit/advanced.py: TFT-style features, custom loop, any tf.distribute strategy
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
        "ema": 0.0,  # moving average of the weights, e.g. 0.99; 0: off
        "n_bins": 16,  # quantile bins per numeric column, embedded
        "min_frequency": 2,  # rarer strings share the out-of-vocabulary index
        "max_tokens": 10000,
        "embedding_size": 0,  # 0: chosen per column from its cardinality
        "strategy": "auto",  # auto, default, mirrored, multi_worker, tpu
        "precision": "auto",  # auto (bfloat16 on TPU, float16 on GPU, float32 on CPU), float32, ...
        "jit_compile": "auto",  # XLA: auto (on for GPU/TPU), true, false
        "steps_per_execution": 0,  # train steps per call into the graph; 0: a whole epoch
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
            if key in TRACK_DEFAULTS:
                unknown = set(value) - set(TRACK_DEFAULTS[key])
                if unknown:
                    raise InputError(
                        f"Unknown [{key}] setting(s) {sorted(unknown)} in {source}. Use: "
                        f"{', '.join(TRACK_DEFAULTS[key])}. Received: {sorted(unknown)}"
                    )
                getattr(self, key).update(value)
            elif key in ("advanced", "search"):
                getattr(self, key).update(value)
            else:
                setattr(self, key, value)
        return self

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    def write(self, path: Path) -> None:
        path.write_text(tomli_w.dumps(self.to_dict()))


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
