"""The custom loop: learning, early stopping on the metric, callbacks, checkpoints and resume,
TensorBoard, the schedule, EMA, mixed precision and XLA (on CPU; see test_distribute.py for
several replicas)."""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from kit import runtime
from kit.budget import fit_budget
from kit.data import TableSource
from kit.errors import InputError
from kit.models import build_network
from kit.training import EPOCHS_FILE, Trainer


class Stop(Exception):
    pass


def problem(n=512, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] > 0).astype(np.int32)
    inputs = {"numbers": tf.constant(x), "codes": tf.zeros((n, 0), tf.int32)}
    return inputs, y


def make_trainer(precision="float32", **kwargs):
    rt = runtime.choose(precision=precision)
    kwargs.setdefault("learning_rate", 5e-3)
    keras.utils.set_random_seed(0)  # the output layer's initial weights come from the global seed
    return Trainer(
        lambda: build_network(8, [], task="binary", units=(32,), dropout=0.0, seed=0),
        task="binary",
        runtime=rt,
        **kwargs,
    )


@pytest.fixture(scope="module")
def data():
    (x, y), (xv, yv) = problem(seed=0), problem(n=256, seed=1)
    return TableSource(x, y), xv, yv


def auc(trainer, xv, yv):
    return roc_auc_score(yv, trainer.predict(xv).reshape(-1))


def test_trainer_learns_and_keeps_the_best_epoch(data):
    source, xv, yv = data
    trainer = make_trainer()
    history = trainer.fit(source, epochs=8, batch_size=64, validate=lambda: auc(trainer, xv, yv))
    assert history.best_score > 0.85
    assert history.loss[-1] < history.loss[0]
    # the model ends with the best epoch's weights
    assert auc(trainer, xv, yv) == pytest.approx(history.best_score)
    assert history.val_score[history.best_epoch] == history.best_score


def test_early_stopping_restores_the_best_epoch_weights(data):
    source, _, _ = data
    trainer = make_trainer()
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    seen = []

    def validate():
        seen.append([w.numpy().copy() for w in trainer.model.weights])
        return next(scores)

    history = trainer.fit(source, epochs=6, batch_size=64, validate=validate, patience=2)
    assert history.stopped_early and len(history.loss) == 4  # epochs 3 and 4 did not beat 0.5
    assert history.best_epoch == 1 and history.best_score == 0.5
    for now, best in zip(trainer.model.weights, seen[1], strict=True):
        np.testing.assert_array_equal(now.numpy(), best)


def test_minimize_direction_keeps_the_lowest_score(data):
    source, _, _ = data
    trainer = make_trainer()
    scores = iter([3.0, 1.0, 2.0])
    history = trainer.fit(
        source, epochs=3, batch_size=64, validate=lambda: next(scores), direction="minimize", patience=5
    )
    assert history.best_epoch == 1 and history.best_score == 1.0


def test_callbacks_get_val_score_after_every_epoch_and_may_stop_the_run(data):
    source, xv, yv = data

    class Recorder(keras.callbacks.Callback):
        def __init__(self, stop_at=None):
            super().__init__()
            self.logs, self.stop_at = [], stop_at

        def on_epoch_end(self, epoch, logs=None):
            self.logs.append((epoch, dict(logs)))
            if epoch == self.stop_at:
                raise Stop(f"pruned at {epoch}")

    recorder = Recorder()
    trainer = make_trainer()
    trainer.fit(source, epochs=3, batch_size=64, validate=lambda: auc(trainer, xv, yv), callbacks=[recorder])
    assert [e for e, _ in recorder.logs] == [0, 1, 2]
    assert all({"val_score", "loss", "learning_rate"} <= set(logs) for _, logs in recorder.logs)
    assert recorder.model is trainer.model
    with pytest.raises(Stop, match="pruned at 1"):
        make_trainer().fit(
            source, epochs=5, batch_size=64, validate=lambda: 0.5, callbacks=[Recorder(stop_at=1)]
        )


def test_a_killed_run_resumes_from_its_last_checkpoint(data, tmp_path):
    source, _, _ = data
    captured = {}

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            captured.setdefault("losses", []).append(logs["loss"])
            if epoch == 2:  # the checkpoint of epoch 3 is on disk by now
                captured["weights"] = [w.numpy().copy() for w in self.model.weights]
                raise KeyboardInterrupt

    first = make_trainer(checkpoint_dir=tmp_path / "ckpt", checkpoint_seconds=0)  # every epoch
    with pytest.raises(KeyboardInterrupt):
        first.fit(source, epochs=5, batch_size=64, callbacks=[Kill()])
    steps = source.n_rows // 64

    second = make_trainer(checkpoint_dir=tmp_path / "ckpt", checkpoint_seconds=0)
    history = second.fit(source, epochs=3, batch_size=64)  # all 3 epochs already done: restore only
    # a fold that had finished keeps its epochs' lists (the history and the report's curves)
    assert history.resumed_at == 3 and history.loss == captured["losses"] and history.first_epoch == 0
    for now, then in zip(second.model.weights, captured["weights"], strict=True):
        np.testing.assert_array_equal(now.numpy(), then)

    third = make_trainer(checkpoint_dir=tmp_path / "ckpt", checkpoint_seconds=0)
    messages = []
    history = third.fit(source, epochs=5, batch_size=64, log=messages.append)
    assert history.resumed_at == 3 and len(history.loss) == 5 and history.loss[:3] == captured["losses"]
    assert len(history.learning_rate) == len(history.seconds) == 5 and history.first_epoch == 0
    assert int(third.optimizer.iterations.numpy()) == 5 * steps  # optimizer state came back too
    assert "resumed" in messages[0] and "epoch 4" in messages[0]

    (tmp_path / "ckpt" / EPOCHS_FILE).unlink()  # a checkpoint kept without its epochs' lists
    fourth = make_trainer(checkpoint_dir=tmp_path / "ckpt", checkpoint_seconds=0)
    history = fourth.fit(source, epochs=6, batch_size=64)
    assert history.resumed_at == history.first_epoch == 5 and len(history.loss) == 1


def test_a_resumed_run_that_had_stopped_early_does_not_train_on(data, tmp_path):
    source, _, _ = data
    scores = iter([0.9, 0.1, 0.1])
    # the default saves at most every 30 s, and always the epoch a fit ends on
    first = make_trainer(checkpoint_dir=tmp_path / "ckpt")
    stopped = first.fit(source, epochs=10, batch_size=64, validate=lambda: next(scores), patience=2)
    assert [p.name for p in (tmp_path / "ckpt").glob("ckpt-*.index")] == ["ckpt-3.index"]
    again = make_trainer(checkpoint_dir=tmp_path / "ckpt")
    history = again.fit(source, epochs=10, batch_size=64, validate=lambda: 1.0, patience=2)
    assert history.best_epoch == 0 and history.best_score == 0.9
    assert history.loss == stopped.loss and history.val_score == [0.9, 0.1, 0.1]  # nothing trained
    for now, best in zip(again.model.weights, first.model.weights, strict=True):
        np.testing.assert_array_equal(now.numpy(), best.numpy())


def read_scalars(folder):
    found = {}
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return found


def test_tensorboard_gets_loss_score_and_learning_rate_per_epoch(data, tmp_path):
    source, xv, yv = data
    trainer = make_trainer(log_dir=tmp_path / "tb")
    history = trainer.fit(source, epochs=3, batch_size=64, validate=lambda: auc(trainer, xv, yv))
    scalars = read_scalars(tmp_path / "tb")
    assert scalars["loss"] == pytest.approx(history.loss)
    assert scalars["val_score"] == pytest.approx(history.val_score)
    assert scalars["learning_rate"] == pytest.approx(history.learning_rate)


def test_learning_rate_warms_up_then_follows_a_cosine_down(data):
    source, _, _ = data
    trainer = make_trainer(learning_rate=1e-2, warmup=0.3, min_learning_rate=0.01)
    lr = trainer.fit(source, epochs=10, batch_size=64).learning_rate
    peak = int(np.argmax(lr))
    assert peak in (2, 3) and lr[peak] == pytest.approx(1e-2, rel=0.1)
    assert all(a < b for a, b in zip(lr[:peak], lr[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(lr[peak:-1], lr[peak + 1 :], strict=True))
    assert lr[-1] == pytest.approx(1e-4, rel=0.01)  # the floor: 1% of the peak


def test_ema_weights_are_the_ones_kept(data):
    source, _, _ = data
    live = {}

    class Grab(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            live["weights"] = [w.numpy().copy() for w in self.model.trainable_weights]

    trainer = make_trainer(ema=0.9)
    trainer.fit(source, epochs=2, batch_size=32, callbacks=[Grab()])
    kept = [w.numpy() for w in trainer.model.trainable_weights]
    for w, average in zip(kept, trainer.ema, strict=True):
        np.testing.assert_array_equal(w, average.numpy())
    assert any(not np.allclose(a, b) for a, b in zip(kept, live["weights"], strict=True))


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_a_float32_output(data, precision):
    source, xv, yv = data
    trainer = make_trainer(precision=precision)
    history = trainer.fit(source, epochs=2, batch_size=64, validate=lambda: auc(trainer, xv, yv))
    assert np.isfinite(history.loss).all() and history.best_score > 0.6
    assert trainer.model.get_layer("hidden_0").compute_dtype == precision.removeprefix("mixed_")
    assert trainer.model.output.dtype == "float32"
    # float16 needs loss scaling; bfloat16 has float32's range and does not
    scaled = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was


def test_xla_compiled_steps_give_the_same_model(data):
    source, xv, _ = data
    plain, compiled = make_trainer(jit_compile="off"), make_trainer(jit_compile="on")
    assert compiled.jit_compile and not plain.jit_compile
    plain.fit(source, epochs=1, batch_size=64)
    compiled.fit(source, epochs=1, batch_size=64)
    # predictions, not weights: the hidden biases feed a batch norm, so their gradients are ~0
    # and Adam turns rounding noise in them into full steps that change nothing downstream
    np.testing.assert_allclose(plain.predict(xv), compiled.predict(xv), atol=1e-4)


def test_bad_loop_settings_are_input_errors():
    with pytest.raises(InputError, match="jit_compile must be"):
        make_trainer(jit_compile="maybe")
    with pytest.raises(InputError, match="ema is a momentum"):
        make_trainer(ema=1.5)


@pytest.mark.parametrize("rows", [900, 8_000, 40_000, 200_000, 1_000_000, 10_000_000])
def test_a_folds_training_is_bounded_by_examples_and_small_data_keeps_its_epochs(rows):
    epochs, patience = fit_budget(rows, epochs=100, patience=16, max_examples=4_000_000)
    if rows * 100 <= 4_000_000:
        assert (epochs, patience) == (100, 16)
    else:  # at most the budget of rows seen, or the three epochs every fold gets
        assert epochs * rows <= max(4_000_000, 3 * rows) and epochs >= 3
        assert 1 <= patience < 16 and patience < epochs


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="resident memory from /proc, trimmed by glibc"
)
def test_memory_freed_between_folds_goes_back_to_the_system():
    from kit.runtime import release_memory

    def rss_mib():
        line = next(x for x in open("/proc/self/status") if x.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    blocks = [np.ones(1024, np.uint8) for _ in range(300_000)]  # 300 MB in blocks of a kilobyte
    kept = blocks[::100]  # what stays pins the heap's top: freeing alone shrinks nothing
    del blocks
    before = rss_mib()
    release_memory()
    assert rss_mib() < before - 150, "the freed blocks stayed resident"
    assert len(kept) == 3000


def test_small_data_runs_each_op_on_one_thread_unless_the_environment_says_otherwise():
    """TensorFlow fixes its threads when it starts, so each case is a fresh process."""
    import os
    import subprocess

    probe = (
        "import sys, tensorflow as tf; from kit import runtime; "
        "runtime.seed_everything(0, rows=int(sys.argv[1])); "
        "print(tf.config.threading.get_intra_op_parallelism_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}
    cases = {
        "small": ([str(runtime.ONE_THREAD_UP_TO)], env),
        "large": ([str(runtime.ONE_THREAD_UP_TO + 1)], env),
        "set by the user": (["1000"], {**env, "TF_NUM_INTRAOP_THREADS": "2"}),
    }
    started = {
        name: subprocess.Popen([sys.executable, "-c", probe, *args], env=e, stdout=subprocess.PIPE, text=True)
        for name, (args, e) in cases.items()
    }
    threads = {name: int(p.communicate(timeout=120)[0].split()[-1]) for name, p in started.items()}
    # 0 is TensorFlow's own choice: as many threads as cores, or what TF_NUM_INTRAOP_THREADS says
    assert threads == {"small": 1, "large": 0, "set by the user": 0}
