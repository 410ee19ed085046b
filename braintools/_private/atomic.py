"""Atomic file writes: write to a temporary file next to the target, then rename it into place."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from braintools.errors import DiskFullError

TEMPORARY_PREFIX = ".tmp-"  # temporary files are named .tmp-<pid>-<target name>

#: errno values that mean "no space left": a full disk, or a full disk quota.
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
LOW_SPACE_BYTES = 2**20  # a failed write with less free space than this (and no errno) is a full disk


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path`` (notebook 03).

    A reader never sees a half-written file: either the old file (or none) or the complete new one.
    The temporary name keeps the target's suffixes (``.nii.gz``, ``.npy``) so writers that look at
    the extension behave the same. On error the temporary file is removed; a full disk raises
    ``DiskFullError`` naming ``path``.

    Example:
        >>> with atomic_path("out.npy") as tmp:  # doctest: +SKIP
        ...     np.save(tmp, array)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{target.name}")
    try:
        yield temporary
        os.replace(temporary, target)
    except Exception as error:
        code = _disk_full_errno(error, target.parent)
        if code is None and isinstance(error, OSError) and _names(error.filename, temporary):
            raise OSError(error.errno, error.strerror, str(target)) from error  # name the file the user asked for
        if code is None:
            raise
        raise DiskFullError(code, f"{target}: cannot write this file, the disk is full ({os.strerror(code)}); "
                                  f"free some space and run again") from error
    finally:
        with contextlib.suppress(OSError):  # on a read-only disk even this raises (EROFS): never hide the real error
            temporary.unlink(missing_ok=True)


def _names(filename: object, path: Path) -> bool:
    """Whether an ``OSError.filename`` (a ``str``, ``bytes``, a ``Path`` as pandas passes, or ``None``) is ``path``."""
    if filename is None:
        return False
    try:
        return os.fsdecode(os.fspath(filename)) == str(path)
    except TypeError:
        return False


def remove_temporaries(folder: str | os.PathLike, target_name: str = "*") -> int:
    """Delete the temporary files that killed ``atomic_path`` writes left in ``folder``; return how many (notebook 03).

    ``target_name`` limits it to the temporaries of one target file name (a glob pattern). Call it when a run
    starts, before anything writes: a temporary of a run still going would be deleted too.
    """
    strays = list(Path(folder).glob(f"{TEMPORARY_PREFIX}*-{target_name}")) if Path(folder).is_dir() else []
    for stray in strays:
        stray.unlink(missing_ok=True)
    return len(strays)


def _disk_full_errno(error: Exception, folder: Path) -> int | None:
    """The errno if ``error`` means the disk is full, else None.

    Some writers lose the errno (``torch.save`` to a path raises ``RuntimeError: ... unexpected pos``, NumPy's
    ``tofile`` an ``OSError`` without errno): for those, a folder with (almost) no free space left means full.
    """
    if isinstance(error, DiskFullError):
        return None
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno if error.errno in DISK_FULL_ERRNOS else None
    try:
        return errno.ENOSPC if shutil.disk_usage(folder).free < LOW_SPACE_BYTES else None
    except OSError:
        return None
