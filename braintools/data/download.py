"""Get the BraTS data: the Kaggle datasets via kagglehub (or the Kaggle mount), or the embedded synthetic dataset.

- ``awsaf49/brats20-dataset-training-validation`` (NIfTI, one folder per case), pinned to version 1;
- ``awsaf49/brats2020-training-data`` (2D HDF5 slices), pinned to version 3;
- ``dschettler8845/brats-2021-task1`` (BraTS 2021 Task 1, profile ``kaggle-2021``): its tar archives (reportedly
  ``BraTS2021_Training_Data.tar``; every ``*.tar``/``*.tar.gz`` found is used) are extracted once into
  ``BRAINTOOLS_DATA/extracted/brats-2021-task1`` (``archives.extract_archives``: atomic, resumable, progress bar),
  only the cases the profile uses (``max_cases``).
  There is no HDF5 copy of BraTS 2021 (``DataPaths.h5_dir`` is None).

Pinned handles make runs repeatable and let kagglehub reuse a complete cache without network.
On Kaggle the datasets are mounted under ``/kaggle/input`` (elsewhere: the folder named by
``BRAINTOOLS_KAGGLE_INPUT``) and nothing is downloaded.
Offline, or when Kaggle refuses the request, ``get_dataset`` says where it looked and why the download failed;
nothing falls back silently. The synthetic profiles (``ci``, ``course``) use the embedded synthetic dataset, which
has exactly the same on-disk layout, so every later notebook runs unchanged on either.
Credentials (``kagglehub.login()``, ``KAGGLE_API_TOKEN``, ``~/.kaggle/kaggle.json``...) are handled by
kagglehub itself and are never printed or stored here; public datasets need none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from braintools import paths
from braintools._private.atomic import atomic_path
from braintools.data import archives, io, releases, splits
from braintools.data.releases import Release
from braintools.errors import DataError
from braintools.profiles import Profile
from braintools.synthetic.dataset import ensure_synthetic_dataset
from braintools.synthetic.layout import H5_DATASET_DIR, NIFTI_DATASET_DIR, RELEASE_TRAINING_DIR

NIFTI_HANDLE, NIFTI_VERSION = "awsaf49/brats20-dataset-training-validation", 1
H5_HANDLE, H5_VERSION = "awsaf49/brats2020-training-data", 3
# BraTS 2021 Task 1 on Kaggle (1,251 training cases in tar archives): the handle public code downloads; the version
# is an assumption until checked on Kaggle (a pinned version lets kagglehub reuse its cache offline)
BRATS2021_HANDLE, BRATS2021_VERSION = "dschettler8845/brats-2021-task1", 1
KAGGLE_INPUT = Path("/kaggle/input")  # where Kaggle mounts the datasets attached to a notebook
KAGGLE_INPUT_ENV = "BRAINTOOLS_KAGGLE_INPUT"  # another folder laid out like /kaggle/input (tests, own copies)
H5_METADATA_NAME = "BraTS20 Training Metadata.csv"
_BRATS20_TRAINING_ID = re.compile(r"^BraTS20_Training_(?P<number>\d+)$", re.IGNORECASE)


@dataclass
class DataPaths:
    """Where the data of the course lives, whatever its origin."""

    source: str  # "kaggle" or "synthetic"
    nifti_train: Path  # folder of training case folders (MICCAI_BraTS2020_TrainingData), searched at any depth
    nifti_validation: Path | None  # folder of validation case folders (no segmentations), if any
    h5_dir: Path | None  # folder of volume_<v>_slice_<s>.h5 files; None for a release without them (2021, 2023)
    h5_metadata: Path | None  # "BraTS20 Training Metadata.csv", if found
    release: Release = releases.BRATS_2018_2020  # the BraTS release of the cases (their names and labels)

    @property
    def synthetic(self) -> bool:
        """True for the course's generated cases, False for real scans."""
        return self.source != "kaggle"

    @property
    def tag(self) -> str:
        """What to append to figure titles and score lines: ``" (synthetic)"`` for synthetic data, else nothing."""
        return " (synthetic)" if self.synthetic else ""

    def banner(self) -> str:
        """One line every notebook prints first: is this real or synthetic data (notebook 01)?"""
        if not self.synthetic:
            name = "BraTS 2020" if self.release is releases.BRATS_2018_2020 else self.release.name
            return f"REAL DATA: the {name} training cases in {self.nifti_train}"
        layout = "" if self.release is releases.BRATS_2018_2020 else (
            f" They are written as {self.release.name} ships its cases ({self.release.naming()}, ET = "
            f"{self.release.labels.et}).")
        return ("SYNTHETIC DATA: cases made by the course's generator (MNI152 anatomy, simulated tumours), not real "
                "patients. A score on them says how well a model learnt the generator's tumours, not how it does on a "
                "real scan; notebook 07 also scores the models on real BraTS cases when they are available." + layout)


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
    """Return a local folder with the dataset: the Kaggle mount if present, else a kagglehub download (notebook 01).

    With ``BRAINTOOLS_KAGGLE_INPUT`` set, the dataset must be there: a missing one is a ``DataError``, not a download.
    A failed download is a ``DataError`` that says where the dataset was looked for and why the download failed.
    """
    mounted = kaggle_input_dir(handle)
    if mounted is not None:
        return mounted
    if os.environ.get(KAGGLE_INPUT_ENV):
        raise DataError(f"{kaggle_input_root()}: no folder {handle.split('/')[1]} for dataset {handle} "
                        f"(set by {KAGGLE_INPUT_ENV})")
    import kagglehub  # imported here: importing braintools never touches the network stack

    try:
        return Path(kagglehub.dataset_download(f"{handle}/versions/{version}"))
    except Exception as error:  # network errors are plain requests exceptions; kagglehub raises its own too
        reason = " ".join(str(error).split())[:200]
        raise DataError(f"no Kaggle dataset {handle}: not attached under {kaggle_input_root()} and the kagglehub "
                        f"download failed ({type(error).__name__}: {reason}); on Kaggle add it with Add Input, "
                        "elsewhere turn the internet on, or choose a synthetic profile (ci or course)") from error


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
        if not cases:
            raise DataError(f"{root}: no BraTS case folders found (expected MICCAI_BraTS2020_TrainingData or folders "
                            "of <case>_<modality>.nii[.gz] files)")
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


def h5_volume_case(volume: int, cases: Sequence[io.CaseFiles]) -> io.CaseFiles | None:
    """Return the NIfTI case of HDF5 volume ``volume``: ``BraTS20_Training_<volume>`` if it is among ``cases``.

    The HDF5 files and their CSVs name a patient by its volume number only, which is very likely its BraTS20
    training id (FORMATS.md): ``pair_h5_volume`` checks that on the data. None when there is no such case.
    """
    for case in cases:
        match = _BRATS20_TRAINING_ID.match(case.case_id)
        if match and int(match["number"]) == volume:
            return case
    return None


def _in_plane_views(array: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The array under each in-plane flip and transpose of its first two axes, named, the identity first."""
    for name, view in (("", array), ("transposed", array.swapaxes(0, 1))):
        if name and array.shape[0] != array.shape[1]:
            return
        yield name or "as stored", view
        yield ", ".join(filter(None, (name, "flipped along axis 0"))), view[::-1]
        yield ", ".join(filter(None, (name, "flipped along axis 1"))), view[:, ::-1]
        yield ", ".join(filter(None, (name, "rotated 180 degrees"))), view[::-1, ::-1]


def match_in_plane(array: np.ndarray, reference: np.ndarray) -> str | None:
    """Name the in-plane flip or transpose of ``array`` that equals ``reference`` (``None``: none does; notebook 04).

    Both are (X, Y, ...) arrays, e.g. an HDF5 volume's labels and its NIfTI case's; ``apply_in_plane`` then maps
    ``array`` onto ``reference``.

    Example:
        >>> match_in_plane(np.arange(4).reshape(2, 2).T, np.arange(4).reshape(2, 2))
        'transposed'
    """
    for name, view in _in_plane_views(array):
        if view.shape == reference.shape and np.array_equal(view, reference):
            return name
    return None


def apply_in_plane(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` under the named in-plane flip or transpose of its first two axes (a view; notebook 04)."""
    views = dict(_in_plane_views(array))
    if name not in views:
        raise ValueError(f"unknown in-plane mapping {name!r}; one of {sorted(views)}")
    return views[name]


@dataclass
class H5Pairing:
    """How an HDF5 volume relates to a NIfTI case (``pair_h5_volume``)."""

    volume: int
    case_id: str | None  # the NIfTI case BraTS20_Training_<volume>; None when there is none
    in_plane: str | None  # the in-plane flip or transpose that maps the NIfTI arrays onto the HDF5 ones; None: none
    images_identical: bool | None  # the images are equal too under that mapping (None: not compared)
    tumour_voxels: int = 0  # labelled voxels of the HDF5 volume (0: the segmentations cannot tell)

    def describe(self) -> str:
        """One sentence saying whether the pairing holds and what is known."""
        name = f"volume_{self.volume}"
        if self.case_id is None:
            return (f"{name}: there is no NIfTI case BraTS20_Training_{self.volume:03d} here, so which patient it is "
                    "cannot be known from the files (the HDF5 files and their CSVs name volumes by number only)")
        if self.tumour_voxels == 0:
            return f"{name} has no tumour: its segmentation cannot confirm that it is {self.case_id}"
        if self.in_plane is None:
            return (f"{name} is not {self.case_id}: their segmentations differ under every in-plane flip and "
                    "transpose, so which patient it is cannot be known from the files")
        images = ("images identical" if self.images_identical
                  else "images differ (the HDF5 copy is rescaled or otherwise changed)")
        return (f"{name} is {self.case_id}: identical segmentation ({self.tumour_voxels} tumour voxels) with the "
                f"NIfTI arrays {self.in_plane}; {images} (channels in the order the HDF5 volume was read with)")


def pair_h5_volume(h5_case: io.Case, cases: Sequence[io.CaseFiles], volume: int | None = None) -> H5Pairing:
    """Find the NIfTI case of an HDF5 volume and check it: same segmentation up to an in-plane flip or transpose?
    Introduced in notebook 01.

    Args:
        h5_case: the volume from ``io.load_h5_volume`` (read with the channel order you use).
        cases: the NIfTI training cases (``io.find_cases``).
        volume: its volume number (default: from ``h5_case.case_id``, ``volume_<v>``).

    Example:
        >>> print(pair_h5_volume(io.load_h5_volume(volumes[12], H5_ORDER), cases).describe())  # doctest: +SKIP
    """
    volume = int(h5_case.case_id.rsplit("_", 1)[-1]) if volume is None else volume
    case = h5_volume_case(volume, cases)
    if case is None:
        return H5Pairing(volume, None, None, None)
    nifti = io.load_case(case, modalities=h5_case.modalities)
    pairing = H5Pairing(volume, case.case_id, None, None, int(np.count_nonzero(h5_case.seg)))
    if nifti.seg is None or nifti.seg.shape != h5_case.seg.shape or pairing.tumour_voxels == 0:
        return pairing
    name = match_in_plane(nifti.seg, h5_case.seg)
    if name is not None:
        image = apply_in_plane(np.moveaxis(nifti.image, 0, -1), name)
        pairing.in_plane = name
        pairing.images_identical = bool(np.array_equal(image, np.moveaxis(h5_case.image, 0, -1)))
    return pairing


def _synthetic_data(profile: Profile) -> DataPaths:
    """Generate (or reuse) the synthetic dataset of a profile and return its paths (notebook 01)."""

    root = ensure_synthetic_dataset(profile)
    release = releases.get_release(profile.release)
    if release is not releases.BRATS_2018_2020:  # a newer release's layout: NIfTI training cases only
        return DataPaths("synthetic", root / RELEASE_TRAINING_DIR[release.key], None, None, None, release)
    train, validation = locate_nifti_dirs(root / NIFTI_DATASET_DIR)
    h5_dir, metadata = locate_h5_dir(root / H5_DATASET_DIR)
    return DataPaths("synthetic", train, validation, h5_dir, metadata)


def _kaggle_data() -> DataPaths:
    """Find (Kaggle mount) or download (kagglehub) both Kaggle BraTS 2020 datasets and return their paths (notebook 01).

    Raises ``DataError`` (one line: where it looked, and why the download failed) when they cannot be had.
    """
    nifti_root = download_dataset(NIFTI_HANDLE, NIFTI_VERSION)
    h5_root = download_dataset(H5_HANDLE, H5_VERSION)
    train, validation = locate_nifti_dirs(nifti_root)
    h5_dir, metadata = locate_h5_dir(h5_root)
    return DataPaths("kaggle", train, validation, h5_dir, metadata)


def _case_of_member(name: str) -> str | None:
    """The case id of an archive member that is a BraTS file (any release's naming), else None."""
    parsed = releases.parse_file_name(Path(name).name)
    return parsed[0] if parsed else None


def _archive_cases(archive: Path, folder: Path) -> list[str]:
    """The case ids in an archive, listed once and remembered in ``folder`` (keyed by the archive's name and size)."""
    record = folder / f".{archive.name}.cases.json"
    key = {"archive": archive.name, "bytes": archive.stat().st_size}
    if record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved["cases"]
    cases = sorted({case for name in archives.list_members(archive) if (case := _case_of_member(name))})
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(record) as temporary:
        temporary.write_text(json.dumps({"key": key, "cases": cases}) + "\n", encoding="utf-8")
    return cases


def _kaggle2021_data(profile: Profile, progress: bool) -> DataPaths:
    """Find (Kaggle mount) or download (kagglehub) Kaggle's BraTS 2021 Task 1, extract its archives once (notebook 01).

    Every ``*.tar`` / ``*.tar.gz`` of the download is listed, and the files of the ``profile.max_cases`` cases the
    profile uses (spread evenly over the sorted case ids, as ``course.prepare_data`` picks them) are extracted into
    ``paths.extracted_dir`` (atomic and resumable, ``archives.extract_archive``): the other cases cost no disk. A
    copy whose case folders are already unpacked is read where it is.
    """
    root = download_dataset(BRATS2021_HANDLE, BRATS2021_VERSION)
    found = archives.find_archives(root)
    if found:
        train = paths.extracted_dir(BRATS2021_HANDLE.split("/")[1])
        case_ids = sorted({case for archive in found for case in _archive_cases(archive, train)})
        chosen = set(splits.spread_evenly(case_ids, profile.max_cases))
        digest = hashlib.sha256(" ".join(sorted(chosen)).encode()).hexdigest()[:16]
        archives.extract_archives(found, train, progress=progress, selection=f"{len(chosen)} of {len(case_ids)} "
                                  f"cases ({digest})", keep=lambda name: _case_of_member(name) in chosen
                                  or _case_of_member(name) is None)
    else:
        train = root
    io.find_cases(train, warn_missing=False)  # a download without cases names what it holds, here
    return DataPaths("kaggle", train, None, None, None, releases.BRATS_2021)


def get_dataset(profile: Profile, progress: bool = True) -> DataPaths:
    """Return the data of a profile: its release's Kaggle download (real-data profiles), else synthetic (notebook 01).

    Nothing falls back: a real-data profile without the Kaggle data raises ``DataError`` saying where it looked, and
    only the synthetic profiles (``ci``, ``course``, ``ci-2021`` ...) generate the synthetic dataset. ``progress``:
    a progress bar while BraTS 2021's archives are extracted (the first time only).
    """
    if profile.source == "kaggle":
        return _kaggle2021_data(profile, progress) if profile.release == "2021" else _kaggle_data()
    return _synthetic_data(profile)


def layout_tree(root: str | os.PathLike, depth: int = 3, max_entries: int = 4) -> str:
    """Return an indented listing of ``root`` down to ``depth`` levels, eliding long folders (notebook 01).

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
    """Table of what is on disk: for each layout its folder, cases, files or slices, and size in GB (notebook 01)."""
    train = io.find_cases(paths.nifti_train, warn_missing=False)
    rows = [{"layout": "NIfTI training", "folder": str(paths.nifti_train), "cases": len(train),
             "files": sum(len(c.images) + (c.seg is not None) for c in train),
             "size_GB": _folder_size(paths.nifti_train) / 1e9}]
    if paths.nifti_validation is not None:
        validation = io.find_cases(paths.nifti_validation, warn_missing=False)
        rows.append({"layout": "NIfTI validation", "folder": str(paths.nifti_validation),
                     "cases": len(validation), "files": sum(len(c.images) for c in validation),
                     "size_GB": _folder_size(paths.nifti_validation) / 1e9})
    if paths.h5_dir is not None:  # BraTS 2021 and 2023 have no HDF5 copy
        volumes = io.find_h5_volumes(paths.h5_dir)
        rows.append({"layout": "HDF5 slices", "folder": str(paths.h5_dir), "cases": len(volumes),
                     "files": sum(len(files) for files in volumes.values()),
                     "size_GB": _folder_size(paths.h5_dir) / 1e9})
    return pd.DataFrame(rows)
