"""The one exception type braintools raises for bad input data."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or folder is missing, unreadable or not what BraTS data should be.

    The message always names the file (or folder) and the problem.
    """
