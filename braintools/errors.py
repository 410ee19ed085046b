"""The exception types braintools raises for bad input data and for a full disk."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or folder is missing, unreadable or not what BraTS data should be (notebook 01).

    The message always names the file (or folder) and the problem.
    """


class DiskFullError(OSError):
    """A file could not be written because the disk (or the user's quota) is full.

    Raised as ``DiskFullError(errno, message)``; the message names the file. Being an ``OSError``, it is caught
    wherever ``OSError`` is; ``str(error)`` is the message alone.
    """

    def __str__(self) -> str:
        return str(self.strerror)
