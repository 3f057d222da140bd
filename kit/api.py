"""The Python API: the same verbs and settings as the `kit` command.

Keyword arguments are named like the command's flags (`--folds 5` is `folds=5`, `--out DIR` is
`out="DIR"`), and `data` takes what the command takes: a competition folder, `"tfds:NAME"` for a
tensorflow-datasets dataset, or nothing for the built-in demo. On Kaggle a bare name such as
`"titanic"` is found under /kaggle/input, and the final submission is also copied to
/kaggle/working/submission.csv.

Each registered track is a verb (`kit.baseline`, `kit.advanced`, ...: see `kit.tracks`), and
`run_track` runs any track, a team's own file included. The settings every verb takes are
`Settings` (what kit infers about the competition, overridden) and `RunSettings` (the folds).

>>> import kit
>>> run = kit.baseline("data/titanic", folds=5, seed=0)
>>> run.score, run.submission_path
"""

from __future__ import annotations

import inspect as _inspect
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict, Unpack

import polars as pl

from kit import config as config_mod
from kit import tracks
from kit.arguments import check
from kit.competition import Competition, discover
from kit.errors import InputError
from kit.run import Run


class Settings(TypedDict, total=False):
    """What kit infers about a competition, overridden; each as the command's flag of that name.

    config: a TOML file of settings (a run folder's config.toml works too).
    target: the column to predict. id: the id column. metric: the competition's metric
    (accuracy, roc_auc, log_loss, rmse, rmsle, ...). na: extra strings that mean missing.
    group: rows of a group stay in one fold. time: validate on later rows than the training rows.
    positive: a binary target's positive class (the one f1 scores; default: the last in sort order).
    """

    config: str | Path
    target: str
    id: str
    metric: str
    na: str | list[str]
    group: str
    time: str
    positive: str


class RunSettings(Settings, total=False):
    """`Settings`, and how to cross-validate: folds (default 5), split (auto, holdout, kfold,
    stratified, group or time), seed (default 0) and seeds (default 1: seed bagging, each fold
    trained with this many seeds and their predictions averaged)."""

    folds: int
    split: str
    seed: int
    seeds: int


def load(
    data: str | Path | None = None, **settings: Unpack[RunSettings]
) -> tuple[Competition, config_mod.Config]:
    """The competition and its resolved config.

    Args:
        data: competition folder, "tfds:NAME" (a tensorflow-datasets dataset laid out as a
            competition), or None: the competition attached to a Kaggle notebook, else the demo.
        settings: `RunSettings`.
    """
    from kit import kaggle, tfds
    from kit.demo import make_demo

    unknown = set(settings) - set(RunSettings.__annotations__)
    if unknown:
        raise TypeError(
            f"Unknown setting(s) {sorted(unknown)}. Settings are: {', '.join(RunSettings.__annotations__)}; "
            f"a track's function (kit.baseline, kit.trees, ...) also takes out, log and progress (see help() of it)"
        )
    check(data=data, config=settings.get("config"))
    config = settings.pop("config", None)
    if isinstance(settings.get("na"), str):
        settings["na"] = [settings["na"]]
    if tfds.is_source(data):
        data = tfds.materialize(data)
    else:
        data = kaggle.resolve_data(data)
    if data is None:
        data = make_demo(kaggle.data_root() / "penguins-demo")
    cfg = config_mod.resolve(data.resolve().name, config=config, **settings)
    try:
        comp = discover(
            data,
            target=cfg.target,
            id=cfg.id,
            metric=cfg.metric,
            na=tuple(cfg.na),
            group=cfg.group,
            time=cfg.time,
            positive=cfg.positive,
        )
    except InputError as err:
        raise config_mod.from_a_file(err, cfg) from None
    comp.notes.extend(tfds.notes(data))
    return comp, cfg


def _load_noted(data, log, settings: dict) -> tuple[Competition, config_mod.Config]:
    """`load`, then the competition's notes logged. A track calls it before importing TensorFlow,
    so a bad file fails fast and quietly."""
    comp, cfg = load(data, **settings)
    for note in comp.notes:
        log(f"note: {note}")
    return comp, cfg


def inspect(data: str | Path | None = None, **settings: Unpack[Settings]) -> Competition:
    """What kit infers about a competition folder (files, id, target, task, metric, roles).

    Example:
        >>> comp = kit.inspect("data/titanic")
        >>> comp.target, comp.task, comp.metric
    """
    _only_settings("inspect", settings)
    comp, _ = load(data, **settings)
    return comp


def _only_settings(verb: str, settings: dict) -> None:
    """A verb that takes `Settings` refuses any other keyword, a run's (folds, split, ...) too."""
    unknown = sorted(set(settings) - set(Settings.__annotations__))
    if unknown:
        run_only = set(RunSettings.__annotations__) - set(Settings.__annotations__)
        why = ": folds, split, seed and seeds are a run's settings" if run_only & set(unknown) else ""
        raise TypeError(
            f"kit.{verb} does not take {', '.join(unknown)}{why}. Use: {', '.join(Settings.__annotations__)}"
        )


def run_track(
    track: str | Path | ModuleType,
    data: str | Path | None = None,
    *,
    out: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    params: dict | None = None,
    stream: bool = False,
    **settings: Unpack[RunSettings],
) -> Run:
    """Cross-validate a track and write its run folder with a validated submission.

    Args:
        track: a registered track's name ("baseline", "advanced", ...), a track file
            ("path/to/my_track.py", see `kit.tracks`) or a module with the same names.
        data: as for `load`.
        out: the run folder (default `submissions/<competition>/<run-id>/`).
        progress: bars over folds and epochs; None shows them in a terminal or notebook only.
        log: where the run's lines go.
        params: the track's settings over the config's table for it, e.g. {"dropout": 0.2}.
        stream: train from Parquet shards through tf.data (`--stream`; the advanced track), as
            `params={"stream": "on"}` does.
        settings: `RunSettings` (config, target, id, metric, na, group, time, folds, split, seed).

    Returns:
        A `Run`: `score`, `fold_scores`, `submission_path`, `run_dir`, `oof`, `test_predictions`.

    Example:
        >>> run = kit.run_track("pipelines/my_track.py", "data/titanic", folds=5)
        >>> run.score, run.submission_path
    """
    from kit import kaggle

    check(track=track, data=data, out=out, progress=progress, log=log, params=params, stream=stream)
    check(config=settings.get("config"))
    track = tracks.get(track)  # first: a track file's [<name>] table is then a known setting
    if stream:
        if "stream" not in track.defaults:
            raise InputError(
                f"Track '{track.name}' cannot stream: it holds its folds in memory. Use the advanced "
                f"track, or leave stream out. Received: stream={stream}"
            )
        params = {**(params or {}), "stream": "on"}
    if params:
        track.check(params, source="params")
    comp, cfg = _load_noted(data, log, settings)
    from kit.run import cross_validate

    if params:
        params = {**cfg.tracks.get(track.name, {}), **params}
    run = cross_validate(comp, cfg, track, params=params, out=out, log=log, progress=progress)
    return kaggle.publish(run, log=log)


def _verb(name: str) -> Callable[..., Run]:
    """`kit.<track>(data, ...)`: `run_track` for one registered track, documented as its own verb."""

    def verb(data: str | Path | None = None, **settings) -> Run:
        return run_track(name, data, **settings)

    track = tracks.get(name)
    verb.__name__ = verb.__qualname__ = name
    verb.__doc__ = (
        f"{track.description[0].upper()}{track.description[1:]}.\n\n"
        f'`run_track("{name}", data, ...)`: the same keywords as the `kit {name}` flags; '
        f"the parameters come from the config's [{name}] table.\n\n"
        f'Example:\n    >>> run = kit.{name}("data/titanic", folds=5)\n    >>> run.score, run.submission_path\n'
    )
    signature = _inspect.signature(run_track)
    verb.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    verb.__wrapped__ = run_track  # help() and type checkers read run_track's keywords
    return verb


# one verb per registered track: kit.baseline(...), kit.advanced(...), ...
TRACK_VERBS = tuple(tracks.names())
for _name in TRACK_VERBS:
    globals()[_name] = _verb(_name)


def predict(
    model: str | Path,
    test: str | Path | Any,
    *,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Write a validated submission for a raw test file with a model exported by a track (`advanced`).

    Nothing but the model folder is needed: it holds the preprocessing, every fold and what the
    submission looks like (id column, classes, the sample file's columns and row order).

    Args:
        model: the exported model, `<run_dir>/model`.
        test: the test file, CSV or Parquet, as the competition gives it, or its rows (a polars or
            pandas DataFrame).
        out: the submission to write (default `submission.csv`, under /kaggle/working on Kaggle).

    Returns:
        The submission's path.

    Example:
        >>> kit.predict("submissions/titanic/20250101-120000-advanced/model", "data/titanic/test.csv")
    """
    from kit import kaggle
    from kit.serving import predict_file

    check(model=model, out=out, log=log)

    if out is None:
        out = kaggle.output_root() / kaggle.SUBMISSION_NAME
        if out.exists():  # whose it is kit cannot tell: naming it is the request to replace it
            raise InputError(
                f"'{out}' exists, and kit predict replaces a file only where --out names it. Pass --out "
                f"{out} to replace it, or another --out. Received: out=None"
            )
    if isinstance(test, str | Path) and os.path.realpath(out) == os.path.realpath(test):
        raise InputError(
            f"--out '{out}' is the test file itself, which the submission would replace. Pass another "
            f"--out. Received: out={out}"
        )
    return predict_file(model, test, out=out, log=log)


def tune(
    data: str | Path | None = None,
    *,
    track: str | Path | ModuleType = "baseline",
    trials: int | None = None,
    time_budget: float | None = None,
    storage: str | Path | None = None,
    study: str | None = None,
    pruner: str | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    **settings: Unpack[RunSettings],
):
    """Tune a track's parameters with Optuna; write best.toml, the best trial's submission and plots.

    Running the same call again continues the study (finished trials are kept, an interrupted one
    is retried); several processes given the same `out` or `storage` share one study.

    Args:
        track: a registered track's name ("baseline", "advanced", ...) or a track file.
        trials: finished trials the study should reach (default 50, or no limit with a time budget).
        time_budget: seconds for this call, a trial in progress included.
        storage: a journal file or an Optuna storage URL (sqlite:///..., postgresql://...);
            default `<out>/study.journal`.
        study: the study's name (default `<competition>-<track>`).
        pruner: "median" (default), "hyperband" or "none".
        out: the tuning folder (default `submissions/<competition>/tune-<track>/`).
        progress: a bar over the trials; None shows it in a terminal or notebook only.
        settings: `RunSettings`, as for `run_track`.

    Returns:
        A `kit.tuning.TuneResult`: `best_score`, `best_params`, `best_config` (best.toml),
        `best_run` (the best trial's run folder), `study`.

    Example:
        >>> result = kit.tune("data/titanic", track="baseline", trials=30, folds=3)
        >>> run = kit.baseline("data/titanic", config=result.best_config)
    """
    from kit import tuning

    check(data=data, track=track, trials=trials, storage=storage, study=study)
    if time_budget is not None:
        check(time_budget=time_budget)
    check(pruner=pruner, out=out, log=log, progress=progress, config=settings.get("config"))
    track = tracks.get(track)
    comp, cfg = _load_noted(data, log, settings)
    return tuning.tune(
        comp,
        cfg,
        track,
        n_trials=trials,
        time_budget=time_budget,
        storage=storage,
        study_name=study,
        pruner=pruner,
        out=out,
        log=log,
        progress=progress,
    )


def auto(
    data: str | Path | None = None,
    *,
    time_budget: float = 300.0,
    out: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    **settings: Unpack[RunSettings],
):
    """The best submission a time budget allows: trees, the networks, seeds, then their blend.

    Args:
        time_budget: seconds for the whole call (default 300); it ends within it and a tenth.
        out: the folder the members' and the blend's run folders go in (default
            `submissions/<competition>/`); running again with the same one reuses finished members.
        settings: `RunSettings`, as for `run_track` (every member uses the same folds).

    Returns:
        A `kit.automl.AutoResult`: `score`, `submission_path`, `final` (the blend's `Run`), `members`.

    Example:
        >>> result = kit.auto("data/titanic", time_budget=300)
        >>> result.score, result.submission_path
    """
    from kit.automl import auto as run_auto

    check(
        data=data, time_budget=time_budget, out=out, progress=progress, log=log, config=settings.get("config")
    )
    comp, cfg = _load_noted(data, log, settings)
    return run_auto(comp, cfg, time_budget=time_budget, out=out, log=log, progress=progress)


def blend(
    runs: list[str | Path | Run] | str | Path,
    *,
    out: str | Path | None = None,
    method: str = "auto",
    log: Callable[[str], None] = print,
) -> Run:
    """Blend runs by their out-of-fold predictions into a run folder of its own (`kit.ensemble`).

    Args:
        runs: run folders (or the `Run`s the tracks returned) of one competition made on the same
            folds (same split and seed); or a folder of run folders (`submissions/<competition>/`):
            every run in it; or a competition folder: every run of it under `submissions/<competition>/`.
        out: the blend's run folder (default `submissions/<competition>/<run-id>-blend/`).
        method: "auto" (the best by CV of hill climbing, bagged hill climbing, a level-2
            model and the best run alone), "hill", "bagged", "stack" or "best".

    Example:
        >>> base, trees = kit.baseline("data/titanic"), kit.trees("data/titanic")
        >>> run = kit.blend([base, trees])
    """
    from kit import kaggle
    from kit.ensemble import blend as blend_runs

    check(runs=runs, out=out, method=method, log=log)
    if isinstance(runs, list | tuple):
        runs = [r.run_dir if isinstance(r, Run) else r for r in runs]

    return kaggle.publish(blend_runs(runs, out=out, method=method, log=log), log=log)


def validate(
    submission: str | Path, data: str | Path | None = None, **settings: Unpack[Settings]
) -> pl.DataFrame:
    """Check a submission file against the competition; returns it, or raises `InputError`.

    A run folder's own submission is checked under that run's settings (its config.toml: the
    metric that made it probabilities, its target, ...) unless `config` names another file, and
    against the competition folder the run was made from unless `data` names one. Any other file
    needs `data` (on Kaggle, the competition attached to the notebook is taken).

    Example:
        >>> kit.validate("submission.csv", "data/titanic")
        >>> kit.validate(run.submission_path)
    """
    from kit import kaggle
    from kit.submission import validate_file

    check(submission=submission, data=data, config=settings.get("config"))
    _only_settings("validate", settings)
    if settings.get("config") is None:
        settings["config"] = run_config_of(submission)
    if data is None:
        data = run_data_of(submission) or kaggle.resolve_data(None)
    if data is None:  # never the demo: a submission is for a competition of the user's
        if not Path(submission).is_file():
            raise InputError(f"File '{submission}' does not exist. Received: submission={submission}")
        raise InputError(
            f"Which competition is '{submission}' for? It is not in a run folder of kit's, so pass the "
            f"competition folder too: kit.validate(submission, data) or kit validate SUBMISSION DIR. "
            f"Received: data=None"
        )
    comp, _ = load(data, **settings)
    return validate_file(submission, comp)


def run_data_of(submission: str | Path) -> Path | None:
    """The competition folder the run folder a submission file is in was made from, if kit wrote
    that folder; `InputError` where that competition folder is gone."""
    from kit.io import kit_manifest

    # the user's own files beside it (kit predict's output, say) do not make it another run's
    info = kit_manifest(Path(submission).parent)
    data = info.get("data") if info is not None else None
    if not data:
        return None
    if not Path(data).is_dir():
        raise InputError(
            f"'{submission}' was made from the competition folder {data}, which is gone. Pass the "
            f"competition folder too: kit.validate(submission, data) or kit validate SUBMISSION DIR. "
            f"Received: data={data}"
        )
    return Path(data)


def run_config_of(submission: str | Path) -> Path | None:
    """The config.toml of the run folder a submission file is in, if kit wrote that folder."""
    from kit.io import kit_manifest

    folder = Path(submission).parent
    config = folder / "config.toml"
    return config if config.is_file() and kit_manifest(folder) is not None else None


def report(run, *, log: Callable[[str], None] = print) -> Path:
    """Write report.html again into a run folder, a blend's or a tuning folder; returns its path.

    The page is built from the folder's files (what a run wrote there), so it shows the same as
    the one the run wrote, with the leaderboard as it stands now.

    Args:
        run: a `Run` or a `TuneResult`, or the path of a run folder or a tuning folder.

    Example:
        >>> kit.report("submissions/titanic/20250101-120000-baseline")
        >>> kit.report(run)        # a Run from kit.baseline(...)
    """
    from kit.io import kit_manifest
    from kit.reporting import write_report
    from kit.tuning import is_tuning_dir

    check(run=run, log=log)
    folder = Path(getattr(run, "run_dir", None) or getattr(run, "out", None) or run)
    has_results = any((folder / name).is_file() for name in ("metrics.json", "summary.json"))
    if has_results and kit_manifest(folder) is None and not is_tuning_dir(folder):
        # its report.html would be replaced: kit writes only into folders of its own
        raise InputError(
            f"'{folder}' is not a run folder or a tuning folder kit wrote (no manifest.json with kit's "
            f"mark, no study of kit's), so kit does not write report.html into it. Pass one kit wrote. "
            f"Received: path={folder}"
        )
    path = write_report(folder)
    log(f"report: {path}")
    return path


def leaderboard(root: str | Path | None = None, *, log: Callable[[str], None] = print) -> pl.DataFrame:
    """Every run under `root` (default `submissions/`; on Kaggle under /kaggle/working), best CV first,
    with the split its score is from (a holdout's and a k-fold's scores are not alike). A note
    names the run folders left out because their metrics.json cannot be read."""
    from kit.run_folder import leaderboard as rows

    check(root=root, log=log)
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise InputError(f"root '{root}' is a file: pass the folder of the runs. Received: root={root}")
    skipped: list[Path] = []
    found = rows(root, skipped=skipped)
    if skipped:
        log(
            f"note: left out {len(skipped)} run folder(s) whose metrics.json cannot be read or holds no "
            f"score ({', '.join(str(p) for p in skipped[:3])}{', ...' if len(skipped) > 3 else ''})"
        )
    columns = ["competition", "track", "metric", "direction", "score", "split", "folds", "run_dir"]
    return pl.DataFrame(
        [{k: r.get(k) for k in columns} for r in found],
        schema={**dict.fromkeys(columns, pl.String), "score": pl.Float64, "folds": pl.Int64},
        orient="row",
    )
