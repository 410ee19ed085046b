"""Atomic file writes: write to a temporary file next to the target, then rename it into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"  # temporary files are named .tmp-<pid>-<target name>


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    A reader never sees a half-written file: either the old file (or none) or the complete new one.
    The temporary name keeps the target's suffixes (``.nii.gz``, ``.npy``) so writers that look at
    the extension behave the same. On error the temporary file is removed.

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
    finally:
        if temporary.exists():
            temporary.unlink()


def remove_temporaries(folder: str | os.PathLike, target_name: str = "*") -> int:
    """Delete the temporary files that killed ``atomic_path`` writes left in ``folder``; return how many.

    ``target_name`` limits it to the temporaries of one target file name (a glob pattern). Call it when a run
    starts, before anything writes: a temporary of a run still going would be deleted too.
    """
    strays = list(Path(folder).glob(f"{TEMPORARY_PREFIX}*-{target_name}")) if Path(folder).is_dir() else []
    for stray in strays:
        stray.unlink(missing_ok=True)
    return len(strays)
