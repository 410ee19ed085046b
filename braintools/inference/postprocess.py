"""Clean up predicted class maps: small connected components, holes, and the BraTS tiny-ET rule.

Every function takes a contiguous class map (0 background, 1 NCR, 2 ED, 3 ET; usually (X, Y, Z) uint8),
returns a new uint8 map and never modifies its input. Regions are nested (ET inside TC inside WT), so a
voxel removed from a region falls back to the class just outside it, and a filled hole takes the outer
class of the region it fills.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from braintools.data.labels import REGION_CLASSES, REGIONS

BACKGROUND, NCR, ED, ET = 0, 1, 2, 3
# Class given to voxels of a removed component: WT -> background, TC -> edema, ET -> necrotic core.
REMOVED_CLASS = {"WT": BACKGROUND, "TC": ED, "ET": NCR}
# Class given to the voxels of a filled hole: inside the whole tumour -> edema, inside the core -> necrosis.
# ET has no entry: the necrotic centre of a ring of enhancing tumour is a real "hole" that must stay.
FILL_CLASS = {"WT": ED, "TC": NCR}


def _region_mask(classes: np.ndarray, region: str) -> np.ndarray:
    """Boolean mask of one evaluation region (``"WT"``, ``"TC"`` or ``"ET"``) of a class map (notebook 07)."""
    if region not in REGION_CLASSES:
        raise ValueError(f"region must be one of {list(REGIONS)}, got {region!r}")
    return np.isin(classes, REGION_CLASSES[region])


def _remove_small_components(
    classes: np.ndarray, min_size: int, region: str = "WT", connectivity: int | None = None
) -> np.ndarray:
    """Remove connected components of ``region`` with fewer than ``min_size`` voxels (notebook 07).

    Removed voxels fall back to the enclosing class: WT -> background, TC -> edema, ET -> necrotic core.

    Args:
        classes: contiguous class map.
        min_size: smallest component (in voxels) that is kept.
        region: ``"WT"``, ``"TC"`` or ``"ET"``.
        connectivity: voxels touching by a face (1), an edge (2) or a corner (``classes.ndim``, the
            default: 26-connectivity in 3D, so diagonal neighbours count as one lesion).

    Example:
        >>> _remove_small_components(np.array([[1, 1, 0, 2]]), min_size=2)
        array([[1, 1, 0, 0]], dtype=uint8)
    """
    classes = _checked_classes(classes)
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0 voxels, got {min_size}")
    structure = ndimage.generate_binary_structure(classes.ndim, connectivity or classes.ndim)
    components, _ = ndimage.label(_region_mask(classes, region), structure=structure)
    sizes = np.bincount(components.ravel())  # sizes[0] counts the voxels outside the region
    too_small = sizes < min_size
    too_small[0] = False
    cleaned = classes.copy()
    cleaned[too_small[components]] = REMOVED_CLASS[region]
    return cleaned



def keep_largest_component(classes: np.ndarray, region: str = "WT", connectivity: int | None = None) -> np.ndarray:
    """Keep only the largest connected component of ``region``; the others fall back like removed components.

    Most gliomas are one lesion, so a second blob is usually a false alarm; but multifocal tumours exist:
    measure the effect on validation patients before using it.

    Example:
        >>> keep_largest_component(np.array([[2, 2, 0, 2]]))
        array([[2, 2, 0, 0]], dtype=uint8)
    """
    classes = _checked_classes(classes)
    structure = ndimage.generate_binary_structure(classes.ndim, connectivity or classes.ndim)
    components, count = ndimage.label(_region_mask(classes, region), structure=structure)
    cleaned = classes.copy()
    if count > 1:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0  # voxels outside the region
        cleaned[(components > 0) & (components != sizes.argmax())] = REMOVED_CLASS[region]
    return cleaned

def remove_rim_components(classes: np.ndarray, brain: np.ndarray, rim_voxels: int = 5, min_rim_fraction: float = 0.5,
                          region: str = "WT") -> np.ndarray:
    """Remove components of ``region`` lying mostly in the brain's outer rim.

    On real scans, models trained on clean data raise false alarms at the brain's edge: the cortical rim, the
    cerebellum, vessels on the surface bright on T1ce. A glioma grows inside the brain, so a component with at
    least ``min_rim_fraction`` of its voxels within ``rim_voxels`` of the brain's surface is dropped (removed voxels
    fall back like removed components). A tumour that reaches the surface keeps most of its voxels deeper and stays.

    Example:
        >>> brain = np.ones((20, 20), bool); classes = np.zeros((20, 20), np.uint8)
        >>> classes[0:2, 8:10] = 2; classes[8:12, 8:12] = 2  # a blob on the edge and one deep inside
        >>> cleaned = remove_rim_components(classes, brain, rim_voxels=2)
        >>> int(cleaned[0:2].sum()), int(cleaned[8:12, 8:12].sum())
        (0, 32)
    """
    classes = _checked_classes(classes)
    brain = np.asarray(brain, dtype=bool)
    if brain.shape != classes.shape:
        raise ValueError(f"brain mask {brain.shape} and classes {classes.shape} differ in shape")
    if not 0 < min_rim_fraction <= 1:
        raise ValueError(f"min_rim_fraction must lie in (0, 1], got {min_rim_fraction}")
    depth = ndimage.distance_transform_edt(np.pad(brain, 1))[(slice(1, -1),) * brain.ndim]  # to the nearest non-brain
    structure = ndimage.generate_binary_structure(classes.ndim, classes.ndim)
    components, count = ndimage.label(_region_mask(classes, region), structure=structure)
    if count == 0:
        return classes.copy()
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    on_rim = np.bincount(components[depth <= rim_voxels].ravel(), minlength=count + 1)
    drop = on_rim >= min_rim_fraction * np.maximum(sizes, 1)
    drop[0] = False
    cleaned = classes.copy()
    cleaned[drop[components]] = REMOVED_CLASS[region]
    return cleaned


def _fill_holes(classes: np.ndarray, region: str = "WT") -> np.ndarray:
    """Fill cavities fully enclosed by ``region`` (``"WT"`` -> edema, ``"TC"`` -> necrotic core) (notebook 07).

    A hole is a set of voxels outside the region that cannot reach the border of the array without
    crossing the region (``scipy.ndimage.binary_fill_holes``).

    Example:
        >>> ring = np.array([[2, 2, 2], [2, 0, 2], [2, 2, 2]])
        >>> int(_fill_holes(ring)[1, 1])
        2
    """
    classes = _checked_classes(classes)
    if region not in FILL_CLASS:
        raise ValueError(f"region must be one of {list(FILL_CLASS)} (ET holes are necrosis), got {region!r}")
    mask = _region_mask(classes, region)
    holes = ndimage.binary_fill_holes(mask) & ~mask
    filled = classes.copy()
    filled[holes] = FILL_CLASS[region]
    return filled


def _relabel_tiny_enhancing(classes: np.ndarray, min_et_voxels: int) -> np.ndarray:
    """Relabel all enhancing tumour as necrotic core when it has fewer than ``min_et_voxels`` voxels (notebook 07).

    The BraTS empty-ET rule: a case without enhancing tumour scores ET Dice 1 only if the prediction has
    no ET at all, and 0 for even one false ET voxel. Turning a tiny predicted ET into NCR keeps the voxels
    in the tumour core (TC and WT do not change) and avoids that 0. Tune the threshold on validation cases.

    Example:
        >>> _relabel_tiny_enhancing(np.array([0, 3, 3, 2]), min_et_voxels=5)
        array([0, 1, 1, 2], dtype=uint8)
    """
    classes = _checked_classes(classes)
    if min_et_voxels < 0:
        raise ValueError(f"min_et_voxels must be >= 0, got {min_et_voxels}")
    relabelled = classes.copy()
    enhancing = classes == ET
    if np.count_nonzero(enhancing) < min_et_voxels:
        relabelled[enhancing] = NCR
    return relabelled


def postprocess_classes(
    classes: np.ndarray,
    min_component_size: int | Mapping[str, int] | None = None,
    fill_holes_in: Sequence[str] = (),
    min_et_voxels: int | None = None,
) -> np.ndarray:
    """Apply the clean-up steps in order: small components, holes, tiny ET (each skipped when not asked) (notebook 04).

    Args:
        classes: contiguous class map.
        min_component_size: minimum component size for WT (an int), or per region, e.g. ``{"WT": 500, "ET": 20}``
            (regions are processed WT, TC, ET).
        fill_holes_in: regions whose holes are filled, e.g. ``("WT", "TC")``.
        min_et_voxels: threshold of ``_relabel_tiny_enhancing``.

    Example:
        >>> import functools
        >>> cleanup = functools.partial(postprocess_classes, min_component_size=100, min_et_voxels=200)
    """
    cleaned = _checked_classes(classes).copy()
    sizes = {"WT": min_component_size} if isinstance(min_component_size, int) else dict(min_component_size or {})
    unknown = set(sizes) - set(REGIONS)
    if unknown:
        raise ValueError(f"min_component_size has unknown regions {sorted(unknown)}; use {list(REGIONS)}")
    for region in REGIONS:
        if region in sizes:
            cleaned = _remove_small_components(cleaned, sizes[region], region)
    for region in fill_holes_in:
        cleaned = _fill_holes(cleaned, region)
    if min_et_voxels is not None:
        cleaned = _relabel_tiny_enhancing(cleaned, min_et_voxels)
    return cleaned


def _checked_classes(classes: np.ndarray) -> np.ndarray:
    """Return ``classes`` as uint8 after checking it holds integer classes 0..3."""
    classes = np.asarray(classes)
    if not (np.issubdtype(classes.dtype, np.integer) or classes.dtype == bool):
        raise ValueError(f"classes must be an integer class map, got dtype {classes.dtype}")
    if classes.size and (classes.min() < 0 or classes.max() > 3):
        raise ValueError(f"classes must hold contiguous classes 0..3, found {classes.min()}..{classes.max()}")
    return classes.astype(np.uint8, copy=False)
