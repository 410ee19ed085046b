"""Tests of braintools.viz.widgets.SliceViewer, driven from code (no browser needed)."""

from __future__ import annotations

import numpy as np
import pytest

from braintools.data import io
from braintools.viz import orientation
from braintools.viz.slices import render_slice, tumour_centre, window_uint8
from braintools.viz.widgets import SliceViewer

SHAPE = (20, 24, 16)
AFFINE = io.brats_affine(SHAPE)  # LPS


def make_case() -> io.Case:
    """Four different modalities, a bright blob at the patient's left-anterior-superior corner, a tumour."""
    rng = np.random.default_rng(0)
    image = np.zeros((4,) + SHAPE, dtype=np.float32)
    image[:, 2:-2, 2:-2, 2:-1] = rng.uniform(50, 150, (4, 16, 20, 13))
    image[:, 15:19, 1:5, 12:15] = 1000.0
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[4:9, 12:18, 5:9] = 2
    seg[5:8, 13:17, 6:8] = 4
    seg[6, 14:16, 6:8] = 1
    return io.Case("tiny", image, seg, AFFINE)


@pytest.fixture
def viewer() -> SliceViewer:
    case = make_case()
    prediction = np.where(case.seg > 0, 2, 0).astype(np.uint8)
    return SliceViewer(case, prediction=prediction)


def test_starts_on_the_tumour_centre_with_a_png(viewer):
    assert viewer.voxel == list(tumour_centre(make_case().seg))
    assert (viewer.modality, viewer.plane, viewer.overlay) == ("flair", "axial", "ground truth")
    assert viewer.image_bytes.startswith(b"\x89PNG")
    assert viewer.current_rgb().shape == (24, 20, 3)  # axial: rows A->P (Y), columns R->L (X)
    assert viewer.index_control.max == SHAPE[2] - 1 and viewer.index_control.value == viewer.index


@pytest.mark.parametrize("change", [{"modality": "t1"}, {"plane": "sagittal"}, {"index": 3},
                                    {"overlay": "prediction"}, {"overlay": "none"}, {"alpha": 0.9}])
def test_every_control_changes_the_image(viewer, change):
    before_rgb, before_png = viewer.current_rgb(), viewer.image_bytes
    viewer.set(**change)
    after = viewer.current_rgb()
    assert before_rgb.shape != after.shape or not np.array_equal(before_rgb, after)
    assert viewer.image_bytes != before_png


def test_opacity_zero_equals_no_overlay(viewer):
    viewer.set(alpha=0.0)
    invisible = viewer.current_rgb()
    viewer.set(overlay="none", alpha=0.5)
    np.testing.assert_array_equal(invisible, viewer.current_rgb())


def test_plane_change_keeps_the_cut_point_and_moves_the_controls(viewer):
    voxel = tuple(viewer.voxel)
    viewer.set(plane="sagittal")
    assert viewer.index == voxel[0] and viewer.plane_control.value == "sagittal"
    assert viewer.index_control.max == SHAPE[0] - 1 and viewer.index_control.value == voxel[0]
    assert viewer.current_rgb().shape == (16, 24, 3)  # rows S->I (Z), columns A->P (Y)
    viewer.set(plane="coronal", index=2)
    assert viewer.voxel == [voxel[0], 2, voxel[2]]


def test_widgets_drive_the_viewer(viewer):
    viewer.modality_control.value = "t2"
    viewer.plane_control.value = "coronal"
    viewer.index_control.value = 7
    viewer.overlay_control.value = "prediction"
    viewer.alpha_control.value = 1.0
    assert (viewer.modality, viewer.plane, viewer.index, viewer.overlay, viewer.alpha) == (
        "t2", "coronal", 7, "prediction", 1.0)
    expected = render_slice(window_uint8(make_case().channel("t2")), AFFINE, "coronal", 7,
                                viewer._labels["prediction"], 1.0)
    np.testing.assert_array_equal(viewer.current_rgb(), expected)


@pytest.mark.parametrize("plane, side", [("axial", ("top", "right")), ("coronal", ("top", "right")),
                                         ("sagittal", ("top", "left"))])
def test_patient_left_anterior_superior_blob_is_drawn_radiologically(viewer, plane, side):
    viewer.set(overlay="none", voxel=(16, 2, 13), plane=plane)
    gray = viewer.current_rgb()[..., 0]
    rows, columns = np.nonzero(gray == 255)
    assert ("top" if rows.mean() < gray.shape[0] / 2 else "bottom",
            "left" if columns.mean() < gray.shape[1] / 2 else "right") == side
    assert orientation.edge_labels(plane)["top"] in ("A", "S")


def test_bad_requests_are_refused_clearly(viewer):
    with pytest.raises(ValueError, match="unknown modality"):
        viewer.set(modality="dwi")
    with pytest.raises(ValueError, match="unknown plane"):
        viewer.set(plane="oblique")
    with pytest.raises(IndexError, match="outside 0..15"):
        viewer.set(index=16)
    with pytest.raises(IndexError, match="outside the volume"):
        viewer.set(voxel=(0, 0, 99))
    with pytest.raises(ValueError, match="alpha"):
        viewer.set(alpha=2)
    no_prediction = SliceViewer(make_case())
    assert no_prediction.overlay_control.options == ("none", "ground truth")
    with pytest.raises(ValueError, match="not available"):
        no_prediction.set(overlay="prediction")


def test_works_with_a_synthetic_int16_case_without_seg():
    case = make_case()
    synthetic_like = io.Case("synthetic", case.image.astype(np.int16), None, AFFINE)
    viewer = SliceViewer(synthetic_like, modality="t1ce", plane="coronal")
    assert viewer.overlay == "none" and viewer.voxel == [10, 12, 8]
    assert viewer.modality_control.options == io.MODALITIES


def test_displays_as_a_widget(viewer):
    bundle = viewer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
