"""Evaluation figures (notebooks 07 and 08): they draw what they are given and return matplotlib Figures."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from braintools.data import io
from braintools.viz.evaluation import (
    ERROR_COLOURS,
    REGION_ERRORS,
    VARIANT_COLOURS,
    _error_overlay,
    label_errors,
    plot_blending,
    plot_label_errors,
    plot_region_errors,
    plot_region_scores,
)

# Colour-vision deficiency simulation (Machado, Oliveira and Fernandes 2009, severity 1), on linear RGB.
DEFICIENCIES = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def seen_lab(colour, deficiency: str | None = None) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour as seen with full ``deficiency`` (None: normal vision)."""
    srgb = np.asarray(to_rgb(colour))
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if deficiency:
        linear = np.clip(np.asarray(DEFICIENCIES[deficiency]) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / [0.95047, 1.0, 1.08883], (6 / 29) ** 3))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colours, deficiency: str | None) -> float:
    return min(np.linalg.norm(seen_lab(a, deficiency) - seen_lab(b, deficiency))
               for a, b in itertools.combinations(colours, 2))


@pytest.mark.parametrize("deficiency", [None, *DEFICIENCIES])
def test_error_colours_stay_apart_with_colour_vision_deficiencies(deficiency):
    assert closest_pair(ERROR_COLOURS.values(), deficiency) >= 20  # CIELAB units: clearly different colours
    # the check has teeth: the former red / green / blue drops below it for deuteranopia
    if deficiency == "deuteranopia":
        assert closest_pair([(0.1, 0.8, 0.2), (0.95, 0.2, 0.1), (0.2, 0.5, 1.0)], deficiency) < 20


def test_error_overlay_colours_hits_false_alarms_and_misses():
    gray = np.full((2, 2), 10.0)
    pred = np.array([[True, True], [False, False]])
    gt = np.array([[True, False], [True, False]])
    rgb = _error_overlay(gray, pred, gt)
    assert rgb.shape == (2, 2, 3) and rgb.min() >= 0 and rgb.max() <= 1
    for (row, column), kind in zip([(0, 0), (0, 1), (1, 0)], REGION_ERRORS):
        np.testing.assert_allclose(rgb[row, column], 0.4 + 0.6 * np.asarray(to_rgb(ERROR_COLOURS[kind])))
    np.testing.assert_allclose(rgb[1, 1], [1, 1, 1])  # untouched gray


def test_label_errors_name_every_kind_of_disagreement():
    truth = np.array([0, 0, 2, 4, 4, 1, 2])
    predicted = np.array([0, 4, 0, 4, 1, 1, 4])
    # background, false alarm, missed, hit, wrong sub-region (ET as NCR), hit, wrong sub-region (ED as ET)
    assert label_errors(truth, predicted).tolist() == [0, 2, 3, 1, 4, 1, 4]
    assert list(ERROR_COLOURS) == ["hit (TP)", "false alarm (FP)", "missed (FN)", "wrong sub-region"]
    with pytest.raises(ValueError, match="shape"):
        label_errors(truth, predicted[:3])


def test_figures_are_built():
    assert isinstance(plot_blending((16, 16, 8), 40, 0.5), Figure)
    per_case = pd.DataFrame({"variant": ["a", "a", "b"], "Dice_WT": [0.5, 0.7, 0.9], "Dice_TC": [0.1, 0.2, 0.3],
                             "Dice_ET": [np.nan, 1.0, 0.0], "HD95_WT": [3.0, 4.0, 5.0], "HD95_TC": [1.0, 2, 3],
                             "HD95_ET": [0.0, 1, 2]})
    fig = plot_region_scores(per_case)
    assert len(fig.axes) == 6
    classes = np.zeros((8, 8, 4), np.uint8)
    classes[2:6, 2:6, 1:3] = 2
    classes[3:5, 3:5, 2] = 3
    fig = plot_region_errors(np.ones((8, 8, 4)), classes, np.roll(classes, 1, axis=0), io.brats_affine((8, 8, 4)), 2)
    assert len(fig.axes) == 3
    assert [text.get_text() for text in fig.legends[0].get_texts()] == list(REGION_ERRORS)


def test_label_error_view_shows_label_swaps():
    shape = (12, 14, 10)
    seg = np.zeros(shape, np.uint8)
    seg[3:9, 3:9, 2:8] = 2
    seg[4:8, 4:8, 3:7] = 4
    predicted = seg.copy()
    predicted[4:8, 4:8, 3:7] = 1  # the enhancing tumour called necrosis: WT right, ET all wrong
    predicted[0, 0, 5] = 2  # one false alarm
    image = np.ones((4, *shape), np.float32)
    case = io.Case("BraTS20_Training_001", image, seg, io.brats_affine(shape))
    fig = plot_label_errors(case, seg, predicted, voxel=(5, 5, 5), alpha=1.0, tag=" (synthetic)")
    assert "BraTS20_Training_001 (synthetic): prediction against the ground truth" in fig.get_suptitle()
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == [f"hit (TP): {np.count_nonzero(seg == 2)} voxels", "false alarm (FP): 1 voxels",
                      "missed (FN): 0 voxels", "wrong sub-region: 64 voxels"]
    axial = np.asarray(fig.axes[0].images[0].get_array())
    swapped = np.all(axial == np.round(np.asarray(to_rgb(ERROR_COLOURS["wrong sub-region"])) * 255), axis=-1)
    assert swapped.sum() == 16  # the 4 x 4 ET square of axial slice 5


def test_region_scores_join_each_case_and_show_hd95_medians():
    per_case = pd.DataFrame({
        "case_id": ["a", "b", "c"] * 2, "variant": ["plain"] * 3 + ["TTA"] * 3,
        "Dice_WT": [0.5, 0.6, 0.7, 0.6, 0.7, 0.9], "Dice_TC": [0.1, 0.2, 0.3, 0.2, 0.3, 0.4],
        "Dice_ET": [np.nan, 1.0, 0.0, 0.5, 1.0, 0.0], "HD95_WT": [3.0, 4.0, 373.13, 5.0, 6.0, 7.0],
        "HD95_TC": [1.0, 2, 3, 1, 2, 3], "HD95_ET": [0.0, 1, 2, 0, 1, 2]})
    fig = plot_region_scores(per_case, order=["plain", "TTA"])
    dice_wt, hd95_wt = fig.axes[0], fig.axes[3]
    grey_lines = [line for line in dice_wt.get_lines() if line.get_color() == "0.6"]
    assert len(grey_lines) == 3  # one line per case through its two variants
    np.testing.assert_allclose(sorted(line.get_ydata()[1] - line.get_ydata()[0] for line in grey_lines),
                               [0.1, 0.1, 0.2])
    assert [patch.get_height() for patch in dice_wt.patches] == pytest.approx([0.6, 0.7333333])  # means
    assert [patch.get_height() for patch in hd95_wt.patches] == pytest.approx([4.0, 6.0])  # medians, not 126.7
    assert any("373 mm" in text.get_text() for text in hd95_wt.texts)  # the penalty is named where it occurs
    assert not any("373 mm" in text.get_text() for text in fig.axes[4].texts)
    et_grey = [line for line in fig.axes[2].get_lines() if line.get_color() == "0.6"]
    assert len(et_grey[0].get_xdata()) == 1  # a NaN score is left out of its case's line
    colours = [tuple(collection.get_facecolor()[0][:3]) for collection in dice_wt.collections]
    assert colours == [to_rgb(VARIANT_COLOURS[0]), to_rgb(VARIANT_COLOURS[1])]
    assert closest_pair(VARIANT_COLOURS[:4], "deuteranopia") >= 10  # the first variants stay apart


def test_error_map_marks_the_patient_directions():
    classes = np.zeros((8, 8, 4), np.uint8)
    classes[2:6, 2:6, 1:3] = 2
    fig = plot_region_errors(np.ones((8, 8, 4)), classes, classes, io.brats_affine((8, 8, 4)), 2)
    for ax in fig.axes:
        assert sorted(text.get_text() for text in ax.texts) == ["A", "L", "P", "R"]
