"""HD95: the 95th-percentile Hausdorff distance between the surfaces of two masks, in millimetres.

Follows MONAI's ``compute_hausdorff_distance(percentile=95)`` (tested against it): surface voxels are the mask minus
its binary erosion (face neighbours, outside the array counts as background); from each surface to the other one takes
the 95th percentile (linear interpolation) of the Euclidean distances between voxel centres in mm; HD95 is the larger
of the two. Other tools differ: some pool both directions before the percentile (MedPy), some measure surfaces in
sub-voxel units; numbers differ by about a voxel. An empty mask scores by the empty-region rule: the worst score is
``HD95_PENALTY_MM``, the diagonal of the BraTS grid, as in the official tooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage

from braintools.data.preprocess import bounding_box
from braintools.evaluation.overlap import boolean_pair, empty_region_score

HD95_PENALTY_MM = 373.13  # sqrt(240**2 + 240**2 + 155**2): the largest distance inside a BraTS volume


def hd95(predicted: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | np.ndarray | None = None,
         empty: str = "brats") -> float:
    """95th-percentile symmetric Hausdorff distance between the surfaces of two masks, in mm (notebook 04).

    Args:
        predicted, truth: boolean masks of the same shape.
        spacing: voxel size per axis in mm, or the 4 x 4 affine (default: 1 mm).
        empty: empty-region rule (``overlap.EMPTY_RULES``).

    Distance transforms run on the bounding box of the two masks (plus one voxel), not the whole volume.
    """
    predicted, truth = boolean_pair(predicted, truth)
    fixed = empty_region_score(predicted.any(), truth.any(), empty, best=0.0, worst=HD95_PENALTY_MM)
    if fixed is not None:
        return fixed
    spacing = _resolve_spacing(spacing, predicted.ndim)
    box = bounding_box(predicted | truth, margin=1)
    predicted_surface, true_surface = _surface(predicted[box]), _surface(truth[box])
    to_truth = ndimage.distance_transform_edt(~true_surface, sampling=spacing)[predicted_surface]
    to_prediction = ndimage.distance_transform_edt(~predicted_surface, sampling=spacing)[true_surface]
    return float(max(np.percentile(to_truth, 95), np.percentile(to_prediction, 95)))


def _resolve_spacing(spacing: Sequence[float] | np.ndarray | None, ndim: int) -> tuple[float, ...]:
    """Voxel size per axis from ``None`` (1 mm), a sequence of ``ndim`` sizes, or a 4 x 4 affine (notebook 07).

    An affine's voxel sizes are the lengths of its first three columns (``nibabel.affines.voxel_sizes``).

    Example:
        >>> _resolve_spacing(np.diag([-1.0, -1.0, 2.0, 1.0]), 3)
        (1.0, 1.0, 2.0)
    """
    if spacing is None:
        return (1.0,) * ndim
    array = np.asarray(spacing, dtype=np.float64)
    if array.shape == (4, 4):
        array = nib.affines.voxel_sizes(array)
    if array.shape != (ndim,) or np.any(array <= 0):
        raise ValueError(f"spacing must be {ndim} positive voxel sizes or a 4 x 4 affine, got {spacing}")
    return tuple(float(value) for value in array)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a face neighbour outside it (the mask minus its erosion)."""
    return mask & ~ndimage.binary_erosion(mask)
