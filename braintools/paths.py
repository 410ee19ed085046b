"""Where the course keeps its data, caches and checkpoints (``BRAINTOOLS_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "BRAINTOOLS_DATA"


def repo_root() -> Path | None:
    """Return the root of the course checkout this package was imported from, or ``None`` if installed."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "braintools"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def data_dir() -> Path:
    """Return the root of all data, caches and checkpoints (created if missing).

    ``BRAINTOOLS_DATA`` wins; otherwise ``data/`` at the repository root in a checkout, or
    ``~/.cache/braintools`` when the package is installed from an index.
    """
    configured = os.environ.get(DATA_ENV)
    if configured:
        root = Path(configured).expanduser()
    elif repo_root() is not None:
        root = repo_root() / "data"
    else:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        root = cache_home / "braintools"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def synthetic_dir(profile_name: str) -> Path:
    """Return the folder of the synthetic dataset of a profile (both Kaggle layouts live inside)."""
    return data_dir() / "synthetic" / profile_name


def outputs_dir(profile_name: str) -> Path:
    """Return the folder for a profile's caches, checkpoints and predictions (created if missing)."""
    folder = data_dir() / "outputs" / profile_name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
