"""Find and load BraTS cases (NIfTI folders or Kaggle HDF5 slices) and save predictions as NIfTI.

Conventions used everywhere in the course:

- Every BraTS release is recognised (``releases``: 2018-2020, 2021, 2023 GLI): ``CaseFiles.release`` says which one
  a case is in, and loading maps its file names and labels into the course's one internal convention.
- ``Case.image`` is float32 with shape (4, X, Y, Z), channels in ``MODALITIES`` order (T1, T1ce, T2, FLAIR; BraTS
  2023's t1n, t1c, t2w, t2f), array axes as stored on disk (BraTS: X toward patient Left, Y toward Posterior, Z toward
  Superior).
- ``Case.seg`` is uint8 with BraTS 2018-2021 labels {0, 1, 2, 4} (a BraTS 2023 ET of 3 becomes 4), validated
  against the release's own label set on load.
- HDF5 slice ``volume_<v>_slice_<s>.h5`` is read as the axial slice ``[:, :, s]`` of volume ``v``
  (no flip, no transpose: the documented orientation of the synthetic data; for the real Kaggle files
  it is not settled, see FORMATS.md). Its ``image`` channel order is the ``channel_order`` parameter.
"""

from __future__ import annotations

import filecmp
import gzip
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from braintools._private.atomic import atomic_path
from braintools.data import releases
from braintools.data.labels import (
    BRATS2020,
    LabelConvention,
    convert_labels,
    from_contiguous,
    h5_mask_to_labels,
    validate_labels,
)
from braintools.data.releases import Release
from braintools.errors import DataError

MODALITIES = releases.COURSE_MODALITIES  # ("t1", "t1ce", "t2", "flair")
H5_CHANNEL_ORDER = ("t1", "t1ce", "t2", "flair")  # the majority assumption for the Kaggle HDF5 files
_SKIPPED_FOLDERS = ("__MACOSX",)  # macOS zip archives' folder of resource forks
_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")
_H5_NAME = re.compile(r"^volume_(?P<volume>\d+)_slice_(?P<slice>\d+)\.h5$")
AFFINE_TOLERANCE = 1e-3  # mm (and direction cosines): files of one case must share one voxel grid
_NIFTI2_SIZEOF_HDR = (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c")  # 540, little or big endian


@dataclass
class CaseFiles:
    """The files of one case: one path per course modality found, the segmentation if any, and its BraTS release.

    ``images`` is keyed by the course's modality names (t1, t1ce, t2, flair) whatever the release calls them (BraTS
    2023: t1n, t1c, t2w, t2f); ``release`` (``releases.Release``) says how its files are named and its labels written;
    ``others`` are the NIfTI files of its folder that no BraTS naming explains (named when a modality is missing).
    """

    case_id: str
    folder: Path
    images: dict[str, Path] = field(default_factory=dict)
    seg: Path | None = None
    release: Release = releases.BRATS_2018_2020
    others: tuple[Path, ...] = ()

    @property
    def missing(self) -> list[str]:
        """Modalities of ``MODALITIES`` with no file."""
        return [modality for modality in MODALITIES if modality not in self.images]

    def files(self) -> list[Path]:
        """Every file of the case: its images in course order, then its segmentation."""
        return [self.images[m] for m in MODALITIES if m in self.images] + ([self.seg] if self.seg else [])


@dataclass
class Case:
    """One case in memory, real or synthetic: image (C, X, Y, Z), seg (X, Y, Z) BraTS labels or None, affine.
    Introduced in notebook 02.

    ``load_case`` gives float32 images and uint8 labels; the synthetic generator (``synthetic.generator.make_case``)
    gives the int16 values it writes to disk. ``grade`` is ``"HGG"``/``"LGG"`` when known, else ``""``.
    """

    case_id: str
    image: np.ndarray
    seg: np.ndarray | None
    affine: np.ndarray
    modalities: tuple[str, ...] = MODALITIES
    grade: str = ""

    def channel(self, modality: str) -> np.ndarray:
        """Return the volume of one modality, e.g. ``case.channel("flair")``."""
        if modality not in self.modalities:
            raise ValueError(f"case {self.case_id} has no modality {modality!r}; it has {self.modalities}")
        return self.image[self.modalities.index(modality)]


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def find_cases(root: str | os.PathLike, require_seg: bool = False, warn_missing: bool = True) -> list[CaseFiles]:
    """Find every BraTS case under ``root`` (any depth), in any release's naming, ``.nii`` or ``.nii.gz`` (notebook 01).

    Recognises BraTS 2018-2021 ``<case>_{t1,t1ce,t2,flair,seg}.nii[.gz]``, BraTS 2023 ``<case>-{t1n,t1c,t2w,t2f,seg}``
    (``CaseFiles.release`` says which; ``releases.recognise``), and a misnamed segmentation such as BraTS 2020 case
    355's ``W39_1998.09.19_Segm.nii`` (a NIfTI with "seg" in its name, alone in a case folder). Hidden files and
    folders (macOS ``._<name>`` resource forks, half-written ``.partial`` folders) and ``__MACOSX`` are not read.
    Cases with a missing modality are kept and reported in a warning (``CaseFiles.missing``). ``DataError``, naming
    the files: two files for one modality or seg of a case (``_seg.nii`` and ``_seg.nii.gz``), one case id in two
    folders (unless their files are identical: then the first is kept, with a warning), a case mixing two releases'
    names, and a folder without any case (the message lists what it holds and what names were expected).

    Args:
        root: folder to search.
        require_seg: drop cases without a segmentation (e.g. to keep training cases only).
        warn_missing: warn about cases with missing modalities.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    cases: dict[tuple[Path, str], CaseFiles] = {}
    strays: dict[Path, list[Path]] = defaultdict(list)
    seen_files: list[Path] = []
    for folder, names in walk_files(root):
        for name in names:
            seen_files.append(Path(folder) / name)
            if not name.lower().endswith((".nii", ".nii.gz")):
                continue
            parsed = releases.parse_file_name(name)
            if parsed is None:
                strays[Path(folder)].append(Path(folder) / name)
                continue
            case_id, kind, _ = parsed
            key = (Path(folder), case_id)
            case = cases.setdefault(key, CaseFiles(case_id=case_id, folder=Path(folder)))
            _add_case_file(case, kind, Path(folder) / name)
    _attach_misnamed_segs(cases, strays)
    for (folder, _), case in cases.items():
        case.images = {modality: case.images[modality] for modality in MODALITIES if modality in case.images}
        try:
            case.release = releases.recognise(case.case_id, [path.name for path in case.files()])
        except ValueError as error:
            raise DataError(f"{folder}: {error}") from None
        case.others = tuple(sorted(path for path in strays.get(folder, []) if path != case.seg))
    found = _one_case_per_id(sorted(cases.values(), key=lambda c: (_natural_key(c.case_id), str(c.folder))))
    if not found:
        raise DataError(f"{root}: no BraTS cases found; {_what_is_there(root, seen_files)}; expected "
                        f"{releases.expected_names()}")
    if require_seg:
        found = [case for case in found if case.seg is not None]
    incomplete = [f"{case.case_id} (missing {', '.join(case.missing)})" for case in found if case.missing]
    if incomplete and warn_missing:
        warnings.warn(f"{root}: {len(incomplete)} case(s) with missing modalities: {'; '.join(incomplete)}",
                      stacklevel=2)
    return found


def _what_is_there(root: Path, files: list[Path], count: int = 5) -> str:
    """What a folder without a case holds, for the error: some NIfTI files, some other files, archives to extract."""
    if not files:
        return "it holds no file"
    nifti = [path for path in files if path.name.lower().endswith((".nii", ".nii.gz"))]
    others = [path for path in files if not path.name.lower().endswith((".nii", ".nii.gz"))]

    def some(paths: list[Path]) -> str:
        names = [str(path.relative_to(root)) for path in sorted(paths)[:count]]
        return ", ".join(names) + (f", ... ({len(paths) - count} more)" if len(paths) > count else "")

    parts = [f"{len(nifti)} NIfTI file(s) ({some(nifti)})" if nifti else "no NIfTI file"]
    if others:
        parts.append(f"{len(others)} other file(s) ({some(others)})")
    archives = [path for path in others if path.name.lower().endswith(_ARCHIVES)]
    hint = f" (extract the archive(s) {some(archives)} first)" if archives else ""
    return "it holds " + " and ".join(parts) + hint


def _one_case_per_id(found: list[CaseFiles]) -> list[CaseFiles]:
    """Keep one ``CaseFiles`` per case id: identical copies are one case (warned), different ones a ``DataError``."""
    kept: dict[str, CaseFiles] = {}
    for case in found:
        first = kept.setdefault(case.case_id, case)
        if first is case:
            continue
        if not _identical_files(first, case):
            raise DataError(f"case {case.case_id} is in two folders with different files: {first.folder} and "
                            f"{case.folder}; every case id must name one patient: keep one of them, or search a "
                            "narrower folder")
        warnings.warn(f"case {case.case_id} is in two folders with identical files: using {first.folder}, not "
                      f"{case.folder}", stacklevel=3)
    return list(kept.values())


def _identical_files(first: CaseFiles, second: CaseFiles) -> bool:
    """True when two cases have the same kinds of files with the same bytes."""
    kinds = {**first.images, "seg": first.seg}, {**second.images, "seg": second.seg}
    if kinds[0].keys() != kinds[1].keys() or (first.seg is None) != (second.seg is None):
        return False
    return all(path is None or filecmp.cmp(path, kinds[1][kind], shallow=False) for kind, path in kinds[0].items())


def walk_files(root: str | os.PathLike) -> Iterator[tuple[Path, list[str]]]:
    """Yield (folder, file names) for every folder under ``root``, entering symlinked folders, each folder once.

    Folders arranged with symbolic links (common in Colab and Kaggle working folders) are searched; a folder
    reached twice (two links to it, or a link to one of its parents) is searched only the first time. Hidden files
    and folders below ``root`` (a name starting with ".": macOS ``._<name>`` resource forks, ``.partial`` folders of
    an interrupted writer) and ``__MACOSX`` folders are left out.
    """
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        status = os.stat(folder)
        if (status.st_dev, status.st_ino) in seen:
            subfolders.clear()
            continue
        seen.add((status.st_dev, status.st_ino))
        subfolders[:] = sorted(name for name in subfolders
                               if not name.startswith(".") and name not in _SKIPPED_FOLDERS)
        yield Path(folder), sorted(name for name in names if not name.startswith("."))


def _add_case_file(case: CaseFiles, kind: str, path: Path) -> None:
    """Record ``path`` as the ``kind`` (a modality or "seg") of ``case``; a second file for it is an error."""
    existing = case.seg if kind == "seg" else case.images.get(kind)
    if existing is not None:
        first, second = sorted((existing, path))
        raise DataError(f"{first} and {second}: two files for the {kind} of case {case.case_id}; keep one of them")
    if kind == "seg":
        case.seg = path
    else:
        case.images[kind] = path


def _attach_misnamed_segs(cases: dict[tuple[Path, str], CaseFiles], strays: dict[Path, list[Path]]) -> None:
    """Give a case without a seg the one stray NIfTI with 'seg' in its name in the same folder."""
    for folder, files in strays.items():
        segs = [path for path in files if "seg" in path.name.lower()]
        owners = [case for (case_folder, _), case in cases.items() if case_folder == folder]
        if len(segs) == 1 and len(owners) == 1 and owners[0].seg is None:
            owners[0].seg = segs[0]


def _read_nifti_image(path: Path) -> nib.Nifti1Image:
    """``nib.load``, except that a ``.gz`` file is decompressed whole first, which checks its CRC and length.

    nibabel reads only the bytes it needs, so a flipped bit inside a ``.nii.gz`` would give wrong voxels
    without an error. Decompressing the whole file costs about what nibabel's own reading costs.
    """
    if not path.name.lower().endswith(".gz"):
        return nib.load(path)
    raw = gzip.decompress(path.read_bytes())
    image_class = nib.Nifti2Image if raw[:4] in _NIFTI2_SIZEOF_HDR else nib.Nifti1Image
    return image_class.from_bytes(raw)


def load_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI file into (array as stored on disk, affine); errors name the file (notebook 08).

    A ``.nii.gz`` file is checked whole (gzip CRC and length): a corrupt byte anywhere is an error.
    """
    path = Path(path)
    try:
        image = _read_nifti_image(path)
        data = np.asanyarray(image.dataobj)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # nibabel raises many types for truncated or corrupt files
        raise DataError(f"{path}: cannot read NIfTI file ({error}); is it truncated or corrupt?") from error
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {data.shape}")
    return data, image.affine


def _load_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data, affine = load_nifti(path)
    volume = np.asarray(data, dtype=np.float32)
    if not np.all(np.isfinite(volume)):
        raise DataError(f"{path}: image holds {np.count_nonzero(~np.isfinite(volume))} NaN or infinite values")
    return volume, affine


def _check_not_constant(volume: np.ndarray, source: str) -> None:
    """Raise ``DataError`` if a modality holds one value everywhere (an all-zero stand-in for a missing scan)."""
    if volume.size and volume.min() == volume.max():
        raise DataError(f"{source}: every voxel is {volume.flat[0]:g}; this modality holds no image (a missing "
                        f"scan saved as a blank volume?)")


def _check_same_grid(affine: np.ndarray, reference: np.ndarray, path: Path, reference_path: Path) -> None:
    """Raise ``DataError`` if ``affine`` differs from ``reference`` by more than ``AFFINE_TOLERANCE``."""
    difference = float(np.max(np.abs(np.asarray(affine, np.float64) - np.asarray(reference, np.float64))))
    if difference > AFFINE_TOLERANCE:
        raise DataError(f"{path}: affine differs from {reference_path.name}'s by up to {difference:.4g} (voxels of "
                        f"the two files do not line up); resample the case onto one grid")


def _load_seg(path: Path, convention: LabelConvention) -> tuple[np.ndarray, np.ndarray]:
    """Read a segmentation written in ``convention``, check it, and return it in the course's labels (uint8)."""
    data, affine = load_nifti(path)
    try:
        validate_labels(data, convention, source=str(path))
    except DataError as error:
        found = set(np.unique(data).tolist())
        fits = [release.name for release in releases.RELEASES.values()
                if release.labels != convention and found <= set(release.labels.values)]
        if not fits:
            raise
        raise DataError(f"{error}; they are {fits[0]} labels: is the case named in another release's naming?") from None
    return convert_labels(data, convention, releases.INTERNAL_LABELS), affine


def load_case(
    case: CaseFiles | str | os.PathLike,
    modalities: tuple[str, ...] = MODALITIES,
    with_seg: bool = True,
    convention: LabelConvention | None = None,
) -> Case:
    """Load a case (``CaseFiles`` or its folder) into a ``Case``: float32 (C, X, Y, Z) image, uint8 seg (notebook 01).

    Whatever the release, the image channels are the course's modalities (BraTS 2023's t2f is "flair") and the
    segmentation has the course's labels 0/1/2/4, after a check against the release's own label set (``convention``:
    the labels the file is written in; default ``case.release.labels``). A segmentation stored as floats with whole
    values (some BraTS 2023 files) loads like an integer one.
    Errors name the file: missing modality (with the files the folder holds), unreadable or corrupt file, shape
    mismatch, affines that differ (beyond ``AFFINE_TOLERANCE``), NaN values, a modality that holds one value
    everywhere, bad labels.

    Example:
        >>> case = load_case(find_cases(root)[0])  # doctest: +SKIP
        >>> case.image.shape, case.modalities  # doctest: +SKIP
        ((4, 240, 240, 155), ('t1', 't1ce', 't2', 'flair'))
    """
    if not isinstance(case, CaseFiles):
        found = find_cases(case, warn_missing=False)
        if len(found) != 1:
            raise DataError(f"{case}: expected one case in this folder, found {len(found)}")
        case = found[0]
    missing = [modality for modality in modalities if modality not in case.images]
    if missing:
        expected = ", ".join(case.release.file_name(case.case_id, modality, ".nii[.gz]") for modality in missing)
        held = ", ".join(path.name for path in sorted([*case.files(), *case.others])) or "no NIfTI file"
        raise DataError(f"{case.folder}: case {case.case_id} has no file for modality {', '.join(missing)} (expected "
                        f"{expected}, {case.release.name} naming); its folder holds {held}")
    volumes, affine, first = [], None, case.images[modalities[0]]
    for modality in modalities:
        volume, volume_affine = _load_image(case.images[modality])
        if volumes and volume.shape != volumes[0].shape:
            raise DataError(f"{case.images[modality]}: shape {volume.shape} differs from "
                            f"{first.name} {volumes[0].shape}")
        if affine is None:
            affine = volume_affine
        _check_same_grid(volume_affine, affine, case.images[modality], first)
        _check_not_constant(volume, str(case.images[modality]))
        volumes.append(volume)
    seg = None
    if with_seg and case.seg is not None:
        seg, seg_affine = _load_seg(case.seg, case.release.labels if convention is None else convention)
        if seg.shape != volumes[0].shape:
            raise DataError(f"{case.seg}: segmentation shape {seg.shape} differs from image shape {volumes[0].shape}")
        _check_same_grid(seg_affine, affine, case.seg, first)
    return Case(case.case_id, np.stack(volumes), seg, np.asarray(affine, dtype=np.float64), tuple(modalities))


def brats_affine(
    shape: tuple[int, int, int] = (240, 240, 155), spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> np.ndarray:
    """Return the BraTS LPS affine for a grid: ``[[-sx,0,0,0],[0,-sy,0,sy*(ny-1)],[0,0,sz,0],[0,0,0,1]]``."""
    sx, sy, sz = spacing
    return np.array([[-sx, 0, 0, 0], [0, -sy, 0, sy * (shape[1] - 1)], [0, 0, sz, 0], [0, 0, 0, 1]], dtype=np.float64)


def find_h5_volumes(folder: str | os.PathLike) -> dict[int, list[Path]]:
    """Map each volume number to its ``volume_<v>_slice_<s>.h5`` files, sorted by slice index (notebook 01).

    Two files for one slice (``volume_1_slice_5.h5`` and ``volume_1_slice_05.h5``) raise ``DataError`` naming both.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    slices: dict[int, dict[int, Path]] = defaultdict(dict)
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _H5_NAME.match(entry.name)
            if not match:
                continue
            volume, index = int(match["volume"]), int(match["slice"])
            if index in slices[volume]:
                first, second = sorted((slices[volume][index], Path(entry.path)))
                raise DataError(f"{first} and {second}: two files for slice {index} of volume {volume}; keep one")
            slices[volume][index] = Path(entry.path)
    if not slices:
        raise DataError(f"{folder}: no HDF5 slices found (expected files like volume_1_slice_0.h5)")
    return {volume: [found[s] for s in sorted(found)] for volume, found in sorted(slices.items())}


def read_h5_slice(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one Kaggle HDF5 slice: ``image`` (H, W, 4) float64 and ``mask`` (H, W, 3) uint8, checked (notebook 01)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if "image" not in handle or "mask" not in handle:
                raise DataError(f"{path}: expected datasets 'image' and 'mask', found {sorted(handle.keys())}")
            image, mask = handle["image"][()], handle["mask"][()]
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as error:  # h5py raises OSError (and others) for truncated or corrupt files
        raise DataError(f"{path}: cannot read HDF5 file ({error}); is it truncated or corrupt?") from error
    if image.ndim != 3 or image.shape[-1] != 4:
        raise DataError(f"{path}: 'image' must be (H, W, 4) channels last, got shape {image.shape}")
    if mask.shape != image.shape[:2] + (3,):
        raise DataError(f"{path}: 'mask' must be (H, W, 3) matching the image, got shape {mask.shape}")
    if not np.all(np.isfinite(image)):
        raise DataError(f"{path}: 'image' holds NaN or infinite values")
    if np.any((mask != 0) & (mask != 1)):
        raise DataError(f"{path}: 'mask' must hold only 0 and 1, found {_some_values(mask)}")
    return image, mask


def _some_values(array: np.ndarray, count: int = 6) -> str:
    """The first distinct values of an array, for an error message, e.g. ``0, 1, 255``."""
    values = np.unique(array)
    return ", ".join(f"{value:g}" for value in values[:count]) + (", ..." if len(values) > count else "")


def load_h5_volume(
    slice_files: list[Path],
    channel_order: tuple[str, ...] = H5_CHANNEL_ORDER,
    modalities: tuple[str, ...] = MODALITIES,
    case_id: str | None = None,
) -> Case:
    """Assemble the HDF5 slices of one volume into a ``Case`` (image in ``modalities`` order, BraTS seg) (notebook 01).

    Args:
        slice_files: the volume's slice files in slice order (from ``find_h5_volumes``).
        channel_order: modality of each channel of the stored ``image`` (a documented assumption for the
            real Kaggle files; check it with ``braintools.data.signatures.check_channel_order``).
        modalities: order of the channels of the returned image.
        case_id: name for the case (default: ``volume_<v>`` from the file names).
    """
    if not slice_files:
        raise DataError("load_h5_volume: no slice files given")
    indices = [int(_H5_NAME.match(Path(path).name)["slice"]) for path in slice_files]
    if indices != list(range(len(indices))):
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        raise DataError(f"{Path(slice_files[0]).parent}: volume has missing or unordered slices {missing[:10]}")
    first_image, first_mask = read_h5_slice(slice_files[0])
    image = np.empty((4,) + first_image.shape[:2] + (len(slice_files),), dtype=np.float32)
    seg = np.empty(first_image.shape[:2] + (len(slice_files),), dtype=np.uint8)
    permutation = [channel_order.index(modality) for modality in modalities]
    for index, path in enumerate(slice_files):
        slice_image, slice_mask = (first_image, first_mask) if index == 0 else read_h5_slice(path)
        if slice_image.shape != first_image.shape:
            raise DataError(f"{path}: slice shape {slice_image.shape} differs from {first_image.shape}")
        image[..., index] = np.moveaxis(slice_image[..., permutation], -1, 0)
        seg[..., index] = h5_mask_to_labels(slice_mask, source=str(path))
    pattern = Path(slice_files[0]).parent / (Path(slice_files[0]).name.rsplit("_slice_", 1)[0] + "_slice_*.h5")
    for modality, channel in zip(modalities, image):
        _check_not_constant(channel, f"{pattern} ({modality})")
    volume_id = case_id or "volume_" + _H5_NAME.match(Path(slice_files[0]).name)["volume"]
    return Case(volume_id, image, seg, brats_affine(seg.shape), tuple(modalities))


def save_prediction_nifti(
    labels: np.ndarray,
    affine: np.ndarray,
    path: str | os.PathLike,
    contiguous: bool = False,
    convention: LabelConvention = BRATS2020,
) -> Path:
    """Write a segmentation as a uint8 NIfTI with BraTS labels and the source affine (atomic write) (notebook 07).

    Args:
        labels: (X, Y, Z) labels; BraTS values, or contiguous classes 0..3 when ``contiguous``.
        affine: the source case's affine (keeps the prediction aligned with the images).
        path: ``.nii`` or ``.nii.gz`` target.
        contiguous: map classes 0..3 to the convention's values (3 -> 4 for BraTS 2020) first.
    """
    labels = from_contiguous(labels, convention) if contiguous else np.asarray(labels)
    validate_labels(labels, convention, source=str(path))
    image = nib.Nifti1Image(labels.astype(np.uint8), np.asarray(affine, dtype=np.float64))
    image.set_data_dtype(np.uint8)
    with atomic_path(path) as temporary:
        nib.save(image, temporary)
    return Path(path)
