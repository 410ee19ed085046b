"""What a realistic synthetic BraTS case must match: intensity, tumour shape and scanner statistics of cases.

Notebook 02 compares real and synthetic cases with these numbers; the synthetic generator draws its tumours and
contrasts from the ranges measured on real scans (``REAL_STATISTICS``, numbers only: no voxels or masks), measured on
the 8 tuning cases of the development data only (``REAL_CASE_IDS``; the 5 locked cases score models, see
``benchmarks/realism.py``).

Per case (``measure_case``), in a few seconds at 240 x 240 x 155:

- **normal tissues**: the brain outside the tumour (and 5 mm around it) is split into white matter, grey matter
  and CSF by a 3-cluster k-means on (T1, T2) (``_tissue_map``): an estimate, good enough for medians;
- **intensities** of WM, GM, CSF, NCR, ED and ET per modality, relative to the median of normal white matter
  (``t1ce ET/WM``), and in the z-score units the network sees (``t1ce ET z``, the pre-cache's brain z-score);
- **overlaps**: the shared area of two labels' intensity histograms on one modality (0: separable, 1: identical),
  e.g. ``t1ce ET~NCR``;
- **size and shape**: volumes (mL), NCR / ED / ET shares of the whole tumour, number of whole-tumour components
  of at least 0.1 mL, the largest one's share, sphericity of the tumour core (from voxel faces: a voxelised
  sphere scores about 0.67), solidity (volume / convex hull volume), ET shell thickness (2 volume / area);
- **position**: distance of the core from the brain's edge and from the ventricles (deep CSF), share of the whole
  tumour within 5 mm of the brain's edge, height of the tumour in the brain (0 bottom, 1 top);
- **edema extent**: distance of edema voxels from the core (median, 95th percentile), edema / core volume;
- **scanner**: bias (half the 5-95 % range of the smoothed log white-matter intensity), noise (robust spread of
  neighbour differences in white matter / its median, per axis: lower along an axis that was interpolated).

``compare_cases`` puts real and synthetic side by side (median and 10-90 % range over cases; the real side is the
stored ``reference.REAL_STATISTICS`` unless real cases are given); ``viz.charts.plot_comparison`` draws it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import nibabel as nib
import numpy as np
import pandas as pd
import scipy.ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from braintools.data.io import MODALITIES, Case
from braintools.data.labels import CLASS_NAMES, regions_from_classes, to_contiguous, validate_labels
from braintools.synthetic.reference import reference_table

TISSUES = ("WM", "GM", "CSF", "NCR", "ED", "ET")
TISSUE_CODES = {name: code for code, name in enumerate(TISSUES, start=1)}  # 0: outside the brain
OVERLAP_PAIRS = (("ET", "NCR"), ("ET", "ED"), ("NCR", "ED"), ("ED", "WM"), ("ED", "GM"), ("ET", "GM"))
TUMOUR_MARGIN_MM = 5.0  # normal tissue starts this far from the whole tumour
MIN_COMPONENT_ML = 0.1
EDGE_MM = 5.0
DEEP_CSF_MM = 15.0  # CSF at least this deep inside the brain: the ventricles
NO_ENHANCEMENT_ML = 0.5  # a core with less ET than this counts as non-enhancing
BIAS_SIGMA_MM = 20.0
BLOCK = 4  # the bias field is measured on 4-voxel blocks
HISTOGRAM_BINS = np.linspace(0.0, 5.0, 101)  # intensity / white matter


# --------------------------------------------------------------------------- normal tissues


def _kmeans(points: np.ndarray, k: int = 3, iterations: int = 25) -> np.ndarray:
    """Centres of a k-means clustering of ``points`` (N, D); starts from the means of k bands of points ordered
    by their first coordinate minus the others (CSF, grey and white matter on (T1, T2)): deterministic."""
    order = np.argsort(points[:, 0] - points[:, 1:].sum(axis=1))
    centres = np.stack([points[band].mean(0) for band in np.array_split(order, k)])
    for _ in range(iterations):
        nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([points[nearest == j].mean(0) if np.any(nearest == j) else centres[j] for j in range(k)])
    return centres


def _tissue_map(image: np.ndarray, seg: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
               sample: int = 200_000) -> np.ndarray:
    """Label every brain voxel: 1 WM, 2 GM, 3 CSF (estimated), 4 NCR, 5 ED, 6 ET; 0 outside the brain (notebook 02).

    Normal tissue is the brain more than ``TUMOUR_MARGIN_MM`` from the tumour, clustered on (T1, T2) relative to
    their medians: white matter is the cluster brightest on T1, CSF the one brightest on T2.
    """
    t1, t2 = image[MODALITIES.index("t1")], image[MODALITIES.index("t2")]
    brain = np.any(image != 0, axis=0)
    tumour = seg > 0
    near = ndi.distance_transform_edt(~tumour, sampling=spacing) <= TUMOUR_MARGIN_MM if tumour.any() else tumour
    normal = brain & ~near
    points = np.stack([t1[normal] / np.median(t1[normal]), t2[normal] / np.median(t2[normal])], axis=1)
    chosen = np.random.default_rng(0).choice(len(points), min(sample, len(points)), replace=False)
    centres = _kmeans(points[chosen])
    nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    wm, csf = int(np.argmax(centres[:, 0])), int(np.argmax(centres[:, 1]))
    codes = np.full(3, TISSUE_CODES["GM"], np.uint8)
    codes[wm], codes[csf] = TISSUE_CODES["WM"], TISSUE_CODES["CSF"]
    tissues = np.zeros(seg.shape, np.uint8)
    tissues[normal] = codes[nearest]
    classes = to_contiguous(seg)
    for value, name in enumerate(CLASS_NAMES[1:], start=1):  # NCR, ED, ET
        tissues[classes == value] = TISSUE_CODES[name]
    return tissues


# --------------------------------------------------------------------------- intensities


def _white_matter_medians(image: np.ndarray, tissues: np.ndarray) -> np.ndarray:
    wm = tissues == TISSUE_CODES["WM"]
    return np.array([np.median(channel[wm]) for channel in image], dtype=np.float64)


def _intensity_statistics(image: np.ndarray, tissues: np.ndarray, min_voxels: int = 50) -> dict[str, float]:
    """Median of each tissue per modality relative to white matter (``t2 ED/WM``) and in z units (``t2 ED z``).
    Introduced in notebook 02.

    z units are the pre-cache's: (value - brain mean) / brain std, the brain being every non-zero voxel.
    """
    reference = _white_matter_medians(image, tissues)
    brain = np.any(image != 0, axis=0)
    stats = {}
    for channel, modality in enumerate(MODALITIES):
        values = image[channel]
        mean, std = values[brain].mean(), values[brain].std() + 1e-8
        for tissue in TISSUES:
            selected = values[tissues == TISSUE_CODES[tissue]]
            enough = selected.size >= min_voxels
            median = float(np.median(selected)) if enough else np.nan
            if tissue != "WM":
                stats[f"{modality} {tissue}/WM"] = median / reference[channel]
            stats[f"{modality} {tissue} z"] = (median - mean) / std
    return stats


def _histogram_overlap(a: np.ndarray, b: np.ndarray, bins: np.ndarray = HISTOGRAM_BINS) -> float:
    """Shared area of two normalised histograms (0: the values never meet, 1: same distribution) (notebook 02).

    Example:
        >>> _histogram_overlap(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
        1.0
    """
    if a.size == 0 or b.size == 0:
        return float("nan")
    pa, _ = np.histogram(np.clip(a, bins[0], bins[-1]), bins)
    pb, _ = np.histogram(np.clip(b, bins[0], bins[-1]), bins)
    return float(np.minimum(pa / pa.sum(), pb / pb.sum()).sum())


def _overlap_statistics(image: np.ndarray, tissues: np.ndarray, min_voxels: int = 50) -> dict[str, float]:
    """Histogram overlap of the label pairs ``OVERLAP_PAIRS`` on every modality (``t1ce ET~NCR``) (notebook 02)."""
    reference = _white_matter_medians(image, tissues)
    stats = {}
    for channel, modality in enumerate(MODALITIES):
        relative = image[channel] / reference[channel]
        values = {t: relative[tissues == TISSUE_CODES[t]] for t in {t for pair in OVERLAP_PAIRS for t in pair}}
        for a, b in OVERLAP_PAIRS:
            enough = values[a].size >= min_voxels and values[b].size >= min_voxels
            stats[f"{modality} {a}~{b}"] = _histogram_overlap(values[a], values[b]) if enough else np.nan
    return stats


# --------------------------------------------------------------------------- shape and position


def _surface_area(mask: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """Area (mm^2) of the voxel faces between ``mask`` and the rest (outside the array counts as outside) (notebook 02).

    Example:
        >>> _surface_area(np.ones((1, 1, 1), bool))
        6.0
    """
    padded = np.pad(mask.astype(bool), 1)
    sx, sy, sz = spacing
    face = {0: sy * sz, 1: sx * sz, 2: sx * sy}
    return float(sum(np.count_nonzero(np.diff(padded, axis=axis)) * face[axis] for axis in range(3)))


def solidity(mask: np.ndarray) -> float:
    """Voxel count / volume of the convex hull of the voxel cubes (1: convex; lobulated shapes score less)."""
    surface = mask & ~ndi.binary_erosion(mask)
    points = np.argwhere(surface).astype(np.float64)
    if len(points) < 4:
        return float("nan")
    corners = (points[:, None, :] + np.array(np.meshgrid(*[[-0.5, 0.5]] * 3)).reshape(3, -1).T[None]).reshape(-1, 3)
    try:
        return float(np.count_nonzero(mask) / ConvexHull(corners).volume)
    except QhullError:
        return float("nan")


def _shape_statistics(seg: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """Volumes (mL), label shares, components, sphericity, solidity and ET thickness of one segmentation.
    Introduced in notebook 02."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    classes = to_contiguous(seg)
    wt, tc, et = regions_from_classes(classes)
    counts = np.bincount(classes.ravel(), minlength=len(CLASS_NAMES))
    volumes = {name: float(counts[value]) * voxel_ml for value, name in enumerate(CLASS_NAMES) if value}
    wt_ml, tc_ml = float(wt.sum()) * voxel_ml, float(tc.sum()) * voxel_ml
    stats = {"WT mL": wt_ml, "TC mL": tc_ml, "ET mL": volumes["ET"],
             **{f"{name} share of WT": volumes[name] / wt_ml if wt_ml else np.nan for name in CLASS_NAMES[1:]},
             "ET share of TC": volumes["ET"] / tc_ml if tc_ml else np.nan,
             "no enhancement": float(volumes["ET"] < NO_ENHANCEMENT_ML)}
    components, count = ndi.label(wt, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(components.ravel())[1:] * voxel_ml
    stats["WT components"] = float(np.count_nonzero(sizes >= MIN_COMPONENT_ML))
    stats["largest WT share"] = float(sizes.max() / sizes.sum()) if count else np.nan
    tc_area = _surface_area(tc, spacing)
    stats["TC sphericity"] = float(np.pi ** (1 / 3) * (6 * tc_ml * 1000) ** (2 / 3) / tc_area) if tc_area else np.nan
    stats["TC solidity"] = solidity(tc) if tc.any() else np.nan
    stats["WT solidity"] = solidity(wt) if wt.any() else np.nan
    et_area = _surface_area(et, spacing)
    stats["ET thickness mm"] = 2 * volumes["ET"] * 1000 / et_area if volumes["ET"] >= NO_ENHANCEMENT_ML else np.nan
    return stats


def _position_statistics(tissues: np.ndarray, brain: np.ndarray,
                        spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """Where the tumour sits: distances of the core from the brain's edge and the ventricles, edema reach.
    Introduced in notebook 02."""
    wt = tissues >= TISSUE_CODES["NCR"]
    tc = (tissues == TISSUE_CODES["NCR"]) | (tissues == TISSUE_CODES["ET"])
    depth = ndi.distance_transform_edt(brain, sampling=spacing)
    ventricles = (tissues == TISSUE_CODES["CSF"]) & (depth >= DEEP_CSF_MM)
    core = tc if tc.any() else wt
    from_core = ndi.distance_transform_edt(~core, sampling=spacing)
    heights = np.nonzero(brain.any(axis=(0, 1)))[0]
    centre_z = np.argwhere(wt)[:, 2].mean()
    edema = tissues == TISSUE_CODES["ED"]
    return {
        "core to edge mm": float(depth[core].min()),
        "core depth mm": float(np.median(depth[core])),
        "core to ventricles mm": float(from_core[ventricles].min()) if ventricles.any() else np.nan,
        "WT share near edge": float(np.mean(depth[wt] <= EDGE_MM)),
        "height in brain": float((centre_z - heights[0]) / max(1, heights[-1] - heights[0])),
        "edema reach median mm": float(np.median(from_core[edema])) if edema.any() else np.nan,
        "edema reach p95 mm": float(np.percentile(from_core[edema], 95)) if edema.any() else np.nan,
        "ED/TC volume": float(np.count_nonzero(edema) / max(1, np.count_nonzero(tc))) if tc.any() else np.nan,
    }


# --------------------------------------------------------------------------- scanner


def _block_mean(volume: np.ndarray, block: int = 4) -> np.ndarray:
    """Mean over ``block``-voxel cubes (the volume cropped to a multiple of ``block``)."""
    x, y, z = (n // block for n in volume.shape)
    cropped = volume[: x * block, : y * block, : z * block]
    return cropped.reshape(x, block, y, block, z, block).mean(axis=(1, 3, 5), dtype=np.float32)


def _scanner_statistics(image: np.ndarray, tissues: np.ndarray,
                       spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """Bias-field strength and noise (per axis) of every modality, measured in eroded white matter (notebook 02)."""
    wm = ndi.binary_erosion(tissues == TISSUE_CODES["WM"], iterations=1)
    coarse_wm = _block_mean(wm.astype(np.float32))
    sigma = [BIAS_SIGMA_MM / (s * BLOCK) for s in spacing]
    smoothed_weights = ndi.gaussian_filter(coarse_wm, sigma) + 1e-6
    stats = {}
    for channel, modality in enumerate(MODALITIES):
        values = image[channel]
        reference = float(np.median(values[wm]))
        log_values = _block_mean(np.log(np.maximum(values, 1e-3) / reference) * wm)
        field = ndi.gaussian_filter(log_values, sigma) / smoothed_weights
        low, high = np.percentile(field[coarse_wm > 0.5], [5, 95])
        stats[f"{modality} bias"] = float((high - low) / 2)
        for axis, name in enumerate("xyz"):
            both = wm & np.roll(wm, -1, axis=axis)
            difference = (np.roll(values, -1, axis=axis) - values)[both] / reference
            mad = np.median(np.abs(difference - np.median(difference)))
            stats[f"{modality} noise {name}"] = float(1.4826 * mad / np.sqrt(2))
    return stats


# --------------------------------------------------------------------------- cases


def measure_case(image: np.ndarray, seg: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """Every statistic of one case (image (4, X, Y, Z) raw intensities in ``MODALITIES`` order, BraTS labels)."""
    image = np.asarray(image, dtype=np.float32)
    seg = np.asarray(seg)
    validate_labels(seg)
    if image.ndim != 4 or image.shape[1:] != seg.shape:
        raise ValueError(f"image must be (4, X, Y, Z) with the shape of seg {seg.shape}, got {image.shape}")
    if not np.any(seg > 0):
        raise ValueError("the segmentation holds no tumour: these statistics describe tumour cases")
    brain = np.any(image != 0, axis=0)
    corners = np.argwhere(brain)
    box = tuple(slice(max(int(lo) - 2, 0), int(hi) + 3) for lo, hi in zip(corners.min(0), corners.max(0)))
    image, seg, brain = image[(slice(None), *box)], seg[box], brain[box]
    tissues = _tissue_map(image, seg, spacing)
    return {**_shape_statistics(seg, spacing), **_position_statistics(tissues, brain, spacing),
            **_intensity_statistics(image, tissues), **_overlap_statistics(image, tissues),
            **_scanner_statistics(image, tissues, spacing)}


def measure_cases(cases: Iterable[Case]) -> pd.DataFrame:
    """One row of statistics per case with a segmentation (real or synthetic ``io.Case``) (notebook 02).

    Pass a generator (``(io.load_case(f) for f in files)``) to hold one full-size case in memory at a time.
    """
    rows = {}
    for case in cases:
        if case.seg is None:
            continue
        rows[case.case_id] = measure_case(case.image, case.seg, tuple(nib.affines.voxel_sizes(case.affine)))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case_id"
    return table


def summarise(per_case: pd.DataFrame) -> pd.DataFrame:
    """Median and 10-90 % range of every statistic over the cases (NaN ignored); one row per statistic."""
    return pd.DataFrame({"median": per_case.median(), "p10": per_case.quantile(0.1), "p90": per_case.quantile(0.9),
                         "cases": per_case.count()})


def compare_cases(synthetic: pd.DataFrame, real: pd.DataFrame | None = None, label: str = "synthetic"
                  ) -> pd.DataFrame:
    """Real and synthetic statistics side by side (medians, 10-90 % ranges, and whether the synthetic median
    Introduced in notebook 02.
    falls inside the real range). ``real``: per-case statistics of real cases, default ``REAL_STATISTICS``;
    ``label``: the name of the compared cases' columns (e.g. "this dataset" for a real one). Notebook 02."""
    reference = reference_table() if real is None else summarise(real)
    ours = summarise(synthetic)
    table = pd.concat({"real": reference, label: ours}, axis=1).dropna(how="all")
    median, low, high = table[label, "median"], table["real", "p10"], table["real", "p90"]
    inside = ((median >= low) & (median <= high)).astype("boolean")
    inside[median.isna() | low.isna()] = pd.NA  # not measurable in one of the two sets
    table[label, "median in real range"] = inside
    return table


def format_reference(summary: pd.DataFrame) -> str:
    """The Python literal of ``REAL_STATISTICS`` for a ``summarise`` table (a maintainer's tool, no notebook).

    To update this module after a new measurement: ``print(format_reference(summarise(measure_cases(cases))))``.
    """
    lines = ["REAL_STATISTICS: dict[str, tuple[float, float, float]] = {"]
    for name, row in summary.iterrows():
        lines.append(f'    "{name}": ({row["median"]:.4g}, {row["p10"]:.4g}, {row["p90"]:.4g}),')
    return "\n".join([*lines, "}"])
