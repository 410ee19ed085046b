"""Where the course keeps its data, caches and checkpoints: the one owner of the folder layout (notebook 01).

Everything lives under ``BRAINTOOLS_DATA`` (``data_dir()``)::

    synthetic/<profile>/              the synthetic dataset of a profile (both Kaggle layouts, or a newer release's)
    extracted/<dataset>/              the archives of a downloaded dataset, extracted once (BraTS 2021 ships tar files)
    outputs/<profile>/npy_cache/      NIfTI cases converted to memory-mappable .npy (notebook 03)
    outputs/<profile>/npy_cache_h5/   the HDF5 slice volumes, converted the same way (notebooks 03, 04)
    outputs/<profile>/h5_lesson/      a few cases written as HDF5 slices, for a release without them (notebook 03)
    outputs/<profile>/split.json      the patient split every notebook shares
    outputs/<profile>/checkpoints/    <model>_best.pt (inference) and <model>_last.pt (resume)
    outputs/<profile>/pretrained/     encoder weights the course pretrains itself (notebook 04's proxy task)
    outputs/<profile>/predictions/    <case_id>.nii.gz segmentations (notebook 07, ``predict``)
    outputs/<profile>/evaluation/     per-case score tables (notebook 07, ``evaluate``)
    outputs/<profile>/figures/        GIFs and images the notebooks save
    outputs/<profile>/scratch/<name>/ throw-away folders of experiments (notebook 03's timings)
"""

from __future__ import annotations

import os
from pathlib import Path

from braintools.errors import DataError

DATA_ENV = "BRAINTOOLS_DATA"


def _repo_root() -> Path | None:
    """Return the root of the course checkout this package was imported from, or ``None`` if installed (notebook 01)."""
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
    elif _repo_root() is not None:
        root = _repo_root() / "data"
    else:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        root = cache_home / "braintools"
    what, fix = (DATA_ENV, f"point {DATA_ENV} at") if configured else ("the data folder", f"set {DATA_ENV} to")
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: {what} names a file, not a folder; {fix} a folder (it is created if missing)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{root}: {what} cannot be created ({error.strerror}); {fix} a folder you can write") from None
    return root.resolve()


def synthetic_dir(profile_name: str) -> Path:
    """Return the folder of the synthetic dataset of a profile (both Kaggle layouts live inside)."""
    return data_dir() / "synthetic" / profile_name


def extracted_dir(dataset_name: str) -> Path:
    """Return the folder where the archives of a downloaded dataset are extracted (``extracted/<dataset>``)."""
    return data_dir() / "extracted" / dataset_name


def _outputs_dir(profile_name: str) -> Path:
    """Return the folder for a profile's caches, checkpoints and predictions (created if missing) (notebook 01)."""
    folder = data_dir() / "outputs" / profile_name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _output(profile_name: str, *parts: str) -> Path:
    """A folder under ``outputs/<profile>/`` (created if missing)."""
    folder = _outputs_dir(profile_name).joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_dir(profile_name: str) -> Path:
    """The npy cache of the profile's NIfTI training cases."""
    return _output(profile_name, "npy_cache")


def h5_cache_dir(profile_name: str) -> Path:
    """The npy cache of the profile's HDF5 slice volumes (notebook 03)."""
    return _output(profile_name, "npy_cache_h5")


def h5_lesson_dir(profile_name: str) -> Path:
    """HDF5 slices that notebook 03 writes for its lesson when the profile's release has none (BraTS 2021, 2023)."""
    return _outputs_dir(profile_name) / "h5_lesson"


def split_path(profile_name: str) -> Path:
    """The patient split file every notebook reads (``splits.course_split``)."""
    return _outputs_dir(profile_name) / "split.json"


def checkpoint_dir(profile_name: str) -> Path:
    """The checkpoints of the models notebooks 04-06 train (``<model>_best.pt``, ``<model>_last.pt``) (notebook 04)."""
    return _output(profile_name, "checkpoints")


CHECKPOINT_KINDS = ("best", "last", "best.previous")


def checkpoint_file(folder: str | os.PathLike, name: str, kind: str = "best") -> Path:
    """``<folder>/<name>_<kind>.pt``: the one place a checkpoint's file name is made (notebook 05).

    ``kind``: ``"best"`` (spec and weights, for inference), ``"last"`` (everything needed to resume), or
    ``"best.previous"`` (the best of the run before a restart).

    Example:
        >>> checkpoint_file("ck", "unet3d", "last").as_posix()
        'ck/unet3d_last.pt'
    """
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"checkpoint kind must be one of {CHECKPOINT_KINDS}, got {kind!r}")
    return Path(folder) / f"{name}_{kind}.pt"


def pretrained_dir(profile_name: str) -> Path:
    """Encoder weights pretrained by the course on a proxy task, with their settings (notebook 04)."""
    return _output(profile_name, "pretrained")


def quick_checkpoint_dir(profile_name: str) -> Path:
    """Checkpoints of the quick models notebooks train when the real one is missing (kept apart) (notebook 07)."""
    return _output(profile_name, "quick_checkpoints")


def predictions_dir(profile_name: str) -> Path:
    """Predicted segmentations ``<case_id>.nii.gz`` (notebook 07, ``python -m braintools predict``) (notebook 07)."""
    return _output(profile_name, "predictions")


def evaluation_dir(profile_name: str) -> Path:
    """Per-case score tables (notebook 07, ``python -m braintools evaluate``) (notebook 07)."""
    return _output(profile_name, "evaluation")


def figures_dir(profile_name: str) -> Path:
    """Figures and animations the notebooks save (notebook 02's GIF) (notebook 02)."""
    return _output(profile_name, "figures")


def scratch_dir(profile_name: str, name: str) -> Path:
    """A throw-away folder for one experiment (notebook 03 times conversions in one) (notebook 03)."""
    return _output(profile_name, "scratch", name)
