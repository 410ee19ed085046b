"""Tests of braintools.viz.orientation, braintools.viz and braintools.viz.charts (small arrays, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only: render without a display

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from nibabel.orientations import axcodes2ornt, ornt_transform
from PIL import Image

from braintools.data import io
from braintools.data.preprocess import brain_mask, zscore_brain
from braintools.errors import DataError
from braintools.viz import charts, orientation
from braintools.viz.slices import (
    LABEL_COLOURS,
    LABEL_NAMES,
    MAX_GIF_FPS,
    REGION_COLOURS,
    _case_to_nifti,
    _colour_lookup,
    _display_box,
    _label_colormap,
    _label_legend_handles,
    _seg_to_nifti,
    _spread_slices,
    add_label_legend,
    blend_labels,
    check_seg,
    draw_orientation_letters,
    mark_edges,
    plot_montage,
    plot_nilearn_views,
    plot_plane_rows,
    plot_three_plane,
    render_slice,
    save_slices_gif,
    to_pil,
    tumour_centre,
    window_uint8,
)

SHAPE = (20, 24, 16)  # distinct sizes so a swapped axis cannot go unnoticed
LPS_AFFINE = io.brats_affine(SHAPE)
# In an LPS array the patient's left-anterior-superior corner is high i, low j, high k.
LAS_BLOB = (slice(15, 19), slice(1, 5), slice(12, 15))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lps_volume() -> np.ndarray:
    """A dim head-sized box with one bright blob at the patient's left-anterior-superior corner."""
    volume = np.zeros(SHAPE, dtype=np.float32)
    volume[2:-2, 2:-2, 2:-1] = 100.0
    volume[LAS_BLOB] = 1000.0
    return volume


def reorient(volume: np.ndarray, affine: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same head stored with other axis codes (nibabel does the bookkeeping)."""
    image = nib.Nifti1Image(volume, affine)
    moved = image.as_reoriented(ornt_transform(axcodes2ornt(nib.aff2axcodes(affine)), axcodes2ornt(codes)))
    return np.asarray(moved.dataobj), moved.affine


def blob_voxel(affine: np.ndarray) -> tuple[int, int, int]:
    """The array voxel (in this storage) of the blob centre."""
    world = nib.affines.apply_affine(LPS_AFFINE, (16, 2, 13))
    return tuple(int(round(v)) for v in nib.affines.apply_affine(np.linalg.inv(affine), world))


def quadrant(image: np.ndarray) -> tuple[str, str]:
    """Where the brightest pixels of a 2D display image are: ("top"/"bottom", "left"/"right")."""
    rows, columns = np.nonzero(image >= image.max() * 0.9)
    vertical = "top" if rows.mean() < image.shape[0] / 2 else "bottom"
    horizontal = "left" if columns.mean() < image.shape[1] / 2 else "right"
    return vertical, horizontal


def make_case(volume=None, affine=LPS_AFFINE, seg=None, case_id="test") -> io.Case:
    volume = lps_volume() if volume is None else volume
    image = np.stack([volume * factor for factor in (1.0, 1.5, 0.5, 2.0)]).astype(np.float32)
    return io.Case(case_id, image, seg, np.asarray(affine, dtype=np.float64))


def tumour_seg(shape=SHAPE) -> np.ndarray:
    seg = np.zeros(shape, dtype=np.uint8)
    seg[12:19, 1:7, 10:15] = 2
    seg[14:18, 2:6, 11:14] = 4
    seg[15:17, 3:5, 12:13] = 1
    return seg


# --- orientation --------------------------------------------------------------------------------------

# (plane, expected quadrant of a left-anterior-superior blob in the radiological display)
EXPECTED_SIDE = {"axial": ("top", "right"), "coronal": ("top", "right"), "sagittal": ("top", "left")}


@pytest.mark.parametrize("codes", ["LPS", "RAS", "PSL", "IRA"])
@pytest.mark.parametrize("plane", orientation.PLANES)
def test_marker_shows_on_the_patient_side_whatever_the_storage(codes, plane):
    volume, affine = reorient(lps_volume(), LPS_AFFINE, codes)
    voxel = blob_voxel(affine)
    assert volume[voxel] == 1000.0
    shown = orientation.display_slice(volume, affine, plane, voxel[orientation.plane_axis(affine, plane)])
    assert quadrant(shown) == EXPECTED_SIDE[plane]
    # every storage gives the very same picture
    reference = orientation.display_slice(lps_volume(), LPS_AFFINE, plane,
                                          (16, 2, 13)[orientation.plane_axis(LPS_AFFINE, plane)])
    np.testing.assert_array_equal(shown, reference)


def test_axis_codes_and_plane_axes_of_brats():
    assert orientation._axis_codes(LPS_AFFINE) == ("L", "P", "S")
    assert orientation.plane_axis(LPS_AFFINE, "axial") == 2
    assert orientation.plane_axis(LPS_AFFINE, "coronal") == 1
    assert orientation.plane_axis(LPS_AFFINE, "sagittal") == 0
    assert orientation._plane_axes(LPS_AFFINE, "axial") == (2, (1, False), (0, False))


def test_axis_codes_rejects_bad_affines():
    with pytest.raises(ValueError, match="4x4"):
        orientation._axis_codes(np.eye(3))
    with pytest.raises(ValueError, match="patient directions"):
        orientation._axis_codes(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="unknown plane"):
        orientation.plane_axis(LPS_AFFINE, "oblique")


def test_display_slice_keeps_channels_and_checks_index():
    rgb = np.zeros(SHAPE + (3,), dtype=np.uint8)
    assert orientation.display_slice(rgb, LPS_AFFINE, "axial", 0).shape == (24, 20, 3)
    assert orientation.display_slice(rgb, LPS_AFFINE, "sagittal", 0).shape == (16, 24, 3)
    assert orientation.display_slice(rgb, LPS_AFFINE, "coronal", 0).shape == (16, 20, 3)
    with pytest.raises(IndexError, match="outside 0..15"):
        orientation.display_slice(lps_volume(), LPS_AFFINE, "axial", 16)
    with pytest.raises(ValueError, match="3 dimensions"):
        orientation.display_slice(np.zeros((4, 4)), LPS_AFFINE, "axial", 0)


@pytest.mark.parametrize("codes", ["LPS", "RAS", "PSL"])
@pytest.mark.parametrize("plane", orientation.PLANES)
def test_display_position_finds_the_voxel(codes, plane):
    marked = np.zeros(SHAPE, dtype=np.float32)
    marked[3, 17, 9] = 1
    volume, affine = reorient(marked, LPS_AFFINE, codes)
    voxel = tuple(int(v) for v in np.argwhere(volume == 1)[0])
    shown = orientation.display_slice(volume, affine, plane, voxel[orientation.plane_axis(affine, plane)])
    assert shown[orientation.display_position(voxel, volume.shape, affine, plane)] == 1


def test_display_aspect_follows_the_voxel_size():
    affine = io.brats_affine(SHAPE, spacing=(1.0, 1.0, 2.5))
    assert orientation.display_aspect(affine, "axial") == pytest.approx(1.0)
    assert orientation.display_aspect(affine, "coronal") == pytest.approx(2.5)
    assert orientation.display_aspect(affine, "sagittal") == pytest.approx(2.5)


def test_mark_edges_writes_the_four_patient_directions():
    fig = Figure()
    axial, sagittal = fig.subplots(1, 2)
    mark_edges(axial, "axial")
    mark_edges(sagittal, "sagittal")
    placed = {(round(t.get_position()[0], 2), round(t.get_position()[1], 2)): t.get_text() for t in axial.texts}
    assert placed == {(0.5, 0.98): "A", (0.5, 0.02): "P", (0.02, 0.5): "R", (0.98, 0.5): "L"}
    assert sorted(t.get_text() for t in sagittal.texts) == ["A", "I", "P", "S"]


def test_edge_labels_are_radiological():
    assert orientation.edge_labels("axial") == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert orientation.edge_labels("coronal") == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert orientation.edge_labels("sagittal") == {"top": "S", "bottom": "I", "left": "A", "right": "P"}


# --- colours, legend, rendering -----------------------------------------------------------------------

def test_label_colours_are_distinct_and_named():
    assert set(LABEL_COLOURS) == set(LABEL_NAMES) == {1, 2, 4}
    assert len(set(LABEL_COLOURS.values())) == 3


def test_legend_shows_every_label_in_its_colour():
    fig, ax = plt.subplots()
    legend = add_label_legend(ax)
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts == ["NCR (1)", "ED (2)", "ET (4)"]
    colours = [tuple(handle.get_facecolor()) for handle in legend.legend_handles]
    assert colours == [to_rgba(LABEL_COLOURS[value]) for value in (1, 2, 4)]
    assert add_label_legend(fig).get_texts()[0].get_text() == "NCR (1)"
    handles = _label_legend_handles()
    assert [handle.get_label() for handle in handles] == texts


def test_label_colormap_maps_brats_values_to_the_scheme():
    cmap, norm = _label_colormap(), Normalize(vmin=0, vmax=4)
    for value, colour in LABEL_COLOURS.items():
        assert cmap(norm(value)) == to_rgba(colour)


def test_window_uint8_uses_the_brain_range():
    volume = np.zeros((10, 10, 10), dtype=np.float32)
    volume[2:8, 2:8, 2:8] = np.linspace(100, 200, 216).reshape(6, 6, 6)
    scaled = window_uint8(volume)
    assert scaled.dtype == np.uint8
    assert scaled[0, 0, 0] == 0 and scaled.max() == 255
    assert window_uint8(np.zeros((2, 2, 2))).max() == 0


def test_blend_labels_mixes_label_colours_by_alpha():
    gray = np.full((2, 3), 100, dtype=np.uint8)
    seg = np.array([[0, 1, 2], [4, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(blend_labels(gray, seg, alpha=0.0), blend_labels(gray, None))
    opaque = blend_labels(gray, seg, alpha=1.0)
    for (row, column), value in {(0, 1): 1, (0, 2): 2, (1, 0): 4}.items():
        expected = np.round(np.array(to_rgba(LABEL_COLOURS[value])[:3]) * 255)
        np.testing.assert_array_equal(opaque[row, column], expected)
    np.testing.assert_array_equal(opaque[0, 0], [100, 100, 100])
    with pytest.raises(ValueError, match="alpha"):
        blend_labels(gray, seg, alpha=1.5)
    with pytest.raises(ValueError, match="shape"):
        blend_labels(gray, seg[:, :2])


def test_blend_labels_takes_other_colours():
    gray = np.full((1, 3), 100, dtype=np.uint8)
    codes = np.array([[0, 3, 7]], dtype=np.uint8)
    opaque = blend_labels(gray, codes, alpha=1.0, colours={3: "#0072B2", 7: (1.0, 0.0, 0.0)})
    np.testing.assert_array_equal(opaque[0], [[100, 100, 100], [0, 114, 178], [255, 0, 0]])
    lookup = _colour_lookup({1: "white"})
    assert lookup.shape == (256, 3) and lookup[1].tolist() == [255, 255, 255] and not lookup[2].any()


def test_render_slice_is_display_oriented():
    gray = window_uint8(lps_volume())
    rgb = render_slice(gray, LPS_AFFINE, "axial", 13, tumour_seg(), alpha=0.5)
    assert rgb.shape == (24, 20, 3)
    assert quadrant(rgb.sum(axis=-1)) == ("top", "right")


def test_a_case_gives_each_modality_and_names_a_missing_one():
    case = make_case()
    np.testing.assert_array_equal(case.channel("t1"), case.image[0])
    with pytest.raises(ValueError, match="no modality 'dwi'"):
        case.channel("dwi")


def test_check_seg_rejects_wrong_shape_and_labels():
    assert check_seg(None, SHAPE) is None
    with pytest.raises(ValueError, match="shape"):
        check_seg(np.zeros((2, 2, 2), np.uint8), SHAPE)
    with pytest.raises(DataError, match="unexpected label values"):
        check_seg(np.full(SHAPE, 3, np.uint8), SHAPE)


def test_tumour_centre_spread_slices_and_display_box():
    assert tumour_centre(np.zeros(SHAPE)) is None
    seg = np.zeros(SHAPE, np.uint8)
    seg[4:7, 10:13, 2:5] = 2
    assert tumour_centre(seg) == (5, 11, 3)
    slices = _spread_slices(lps_volume(), LPS_AFFINE, "axial", 4)
    assert slices == [2, 6, 10, 14]
    with pytest.raises(ValueError, match="count"):
        _spread_slices(lps_volume(), LPS_AFFINE, "axial", 0)
    rows, columns = _display_box(lps_volume(), LPS_AFFINE, "axial", margin=1)
    assert (rows.start, rows.stop, columns.start, columns.stop) == (0, 23, 1, 20)  # blob reaches row 1


def test_to_pil_stretches_by_aspect_and_scale():
    rgb = np.zeros((10, 20, 3), dtype=np.uint8)
    assert to_pil(rgb).size == (20, 10)
    assert to_pil(rgb, aspect=2.5, scale=2).size == (40, 50)


def test_draw_orientation_letters_writes_on_the_image():
    image = Image.new("RGB", (120, 120))
    draw_orientation_letters(image, "axial", caption="axial 3")
    pixels = np.asarray(image)
    assert pixels[:, 100:].any() and pixels[:20].any()  # "L" at the right, "A" at the top


# --- figures ------------------------------------------------------------------------------------------

def test_montage_draws_chosen_slices_with_overlay_and_legend():
    case = make_case(seg=tumour_seg())
    fig = plot_montage(case, "flair", slices=[3, 8, 13], seg=case.seg, alpha=0.5, crop=False)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == ["axial 3", "axial 8", "axial 13"]
    assert fig.legends and fig.legends[0].get_texts()[0].get_text() == "NCR (1)"
    plain = plot_montage(case, "flair", slices=[13], crop=False)
    with_labels = drawn[2].images[0].get_array()
    assert not np.array_equal(plain.axes[0].images[0].get_array(), with_labels)
    assert quadrant(np.asarray(with_labels).sum(axis=-1)) == ("top", "right")


def test_montage_defaults_and_errors():
    case = make_case()
    fig = plot_montage(case, "t1", plane="sagittal", count=4)
    assert len([ax for ax in fig.axes if ax.images]) == 4
    with pytest.raises(ValueError, match="empty"):
        plot_montage(case, slices=[])
    with pytest.raises(DataError):
        plot_montage(case, seg=np.full(SHAPE, 7, np.uint8))


def test_gif_has_one_frame_per_slice_and_a_capped_rate(tmp_path):
    case = make_case(volume=np.zeros(SHAPE, np.float32))  # identical frames must not be merged
    path = save_slices_gif(case, tmp_path / "slices.gif", plane="coronal", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == SHAPE[1]
        assert gif.info["duration"] == 100
    with pytest.warns(UserWarning, match="cap"):
        fast = save_slices_gif(make_case(seg=tumour_seg()), tmp_path / "fast.gif", slices=[1, 5, 9, 12],
                                   seg=tumour_seg(), fps=100)
    with Image.open(fast) as gif:
        assert gif.n_frames == 4
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
        assert min(durations) >= 1000 / MAX_GIF_FPS
    with pytest.raises(ValueError, match="fps"):
        save_slices_gif(case, tmp_path / "bad.gif", fps=0)


def test_three_plane_view_rows_orientation_and_default_voxel():
    seg = tumour_seg()
    case = make_case(seg=seg)
    fig = plot_three_plane(case, "flair", seg=seg, prediction=np.zeros(SHAPE, np.uint8), crop=False)
    panels = np.array([ax for ax in fig.axes if ax.images]).reshape(3, 3)
    assert [ax.get_ylabel() for ax in panels[:, 0]] == ["image", "ground truth", "prediction"]
    centre = tumour_centre(seg)
    assert str(centre) in fig.get_suptitle()
    for ax, plane in zip(panels[0], ("axial", "sagittal", "coronal")):
        assert ax.get_title() == f"{plane} {centre[orientation.plane_axis(LPS_AFFINE, plane)]}"
        assert quadrant(np.asarray(ax.images[0].get_array()).sum(axis=-1)) == EXPECTED_SIDE[plane]
        letters = {text.get_text() for text in ax.texts}
        assert letters == set(orientation.edge_labels(plane).values())
    with pytest.raises(IndexError, match="outside"):
        plot_three_plane(case, voxel=(0, 0, 99))


def test_plane_rows_draw_each_named_row_in_its_colours():
    case = make_case()
    codes = np.zeros(SHAPE, np.uint8)
    codes[LAS_BLOB] = 9  # not a BraTS label: plot_plane_rows draws any codes with the colours it is given
    fig = plot_plane_rows(case, "flair", (16, 2, 13), [("image", None), ("codes", codes)], alpha=1.0,
                              colours={9: "#CC79A7"}, crop=False)
    panels = np.array([ax for ax in fig.axes if ax.images]).reshape(2, 3)
    assert [ax.get_ylabel() for ax in panels[:, 0]] == ["image", "codes"]
    axial = np.asarray(panels[1, 0].images[0].get_array())
    purple = np.all(axial == np.round(np.array(to_rgba("#CC79A7")[:3]) * 255), axis=-1)
    assert purple.any() and quadrant(purple.astype(float)) == EXPECTED_SIDE["axial"]
    assert not fig.get_suptitle() and not fig.legends  # the callers add them
    with pytest.raises(ValueError, match="shape"):
        plot_plane_rows(case, "flair", (1, 1, 1), [("codes", codes[:2])])
    with pytest.raises(IndexError, match="outside"):
        plot_plane_rows(case, "flair", (99, 1, 1), [("image", None)])


def test_figures_carry_the_synthetic_tag_next_to_the_case_id():
    case = make_case(seg=tumour_seg(), case_id="BraTS20_Training_001")
    tag = " (synthetic)"
    assert "BraTS20_Training_001 (synthetic): " in plot_three_plane(case, seg=case.seg, tag=tag).get_suptitle()
    assert "BraTS20_Training_001 (synthetic): " in plot_montage(case, count=2, tag=tag).get_suptitle()
    assert "(synthetic)" not in plot_montage(case, count=2).get_suptitle()
    table = charts.label_volume_table([case])
    assert charts.plot_label_volumes(table, tag=tag).axes[0].get_title().endswith(tag)
    assert charts.plot_intensity_histograms(case, modalities=("t1",), tag=tag).get_suptitle().endswith(tag)


def test_three_plane_view_is_the_same_for_ras_storage():
    volume, affine = reorient(lps_volume(), LPS_AFFINE, "RAS")
    seg, _ = reorient(tumour_seg().astype(np.float32), LPS_AFFINE, "RAS")
    case = make_case(volume=volume, affine=affine, seg=seg.astype(np.uint8))
    reference = make_case(seg=tumour_seg())
    shown = plot_three_plane(case, seg=case.seg, crop=False)
    expected = plot_three_plane(reference, seg=reference.seg, crop=False)
    for ax, ax_expected in zip(shown.axes, expected.axes):
        if ax.images:
            np.testing.assert_array_equal(ax.images[0].get_array(), ax_expected.images[0].get_array())


@pytest.mark.slow  # importing nilearn.plotting takes seconds
def test_nilearn_views_from_memory_and_from_a_file(tmp_path):
    case = make_case(seg=tumour_seg())
    anat = _case_to_nifti(case, "flair")
    assert anat.shape == SHAPE and np.allclose(anat.affine, LPS_AFFINE)
    fig = plot_nilearn_views(anat, _seg_to_nifti(case.seg, case.affine), title="memory")
    assert isinstance(fig, Figure) and fig.legends
    nib.save(anat, tmp_path / "flair.nii.gz")
    fig = plot_nilearn_views(tmp_path / "flair.nii.gz")
    assert isinstance(fig, Figure)
    with pytest.raises(DataError):
        _seg_to_nifti(np.full(SHAPE, 5, np.uint8), LPS_AFFINE)


@pytest.mark.slow  # importing nilearn.plotting takes seconds
def test_nilearn_sagittal_view_has_the_nose_on_the_left():
    """radiological=True flips every nilearn view, the sagittal one too: anterior left, as in the course."""
    volume = np.full(SHAPE, 100.0, np.float32)  # no zero margin: nilearn's crop keeps the grid
    fig = plot_nilearn_views(nib.Nifti1Image(volume, LPS_AFFINE), cut_coords=(-10.0, 12.0, 8.0))
    cuts = [ax for ax in fig.axes if ax.images]
    sagittal = [ax for ax in cuts if np.asarray(ax.images[-1].get_array()).shape == (SHAPE[2], SHAPE[1])]
    assert len(sagittal) == 1  # a sagittal cut shows Z rows x Y columns
    ax = sagittal[0]
    anterior, posterior = (ax.transData.transform((y, 8.0))[0] for y in (20.0, 3.0))  # world y: + is anterior
    assert anterior < posterior


@pytest.mark.real_data
def test_real_tumour_shows_on_the_patient_left(real_sample_dir):
    case = io.load_case(real_sample_dir / "Brats18_CBICA_ABM_1")
    centre = tumour_centre(case.seg)
    assert orientation._axis_codes(case.affine)[0] == "L" and centre[0] > case.seg.shape[0] / 2  # left side
    fig = plot_three_plane(case, "flair", seg=case.seg, crop=False)
    axial = np.asarray(fig.axes[0].images[0].get_array())  # image row: no overlay
    tumour = orientation.display_slice(case.seg, case.affine, "axial", centre[2]) > 0
    assert np.nonzero(tumour)[1].mean() > axial.shape[1] / 2  # patient left -> image right


# --- plots --------------------------------------------------------------------------------------------

def test_voxel_volume_and_label_volumes_in_millilitres():
    assert charts.voxel_volume_ml(LPS_AFFINE) == pytest.approx(0.001)
    assert charts.voxel_volume_ml(io.brats_affine(SHAPE, (2, 2, 2.5))) == pytest.approx(0.01)
    seg = np.zeros((10, 10, 10), np.uint8)
    seg[:5] = 2  # 500 voxels
    seg[5:7] = 1  # 200
    seg[7:] = 4  # 300
    volumes = charts._label_volumes(seg, io.brats_affine(seg.shape, (2, 2, 2)))  # 8 mm^3 = 0.008 mL each
    assert volumes == pytest.approx({"NCR": 1.6, "ED": 4.0, "ET": 2.4, "WT": 8.0, "TC": 4.0})
    with pytest.raises(ValueError, match="4x4"):
        charts.voxel_volume_ml(np.eye(3))
    with pytest.raises(DataError):
        charts._label_volumes(np.full((2, 2, 2), 3, np.uint8), LPS_AFFINE)


def test_label_volume_table_and_plot():
    cases = [make_case(seg=tumour_seg(), case_id="a"), make_case(case_id="no seg"),
             make_case(seg=np.zeros(SHAPE, np.uint8), case_id="b")]
    table = charts.label_volume_table(cases)
    assert list(table.index) == ["a", "b"]
    assert list(table.columns) == ["NCR_mL", "ED_mL", "ET_mL", "WT_mL", "TC_mL"]
    assert table.loc["a", "WT_mL"] == pytest.approx(np.count_nonzero(tumour_seg()) / 1000)
    assert table.loc["b"].sum() == 0
    fig = charts.plot_label_volumes(table)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["NCR", "ED", "ET", "WT", "TC"]
    assert len(fig.axes[0].collections) == 5
    with pytest.raises(ValueError, match="no volumes"):
        charts.plot_label_volumes(pd.DataFrame())


def test_intensity_histograms_per_modality_and_tissue():
    case = make_case(seg=tumour_seg())
    fig = charts.plot_intensity_histograms(case, modalities=("t1", "flair"), bins=10)
    assert [ax.get_title() for ax in fig.axes] == ["t1", "flair"]
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["brain (no tumour)", "NCR", "ED", "ET"]
    raw = charts.plot_intensity_histograms([case, case], modalities=("t2",), normalise=False)
    assert raw.axes[0].get_xlabel() == "intensity"
    with pytest.raises(ValueError, match="segmentation"):
        charts.plot_intensity_histograms(make_case())


def test_intensity_medians_are_the_numbers_behind_the_histograms():
    case = make_case(seg=tumour_seg())
    table = charts.intensity_medians(case, modalities=("t1", "flair"))
    assert list(table.index) == ["brain (no tumour)", "NCR", "ED", "ET"] and list(table.columns) == ["t1", "flair"]
    volumes = np.stack([case.channel(m) for m in ("t1", "flair")]).astype(np.float32)
    z = zscore_brain(volumes, brain_mask(volumes))
    assert table.loc["ED", "flair"] == pytest.approx(float(np.median(z[1][case.seg == 2])))
    assert table.loc["brain (no tumour)", "t1"] == pytest.approx(
        float(np.median(z[0][(case.seg == 0) & brain_mask(volumes)])))


def test_training_curves_plot_what_the_history_holds():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_dice_WT": 0.3 + 0.1 * e,
                "val_dice_TC": 0.2 + 0.1 * e, "val_dice_ET": 0.1 * e} for e in range(1, 5)]
    fig = charts.plot_training_curves(history)
    loss_ax, dice_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in dice_ax.get_lines()] == ["WT", "TC", "ET"]
    np.testing.assert_array_equal(dice_ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])
    assert dice_ax.get_lines()[2].get_color() == REGION_COLOURS["ET"]
    partial = charts.plot_training_curves([{"train_loss": 0.9}, {"train_loss": 0.5, "val_dice_WT": None}])
    assert len(partial.axes) == 1
    np.testing.assert_array_equal(partial.axes[0].get_lines()[0].get_xdata(), [1, 2])
    with pytest.raises(ValueError, match="none of the keys"):
        charts.plot_training_curves([{"epoch": 1}])


def test_training_curves_mark_where_each_freezing_phase_begins():
    phases = ["phase 1: decoder + head", "phase 2: decoder + head + encoder stages 4-5", "phase 3: everything",
              "phase 3: everything"]
    history = [{"epoch": e, "phase": phase, "train_loss": 1 / e} for e, phase in enumerate(phases, start=1)]
    fig = charts.plot_training_curves(history)
    ax = fig.axes[0]
    boundaries = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert boundaries == [1.5, 2.5]
    assert [text.get_text() for text in ax.texts] == ["phase 2", "phase 3"]
    unfrozen = charts.plot_training_curves([{**row, "phase": "fixed: nothing frozen"} for row in history])
    assert not [line for line in unfrozen.axes[0].get_lines() if line.get_linestyle() == ":"]
