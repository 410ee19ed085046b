"""Plots of notebook 04: threshold curves and 2D slice overlays (Agg backend, small arrays)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only: render without a display

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from braintools.viz import charts


def test_threshold_curves_mark_the_chosen_thresholds():
    table = pd.DataFrame({"WT": [0.5, 0.9, 0.8], "TC": [0.6, 0.7, 0.75], "ET": [0.2, 0.4, 0.3]},
                         index=pd.Index([0.3, 0.5, 0.7], name="threshold"))
    fig = charts.plot_threshold_curves(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted((float(dot.get_xdata()[0]), float(dot.get_ydata()[0])) for dot in dots) == [
        (0.5, 0.4), (0.5, 0.9), (0.7, 0.75)]
    with pytest.raises(ValueError, match="empty threshold table"):
        charts.plot_threshold_curves(table.iloc[:0])


def test_slice_overlays_show_radiological_slices_with_label_colours():
    images = np.zeros((2, 4, 12, 10), np.float32)
    images[:, 3, 2:10, 2:8] = 1.0
    images[:, 3, 9, 2:8] = 2.0  # a bright line at high X: the patient's left, shown on the image right
    classes = np.zeros((2, 12, 10), np.uint8)
    classes[0, 4:6, 4:6] = 3  # ET
    fig = charts.plot_slice_overlays(images, {"truth": classes, "prediction": classes}, titles=["a", "b"])
    axes = fig.axes
    assert len(axes) == 4 and axes[0].get_ylabel() == "truth" and axes[0].get_title() == "a"
    shown = axes[0].get_images()[0].get_array()
    assert shown.shape == (10, 12, 3)  # rows = Y (anterior up), columns = X
    assert shown[5, 9].tolist() == [255, 255, 255] and shown[5, 2].tolist() != [255, 255, 255]
    assert shown[0, 0].tolist() == [0, 0, 0]  # background is black
    assert shown[4, 4, 2] > shown[4, 4, 0]  # ET is blue
    assert all(sorted(text.get_text() for text in ax.texts) == ["A", "L", "P", "R"] for ax in axes)
    with pytest.raises(ValueError, match="do not match"):
        charts.plot_slice_overlays(images, {"truth": classes[:1]})


def test_hidden_modality_shows_the_visible_the_hidden_and_the_drawn_sequence():
    image = np.zeros((4, 12, 10), np.float32)
    image[:, 2:10, 2:8] = np.arange(1, 5, dtype=np.float32)[:, None, None]
    image[3, 9, 2:8] = 8.0  # a bright line at high X (the patient's left): shown on the image right
    prediction = image.copy()
    prediction[3, 2:10, 2:8] += 0.5  # off by 0.5 in the brain
    fig = charts.plot_hidden_modality(image, prediction, hidden=3, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["t1 (seen)", "t1ce (seen)", "t2 (seen)"] and titles[3].startswith("flair: hidden")
    answer, drawn, error = (ax.get_images()[0] for ax in fig.axes[3:])
    assert answer.get_array().shape == (10, 12)  # rows = Y (anterior up), columns = X
    assert answer.get_array()[5, 9] == 8.0 and answer.get_array()[5, 2] == 4.0
    assert answer.get_clim() == drawn.get_clim()  # one gray scale for the answer and the drawing
    assert np.allclose(error.get_array()[2:8, 2:10], 0.5) and error.get_array()[0, 0] == 0
    with pytest.raises(ValueError, match="no brain"):
        charts.plot_hidden_modality(np.zeros_like(image), prediction, 3)
    with pytest.raises(ValueError, match="expected image"):
        charts.plot_hidden_modality(image, prediction[:3], 3)
