"""Evaluation figures: blending weights, per-region scores, per-region error maps (notebook 07) and the
three-plane difference view of two label maps (notebook 08).

Every function returns a matplotlib ``Figure`` (no pyplot state), so notebooks show it by leaving it as the
last expression and scripts can ``fig.savefig(...)``.

Error colours come from the Okabe-Ito palette, like the label colours (``viz.slices``), so that they stay apart
with the common colour-vision deficiencies: hits blue, false alarms vermillion, misses yellow, and a tumour voxel
given the wrong sub-region reddish purple. Under a simulation of full protanopia, deuteranopia and tritanopia
(Machado et al. 2009) every pair stays at least 20 CIELAB units apart (``tests/test_evalplots.py`` checks it);
the red / green / blue it replaces fell to 14 for deuteranopia, where hits and false alarms look alike.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from braintools.data.io import Case
from braintools.data.labels import REGIONS, regions_from_classes
from braintools.evaluation.hd95 import HD95_PENALTY_MM
from braintools.inference.sliding_window import importance_map, window_starts
from braintools.viz.orientation import display_slice
from braintools.viz.slices import check_seg, mark_edges, plot_plane_rows, tumour_centre

# Okabe-Ito blue, vermillion, yellow, reddish purple; "wrong sub-region" only exists between label maps.
ERROR_COLOURS = {"hit (TP)": "#0072B2", "false alarm (FP)": "#D55E00", "missed (FN)": "#F0E442",
                 "wrong sub-region": "#CC79A7"}

REGION_ERRORS = ("hit (TP)", "false alarm (FP)", "missed (FN)")  # what a yes/no region map can show
# Variants of a score plot: Okabe-Ito colours (black last) and one marker each, so they part without colour too.
VARIANT_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_blending(roi_size: Sequence[int], image_size: int, overlap: float, sigma_scale: float = 0.125) -> Figure:
    """Left: the Gaussian weight map of one window (central plane). Right: summed weights along one axis.
    Introduced in notebook 07."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    map_ax, line_ax = fig.subplots(1, 2, width_ratios=(1, 2))
    weights = importance_map(tuple(roi_size[:2]), "gaussian", sigma_scale).numpy()
    shown = map_ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    map_ax.set_title(f"Gaussian weights of a {roi_size[0]} x {roi_size[1]} window")
    fig.colorbar(shown, ax=map_ax, shrink=0.8)
    roi = int(roi_size[0])
    starts = window_starts(image_size, roi, overlap)
    for mode, style in (("gaussian", "-"), ("constant", "--")):
        profile = importance_map((roi,), mode, sigma_scale).numpy()
        total = np.zeros(max(image_size, roi))
        for start in starts:
            total[start:start + roi] += profile
            if mode == "gaussian":
                line_ax.plot(np.arange(start, start + roi), profile, color="0.6", linewidth=0.8)
        line_ax.plot(total[:image_size], style, linewidth=2, label=f"sum of weights, {mode}")
    line_ax.set_xlabel(f"voxel along X (windows start at {starts})")
    line_ax.set_ylabel("weight")
    line_ax.set_title(f"{len(starts)} windows of {roi} voxels, overlap {overlap} (grey: each Gaussian window)")
    line_ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_region_scores(per_case: pd.DataFrame, order: Sequence[str] | None = None,
                       metrics: Sequence[str] = ("Dice", "HD95")) -> Figure:
    """One panel per metric and region: each case a dot per variant, bars the mean (Dice) or median (HD95).
    Introduced in notebook 04.

    ``per_case`` holds a ``variant`` column and ``<metric>_<region>`` columns. Variants are told apart by colour and
    marker (Okabe-Ito colours, safe for colour-blind readers). With a ``case_id`` column the dots of one case are
    joined by a grey line, so a change that most cases share reads as parallel lines. HD95 bars are medians: a
    region that is missed, or predicted where the truth has none, scores ``HD95_PENALTY_MM`` (373 mm, the BraTS
    penalty), drawn as a dashed line, and one such case would carry a mean.
    """
    variants = list(order or per_case["variant"].unique())
    fig = Figure(figsize=(4 * len(REGIONS), 3.2 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), len(REGIONS), squeeze=False)
    paired = "case_id" in per_case.columns
    cases = list(dict.fromkeys(per_case["case_id"])) if paired else []
    offsets = dict(zip(cases, np.linspace(-0.15, 0.15, len(cases)) if len(cases) > 1 else [0.0]))
    for row, metric in enumerate(metrics):
        for column, region in enumerate(REGIONS):
            ax, name = axes[row, column], f"{metric}_{region}"
            if paired:  # one grey line per case through its scores of every variant
                table = per_case.pivot_table(index="case_id", columns="variant", values=name, dropna=False)
                for case_id, scores in table.reindex(columns=variants).iterrows():
                    shown = scores.astype(float).notna().to_numpy()
                    x = np.arange(len(variants)) + offsets[case_id]
                    ax.plot(x[shown], scores.to_numpy(dtype=float)[shown], color="0.6", linewidth=0.8, zorder=1)
            for position, variant in enumerate(variants):
                part = per_case.loc[per_case["variant"] == variant]
                values = part[name].astype(float)
                kept = values.notna().to_numpy()
                summary = values.median() if metric == "HD95" else values.mean()
                colour = VARIANT_COLOURS[position % len(VARIANT_COLOURS)]
                ax.bar(position, summary if kept.any() else np.nan, color=colour, alpha=0.3, zorder=0)
                x = position + (np.array([offsets[c] for c in part["case_id"]]) if paired else
                                np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values)))
                ax.scatter(x[kept], values[kept], color=colour, marker=VARIANT_MARKERS[position % len(VARIANT_MARKERS)],
                           s=22, edgecolor="black", linewidth=0.4, zorder=2)
            if metric == "HD95" and np.isclose(per_case[name].astype(float), HD95_PENALTY_MM).any():
                ax.axhline(HD95_PENALTY_MM, color="0.3", linestyle="--", linewidth=0.8, zorder=0)
                ax.text(0.02, HD95_PENALTY_MM, f"{HD95_PENALTY_MM:.0f} mm: region missed or invented",
                        transform=ax.get_yaxis_transform(), va="bottom", fontsize=7, color="0.3")
            ax.set_xticks(range(len(variants)), [textwrap.fill(str(name), 16) for name in variants], fontsize=7)
            ax.set_title(f"{region} {metric}" + (" (mm, lower is better; bars: median)" if metric == "HD95" else
                                                 " (bars: mean)"), fontsize=10)
            if metric == "Dice":
                ax.set_ylim(0, 1.02)
    fig.suptitle("per test case (dots" + (", a line joins one case's dots" if paired else "") + ")")
    return fig


def _error_overlay(gray: np.ndarray, pred_mask: np.ndarray, gt_mask: np.ndarray) -> np.ndarray:
    """RGB image (H, W, 3) in [0, 1]: gray background, hits, false alarms and misses in ``ERROR_COLOURS``.
    Introduced in notebook 07."""
    rgb = np.repeat((gray.astype(np.float32) / max(float(gray.max()), 1e-6))[..., None], 3, axis=-1)
    masks = (pred_mask & gt_mask, pred_mask & ~gt_mask, ~pred_mask & gt_mask)
    for mask, kind in zip(masks, REGION_ERRORS):
        rgb[mask] = 0.4 * rgb[mask] + 0.6 * np.asarray(to_rgb(ERROR_COLOURS[kind]))
    return rgb


def plot_region_errors(gray: np.ndarray, pred_classes: np.ndarray, gt_classes: np.ndarray, affine: np.ndarray,
                       index: int, plane: str = "axial", title: str = "") -> Figure:
    """One panel per region (WT, TC, ET) of one slice: hits, false alarms and misses over the gray image (notebook 07).

    Drawn in the radiological convention from ``affine``, with the patient direction at every edge.
    """
    pred_regions, gt_regions = regions_from_classes(pred_classes), regions_from_classes(gt_classes)
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    for ax, region, pred, gt in zip(fig.subplots(1, len(REGIONS)), REGIONS, pred_regions, gt_regions):
        overlay = _error_overlay(gray, pred.astype(bool), gt.astype(bool))
        ax.imshow(display_slice(overlay, affine, plane, index), interpolation="nearest")
        mark_edges(ax, plane)
        ax.set_title(f"{region} (whole volume: {int(gt.sum())} true, {int(pred.sum())} predicted voxels)", fontsize=9)
        ax.set_axis_off()
    fig.legend(handles=[Patch(color=ERROR_COLOURS[kind], label=kind) for kind in REGION_ERRORS],
               loc="outside lower center", ncols=3)
    fig.suptitle(title or f"{plane} slice {index}")
    return fig


def label_errors(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Voxel by voxel, how a label map differs from the truth: 0 background in both, then 1, 2, 3, 4 for the
    Introduced in notebook 08.
    kinds of ``ERROR_COLOURS`` in order (hit, false alarm, missed, wrong sub-region).

    A hit has the same tumour label in both; a wrong sub-region is tumour in both with different labels, such
    as enhancing tumour (4) predicted as necrosis (1): it costs TC or ET Dice although WT is right.

    Example:
        >>> label_errors(np.array([0, 0, 2, 4, 4]), np.array([0, 1, 0, 4, 1])).tolist()
        [0, 2, 3, 1, 4]
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape:
        raise ValueError(f"truth shape {truth.shape} differs from prediction shape {prediction.shape}")
    in_truth, in_prediction = truth > 0, prediction > 0
    errors = np.zeros(truth.shape, dtype=np.uint8)
    errors[in_truth & in_prediction & (truth == prediction)] = 1
    errors[~in_truth & in_prediction] = 2
    errors[in_truth & ~in_prediction] = 3
    errors[in_truth & in_prediction & (truth != prediction)] = 4
    return errors


def plot_label_errors(case: Case, seg: np.ndarray, prediction: np.ndarray, modality: str = "flair",
                      voxel: tuple[int, int, int] | None = None, alpha: float = 0.7,
                      name: str = "prediction", tag: str = "", panel_inches: float = 3.0) -> Figure:
    """Difference view (notebook 08): axial, sagittal and coronal cuts through ``voxel`` (default: the tumour
    Introduced in notebook 08.
    centre of ``seg``) with every tumour voxel coloured by ``label_errors``: hit, false alarm, missed, wrong
    sub-region; the legend counts each kind over the whole volume.
    """
    shape = case.channel(modality).shape
    seg, prediction = check_seg(seg, shape, "ground truth"), check_seg(prediction, shape, name)
    errors = label_errors(seg, prediction)
    voxel = voxel or tumour_centre(seg) or tumour_centre(prediction) or tuple(size // 2 for size in shape)
    colours = {code: ERROR_COLOURS[kind] for code, kind in enumerate(ERROR_COLOURS, start=1)}
    fig = plot_plane_rows(case, modality, voxel, [("errors", errors)], alpha, colours, panel_inches=panel_inches)
    counts = np.bincount(errors.ravel(), minlength=len(ERROR_COLOURS) + 1)
    fig.legend(handles=[Patch(color=colour, label=f"{kind}: {counts[code]} voxels")
                        for code, (kind, colour) in enumerate(ERROR_COLOURS.items(), start=1)],
               loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(f"{case.case_id}{tag}: {name} against the ground truth, {modality}, through voxel "
                 f"{tuple(int(v) for v in voxel)} (radiological)", fontsize=10)
    return fig
