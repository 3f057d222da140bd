"""The `kit` command.

    kit inspect DIR                 what kit infers about a competition folder
    kit baseline [DIR] [flags]      fast Keras baseline -> CV score + validated submission
    kit advanced [DIR] [flags]      custom TF loop, any accelerator -> submission + exported model
    kit TRACK [DIR] [flags]         any track in kit/tracks/ (one subcommand each)
    kit run FILE.py [DIR] [flags]   a team's own track file, the same way
    kit predict MODEL TEST --out F  exported model + raw test file -> validated submission
    kit tune [DIR] --track T        Optuna search over a track's parameters -> best.toml
    kit validate SUBMISSION [DIR]   check any submission file against the competition
    kit blend RUN... [--out DIR]    blend runs by their out-of-fold predictions
    kit auto [DIR] --time-budget S  trees, a linear model, networks, seeds in a budget, then their blend
    kit report RUN_DIR              write the run's (or a tuning folder's) report.html again
    kit leaderboard                 runs by CV score

Bad input prints one line on stderr and exits with code 2; anything else that goes wrong prints
one line saying where its traceback was saved and exits with code 1 (see `kit.boundary`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable

from kit import boundary, tracks


def _competition_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="column to predict (default: inferred from the sample file)")
    parser.add_argument("--id", help="id column (default: the sample file's first column)")
    parser.add_argument(
        "--metric",
        help="competition metric, e.g. accuracy, roc_auc, log_loss, f1, mcc, rmse, rmsle (or AUC, RMSLE, ...)",
    )
    parser.add_argument(
        "--na",
        action="append",
        default=None,
        metavar="TOKEN",
        help="extra string that means missing (repeatable), e.g. --na '?'; pandas' NA, n/a, #N/A, ... are",
    )
    parser.add_argument("--group", help="group column for group k-fold (rows of a group stay together)")
    parser.add_argument("--time", help="time column for time-ordered validation")
    parser.add_argument(
        "--positive",
        help="a binary target's positive class, which f1 scores (default: the last in sort order)",
    )
    parser.add_argument("--config", help="TOML file with settings (a run folder's config.toml works too)")


def _run_flags(
    parser: argparse.ArgumentParser, out: str = "run folder (default submissions/<competition>/<run-id>/)"
) -> None:
    parser.add_argument("--folds", type=int, help="number of folds (default 5)")
    parser.add_argument("--split", help="auto, holdout, kfold, stratified, group or time (default auto)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument(
        "--seeds", type=int, help="train each fold with this many seeds and average them (default 1)"
    )
    parser.add_argument("--out", help=out)


DATA_HELP = "competition folder, or tfds:NAME for a tensorflow-datasets dataset (default: the built-in demo)"


class _Parser(argparse.ArgumentParser):
    """argparse, with a wrong flag said in one line like every other error (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"kit: error: {message}. Run `{self.prog} --help` for the flags.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kit", description="Kaggle-style competition starter kit.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show what kit infers about a competition folder")
    p.add_argument("data", nargs="?", help=DATA_HELP)
    _competition_flags(p)

    for name in tracks.names():
        p = sub.add_parser(name, help=tracks.get(name).description)
        p.add_argument("data", nargs="?", help=DATA_HELP)
        _competition_flags(p)
        _run_flags(p)
        if "stream" in tracks.get(name).defaults:
            p.add_argument(
                "--stream",
                action="store_true",
                help="train from Parquet shards through tf.data (default: only a fold above stream_above_mib)",
            )

    p = sub.add_parser("run", help="a track of your own: a Python file with DEFAULTS and fit_predict_fold")
    p.add_argument("track", help="the track file, e.g. pipelines/my_track.py")
    p.add_argument("data", nargs="?", help=DATA_HELP)
    _competition_flags(p)
    _run_flags(p)

    p = sub.add_parser("predict", help="validated submission from a model exported by `kit advanced`")
    p.add_argument("model", help="the exported model: a run folder's model/ folder")
    p.add_argument("test", help="the test file (CSV or Parquet), raw as the competition gives it")
    p.add_argument("--out", help="submission file to write (default submission.csv)")

    p = sub.add_parser("validate", help="check a submission file against the competition's sample")
    p.add_argument("submission", help="the submission file")
    p.add_argument("data", nargs="?", help="competition folder (default: a run folder's own)")
    _competition_flags(p)

    p = sub.add_parser(
        "tune", help="tune a track with Optuna: best.toml, the best trial's submission, plots, trials.csv"
    )
    p.add_argument("data", nargs="?", help=DATA_HELP)
    _competition_flags(p)
    _run_flags(
        p,
        out="the study's folder: trials, plots, best.toml (default submissions/<competition>/tune-<track>/)",
    )
    p.add_argument(
        "--track",
        default="baseline",
        help=f"{', '.join(tracks.names())}, or a track file (default baseline)",
    )
    p.add_argument(
        "--trials",
        type=int,
        help="finished trials the study should reach (default 50; none with --time-budget)",
    )
    p.add_argument(
        "--time-budget", type=float, metavar="SECONDS", help="stop after this long, a running trial included"
    )
    p.add_argument(
        "--storage",
        metavar="URL_OR_FILE",
        help="journal file, or sqlite:///FILE, postgresql://... for workers on several machines "
        "(default OUT/study.journal)",
    )
    p.add_argument("--study", help="study name (default <competition>-<track>)")
    p.add_argument("--pruner", help="median, hyperband or none (default median)")

    p = sub.add_parser(
        "auto", help="the best submission a time budget allows: trees, linear, networks, their blend"
    )
    p.add_argument("data", nargs="?", help=DATA_HELP)
    _competition_flags(p)
    _run_flags(
        p,
        out="the folder of its members' run folders, auto-trees/ ... auto-blend/ (default submissions/<competition>/)",
    )
    p.add_argument(
        "--time-budget", type=float, default=300.0, metavar="SECONDS", help="for the whole call (default 300)"
    )

    p = sub.add_parser(
        "blend", help="blend runs by their out-of-fold predictions: a run folder with a validated submission"
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="run folders made on the same folds, or one folder of run folders or competition folder (all its runs)",
    )
    p.add_argument("--out", help="the blend's run folder (default submissions/<competition>/<run-id>-blend/)")
    p.add_argument(
        "--method", default="auto", help="auto, hill, bagged, stack or best (default auto: the best by CV)"
    )
    p = sub.add_parser("report", help="write report.html again in a run folder, a blend's or a tuning folder")
    p.add_argument("run", metavar="RUN_DIR", help="the run folder (or tuning folder) to write it in")

    p = sub.add_parser("leaderboard", help="list runs by CV score")
    p.add_argument(
        "--root", help="folder of run folders (default submissions/, under /kaggle/working on Kaggle)"
    )
    return parser


def settings(args: argparse.Namespace) -> dict:
    """The competition and run flags that were given, as keyword arguments for `kit.api`."""
    keys = ("target", "id", "metric", "na", "group", "time", "positive", "folds", "split", "seed", "seeds")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def cmd_inspect(args) -> int:
    from kit import api

    comp = api.inspect(args.data, config=args.config, **settings(args))
    rows = comp.summary() + [("note", n) for n in comp.notes]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_track(args) -> int:
    from kit import api

    track = args.track if args.command == "run" else args.command
    stream = bool(getattr(args, "stream", False))
    api.run_track(track, args.data, config=args.config, out=args.out, stream=stream, **settings(args))
    return 0


def cmd_predict(args) -> int:
    from kit import api

    api.predict(args.model, args.test, out=args.out)
    return 0


def cmd_validate(args) -> int:
    from kit import api

    config = args.config or api.run_config_of(args.submission)
    frame = api.validate(args.submission, args.data, config=config, **settings(args))
    under = f"; checked under its run's {config}" if config is not None and not args.config else ""
    print(f"{args.submission}: OK ({frame.height} rows, columns {', '.join(frame.columns)}{under})")
    return 0


def cmd_auto(args) -> int:
    from kit import api

    api.auto(args.data, time_budget=args.time_budget, out=args.out, config=args.config, **settings(args))
    return 0


def cmd_blend(args) -> int:
    from kit import api

    api.blend(args.runs if len(args.runs) > 1 else args.runs[0], out=args.out, method=args.method)
    return 0


def cmd_leaderboard(args) -> int:
    from kit import api
    from kit.kaggle import submissions_root

    root = args.root or submissions_root()
    board = api.leaderboard(root)
    if board.is_empty():
        print(f"no runs under {root}/ yet: run `kit baseline DIR` first")
        return 0
    print(f"{'competition':<28} {'track':<9} {'metric':<9} {'cv':>10}  {'split':<14} run")
    for r in board.iter_rows(named=True):
        split = r["split"] or "?"
        if r["folds"] and split != "holdout":
            split = f"{split} x{r['folds']}"
        print(
            f"{r['competition']:<28} {r['track']:<9} {r['metric']:<9} {r['score']:>10.5f}  {split:<14} {r['run_dir']}"
        )
    return 0


def cmd_report(args) -> int:
    from kit import api

    api.report(args.run)
    return 0


def cmd_tune(args) -> int:
    from kit import api

    api.tune(
        args.data,
        track=args.track,
        trials=args.trials,
        time_budget=args.time_budget,
        storage=args.storage,
        study=args.study,
        pruner=args.pruner,
        config=args.config,
        out=args.out,
        **settings(args),
    )
    return 0


COMMANDS = {
    "inspect": cmd_inspect,
    "run": cmd_track,
    **{name: cmd_track for name in tracks.names()},
    "predict": cmd_predict,
    "validate": cmd_validate,
    "blend": cmd_blend,
    "auto": cmd_auto,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "tune": cmd_tune,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # imports the tracks (scikit-learn): a second or two
    except SystemExit as done:  # --help, or a wrong flag (said in one line by _Parser.error)
        return done.code if isinstance(done.code, int) else 2
    except KeyboardInterrupt:
        print(NOTHING_WRITTEN, file=sys.stderr)
        return 130
    return guarded(COMMANDS[args.command], args, interrupted=INTERRUPTED.get(args.command, NOTHING_WRITTEN))


# what Ctrl-C leaves, said by the command it stopped
UNFINISHED_RUN = "kit: interrupted; the unfinished run's folder was not written"
NOTHING_WRITTEN = "kit: interrupted; nothing was written"
INTERRUPTED = {
    **dict.fromkeys(("run", "baseline", "trees", "linear", "blend"), UNFINISHED_RUN),
    "advanced": UNFINISHED_RUN + " (its checkpoints stay beside it, in .<run>.work: the same command with "
    "--out naming that run goes on)",
    "auto": "kit: interrupted; the members that finished keep their run folders: the same command goes on "
    "from them",
    "tune": "kit: interrupted; the finished trials are kept in the study: the same command goes on",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, a scheduler, a notebook's stop), stopped as Ctrl-C stops a command: the
    unfinished run's folder removed, a tuning trial queued again, the same message."""


@contextlib.contextmanager
def _terminated_as_interrupted():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise Terminated()

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def guarded(fn: Callable, *args, interrupted: str = UNFINISHED_RUN) -> int:
    """Run `fn(*args)` as the kit command runs a command, for a script too: the user's errors in
    one line with exit code 2, kit's own with the traceback saved to a file (exit 1), 130 on Ctrl-C
    (143 on SIGTERM, which stops it the same way).

    Example (a recipe in pipelines/):
        >>> if __name__ == "__main__":
        ...     sys.exit(guarded(main))
    """
    try:
        with boundary.reader_may_leave(), _terminated_as_interrupted():
            code = fn(*args)
        return code if isinstance(code, int) else 0
    except KeyboardInterrupt as err:
        print(interrupted, file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as err:  # polars' PanicException is a BaseException
        line, code = boundary.report(err)
        print(line, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
