"""Charts about cases and training: tumour volumes in mL, intensity histograms, training curves, thresholds.

Slice pictures of whole cases live in ``braintools.viz``; this module draws numbers, and the small grids of
2D training slices (augmentations, predictions) that notebook 04 shows. Colours follow the course scheme of
``braintools.viz`` (labels NCR/ED/ET, regions WT/TC/ET). Every plotting function returns a ``Figure`` built
without pyplot (shown once when it is the last expression of a notebook cell).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from braintools.data.io import MODALITIES, Case, brats_affine
from braintools.data.labels import CLASS_NAMES, REGION_CLASSES, REGIONS, from_contiguous, to_contiguous, validate_labels
from braintools.data.preprocess import brain_mask, zscore_brain
from braintools.synthetic.reference import KEY_STATISTICS
from braintools.viz.orientation import display_slice
from braintools.viz.slices import (
    LABEL_COLOURS,
    LABEL_NAMES,
    REGION_COLOURS,
    add_label_legend,
    blend_labels,
    mark_edges,
    window_uint8,
)

VOLUME_COLUMNS = ("NCR", "ED", "ET", "WT", "TC")
VOLUME_COLOURS = {"NCR": LABEL_COLOURS[1], "ED": LABEL_COLOURS[2], "ET": LABEL_COLOURS[4],
                  "WT": REGION_COLOURS["WT"], "TC": REGION_COLOURS["TC"]}
HISTORY_LOSSES = ("train_loss", "val_loss")
HISTORY_DICE = tuple(f"val_dice_{region}" for region in REGIONS)


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Return the volume of one voxel in millilitres (|det| of the affine's 3x3 part, mm^3 / 1000) (notebook 02)."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix, got shape {affine.shape}")
    return float(abs(np.linalg.det(affine[:3, :3])) / 1000.0)


def _label_volumes(seg: np.ndarray, affine: np.ndarray) -> dict[str, float]:
    """Return the volume in mL of each label (NCR, ED, ET) and region (WT, TC: ``labels.REGION_CLASSES``) (02).

    Example:
        >>> _label_volumes(np.full((10, 10, 10), 4, np.uint8), np.eye(4))["ET"]  # 1000 voxels of 1 mm^3
        1.0
    """
    counts = np.bincount(to_contiguous(np.asarray(seg)).ravel(), minlength=len(CLASS_NAMES))
    voxels = {name: counts[value] for value, name in enumerate(CLASS_NAMES) if value}
    voxels.update({region: sum(counts[value] for value in REGION_CLASSES[region]) for region in REGIONS})
    unit = voxel_volume_ml(affine)
    return {name: float(voxels[name] * unit) for name in VOLUME_COLUMNS}


def label_volume_table(cases: Iterable[Case]) -> pd.DataFrame:
    """Return one row per case (index ``case_id``) with columns ``NCR_mL, ED_mL, ET_mL, WT_mL, TC_mL`` (notebook 02).

    Cases without a segmentation are skipped. Load cases one at a time (e.g. a generator
    ``(load_case(c) for c in find_cases(root))``) to keep memory low.
    """
    rows = {case.case_id: {f"{name}_mL": value for name, value in _label_volumes(case.seg, case.affine).items()}
            for case in cases if case.seg is not None}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[f"{name}_mL" for name in VOLUME_COLUMNS])
    table.index.name = "case_id"
    return table


def plot_label_volumes(table: pd.DataFrame, tag: str = "") -> Figure:
    """Plot the tumour volumes of ``label_volume_table`` per label and region: a box plot with every case (notebook 02).

    ``tag`` is appended to the title, e.g. ``DataPaths.tag`` (" (synthetic)").
    """
    columns = [f"{name}_mL" for name in VOLUME_COLUMNS if f"{name}_mL" in table.columns]
    if table.empty or not columns:
        raise ValueError("table holds no volumes; build it with label_volume_table(cases)")
    fig = Figure(figsize=(1.3 * len(columns) + 2, 3.5), layout="constrained")
    ax = fig.subplots()
    values = [table[column].to_numpy(dtype=float) for column in columns]
    ax.boxplot(values, showfliers=False, widths=0.5, medianprops={"color": "black"})
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=len(table))  # fixed: same picture every run
    for position, (column, column_values) in enumerate(zip(columns, values), start=1):
        ax.scatter(position + jitter, column_values, s=18, color=VOLUME_COLOURS[column[:-3]],
                   edgecolor="black", linewidth=0.5, zorder=3)
    ax.set_xticks(range(1, len(columns) + 1), [column[:-3] for column in columns])
    ax.set_ylabel("volume (mL)")
    ax.set_title(f"tumour volumes, {len(table)} case(s){tag}")
    return fig


def _tissue_masks(seg: np.ndarray, brain: np.ndarray) -> dict[str, np.ndarray]:
    masks = {"brain (no tumour)": brain & (seg == 0)}
    for value, name in LABEL_NAMES.items():
        masks[name] = seg == value
    return masks


def _pooled_intensities(cases: Case | Iterable[Case], modalities: Sequence[str],
                        normalise: bool) -> tuple[int, dict[str, dict[str, np.ndarray]]]:
    """(number of cases, modality -> tissue -> intensities pooled over the cases), z-scored in the brain if asked."""
    cases = [cases] if isinstance(cases, Case) else list(cases)
    cases = [case for case in cases if case.seg is not None]
    if not cases:
        raise ValueError("no case with a segmentation to take intensities from")
    pooled: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in modalities}
    for case in cases:
        volumes = np.stack([case.channel(m) for m in modalities]).astype(np.float32)
        brain = brain_mask(volumes)
        if normalise:
            volumes = zscore_brain(volumes, brain)
        validate_labels(np.asarray(case.seg))
        for volume, modality in zip(volumes, modalities):
            for tissue, mask in _tissue_masks(np.asarray(case.seg), brain).items():
                pooled[modality].setdefault(tissue, []).append(volume[mask])
    return len(cases), {m: {tissue: np.concatenate(parts) for tissue, parts in tissues.items()}
                        for m, tissues in pooled.items()}


def intensity_medians(cases: Case | Iterable[Case], modalities: Sequence[str] = MODALITIES) -> pd.DataFrame:
    """Median z-score (inside the brain) of normal brain and of each tumour label, per modality (notebook 02).

    The numbers behind ``plot_intensity_histograms``: one row per tissue (``brain (no tumour)``, NCR, ED, ET), one
    column per modality; NaN where the cases hold no voxel of that tissue.

    Example:
        >>> table = intensity_medians(case)  # doctest: +SKIP
        >>> table.loc["ET", "t1ce"] - table.loc["ED", "t1ce"]  # doctest: +SKIP
    """
    _, pooled = _pooled_intensities(cases, modalities, normalise=True)
    tissues = ["brain (no tumour)", *LABEL_NAMES.values()]
    return pd.DataFrame({m: {t: float(np.median(pooled[m][t])) if pooled[m][t].size else np.nan for t in tissues}
                         for m in modalities}).rename_axis("tissue")


def plot_intensity_histograms(cases: Case | Iterable[Case],
                              modalities: Sequence[str] = MODALITIES, normalise: bool = True,
                              bins: int = 80, tag: str = "") -> Figure:
    """Plot, per modality, the intensity distribution of normal brain and of each tumour label (notebook 02).

    Args:
        cases: one case or several (``braintools.data.io.Case`` with a ``seg``); their voxels are pooled.
        modalities: which modalities to show, one panel each.
        normalise: z-score each case inside its brain first (needed to pool cases: MRI has no unit).
        bins: histogram bins per panel.
        tag: appended to the title, e.g. ``DataPaths.tag`` (" (synthetic)").
    """
    n_cases, pooled = _pooled_intensities(cases, modalities, normalise)
    colours = {"brain (no tumour)": "0.45", **{name: LABEL_COLOURS[v] for v, name in LABEL_NAMES.items()}}
    fig = Figure(figsize=(3.2 * len(modalities), 3.2), layout="constrained")
    axes = fig.subplots(1, len(modalities), squeeze=False)
    for ax, modality in zip(axes[0], modalities):
        for tissue, values in pooled[modality].items():
            if values.size:
                ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.5,
                        color=colours[tissue], edgecolor="black", linewidth=0.6, label=tissue)
        ax.set_title(modality)
        ax.set_xlabel("z-score in brain" if normalise else "intensity")
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"intensity by tissue, {n_cases} case(s){tag}", fontsize=10)
    return fig


def _series(history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """Return (epochs, values) of the history entries that hold ``key``."""
    epochs, values = [], []
    for position, entry in enumerate(history, start=1):
        if entry.get(key) is not None:
            epochs.append(entry.get("epoch", position))
            values.append(float(entry[key]))
    return epochs, values


def _phase_starts(history: Sequence[dict]) -> list[tuple[int, str]]:
    """(epoch, phase) of every epoch whose freezing phase differs from the previous epoch's (``EncoderFreezer``).
    Introduced in notebook 02.

    Example:
        >>> _phase_starts([{"epoch": 1, "phase": "phase 1: a"}, {"epoch": 2, "phase": "phase 1: a"},
        ...               {"epoch": 3, "phase": "phase 2: b"}])
        [(1, 'phase 1: a'), (3, 'phase 2: b')]
    """
    starts, previous = [], None
    for position, entry in enumerate(history, start=1):
        phase = entry.get("phase")
        if phase and phase != previous:
            starts.append((int(entry.get("epoch", position)), str(phase)))
        previous = phase
    return starts


def plot_training_curves(history: Sequence[dict]) -> Figure:
    """Plot losses and validation Dice per region (WT/TC/ET) against the epoch, with the freezing phases marked.
    Introduced in notebook 04.

    Args:
        history: one dict per epoch with any of the keys ``epoch, train_loss, val_loss, val_dice_WT,
            val_dice_TC, val_dice_ET``; missing keys are skipped (an entry without ``epoch`` counts
            from 1 by position). A ``phase`` key (``train.fit`` with a freezer) marks where each phase begins.

    Example:
        >>> fig = plot_training_curves([{"epoch": 1, "train_loss": 0.9, "val_dice_WT": 0.5}])
    """
    groups = [(keys, title) for keys, title in ((HISTORY_LOSSES, "loss"), (HISTORY_DICE, "validation Dice"))
              if any(_series(history, key)[0] for key in keys)]
    if not groups:
        raise ValueError(f"history holds none of the keys {HISTORY_LOSSES + HISTORY_DICE}")
    fig = Figure(figsize=(4.5 * len(groups), 3.4), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)
    styles = {"train_loss": {"color": "black"}, "val_loss": {"color": "0.5", "linestyle": "--"},
              **{f"val_dice_{r}": {"color": REGION_COLOURS[r]} for r in REGIONS}}
    for ax, (keys, title) in zip(axes[0], groups):
        for key in keys:
            epochs, values = _series(history, key)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=key.replace("val_dice_", ""),
                        **styles[key])
        if title == "validation Dice":
            ax.set_ylim(0, 1)
        for epoch, phase in _phase_starts(history)[1:]:  # a dotted line where a freezing phase begins
            ax.axvline(epoch - 0.5, color="0.6", linestyle=":", linewidth=1)
            ax.annotate(phase.split(":")[0], (epoch - 0.5, 1), xycoords=("data", "axes fraction"), fontsize=7,
                        color="0.4", ha="left", va="top", rotation=90)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def plot_hidden_modality(image: np.ndarray, prediction: np.ndarray, hidden: int, title: str = "") -> Figure:
    """Notebook 04's proxy task on one slice: the three visible sequences, the hidden one, the network's drawing of it.
    Introduced in notebook 04.

    Args:
        image: (C, H, W) z-scored axial slice (channels in ``MODALITIES`` order), shown in the radiological convention.
        prediction: (C, H, W) output of the proxy network for this slice with channel ``hidden`` set to 0.
        hidden: the hidden channel; its truth and the prediction share one gray scale; the error is shown in the brain.
        title: the figure's title.
    """
    image, prediction = np.asarray(image, np.float32), np.asarray(prediction, np.float32)
    if image.ndim != 3 or prediction.shape != image.shape or not 0 <= hidden < len(image):
        raise ValueError(f"expected image and prediction (C, H, W) and a channel, got {image.shape}, "
                         f"{prediction.shape}, {hidden}")
    brain = np.any(image != 0, axis=0)
    if not brain.any():
        raise ValueError("the slice shows no brain (every pixel is 0)")

    def window(plane: np.ndarray) -> tuple[float, float]:
        return tuple(np.percentile(plane[brain], [1, 99]))

    def in_brain(plane: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
        return np.where(brain, plane, limits[0])  # the background black, whatever 0 means in this window

    names = MODALITIES if len(image) == len(MODALITIES) else tuple(f"channel {c}" for c in range(len(image)))
    low, high = window(image[hidden])
    error = np.where(brain, np.abs(prediction[hidden] - image[hidden]), 0.0)
    panels = [(f"{names[c]} (seen)", in_brain(image[c], window(image[c])), "gray", window(image[c]))
              for c in range(len(image)) if c != hidden]
    answer = (low, high)
    panels += [(f"{names[hidden]}: hidden, the answer", in_brain(image[hidden], answer), "gray", answer),
               (f"{names[hidden]} drawn by the network", in_brain(prediction[hidden], answer), "gray", answer),
               ("absolute error in the brain", error, "magma", (0.0, high - low))]
    affine = brats_affine(image.shape[1:] + (1,))  # orientation only: the slice is one axial plane
    fig = Figure(figsize=(2.2 * len(panels), 2.7), layout="constrained")
    for ax, (name, plane, cmap, (vmin, vmax)) in zip(fig.subplots(1, len(panels)), panels):
        ax.imshow(display_slice(plane[:, :, None], affine, "axial", 0), cmap=cmap, vmin=vmin, vmax=vmax,
                  interpolation="nearest")
        mark_edges(ax, "axial", fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_threshold_curves(table: pd.DataFrame, best: dict[str, float] | None = None) -> Figure:
    """Plot Dice against the probability threshold per region (a ``thresholds.search_thresholds`` table) (notebook 04).

    Args:
        table: index = threshold, one column of Dice per region (WT, TC, ET).
        best: chosen threshold per region, marked with a dot (default: the best row of each column).
    """
    if table.empty:
        raise ValueError("empty threshold table; build it with thresholds.threshold_table(predictions)")
    best = best or {region: float(table[region].idxmax()) for region in table.columns}
    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.subplots()
    for region in table.columns:
        colour = REGION_COLOURS.get(region, "black")
        ax.plot(table.index, table[region], color=colour, label=region)
        if region in best:
            ax.plot(best[region], table.loc[best[region], region], "o", color=colour, markeredgecolor="black")
    ax.axvline(0.5, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel("probability threshold")
    ax.set_ylabel("pooled Dice")
    ax.set_title("threshold per region (dots: chosen)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_slice_overlays(images: np.ndarray, rows: dict[str, np.ndarray], channel: int = 3,
                        titles: Sequence[str] | None = None, alpha: float = 0.45) -> Figure:
    """Draw 2D slices in columns and one class map per row (e.g. truth, prediction) over one image channel.
    Introduced in notebook 04.

    Args:
        images: (N, C, H, W) axial slices of BraTS arrays (X toward the patient's left, Y toward posterior),
            shown in the radiological convention (anterior up, patient left on the right), edge letters on every
            panel.
        rows: row name -> (N, H, W) contiguous classes 0..3 (0 background, 1 NCR, 2 ED, 3 ET).
        channel: the channel under the colours (3 = FLAIR in the course's order T1, T1ce, T2, FLAIR).
        titles: one title per column.
        alpha: opacity of the label colours.
    """
    images = np.asarray(images)
    if images.ndim != 4 or not rows:
        raise ValueError(f"expected images (N, C, H, W) and at least one row of classes, got {images.shape}")
    for name, classes in rows.items():
        if np.shape(classes) != images.shape[:1] + images.shape[2:]:
            raise ValueError(f"row {name!r}: classes {np.shape(classes)} do not match images {images.shape}")
    n = len(images)
    affine = brats_affine(images.shape[2:] + (1,))  # orientation only: the slice is one axial plane
    fig = Figure(figsize=(2.3 * n + 0.3, 2.3 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    for row, (name, classes) in enumerate(rows.items()):
        for column in range(n):
            ax = axes[row, column]
            gray = window_uint8(images[column, channel])
            gray[~np.any(images[column] != 0, axis=0)] = 0  # background and padding: 0 after z-scoring -> black
            rgb = blend_labels(gray, from_contiguous(classes[column]), alpha)
            ax.imshow(display_slice(rgb[:, :, None], affine, "axial", 0), interpolation="nearest")
            mark_edges(ax, "axial", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(name)
            if row == 0 and titles is not None:
                ax.set_title(titles[column], fontsize=9)
    add_label_legend(fig, loc="outside lower center", ncol=3, fontsize=8)
    return fig


def _time_label(ms: float, speed_up: float) -> str:
    """Label of one bar, e.g. ``"28.3 ms  (62x faster)"``."""
    label = f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"
    if speed_up != 1:
        label += f"  ({speed_up:,.{0 if speed_up >= 10 else 1}f}x faster)"
    return label


def plot_load_times(table: pd.DataFrame, title: str = "", repeats: int | None = None) -> Figure:
    """Bar charts of a ``benchmark_loads`` table: time per read (log scale, with speed-ups) and MiB returned.
    Introduced in notebook 03.

    Each row is one way of reading (part of) one patient, timed warm (its files already in the operating system's
    page cache); ``repeats`` (the median is of that many runs) goes into the axis label.
    """
    fig = Figure(figsize=(12, 0.55 * len(table) + 1.6), layout="constrained")
    time_ax, size_ax = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    positions = np.arange(len(table))[::-1]
    colours = ["#D55E00" if key == "h5" else "#0072B2" for key in table.index]
    time_ax.barh(positions, table["ms"], color=colours)
    time_ax.set_xscale("log")
    time_ax.set_xlim(table["ms"].min() / 3, table["ms"].max() * 30)
    for position, (ms, speed_up) in zip(positions, table[["ms", "speed-up"]].itertuples(index=False)):
        time_ax.text(ms * 1.15, position, _time_label(ms, speed_up), va="center", fontsize=9)
    time_ax.set_yticks(positions, table["read"])
    runs = f"median of {repeats} runs" if repeats else "median of the runs"
    time_ax.set_xlabel(f"milliseconds per read, log scale ({runs},\nfiles already in the page cache; "
                       "Nx faster: than the HDF5 slice files)")
    size_ax.barh(positions, table["MiB"], color=colours)
    for position, mebibytes in zip(positions, table["MiB"]):
        size_ax.text(mebibytes, position, f" {mebibytes:.3g}", va="center", fontsize=9)
    size_ax.set_xlim(0, table["MiB"].max() * 1.25)
    size_ax.set_xlabel("MiB returned per read\n(a patient, a patch or a slice)")
    fig.suptitle(title or "Time to read one patient, one patch or one slice: HDF5 slices vs the .npy cache")
    return fig


def plot_comparison(table: pd.DataFrame, statistics: Sequence[str] | None = None, columns: int = 4) -> Figure:
    """Draw ``statistics.compare_cases`` output: per statistic, the real and synthetic 10-90 % ranges and medians.
    Introduced in notebook 02."""
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
