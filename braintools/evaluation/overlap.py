"""The one overlap count behind every Dice of the course, and the rules for regions that are empty.

Per region WT, TC, ET: the voxels in both masks (overlap), in the prediction, and in the truth. Dice, sensitivity and
their pooled versions (a whole validation set: sums of counts) all come from these three numbers. The same function
counts NumPy arrays (a case, notebook 07) and torch tensors (a batch on the GPU, summed there without waiting).

An empty region needs a rule, and every table says which one it used (``EMPTY_RULES``):

- ``"brats"`` (the challenge's): both empty -> the best score (Dice 1, HD95 0); only one empty -> the worst (Dice 0,
  HD95 373.13 mm);
- ``"ignore"``: an empty truth -> NaN, so the case leaves the region's mean; an empty prediction of a non-empty
  truth is still the worst score;
- ``"undefined"``: only the case where both are empty is NaN (0 / 0), e.g. to rank single slices by Dice.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from braintools.data.labels import regions_from_classes

if TYPE_CHECKING:
    import torch

BEST, WORST, LEFT_OUT = "best", "worst", "left out"
# rule -> score of (both empty, only the truth empty, only the prediction empty)
EMPTY_RULES = {
    "brats": (BEST, WORST, WORST),
    "ignore": (LEFT_OUT, LEFT_OUT, WORST),
    "undefined": (LEFT_OUT, WORST, WORST),
}


def check_rule(empty: str) -> None:
    """Raise ``ValueError`` unless ``empty`` names an empty-region rule.

    Example:
        >>> check_rule("brats")
    """
    if empty not in EMPTY_RULES:
        raise ValueError(f"empty-region rule must be one of {list(EMPTY_RULES)}, got {empty!r}")


def empty_region_score(predicted_any: bool, true_any: bool, empty: str, best: float, worst: float) -> float | None:
    """The score an empty region gets under rule ``empty`` (``None``: neither mask is empty, compute it).

    Example:
        >>> empty_region_score(False, False, "brats", best=1.0, worst=0.0)
        1.0
    """
    check_rule(empty)
    if predicted_any and true_any:
        return None
    both, truth_empty, prediction_empty = EMPTY_RULES[empty]
    outcome = both if not (predicted_any or true_any) else truth_empty if not true_any else prediction_empty
    return {BEST: best, WORST: worst, LEFT_OUT: math.nan}[outcome]


def boolean_pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two masks as boolean arrays of one shape (``ValueError`` if their shapes differ)."""
    predicted, truth = np.asarray(predicted).astype(bool, copy=False), np.asarray(truth).astype(bool, copy=False)
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction {predicted.shape} and truth {truth.shape} differ in shape")
    return predicted, truth


def overlap_counts(predicted: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
                   region_axis: int = 0) -> np.ndarray | torch.Tensor:
    """(overlap, predicted, true) voxel counts per region, shape (regions, 3), of two boolean region masks.

    The regions lie along ``region_axis``; every other axis is summed (``region_axis=1`` for a batch (N, 3, ...)).

    Example:
        >>> overlap_counts(np.array([[1, 1, 0]], bool), np.array([[1, 0, 0]], bool)).tolist()
        [[1, 2, 1]]
    """
    axes = tuple(axis for axis in range(predicted.ndim) if axis != region_axis)
    both = predicted & truth
    if isinstance(predicted, np.ndarray):
        return np.stack([both.sum(axes), predicted.sum(axes), truth.sum(axes)], axis=1)
    import torch  # tensors: the sums stay on their device

    return torch.stack([both.sum(axes), predicted.sum(axes), truth.sum(axes)], dim=1)


def predicted_regions(logits: torch.Tensor, output: str = "classes") -> torch.Tensor:
    """Boolean region masks (N, 3, ...) [WT, TC, ET] of logits: argmax classes, or sigmoid > 0.5 for regions."""
    if output == "classes":
        return regions_from_classes(logits.argmax(1), axis=1)
    if output == "regions":
        return logits > 0  # sigmoid(x) > 0.5
    raise ValueError(f"output must be 'classes' or 'regions', got {output!r}")


def batch_counts(logits: torch.Tensor, target: torch.Tensor, output: str = "classes") -> torch.Tensor:
    """``overlap_counts`` of a batch's logits against its target, int64 on the logits' device.

    ``target`` holds integer classes (N, ...), or a float tensor shaped like the logits (region masks for
    ``output="regions"``, one-hot classes otherwise).
    """
    if target.shape != logits.shape:  # integer classes
        truth = regions_from_classes(target, axis=1)
    else:  # region masks, or one-hot classes
        truth = target.bool() if output == "regions" else regions_from_classes(target.argmax(1), axis=1)
    return overlap_counts(predicted_regions(logits, output), truth, region_axis=1)
