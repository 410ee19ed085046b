"""Dice, 2 |P and T| / (|P| + |T|): of two masks, or of overlap counts pooled over many cases or batches.

``dice`` scores one mask pair; ``dice_from_counts`` scores rows of ``overlap.overlap_counts`` (the training loop pools
a validation set's counts, the threshold search one row per threshold). Both follow one empty-region rule, chosen by
name (``overlap.EMPTY_RULES``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from braintools.evaluation.overlap import boolean_pair, check_rule, empty_region_score

if TYPE_CHECKING:
    import torch


def dice(predicted: np.ndarray, truth: np.ndarray, empty: str = "brats") -> float:
    """Dice overlap 2|P and T| / (|P| + |T|) of two boolean masks; empty masks follow rule ``empty`` (notebook 04).

    Example:
        >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
        0.6666666666666666
    """
    predicted, truth = boolean_pair(predicted, truth)
    fixed = empty_region_score(predicted.any(), truth.any(), empty, best=1.0, worst=0.0)
    if fixed is not None:
        return fixed
    overlap = np.count_nonzero(predicted & truth)
    return float(2.0 * overlap / (np.count_nonzero(predicted) + np.count_nonzero(truth)))


def dice_from_counts(counts: np.ndarray | torch.Tensor, empty: str = "brats") -> np.ndarray:
    """Dice of every row (overlap, predicted, true) of ``counts`` (shape (..., 3)), float64.

    Example:
        >>> dice_from_counts(np.array([[2, 3, 1], [0, 0, 0]])).tolist()
        [1.0, 1.0]
        >>> dice_from_counts(np.array([[0, 0, 0], [0, 2, 0]]), empty="undefined").tolist()
        [nan, 0.0]
    """
    check_rule(empty)
    counts = np.asarray(counts.cpu() if hasattr(counts, "cpu") else counts, dtype=np.float64)
    overlap, predicted, true = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = 2 * overlap / (predicted + true)
    both, truth_empty, prediction_empty = (empty_region_score(p, t, empty, best=1.0, worst=0.0)
                                           for p, t in ((False, False), (True, False), (False, True)))
    scores = np.where((predicted == 0) & (true == 0), both, scores)
    scores = np.where((predicted > 0) & (true == 0), truth_empty, scores)
    return np.where((predicted == 0) & (true > 0), prediction_empty, scores)
