"""Medical-safe augmentation: of 2D slices (notebook 04) and of 3D patches (notebook 05).

2D slices: left-right flip, small zoom, small brightness/contrast changes. 3D patches (``datasets.patches3d`` draws
the changes per patch): per-channel intensity scale and shift, and ``AppearanceAugmentation`` (blur, gamma, noise);
their flips are part of cropping the patch.

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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class AugmentParams:
    """One random draw: flip or not, zoom factor, and per-channel brightness shift and contrast factor."""

    flip: bool
    zoom: float
    brightness: tuple[float, ...]
    contrast: tuple[float, ...]


def _flip_left_right(array: np.ndarray) -> np.ndarray:
    """Mirror a slice (..., X, Y) along X, the patient's left-right axis in BraTS arrays (notebook 04)."""
    return np.ascontiguousarray(np.flip(array, axis=-2))


def _zoom_slice(array: np.ndarray, factor: float, order: int) -> np.ndarray:
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


def _adjust_brightness_contrast(
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
    """Random medical-safe augmentation of a (C, H, W) image and its (H, W) class mask.

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
            image, mask = _flip_left_right(image), _flip_left_right(mask)
        image = _zoom_slice(image, params.zoom, order=self.image_order)
        mask = _zoom_slice(mask, params.zoom, order=0)
        image = _adjust_brightness_contrast(image, np.asarray(params.brightness), np.asarray(params.contrast))
        return image, mask

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw parameters from ``rng`` and apply them to ``image`` (C, H, W) and ``mask`` (H, W)."""
        return self.apply(image, mask, self.sample(rng, image.shape[0]))


# ----------------------------------------------------------------------------------------------------------
# 3D patches (notebook 05): intensity and appearance, in place
# ----------------------------------------------------------------------------------------------------------


def augment_intensity(patch: np.ndarray, scale: Sequence[float], shift: Sequence[float]) -> np.ndarray:
    """Set each channel to ``channel * scale[c] + shift[c]``, in place (every voxel, as MONAI's BraTS recipe).

    Example:
        >>> augment_intensity(np.ones((2, 1, 1, 1), np.float32), [2, 1], [0, -1]).ravel().tolist()
        [2.0, 0.0]
    """
    for channel, s, t in zip(patch, scale, shift):
        channel *= s
        channel += t
    return patch


@dataclass(frozen=True)
class AppearanceAugmentation:
    """How often and how strongly each channel of a training patch is blurred, gamma-adjusted and noised.

    Scanners differ in sharpness, contrast curve and noise; the synthetic course data vary them per case, and
    these per-patch changes (nnU-Net's set) widen that further. Each channel draws its own changes. Medical-safe:
    intensities change, anatomy and labels do not.

    Attributes:
        blur_probability, blur_sigma: chance of a Gaussian blur, and its sigma range in voxels.
        gamma_probability, gamma_range: chance of a gamma curve on the patch's value range, gamma in
            ``exp(U(-gamma_range, gamma_range))``.
        noise_probability, noise_std: chance of additive Gaussian noise, its largest std (z-score units).
    """

    blur_probability: float = 0.0  # off by default: 0.25 s per 128 x 128 x 96 channel on a CPU
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    gamma_probability: float = 0.3
    gamma_range: float = 0.3
    noise_probability: float = 0.15
    noise_std: float = 0.1


def augment_appearance(patch: np.ndarray, blur: Sequence[float], gamma: Sequence[float], noise: Sequence[float],
                       rng: np.random.Generator) -> np.ndarray:
    """Blur (sigma voxels, 0: none), gamma-adjust (1: none) and noise (std, 0: none) each channel, in place.

    Gamma maps the channel's range onto [0, 1], raises it to ``gamma`` and maps it back.

    Example:
        >>> augment_appearance(np.ones((1, 2, 2, 2), np.float32), [0], [1], [0], np.random.default_rng(0)).sum()
        np.float32(8.0)
    """
    for channel, sigma, g, std in zip(patch, blur, gamma, noise):
        if sigma > 0:
            channel[...] = ndimage.gaussian_filter(channel, float(sigma), mode="nearest")
        if g != 1:
            low, high = float(channel.min()), float(channel.max())
            if high > low:
                scaled = (channel - low) / (high - low)
                channel[...] = np.power(scaled, np.float32(g)) * (high - low) + low
        if std > 0:
            channel += rng.standard_normal(channel.shape, dtype=np.float32) * np.float32(std)
    return patch
