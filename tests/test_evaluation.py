"""The evaluation kernel: one overlap count (NumPy and torch), Dice from masks and from counts, the empty rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from braintools.evaluation.dice import dice, dice_from_counts
from braintools.evaluation.hd95 import HD95_PENALTY_MM, hd95
from braintools.evaluation.overlap import (
    EMPTY_RULES,
    batch_counts,
    boolean_pair,
    check_rule,
    empty_region_score,
    overlap_counts,
    predicted_regions,
)


def test_overlap_counts_are_the_same_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    predicted, truth = rng.random((3, 5, 6)) < 0.4, rng.random((3, 5, 6)) < 0.3
    counts = overlap_counts(predicted, truth)
    expected = [[np.sum(p & t), np.sum(p), np.sum(t)] for p, t in zip(predicted, truth)]
    assert counts.tolist() == expected
    assert overlap_counts(torch.from_numpy(predicted), torch.from_numpy(truth)).tolist() == expected
    batch = np.stack([predicted, truth])  # (N=2, 3 regions, ...): summed over the batch too
    assert overlap_counts(batch, batch, region_axis=1).tolist() == [
        [int(batch[:, r].sum())] * 3 for r in range(3)]


def test_dice_from_counts_matches_dice_of_masks_under_every_rule():
    cases = [(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool)), (np.zeros(3, bool), np.zeros(3, bool)),
             (np.ones(3, bool), np.zeros(3, bool)), (np.zeros(3, bool), np.ones(3, bool))]
    for rule in EMPTY_RULES:
        from_masks = [dice(p, t, rule) for p, t in cases]
        from_counts = dice_from_counts(np.array([[np.sum(p & t), p.sum(), t.sum()] for p, t in cases]), rule)
        np.testing.assert_array_equal(from_counts, from_masks)


def test_the_empty_rules():
    both, truth_empty, prediction_empty = ((False, False), (True, False), (False, True))
    assert [empty_region_score(*pair, "brats", 1.0, 0.0) for pair in (both, truth_empty, prediction_empty)] == [
        1.0, 0.0, 0.0]
    ignore = [empty_region_score(*pair, "ignore", 1.0, 0.0) for pair in (both, truth_empty, prediction_empty)]
    assert math.isnan(ignore[0]) and math.isnan(ignore[1]) and ignore[2] == 0.0
    undefined = [empty_region_score(*pair, "undefined", 1.0, 0.0) for pair in (both, truth_empty, prediction_empty)]
    assert math.isnan(undefined[0]) and undefined[1:] == [0.0, 0.0]
    assert empty_region_score(True, True, "brats", 1.0, 0.0) is None
    assert hd95(np.zeros(4, bool), np.ones(4, bool)) == HD95_PENALTY_MM and hd95(np.zeros(4), np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="empty-region rule"):
        check_rule("never")
    with pytest.raises(ValueError, match="differ in shape"):
        boolean_pair(np.ones(2), np.ones(3))


def test_batch_counts_read_classes_regions_and_one_hot_targets():
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 3] = 1.0  # every pixel predicted ET
    classes = torch.tensor([[[0, 3], [3, 1]]])
    counts = batch_counts(logits, classes)
    assert counts.tolist() == [[3, 4, 3], [3, 4, 3], [2, 4, 2]]
    one_hot = torch.nn.functional.one_hot(classes, 4).permute(0, 3, 1, 2).float()
    assert torch.equal(batch_counts(logits, one_hot), counts)
    region_logits = torch.full((1, 3, 2, 2), -1.0)
    assert batch_counts(region_logits, torch.zeros(1, 3, 2, 2), "regions").sum() == 0
    assert predicted_regions(region_logits, "regions").dtype == torch.bool
