"""Every metric of the BraTS regions: Dice, HD95, sensitivity and specificity of WT, TC and ET (notebook 07)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from braintools.data.labels import REGIONS, regions_from_classes
from braintools.evaluation.dice import dice
from braintools.evaluation.hd95 import hd95
from braintools.evaluation.overlap import boolean_pair, check_rule, empty_region_score

METRICS = ("Dice", "HD95", "Sensitivity", "Specificity")


def sensitivity(predicted: np.ndarray, truth: np.ndarray, empty: str = "brats") -> float:
    """True-positive rate |P and T| / |T|; an empty truth scores like Dice under ``empty``."""
    predicted, truth = boolean_pair(predicted, truth)
    fixed = empty_region_score(predicted.any(), truth.any(), empty, best=1.0, worst=0.0)
    if fixed is not None:
        return fixed
    return float(np.count_nonzero(predicted & truth) / np.count_nonzero(truth))


def specificity(predicted: np.ndarray, truth: np.ndarray, empty: str = "brats") -> float:
    """True-negative rate |not P and not T| / |not T|; no negatives at all: 1 (``"brats"``) or NaN."""
    predicted, truth = boolean_pair(predicted, truth)
    check_rule(empty)
    negatives = np.count_nonzero(~truth)
    if negatives == 0:
        return 1.0 if empty == "brats" else math.nan
    return float(np.count_nonzero(~predicted & ~truth) / negatives)


def region_metrics(predicted_classes: np.ndarray, true_classes: np.ndarray,
                   spacing: Sequence[float] | np.ndarray | None = None, empty: str = "brats") -> dict[str, float]:
    """All metrics of the regions WT, TC, ET of two contiguous class maps (0..3): ``{"Dice_WT": ..., ...}``.
    Introduced in notebook 08.

    Args:
        predicted_classes, true_classes: contiguous class maps of the same shape.
        spacing: voxel size per axis in mm, or the 4 x 4 affine (default: 1 mm).
        empty: empty-region rule (``overlap.EMPTY_RULES``).
    """
    check_rule(empty)
    predicted_classes, true_classes = np.asarray(predicted_classes), np.asarray(true_classes)
    if predicted_classes.shape != true_classes.shape:
        raise ValueError(f"predicted classes {predicted_classes.shape} and true classes {true_classes.shape} differ "
                         "in shape")
    for name, classes in (("predicted classes", predicted_classes), ("true classes", true_classes)):
        if classes.size and (classes.min() < 0 or classes.max() > 3):
            raise ValueError(f"{name} must be contiguous classes 0..3, found {classes.min()}..{classes.max()} "
                             "(BraTS labels 0/1/2/4? convert them with labels.to_contiguous)")
    predicted_regions, true_regions = regions_from_classes(predicted_classes), regions_from_classes(true_classes)
    scores = {}
    for predicted, truth, region in zip(predicted_regions, true_regions, REGIONS):
        scores[f"Dice_{region}"] = dice(predicted, truth, empty)
        scores[f"HD95_{region}"] = hd95(predicted, truth, spacing, empty)
        scores[f"Sensitivity_{region}"] = sensitivity(predicted, truth, empty)
        scores[f"Specificity_{region}"] = specificity(predicted, truth, empty)
    return scores
