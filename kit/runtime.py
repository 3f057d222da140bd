"""Seeds and environment facts (package versions, git commit) recorded with every run."""

from __future__ import annotations

import functools
import json
import os
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from kit.errors import InputError

PACKAGES = ("kit", "tensorflow", "keras", "scikit-learn", "polars", "numpy", "optuna", "tensorflow-datasets")


# Up to this many training rows, every op runs on one thread. The batches there are at most 1024
# rows (see `kit.budget.batch_size_for`), and an op's arithmetic is then too small to pay for
# handing half of it to a second thread. Measured on 2 cores, whole process, same CV:
# - titanic baseline 11.9-12.9 s against 13.8-14.5 s;
# - spaceship baseline 26.4 s against 31.8 s, and advanced 64.4 s against 68.6 s;
# - tps-aug-2022 57.6 s against 61.0 s;
# - 100k and 177k rows: equal.
# At batch 4096 (a million rows), two threads win: a fold took 8.6 s against 9.7 s.
ONE_THREAD_UP_TO = 100_000


def seed_everything(seed: int, *, rows: int | None = None) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic kernels.

    Same seed, same machine, same OOF predictions. The first call imports TensorFlow and Keras,
    whose millions of module-level objects live as long as the process. The garbage collector
    stays off during the import, which otherwise ran four full collections over the growing heap
    (0.57 s on titanic's baseline). Then those objects are frozen out of its reach, so every later
    collection skips them (titanic's whole baseline process 13.4-13.9 s against 15.1-16.3 s: a full
    collection took about 0.2 s before).

    rows: the training rows of the run about to start. Up to `ONE_THREAD_UP_TO`, TensorFlow runs
    each op on one thread, unless `TF_NUM_INTRAOP_THREADS` says otherwise. TensorFlow fixes this
    when it starts, so the first run of a process decides it for every later run.
    """
    import gc

    first = "tensorflow" not in sys.modules
    collecting = gc.isenabled()
    gc.disable()  # the first import makes millions of objects that live on, and little garbage
    try:
        import keras
        import tensorflow as tf
    finally:
        if first:
            gc.freeze()
        if collecting:
            gc.enable()
    if rows is not None and rows <= ONE_THREAD_UP_TO and "TF_NUM_INTRAOP_THREADS" not in os.environ:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow has already started in this process
            pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def release_memory() -> None:
    """Hand the memory freed by a finished fold back to the system.

    glibc keeps freed blocks in per-thread arenas for reuse, and TensorFlow's and polars' threads
    fragment them: without this, a 5-fold run's resident memory grows fold after fold.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def process_seconds() -> float | None:
    """Seconds since this process started (Linux; None where /proc is absent): for a `kit` command,
    what its imports and discovery took before the run's own clock began."""
    try:
        # field 22 of /proc/self/stat, counted after the command name in parentheses
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


# ---------------------------------------------------------------------------------------------
# Accelerators and tf.distribute: what this machine has, and the strategy, precision and batch
# size the advanced track uses on it. A notebook on CPU, a Kaggle GPU or a Kaggle TPU runs the
# same code; only what is printed here changes.

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@dataclass
class Runtime:
    """The chosen tf.distribute strategy and precision, with what was found.

    Attributes:
        device: "tpu", "gpu" or "cpu": where the model's math runs.
        found: what detection saw, e.g. "1 TPU host, 8 cores" or "2 GPU(s) (Tesla T4)".
        strategy: the `tf.distribute.Strategy`; build models and optimizers under `strategy.scope()`.
        precision: Keras dtype policy name ("float32", "mixed_float16", "mixed_bfloat16").
        replicas: replicas in sync (devices times workers).
        workers: processes in a multi-worker cluster (1 otherwise).
        is_chief: whether this process writes files (run folder, TensorBoard, export).
    """

    device: str
    found: str
    strategy: object
    precision: str
    replicas: int
    workers: int = 1
    is_chief: bool = True
    task: tuple[str, int] = ("worker", 0)
    notes: list[str] = field(default_factory=list)

    def global_batch_size(self, per_replica: int) -> int:
        """Examples per step over all replicas: the per-replica batch times the replicas."""
        return per_replica * self.replicas

    def describe(self, per_replica: int | None = None) -> str:
        """One line for the log: what was found and what was chosen."""
        name = _strategy_name(self.strategy)
        line = (
            f"runtime: found {self.found}; using {name} ({self.replicas} replica(s)"
            + (f" on {self.workers} workers" if self.workers > 1 else "")
            + f"), precision {self.precision}"
        )
        if per_replica is not None:
            line += (
                f", batch {self.global_batch_size(per_replica)} "
                f"(= {per_replica} per replica x {self.replicas})"
            )
        return line + "".join(f"; {n}" for n in self.notes)

    def summary(self, per_replica: int | None = None) -> dict:
        """What `describe` says, as a table for the run's history and its report."""
        info = {
            "found": self.found,
            "strategy": _strategy_name(self.strategy),
            "replicas": self.replicas,
            "precision": self.precision,
        }
        if self.workers > 1:
            info["workers"] = self.workers
        if per_replica is not None:
            info["batch_size"] = self.global_batch_size(per_replica)
            info["per_replica"] = per_replica
        if self.notes:
            info["notes"] = "; ".join(self.notes)
        return info


def _strategy_name(strategy) -> str:
    """The public name: MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy, and so on."""
    import tensorflow as tf

    public = (
        (tf.distribute.TPUStrategy, "TPUStrategy"),
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    )
    for cls, name in public:
        if isinstance(strategy, cls):
            return name
    return (
        "default strategy"
        if type(strategy).__name__ == "_DefaultDistributionStrategy"
        else type(strategy).__name__
    )


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as err:
        raise InputError(
            f"TF_CONFIG is not valid JSON: {err}. Set it to the cluster description "
            '{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": 0}}. '
            f"Received: TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
        ) from None


def _cluster_size(config: dict) -> int:
    return sum(len(v) for k, v in config.get("cluster", {}).items() if k in ("chief", "worker"))


def _chief(config: dict) -> bool:
    """Whether this process is a cluster's chief (the one that writes files), or alone."""
    if _cluster_size(config) <= 1:
        return True
    task = config.get("task", {})
    task_type, task_id = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)


def is_chief() -> bool:
    """Whether this process writes the run's files: True unless TF_CONFIG makes it a cluster's
    non-chief worker (every worker trains; one writes). Read without importing TensorFlow."""
    return _chief(_tf_config())


def _tpu_present() -> bool:
    """A TPU is attached: a TPU VM (local devices or /dev/accel*), or a remote TPU named in the
    environment (Colab, older Kaggle TPU nodes). Checked without contacting any server."""
    import tensorflow as tf

    if any(os.environ.get(k) for k in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_WORKER_ID")):
        return True
    if Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists():
        return True
    try:
        return bool(tf.config.list_physical_devices("TPU"))
    except Exception:  # noqa: BLE001 - some TF builds raise instead of returning an empty list
        return False


def _gpu_details(gpus) -> tuple[str, bool]:
    """("2 GPU(s) (Tesla T4)", float16_is_fast): tensor cores arrived with compute capability 7.0."""
    import tensorflow as tf

    names, fast = [], True
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are informative only
            details = {}
        names.append(details.get("device_name", "GPU"))
        capability = details.get("compute_capability")
        if capability is not None and tuple(capability) < (7, 0):
            fast = False
    return f"{len(gpus)} GPU(s) ({', '.join(sorted(set(names)))})", fast


@functools.cache
def _make_strategy(kind: str):
    """Build a strategy once per process: TF allows one TPU initialisation and one collective setup."""
    import tensorflow as tf

    if kind == "tpu":
        # a TPU VM (Kaggle, Cloud) has its cores on this host ("local"); a TPU node is named
        local = Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists()
        name = os.environ.get("TPU_NAME") or ("local" if local else "")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        # several logical CPUs (tests, or a CPU-only machine split on purpose): NCCL needs GPUs
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return tf.distribute.get_strategy()


def pick_strategy(*, tpu: bool, workers: int, gpus: int) -> str:
    """What "auto" means: a TPU first, then a cluster in TF_CONFIG, then several GPUs."""
    if tpu:
        return "tpu"
    if workers > 1:
        return "multi_worker"
    if gpus > 1:
        return "mirrored"
    return "default"


def pick_precision(device: str, *, fast_float16: bool = True) -> str:
    """What "auto" means: bfloat16 on TPU, float16 on a GPU with tensor cores, float32 otherwise."""
    if device == "tpu":
        return "mixed_bfloat16"
    if device == "gpu" and fast_float16:
        return "mixed_float16"
    return "float32"


def choose(*, strategy: str = "auto", precision: str = "auto") -> Runtime:
    """Detect TPU / GPUs / CPU and choose the tf.distribute strategy and mixed precision.

    "auto" picks TPUStrategy on a TPU, MultiWorkerMirroredStrategy when TF_CONFIG describes a
    cluster of several workers, MirroredStrategy on several GPUs and the default strategy
    otherwise; precision is bfloat16 on TPU, float16 on a GPU with tensor cores, float32 on CPU.
    Call it before any other TensorFlow work in a multi-worker job: collectives must be set up
    before the runtime starts.

    Args:
        strategy: "auto", "default", "mirrored", "multi_worker" or "tpu".
        precision: "auto", "float32", "mixed_float16" or "mixed_bfloat16".

    Returns:
        A `Runtime`; `describe()` gives the line to print.

    Example:
        >>> rt = choose()
        >>> print(rt.describe(per_replica=256))
        >>> with rt.strategy.scope(): model = build()
    """
    import tensorflow as tf

    if strategy not in STRATEGIES:
        raise InputError(
            f"Unknown strategy '{strategy}'. Use one of: {', '.join(STRATEGIES)}. Received: strategy={strategy}"
        )
    if precision not in PRECISIONS:
        raise InputError(
            f"Unknown precision '{precision}'. Use one of: {', '.join(PRECISIONS)}. "
            f"Received: precision={precision}"
        )
    config = _tf_config()
    if strategy == "auto":
        strategy = pick_strategy(
            tpu=_tpu_present(),
            workers=_cluster_size(config),
            gpus=len(tf.config.list_physical_devices("GPU")),
        )
    if strategy == "multi_worker" and not config:
        raise InputError(
            "strategy 'multi_worker' needs TF_CONFIG describing the cluster on every worker, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
            '"index": 0}}. Received: TF_CONFIG unset'
        )
    if strategy == "tpu" and not _tpu_present():
        raise InputError(
            "strategy 'tpu' needs a TPU: none is attached to this machine, and TPU_NAME names none. "
            "Use strategy 'auto' (it takes a TPU where there is one), or set TPU_NAME. Received: strategy=tpu"
        )
    dist = _make_strategy(strategy)
    gpus = tf.config.list_physical_devices("GPU")
    notes = []
    if strategy == "tpu":
        device, found, fast16 = "tpu", f"TPU ({dist.num_replicas_in_sync} cores)", False
    elif gpus:
        found, fast16 = _gpu_details(gpus)
        device = "gpu"
    else:
        device, fast16 = "cpu", False
        # this process's own split of the CPU (a multi-worker job lists the other workers' too)
        local = len(
            tf.config.get_logical_device_configuration(tf.config.list_physical_devices("CPU")[0]) or [0]
        )
        found = f"CPU ({os.cpu_count()} cores)" + (f", {local} logical devices" if local > 1 else "")
    if precision == "auto":
        precision = pick_precision(device, fast_float16=fast16)
        if device == "gpu" and precision == "float32":
            notes.append("float32: this GPU has no tensor cores (compute capability < 7.0)")
    workers = max(_cluster_size(config), 1) if strategy == "multi_worker" else 1
    task = config.get("task", {})
    task_type, task_id = task.get("type", "worker"), int(task.get("index", 0))
    return Runtime(
        device=device,
        found=found,
        strategy=dist,
        precision=precision,
        replicas=dist.num_replicas_in_sync,
        workers=workers,
        is_chief=strategy != "multi_worker" or _chief(config),
        task=(task_type, task_id),
        notes=notes,
    )
