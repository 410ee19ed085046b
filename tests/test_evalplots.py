"""Figures of notebook 07: they draw what they are given and return matplotlib Figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from braintools.data import io
from braintools.viz.evaluation import error_overlay, plot_blending, plot_region_errors, plot_region_scores


def test_error_overlay_colours_hits_false_alarms_and_misses():
    gray = np.full((2, 2), 10.0)
    pred = np.array([[True, True], [False, False]])
    gt = np.array([[True, False], [True, False]])
    rgb = error_overlay(gray, pred, gt)
    assert rgb.shape == (2, 2, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[0, 0, 1] > rgb[0, 0, 0]  # hit: green
    assert rgb[0, 1, 0] > rgb[0, 1, 2]  # false alarm: red
    assert rgb[1, 0, 2] > rgb[1, 0, 0]  # miss: blue
    np.testing.assert_allclose(rgb[1, 1], [1, 1, 1])  # untouched gray


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
