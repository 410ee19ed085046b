"""Show any volume in the radiological display convention, using only its affine.

An MRI array has no built-in "up" or "left": the affine says which patient direction each array axis
points to. nibabel reads that as axis codes (``nib.aff2axcodes``): BraTS files are ``("L", "P", "S")``,
index i grows toward the patient's Left, j toward Posterior, k toward Superior. Another file of the same
head may be stored ``("R", "A", "S")``; both must look the same on screen, so no flip is hard-coded here.

Display convention (radiological, as on a hospital workstation):

- axial: anterior at the top, patient Left on the image right (you look up from the feet);
- coronal: superior at the top, patient Left on the image right (you face the patient);
- sagittal: superior at the top, anterior on the image left (the nose points left).

Slice indices are always indices of the stored array (``case.image[c, :, :, index]`` for an axial
BraTS slice), so a number printed on a panel can be used directly on the array.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes

PLANES = ("axial", "sagittal", "coronal")
# For each plane: (patient direction normal to the plane, direction of increasing rows (downward),
# direction of increasing columns (rightward)).
PLANE_LAYOUT = {
    "axial": ("S", "P", "L"),
    "coronal": ("A", "I", "L"),
    "sagittal": ("L", "I", "P"),
}
OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


def _axis_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """Return the patient direction each array axis grows toward, e.g. ``("L", "P", "S")`` for BraTS (notebook 02)."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix, got shape {affine.shape}")
    codes = nib.aff2axcodes(affine)  # built on nibabel.orientations.io_orientation
    if None in codes or len(codes) != 3:
        raise ValueError(f"affine does not map the three array axes to patient directions: {codes}")
    return tuple(codes)


def _check_plane(plane: str) -> str:
    if plane not in PLANE_LAYOUT:
        raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
    return plane


def _axis_toward(codes: tuple[str, str, str], direction: str) -> tuple[int, bool]:
    """Return (array axis along ``direction``, whether that axis grows the opposite way)."""
    for axis, code in enumerate(codes):
        if code == direction:
            return axis, False
        if code == OPPOSITE[direction]:
            return axis, True
    raise ValueError(f"no array axis points along {direction} (axis codes {codes})")


def _plane_axes(affine: np.ndarray, plane: str) -> tuple[int, tuple[int, bool], tuple[int, bool]]:
    """Return (normal axis, (row axis, flipped), (column axis, flipped)) of a plane for this affine (notebook 02).

    Example:
        >>> _plane_axes(brats_affine(), "axial")  # doctest: +SKIP
        (2, (1, False), (0, False))
    """
    normal, rows, columns = PLANE_LAYOUT[_check_plane(plane)]
    codes = _axis_codes(affine)
    return _axis_toward(codes, normal)[0], _axis_toward(codes, rows), _axis_toward(codes, columns)


def plane_axis(affine: np.ndarray, plane: str) -> int:
    """Return the array axis normal to ``plane`` (its slice index runs along this axis) (notebook 02)."""
    return _plane_axes(affine, plane)[0]


def display_slice(volume: np.ndarray, affine: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Return slice ``index`` of ``plane`` as a 2D image in display orientation (row 0 at the top) (notebook 02).

    Args:
        volume: (X, Y, Z) array, or (X, Y, Z, ...) with trailing channels (e.g. RGB) kept last.
        affine: the volume's voxel-to-world affine (any axis order and flips).
        plane: ``"axial"``, ``"sagittal"`` or ``"coronal"``.
        index: slice index along the plane's normal axis of the stored array.

    Returns a view (no copy) with rows and columns oriented as described in the module docstring.
    """
    volume = np.asarray(volume)
    if volume.ndim < 3:
        raise ValueError(f"volume must have at least 3 dimensions (X, Y, Z), got shape {volume.shape}")
    normal, (row_axis, row_flip), (column_axis, column_flip) = _plane_axes(affine, plane)
    size = volume.shape[normal]
    if not -size <= index < size:
        raise IndexError(f"{plane} slice index {index} is outside 0..{size - 1}")
    picker = [slice(None)] * volume.ndim
    picker[normal] = index
    plane_2d = volume[tuple(picker)]
    # the normal axis is gone: axes after it moved down by one
    rows, columns = (axis - (axis > normal) for axis in (row_axis, column_axis))
    plane_2d = np.moveaxis(plane_2d, (rows, columns), (0, 1))
    return plane_2d[:: -1 if row_flip else 1, :: -1 if column_flip else 1]


def display_position(voxel: tuple[int, int, int], shape: tuple[int, ...], affine: np.ndarray,
                     plane: str) -> tuple[int, int]:
    """Return the (row, column) where array voxel ``(i, j, k)`` appears in the displayed ``plane``."""
    _, (row_axis, row_flip), (column_axis, column_flip) = _plane_axes(affine, plane)
    row = shape[row_axis] - 1 - voxel[row_axis] if row_flip else voxel[row_axis]
    column = shape[column_axis] - 1 - voxel[column_axis] if column_flip else voxel[column_axis]
    return int(row), int(column)


def display_aspect(affine: np.ndarray, plane: str) -> float:
    """Return the height/width ratio of one displayed pixel (matplotlib ``imshow(aspect=...)``) (notebook 02)."""
    _, (row_axis, _), (column_axis, _) = _plane_axes(affine, plane)
    spacing = voxel_sizes(np.asarray(affine, dtype=np.float64))
    return float(spacing[row_axis] / spacing[column_axis])


def edge_labels(plane: str) -> dict[str, str]:
    """Return the patient direction at each edge of a displayed plane, e.g. axial ``{"right": "L", ...}``."""
    _, rows, columns = PLANE_LAYOUT[_check_plane(plane)]
    return {"top": OPPOSITE[rows], "bottom": rows, "left": OPPOSITE[columns], "right": columns}
