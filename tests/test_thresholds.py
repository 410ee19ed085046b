"""Per-region threshold search, region -> class conversion and the post-processing hook."""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from braintools.data import labels
from braintools.inference import postprocess
from braintools.training import losses, thresholds, train


class Passthrough(nn.Module):
    """A "model" whose inputs are already logits (a dummy parameter gives it a device)."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def test_region_probabilities_from_softmax_and_sigmoid():
    logits = torch.randn(2, 4, 5, 5)
    p = torch.softmax(logits, 1)
    regions = thresholds._region_probabilities(logits)
    assert torch.allclose(regions[:, 0], 1 - p[:, 0]) and torch.allclose(regions[:, 2], p[:, 3])
    assert torch.allclose(regions[:, 1], p[:, 1] + p[:, 3])
    assert torch.allclose(thresholds._region_probabilities(logits[:, :3], "regions"), torch.sigmoid(logits[:, :3]))
    with pytest.raises(ValueError):
        thresholds._region_probabilities(logits, "labels")


def test_threshold_counts():
    probabilities = torch.tensor([0.2, 0.6, 0.9, 0.4]).view(1, 1, 4).repeat(1, 3, 1)
    truth = torch.tensor([0, 1, 1, 1]).view(1, 1, 4).repeat(1, 3, 1)
    counts = thresholds._threshold_counts(probabilities, truth, [0.3, 0.5])
    assert counts.shape == (3, 2, 3)
    assert counts[0].tolist() == [[3, 3, 3], [2, 2, 3]]


def _region_loader():
    """ET probability 0.3 on true ET pixels and 0.12 elsewhere: the best ET threshold is below 0.3, not 0.5."""
    classes = torch.zeros(4, 8, 8, dtype=torch.long)
    classes[:, 2:6, 2:6] = 2
    classes[:, 3:5, 3:5] = 3
    probabilities = labels.regions_from_classes(classes, axis=1).float() * 0.8 + 0.1
    probabilities[:, 2] = torch.where(classes == 3, 0.3, 0.12)
    return DataLoader(TensorDataset(torch.logit(probabilities), classes), batch_size=2)


def test_search_finds_the_best_threshold_per_region():
    table = thresholds.search_thresholds(Passthrough(), _region_loader(), output="regions", progress=False)
    assert list(table.columns) == ["WT", "TC", "ET"] and table.index.name == "threshold"
    assert table.loc[0.5, "ET"] == 0.0 and table.loc[0.15, "ET"] == 1.0 and table.loc[0.1, "ET"] < 1.0
    best = thresholds.best_thresholds(table)
    assert best["ET"] == 0.15 and best["WT"] == 0.1
    tuned = thresholds._pipeline_dice(Passthrough(), _region_loader(), best, output="regions", progress=False)
    default = thresholds._pipeline_dice(Passthrough(), _region_loader(), None, output="regions", progress=False)
    assert tuned["ET"] == 1.0 and default["ET"] == 0.0


def test_classes_from_regions_nests_the_regions():
    regions = np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 1], [1, 0, 0, 0, 1]], bool)
    assert labels.classes_from_regions(regions).tolist() == [3, 1, 2, 0, 3]
    probabilities = torch.tensor([[[0.9], [0.2], [0.6]]])
    assert thresholds.apply_thresholds(probabilities).tolist() == [[3]]
    assert thresholds.apply_thresholds(probabilities, {"ET": 0.7}).tolist() == [[2]]


def test_pipeline_with_argmax_matches_fit_validation_dice():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, 8, 8, generator=generator)
    classes = torch.randint(0, 4, (6, 8, 8), generator=generator)
    loader = DataLoader(TensorDataset(logits, classes), batch_size=4)
    scores = thresholds._pipeline_dice(Passthrough(), loader, progress=False)
    expected = train.evaluate(Passthrough(), loader, losses.DiceCELoss())
    assert [scores[r] for r in ("WT", "TC", "ET")] == pytest.approx(
        [expected["val_dice_WT"], expected["val_dice_TC"], expected["val_dice_ET"]])


def test_postprocessing_hook_runs_on_every_sample():
    classes = torch.zeros(2, 8, 8, dtype=torch.long)
    classes[:, 2:6, 2:6] = 2
    logits = losses.one_hot(classes, 4) * 10
    logits[:, 2, 0, 7] = 20  # one stray edema pixel per slice: a false positive
    loader = DataLoader(TensorDataset(logits, classes), batch_size=2)
    raw = thresholds._pipeline_dice(Passthrough(), loader, progress=False)
    cleanup = functools.partial(postprocess.postprocess_classes, min_component_size=2)
    cleaned = thresholds._pipeline_dice(Passthrough(), loader, postprocess=cleanup, progress=False)
    assert raw["WT"] < 1.0 and cleaned["WT"] == 1.0


def test_collected_predictions_give_the_same_tables_as_running_the_model():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 4, 8, 8, generator=generator) * 3
    classes = torch.randint(0, 4, (7, 8, 8), generator=generator)
    loader = DataLoader(TensorDataset(logits, classes), batch_size=3)
    collected = thresholds.collect_predictions(Passthrough(), loader, progress=False)
    assert len(collected) == 7 and collected.probabilities.shape == (7, 3, 8, 8)
    assert collected.probabilities.dtype == np.float16 and collected.argmax.dtype == np.uint8
    table = thresholds.threshold_table(collected, chunk=2)
    expected = thresholds.search_thresholds(Passthrough(), loader, progress=False)
    assert np.allclose(table.to_numpy(), expected.to_numpy(), atol=0.02)  # float16 probabilities
    assert thresholds._predictions_dice(collected) == pytest.approx(
        thresholds._pipeline_dice(Passthrough(), loader, progress=False))
    cleanup = functools.partial(postprocess.postprocess_classes, min_component_size=3)
    cut = {"WT": 0.4, "TC": 0.5, "ET": 0.3}
    assert thresholds._predictions_dice(collected, cut, cleanup, chunk=4) == pytest.approx(
        thresholds._pipeline_dice(Passthrough(), loader, cut, cleanup, progress=False), abs=0.02)


def test_collect_predictions_needs_a_batch():
    with pytest.raises(ValueError, match="no batch"):
        thresholds.collect_predictions(Passthrough(), [], progress=False)


def test_per_case_dice_pools_each_patients_slices():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 4, 8, 8, generator=generator) * 3
    classes = torch.randint(0, 4, (6, 8, 8), generator=generator)
    collected = thresholds.collect_predictions(Passthrough(), DataLoader(TensorDataset(logits, classes), 4),
                                               progress=False)
    case_ids = ["b", "b", "a", "b", "a", "a"]
    table = thresholds.per_case_dice(collected, case_ids)
    assert list(table["case_id"]) == ["b", "a"]
    for case_id in ("a", "b"):
        samples = [i for i, c in enumerate(case_ids) if c == case_id]
        expected = thresholds._predictions_dice(collected.subset(samples))
        assert table.set_index("case_id").loc[case_id].tolist() == pytest.approx(list(expected.values()))
    cut = {"WT": 0.3, "TC": 0.6, "ET": 0.7}
    first = thresholds.per_case_dice(collected, case_ids, cut).iloc[0, 1:].tolist()
    assert first == pytest.approx(list(thresholds._predictions_dice(collected.subset([0, 1, 3]), cut).values()))
    with pytest.raises(ValueError, match="5 case ids for 6"):
        thresholds.per_case_dice(collected, case_ids[:5])


def test_sample_dice_scores_every_slice_and_leaves_absent_regions_out():
    truth = np.zeros((3, 4, 4), np.uint8)
    truth[0, :2, :2] = 2  # edema only
    truth[1, :2, :2] = 3  # enhancing tumour
    predicted = truth.copy()
    predicted[0, 2, 2] = 2  # one false alarm on slice 0
    predicted[1] = 0  # slice 1: the tumour is missed
    scores = thresholds.sample_dice(predicted, truth)
    assert scores.shape == (3, 3)
    assert scores[0, 0] == pytest.approx(8 / 9) and np.isnan(scores[0, 1:]).all()
    assert scores[1].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(scores[2]).all()  # nothing to find, nothing found
