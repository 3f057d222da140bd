"""The Python API: the same verbs and settings as the `kit` command.

Keyword arguments are named like the command's flags (`--folds 5` is `folds=5`, `--out DIR` is
`out="DIR"`), and `data` takes what the command takes: a competition folder, `"tfds:NAME"` for a
tensorflow-datasets dataset, or nothing for the built-in demo. On Kaggle a bare name such as
`"titanic"` is found under /kaggle/input, and the final submission is also copied to
/kaggle/working/submission.csv.

>>> import kit
>>> run = kit.baseline("data/titanic", folds=5, seed=0)
>>> run.score, run.submission_path
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from kit import config as config_mod
from kit.competition import Competition, discover
from kit.run import Run

COMPETITION_KEYS = ("target", "id", "metric", "na", "group", "time")
RUN_KEYS = ("folds", "split", "seed")


def load(
    data: str | Path | None = None, *, config: str | Path | None = None, **settings
) -> tuple[Competition, config_mod.Config]:
    """The competition and its resolved config.

    Args:
        data: competition folder, "tfds:NAME" (a tensorflow-datasets dataset laid out as a
            competition), or None: the competition attached to a Kaggle notebook, else the demo.
        config: a TOML file of settings.
        settings: target, id, metric, na, group, time, folds, split, seed (as the CLI flags).
    """
    from kit import kaggle, tfds
    from kit.demo import make_demo

    unknown = set(settings) - set(COMPETITION_KEYS) - set(RUN_KEYS)
    if unknown:
        raise TypeError(
            f"Unknown setting(s) {sorted(unknown)}. Use: {', '.join(COMPETITION_KEYS + RUN_KEYS)}"
        )
    if isinstance(settings.get("na"), str):
        settings["na"] = [settings["na"]]
    if tfds.is_source(data):
        data = tfds.materialize(data)
    else:
        data = kaggle.resolve_data(data)
    if data is None:
        data = make_demo(kaggle.data_root() / "penguins-demo")
    cfg = config_mod.resolve(data.resolve().name, config=config, **settings)
    comp = discover(
        data,
        target=cfg.target,
        id=cfg.id,
        metric=cfg.metric,
        na=tuple(cfg.na),
        group=cfg.group,
        time=cfg.time,
    )
    comp.notes.extend(tfds.notes(data))
    return comp, cfg


def _load_noted(data, config, log, **settings) -> tuple[Competition, config_mod.Config]:
    """`load`, then the competition's notes logged. A track calls it before importing TensorFlow,
    so a bad file fails fast and quietly."""
    comp, cfg = load(data, config=config, **settings)
    for note in comp.notes:
        log(f"note: {note}")
    return comp, cfg


def inspect(
    data: str | Path | None = None,
    *,
    config: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: str | list[str] | None = None,
    group: str | None = None,
    time: str | None = None,
) -> Competition:
    """What kit infers about a competition folder (files, id, target, task, metric, roles).

    Example:
        >>> comp = kit.inspect("data/titanic")
        >>> comp.target, comp.task, comp.metric
    """
    comp, _ = load(data, config=config, target=target, id=id, metric=metric, na=na, group=group, time=time)
    return comp


def baseline(
    data: str | Path | None = None,
    *,
    config: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: str | list[str] | None = None,
    group: str | None = None,
    time: str | None = None,
    folds: int | None = None,
    split: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> Run:
    """Cross-validate the fast Keras baseline and write a validated submission.

    Args:
        data, config, target, id, metric, na, group, time, folds, split, seed, out: as the
            `kit baseline` flags of the same names.
        progress: bars over folds and epochs; None shows them in a terminal or notebook only.
        log: where the run's lines go.

    Returns:
        A `Run`: `score`, `fold_scores`, `submission_path`, `run_dir`, `oof`, `test_predictions`.

    Example:
        >>> run = kit.baseline("data/titanic", folds=5)
        >>> run.score, run.fold_scores, run.submission_path
    """
    from kit import kaggle

    comp, cfg = _load_noted(
        data, config, log, target=target, id=id, metric=metric, na=na, group=group, time=time,
        folds=folds, split=split, seed=seed,
    )  # fmt: skip
    from kit.run import cross_validate
    from kit.tracks.baseline import fit_predict_fold

    run = cross_validate(
        comp,
        cfg,
        fit_predict_fold,
        track="baseline",
        params=cfg.baseline,
        out=out,
        log=log,
        progress=progress,
    )
    return kaggle.publish(run, log=log)


def advanced(
    data: str | Path | None = None,
    *,
    config: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: str | list[str] | None = None,
    group: str | None = None,
    time: str | None = None,
    folds: int | None = None,
    split: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> Run:
    """Cross-validate the advanced TensorFlow track; write a validated submission and `model/`.

    TFT-style features baked into the model, tf.data input, a custom training loop on the
    strategy this machine suits (TPU, several GPUs, one device; printed), checkpoints that a
    rerun with the same `out` resumes from, TensorBoard logs, and all fold models exported as
    one SavedModel under `<run_dir>/model/` that takes raw rows (see `predict`). The track's
    parameters come from the config's [advanced] table.

    Args:
        data, config, target, id, metric, na, group, time, folds, split, seed, out, progress,
            log: as for `baseline`.

    Returns:
        A `Run`, as for `baseline`; `run.run_dir / "model"` is the exported model.

    Example:
        >>> run = kit.advanced("data/titanic", folds=5)
        >>> run.score, run.submission_path, run.run_dir / "model"
    """
    from kit import kaggle

    comp, cfg = _load_noted(
        data, config, log, target=target, id=id, metric=metric, na=na, group=group, time=time,
        folds=folds, split=split, seed=seed,
    )  # fmt: skip
    from kit.tracks.advanced import run as run_advanced

    run = run_advanced(comp, cfg, out=out, log=log, progress=progress)
    return kaggle.publish(run, log=log)


def predict(
    model: str | Path,
    test: str | Path,
    *,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Write a validated submission for a raw test file with a model exported by `advanced`.

    Nothing but the model folder is needed: it holds the preprocessing, every fold and what the
    submission looks like (id column, classes, the sample file's columns and row order).

    Args:
        model: the exported model, `<run_dir>/model`.
        test: the test file, CSV or Parquet, as the competition gives it.
        out: the submission to write (default `submission.csv`, under /kaggle/working on Kaggle).

    Returns:
        The submission's path.

    Example:
        >>> kit.predict("submissions/titanic/20250101-120000-advanced/model", "data/titanic/test.csv")
    """
    from kit import kaggle
    from kit.serving import predict_file

    if out is None:
        out = kaggle.output_root() / kaggle.SUBMISSION_NAME
    return predict_file(model, test, out=out, log=log)


def tune(
    data: str | Path | None = None,
    *,
    track: str = "baseline",
    trials: int | None = None,
    time_budget: float | None = None,
    storage: str | Path | None = None,
    study: str | None = None,
    pruner: str | None = None,
    config: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: str | list[str] | None = None,
    group: str | None = None,
    time: str | None = None,
    folds: int | None = None,
    split: str | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
):
    """Tune a track's parameters with Optuna; write best.toml, the best trial's submission and plots.

    Running the same call again continues the study (finished trials are kept, an interrupted one
    is retried); several processes given the same `out` or `storage` share one study.

    Args:
        track: "baseline" or "advanced".
        trials: finished trials the study should reach (default 50, or no limit with a time budget).
        time_budget: seconds for this call, a trial in progress included.
        storage: a journal file or an Optuna storage URL (sqlite:///..., postgresql://...);
            default `<out>/study.journal`.
        study: the study's name (default `<competition>-<track>`).
        pruner: "median" (default), "hyperband" or "none".
        out: the tuning folder (default `submissions/<competition>/tune-<track>/`).
        progress: a bar over the trials; None shows it in a terminal or notebook only.
        data, config, target, id, metric, na, group, time, folds, split, seed: as for `baseline`.

    Returns:
        A `kit.tuning.TuneResult`: `best_score`, `best_params`, `best_config` (best.toml),
        `best_run` (the best trial's run folder), `study`.

    Example:
        >>> result = kit.tune("data/titanic", track="baseline", trials=30, folds=3)
        >>> run = kit.baseline("data/titanic", config=result.best_config)
    """
    from kit import tuning

    fit_predict_fold = tuning.fit_predict_fold_for(track)
    comp, cfg = _load_noted(
        data, config, log, target=target, id=id, metric=metric, na=na, group=group, time=time,
        folds=folds, split=split, seed=seed,
    )  # fmt: skip
    return tuning.tune(
        comp,
        cfg,
        fit_predict_fold,
        track=track,
        n_trials=trials,
        time_budget=time_budget,
        storage=storage,
        study_name=study,
        pruner=pruner,
        out=out,
        log=log,
        progress=progress,
    )


def validate(
    submission: str | Path,
    data: str | Path | None = None,
    *,
    config: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    metric: str | None = None,
    na: str | list[str] | None = None,
    group: str | None = None,
    time: str | None = None,
) -> pl.DataFrame:
    """Check a submission file against the competition; returns it, or raises `InputError`.

    Example:
        >>> kit.validate("submission.csv", "data/titanic")
    """
    from kit.submission import validate_file

    comp, _ = load(data, config=config, target=target, id=id, metric=metric, na=na, group=group, time=time)
    return validate_file(submission, comp)


def leaderboard(root: str | Path | None = None) -> pl.DataFrame:
    """Every run under `root` (default `submissions/`; on Kaggle under /kaggle/working), best CV first."""
    from kit.run import leaderboard as rows

    return pl.DataFrame(rows(root))
