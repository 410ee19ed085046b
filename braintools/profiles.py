"""Course profiles: every size, case count and epoch count of the course, in one place.

The environment variable ``BRAINTOOLS_PROFILE`` picks a profile:

- ``ci``: tiny synthetic cases on a small grid, so every notebook runs in seconds on a CPU;
- ``course`` (default): synthetic cases at the real BraTS size, minutes on a CPU;
- ``kaggle``: the real BraTS 2020 download (Colab, Kaggle or any machine with internet).

Notebooks read their sizes from ``get_profile()`` in their ``parameters`` cell, so CI never edits a notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILE_ENV = "BRAINTOOLS_PROFILE"
DEFAULT_PROFILE = "course"
BRATS_SHAPE = (240, 240, 155)


@dataclass(frozen=True)
class Profile:
    """Sizes for one way of running the course.

    Attributes:
        name: profile name (``ci``, ``course`` or ``kaggle``).
        source: ``"synthetic"`` (embedded generator) or ``"kaggle"`` (real download).
        n_cases: synthetic training cases (with segmentation) to generate.
        n_validation_cases: synthetic validation cases (no segmentation), like the Kaggle validation set.
        grid_shape: voxels per synthetic volume; the real BraTS grid is 240 x 240 x 155.
        seed: seed of the synthetic dataset (same seed, same bytes).
        max_cases: cap on the cases a notebook uses from the data (``None``: all of them).
    """

    name: str
    source: str
    n_cases: int
    n_validation_cases: int
    grid_shape: tuple[int, int, int]
    seed: int = 2020
    max_cases: int | None = None
    # --- 03 precache ---
    cache_workers: int = 2
    # --- 04 transfer_2d (2D slices, smp + timm) ---
    image_size_2d: int = 256
    epochs_2d: int = 6
    batch_size_2d: int = 16
    slices_per_epoch_2d: int | None = None  # None: every selected training slice
    architecture_2d: str = "Unet"
    encoder_2d: str = "resnet34"
    learning_rate_2d: float = 1e-3
    keep_empty_fraction_2d: float = 0.1  # fraction of tumour-free training slices kept
    unfreeze_top_epoch_2d: int = 3  # three-phase freezing: first epoch of phase 2 (top encoder stages train)
    unfreeze_all_epoch_2d: int = 5  # first epoch of phase 3 (everything trains)
    # --- 05 unet_3d / 06 inflation (3D patches) ---
    patch_size_3d: tuple[int, int, int] = (160, 160, 64)  # (X, Y, Z) voxels
    features_3d: tuple[int, ...] = (32, 64, 128, 256)
    epochs_3d: int = 10
    batch_size_3d: int = 1
    patches_per_epoch_3d: int = 40
    # --- 07 sliding_window ---
    roi_size: tuple[int, int, int] = (160, 160, 64)
    overlap: float = 0.5
    sw_batch_size: int = 2


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci", source="synthetic", n_cases=6, n_validation_cases=1, grid_shape=(64, 64, 40),
        cache_workers=1, image_size_2d=64, epochs_2d=3, batch_size_2d=8, slices_per_epoch_2d=64,
        unfreeze_top_epoch_2d=2, unfreeze_all_epoch_2d=3,
        patch_size_3d=(32, 32, 16), features_3d=(8, 16, 32, 64), epochs_3d=1, batch_size_3d=2,
        patches_per_epoch_3d=4, roi_size=(32, 32, 16), sw_batch_size=2,
    ),
    "course": Profile(
        name="course", source="synthetic", n_cases=20, n_validation_cases=2, grid_shape=BRATS_SHAPE,
        slices_per_epoch_2d=256,  # Unet/resnet34 trains at about 1-3 slices/s on a 2-core CPU
    ),
    "kaggle": Profile(
        name="kaggle", source="kaggle", n_cases=20, n_validation_cases=2, grid_shape=BRATS_SHAPE
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile ``name``, or the one named by ``BRAINTOOLS_PROFILE`` (default ``course``).

    Example:
        >>> get_profile("ci").grid_shape
        (64, 64, 40)
    """
    chosen = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    try:
        return PROFILES[chosen.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown profile {chosen!r} (from {PROFILE_ENV} or the argument); choose one of {sorted(PROFILES)}"
        ) from None
