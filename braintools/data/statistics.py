"""What a realistic synthetic BraTS case must match: intensity, tumour shape and scanner statistics of cases.

Notebook 02 compares real and synthetic cases with these numbers; the synthetic generator draws its tumours and
contrasts from the ranges measured on real scans (``REAL_STATISTICS``, numbers only: no voxels or masks).

Per case (``measure_case``), in a few seconds at 240 x 240 x 155:

- **normal tissues**: the brain outside the tumour (and 5 mm around it) is split into white matter, grey matter
  and CSF by a 3-cluster k-means on (T1, T2) (``tissue_map``): an estimate, good enough for medians;
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

``compare_cases`` puts real and synthetic side by side (median and 10-90 % range over cases);
``plot_comparison`` draws it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from braintools.data.io import MODALITIES
from braintools.data.labels import validate_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TISSUES = ("WM", "GM", "CSF", "NCR", "ED", "ET")
TISSUE_CODES = {name: code for code, name in enumerate(TISSUES, start=1)}  # 0: outside the brain
LABEL_VALUES = {"NCR": 1, "ED": 2, "ET": 4}
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


def tissue_map(image: np.ndarray, seg: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
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
    for name, value in LABEL_VALUES.items():
        tissues[seg == value] = TISSUE_CODES[name]
    return tissues


# --------------------------------------------------------------------------- intensities


def _white_matter_medians(image: np.ndarray, tissues: np.ndarray) -> np.ndarray:
    wm = tissues == TISSUE_CODES["WM"]
    return np.array([np.median(channel[wm]) for channel in image], dtype=np.float64)


def intensity_statistics(image: np.ndarray, tissues: np.ndarray, min_voxels: int = 50) -> dict[str, float]:
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


def histogram_overlap(a: np.ndarray, b: np.ndarray, bins: np.ndarray = HISTOGRAM_BINS) -> float:
    """Shared area of two normalised histograms (0: the values never meet, 1: same distribution) (notebook 02).

    Example:
        >>> histogram_overlap(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
        1.0
    """
    if a.size == 0 or b.size == 0:
        return float("nan")
    pa, _ = np.histogram(np.clip(a, bins[0], bins[-1]), bins)
    pb, _ = np.histogram(np.clip(b, bins[0], bins[-1]), bins)
    return float(np.minimum(pa / pa.sum(), pb / pb.sum()).sum())


def overlap_statistics(image: np.ndarray, tissues: np.ndarray, min_voxels: int = 50) -> dict[str, float]:
    """Histogram overlap of the label pairs ``OVERLAP_PAIRS`` on every modality (``t1ce ET~NCR``) (notebook 02)."""
    reference = _white_matter_medians(image, tissues)
    stats = {}
    for channel, modality in enumerate(MODALITIES):
        relative = image[channel] / reference[channel]
        values = {t: relative[tissues == TISSUE_CODES[t]] for t in {t for pair in OVERLAP_PAIRS for t in pair}}
        for a, b in OVERLAP_PAIRS:
            enough = values[a].size >= min_voxels and values[b].size >= min_voxels
            stats[f"{modality} {a}~{b}"] = histogram_overlap(values[a], values[b]) if enough else np.nan
    return stats


# --------------------------------------------------------------------------- shape and position


def surface_area(mask: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """Area (mm^2) of the voxel faces between ``mask`` and the rest (outside the array counts as outside) (notebook 02).

    Example:
        >>> surface_area(np.ones((1, 1, 1), bool))
        6.0
    """
    padded = np.pad(mask.astype(bool), 1)
    sx, sy, sz = spacing
    face = {0: sy * sz, 1: sx * sz, 2: sx * sy}
    return float(sum(np.count_nonzero(np.diff(padded, axis=axis)) * face[axis] for axis in range(3)))


def solidity(mask: np.ndarray) -> float:
    """Voxel count / volume of the convex hull of the voxel cubes (1: convex; lobulated shapes score less).
    Introduced in notebook 02."""
    surface = mask & ~ndi.binary_erosion(mask)
    points = np.argwhere(surface).astype(np.float64)
    if len(points) < 4:
        return float("nan")
    corners = (points[:, None, :] + np.array(np.meshgrid(*[[-0.5, 0.5]] * 3)).reshape(3, -1).T[None]).reshape(-1, 3)
    try:
        return float(np.count_nonzero(mask) / ConvexHull(corners).volume)
    except QhullError:
        return float("nan")


def shape_statistics(seg: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """Volumes (mL), label shares, components, sphericity, solidity and ET thickness of one segmentation.
    Introduced in notebook 02."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    wt, tc, et = seg > 0, (seg == 1) | (seg == 4), seg == 4
    volumes = {name: float(np.count_nonzero(seg == value)) * voxel_ml for name, value in LABEL_VALUES.items()}
    wt_ml, tc_ml = volumes["NCR"] + volumes["ED"] + volumes["ET"], volumes["NCR"] + volumes["ET"]
    stats = {"WT mL": wt_ml, "TC mL": tc_ml, "ET mL": volumes["ET"],
             **{f"{name} share of WT": volumes[name] / wt_ml if wt_ml else np.nan for name in LABEL_VALUES},
             "ET share of TC": volumes["ET"] / tc_ml if tc_ml else np.nan,
             "no enhancement": float(volumes["ET"] < NO_ENHANCEMENT_ML)}
    components, count = ndi.label(wt, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(components.ravel())[1:] * voxel_ml
    stats["WT components"] = float(np.count_nonzero(sizes >= MIN_COMPONENT_ML))
    stats["largest WT share"] = float(sizes.max() / sizes.sum()) if count else np.nan
    tc_area = surface_area(tc, spacing)
    stats["TC sphericity"] = float(np.pi ** (1 / 3) * (6 * tc_ml * 1000) ** (2 / 3) / tc_area) if tc_area else np.nan
    stats["TC solidity"] = solidity(tc) if tc.any() else np.nan
    stats["WT solidity"] = solidity(wt) if wt.any() else np.nan
    et_area = surface_area(et, spacing)
    stats["ET thickness mm"] = 2 * volumes["ET"] * 1000 / et_area if volumes["ET"] >= NO_ENHANCEMENT_ML else np.nan
    return stats


def position_statistics(tissues: np.ndarray, brain: np.ndarray,
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


def scanner_statistics(image: np.ndarray, tissues: np.ndarray,
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
    """Every statistic of one case (image (4, X, Y, Z) raw intensities in ``MODALITIES`` order, BraTS labels).
    Introduced in notebook 02."""
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
    tissues = tissue_map(image, seg, spacing)
    return {**shape_statistics(seg, spacing), **position_statistics(tissues, brain, spacing),
            **intensity_statistics(image, tissues), **overlap_statistics(image, tissues),
            **scanner_statistics(image, tissues, spacing)}


def _spacing(affine: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(s) for s in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def measure_cases(cases: Iterable) -> pd.DataFrame:
    """One row of statistics per case (``io.Case`` or ``synthetic.SyntheticCase``, with a segmentation) (notebook 02).

    Pass a generator (``(io.load_case(f) for f in files)``) to hold one full-size case in memory at a time.
    """
    rows = {}
    for number, case in enumerate(cases):
        if getattr(case, "seg", None) is None:
            continue
        image = case.image if hasattr(case, "image") else np.stack([case.images[m] for m in MODALITIES])
        rows[getattr(case, "case_id", f"case_{number}")] = measure_case(image, case.seg, _spacing(case.affine))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case_id"
    return table


def summarise(per_case: pd.DataFrame) -> pd.DataFrame:
    """Median and 10-90 % range of every statistic over the cases (NaN ignored); one row per statistic (notebook 02)."""
    return pd.DataFrame({"median": per_case.median(), "p10": per_case.quantile(0.1), "p90": per_case.quantile(0.9),
                         "cases": per_case.count()})


def reference_table() -> pd.DataFrame:
    """``REAL_STATISTICS`` as a table like ``summarise`` returns (measured on 13 real BraTS 2018 cases).
    Introduced in notebook 02."""
    table = pd.DataFrame.from_dict(REAL_STATISTICS, orient="index", columns=["median", "p10", "p90"])
    table["cases"] = REAL_CASES
    return table


def compare_cases(synthetic: pd.DataFrame, real: pd.DataFrame | None = None, label: str = "synthetic"
                  ) -> pd.DataFrame:
    """Real and synthetic statistics side by side (medians, 10-90 % ranges, and whether the synthetic median
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


def plot_comparison(table: pd.DataFrame, statistics: Sequence[str] | None = None, columns: int = 4) -> Figure:
    """Draw ``compare_cases`` output: per statistic, the real and synthetic 10-90 % ranges with their medians.
    Introduced in notebook 02."""
    from matplotlib.figure import Figure

    names = list(statistics or KEY_STATISTICS)
    missing = [name for name in names if name not in table.index]
    if missing:
        raise ValueError(f"statistics not in the table: {missing}")
    sources = list(dict.fromkeys(table.columns.get_level_values(0)))  # "real", then the compared cases
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(3.0 * columns, 1.6 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for position, (source, colour) in enumerate(zip(sources, ("#0072B2", "#E69F00"))):
            low, median, high = (table.loc[name, (source, key)] for key in ("p10", "median", "p90"))
            ax.plot([low, high], [position, position], color=colour, linewidth=4, alpha=0.5)
            ax.plot([median], [position], "o", color=colour, markeredgecolor="black")
        ax.set_yticks([0, 1], sources, fontsize=8)
        ax.set_ylim(-0.6, 1.6)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle(f"{sources[0]} vs {sources[1]}: median (dot) and 10-90 % of cases (bar)", fontsize=10)
    return fig


def format_reference(summary: pd.DataFrame) -> str:
    """The Python literal of ``REAL_STATISTICS`` for a ``summarise`` table (a maintainer's tool, no notebook).

    To update this module after a new measurement: ``print(format_reference(summarise(measure_cases(cases))))``.
    """
    lines = ["REAL_STATISTICS: dict[str, tuple[float, float, float]] = {"]
    for name, row in summary.iterrows():
        lines.append(f'    "{name}": ({row["median"]:.4g}, {row["p10"]:.4g}, {row["p90"]:.4g}),')
    return "\n".join([*lines, "}"])


KEY_STATISTICS = (
    "WT mL", "ET share of TC", "ED/TC volume", "WT components",
    "TC solidity", "ET thickness mm", "core to edge mm", "edema reach p95 mm",
    "t1ce ET/WM", "t1ce NCR/WM", "flair ED/WM", "t2 ED/WM",
    "t1ce ET~NCR", "flair ED~GM", "t1ce noise x", "flair bias",
)

# Measured with ``summarise(measure_cases(...))`` on the 13 real BraTS 2018 training cases of the course's
# development data (brats_sample + brats_dev): median, 10th and 90th percentile over the cases.
REAL_CASES = 13
REAL_STATISTICS: dict[str, tuple[float, float, float]] = {
    "WT mL": (91.57, 68.01, 144.4),
    "TC mL": (28.47, 12.44, 47.56),
    "ET mL": (16.76, 6.643, 24.4),
    "NCR share of WT": (0.08544, 0.05463, 0.2961),
    "ED share of WT": (0.6668, 0.4102, 0.8681),
    "ET share of WT": (0.2298, 0.06292, 0.2996),
    "ET share of TC": (0.6444, 0.4326, 0.8003),
    "no enhancement": (0, 0, 0),
    "WT components": (1, 1, 1),
    "largest WT share": (0.9999, 0.9993, 1),
    "TC sphericity": (0.433, 0.3809, 0.5299),
    "TC solidity": (0.6878, 0.4231, 0.7964),
    "WT solidity": (0.5388, 0.4552, 0.7148),
    "ET thickness mm": (1.956, 1.439, 2.553),
    "core to edge mm": (1.414, 1, 5.001),
    "core depth mm": (18.14, 14.18, 21.73),
    "core to ventricles mm": (5.099, 5.099, 10.94),
    "WT share near edge": (0.0699, 0.02346, 0.09324),
    "height in brain": (0.5209, 0.4296, 0.7575),
    "edema reach median mm": (7, 4.69, 10.44),
    "edema reach p95 mm": (21.1, 12.47, 25.59),
    "ED/TC volume": (2.001, 0.7059, 6.595),
    "t1 WM z": (0.6258, 0.4755, 0.77),
    "t1 GM/WM": (0.75, 0.6998, 0.7671),
    "t1 GM z": (-0.505, -0.6251, -0.3631),
    "t1 CSF/WM": (0.4682, 0.4351, 0.5879),
    "t1 CSF z": (-1.659, -2.032, -1.156),
    "t1 NCR/WM": (0.7089, 0.5622, 0.8726),
    "t1 NCR z": (-0.6762, -1.159, 0.01654),
    "t1 ED/WM": (0.8766, 0.7484, 0.991),
    "t1 ED z": (0.1642, -0.5011, 0.4139),
    "t1 ET/WM": (0.8567, 0.7372, 0.9985),
    "t1 ET z": (-0.07936, -0.4857, 0.6369),
    "t1ce WM z": (0.2708, 0.1109, 0.4442),
    "t1ce GM/WM": (0.8197, 0.7613, 0.8675),
    "t1ce GM z": (-0.3665, -0.5497, -0.252),
    "t1ce CSF/WM": (0.5757, 0.5167, 0.756),
    "t1ce CSF z": (-1.258, -1.642, -0.624),
    "t1ce NCR/WM": (0.7862, 0.6243, 0.8834),
    "t1ce NCR z": (-0.5241, -1.032, -0.07553),
    "t1ce ED/WM": (0.8846, 0.7494, 0.9429),
    "t1ce ED z": (-0.1246, -0.6557, 0.04845),
    "t1ce ET/WM": (1.529, 1.247, 1.948),
    "t1ce ET z": (2.083, 1.411, 3.106),
    "t2 WM z": (-0.6396, -0.7062, -0.5735),
    "t2 GM/WM": (1.435, 1.279, 1.796),
    "t2 GM z": (0.151, -0.03048, 0.2992),
    "t2 CSF/WM": (2.534, 2.022, 3.238),
    "t2 CSF z": (2.025, 1.664, 2.77),
    "t2 NCR/WM": (2.524, 1.686, 2.99),
    "t2 NCR z": (1.613, 0.7786, 2.802),
    "t2 ED/WM": (1.969, 1.463, 2.459),
    "t2 ED z": (1.182, 0.09802, 1.692),
    "t2 ET/WM": (2.009, 1.564, 2.226),
    "t2 ET z": (1.097, 0.4944, 1.382),
    "flair WM z": (-0.2076, -0.3335, 0.1166),
    "flair GM/WM": (1.08, 1.008, 1.168),
    "flair GM z": (0.007932, -0.07733, 0.1574),
    "flair CSF/WM": (0.7186, 0.5771, 0.9605),
    "flair CSF z": (-0.8659, -1.532, -0.119),
    "flair NCR/WM": (2.127, 1.292, 2.482),
    "flair NCR z": (2.32, 1.026, 3.122),
    "flair ED/WM": (2.062, 1.348, 2.399),
    "flair ED z": (2.267, 1.332, 2.857),
    "flair ET/WM": (2.255, 1.316, 2.583),
    "flair ET z": (2.775, 1.155, 3.468),
    "t1 ET~NCR": (0.5776, 0.2748, 0.7616),
    "t1 ET~ED": (0.6876, 0.519, 0.8684),
    "t1 NCR~ED": (0.4626, 0.2073, 0.7635),
    "t1 ED~WM": (0.6295, 0.3568, 0.8199),
    "t1 ED~GM": (0.5395, 0.3153, 0.8608),
    "t1 ET~GM": (0.4968, 0.2705, 0.8363),
    "t1ce ET~NCR": (0.1722, 0.08908, 0.2297),
    "t1ce ET~ED": (0.1303, 0.02817, 0.2116),
    "t1ce NCR~ED": (0.5554, 0.357, 0.7976),
    "t1ce ED~WM": (0.5936, 0.353, 0.8131),
    "t1ce ED~GM": (0.7055, 0.4876, 0.8515),
    "t1ce ET~GM": (0.1649, 0.1119, 0.2761),
    "t2 ET~NCR": (0.5972, 0.3768, 0.8544),
    "t2 ET~ED": (0.7043, 0.4977, 0.8392),
    "t2 NCR~ED": (0.5875, 0.2436, 0.8047),
    "t2 ED~WM": (0.067, 0.02985, 0.2885),
    "t2 ED~GM": (0.3933, 0.2661, 0.6851),
    "t2 ET~GM": (0.343, 0.1885, 0.7439),
    "flair ET~NCR": (0.7907, 0.639, 0.828),
    "flair ET~ED": (0.618, 0.471, 0.7957),
    "flair NCR~ED": (0.7253, 0.4763, 0.8652),
    "flair ED~WM": (0.07558, 0.03516, 0.1519),
    "flair ED~GM": (0.1383, 0.05981, 0.2366),
    "flair ET~GM": (0.09068, 0.04865, 0.217),
    "t1 bias": (0.1122, 0.06505, 0.1323),
    "t1 noise x": (0.03437, 0.02657, 0.03871),
    "t1 noise y": (0.03001, 0.02353, 0.03345),
    "t1 noise z": (0.03308, 0.0195, 0.03686),
    "t1ce bias": (0.09466, 0.04576, 0.1362),
    "t1ce noise x": (0.03956, 0.03413, 0.04858),
    "t1ce noise y": (0.03276, 0.0282, 0.04),
    "t1ce noise z": (0.03697, 0.03411, 0.04335),
    "t2 bias": (0.06585, 0.05655, 0.1482),
    "t2 noise x": (0.05446, 0.03128, 0.07108),
    "t2 noise y": (0.05106, 0.02373, 0.06934),
    "t2 noise z": (0.03404, 0.02321, 0.07108),
    "flair bias": (0.07816, 0.04773, 0.09215),
    "flair noise x": (0.07542, 0.02975, 0.08837),
    "flair noise y": (0.06107, 0.02644, 0.07309),
    "flair noise z": (0.03562, 0.01867, 0.05069),
}
