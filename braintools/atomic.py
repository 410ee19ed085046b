"""Atomic file writes: write to a temporary file next to the target, then rename it into place."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from braintools.errors import DiskFullError

#: errno values that mean "no space left": a full disk, or a full disk quota.
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

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
    temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS or isinstance(error, DiskFullError):
            raise
        raise DiskFullError(error.errno, f"{target}: cannot write this file, the disk is full "
                                         f"({os.strerror(error.errno)}); free some space and run again") from error
    finally:
        temporary.unlink(missing_ok=True)
