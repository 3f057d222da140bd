"""tf.distribute on CPU: what `kit.runtime.choose` picks, the custom loop on two logical devices
under MirroredStrategy (same model as one device), and two worker processes on loopback under
MultiWorkerMirroredStrategy, from tensors or from Parquet shards split by file. Logical devices and collectives must be set before TensorFlow
starts, so those run in fresh processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import write_competition

from kit import runtime
from kit.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def test_auto_picks_tpu_then_cluster_then_gpus():
    assert runtime.pick_strategy(tpu=True, workers=2, gpus=8) == "tpu"
    assert runtime.pick_strategy(tpu=False, workers=2, gpus=8) == "multi_worker"
    assert runtime.pick_strategy(tpu=False, workers=1, gpus=2) == "mirrored"
    assert runtime.pick_strategy(tpu=False, workers=0, gpus=1) == "default"
    assert runtime.pick_precision("tpu") == "mixed_bfloat16"
    assert runtime.pick_precision("gpu") == "mixed_float16"
    assert runtime.pick_precision("gpu", fast_float16=False) == "float32"  # no tensor cores
    assert runtime.pick_precision("cpu") == "float32"


def test_this_cpu_gets_the_default_strategy_in_float32(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    rt = runtime.choose()
    assert rt.device == "cpu" and rt.precision == "float32" and rt.replicas == 1 and rt.is_chief
    line = rt.describe(per_replica=128)
    assert "found CPU" in line and "default strategy" in line and "precision float32" in line
    assert "batch 128 (= 128 per replica x 1)" in line


def test_bad_strategy_precision_or_cluster_settings_are_input_errors(monkeypatch):
    with pytest.raises(InputError, match="Unknown strategy 'gpu'"):
        runtime.choose(strategy="gpu")
    with pytest.raises(InputError, match="Unknown precision"):
        runtime.choose(precision="float8")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="needs TF_CONFIG"):
        runtime.choose(strategy="multi_worker")
    for name in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_WORKER_ID"):
        monkeypatch.delenv(name, raising=False)
    if not runtime._tpu_present():  # a machine with a TPU takes it
        with pytest.raises(InputError, match="strategy 'tpu' needs a TPU"):
            runtime.choose(strategy="tpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(InputError, match="TF_CONFIG is not valid JSON"):
        runtime.choose()


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras, numpy as np
from kit import runtime
from kit.data import TableSource
from kit.training import Trainer

rng = np.random.default_rng(0)
x = rng.normal(size=(300, 6)).astype("float32")
y = (x[:, 0] - x[:, 1] > 0).astype("int32")
inputs = {"numbers": tf.constant(x), "codes": tf.zeros((300, 0), tf.int32)}

def build():
    # no batch norm: its statistics are per replica, so two replicas would differ from one by design
    keras.utils.set_random_seed(0)
    numbers = keras.Input((6,), name="numbers")
    codes = keras.Input((0,), dtype="int32", name="codes")
    h = keras.layers.Dense(16, activation="relu")(numbers)
    return keras.Model({"numbers": numbers, "codes": codes}, keras.layers.Dense(1, activation="sigmoid")(h))

mirrored = runtime.choose(strategy="mirrored")
single = runtime.Runtime(device="cpu", found="cpu", strategy=tf.distribute.get_strategy(), precision="float32", replicas=1)
out = {"describe": mirrored.describe(per_replica=32), "replicas": mirrored.replicas}
weights, preds = [], []
for rt, per_replica in ((mirrored, 32), (single, 64)):
    trainer = Trainer(build, task="binary", runtime=rt, learning_rate=1e-2, clipnorm=0.5, ema=0.9, seed=0)
    history = trainer.fit(TableSource(inputs, y), epochs=2, batch_size=per_replica)
    weights.append([w.numpy() for w in trainer.model.weights])
    preds.append(trainer.predict({k: v[:203] for k, v in inputs.items()}, batch_size=64))  # not whole batches
    out[f"loss_{rt.replicas}"] = history.loss
out["max_weight_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(*weights))
out["max_pred_diff"] = float(np.abs(preds[0] - preds[1]).max())
out["pred_rows"] = len(preds[0])

# the whole track on the two replicas
import kit.api
lines = []
kit.api.advanced(sys.argv[1], split="holdout", out=sys.argv[2], config=sys.argv[3], progress=False, log=lines.append)
out["lines"] = lines
print(json.dumps(out))
"""


def test_mirrored_strategy_on_two_logical_cpus_trains_like_one_device_and_runs_the_track(tmp_path):
    data = write_competition(tmp_path / "tiny")
    config = tmp_path / "fast.toml"
    config.write_text('[advanced]\nepochs = 2\nunits = [16]\nstrategy = "mirrored"\n')
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(data), str(tmp_path / "run"), str(config)],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = last_json(result.stdout)
    assert out["replicas"] == 2
    assert "MirroredStrategy (2 replica(s))" in out["describe"]
    assert "batch 64 (= 32 per replica x 2)" in out["describe"]
    # same global batches, gradients summed over replicas, clipped and averaged once: same weights
    assert out["max_weight_diff"] < 1e-4
    assert out["loss_2"] == pytest.approx(out["loss_1"], rel=1e-4)
    # predictions padded to whole global batches and spread over the replicas come back in order
    assert out["pred_rows"] == 203 and out["max_pred_diff"] < 1e-5
    assert any("MirroredStrategy (2 replica(s))" in line for line in out["lines"])
    assert any("x 2 replicas" in line for line in out["lines"])
    assert (tmp_path / "run" / "model" / "saved_model.pb").is_file()
    assert (tmp_path / "run" / "submission.csv").is_file()


WORKER = """
import json, sys
from kit import runtime
rt = runtime.choose()  # before any other TensorFlow work: TF_CONFIG sets up the collectives
import keras, numpy as np, tensorflow as tf
from kit.data import TableSource
from kit.training import Trainer

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 6)).astype("float32")
y = (x[:, 0] - x[:, 1] > 0).astype("int32")
inputs = {"numbers": tf.constant(x), "codes": tf.zeros((256, 0), tf.int32)}

def build():
    keras.utils.set_random_seed(0)
    numbers = keras.Input((6,), name="numbers")
    codes = keras.Input((0,), dtype="int32", name="codes")
    h = keras.layers.Dense(16, activation="relu")(numbers)
    return keras.Model({"numbers": numbers, "codes": codes}, keras.layers.Dense(1, activation="sigmoid")(h))

source, read = TableSource(inputs, y), set()
if len(sys.argv) > 2:  # the same rows from Parquet shards, each worker reading files of its own
    from kit.data import ParquetSource

    class Logged(ParquetSource):
        def _read(self, path):
            read.add(path.decode().rsplit("/", 1)[-1])
            yield from super()._read(path)

    def to_inputs(x):
        numbers = tf.stack([x[f"n{i}"] for i in range(6)], axis=1)
        return {"numbers": numbers, "codes": tf.zeros((tf.shape(numbers)[0], 0), tf.int32)}

    source = Logged(sys.argv[2], columns={f"n{i}": "numeric" for i in range(6)}, target="y", map_fn=to_inputs)
trainer = Trainer(build, task="binary", runtime=rt, learning_rate=1e-2, checkpoint_dir=sys.argv[1], seed=0)
val = {k: v[:64] for k, v in inputs.items()}
history = trainer.fit(
    source, epochs=3, batch_size=16,
    validate=lambda: float(((trainer.predict(val).reshape(-1) > 0.5) == y[:64]).mean()),
)
print(json.dumps({
    "describe": rt.describe(per_replica=16), "chief": rt.is_chief, "workers": rt.workers,
    "replicas": rt.replicas, "loss": history.loss, "best_epoch": history.best_epoch,
    "checksum": float(sum(float(np.abs(w.numpy()).sum()) for w in trainer.model.weights)),
    "read": sorted(read),
}))
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def two_workers(tmp_path, *extra: str) -> tuple[dict, dict]:
    """WORKER's JSON from each of two workers of one cluster on loopback: (chief, the other)."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(tmp_path / "ckpt"), *extra],
                cwd=REPO,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in workers:
            stdout, stderr = proc.communicate(timeout=240)
            assert proc.returncode == 0, stderr[-3000:]
            outputs.append(last_json(stdout))
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    return outputs[0], outputs[1]


def test_two_workers_on_loopback_train_one_model_under_multi_worker_mirrored(tmp_path):
    chief, other = two_workers(tmp_path)
    assert chief["chief"] and not other["chief"]
    assert chief["workers"] == other["workers"] == 2 and chief["replicas"] == 2
    assert "MultiWorkerMirroredStrategy (2 replica(s) on 2 workers)" in chief["describe"]
    assert "batch 32 (= 16 per replica x 2)" in chief["describe"]
    # one model: both workers end with the same weights after the same epochs
    assert chief["checksum"] == pytest.approx(other["checksum"], rel=1e-6)
    assert chief["loss"] == pytest.approx(other["loss"], rel=1e-6) and len(chief["loss"]) == 3
    assert chief["best_epoch"] == other["best_epoch"]
    # only the chief's checkpoints land in the shared folder
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("ckpt-*.index")) == [
        "ckpt-2.index",
        "ckpt-3.index",
    ]


def test_two_workers_stream_parquet_shards_each_reading_files_of_its_own(tmp_path):
    rng = np.random.default_rng(0)  # WORKER's rows, in four files
    x = rng.normal(size=(256, 6)).astype("float32")
    frame = pl.DataFrame(
        {**{f"n{i}": x[:, i] for i in range(6)}, "y": (x[:, 0] - x[:, 1] > 0).astype("int32")}
    )
    (tmp_path / "shards").mkdir()
    for i in range(4):
        frame.slice(64 * i, 64).write_parquet(tmp_path / "shards" / f"part-{i}.parquet")
    chief, other = two_workers(tmp_path, str(tmp_path / "shards"))
    # tf.data sharded by file: two files each, none read twice, none left out
    assert len(chief["read"]) == len(other["read"]) == 2
    assert sorted(chief["read"] + other["read"]) == [f"part-{i}.parquet" for i in range(4)]
    # and still one model, trained in step
    assert chief["checksum"] == pytest.approx(other["checksum"], rel=1e-6)
    assert chief["loss"] == pytest.approx(other["loss"], rel=1e-6) and len(chief["loss"]) == 3
