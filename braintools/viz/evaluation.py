"""Figures of notebook 07: blending weights, per-region scores, variants compared, per-region error maps.

Every function returns a matplotlib ``Figure`` (no pyplot state), so notebooks show it by leaving it as the
last expression and scripts can ``fig.savefig(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from braintools.data.labels import REGIONS, regions_from_classes
from braintools.inference.sliding_window import importance_map, window_starts
from braintools.viz.orientation import display_slice

ERROR_COLOURS = {"hit (TP)": (0.1, 0.8, 0.2), "false alarm (FP)": (0.95, 0.2, 0.1), "missed (FN)": (0.2, 0.5, 1.0)}


def plot_blending(roi_size: Sequence[int], image_size: int, overlap: float, sigma_scale: float = 0.125) -> Figure:
    """Left: the Gaussian weight map of one window (central plane). Right: summed weights along one axis."""
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
    """One panel per metric and region: every case as a dot per variant (column ``variant``), means as bars."""
    variants = list(order or per_case["variant"].unique())
    fig = Figure(figsize=(4 * len(REGIONS), 3.2 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), len(REGIONS), squeeze=False)
    rng = np.random.default_rng(0)
    for row, metric in enumerate(metrics):
        for column, region in enumerate(REGIONS):
            ax = axes[row, column]
            for position, variant in enumerate(variants):
                values = per_case.loc[per_case["variant"] == variant, f"{metric}_{region}"].astype(float).dropna()
                ax.bar(position, values.mean() if len(values) else np.nan, color=f"C{position}", alpha=0.35)
                ax.scatter(position + rng.uniform(-0.15, 0.15, len(values)), values, color=f"C{position}", s=18)
            ax.set_xticks(range(len(variants)), variants, rotation=20, ha="right", fontsize=8)
            ax.set_title(f"{region} {metric}" + (" (mm, lower is better)" if metric == "HD95" else ""))
            if metric == "Dice":
                ax.set_ylim(0, 1.02)
    fig.suptitle("per test case (dots) and mean (bars)")
    return fig


def error_overlay(gray: np.ndarray, pred_mask: np.ndarray, gt_mask: np.ndarray) -> np.ndarray:
    """RGB image (H, W, 3) in [0, 1]: gray background, hits green, false alarms red, misses blue."""
    rgb = np.repeat((gray.astype(np.float32) / max(float(gray.max()), 1e-6))[..., None], 3, axis=-1)
    masks = (pred_mask & gt_mask, pred_mask & ~gt_mask, ~pred_mask & gt_mask)
    for mask, colour in zip(masks, ERROR_COLOURS.values()):
        rgb[mask] = 0.4 * rgb[mask] + 0.6 * np.asarray(colour)
    return rgb


def plot_region_errors(gray: np.ndarray, pred_classes: np.ndarray, gt_classes: np.ndarray, affine: np.ndarray,
                       index: int, plane: str = "axial", title: str = "") -> Figure:
    """One panel per region (WT, TC, ET) of one slice: hits, false alarms and misses over the gray image."""
    pred_regions, gt_regions = regions_from_classes(pred_classes), regions_from_classes(gt_classes)
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    for ax, region, pred, gt in zip(fig.subplots(1, len(REGIONS)), REGIONS, pred_regions, gt_regions):
        overlay = error_overlay(gray, pred.astype(bool), gt.astype(bool))
        ax.imshow(display_slice(overlay, affine, plane, index), interpolation="nearest")
        ax.set_title(f"{region} (whole volume: {int(gt.sum())} true, {int(pred.sum())} predicted voxels)", fontsize=9)
        ax.set_axis_off()
    fig.legend(handles=[Patch(color=colour, label=name) for name, colour in ERROR_COLOURS.items()],
               loc="outside lower center", ncols=3)
    fig.suptitle(title or f"{plane} slice {index}")
    return fig
