"""Pictures of a case: label colours, slice montage, animated GIF, three-plane view, nilearn views.

Every plotting function returns a matplotlib ``Figure`` built without pyplot, so a notebook shows it
exactly once when it is the last expression of a cell (``display(fig)`` elsewhere; ``fig.savefig(...)`` in a
script), and nothing stays open in pyplot's figure list. Slices are drawn in the radiological
convention of ``braintools.viz.orientation`` (patient Left on the image right), worked out from the affine.

Label colours (one scheme everywhere: montage, GIF, three-plane view, nilearn, slice viewer), taken from
the Okabe-Ito palette so that the three tumour labels stay distinct with the common colour-vision
deficiencies (deuteranopia, protanopia, tritanopia) and against grey MRI:

- NCR/NET (label 1, necrotic core): vermillion ``#D55E00`` (the usual "red");
- ED (label 2, edema): yellow ``#F0E442``;
- ET (label 4, enhancing tumour): sky blue ``#56B4E9``.

Neighbouring labels (NCR inside the ET rim, the ET rim inside the edema) differ in both hue and brightness;
under a simulation of full deuteranopia, protanopia and tritanopia (Machado et al. 2009) every pair stays
far apart (NCR becomes dark olive, ED light yellow, ET light blue for red-green deficiencies).
Plots of regions (WT/TC/ET curves on white paper) use the darker Okabe-Ito siblings in ``REGION_COLOURS``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch
from PIL import Image, ImageDraw, ImageFont

from braintools._private.atomic import atomic_path
from braintools.data.io import Case
from braintools.data.labels import validate_labels
from braintools.data.preprocess import bounding_box
from braintools.viz.orientation import (
    display_aspect,
    display_position,
    display_slice,
    edge_labels,
    plane_axis,
)

LABEL_NAMES = {1: "NCR", 2: "ED", 4: "ET"}
LABEL_COLOURS = {1: "#D55E00", 2: "#F0E442", 4: "#56B4E9"}
REGION_COLOURS = {"WT": "#E69F00", "TC": "#D55E00", "ET": "#0072B2"}


MAX_GIF_FPS = 20
GIF_MIN_WIDTH = 160  # pixels: room for the caption and the edge letters



def _colour_lookup(colours: Mapping[int, str | tuple[float, float, float]]) -> np.ndarray:
    """Return a (256, 3) float table of RGB 0..255 for label values 0..255 (unlisted values: black) (notebook 02)."""
    lookup = np.zeros((256, 3), dtype=np.float32)
    for value, colour in colours.items():
        lookup[value] = np.array(to_rgb(colour)) * 255
    return lookup


_LABEL_LOOKUP = _colour_lookup(LABEL_COLOURS)


# --- colours and legend -------------------------------------------------------------------------------

def _label_legend_handles() -> list[Patch]:
    """Return one legend patch per tumour label (NCR, ED, ET) in the course colours (notebook 02)."""
    return [Patch(facecolor=LABEL_COLOURS[value], edgecolor="black", label=f"{name} ({value})")
            for value, name in LABEL_NAMES.items()]


def add_label_legend(target: Axes | Figure, **legend_kwargs) -> Legend:
    """Add the NCR/ED/ET legend to an Axes or a Figure and return it (``legend_kwargs`` go to ``legend``).
    Introduced in notebook 02."""
    legend_kwargs.setdefault("title", "labels")
    return target.legend(handles=_label_legend_handles(), **legend_kwargs)


def _label_colormap() -> ListedColormap:
    """Return a colormap for BraTS label values 0..4 (use with ``vmin=0, vmax=4``); 0 and 3 are unused (notebook 02)."""
    colours = ["black", LABEL_COLOURS[1], LABEL_COLOURS[2], "white", LABEL_COLOURS[4]]
    return ListedColormap(colours, name="brats_labels")


# --- rendering slices to RGB --------------------------------------------------------------------------

def window_uint8(volume: np.ndarray, low_percentile: float = 0.5,
                 high_percentile: float = 99.5) -> np.ndarray:
    """Scale intensities to uint8 for display, clipping at percentiles of the non-zero (brain) voxels (notebook 02).

    Example:
        >>> window_uint8(np.array([0.0, 1.0, 2.0, 3.0])).tolist()  # brain values 1..3 span 0..255
        [0, 0, 127, 255]
    """
    volume = np.asarray(volume, dtype=np.float32)
    brain = volume[volume != 0]
    if brain.size == 0:
        return np.zeros(volume.shape, dtype=np.uint8)
    low, high = np.percentile(brain, [low_percentile, high_percentile])
    if high <= low:
        high = low + 1.0
    scaled = (volume - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def blend_labels(gray: np.ndarray, seg: np.ndarray | None, alpha: float = 0.4,
                 colours: Mapping[int, str] | None = None) -> np.ndarray:
    """Return an RGB uint8 image: ``gray`` (uint8) with label colours mixed in at opacity ``alpha`` (notebook 05).

    ``colours`` maps label values to colours (default: the course's ``LABEL_COLOURS``); value 0 stays gray.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in 0..1, got {alpha}")
    rgb = np.repeat(np.asarray(gray, dtype=np.uint8)[..., None], 3, axis=-1)
    if seg is None or alpha == 0:
        return rgb
    seg = np.asarray(seg)
    if seg.shape != rgb.shape[:-1]:
        raise ValueError(f"seg shape {seg.shape} differs from image shape {rgb.shape[:-1]}")
    tumour = seg > 0
    if tumour.any():
        lookup = _LABEL_LOOKUP if colours is None else _colour_lookup(colours)
        mixed = lookup[seg[tumour].astype(np.intp)]
        rgb[tumour] = ((1 - alpha) * rgb[tumour] + alpha * mixed + 0.5).astype(np.uint8)
    return rgb


def render_slice(gray_volume: np.ndarray, affine: np.ndarray, plane: str, index: int,
                 seg: np.ndarray | None = None, alpha: float = 0.4,
                 colours: Mapping[int, str] | None = None) -> np.ndarray:
    """Return one display-oriented slice as RGB uint8: a ``window_uint8`` volume plus optional labels (notebook 02)."""
    gray = display_slice(gray_volume, affine, plane, index)
    labels = None if seg is None else display_slice(seg, affine, plane, index)
    return blend_labels(gray, labels, alpha, colours)


def check_seg(seg: np.ndarray | None, shape: tuple[int, ...], name: str = "seg") -> np.ndarray | None:
    """Return ``seg`` as an array after checking its shape and BraTS label values (None passes through)."""
    if seg is None:
        return None
    seg = np.asarray(seg)
    if seg.shape != tuple(shape):
        raise ValueError(f"{name} shape {seg.shape} differs from image shape {tuple(shape)}")
    validate_labels(seg, source=name)
    return seg


def tumour_centre(seg: np.ndarray) -> tuple[int, int, int] | None:
    """Return the voxel at the centre of mass of the whole tumour (labels > 0), or None if there is none.
    Introduced in notebook 02."""
    tumour = np.argwhere(np.asarray(seg) > 0)
    if tumour.size == 0:
        return None
    return tuple(int(round(c)) for c in tumour.mean(axis=0))


def _display_box(volume: np.ndarray, affine: np.ndarray, plane: str, margin: int | None = None) -> tuple[slice, slice]:
    """Rows and columns of the displayed ``plane`` that hold the brain (every non-zero voxel), plus a margin.
    Introduced in notebook 02.

    The brain's bounding box (``preprocess.bounding_box``) of the plane's projection, as displayed (notebook 02).
    ``margin`` is in pixels; default 5% of the larger side of the plane (12 pixels on the BraTS grid).
    """
    axis = plane_axis(affine, plane)
    footprint = display_slice(np.any(np.asarray(volume) != 0, axis=axis, keepdims=True), affine, plane, 0)
    margin = max(1, round(0.05 * max(footprint.shape))) if margin is None else margin
    return bounding_box(footprint, margin)


def _show(ax: Axes, rgb: np.ndarray, aspect: float, box: tuple[slice, slice] | None) -> None:
    """Draw an RGB slice, cropped to ``box`` but keeping full-slice pixel coordinates on the axes."""
    rows, columns = box or (slice(0, rgb.shape[0]), slice(0, rgb.shape[1]))
    cropped = rgb[rows, columns]
    top, left = rows.start, columns.start
    extent = (left - 0.5, left + cropped.shape[1] - 0.5, top + cropped.shape[0] - 0.5, top - 0.5)
    ax.imshow(cropped, aspect=aspect, extent=extent, interpolation="nearest")


def _spread_slices(volume: np.ndarray, affine: np.ndarray, plane: str, count: int,
                  min_fraction: float = 0.2) -> list[int]:
    """Return ``count`` slice indices spread evenly over the slices that show a fair amount of brain (notebook 02).

    A slice qualifies when its non-zero area is at least ``min_fraction`` of the largest slice's area, which
    skips the nearly empty tips of the head. Fewer indices come back when the brain has fewer slices.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    volume = np.asarray(volume)
    axis = plane_axis(affine, plane)
    area = np.count_nonzero(volume, axis=tuple(a for a in range(3) if a != axis))
    shown = np.flatnonzero(area >= min_fraction * area.max()) if area.max() > 0 else np.arange(len(area))
    first, last = shown[0], shown[-1]
    return sorted({int(round(i)) for i in np.linspace(first, last, count)})


def to_pil(rgb: np.ndarray, aspect: float = 1.0, scale: float = 1.0) -> Image.Image:
    """Turn an RGB uint8 slice into a Pillow image, stretched by the pixel ``aspect`` and ``scale``."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    width, height = image.size
    size = (max(1, round(width * scale)), max(1, round(height * scale * aspect)))
    return image if size == image.size else image.resize(size, Image.Resampling.NEAREST)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def draw_orientation_letters(image: Image.Image, plane: str, caption: str | None = None) -> Image.Image:
    """Write the patient direction at each edge of ``image`` (and a caption at the bottom left), in place."""
    draw = ImageDraw.Draw(image)
    font = _font(max(10, image.size[0] // 20))
    width, height = image.size
    anchors = {"top": ((width / 2, 2), "mt"), "bottom": ((width / 2, height - 2), "mb"),
               "left": ((3, height / 2), "lm"), "right": ((width - 3, height / 2), "rm")}
    for edge, letter in edge_labels(plane).items():
        position, anchor = anchors[edge]
        draw.text(position, letter, fill=(255, 255, 255), font=font, anchor=anchor,
                  stroke_width=1, stroke_fill=(0, 0, 0))
    if caption:
        draw.text((3, height - 2), caption, fill=(255, 255, 255), font=font, anchor="lb",
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return image


def _name(case: Case, tag: str = "") -> str:
    """Return ``"<case_id><tag>: "`` for a title (e.g. ``"BraTS20_Training_001 (synthetic): "``), or the tag alone."""
    return f"{case.case_id}{tag}: " if case.case_id else (f"{tag.strip()}: " if tag.strip() else "")


def mark_edges(ax: Axes, plane: str, fontsize: float = 9) -> None:
    """Write the patient direction at the four edges of a panel drawn in the radiological convention (notebook 02).

    ``plane`` is ``"axial"``, ``"sagittal"`` or ``"coronal"``; an axial panel gets A (top), P (bottom), R (left) and
    L (right): the patient's left on the image right.

    Example:
        >>> ax = Figure().subplots()
        >>> mark_edges(ax, "axial")
        >>> sorted(text.get_text() for text in ax.texts)
        ['A', 'L', 'P', 'R']
    """
    positions = {"top": (0.5, 0.98, "center", "top"), "bottom": (0.5, 0.02, "center", "bottom"),
                 "left": (0.02, 0.5, "left", "center"), "right": (0.98, 0.5, "right", "center")}
    for edge, letter in edge_labels(plane).items():
        x, y, ha, va = positions[edge]
        ax.text(x, y, letter, transform=ax.transAxes, ha=ha, va=va, color="white", fontsize=fontsize,
                fontweight="bold", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "edgecolor": "none"})


# --- figures ------------------------------------------------------------------------------------------

def plot_montage(case: Case, modality: str = "flair", plane: str = "axial",
                 slices: list[int] | None = None, count: int = 16, seg: np.ndarray | None = None,
                 alpha: float = 0.4, columns: int | None = None, crop: bool = True,
                 panel_inches: float = 2.0, tag: str = "") -> Figure:
    """Plot a grid of slices of one modality, optionally with a label overlay (notebook 02).

    Args:
        case: a ``braintools.data.io.Case`` (or a case with an ``images`` dict and an ``affine``).
        modality: ``"t1"``, ``"t1ce"``, ``"t2"`` or ``"flair"``.
        plane: ``"axial"``, ``"sagittal"`` or ``"coronal"``.
        slices: slice indices of the stored array; default ``count`` slices spread over the brain.
        seg: labels to overlay (e.g. ``case.seg`` or a prediction with BraTS labels 0/1/2/4).
        alpha: overlay opacity, 0 (invisible) to 1 (opaque).
        columns: panels per row (default: about square).
        crop: cut the black margin around the head (same frame on every panel).
        tag: appended to the case id in the title, e.g. ``DataPaths.tag`` (" (synthetic)").

    Example:
        >>> fig = plot_montage(case, "flair", seg=case.seg)  # doctest: +SKIP
    """
    volume = case.channel(modality)
    seg = check_seg(seg, volume.shape)
    slices = _spread_slices(volume, case.affine, plane, count) if slices is None else list(slices)
    if not slices:
        raise ValueError("slices is empty: choose at least one slice index")
    gray = window_uint8(volume)
    columns = columns or math.ceil(math.sqrt(len(slices)))
    rows = math.ceil(len(slices) / columns)
    aspect = display_aspect(case.affine, plane)
    box = _display_box(volume, case.affine, plane) if crop else None
    fig = Figure(figsize=(panel_inches * columns, panel_inches * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, index in zip(axes.flat, slices):
        _show(ax, render_slice(gray, case.affine, plane, index, seg, alpha), aspect, box)
        ax.set_title(f"{plane} {index}", fontsize=9)
    mark_edges(axes.flat[0], plane)
    title = f"{_name(case, tag)}{modality}, {plane} slices (radiological: patient L on right)"
    fig.suptitle(title, fontsize=10)
    if seg is not None and alpha > 0:
        add_label_legend(fig, loc="outside lower center", ncols=3, fontsize=8)
    return fig


def save_slices_gif(case: Case, path: str | os.PathLike, modality: str = "flair",
                    plane: str = "axial", slices: list[int] | None = None, seg: np.ndarray | None = None,
                    alpha: float = 0.4, fps: float = 10, scale: float = 1.0) -> Path:
    """Write an animated GIF that steps through slices (one frame per slice) and return its path (notebook 02).

    The frame rate is capped at ``MAX_GIF_FPS`` (20 frames per second, 50 ms per frame): faster GIFs
    are played back inconsistently by browsers. GIF stores durations in hundredths of a second, so the
    frame time is ``1000 / fps`` ms rounded to 10 ms. Each frame carries its slice number, the edge letters
    and a progress bar, and is at least ``GIF_MIN_WIDTH`` pixels wide.

    Args:
        case: a ``braintools.data.io.Case`` (or a case with an ``images`` dict and an ``affine``).
        path: target ``.gif`` file (written atomically).
        slices: slice indices in playing order (default: every slice of the plane).
        seg: labels to overlay (e.g. ``case.seg``).
        fps: frames per second, above 0; values above 20 are lowered to 20 with a warning.
        scale: size factor of the frames (e.g. 2 for a bigger GIF); raised if frames would be too narrow.
    """
    if not fps > 0:
        raise ValueError(f"fps must be above 0, got {fps}")
    if fps > MAX_GIF_FPS:
        warnings.warn(f"fps {fps} is above the cap of {MAX_GIF_FPS}; using {MAX_GIF_FPS}", stacklevel=2)
        fps = MAX_GIF_FPS
    volume = case.channel(modality)
    seg = check_seg(seg, volume.shape)
    slices = list(range(volume.shape[plane_axis(case.affine, plane)])) if slices is None else list(slices)
    if not slices:
        raise ValueError("slices is empty: choose at least one slice index")
    gray, aspect = window_uint8(volume), display_aspect(case.affine, plane)
    scale = max(scale, GIF_MIN_WIDTH / display_slice(gray, case.affine, plane, 0).shape[1])
    frames = []
    for number, index in enumerate(slices):
        frame = to_pil(render_slice(gray, case.affine, plane, index, seg, alpha), aspect, scale)
        draw_orientation_letters(frame, plane, caption=f"{plane} {index}")
        # a progress bar along the bottom edge; with the caption it keeps every frame distinct
        # (Pillow merges identical consecutive frames, which would change the frame count)
        progress = round(frame.size[0] * (number + 1) / len(slices))
        bottom = frame.size[1] - 1
        ImageDraw.Draw(frame).rectangle((0, bottom - 1, progress - 1, bottom), fill=(230, 230, 230))
        frames.append(frame)
    with atomic_path(path) as temporary:
        frames[0].save(temporary, format="GIF", save_all=True, append_images=frames[1:],
                       duration=max(50, 10 * round(100 / fps)), loop=0)
    return Path(path)


def plot_plane_rows(case: Case, modality: str, voxel: tuple[int, int, int],
                    rows: Sequence[tuple[str, np.ndarray | None]], alpha: float = 0.4,
                    colours: Mapping[int, str] | None = None, crosshair: bool = True, crop: bool = True,
                    panel_inches: float = 3.0) -> Figure:
    """Plot axial, sagittal and coronal slices through ``voxel``, one row per ``(name, label map or None)``.

    The building block of ``plot_three_plane`` and ``plot_label_errors`` (notebook 08): every row shows the same
    three cuts of ``modality``, with that row's labels blended in ``colours`` (default ``LABEL_COLOURS``) and the
    row's name on its first panel. Radiological convention from the affine, edge letters on every panel, titles
    with the slice index of the stored array. No title and no legend: the callers add them.
    """
    volume = case.channel(modality)
    if len(voxel) != 3 or not all(0 <= v < size for v, size in zip(voxel, volume.shape)):
        raise IndexError(f"voxel {voxel} is outside the volume of shape {volume.shape}")
    for name, labels in rows:
        if labels is not None and np.shape(labels) != volume.shape:
            raise ValueError(f"{name} shape {np.shape(labels)} differs from image shape {volume.shape}")
    gray = window_uint8(volume)
    planes = ("axial", "sagittal", "coronal")
    fig = Figure(figsize=(3 * panel_inches, len(rows) * panel_inches + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for row, (name, labels) in enumerate(rows):
        for ax, plane in zip(axes[row], planes):
            index = voxel[plane_axis(case.affine, plane)]
            box = _display_box(volume, case.affine, plane) if crop else None
            _show(ax, render_slice(gray, case.affine, plane, index, labels, alpha, colours),
                  display_aspect(case.affine, plane), box)
            if crosshair:
                y, x = display_position(voxel, volume.shape, case.affine, plane)
                ax.axhline(y, color="white", linewidth=0.6, alpha=0.5, linestyle="--")
                ax.axvline(x, color="white", linewidth=0.6, alpha=0.5, linestyle="--")
            mark_edges(ax, plane)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{plane} {index}", fontsize=9)
        axes[row, 0].set_ylabel(name, fontsize=10)
    return fig


def plot_three_plane(case: Case, modality: str = "flair",
                     voxel: tuple[int, int, int] | None = None, seg: np.ndarray | None = None,
                     prediction: np.ndarray | None = None, alpha: float = 0.4, crosshair: bool = True,
                     crop: bool = True, panel_inches: float = 3.0, tag: str = "") -> Figure:
    """Plot axial, sagittal and coronal slices through one voxel: image, ground truth and prediction rows (notebook 05).

    Radiological convention from the affine: patient Left on the image right (axial, coronal), anterior
    up (axial), superior up (sagittal, coronal), anterior left (sagittal); letters mark every edge.

    Args:
        case: a ``braintools.data.io.Case`` (or a case with an ``images`` dict and an ``affine``).
        voxel: (i, j, k) array indices to cut through; default the tumour centre of ``seg`` (else of
            ``prediction``, else the middle of the volume).
        seg: ground-truth labels (row "ground truth"); prediction: predicted labels (row "prediction").
        crosshair: draw dashed lines through ``voxel``; crop: cut the black margin around the head.
        tag: appended to the case id in the title, e.g. ``DataPaths.tag`` (" (synthetic)").

    Example:
        >>> fig = plot_three_plane(case, "t1ce", seg=case.seg, prediction=predicted)  # doctest: +SKIP
    """
    shape = case.channel(modality).shape
    rows = [("image", None)]
    for name, labels in (("ground truth", seg), ("prediction", prediction)):
        if labels is not None:
            rows.append((name, check_seg(labels, shape, name)))
    if voxel is None:
        voxel = next((tumour_centre(labels) for _, labels in rows[1:] if tumour_centre(labels)), None)
        voxel = voxel or tuple(size // 2 for size in shape)
    fig = plot_plane_rows(case, modality, voxel, rows, alpha, crosshair=crosshair, crop=crop,
                          panel_inches=panel_inches)
    fig.suptitle(f"{_name(case, tag)}{modality} through voxel {tuple(int(v) for v in voxel)}"
                 " (radiological)", fontsize=10)
    if len(rows) > 1 and alpha > 0:
        add_label_legend(fig, loc="outside lower center", ncols=3, fontsize=8)
    return fig


# --- nilearn ------------------------------------------------------------------------------------------

def _case_to_nifti(case: Case, modality: str = "flair") -> nib.Nifti1Image:
    """Wrap one modality of a case as an in-memory NIfTI image (for nilearn), keeping its affine (notebook 02)."""
    return nib.Nifti1Image(np.asarray(case.channel(modality), dtype=np.float32), np.asarray(case.affine))


def _seg_to_nifti(seg: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """Wrap BraTS labels as an in-memory uint8 NIfTI image (for nilearn ``plot_roi``) (notebook 02)."""
    seg = np.asarray(seg)
    validate_labels(seg)
    return nib.Nifti1Image(seg.astype(np.uint8), np.asarray(affine, dtype=np.float64))


def plot_nilearn_views(anat: nib.Nifti1Image | str | os.PathLike,
                       seg: nib.Nifti1Image | str | os.PathLike | None = None,
                       cut_coords: tuple[float, float, float] | None = None, title: str | None = None,
                       alpha: float = 0.6) -> Figure:
    """Plot nilearn's ``plot_anat`` of an image and, if ``seg`` is given, ``plot_roi`` of the labels on it.
    Introduced in notebook 02.

    nilearn resamples to world coordinates itself, so any stored orientation works; both views use its
    ``radiological=True`` mode to match the rest of the course.

    Args:
        anat: a NIfTI path or nibabel image (e.g. ``_case_to_nifti(case, "flair")``).
        seg: a NIfTI path or nibabel image of BraTS labels (e.g. ``_seg_to_nifti(case.seg, case.affine)``).
        cut_coords: world (x, y, z) in mm to cut through; default the tumour centre (or nilearn's choice).
    """
    from nilearn import image as nli
    from nilearn import plotting

    anat = nli.crop_img(nli.load_img(anat))  # frame the head as plot_roi frames its background
    seg = None if seg is None else nli.load_img(seg)
    if cut_coords is None and seg is not None:
        centre = tumour_centre(np.asarray(seg.dataobj))
        if centre is not None:
            cut_coords = tuple(float(c) for c in nib.affines.apply_affine(seg.affine, centre))
    fig = Figure(figsize=(9, 3.4 if seg is None else 6.6))
    rows = 1 if seg is None else 2
    top = fig.add_subplot(rows, 1, 1)
    plotting.plot_anat(anat, cut_coords=cut_coords, figure=fig, axes=top, title=title or "anatomy",
                       radiological=True, colorbar=False, draw_cross=True, dim=0)
    if seg is not None:
        bottom = fig.add_subplot(rows, 1, 2)
        plotting.plot_roi(seg, bg_img=anat, cut_coords=cut_coords, figure=fig, axes=bottom,
                          title="labels (plot_roi)", cmap=_label_colormap(), vmin=0, vmax=4, alpha=alpha,
                          radiological=True, colorbar=False, dim=0, view_type="continuous")
        add_label_legend(fig, loc="lower center", ncols=3, fontsize=8)
    return fig
