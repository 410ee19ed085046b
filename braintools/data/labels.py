"""BraTS label conventions, evaluation regions and label checks.

BraTS 2018-2021 segmentations use 0 background, 1 NCR/NET (necrotic and non-enhancing core),
2 ED (edema) and 4 ET (enhancing tumour); label 3 never occurs. BraTS 2023+ (GLI) moved ET to 3.
Training code uses contiguous classes 0..3 = background, NCR, ED, ET; exported predictions map back.

Evaluation regions: WT (whole tumour) = NCR + ED + ET, TC (tumour core) = NCR + ET, ET = ET.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from braintools.errors import DataError

if TYPE_CHECKING:
    import torch

CLASS_NAMES = ("background", "NCR", "ED", "ET")  # contiguous training classes 0..3
REGIONS = ("WT", "TC", "ET")
# Contiguous classes (1 NCR, 2 ED, 3 ET) that make up each region.
REGION_CLASSES = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


@dataclass(frozen=True)
class LabelConvention:
    """Label values of one BraTS release for the three tumour sub-regions."""

    name: str
    ncr: int
    ed: int
    et: int

    @property
    def values(self) -> tuple[int, int, int, int]:
        """All allowed label values, background first."""
        return (0, self.ncr, self.ed, self.et)


BRATS2020 = LabelConvention("BraTS 2018-2021", ncr=1, ed=2, et=4)
BRATS2023 = LabelConvention("BraTS 2023 GLI", ncr=1, ed=2, et=3)


def validate_labels(seg: np.ndarray, convention: LabelConvention = BRATS2020, source: str = "segmentation") -> None:
    """Raise ``DataError`` naming ``source`` if ``seg`` holds values outside the convention (notebook 02).

    Example:
        >>> validate_labels(np.array([0, 1, 2, 4]))
    """
    if not np.issubdtype(seg.dtype, np.integer):
        if not np.all(np.isfinite(seg)) or not np.all(seg == np.round(seg)):
            raise DataError(f"{source}: segmentation holds non-integer values (dtype {seg.dtype})")
    found = np.unique(seg)
    unexpected = sorted(set(found.tolist()) - set(convention.values))
    if unexpected:
        raise DataError(
            f"{source}: unexpected label values {unexpected}; {convention.name} allows {list(convention.values)}"
        )


def to_contiguous(seg: np.ndarray, convention: LabelConvention = BRATS2020) -> np.ndarray:
    """Map BraTS labels (e.g. 0/1/2/4) to contiguous training classes 0..3 (uint8), after validation (notebook 02)."""
    validate_labels(seg, convention)
    lookup = np.zeros(max(convention.values) + 1, dtype=np.uint8)
    lookup[convention.ncr], lookup[convention.ed], lookup[convention.et] = 1, 2, 3
    return lookup[np.asarray(seg, dtype=np.int64)]


def from_contiguous(classes: np.ndarray, convention: LabelConvention = BRATS2020) -> np.ndarray:
    """Map contiguous classes 0..3 back to BraTS label values (uint8), e.g. 3 -> 4 for BraTS 2020 (notebook 02)."""
    classes = np.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() > 3):
        raise DataError(f"contiguous classes must lie in 0..3, found {classes.min()}..{classes.max()}")
    lookup = np.array(convention.values, dtype=np.uint8)
    return lookup[classes.astype(np.int64)]


def convert_labels(seg: np.ndarray, source: LabelConvention, target: LabelConvention = BRATS2020) -> np.ndarray:
    """Rewrite a segmentation from one release's labels into another's (uint8), after validation (notebook 02).

    A BraTS 2023 segmentation (ET = 3) becomes the course's BraTS 2018-2021 labels (ET = 4) and back; floats with
    whole values (some BraTS 2023 files are stored as float32) are accepted.

    Example:
        >>> convert_labels(np.array([0, 1, 2, 3], np.float32), BRATS2023, BRATS2020).tolist()
        [0, 1, 2, 4]
    """
    if source.values == target.values:
        validate_labels(seg, source)
        return np.asarray(seg).astype(np.uint8)
    return from_contiguous(to_contiguous(seg, source), target)


def h5_mask_to_labels(mask: np.ndarray, convention: LabelConvention = BRATS2020, source: str = "mask") -> np.ndarray:
    """Turn a Kaggle HDF5 ``mask`` (..., 3) of disjoint [NCR, ED, ET] channels into BraTS labels (uint8)."""
    if mask.ndim < 1 or mask.shape[-1] != 3:
        raise DataError(f"{source}: mask must have 3 channels last [NCR, ED, ET], got shape {mask.shape}")
    binary = mask > 0
    if np.any(binary.sum(axis=-1) > 1):
        raise DataError(f"{source}: mask channels overlap; they must be disjoint sub-regions [NCR, ED, ET]")
    labels = np.zeros(mask.shape[:-1], dtype=np.uint8)
    for channel, value in enumerate((convention.ncr, convention.ed, convention.et)):
        labels[binary[..., channel]] = value
    return labels


def labels_to_h5_mask(seg: np.ndarray, convention: LabelConvention = BRATS2020) -> np.ndarray:
    """Turn BraTS labels into the Kaggle HDF5 ``mask`` layout: (..., 3) uint8 of [NCR, ED, ET]."""
    validate_labels(seg, convention)
    values = (convention.ncr, convention.ed, convention.et)
    return np.stack([(seg == value) for value in values], axis=-1).astype(np.uint8)


def regions_from_labels(seg: np.ndarray, convention: LabelConvention = BRATS2020) -> np.ndarray:
    """Return boolean masks (3, ...) of the evaluation regions [WT, TC, ET] of BraTS labels (notebook 02)."""
    return regions_from_classes(to_contiguous(seg, convention))


def regions_from_classes(classes: np.ndarray | torch.Tensor, axis: int = 0) -> np.ndarray | torch.Tensor:
    """Boolean masks of the regions [WT, TC, ET] of contiguous classes 0..3, stacked along ``axis``.

    Works on NumPy arrays and on torch tensors (e.g. ``axis=1`` for a batch (N, ...) -> (N, 3, ...)).

    Example:
        >>> regions_from_classes(np.array([0, 1, 2, 3])).astype(int).tolist()
        [[0, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]
    """
    masks = []
    for region in REGIONS:
        members = [classes == value for value in REGION_CLASSES[region]]
        masks.append(functools.reduce(operator.or_, members))
    if isinstance(classes, np.ndarray) or np.isscalar(classes):
        return np.stack(masks, axis=axis)
    import torch  # a tensor: labels itself stays importable without torch

    return torch.stack(masks, dim=axis)


def classes_from_regions(regions: np.ndarray) -> np.ndarray:
    """Turn region masks (3, ...) [WT, TC, ET] into classes (...) uint8: ET -> 3, else TC -> 1, else WT -> 2.

    The inverse of ``regions_from_classes`` for nested regions.

    Example:
        >>> classes_from_regions(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)).tolist()
        [3, 1, 2, 0]
    """
    regions = np.asarray(regions, dtype=bool)
    classes = np.zeros(regions.shape[1:], dtype=np.uint8)
    classes[regions[0]] = 2
    classes[regions[1]] = 1
    classes[regions[2]] = 3
    return classes
