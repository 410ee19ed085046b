"""Get the BraTS 2020 data: the two Kaggle datasets via kagglehub, or the embedded synthetic dataset.

- ``awsaf49/brats20-dataset-training-validation`` (NIfTI, one folder per case), pinned to version 1;
- ``awsaf49/brats2020-training-data`` (2D HDF5 slices), pinned to version 3.

Pinned handles make runs repeatable and let kagglehub reuse a complete cache without network.
On Kaggle the datasets are mounted under ``/kaggle/input`` (elsewhere: the folder named by
``BRAINTOOLS_KAGGLE_INPUT``) and nothing is downloaded.
Offline, or when Kaggle refuses the request, ``get_dataset`` says why and falls back to the synthetic
dataset, which has exactly the same on-disk layout, so every later notebook runs unchanged.
Credentials (``kagglehub.login()``, ``KAGGLE_API_TOKEN``, ``~/.kaggle/kaggle.json``...) are handled by
kagglehub itself and are never printed or stored here; public datasets need none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from braintools import io, synthetic
from braintools.errors import DataError
from braintools.profiles import Profile, get_profile

NIFTI_HANDLE, NIFTI_VERSION = "awsaf49/brats20-dataset-training-validation", 1
H5_HANDLE, H5_VERSION = "awsaf49/brats2020-training-data", 3
KAGGLE_INPUT = Path("/kaggle/input")  # where Kaggle mounts the datasets attached to a notebook
KAGGLE_INPUT_ENV = "BRAINTOOLS_KAGGLE_INPUT"  # another folder laid out like /kaggle/input (tests, own copies)
H5_METADATA_NAME = "BraTS20 Training Metadata.csv"


@dataclass
class DataPaths:
    """Where the data of the course lives, whatever its origin."""

    source: str  # "kaggle" or "synthetic"
    nifti_train: Path  # folder of training case folders (MICCAI_BraTS2020_TrainingData)
    nifti_validation: Path | None  # folder of validation case folders (no segmentations), if any
    h5_dir: Path  # folder of volume_<v>_slice_<s>.h5 files
    h5_metadata: Path | None  # "BraTS20 Training Metadata.csv", if found


def kaggle_input_root() -> Path:
    """Return the folder of mounted Kaggle datasets: ``BRAINTOOLS_KAGGLE_INPUT`` if set, else ``/kaggle/input``."""
    configured = os.environ.get(KAGGLE_INPUT_ENV)
    return Path(configured).expanduser() if configured else KAGGLE_INPUT


def kaggle_input_dir(handle: str, base: Path | None = None) -> Path | None:
    """Return the folder where Kaggle mounted dataset ``owner/name`` (under ``kaggle_input_root()``), or None."""
    base = kaggle_input_root() if base is None else Path(base)
    name = handle.split("/")[1]
    for candidate in (base / name, base / "datasets" / handle):
        if candidate.is_dir():
            return candidate
    return None


def download_dataset(handle: str, version: int) -> Path:
    """Return a local folder with the dataset: the Kaggle mount if present, else a kagglehub download.

    With ``BRAINTOOLS_KAGGLE_INPUT`` set, the dataset must be there: a missing one is a ``DataError``, not a download.
    """
    mounted = kaggle_input_dir(handle)
    if mounted is not None:
        return mounted
    if os.environ.get(KAGGLE_INPUT_ENV):
        raise DataError(f"{kaggle_input_root()}: no folder {handle.split('/')[1]} for dataset {handle} "
                        f"(set by {KAGGLE_INPUT_ENV})")
    import kagglehub  # imported here: importing braintools never touches the network stack

    return Path(kagglehub.dataset_download(f"{handle}/versions/{version}"))


def _find_dir(root: Path, wanted: str, max_depth: int = 5) -> Path | None:
    """Breadth-first search for a folder named ``wanted`` under ``root``."""
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if folder.name == wanted:
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir()) if child.is_dir()]
    return None


def locate_nifti_dirs(root: str | os.PathLike) -> tuple[Path, Path | None]:
    """Find the training and validation case folders inside a download of the NIfTI dataset."""
    root = Path(root)
    train = _find_dir(root, "MICCAI_BraTS2020_TrainingData")
    if train is None:
        cases = io.find_cases(root, warn_missing=False)  # other releases: use the parent of the case folders
        train = cases[0].folder.parent
    return train, _find_dir(root, "MICCAI_BraTS2020_ValidationData")


def locate_h5_dir(root: str | os.PathLike) -> tuple[Path, Path | None]:
    """Find the HDF5 slice folder (``content/data``) and the root metadata CSV inside a download."""
    root = Path(root)
    for folder, names in io.walk_files(root):
        if any(name.startswith("volume_") and name.endswith(".h5") for name in names):
            metadata = next(root.rglob(H5_METADATA_NAME), None)
            return folder, metadata
    raise DataError(f"{root}: no HDF5 slices found (expected volume_<v>_slice_<s>.h5 files)")


def synthetic_data(profile: Profile) -> DataPaths:
    """Generate (or reuse) the synthetic dataset of a profile and return its paths."""
    root = synthetic.ensure_synthetic_dataset(profile)
    train, validation = locate_nifti_dirs(root / synthetic.NIFTI_DATASET_DIR)
    h5_dir, metadata = locate_h5_dir(root / synthetic.H5_DATASET_DIR)
    return DataPaths("synthetic", train, validation, h5_dir, metadata)


def kaggle_data() -> DataPaths:
    """Download (or find) both Kaggle BraTS 2020 datasets and return their paths; raises on failure."""
    nifti_root = download_dataset(NIFTI_HANDLE, NIFTI_VERSION)
    h5_root = download_dataset(H5_HANDLE, H5_VERSION)
    train, validation = locate_nifti_dirs(nifti_root)
    h5_dir, metadata = locate_h5_dir(h5_root)
    return DataPaths("kaggle", train, validation, h5_dir, metadata)


def get_dataset(profile: Profile | None = None, fallback: bool = True) -> DataPaths:
    """Return the data for a profile: real Kaggle data for ``kaggle``, synthetic data otherwise.

    When the real download fails (offline, refused, no space) and ``fallback`` is true, print why and
    use the synthetic dataset at real BraTS size (the ``course`` profile) instead.
    """
    profile = profile or get_profile()
    if profile.source != "kaggle":
        return synthetic_data(profile)
    try:
        return kaggle_data()
    except Exception as error:  # network errors are plain requests exceptions; kagglehub raises its own too
        if not fallback:
            raise
        print(f"Could not get the Kaggle BraTS 2020 data ({type(error).__name__}: {error}).\n"
              "This happens offline, when Kaggle refuses the request, or when the disk is full.\n"
              "Falling back to the embedded synthetic dataset (same layout, real BraTS size).")
        return synthetic_data(get_profile("course"))


def layout_tree(root: str | os.PathLike, depth: int = 3, max_entries: int = 4) -> str:
    """Return an indented listing of ``root`` down to ``depth`` levels, eliding long folders.

    Example:
        >>> print(layout_tree(paths.nifti_train.parent, depth=2))  # doctest: +SKIP
    """
    root = Path(root)
    lines = [f"{root.name}/"]

    def walk(folder: Path, level: int) -> None:
        entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
        for entry in entries[:max_entries]:
            lines.append("    " * level + entry.name + ("/" if entry.is_dir() else ""))
            if entry.is_dir() and level < depth:
                walk(entry, level + 1)
        if len(entries) > max_entries:
            lines.append("    " * level + f"... ({len(entries) - max_entries} more)")

    walk(root, 1)
    return "\n".join(lines)


def _folder_size(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file())


def describe_data(paths: DataPaths) -> pd.DataFrame:
    """Table of what is on disk: for each layout its folder, cases, files or slices, and size in GB."""
    train = io.find_cases(paths.nifti_train, warn_missing=False)
    rows = [{"layout": "NIfTI training", "folder": str(paths.nifti_train), "cases": len(train),
             "files": sum(len(c.images) + (c.seg is not None) for c in train),
             "size_GB": _folder_size(paths.nifti_train) / 1e9}]
    if paths.nifti_validation is not None:
        validation = io.find_cases(paths.nifti_validation, warn_missing=False)
        rows.append({"layout": "NIfTI validation", "folder": str(paths.nifti_validation),
                     "cases": len(validation), "files": sum(len(c.images) for c in validation),
                     "size_GB": _folder_size(paths.nifti_validation) / 1e9})
    volumes = io.find_h5_volumes(paths.h5_dir)
    rows.append({"layout": "HDF5 slices", "folder": str(paths.h5_dir), "cases": len(volumes),
                 "files": sum(len(files) for files in volumes.values()),
                 "size_GB": _folder_size(paths.h5_dir) / 1e9})
    return pd.DataFrame(rows)
