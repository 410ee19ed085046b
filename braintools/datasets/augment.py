"""Medical-safe augmentation of 2D slices: left-right flip, small zoom, small brightness/contrast changes.

Safe means the augmented slice still looks like a real scan with a correct label:

- left-right flip: brains are roughly mirror-symmetric and tumours occur on both sides. BraTS arrays are
  (X, Y) with X toward the patient's left, so the flip reverses the X axis (shown horizontally in the course's
  viewers). Up-down flips or large rotations would make anatomy no scanner produces.
- zoom by about +-5 %: head sizes vary that much between patients.
- brightness and contrast by about +-10 % per channel, inside the brain only: scanners differ that much
  after normalisation. On z-scored slices (mean 0, std 1 in the brain) brightness adds up to
  ``brightness`` (in brain std units) and contrast multiplies by 1 +- ``contrast``; the background stays 0.

Geometric changes (flip, zoom) are applied identically to image and mask; the image is interpolated
linearly, the mask with nearest neighbour so it keeps integer classes. Random draws come from the
``numpy.random.Generator`` passed in, so a seeded generator gives the same augmentation every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class AugmentParams:
    """One random draw: flip or not, zoom factor, and per-channel brightness shift and contrast factor (notebook 04)."""

    flip: bool
    zoom: float
    brightness: tuple[float, ...]
    contrast: tuple[float, ...]


def flip_left_right(array: np.ndarray) -> np.ndarray:
    """Mirror a slice (..., X, Y) along X, the patient's left-right axis in BraTS arrays (notebook 04)."""
    return np.ascontiguousarray(np.flip(array, axis=-2))


def zoom_slice(array: np.ndarray, factor: float, order: int) -> np.ndarray:
    """Zoom a slice (..., H, W) about its centre by ``factor`` (> 1 enlarges), keeping its shape (notebook 04).

    Args:
        array: 2D slice, or channels first (C, H, W); every channel gets the same zoom.
        factor: scale factor, e.g. 1.05 enlarges by 5 %; new borders are filled with 0.
        order: spline order: 1 (linear) for images, 0 (nearest) for masks.
    """
    if factor == 1.0:
        return array.copy()
    height, width = array.shape[-2:]
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    offset = centre - centre / factor  # output pixel o reads input o / factor + offset
    planes = array.reshape((-1, height, width))
    zoomed = [
        ndimage.affine_transform(plane, np.full(2, 1.0 / factor), offset=offset, order=order, mode="constant", cval=0)
        for plane in planes
    ]
    return np.stack(zoomed).reshape(array.shape).astype(array.dtype, copy=False)


def adjust_brightness_contrast(
    image: np.ndarray, brightness: np.ndarray, contrast: np.ndarray, brain: np.ndarray | None = None
) -> np.ndarray:
    """Return ``image * contrast + brightness`` per channel inside the brain; the background keeps its value.
    Introduced in notebook 04.

    Args:
        image: (C, H, W) slice, normally z-scored.
        brightness: (C,) shifts; contrast: (C,) factors.
        brain: (H, W) boolean mask (default: pixels where any channel is non-zero).
    """
    brain = np.any(image != 0, axis=0) if brain is None else brain
    adjusted = image * np.reshape(contrast, (-1, 1, 1)) + np.reshape(brightness, (-1, 1, 1))
    return np.where(brain, adjusted, image).astype(image.dtype, copy=False)


@dataclass(frozen=True)
class SliceAugmenter:
    """Random medical-safe augmentation of a (C, H, W) image and its (H, W) class mask (notebook 04).

    Args:
        flip_probability: chance of a left-right flip.
        zoom: largest relative zoom, e.g. 0.05 for factors in [0.95, 1.05].
        brightness: largest brightness shift per channel (brain std units on z-scored slices).
        contrast: largest relative contrast change per channel, e.g. 0.1 for factors in [0.9, 1.1].
        image_order: interpolation order of the image when zooming (1 linear; the mask always uses 0).

    Example:
        >>> augment = SliceAugmenter()
        >>> image, mask = augment(image, mask, np.random.default_rng(0))  # doctest: +SKIP
    """

    flip_probability: float = 0.5
    zoom: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    image_order: int = 1

    def sample(self, rng: np.random.Generator, n_channels: int) -> AugmentParams:
        """Draw one set of random parameters from ``rng``."""
        return AugmentParams(
            flip=bool(rng.random() < self.flip_probability),
            zoom=float(1.0 + rng.uniform(-self.zoom, self.zoom)),
            brightness=tuple(rng.uniform(-self.brightness, self.brightness, n_channels).tolist()),
            contrast=tuple((1.0 + rng.uniform(-self.contrast, self.contrast, n_channels)).tolist()),
        )

    def apply(self, image: np.ndarray, mask: np.ndarray, params: AugmentParams) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``params``: the same flip and zoom to image and mask, intensity changes to the image only."""
        if image.ndim != 3 or mask.shape != image.shape[1:]:
            raise ValueError(f"expected image (C, H, W) and mask (H, W), got {image.shape} and {mask.shape}")
        if params.flip:
            image, mask = flip_left_right(image), flip_left_right(mask)
        image = zoom_slice(image, params.zoom, order=self.image_order)
        mask = zoom_slice(mask, params.zoom, order=0)
        image = adjust_brightness_contrast(image, np.asarray(params.brightness), np.asarray(params.contrast))
        return image, mask

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw parameters from ``rng`` and apply them to ``image`` (C, H, W) and ``mask`` (H, W)."""
        return self.apply(image, mask, self.sample(rng, image.shape[0]))
