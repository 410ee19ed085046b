"""Processes that never outlive a killed run: pool workers that die with their parent, and a file lock
that no orphan can hold (used by ``cache.build.precache``, notebook 03).

Why: a ``ProcessPoolExecutor`` worker waits on its task queue for ever once its parent is killed (it holds
a write end of that queue itself, so it never sees the end of it), and a worker forked while the parent
held an ``flock`` shares that lock. A SIGKILLed ``precache`` used to leave both behind, and every later run
waited on the folder without end.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from braintools.errors import DataError

LOCK_TIMEOUT_ENV = "BRAINTOOLS_LOCK_TIMEOUT"
#: Seconds a run waits for another live run's lock before giving up: longer than any precache of the course
#: (minutes), short enough that a stuck holder is reported the same day. A killed holder never makes anyone wait.
DEFAULT_LOCK_TIMEOUT_S = 1800.0
LOCK_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_HOLDER_BYTES = 256


# --------------------------------------------------------------------------- pool workers


def die_with_parent() -> None:
    """Initializer of pool workers: end this worker as soon as the process that started it ends (even by SIGKILL).
    Introduced in notebook 03.

    Linux: the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``). Everywhere
    (and if the parent died before that call): a thread ends the worker once the parent's sentinel closes.
    """
    _set_parent_death_signal()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_closed, args=(parent.sentinel,), daemon=True).start()


def _set_parent_death_signal() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent dies (nothing elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _exit_when_closed(sentinel: int) -> None:
    """Wait until the parent's end of the sentinel pipe closes (the parent died), then exit at once."""
    try:
        multiprocessing.connection.wait([sentinel])
    except (OSError, ValueError):  # cannot watch it: PR_SET_PDEATHSIG still applies on Linux
        return
    os._exit(1)


def worker_pool(workers: int, spawn: bool = False, torch_threads: int | None = None) -> ProcessPoolExecutor:
    """Return a ``ProcessPoolExecutor`` of ``workers`` processes that end when this process ends.

    ``spawn``: start fresh interpreters instead of forking this one (needed once torch's threads run here);
    ``torch_threads``: PyTorch threads per worker (the pool already provides the parallelism).
    """
    context = multiprocessing.get_context("spawn") if spawn else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(torch_threads,))


def _start_worker(torch_threads: int | None) -> None:
    """Initializer of pool workers: die with the parent; set PyTorch's thread count if asked."""
    die_with_parent()
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)


# --------------------------------------------------------------------------- folder lock


def lock_timeout_seconds(timeout: float | None = None) -> float:
    """Seconds to wait for a lock: ``timeout``, else ``BRAINTOOLS_LOCK_TIMEOUT``, else ``DEFAULT_LOCK_TIMEOUT_S``.
    Introduced in notebook 03."""
    if timeout is None:
        text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
        try:
            timeout = float(text) if text else DEFAULT_LOCK_TIMEOUT_S
        except ValueError:
            raise ValueError(f"{LOCK_TIMEOUT_ENV}={text!r}: expected a number of seconds, e.g. 600") from None
    if not timeout >= 0:  # also refuses NaN
        raise ValueError(f"lock timeout must be >= 0 seconds, got {timeout}")
    return float(timeout)


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float | None = None, what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing): runs that use it take turns (notebook 03).

    A process's lock (``fcntl.lockf``, Unix) belongs to that process alone: its child processes do not
    inherit it and the kernel drops it when the process dies, SIGKILL included, so a killed run never
    leaves the lock behind. Threads of one process take turns on an in-process lock first. A run that finds
    the lock taken prints one line naming the holder, waits, and raises ``DataError`` after ``timeout``
    seconds (see ``lock_timeout_seconds``); with ``timeout=0`` it does not wait: the ``DataError`` names the holder.
    On Windows only threads of one process take turns.

    Example:
        >>> with file_lock(cache_dir / ".precache.lock", what="precache run"):  # doctest: +SKIP
        ...     write_the_folder()
    """
    path = Path(path)
    seconds = lock_timeout_seconds(timeout)
    deadline = time.monotonic() + seconds
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(path.resolve(), threading.Lock())
    if not thread_lock.acquire(blocking=False):
        holder = f"another thread of this process, pid {os.getpid()}"
        _say_waiting(path, what, holder, seconds)
        if not thread_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _timeout_error(path, what, holder, seconds)
    try:
        with _process_lock(path, deadline, seconds, what):
            yield
    finally:
        thread_lock.release()


@contextlib.contextmanager
def _process_lock(path: Path, deadline: float, seconds: float, what: str) -> Iterator[None]:
    """The lock between processes: ``fcntl.lockf`` on ``path``, which also records its holder (pid, host, time)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while not _try_lock(fcntl, descriptor):
            holder = _read_holder(descriptor)
            if not waiting:
                _say_waiting(path, what, holder, seconds)
                waiting = True
            if time.monotonic() >= deadline:
                raise _timeout_error(path, what, holder, seconds)
            time.sleep(LOCK_POLL_S)
        _write_holder(descriptor)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)  # an unlocked file names no holder (and equal folders stay equal)
            fcntl.lockf(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _try_lock(fcntl, descriptor: int) -> bool:
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _write_holder(descriptor: int) -> None:
    text = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
    with contextlib.suppress(OSError):  # only a courtesy to waiting runs: never fail for it (e.g. disk full)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, text.encode()[:_HOLDER_BYTES], 0)


def _read_holder(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, _HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


def _say_waiting(path: Path, what: str, holder: str, seconds: float) -> None:
    if seconds == 0:  # a run that does not wait says so in its error alone
        return
    print(f"{path.parent}: waiting for another {what} to release this folder ({holder}); "
          f"giving up after {seconds:g} s ({LOCK_TIMEOUT_ENV})", file=sys.stderr, flush=True)


def _timeout_error(path: Path, what: str, holder: str, seconds: float) -> DataError:
    if seconds == 0:
        return DataError(f"{path.parent}: another {what} is writing this folder ({holder}); let it finish or stop it, "
                         "then run again, or use another folder")
    return DataError(f"{path.parent}: another {what} has held this folder for more than {seconds:g} s ({holder}); "
                     f"let it finish or stop it, then run again (set {LOCK_TIMEOUT_ENV} in seconds to wait longer)")
