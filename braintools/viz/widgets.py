"""``SliceViewer``: an interactive slice viewer for notebooks (JupyterLab, Colab, Kaggle).

It only uses core ipywidgets (dropdowns, sliders, an ``Image``), which all three platforms support.
Speed comes from doing the heavy work once: each modality is scaled to a uint8 volume when the viewer is
built, so an update only cuts one slice (a numpy view), mixes in the label colours and encodes a small
PNG with Pillow (see ``benchmarks/viewer.py`` for the measured update time).

The viewer is also drivable from code, e.g. in tests or to script a figure::

    viewer = SliceViewer(case, prediction=predicted)
    viewer                                     # last line of a cell: shows the controls and the image
    viewer.set(modality="t1ce", plane="sagittal", index=120, overlay="prediction", alpha=0.6)
    viewer.current_rgb()                       # the displayed slice as an (H, W, 3) uint8 array
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np

from braintools.data.io import Case
from braintools.viz.orientation import PLANES, display_aspect, plane_axis
from braintools.viz.slices import (
    LABEL_COLOURS,
    LABEL_NAMES,
    check_seg,
    draw_orientation_letters,
    render_slice,
    to_pil,
    tumour_centre,
    window_uint8,
)


def _legend_html() -> str:
    swatches = "".join(
        f'<span style="display:inline-block;width:11px;height:11px;background:{LABEL_COLOURS[value]};'
        f'border:1px solid #000;margin:0 3px 0 10px"></span>{name} ({value})'
        for value, name in LABEL_NAMES.items())
    return f"<div style='font-size:12px'>{swatches}</div>"


class SliceViewer:
    """Browse a case slice by slice: modality, plane, slice index, label overlay and its opacity (notebook 02).

    Args:
        case: a ``braintools.data.io.Case``, real or synthetic.
        prediction: predicted BraTS labels (X, Y, Z) to offer as the "prediction" overlay.
        modality, plane, overlay, alpha: the first view (``overlay``: "none", "ground truth", "prediction").
        voxel: (i, j, k) the three planes cut through at first (default: tumour centre, else the middle).
        display_width: width in pixels of the image in the notebook (the browser scales the PNG).
    """

    def __init__(self, case: Case, prediction: np.ndarray | None = None,
                 modality: str = "flair", plane: str = "axial", overlay: str | None = None,
                 alpha: float = 0.4, voxel: tuple[int, int, int] | None = None,
                 display_width: int = 480) -> None:
        modalities = tuple(case.modalities)
        if not modalities:
            raise ValueError("case has no modalities to show")
        self.case_id = case.case_id
        self.affine = np.asarray(case.affine, dtype=np.float64)
        self._gray = {name: window_uint8(case.channel(name)) for name in modalities}
        shape = next(iter(self._gray.values())).shape
        self._labels = {"none": None}
        for name, labels in (("ground truth", case.seg), ("prediction", prediction)):
            if labels is not None:
                self._labels[name] = check_seg(labels, shape, name)
        centre = next((tumour_centre(v) for v in list(self._labels.values())[1:] if tumour_centre(v)), None)
        self.voxel = list(voxel or centre or (size // 2 for size in shape))
        self.shape = shape
        self.modality, self.plane, self.alpha = modalities[0], "axial", alpha
        self.overlay = "ground truth" if "ground truth" in self._labels else "none"
        self._build_widgets(modalities, display_width)
        self.set(modality=modality, plane=plane, overlay=overlay or self.overlay, alpha=alpha,
                 voxel=self.voxel)

    # --- state ----------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """The slice index shown, along the current plane's normal axis of the stored array."""
        return int(self.voxel[plane_axis(self.affine, self.plane)])

    @property
    def image_bytes(self) -> bytes:
        """The PNG bytes currently shown in the notebook."""
        return bytes(self.image.value)

    def set(self, modality: str | None = None, plane: str | None = None, index: int | None = None,
            overlay: str | None = None, alpha: float | None = None,
            voxel: tuple[int, int, int] | None = None) -> SliceViewer:
        """Change any part of the view (others stay), move the controls to match, redraw; returns self."""
        if modality is not None and modality not in self._gray:
            raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(self._gray)}")
        if plane is not None and plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
        if overlay is not None and overlay not in self._labels:
            raise ValueError(f"overlay {overlay!r} is not available; choose one of {', '.join(self._labels)}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in 0..1, got {alpha}")
        if voxel is not None:
            if len(voxel) != 3 or not all(0 <= v < n for v, n in zip(voxel, self.shape)):
                raise IndexError(f"voxel {tuple(voxel)} is outside the volume of shape {self.shape}")
            self.voxel = [int(v) for v in voxel]
        self.modality = modality or self.modality
        self.plane = plane or self.plane
        self.overlay = overlay or self.overlay
        self.alpha = self.alpha if alpha is None else float(alpha)
        if index is not None:
            axis = plane_axis(self.affine, self.plane)
            if not 0 <= index < self.shape[axis]:
                raise IndexError(f"{self.plane} slice index {index} is outside 0..{self.shape[axis] - 1}")
            self.voxel[axis] = int(index)
        self._sync_controls()
        self._redraw()
        return self

    # --- rendering ------------------------------------------------------------------------------------

    def current_rgb(self) -> np.ndarray:
        """Return the displayed slice (radiological orientation) as (H, W, 3) uint8, one pixel per voxel."""
        return render_slice(self._gray[self.modality], self.affine, self.plane, self.index,
                            self._labels[self.overlay], self.alpha)

    def render_png(self) -> bytes:
        """Return the current view as PNG bytes, with the pixel aspect from the affine and edge letters."""
        image = to_pil(self.current_rgb(), display_aspect(self.affine, self.plane), scale=2)
        draw_orientation_letters(image, self.plane, caption=f"{self.plane} {self.index}")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def _redraw(self) -> None:
        self.image.value = self.render_png()
        axis_size = self.shape[plane_axis(self.affine, self.plane)]
        self.caption.value = (f"<b>{self.case_id}</b> &middot; {self.modality} &middot; {self.plane} "
                              f"slice {self.index} of 0..{axis_size - 1} &middot; voxel {tuple(self.voxel)} "
                              "&middot; radiological view (patient left on image right)")

    # --- widgets --------------------------------------------------------------------------------------

    def _build_widgets(self, modalities: tuple[str, ...], display_width: int) -> None:
        self._syncing = False
        self.modality_control = widgets.Dropdown(options=modalities, description="modality")
        self.plane_control = widgets.ToggleButtons(options=PLANES, description="plane")
        self.index_control = widgets.IntSlider(min=0, max=1, description="slice", continuous_update=True)
        self.overlay_control = widgets.ToggleButtons(options=tuple(self._labels), description="overlay")
        self.alpha_control = widgets.FloatSlider(min=0.0, max=1.0, step=0.05, description="opacity")
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{display_width}px"))
        self.caption = widgets.HTML()
        controls = {"modality": self.modality_control, "plane": self.plane_control,
                    "index": self.index_control, "overlay": self.overlay_control, "alpha": self.alpha_control}
        for name, control in controls.items():
            control.observe(lambda change, name=name: self._on_control(name, change["new"]), names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.modality_control, self.alpha_control]), self.plane_control,
            self.overlay_control, self.index_control, self.image, self.caption, widgets.HTML(_legend_html()),
        ])

    def _on_control(self, name: str, value) -> None:
        if not self._syncing:
            self.set(**{name: value})

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            self.modality_control.value = self.modality
            self.plane_control.value = self.plane
            self.index_control.max = self.shape[plane_axis(self.affine, self.plane)] - 1
            self.index_control.value = self.index
            self.overlay_control.value = self.overlay
            self.alpha_control.value = self.alpha
        finally:
            self._syncing = False

    def _repr_mimebundle_(self, **kwargs):
        """Show the viewer's widgets when it is the last expression of a notebook cell."""
        return self.widget._repr_mimebundle_(**kwargs)
