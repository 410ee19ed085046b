"""Intensity preprocessing: brain mask, the brain's bounding box, brain-masked z-score normalisation.

MRI intensities have no physical unit: the same tissue gets different values on different scanners and
even between two cases of one scanner. Training therefore normalises each channel of each case to zero
mean and unit variance, measured only inside the brain (the zero background would swamp the statistics).
"""

from __future__ import annotations

import numpy as np


def brain_mask(image: np.ndarray) -> np.ndarray:
    """Return the brain mask of a skull-stripped case: voxels where any channel is non-zero (notebook 03).

    Args:
        image: (C, ...) intensities, zero outside the brain as in BraTS.
    """
    return np.any(np.asarray(image) != 0, axis=0)


def zscore_brain(image: np.ndarray, mask: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    """Normalise each channel to mean 0, std 1 inside the brain; voxels outside the brain become 0 (float32).
    Introduced in notebook 03.

    Example:
        >>> normalised = zscore_brain(case.image)  # doctest: +SKIP
    """
    image = np.asarray(image, dtype=np.float32)
    mask = brain_mask(image) if mask is None else np.asarray(mask, dtype=bool)
    normalised = np.zeros_like(image)
    if not mask.any():
        return normalised
    for channel in range(image.shape[0]):
        values = image[channel][mask]
        normalised[channel][mask] = (values - values.mean()) / (values.std() + eps)
    return normalised


def normalise_image(image: np.ndarray) -> np.ndarray:
    """The course's one input normalisation: ``zscore_brain`` rounded to float16, returned as float32 (notebook 03).

    The npy cache stores float16 (half the bytes); rounding here too makes a case loaded from its NIfTI files give
    bit-identical network inputs to the same case read from the cache, so every notebook scores it the same.

    Example:
        >>> normalise_image(np.array([[0.0, 1.0, 3.0]])).tolist()
        [[0.0, -1.0, 1.0]]
    """
    return zscore_brain(image).astype(np.float16).astype(np.float32)


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Slices of the smallest box holding every True voxel of ``mask``, grown by ``margin`` (within the array).
    Introduced in notebook 03.

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
    Introduced in notebook 03.

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
