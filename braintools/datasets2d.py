"""2D axial-slice datasets over "volume sources": cached ``.npy`` files, HDF5 volumes or NIfTI cases alike.

A ``VolumeSource`` is a list of patients that loads each one on demand: ``source[i]`` returns a ``Volume``
(case id, image (C, X, Y, Z), contiguous classes (X, Y, Z) uint8 0..3, and whether the image is already
brain-masked z-scored). Its case ids are known without loading anything, so patients can be split first
(``braintools.splits``) and each part turned into a ``SliceDataset`` of its own.

The slice dataset:

1. picks slices with ``select_slices``: every slice that shows tumour, plus a configurable fraction of the
   tumour-free ones (most of a brain is tumour-free; keeping them all makes the model lazy, dropping them
   all makes it see tumour everywhere);
2. z-scores each volume inside the brain (``preprocess.zscore_brain``) unless the source says it already is;
3. pads each slice to the model size (240 -> 256, so five halvings stay whole) or crops it when larger
   (to train on a CPU at a lower resolution, shrink inside the model: ``models2d.Downsampled``);
4. optionally augments it (``braintools.augment``), seeded by (seed, epoch, slice index).

Volumes are kept in a byte-bounded ``LRUVolumeCache`` so consecutive slices of a patient load it once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from braintools import io
from braintools.cache import cached_case_ids, load_cached_case
from braintools.labels import to_contiguous
from braintools.lru import LRUVolumeCache
from braintools.preprocess import brain_mask, zscore_brain


@dataclass
class Volume:
    """One patient: image (C, X, Y, Z) (any float dtype, may be a memory map) and classes (X, Y, Z) 0..3."""

    case_id: str
    image: np.ndarray
    classes: np.ndarray
    normalised: bool = False  # True when the image is already brain-masked z-scored


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
        case = io.load_case(self.cases[case_id])
        if case.seg is None:
            raise ValueError(f"{self.cases[case_id].folder}: case {case_id} has no segmentation to train on")
        return Volume(case_id, case.image, to_contiguous(case.seg), normalised=False)


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
            raise ValueError(f"{self.cache_dir}: cached case {case_id} has no labels to train on")
        return Volume(case_id, image, classes, normalised=True)


class VolumeSource(Sequence):
    """Patients loaded on demand: ``len(source)``, ``source.case_ids``, and ``source[i]`` -> ``Volume``.

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
        """Source over a ``braintools.cache`` folder (float16 z-scored images, uint8 classes)."""
        return cls(cached_case_ids(cache_dir), _CacheLoader(Path(cache_dir), mmap))


def check_volume(volume: Volume) -> None:
    """Raise ``ValueError`` unless the image is (C, X, Y, Z) and the classes are (X, Y, Z) integers."""
    image, classes = volume.image, volume.classes
    if image.ndim != 4 or classes.shape != image.shape[1:]:
        raise ValueError(f"{volume.case_id}: expected image (C, X, Y, Z) and classes (X, Y, Z), "
                         f"got {image.shape} and {classes.shape}")
    if not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"{volume.case_id}: classes must be integers 0..3, got dtype {classes.dtype}")


@dataclass(frozen=True)
class VolumeSummary:
    """Per-slice counts of one volume: tumour pixels and brain pixels of every axial slice."""

    case_id: str
    tumour_pixels: np.ndarray  # (Z,)
    brain_pixels: np.ndarray  # (Z,)

    @property
    def tumour_voxels(self) -> int:
        """Tumour voxels of the whole volume (a handy stratum for ``splits.size_strata``)."""
        return int(self.tumour_pixels.sum())


def summarise_volume(volume: Volume) -> VolumeSummary:
    """Count tumour and brain pixels of every axial slice ``[:, :, z]`` of a volume."""
    tumour = np.count_nonzero(np.asarray(volume.classes) > 0, axis=(0, 1))
    brain = np.count_nonzero(brain_mask(volume.image), axis=(0, 1))
    return VolumeSummary(volume.case_id, tumour, brain)


def summarise_source(source: VolumeSource, progress: bool = True) -> list[VolumeSummary]:
    """Summarise every volume of a source (loads each once; a tqdm bar shows progress)."""
    return [summarise_volume(source[i]) for i in tqdm(range(len(source)), desc="summarise", disable=not progress)]


def select_slices(
    summaries: Sequence[VolumeSummary], keep_empty_fraction: float = 1.0, drop_blank: bool = True, seed: int = 0
) -> list[tuple[int, int]]:
    """Return (volume index, z) of the slices to use: all tumour slices and a fraction of the others.

    Args:
        summaries: from ``summarise_source``, in the source's order.
        keep_empty_fraction: fraction of tumour-free slices to keep (1.0 all, 0.0 none), drawn at random.
            Validation and test sets should keep them all so false positives count.
        drop_blank: drop slices without any brain pixel first (nothing to learn there).
        seed: seed of the random draw.

    Example:
        >>> slices = select_slices(summarise_source(source), keep_empty_fraction=0.1)  # doctest: +SKIP
    """
    if not 0.0 <= keep_empty_fraction <= 1.0:
        raise ValueError(f"keep_empty_fraction must lie in [0, 1], got {keep_empty_fraction}")
    rng = np.random.default_rng(seed)
    tumour, empty = [], []
    for volume_index, summary in enumerate(summaries):
        for z in range(len(summary.tumour_pixels)):
            if drop_blank and summary.brain_pixels[z] == 0:
                continue
            (tumour if summary.tumour_pixels[z] > 0 else empty).append((volume_index, z))
    n_keep = int(round(keep_empty_fraction * len(empty)))
    kept = [empty[i] for i in sorted(rng.choice(len(empty), size=n_keep, replace=False))] if n_keep else []
    return sorted(tumour + kept)


def pad_or_crop(array: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Zero-pad or centre-crop the last two axes of ``array`` to ``size`` (e.g. 240 x 240 -> 256 x 256).

    Padding and cropping both put (old - new) // 2 rows before the image, so padding to 256 and cropping
    back to 240 returns the original slice.

    Example:
        >>> pad_or_crop(np.ones((4, 240, 240)), 256).shape
        (4, 256, 256)
    """
    target = (size, size) if isinstance(size, int) else tuple(size)
    result = array
    for axis, new in zip((-2, -1), target):
        old = result.shape[axis]
        if new > old:
            widths = [(0, 0)] * result.ndim
            widths[axis] = ((new - old) // 2, new - old - (new - old) // 2)
            result = np.pad(result, widths)
        elif new < old:
            start = (old - new) // 2
            result = np.take(result, np.arange(start, start + new), axis=axis)
    return result


class SliceDataset(Dataset):
    """Axial slices of a volume source as ``(image (C, H, W) float32, classes (H, W) int64)`` tensors.

    Args:
        source: the patients (one part of a patient split).
        slices: (volume index, z) pairs from ``select_slices``.
        image_size: pad or crop every slice to this size (``None``: keep the source size).
        augment: ``augment(image, mask, rng) -> (image, mask)`` on numpy arrays, e.g. ``SliceAugmenter()``.
        seed: augmentation seed; slice i of epoch e always gets ``default_rng([seed, e, i])``.
        cache_bytes: memory budget of the per-process volume cache.

    Example:
        >>> dataset = SliceDataset(source, select_slices(summaries, 0.1), 256, SliceAugmenter())  # doctest: +SKIP
        >>> image, classes = dataset[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        source: VolumeSource,
        slices: Sequence[tuple[int, int]],
        image_size: int | tuple[int, int] | None = 256,
        augment: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]] | None = None,
        seed: int = 0,
        cache_bytes: int = 2 * 2**30,
    ):
        self.source = source
        self.slices = [(int(volume), int(z)) for volume, z in slices]
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.cache_bytes = cache_bytes
        self._cache: LRUVolumeCache | None = None

    def __len__(self) -> int:
        return len(self.slices)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (``fit`` calls this before every epoch)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = None  # each DataLoader worker fills its own cache
        return state

    def load_volume(self, volume_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (normalised image, classes) of one volume of the source, through the volume cache."""
        if self._cache is None:
            self._cache = LRUVolumeCache(self.cache_bytes, self._load_normalised)
        return self._cache.get(volume_index)

    def _load_normalised(self, volume_index: int) -> tuple[np.ndarray, np.ndarray]:
        volume = self.source[volume_index]
        image = volume.image if volume.normalised else zscore_brain(volume.image)
        return image, volume.classes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        volume_index, z = self.slices[index]
        image, classes = self.load_volume(volume_index)
        image_slice = np.asarray(image[:, :, :, z], dtype=np.float32)
        class_slice = np.asarray(classes[:, :, z], dtype=np.uint8)
        if self.image_size is not None:
            image_slice = pad_or_crop(image_slice, self.image_size)
            class_slice = pad_or_crop(class_slice, self.image_size)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image_slice, class_slice = self.augment(image_slice, class_slice, rng)
        image_tensor = torch.from_numpy(np.ascontiguousarray(image_slice, dtype=np.float32))
        return image_tensor, torch.from_numpy(class_slice.astype(np.int64))
