"""Intensity preprocessing: brain mask, the brain's bounding box, brain-masked z-score normalisation.

MRI intensities have no physical unit: the same tissue gets different values on different scanners and
even between two cases of one scanner. Training therefore normalises each channel of each case to zero
mean and unit variance, measured only inside the brain (the zero background would swamp the statistics).
"""

from __future__ import annotations

import numpy as np


def brain_mask(image: np.ndarray) -> np.ndarray:
    """Return the brain mask of a skull-stripped case: voxels where any channel is non-zero.

    Args:
        image: (C, ...) intensities, zero outside the brain as in BraTS.
    """
    return np.any(np.asarray(image) != 0, axis=0)


def brain_statistics(image: np.ndarray, mask: np.ndarray | None = None, eps: float = 1e-8
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (+ ``eps``) of the brain voxels, float32: what the z-score divides by.

    An image without brain gives mean 0 and std 1 (nothing to normalise).
    """
    image = np.asarray(image, dtype=np.float32)
    mask = brain_mask(image) if mask is None else np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(len(image), np.float32), np.ones(len(image), np.float32)
    values = [channel[mask] for channel in image]
    return (np.array([v.mean() for v in values], dtype=np.float32),
            np.array([v.std() + eps for v in values], dtype=np.float32))


def apply_zscore(image: np.ndarray, mean: np.ndarray, std: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalise a float32 image (or a patch of it) in place with given brain statistics; 0 outside the brain.

    3D training z-scores raw patches one at a time with statistics measured once on the whole volume
    (``brain_statistics``): the result equals the same window of ``zscore_brain`` of the whole volume.
    """
    outside = ~(brain_mask(image) if mask is None else np.asarray(mask, dtype=bool))
    for channel, m, s in zip(image, mean, std):
        channel -= m
        channel /= s
        channel[outside] = 0
    return image


def zscore_brain(image: np.ndarray, mask: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    """Normalise each channel to mean 0, std 1 inside the brain; voxels outside the brain become 0 (float32).

    Example:
        >>> zscore_brain(np.array([[0.0, 1.0, 3.0]])).tolist()
        [[0.0, -1.0, 1.0]]
    """
    image = np.array(image, dtype=np.float32)  # a copy: normalised in place below
    mask = brain_mask(image) if mask is None else np.asarray(mask, dtype=bool)
    return apply_zscore(image, *brain_statistics(image, mask, eps), mask=mask)


def normalise_image(image: np.ndarray) -> np.ndarray:
    """The course's one input normalisation: ``zscore_brain`` rounded to float16, returned as float32 (notebook 07).

    The npy cache stores float16 (half the bytes); rounding here too makes a case loaded from its NIfTI files give
    bit-identical network inputs to the same case read from the cache, so every notebook scores it the same.

    Example:
        >>> normalise_image(np.array([[0.0, 1.0, 3.0]])).tolist()
        [[0.0, -1.0, 1.0]]
    """
    return zscore_brain(image).astype(np.float16).astype(np.float32)


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Slices of the smallest box holding every True voxel of ``mask``, grown by ``margin`` (within the array).

    An empty mask gives the whole array.

    Example:
        >>> mask = np.zeros((10, 10, 10), bool); mask[2:4, 5, 6] = True
        >>> bounding_box(mask, margin=1)
        (slice(1, 5, None), slice(4, 7, None), slice(5, 8, None))
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return tuple(slice(0, size) for size in mask.shape)
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def uncrop(array: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Put a crop back in its grid: zeros of ``shape`` (the last axes; leading axes kept) with ``array`` at ``box``.

    Undoes ``array = full[..., box]`` when everything outside the box was zero (notebook 03's cropped cache).

    Example:
        >>> uncrop(np.ones((1, 2)), (slice(1, 2), slice(0, 2)), (3, 2)).tolist()
        [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    array = np.asarray(array)
    leading = array.shape[: array.ndim - len(shape)]
    full = np.zeros(leading + tuple(shape), dtype=array.dtype)
    full[(Ellipsis, *box)] = array
    return full


def brain_box(image: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Slices (X, Y, Z) of the box around the brain of a (C, X, Y, Z) image, grown by ``margin`` (notebook 07).

    BraTS images are skull-stripped: the brain is every voxel non-zero in any channel, and about half the grid
    is background a network need not see.
    """
    return bounding_box(brain_mask(image), margin)
