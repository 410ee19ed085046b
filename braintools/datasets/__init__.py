"""Datasets for training: volumes loaded on demand, 2D axial slices (notebook 04) and 3D patches (notebook 05)."""

from braintools.datasets.augment import (
    AugmentParams,
    SliceAugmenter,
    adjust_brightness_contrast,
    flip_left_right,
    zoom_slice,
)
from braintools.datasets.patches3d import (
    PatchDataset3D,
    PatchPlan,
    VolumeIndex,
    augment_intensity,
    brain_statistics,
    build_volume_index,
    choose_patch_centre,
    crop_image_patch,
    crop_patch,
    patch_origin,
    zscore_patch,
)
from braintools.datasets.slices2d import (
    SliceDataset,
    VolumeSummary,
    pad_or_crop,
    select_slices,
    spread_picks,
    summarise_source,
    summarise_volume,
)
from braintools.datasets.volumes import Volume, VolumeSource, check_volume, volume_from_case

__all__ = [
    "adjust_brightness_contrast",
    "augment_intensity",
    "AugmentParams",
    "brain_statistics",
    "build_volume_index",
    "check_volume",
    "choose_patch_centre",
    "crop_image_patch",
    "crop_patch",
    "flip_left_right",
    "pad_or_crop",
    "patch_origin",
    "PatchDataset3D",
    "PatchPlan",
    "select_slices",
    "SliceAugmenter",
    "SliceDataset",
    "spread_picks",
    "summarise_source",
    "summarise_volume",
    "Volume",
    "volume_from_case",
    "VolumeIndex",
    "VolumeSource",
    "VolumeSummary",
    "zoom_slice",
    "zscore_patch",
]
