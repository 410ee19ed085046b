"""Training volumes: one patient's image and classes (``Volume``), and patients loaded on demand (``VolumeSource``).

A ``VolumeSource`` is a list of patients that loads each one on demand: ``source[i]`` returns a ``Volume``
(case id, image (C, X, Y, Z), contiguous classes (X, Y, Z) uint8 0..3, and whether the image is already
brain-masked z-scored). Its case ids are known without loading anything, so patients can be split first
(``braintools.data.splits``) and each part given to a 2D slice dataset (notebook 04) or a 3D patch dataset (05, 06).
From the npy cache, volumes are memory maps: a patch or a slice reads only its own bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintools.cache.store import (
    cached_box,
    cached_case_ids,
    file_sha256,
    load_cached_case,
    manifest_entry,
    read_manifest,
)
from braintools.data import io
from braintools.data.download import apply_in_plane
from braintools.data.labels import to_contiguous
from braintools.errors import DataError


@dataclass
class Volume:
    """One patient: image (C, X, Y, Z) (any float dtype, may be a memory map) and classes (X, Y, Z) 0..3.

    ``origin`` is where the arrays start in the patient's scan: ``(0, 0, 0)`` unless they were cropped (a cache
    cropped to the brain box): voxel ``(x, y, z)`` of the arrays is voxel ``(x, y, z) + origin`` of the scan.
    ``labels_file`` is the cached file the classes were read from (``None`` for other sources): errors name it.
    """

    case_id: str
    image: np.ndarray
    classes: np.ndarray
    normalised: bool = False  # True when the image is already brain-masked z-scored
    origin: tuple[int, int, int] = (0, 0, 0)
    labels_file: Path | None = None


# Loaders are small classes (not lambdas) so a source can be pickled into DataLoader worker processes.
class _ArrayLoader:
    def __init__(self, arrays: Mapping[str, tuple[np.ndarray, np.ndarray]], normalised: bool):
        self.arrays, self.normalised = dict(arrays), normalised

    def __call__(self, case_id: str) -> Volume:
        image, classes = self.arrays[case_id]
        return Volume(case_id, image, classes, self.normalised)


class _NiftiLoader:
    def __init__(self, cases: Mapping[str, io.CaseFiles]):
        self.cases = dict(cases)

    def __call__(self, case_id: str) -> Volume:
        return _volume_from_case(io.load_case(self.cases[case_id]))


class _H5Loader:
    def __init__(self, volumes: Mapping[str, Sequence[Path]], channel_order: tuple[str, ...]):
        self.volumes, self.channel_order = dict(volumes), channel_order

    def __call__(self, case_id: str) -> Volume:
        case = io.load_h5_volume(list(self.volumes[case_id]), self.channel_order, case_id=case_id)
        return Volume(case_id, case.image, to_contiguous(case.seg), normalised=False)


class _CacheLoader:
    def __init__(self, cache_dir: Path, mmap: bool):
        self.cache_dir, self.mmap = cache_dir, mmap

    def __call__(self, case_id: str) -> Volume:
        image, classes = load_cached_case(self.cache_dir, case_id, mmap=self.mmap)
        if classes is None:
            raise DataError(f"{self.cache_dir}: cached case {case_id} has no labels to train on")
        origin = tuple(part.start for part in cached_box(self.cache_dir, case_id))
        labels_file = self.cache_dir / manifest_entry(self.cache_dir, case_id)["labels"]["file"]
        return Volume(case_id, image, classes, normalised=True, origin=origin, labels_file=labels_file)


class _RenamedCacheLoader:
    def __init__(self, cache_dir: Path, names: Mapping[str, str], in_plane: Mapping[str, str], mmap: bool):
        self.cache_dir, self.names, self.in_plane, self.mmap = cache_dir, dict(names), dict(in_plane), mmap

    def __call__(self, case_id: str) -> Volume:
        volume = _CacheLoader(self.cache_dir, self.mmap)(self.names[case_id])
        mapping = self.in_plane.get(case_id, "as stored")
        if mapping != "as stored":  # e.g. an HDF5 volume stored transposed relative to its NIfTI case
            image = np.moveaxis(apply_in_plane(np.moveaxis(volume.image, 0, -1), mapping), -1, 0)
            return Volume(case_id, image, apply_in_plane(volume.classes, mapping), normalised=True,
                          labels_file=volume.labels_file)
        return Volume(case_id, volume.image, volume.classes, normalised=True, labels_file=volume.labels_file)


class _JoinedLoader:
    def __init__(self, sources: Sequence[VolumeSource]):
        self.loads = {case_id: source.load for source in sources for case_id in source.case_ids}

    def __call__(self, case_id: str) -> Volume:
        return self.loads[case_id](case_id)


class VolumeSource(Sequence):
    """Patients loaded on demand: ``len(source)``, ``source.case_ids``, and ``source[i]`` -> ``Volume`` (notebook 04).

    Build one with a ``from_...`` constructor, or pass any ``load(case_id) -> Volume`` function.

    Example:
        >>> source = VolumeSource.from_arrays([("a", np.zeros((4, 8, 8, 3)), np.zeros((8, 8, 3), np.uint8))])
        >>> source.case_ids, source[0].image.shape
        (('a',), (4, 8, 8, 3))
    """

    def __init__(self, case_ids: Sequence[str], load: Callable[[str], Volume]):
        self.case_ids = tuple(str(case_id) for case_id in case_ids)
        self.load = load

    def __len__(self) -> int:
        return len(self.case_ids)

    def __getitem__(self, index: int) -> Volume:  # type: ignore[override]
        volume = self.load(self.case_ids[index])
        check_volume(volume)
        return volume

    def subset(self, case_ids: Iterable[str]) -> VolumeSource:
        """Return a source with only ``case_ids`` (e.g. one part of a ``PatientSplit``), in that order."""
        case_ids = list(case_ids)
        unknown = sorted(set(case_ids) - set(self.case_ids))
        if unknown:
            raise KeyError(f"patients {unknown[:5]} are not in this source")
        return VolumeSource(case_ids, self.load)

    @classmethod
    def from_arrays(cls, items: Iterable[tuple[str, np.ndarray, np.ndarray]], normalised: bool = False) -> VolumeSource:
        """Source over in-memory (case_id, image (C, X, Y, Z), classes (X, Y, Z)) triples."""
        arrays = {case_id: (image, classes) for case_id, image, classes in items}
        return cls(list(arrays), _ArrayLoader(arrays, normalised))

    @classmethod
    def from_nifti(cls, cases: Sequence[io.CaseFiles]) -> VolumeSource:
        """Source over NIfTI cases from ``io.find_cases(root, require_seg=True)`` (z-scored on the fly)."""
        return cls([case.case_id for case in cases], _NiftiLoader({case.case_id: case for case in cases}))

    @classmethod
    def from_h5(
        cls, volumes: Mapping[int, Sequence[Path]], channel_order: tuple[str, ...] = io.H5_CHANNEL_ORDER
    ) -> VolumeSource:
        """Source over Kaggle HDF5 volumes from ``io.find_h5_volumes(folder)`` (named ``volume_<v>``)."""
        named = {f"volume_{number}": files for number, files in volumes.items()}
        return cls(list(named), _H5Loader(named, tuple(channel_order)))

    @classmethod
    def from_cache(cls, cache_dir: str | os.PathLike, mmap: bool = True) -> VolumeSource:
        """Source over a ``braintools.cache`` folder (float16 z-scored images, uint8 classes, origin of a crop)."""
        return cls(cached_case_ids(cache_dir), _CacheLoader(Path(cache_dir), mmap))


    @classmethod
    def from_cache_as(cls, cache_dir: str | os.PathLike, names: Mapping[str, str],
                      in_plane: Mapping[str, str] | None = None, mmap: bool = True) -> VolumeSource:
        """Source over cached volumes under other names, e.g. HDF5 volumes as their NIfTI cases (notebook 04).

        Args:
            cache_dir: a ``braintools.cache`` folder.
            names: case id to use -> cached case id (``{"BraTS20_Training_003": "volume_3"}``).
            in_plane: case id -> the in-plane flip or transpose (``download.match_in_plane``) that turns the
                cached arrays into the orientation of the case (missing: ``"as stored"``).
            mmap: memory-map the cached files.
        """
        cached = set(cached_case_ids(cache_dir))
        missing = sorted(stored for stored in names.values() if stored not in cached)
        if missing:
            raise DataError(f"{cache_dir}: {missing[:5]} are not cached (run precache first)")
        return cls(list(names), _RenamedCacheLoader(Path(cache_dir), names, in_plane or {}, mmap))


    @classmethod
    def join(cls, *sources: VolumeSource) -> VolumeSource:
        """One source over the patients of several, in their order (notebook 04: HDF5 and NIfTI copies).

        Example:
            >>> a = VolumeSource.from_arrays([("a", np.zeros((4, 8, 8, 3)), np.zeros((8, 8, 3), np.uint8))])
            >>> VolumeSource.join(a, a.subset([])).case_ids
            ('a',)
        """
        case_ids = [case_id for source in sources for case_id in source.case_ids]
        repeated = sorted({case_id for case_id in case_ids if case_ids.count(case_id) > 1})
        if repeated:
            raise ValueError(f"patients {repeated[:5]} are in more than one source")
        return cls(case_ids, _JoinedLoader(sources))


def check_volume(volume: Volume) -> None:
    """Raise ``DataError`` unless the image is (C, X, Y, Z) and the classes are (X, Y, Z) integers."""
    image, classes = volume.image, volume.classes
    if getattr(image, "ndim", None) != 4 or tuple(classes.shape) != tuple(image.shape[1:]):
        raise DataError(f"{volume.case_id}: expected image (C, X, Y, Z) and classes (X, Y, Z), "
                        f"got {getattr(image, 'shape', None)} and {getattr(classes, 'shape', None)}")
    if not np.issubdtype(classes.dtype, np.integer):
        raise DataError(f"{volume.case_id}: classes must be integers 0..3, got dtype {classes.dtype}")


def check_class_values(volume: Volume, classes: np.ndarray | None = None) -> None:
    """Raise ``DataError`` unless the classes of a volume lie in 0..3, naming the cached file and the fix when the
    volume comes from the npy cache (a damaged file: delete it, run precache again).

    ``classes``: the array already read (e.g. ``np.asarray(volume.classes)``), to read a memory map only once.
    """
    classes = np.asarray(volume.classes if classes is None else classes)
    if not classes.size:
        return
    smallest, largest = int(classes.min()), int(classes.max())
    if 0 <= smallest and largest <= 3:
        return
    value = largest if largest > 3 else smallest
    if volume.labels_file is None:
        raise DataError(f"{volume.case_id}: classes must be contiguous 0..3, found {value}; map BraTS labels "
                        "0/1/2/4 with braintools.data.labels.to_contiguous first")
    folder = volume.labels_file.parent
    try:
        recorded = next(entry["labels"]["sha256"] for entry in read_manifest(folder)["cases"].values()
                        if entry.get("labels") and entry["labels"]["file"] == volume.labels_file.name)
        damaged = file_sha256(volume.labels_file) != recorded
    except (OSError, StopIteration, KeyError, TypeError, DataError):
        damaged = True
    why = ("the file is damaged: its checksum no longer matches the cache manifest" if damaged else
           "it matches the cache manifest, so the source segmentation holds it")
    raise DataError(f"{volume.labels_file}: the cached classes of {volume.case_id} hold the value {value}, outside "
                    f"0..3 ({why}); delete this file and run precache again (python -m braintools precache) to "
                    f"convert {volume.case_id} again")


def _volume_from_case(case: io.Case) -> Volume:
    """Turn a loaded ``io.Case`` (BraTS labels 0/1/2/4, raw intensities) into a ``Volume`` (classes 0..3).
    Introduced in notebook 04."""
    if case.seg is None:
        raise DataError(f"{case.case_id}: a training volume needs a segmentation, this case has none")
    return Volume(case.case_id, case.image, to_contiguous(case.seg), normalised=False)
