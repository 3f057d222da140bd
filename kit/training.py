"""The custom training loop: GradientTape under tf.function, on any tf.distribute strategy.

One `Trainer` per model. Read `fit` top to bottom: per epoch, a fresh shuffled distributed
dataset; `steps_per_execution` train steps per call into the graph; then the validation score
(the competition metric, computed by the caller), early stopping on it, the pruning callbacks,
a checkpoint and TensorBoard scalars. What makes it more than `model.fit`:

- AdamW with linear warm-up then cosine decay, decoupled weight decay (not on biases, norms or
  embeddings), clipping by the global norm of the *all-reduced* gradient (Keras clips each
  replica's partial gradient), an optional EMA of the weights that validation and the final
  model use.
- Mixed precision: float16 with Keras 3 dynamic loss scaling on GPUs, bfloat16 (no scaling
  needed) on TPUs; the model's output layer stays float32.
- XLA: on GPUs the forward and backward pass is `jit_compile`d (the optimizer's cross-replica
  update stays outside, since XLA cannot hold a `merge_call`); a TPU compiles the whole step.
- `tf.train.CheckpointManager`: a killed run restarts at the epoch after its last checkpoint,
  with its optimizer state, best score and best weights.

Example:
    >>> trainer = Trainer(lambda: build_mlp(12, []), task="binary", runtime=kit.runtime.choose())
    >>> trainer.fit(source, epochs=50, batch_size=256, validate=lambda: score(trainer.predict(val)))
    >>> trainer.predict(test_inputs)
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from kit.errors import InputError
from kit.io import write_atomic
from kit.models import NO_WEIGHT_DECAY, learning_rate_schedule, loss_for
from kit.runtime import Runtime

# "on"/"off" spell it in a config table, where a value keeps its default's type
JIT_COMPILE = {"auto": "auto", "on": True, "off": False, True: True, False: False}


@dataclass
class History:
    """What `Trainer.fit` did: per-epoch loss, score, learning rate and time, and where it stopped."""

    loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training steps only, per epoch
    best_epoch: int = -1
    best_score: float = math.nan
    resumed_at: int = 0  # the first epoch this process trained (0 unless a checkpoint was found)
    # the epoch the lists start at: 0, unless a checkpoint was resumed without its epochs' lists
    first_epoch: int = 0
    stopped_early: bool = False

    # kept beside each checkpoint, so a resumed fit's lists hold the epochs before the resume too
    EPOCHS = ("loss", "val_score", "learning_rate", "seconds")

    def restore_epochs(self, folder: Path) -> None:
        """The lists up to `resumed_at` from `folder`'s epochs file (written before each checkpoint,
        so it may hold an epoch more); where it is absent or short, they start at `resumed_at`."""
        try:
            saved = json.loads((folder / EPOCHS_FILE).read_text())
            lists = [[float(v) for v in saved[key]] for key in self.EPOCHS]
        except (OSError, ValueError, KeyError, TypeError):
            lists = None
        if lists is None or len(lists[0]) < self.resumed_at:
            self.first_epoch = self.resumed_at
            return
        for key, values in zip(self.EPOCHS, lists, strict=True):
            setattr(self, key, values[: self.resumed_at])

    def save_epochs(self, folder: Path) -> None:
        write_atomic(folder / EPOCHS_FILE, {key: getattr(self, key) for key in self.EPOCHS})


EPOCHS_FILE = "epochs.json"


class StopAfter(keras.callbacks.Callback):
    """Ends training after `epochs` epochs (a refit on all rows trains as long as CV found best)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


class SwapEMAWeights(keras.callbacks.SwapEMAWeights):
    """Keras's callback, with each swap of the weights and their moving averages one call into a
    graph, traced once per optimizer (a model reused by the next fold keeps it), instead of three
    eager assignments per variable."""

    def _swap_variables(self):
        optimizer = self.model.optimizer
        swap = _SWAPS.get(optimizer)
        if swap is None:
            swap = _SWAPS[optimizer] = tf.function(super()._swap_variables)
        swap()


_SWAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _divide(grad, n: int):
    if isinstance(grad, tf.IndexedSlices):  # embedding gradients: only the rows looked up
        return tf.IndexedSlices(grad.values / n, grad.indices, grad.dense_shape)
    return grad / n


def _copies(variables, prefix: str) -> list:
    """Non-trainable copies of variables (an EMA, the best epoch's weights), one per replica set."""
    return [
        tf.Variable(
            v.value,
            trainable=False,
            name=f"{prefix}_{i}",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        for i, v in enumerate(variables)
    ]


def _scalar_summary(name: str, value: float) -> None:
    """`tf.summary.scalar` without the tensorboard package (TensorFlow no longer depends on it):
    the same event, tagged for TensorBoard's scalars dashboard."""
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata.SerializeToString())


def _mixed_precision(precision: str):
    """Build a model under a dtype policy without leaving the global policy changed."""

    @contextlib.contextmanager
    def scope():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)

    return scope()


class Trainer:
    """A model, its optimizer and the loop that trains it under a `kit.runtime.Runtime`.

    Args:
        build_model: () -> an uncompiled Keras model; called under the strategy's scope and the
            precision policy.
        task: "binary", "multiclass" or "regression" (picks the loss).
        runtime: from `kit.runtime.choose()`.
        metric: competition metric name (mae, mape and smape train on absolute error).
        learning_rate: peak learning rate, reached after the warm-up.
        weight_decay: AdamW's decoupled weight decay.
        warmup: fraction of all steps spent warming up linearly from 0.
        min_learning_rate: the cosine decay's floor, as a fraction of the peak.
        clipnorm: clip the global norm of the averaged gradient (0: off).
        ema: momentum of the moving average of the weights (0: off), e.g. 0.999.
        label_smoothing: for classification scored on labels (`kit.models.loss_for`).
        beta_2: Adam's second-moment decay.
        jit_compile: "auto" (on for GPUs), "on" or "off" (or True/False).
        steps_per_execution: train steps per call into the graph (0: a whole epoch).
        checkpoint_dir: where to keep checkpoints; a rerun with the same folder resumes.
        checkpoint_seconds: at most one checkpoint per this many seconds, plus the last epoch's
            (0: every epoch). A killed run loses at most this much training.
        log_dir: TensorBoard event files (loss, val_score, learning_rate per epoch).
        seed: shuffling and dropout.
    """

    def __init__(
        self,
        build_model: Callable[[], keras.Model],
        *,
        task: str,
        runtime: Runtime,
        metric: str = "",
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        warmup: float = 0.05,
        min_learning_rate: float = 0.01,
        clipnorm: float = 1.0,
        ema: float = 0.0,
        label_smoothing: float = 0.0,
        beta_2: float = 0.999,
        jit_compile: str | bool = "auto",
        steps_per_execution: int = 0,
        checkpoint_dir: str | Path | None = None,
        checkpoint_seconds: float = 30.0,
        log_dir: str | Path | None = None,
        seed: int = 0,
    ):
        if jit_compile not in JIT_COMPILE:
            raise InputError(
                f"jit_compile must be 'auto', 'on' or 'off' (or True/False). Received: jit_compile={jit_compile!r}"
            )
        if not 0 <= ema < 1:
            raise InputError(f"ema is a momentum in [0, 1), e.g. 0.999 (0 turns it off). Received: ema={ema}")
        self.task, self.runtime, self.seed = task, runtime, seed
        self.strategy = runtime.strategy
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.warmup, self.min_learning_rate, self.clipnorm = warmup, min_learning_rate, clipnorm
        self.ema_momentum = ema
        # XLA pays off on GPUs; on CPU it measured slower, and a TPU compiles the whole step anyway
        jit_compile = JIT_COMPILE[jit_compile]
        self.jit_compile = (runtime.device == "gpu") if jit_compile == "auto" else jit_compile
        self.steps_per_execution = steps_per_execution
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_seconds = checkpoint_seconds
        self.log_dir = Path(log_dir) if log_dir else None
        self.beta_2 = beta_2
        # one loss per example: the loop averages over the global batch, whatever the replicas
        self.loss_fn = loss_for(task, metric, label_smoothing=label_smoothing, reduction=None)
        with self.strategy.scope(), _mixed_precision(runtime.precision):
            self.model = build_model()
        self.optimizer = None
        self._predict_fn = None
        self._swap = None

    # -- optimizer, EMA and checkpoint state: made once the number of steps is known ------------
    def _build_optimizer(self, total_steps: int) -> None:
        schedule = learning_rate_schedule(
            self.learning_rate, total_steps=total_steps, warmup=self.warmup, floor=self.min_learning_rate
        )
        with self.strategy.scope():
            optimizer = keras.optimizers.AdamW(
                learning_rate=schedule, weight_decay=self.weight_decay, beta_2=self.beta_2
            )
            optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
            if self.runtime.precision == "mixed_float16":
                # float16 gradients underflow without it; bfloat16 has float32's range and needs none
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.model.trainable_variables)
            self.optimizer = optimizer
            self.schedule = schedule
            self.ema = _copies(self.model.trainable_variables, "ema") if self.ema_momentum else []
            # the best epoch's weights, kept beside the live ones and saved in the same checkpoint
            self.best = _copies(self.model.weights, "best")
            self.state = {
                "epoch": tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
                "best_epoch": tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_epoch"),
                "best_score": tf.Variable(np.nan, dtype=tf.float64, trainable=False, name="best_score"),
                "wait": tf.Variable(0, dtype=tf.int64, trainable=False, name="wait"),
            }

    # -- the steps ------------------------------------------------------------------------------
    def _make_train_function(self, global_batch: int):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        variables = model.trainable_variables

        def forward_backward(x, y):
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                loss = tf.nn.compute_average_loss(self.loss_fn(y, pred), global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                scaled_loss = optimizer.scale_loss(loss) if scaled else loss
            return loss, tape.gradient(scaled_loss, variables)

        if self.jit_compile:
            forward_backward = tf.function(forward_backward, jit_compile=True, reduce_retracing=True)

        def replica_step(batch):
            x, y = batch
            loss, grads = forward_backward(x, y)
            context = tf.distribute.get_replica_context()
            n = strategy.num_replicas_in_sync
            if self.runtime.device == "tpu":
                # sparse embedding gradients become dense: TPU all-reduces want fixed shapes
                grads = [tf.convert_to_tensor(g) for g in grads]
            if self.clipnorm:
                # clip the gradient of the global batch, which needs the sum over replicas first
                grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
                limit = self.clipnorm * (tf.cast(optimizer.dynamic_scale, tf.float32) if scaled else 1.0)
                grads, _ = tf.clip_by_global_norm(grads, limit)
                # the optimizer sums over replicas once more: hand each replica its share
                grads = [_divide(g, n) for g in grads]
            optimizer.apply(grads, variables)
            if self.ema:
                context.merge_call(self._update_ema)
            return loss

        # autograph would rewrite Keras' call graph on every trace: seconds per fold for nothing,
        # since the only loop is this explicit while_loop
        replica_step = tf.autograph.experimental.do_not_convert(replica_step)

        def one_step(i, total, iterator):
            per_replica = strategy.run(replica_step, args=(next(iterator),))
            loss = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            return i + 1, total + tf.cast(loss, tf.float32), iterator

        @tf.function(autograph=False)
        def train_steps(iterator, steps):
            _, total, _ = tf.while_loop(
                lambda i, total, iterator: i < steps,
                one_step,
                (tf.constant(0), tf.constant(0.0, tf.float32), iterator),
            )
            return total

        return train_steps

    def _update_ema(self, strategy):
        # the first steps average over fewer updates, so an early EMA is not stuck near the initial weights
        step = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        for average, variable in zip(self.ema, self.model.trainable_variables, strict=True):
            strategy.extended.update(
                average,
                lambda a, v: a.assign(decay * a + (1.0 - decay) * tf.cast(v, a.dtype)),
                args=(variable.value,),
            )

    @contextlib.contextmanager
    def averaged_weights(self):
        """Within the block, the model holds its EMA weights (no-op without EMA)."""
        if not self.ema:
            yield
            return
        self._swap_averages()
        try:
            yield
        finally:
            self._swap_averages()  # a swap twice is no swap

    def _swap_averages(self) -> None:
        """Exchange the live weights and their moving averages, in one call into a graph traced once
        (a host round trip per variable, twice an epoch, cost more than a small model's epoch)."""
        if self._swap is None:
            pairs = list(zip(self.model.trainable_variables, self.ema, strict=True))

            @tf.function(autograph=False)
            def swap():
                for v, a in pairs:
                    live = tf.identity(v.value)
                    v.assign(a.value())
                    a.assign(live)

            self._swap = swap
        self._swap()

    # -- the loop -------------------------------------------------------------------------------
    def fit(
        self,
        source,
        *,
        epochs: int,
        batch_size: int,
        validate: Callable[[], float] | None = None,
        direction: str = "maximize",
        patience: int = 10,
        callbacks: list | None = None,
        log: Callable[[str], None] | None = None,
    ) -> History:
        """Train on `source` (a `kit.data` source) and keep the best weights by `validate()`.

        Args:
            source: has `n_rows` and `dataset(batch_size=, shuffle=, seed=, drop_remainder=, shard=)`
                yielding (model inputs, y).
            epochs: the most epochs; the cosine schedule spans all of them.
            batch_size: per replica; the global batch is this times `runtime.replicas`.
            validate: () -> the competition metric on the validation fold with the current
                weights (EMA weights when EMA is on). None: no early stopping.
            direction: "maximize" or "minimize", the metric's.
            patience: epochs without improvement before stopping.
            callbacks: Keras callbacks; each gets `on_epoch_end(epoch, {"val_score": ...})` after
                every epoch and may raise (e.g. `optuna.TrialPruned`) to stop the run.

        Returns:
            A `History`. The model ends with the best epoch's weights.
        """
        global_batch = self.runtime.global_batch_size(batch_size)
        if source.n_rows < global_batch:
            # tiny data: one full batch per step rather than none
            batch_size = max(1, source.n_rows // self.runtime.replicas)
            global_batch = self.runtime.global_batch_size(batch_size)
        steps = source.n_rows // global_batch
        if steps < 1:
            raise InputError(
                f"{source.n_rows} training rows cannot fill one batch for {self.runtime.replicas} replicas. "
                f"Use fewer replicas or more data. Received: rows={source.n_rows}"
            )
        if self.optimizer is None:
            self._build_optimizer(epochs * steps)
        train_steps = self._make_train_function(global_batch)
        per_call = min(self.steps_per_execution or steps, steps)
        history = History()
        callbacks = list(callbacks or [])
        for cb in callbacks:
            cb.set_model(self.model)
        self.model.stop_training = False  # a callback may set it, as under Keras' fit()

        manager, scratch = self._checkpoint_manager()
        latest = self._latest() if manager is not None else None
        if latest:
            manager.checkpoint.restore(latest).expect_partial()
            history.resumed_at = int(self.state["epoch"].numpy())
            history.best_epoch = int(self.state["best_epoch"].numpy())
            history.best_score = float(self.state["best_score"].numpy())
            history.restore_epochs(self.checkpoint_dir)
            if log:
                log(f"    resumed from {latest} at epoch {history.resumed_at + 1}")
        writer = (
            tf.summary.create_file_writer(str(self.log_dir))
            if self.log_dir and self.runtime.is_chief
            else None
        )

        # one endless stream, reshuffled every pass over the rows: no per-epoch pipeline to build
        dist = self.strategy.distribute_datasets_from_function(
            lambda ctx: source.dataset(
                batch_size=ctx.get_per_replica_batch_size(global_batch),
                shuffle=True,
                # a resumed run continues with orders it has not seen
                seed=self.seed * 100_003 + history.resumed_at,
                drop_remainder=True,
                shard=(ctx.num_input_pipelines, ctx.input_pipeline_id),
                repeat=True,
            )
        )
        iterator = iter(dist)
        saved = time.monotonic()
        try:
            for epoch in range(history.resumed_at, epochs):
                if validate is not None and int(self.state["wait"].numpy()) >= patience:
                    # checked first, so a run resumed after it stopped early does not train on
                    history.stopped_early = True
                    break
                done, loss_sum, started = 0, 0.0, time.perf_counter()
                while done < steps:
                    n = min(per_call, steps - done)
                    loss_sum += float(train_steps(iterator, tf.constant(n)))
                    done += n
                loss = loss_sum / steps  # float() above waited for the steps to finish
                history.seconds.append(time.perf_counter() - started)
                lr = float(self.schedule(self.optimizer.iterations))
                history.loss.append(loss)
                history.learning_rate.append(lr)
                logs = {"loss": loss, "learning_rate": lr}
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"The training loss became {loss} at epoch {epoch + 1}. Lower learning_rate "
                        f"or turn clipnorm on. Received: learning_rate={self.learning_rate}"
                    )
                improved = True
                if validate is not None:
                    with self.averaged_weights():
                        score = float(validate())
                        best = float(self.state["best_score"].numpy())
                        improved = math.isnan(best) or (
                            score > best if direction == "maximize" else score < best
                        )
                        if improved:
                            for b, v in zip(self.best, self.model.weights, strict=True):
                                b.assign(v.value)
                            self.state["best_score"].assign(score)
                            self.state["best_epoch"].assign(epoch)
                            self.state["wait"].assign(0)
                        else:
                            self.state["wait"].assign_add(1)
                    logs["val_score"] = score
                    history.val_score.append(score)
                self.state["epoch"].assign(epoch + 1)
                finished = epoch + 1 == epochs or (
                    validate is not None and int(self.state["wait"].numpy()) >= patience
                )
                # a save costs ~0.1 s of Python however small the model: on small data, at most one
                # every `checkpoint_seconds`, and always the last, so a finished fold never retrains
                # (every epoch in a multi-worker job: a save is a collective, and the workers' clocks differ)
                due = self.runtime.workers > 1 or time.monotonic() - saved >= self.checkpoint_seconds
                if manager is not None and (finished or due):
                    if scratch is None:  # the chief's: its checkpoints are the ones resumed
                        history.save_epochs(self.checkpoint_dir)
                    manager.save(checkpoint_number=epoch + 1)
                    saved = time.monotonic()
                if writer is not None:
                    with writer.as_default(step=epoch + 1):
                        for key, value in logs.items():
                            _scalar_summary(key, value)
                    writer.flush()
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
                if self.model.stop_training:
                    break
        finally:
            if writer is not None:
                writer.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

        history.best_epoch = int(self.state["best_epoch"].numpy())
        history.best_score = float(self.state["best_score"].numpy())
        if history.best_epoch >= 0:
            for v, b in zip(self.model.weights, self.best, strict=True):
                v.assign(b.value())
        elif self.ema:
            for v, a in zip(self.model.trainable_variables, self.ema, strict=True):
                v.assign(a.numpy())
        return history

    # -- checkpoints ----------------------------------------------------------------------------
    def _checkpoint_manager(self):
        """(manager, scratch folder). In a multi-worker job every worker saves, since saving is
        a collective, but only the chief into the real folder; the others write to scratch."""
        if self.checkpoint_dir is None:
            return None, None
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, ema=self.ema, best=self.best, **self.state
        )
        scratch = None if self.runtime.is_chief else Path(tempfile.mkdtemp(prefix="kit-worker-ckpt-"))
        directory = self.checkpoint_dir if scratch is None else scratch
        directory.mkdir(parents=True, exist_ok=True)
        return tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2), scratch

    def _latest(self) -> str | None:
        """The chief's latest checkpoint: every worker resumes from the same one."""
        if self.checkpoint_dir is None or not self.checkpoint_dir.is_dir():
            return None
        return tf.train.latest_checkpoint(str(self.checkpoint_dir))

    # -- prediction -----------------------------------------------------------------------------
    def predict(self, inputs: dict, *, batch_size: int = 4096) -> np.ndarray:
        """Model outputs for encoded inputs ({"numbers", "codes"} tensors), in row order, float64.

        On one worker with several replicas (TPU cores, GPUs) the rows are padded to whole global
        batches and spread over the replicas; a multi-worker job predicts on each worker alone, so
        every worker sees the same scores and stops at the same epoch.
        """
        n = int(next(iter(inputs.values())).shape[0])
        if n == 0:
            return np.zeros((0, self.model.output_shape[-1]))
        distributed = self.runtime.replicas > 1 and self.runtime.workers == 1
        if self._predict_fn is None:
            model = self.model

            def step(x):
                return model(x, training=False)

            if distributed:
                strategy = self.strategy

                @tf.function
                def predict_fn(x):
                    return strategy.experimental_local_results(strategy.run(step, args=(x,)))

            else:
                predict_fn = tf.function(step, jit_compile=self.jit_compile, reduce_retracing=True)
            self._predict_fn = predict_fn
        if distributed:
            global_batch = self.runtime.global_batch_size(max(1, batch_size // self.runtime.replicas))
            padded = math.ceil(n / global_batch) * global_batch
            inputs = {
                k: tf.concat([v, tf.zeros([padded - n, *v.shape[1:]], v.dtype)], 0) for k, v in inputs.items()
            }
            ds = tf.data.Dataset.from_tensor_slices(inputs).batch(global_batch, drop_remainder=True)
            parts = [
                tf.concat(self._predict_fn(x), 0) for x in self.strategy.experimental_distribute_dataset(ds)
            ]
        elif n <= batch_size:
            # one batch: no pipeline to build (each epoch's scoring of a small validation fold)
            parts = [self._predict_fn(inputs)]
        else:
            ds = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
            parts = [self._predict_fn(x) for x in ds]
        out = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])[:n]
        return out
