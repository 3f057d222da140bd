"""Benchmark of the advanced track: training throughput and holdout scores.

1. This machine's float32 matmul rate (GFLOP/s), measured first: the ceiling for dense training.
2. Training throughput (examples/s) of the custom loop (`kit.training.Trainer`) on a wide MLP at
   a large batch, against the plain Keras recipe (batch 32, `fit()`) on the same data and
   network. Printed as ratios: custom / plain (target >= 5x) and the custom loop's FLOP rate /
   the matmul rate (target >= 40%).
3. Holdout scores: for each competition in ../shared/data, the internal holdout of bench.py
   (holdout.py), `kit baseline` and `kit advanced` each as its own process, both submissions
   scored against the held-out truth (target: advanced better on at least half).

    make bench-advanced
    .venv/bin/python bench/bench_advanced.py --skip-scores              # throughput only (~2 min)
    .venv/bin/python bench/bench_advanced.py --skip-throughput --only titanic,house-prices
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TRACKS = ("baseline", "advanced")


# -- 1. the matmul rate ----------------------------------------------------------------------------
def matmul_rate(*, n: int = 2048, seconds: float = 3.0) -> float:
    """Sustained float32 matmul rate in GFLOP/s (2 n^3 FLOPs per product), best of a few runs."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(0, 1))
    b = tf.random.stateless_normal((n, n), seed=(0, 2))

    @tf.function
    def products(a, b, k):
        acc = tf.zeros((n, n))
        for _ in tf.range(k):
            acc += tf.matmul(a, b)  # depends on the loop, so none is skipped
        return acc

    products(a, b, tf.constant(1)).numpy()  # trace and warm up
    best, k = 0.0, 4
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        products(a, b, tf.constant(k)).numpy()
        best = max(best, 2 * n**3 * k / (time.perf_counter() - t0) / 1e9)
    return best


# -- 2. throughput -------------------------------------------------------------------------------
def dense_flops(d: int, units: tuple[int, ...]) -> float:
    """FLOPs of one training example through the dense layers: forward 2 per weight, backward 4."""
    widths = [d, *units, 1]
    weights = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return 6.0 * weights


def throughput(*, d: int, units: tuple[int, ...], rows: int, batch: int, epochs: int, log=print) -> dict:
    import keras
    import tensorflow as tf

    from kit import runtime
    from kit.data import TableSource
    from kit.models import build_network
    from kit.training import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, d)).astype(np.float32)
    y = (x[:, :8].sum(axis=1) > 0).astype(np.int32)

    def build():
        keras.utils.set_random_seed(0)
        return build_network(d, [], task="binary", units=units, dropout=0.1, seed=0)

    results = {}
    # float32 is what the track runs on a CPU; bfloat16 is shown beside it for CPUs with
    # bfloat16 matmuls (AVX512-BF16, AMX), but the targets are judged on float32
    for precision, jit in (("float32", False), ("float32", True), ("mixed_bfloat16", False)):
        rt = runtime.choose(precision=precision)
        trainer = Trainer(build, task="binary", runtime=rt, jit_compile=jit, seed=0)
        source = TableSource({"numbers": tf.constant(x), "codes": tf.zeros((rows, 0), tf.int32)}, y)
        history = trainer.fit(source, epochs=epochs, batch_size=batch)
        steps = rows // rt.global_batch_size(batch)
        # the first epoch traces and compiles; of the others the fastest, as timeit does: other
        # work on a shared machine only ever slows an epoch down
        rate = steps * rt.global_batch_size(batch) / float(np.min(history.seconds[1:]))
        name = f"custom loop, batch {batch}, {precision}{', XLA' if jit else ''}"
        results[name] = rate
        log(f"  {name}: {rate:,.0f} examples/s")
    log(rt.describe(per_replica=batch))

    # the plain Keras recipe: the same network, compile() and fit() at batch 32
    plain_rows = min(rows, 32 * 400)
    model = build()
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=1e-4), loss="binary_crossentropy")
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    inputs = {"numbers": x[:plain_rows], "codes": np.zeros((plain_rows, 0), np.int32)}
    model.fit(inputs, y[:plain_rows], batch_size=32, epochs=3, verbose=0, callbacks=[Clock()])
    plain = plain_rows / float(np.min(times[1:]))
    log(f"  plain Keras fit(), batch 32: {plain:,.0f} examples/s")
    best_name = max((n for n in results if "float32" in n), key=results.get)
    return {"custom": results[best_name], "custom_name": best_name, "plain": plain, "all": results}


# -- 3. holdout scores -----------------------------------------------------------------------------
def track_command(track: str, folder: Path, out: Path, folds: int) -> list[str]:
    kit = Path(sys.executable).parent / "kit"
    command = [str(kit)] if kit.exists() else [sys.executable, "-m", "kit.cli"]
    return [*command, track, str(folder), "--out", str(out), "--folds", str(folds)]


def scores(names: list[str], *, folds: int, work: Path, seed: int, log=print) -> list[dict]:
    from holdout import make_holdout

    from bench import score, timed  # bench.py: the same subprocess timing and scoring

    rows = []
    for name in names:
        h = make_holdout(SHARED_DATA / name, work / "data", seed=seed)
        n_folds = folds
        if h.comp.group is not None:  # the held-out group can leave fewer groups than folds
            n_folds = min(folds, h.comp.train[h.comp.group].n_unique())
        log(f"{h.name}: {h.comp.train.height} train rows, {h.truth.height} held out ({h.rule})")
        row = {"name": h.name, "metric": h.comp.metric}
        for track in TRACKS:
            out = work / "runs" / h.name / track
            seconds, cpu, failed = timed(track_command(track, h.folder, out, n_folds))
            result = score(out / "submission.csv", h) if not failed else None
            row[track] = None if result is None else result.score
            row[f"{track}_seconds"] = seconds
            shown = "failed" if row[track] is None else f"{row[track]:.5f}"
            log(f"  {track:<9} {shown:>10}  {seconds:6.1f} s wall {cpu:6.1f} s CPU  {failed}".rstrip())
        rows.append(row)
    return rows


def better(row: dict) -> bool:
    from kit import metrics

    a, b = row["advanced"], row["baseline"]
    if a is None or b is None:
        return a is not None
    return metrics.get(row["metric"]).better(a, b)


SHARED_DATA = HERE.parents[1] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated competitions (default: all in ../shared/data)")
    parser.add_argument("--folds", type=int, default=5, help="folds of both tracks (default 5, as bench.py)")
    parser.add_argument("--seed", type=int, default=0, help="holdout seed (default 0)")
    parser.add_argument("--work", help="keep the holdout folders and runs here (default: a temporary folder)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-scores", action="store_true")
    parser.add_argument("--width", type=int, default=1024, help="hidden width of the wide MLP (default 1024)")
    parser.add_argument("--batch", type=int, default=4096, help="the custom loop's batch (default 4096)")
    args = parser.parse_args(argv)
    lines = []

    if not args.skip_throughput:
        rate = matmul_rate()
        print(f"float32 matmul: {rate:,.1f} GFLOP/s")
        d, units = 256, (args.width, args.width, args.width)
        flops = dense_flops(d, units)
        print(f"wide MLP: {d} inputs, hidden {list(units)}: {flops / 1e6:.1f} MFLOP per training example")
        t = throughput(d=d, units=units, rows=8 * args.batch, batch=args.batch, epochs=4)
        # other work on a shared machine moves the rate around: take the best seen, before and after
        rate = max(rate, matmul_rate())
        print(f"float32 matmul, best of before and after: {rate:,.1f} GFLOP/s")
        speedup = t["custom"] / t["plain"]
        share = t["custom"] * flops / 1e9 / rate
        lines += [
            f"throughput: {t['custom_name']} {t['custom']:,.0f} examples/s, plain Keras {t['plain']:,.0f} examples/s",
            f"target: custom loop >= 5x the plain recipe: {'yes' if speedup >= 5 else 'NO'} ({speedup:.1f}x)",
            f"target: custom loop >= 40% of the matmul rate: {'yes' if share >= 0.4 else 'NO'} "
            f"({t['custom'] * flops / 1e9:,.1f} of {rate:,.1f} GFLOP/s = {share:.0%})",
        ]
        for name, value in t["all"].items():
            lines.append(
                f"  {name}: {value / t['plain']:.1f}x plain, {value * flops / 1e9 / rate:.0%} of the float32 matmul rate"
            )

    if not args.skip_scores:
        names = (
            args.only.split(",") if args.only else sorted(p.name for p in SHARED_DATA.iterdir() if p.is_dir())
        )
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.work) if args.work else Path(tmp)
            rows = scores(names, folds=args.folds, work=work, seed=args.seed)
        lines += [
            "",
            "| competition | metric | baseline | advanced | baseline s | advanced s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            cell = lambda v: "failed" if v is None else f"{v:.4f}"  # noqa: E731
            lines.append(
                f"| {r['name']} | {r['metric']} | {cell(r['baseline'])} | {cell(r['advanced'])} | "
                f"{r['baseline_seconds']:.0f} | {r['advanced_seconds']:.0f} |"
            )
        won = [r["name"] for r in rows if better(r)]
        lines.append(
            f"target: advanced beats the baseline on at least half: "
            f"{'yes' if 2 * len(won) >= len(rows) else 'NO'} ({len(won)}/{len(rows)}: {', '.join(won)})"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
