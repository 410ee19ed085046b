"""2D axial-slice datasets over a ``volumes.VolumeSource``: cached ``.npy`` files, HDF5 volumes or NIfTI cases alike.

The slice dataset:

1. picks slices with ``select_slices``: every slice that shows tumour, plus a configurable fraction of the
   tumour-free ones (most of a brain is tumour-free; keeping them all makes the model lazy, dropping them
   all makes it see tumour everywhere);
2. z-scores each volume inside the brain (``preprocess.zscore_brain``) unless the source says it already is;
3. pads each slice to the model size (240 -> 256, so five halvings stay whole) or crops it when larger
   (to train on a CPU at a lower resolution, shrink inside the model: ``wrappers.Downsampled``);
4. optionally augments it (``braintools.datasets.augment``), seeded by (seed, epoch, slice index).

Volumes are kept in a byte-bounded ``LRUVolumeCache`` so consecutive slices of a patient load it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from braintools.cache.lru import LRUVolumeCache
from braintools.data.preprocess import brain_mask, zscore_brain
from braintools.datasets.volumes import Volume, VolumeSource, check_class_values


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


def _summarise_volume(volume: Volume) -> VolumeSummary:
    """Count tumour and brain pixels of every axial slice ``[:, :, z]`` of a volume (notebook 04)."""
    classes = np.asarray(volume.classes)
    check_class_values(volume, classes)  # a damaged cache file is named, with the fix
    tumour = np.count_nonzero(classes > 0, axis=(0, 1))
    brain = np.count_nonzero(brain_mask(volume.image), axis=(0, 1))
    return VolumeSummary(volume.case_id, tumour, brain)


def summarise_source(source: VolumeSource, progress: bool = True) -> list[VolumeSummary]:
    """Summarise every volume of a source (loads each once; a tqdm bar shows progress) (notebook 04)."""
    return [_summarise_volume(source[i]) for i in tqdm(range(len(source)), desc="summarise", disable=not progress)]


def select_slices(
    summaries: Sequence[VolumeSummary], keep_empty_fraction: float = 1.0, drop_blank: bool = True, seed: int = 0
) -> list[tuple[int, int]]:
    """Return (volume index, z) of the slices to use: all tumour slices and a fraction of the others (notebook 04).

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


def spread_picks(ranked: Sequence[int], slices: Sequence[tuple[int, int]], count: int, min_gap: int = 8) -> list[int]:
    """The first ``count`` of the ``ranked`` sample indices whose slices lie ``min_gap`` apart within a patient.
    Introduced in notebook 04.

    Neighbouring slices look alike: showing the best (or worst) few predictions should show different places, not
    four adjacent slices of one tumour (notebook 04). ``slices`` are the dataset's (volume index, z) pairs.

    Example:
        >>> spread_picks([0, 1, 2, 3], [(0, 10), (0, 11), (1, 10), (0, 30)], 3)
        [0, 2, 3]
    """
    picked: list[int] = []
    for index in ranked:
        volume, z = slices[index]
        if all(slices[other][0] != volume or abs(slices[other][1] - z) >= min_gap for other in picked):
            picked.append(int(index))
        if len(picked) == count:
            break
    return picked


def _pad_or_crop(array: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Zero-pad or centre-crop the last two axes of ``array`` to ``size`` (e.g. 240 x 240 -> 256 x 256) (notebook 04).

    Padding and cropping both put (old - new) // 2 rows before the image, so padding to 256 and cropping
    back to 240 returns the original slice.

    Example:
        >>> _pad_or_crop(np.ones((4, 240, 240)), 256).shape
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
    """Axial slices of a volume source as ``(image (C, H, W) float32, classes (H, W) int64)`` tensors (notebook 04).

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
            image_slice = _pad_or_crop(image_slice, self.image_size)
            class_slice = _pad_or_crop(class_slice, self.image_size)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image_slice, class_slice = self.augment(image_slice, class_slice, rng)
        image_tensor = torch.from_numpy(np.ascontiguousarray(image_slice, dtype=np.float32))
        return image_tensor, torch.from_numpy(class_slice.astype(np.int64))
