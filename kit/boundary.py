"""Where kit meets the user's terminal: every failure as one line, and TensorFlow's start-up
chatter kept off stderr.

`report(err)` turns an exception into that line: an `InputError` (bad input: exit 2) as its
message; a full disk or a folder that cannot be written (exit 2) as what happened and where; any
other exception (a bug: exit 1) as its type and first line, with the full traceback saved to a
file under the system's temporary folder (`KIT_TRACEBACK=1` prints it instead).

`reader_may_leave()` lets a run go on when whoever reads its output stops reading (`kit ... |
head`): what it prints then goes to the null device instead of failing the run.

`quiet_tensorflow()` keeps TensorFlow's C++ start-up lines (absl's "WARNING: All log messages
before absl::InitializeLog()", oneDNN and CUDA probes) out of the terminal. They are written to
file descriptor 2 while `import tensorflow` runs, before TensorFlow reads TF_CPP_MIN_LOG_LEVEL, so
no setting silences them: the import runs with fd 2 pointed at a temporary file, and every line
that is not one of those is written back to stderr afterwards. The `tensorflow` logger's
"triggered tf.function retracing" warnings (a fold's new model traces its functions anew, which is
expected) are dropped too; its other warnings and errors pass. `KIT_TF_LOGS=1` shows them all.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.abc
import importlib.util
import io
import logging
import os
import re
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

from kit.errors import InputError, TrackError

# set for the processes the `kit` command starts (tuning workers), so they import TensorFlow quietly too
QUIET_ENV = "KIT_QUIET_TF"
SHOW_TF_LOGS_ENV = "KIT_TF_LOGS"
TRACEBACK_ENV = "KIT_TRACEBACK"

# absl's log prefix: severity, MMDD, time (absl writes "00:00:<epoch seconds>" before it is set
# up), thread id, file:line]
_ABSL_INFO = re.compile(r"^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
# errors TensorFlow logs on every start on a machine without a GPU, or when its CUDA plugins load twice
_ABSL_ERROR_NOISE = re.compile(
    r"^E\d{4} [\d:.]+\s+\d+ \S+:\d+\] (Unable to register cu\w+ factory|failed call to cuInit|"
    r"computation placer already registered)"
)
_NOISE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    # the second line of the CPU feature guard's INFO message
    "To enable the following instructions:",
)

# OS errors that are about the user's disk or permissions, not a bug: said in one line, exit 2
_DISK_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
}


def is_tensorflow_noise(line: str) -> bool:
    """Whether a stderr line is TensorFlow's start-up chatter rather than something to show."""
    line = line.rstrip()
    return bool(_ABSL_INFO.match(line) or _ABSL_ERROR_NOISE.match(line)) or line.startswith(_NOISE_LINES)


class Captured:
    """What a `captured_stderr` block wrote to file descriptor 2 (set when the block ends)."""

    text: str = ""


@contextlib.contextmanager
def captured_stderr():
    """Point file descriptor 2 at a temporary file for the block; C and Rust code write there too.

    Yields a `Captured` whose `text` holds what was written, once the block has ended.
    """
    captured = Captured()
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (a daemon): nothing to capture
        yield captured
        return
    buffer = tempfile.TemporaryFile()
    os.dup2(buffer.fileno(), 2)
    try:
        yield captured
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        buffer.seek(0)
        captured.text = buffer.read().decode(errors="replace")
        buffer.close()


def replay(text: str, *, keep=lambda line: True) -> None:
    """Write the captured lines that `keep` accepts to stderr."""
    lines = [line for line in text.splitlines(keepends=True) if line.strip() and keep(line)]
    if lines:
        sys.stderr.write("".join(lines if lines[-1].endswith("\n") else [*lines, "\n"]))
        sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` and runs its import with fd 2 captured (see the module docstring); it
    leaves `sys.meta_path` once that import runs. A look that imports nothing (tensorflow-datasets
    asks `importlib.util.find_spec("tensorflow")` before it imports it) leaves it in place."""

    def __init__(self):
        self._finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self._finding:
            return None
        self._finding = True  # the search below asks the finders again, this one included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        finder = self

        def quiet_exec_module(module):
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)  # once: TensorFlow is imported now
            captured = None
            try:
                with captured_stderr() as captured:
                    exec_module(module)
            finally:
                with contextlib.suppress(AttributeError):
                    del loader.exec_module
                if captured is not None:
                    replay(captured.text, keep=lambda line: not is_tensorflow_noise(line))

        # on this loader instance only (it loads this one module), so nothing else changes
        loader.exec_module = quiet_exec_module
        return spec


class _NoRetracingWarnings(logging.Filter):
    """Drops the `tensorflow` logger's "triggered tf.function retracing" warnings: every fold and
    trial builds a new model whose functions trace anew, which TensorFlow counts as retracing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno <= logging.WARNING and "triggered tf.function retracing" in str(record.msg)
        )


def quiet_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up lines on stderr, from now on in this process and
    in the processes it spawns, and drop its retracing warnings (even where TensorFlow was imported
    first). Does nothing with KIT_TF_LOGS=1."""
    if os.environ.get(SHOW_TF_LOGS_ENV):
        return
    tf_logger = logging.getLogger("tensorflow")  # the one tf.get_logger() returns, made now or then
    if not any(isinstance(f, _NoRetracingWarnings) for f in tf_logger.filters):
        tf_logger.addFilter(_NoRetracingWarnings())
    if "tensorflow" in sys.modules:
        return
    os.environ[QUIET_ENV] = "1"
    if not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


# ---------------------------------------------------------------------------------------------
# failures as one line


def one_line(text: str) -> str:
    """A message on one line: a library's multi-line text joined, so the terminal shows one."""
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def disk_error(err: OSError) -> str | None:
    """What an OS error says about the disk or permissions, in one line; None for other errors."""
    if not isinstance(err, OSError) or err.errno not in _DISK_ERRORS:
        return None
    where = f" writing '{err.filename}'" if err.filename else ""
    fix = (
        "Free some space, or pass --out on another disk"
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        else "Pass --out with a folder you can write to"
    )
    return f"Could not write{where}: {_DISK_ERRORS[err.errno]}. {fix}. Received: errno={errno.errorcode[err.errno]}"


def report(err: BaseException) -> tuple[str, int]:
    """The line for stderr and the exit code for an exception that reached the command.

    An `InputError` is the user's to fix (exit 2); so is a full disk or a folder kit may not write
    to (exit 2). Anything else is a bug in kit or in a track (exit 1): its traceback goes to a file
    and the line says where.
    """
    if isinstance(err, InputError):
        return f"kit: error: {one_line(err)}", 2
    if isinstance(err, TrackError):
        text = err.trace
        if os.environ.get(TRACEBACK_ENV):
            return f"{text.rstrip()}\nkit: error: {one_line(err)}", 2
        try:
            where = f"the full traceback is in {save_traceback(text)}"
        except OSError:
            return f"{text.rstrip()}\nkit: error: {one_line(err)}", 2
        return f"kit: error: {one_line(err)}. Fix the track; {where}", 2
    disk = disk_error(err) if isinstance(err, OSError) else None
    if disk is not None:
        return f"kit: error: {disk}", 2
    text = "".join(traceback.format_exception(err))
    summary = f"{type(err).__name__}: {one_line(err) or '(no message)'}"
    if os.environ.get(TRACEBACK_ENV):
        return f"{text.rstrip()}\nkit: internal error: {summary}", 1
    try:
        path = save_traceback(text)
    except OSError:
        return f"{text.rstrip()}\nkit: internal error: {summary}", 1
    return (
        f"kit: internal error: {summary} (not a problem with your input as far as kit can tell; "
        f"the full traceback is in {path})",
        1,
    )


def save_traceback(text: str) -> Path:
    """Write a traceback under <temp>/kit-errors/ and return its path."""
    folder = Path(tempfile.gettempdir()) / "kit-errors"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"kit-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.txt"
    path.write_text(f"kit {' '.join(sys.argv[1:])}\n\n{text}")
    return path


class _ReaderMayLeave:
    """A text stream whose reader may stop reading: a closed pipe sends the rest to the null device."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_null()

    def _to_null(self) -> None:
        # on the file descriptor itself, so that what is still buffered (and Python's own flush at
        # exit) goes there too instead of failing again
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        finally:
            os.close(null)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def reader_may_leave():
    """stdout and stderr that survive a reader who leaves (a closed pipe), restored on exit."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ReaderMayLeave(sys.stdout), _ReaderMayLeave(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
