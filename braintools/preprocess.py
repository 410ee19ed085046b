"""Intensity preprocessing: brain mask and brain-masked z-score normalisation.

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


def zscore_brain(image: np.ndarray, mask: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    """Normalise each channel to mean 0, std 1 inside the brain; voxels outside the brain become 0 (float32).

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
