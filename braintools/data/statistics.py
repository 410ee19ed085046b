"""What a realistic synthetic BraTS case must match: intensity, tumour shape and scanner statistics of cases.

Notebook 02 compares real and synthetic cases with these numbers; the synthetic generator draws its tumours and
contrasts from the ranges measured on real scans (``REAL_STATISTICS``, numbers only: no voxels or masks), measured on
the 8 tuning cases of the development data only (``REAL_CASE_IDS``; the 5 locked cases score models, see
``benchmarks/realism.py``).

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
    """``REAL_STATISTICS`` as a table like ``summarise`` returns (measured on 8 real cases, ``REAL_CASE_IDS``).
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

# Measured with ``summarise(measure_cases(...))`` on the 8 TUNING cases of the 13 real BraTS 2018 training cases of the
# course's development data (brats_sample + brats_dev; the fixed tuning / locked split of ``benchmarks/realism.py``):
# median, 10th and 90th percentile over the cases. The 5 locked cases are never measured here: the generator is fitted
# to these numbers, and the locked cases score the models trained on it.
REAL_CASE_IDS = ("Brats18_CBICA_ABM_1", "Brats18_CBICA_APR_1", "Brats18_CBICA_AOZ_1", "Brats18_CBICA_AQQ_1",
                 "Brats18_CBICA_ASY_1", "Brats18_CBICA_ASV_1", "Brats18_CBICA_APZ_1", "Brats18_2013_3_1")
REAL_CASES = len(REAL_CASE_IDS)
REAL_STATISTICS: dict[str, tuple[float, float, float]] = {
    "WT mL": (87.22, 58.59, 127.8),
    "TC mL": (26.94, 13.48, 40.3),
    "ET mL": (17.1, 7.852, 23.57),
    "NCR share of WT": (0.09441, 0.05528, 0.2768),
    "ED share of WT": (0.6845, 0.4647, 0.8613),
    "ET share of WT": (0.2336, 0.06887, 0.2684),
    "ET share of TC": (0.605, 0.4574, 0.728),
    "no enhancement": (0, 0, 0),
    "WT components": (1, 1, 1.3),
    "largest WT share": (0.9998, 0.9962, 1),
    "TC sphericity": (0.4329, 0.3616, 0.5028),
    "TC solidity": (0.553, 0.3897, 0.7931),
    "WT solidity": (0.517, 0.4362, 0.6678),
    "ET thickness mm": (1.93, 1.605, 2.602),
    "core to edge mm": (1.207, 1, 2.439),
    "core depth mm": (16.7, 14.19, 20.81),
    "core to ventricles mm": (5.242, 5.099, 11.92),
    "WT share near edge": (0.0592, 0.03416, 0.09194),
    "height in brain": (0.4808, 0.4222, 0.6531),
    "edema reach median mm": (6.745, 4.365, 10.74),
    "edema reach p95 mm": (17.49, 11.41, 24.61),
    "ED/TC volume": (2.18, 0.8832, 6.229),
    "t1 WM z": (0.6111, 0.4038, 0.7136),
    "t1 GM/WM": (0.7554, 0.5272, 0.7816),
    "t1 GM z": (-0.4655, -1.196, -0.3366),
    "t1 CSF/WM": (0.4685, 0.4416, 0.6707),
    "t1 CSF z": (-1.68, -2.001, -0.8092),
    "t1 NCR/WM": (0.707, 0.5976, 0.932),
    "t1 NCR z": (-0.6471, -1.087, 0.08732),
    "t1 ED/WM": (0.8465, 0.7632, 1.017),
    "t1 ED z": (0.009076, -0.4965, 0.4374),
    "t1 ET/WM": (0.816, 0.7496, 1.005),
    "t1 ET z": (-0.2011, -0.4827, 0.4698),
    "t1ce WM z": (0.2023, 0.1198, 0.3438),
    "t1ce GM/WM": (0.8265, 0.5595, 0.8837),
    "t1ce GM z": (-0.37, -1.052, -0.2219),
    "t1ce CSF/WM": (0.5794, 0.5321, 0.8128),
    "t1ce CSF z": (-1.239, -1.366, -0.4088),
    "t1ce NCR/WM": (0.7459, 0.6406, 0.9109),
    "t1ce NCR z": (-0.6448, -1.045, -0.03196),
    "t1ce ED/WM": (0.8468, 0.7706, 0.9327),
    "t1ce ED z": (-0.2479, -0.5978, -0.03295),
    "t1ce ET/WM": (1.531, 1.393, 2.004),
    "t1ce ET z": (1.922, 1.514, 3.351),
    "t2 WM z": (-0.6234, -0.6997, -0.4446),
    "t2 GM/WM": (1.418, 0.9469, 1.801),
    "t2 GM z": (0.1471, -0.6844, 0.2845),
    "t2 CSF/WM": (2.583, 1.957, 3.207),
    "t2 CSF z": (1.994, 1.446, 2.904),
    "t2 NCR/WM": (2.475, 1.797, 3.044),
    "t2 NCR z": (1.915, 0.9134, 2.945),
    "t2 ED/WM": (1.99, 1.594, 2.334),
    "t2 ED z": (1.106, 0.5309, 1.504),
    "t2 ET/WM": (1.964, 1.722, 2.244),
    "t2 ET z": (1.154, 0.6849, 1.443),
    "flair WM z": (-0.182, -0.327, 0.07611),
    "flair GM/WM": (1.075, 0.7663, 1.193),
    "flair GM z": (0.02278, -0.7305, 0.1572),
    "flair CSF/WM": (0.7139, 0.5334, 1.02),
    "flair CSF z": (-0.9356, -1.261, 0.04935),
    "flair NCR/WM": (2.109, 1.622, 2.225),
    "flair NCR z": (2.468, 1.36, 3.018),
    "flair ED/WM": (2.046, 1.651, 2.352),
    "flair ED z": (2.249, 1.707, 2.874),
    "flair ET/WM": (2.267, 1.765, 2.487),
    "flair ET z": (2.913, 1.693, 3.588),
    "t1 ET~NCR": (0.6029, 0.3478, 0.7103),
    "t1 ET~ED": (0.6644, 0.4651, 0.8635),
    "t1 NCR~ED": (0.4422, 0.1811, 0.7487),
    "t1 ED~WM": (0.5211, 0.377, 0.8301),
    "t1 ED~GM": (0.6788, 0.2192, 0.8765),
    "t1 ET~GM": (0.5363, 0.2615, 0.8614),
    "t1ce ET~NCR": (0.1759, 0.1142, 0.2456),
    "t1ce ET~ED": (0.1375, 0.05375, 0.2407),
    "t1ce NCR~ED": (0.5712, 0.4033, 0.7611),
    "t1ce ED~WM": (0.5221, 0.3759, 0.7803),
    "t1ce ED~GM": (0.7433, 0.3612, 0.879),
    "t1ce ET~GM": (0.1712, 0.1181, 0.3066),
    "t2 ET~NCR": (0.609, 0.3559, 0.8931),
    "t2 ET~ED": (0.7785, 0.5538, 0.842),
    "t2 NCR~ED": (0.5795, 0.3285, 0.7084),
    "t2 ED~WM": (0.05443, 0.02566, 0.2913),
    "t2 ED~GM": (0.3923, 0.2283, 0.6484),
    "t2 ET~GM": (0.3331, 0.1307, 0.6346),
    "flair ET~NCR": (0.7688, 0.6743, 0.8446),
    "flair ET~ED": (0.6287, 0.4887, 0.7903),
    "flair NCR~ED": (0.7537, 0.547, 0.8853),
    "flair ED~WM": (0.06113, 0.02828, 0.2158),
    "flair ED~GM": (0.1196, 0.05178, 0.1979),
    "flair ET~GM": (0.08822, 0.05862, 0.166),
    "t1 bias": (0.09945, 0.07614, 0.1396),
    "t1 noise x": (0.03579, 0.02632, 0.04278),
    "t1 noise y": (0.03048, 0.02181, 0.03636),
    "t1 noise z": (0.03375, 0.02757, 0.04031),
    "t1ce bias": (0.09203, 0.05715, 0.1148),
    "t1ce noise x": (0.03974, 0.03661, 0.05329),
    "t1ce noise y": (0.03286, 0.03065, 0.04459),
    "t1ce noise z": (0.03731, 0.03484, 0.04732),
    "t2 bias": (0.06218, 0.05788, 0.08381),
    "t2 noise x": (0.05255, 0.03864, 0.07283),
    "t2 noise y": (0.04729, 0.03345, 0.0649),
    "t2 noise z": (0.0327, 0.02615, 0.07283),
    "flair bias": (0.08624, 0.06297, 0.09971),
    "flair noise x": (0.06967, 0.04072, 0.07814),
    "flair noise y": (0.0561, 0.03307, 0.0687),
    "flair noise z": (0.03379, 0.02593, 0.04956),
}
