"""Losses, checked against MONAI (DiceLoss, DiceCELoss, FocalLoss, DeepSupervisionLoss) as oracles."""

import pytest
import torch
from monai.losses import DeepSupervisionLoss as MonaiDeepSupervision
from monai.losses import DiceCELoss as MonaiDiceCE
from monai.losses import DiceLoss as MonaiDice
from monai.losses import FocalLoss as MonaiFocal

from braintools.data import labels
from braintools.training import losses


def _batch(shape=(3, 4, 12, 10), seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator) * 2
    classes = torch.randint(0, 4, (shape[0], *shape[2:]), generator=generator)
    classes[0] = torch.where(classes[0] == 3, 0, classes[0])  # one sample without ET
    return logits, classes


def test_one_hot_and_regions():
    classes = torch.tensor([[0, 1, 2, 3]])
    assert losses.one_hot(classes, 4)[0].tolist() == torch.eye(4).tolist()
    regions = labels.regions_from_classes(classes, axis=1).float()
    assert regions.shape == (1, 3, 4)
    assert regions[0].tolist() == [[0, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]


@pytest.mark.parametrize("batch_dice", [True, False])
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_ce_matches_monai(batch_dice, include_background):
    logits, classes = _batch()
    ours = losses.DiceCELoss(include_background=include_background, batch_dice=batch_dice)(logits, classes)
    oracle = MonaiDiceCE(to_onehot_y=True, softmax=True, include_background=include_background, batch=batch_dice)
    assert ours.item() == pytest.approx(oracle(logits, classes[:, None]).item(), rel=1e-5)


def test_dice_ce_weights_and_3d_input():
    logits, classes = _batch((2, 4, 6, 6, 4))
    dice_only = losses.DiceCELoss(ce_weight=0.0)(logits, classes)
    oracle = MonaiDice(to_onehot_y=True, softmax=True, batch=True)(logits, classes[:, None])
    assert dice_only.item() == pytest.approx(oracle.item(), rel=1e-5)
    ce_only = losses.DiceCELoss(dice_weight=0.0)(logits, classes)
    assert ce_only.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, classes).item(), rel=1e-5)


@pytest.mark.parametrize("batch_dice", [True, False])
def test_region_dice_bce_matches_monai(batch_dice):
    logits, classes = _batch((3, 3, 12, 10))
    regions = labels.regions_from_classes(classes, axis=1).float()
    ours = losses.RegionDiceBCELoss(batch_dice=batch_dice)(logits, classes)
    oracle = MonaiDice(sigmoid=True, batch=batch_dice)(logits, regions)
    oracle = oracle + torch.nn.functional.binary_cross_entropy_with_logits(logits, regions)
    assert ours.item() == pytest.approx(oracle.item(), rel=1e-5)
    assert losses.RegionDiceBCELoss(batch_dice=batch_dice)(logits, regions).item() == pytest.approx(ours.item())


def test_region_loss_needs_three_channels():
    logits, classes = _batch()
    with pytest.raises(ValueError, match="3 output channels"):
        losses.RegionDiceBCELoss()(logits, classes)


def test_weighted_dice_focal_regions_matches_monai():
    logits, classes = _batch((2, 3, 8, 8, 4))
    regions = labels.regions_from_classes(classes, axis=1).float()
    weights = [1.0, 2.0, 3.0]
    ours = losses.DiceFocalLoss("regions", class_weights=weights, gamma=2.0)(logits, classes)
    # MONAI multiplies each channel's loss by its weight and averages; ours divides by the weight sum.
    scaled = torch.tensor(weights) * 3 / sum(weights)
    dice = MonaiDice(sigmoid=True, batch=True, weight=scaled)(logits, regions)
    focal = MonaiFocal(gamma=2.0)(logits, regions)
    assert ours.item() == pytest.approx((dice + focal).item(), rel=1e-5)


def test_dice_focal_classes_matches_monai():
    logits, classes = _batch()
    ours = losses.DiceFocalLoss("classes", gamma=2.0, batch_dice=False)(logits, classes)
    dice = MonaiDice(to_onehot_y=True, softmax=True)(logits, classes[:, None])
    focal = MonaiFocal(to_onehot_y=True, gamma=2.0)(logits, classes[:, None])
    assert ours.item() == pytest.approx((dice + focal).item(), rel=1e-5)


def test_focal_with_gamma_zero_is_bce():
    logits, classes = _batch((2, 3, 6, 6))
    regions = labels.regions_from_classes(classes, axis=1).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, regions)
    assert losses._focal_bce_loss(logits, regions, gamma=0.0).item() == pytest.approx(bce.item(), rel=1e-6)
    assert losses._focal_bce_loss(logits, regions, gamma=2.0) < bce


def test_soft_dice_perfect_and_weight_checks():
    target = losses.one_hot(torch.tensor([[0, 1, 1, 2]]), 3)
    assert losses.soft_dice_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="weights"):
        losses.soft_dice_loss(target, target, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        losses.soft_dice_loss(target, target, weights=[0.0, 0.0, 0.0])


def test_target_shape_and_mode_are_checked():
    logits, classes = _batch()
    with pytest.raises(ValueError, match="target must be classes"):
        losses.DiceCELoss()(logits, classes[:, None])
    with pytest.raises(ValueError, match="mode"):
        losses.DiceFocalLoss("labels")


def test_half_precision_logits_give_a_float32_loss():
    logits, classes = _batch()
    loss = losses.DiceCELoss()(logits.half(), classes)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_deep_supervision_weights():
    assert losses.deep_supervision_weights(3, normalise=False) == [1.0, 0.5, 0.25]
    assert sum(losses.deep_supervision_weights(4)) == pytest.approx(1.0)


def test_resize_target_nearest():
    classes = torch.arange(16).reshape(1, 4, 4)
    assert losses._resize_target(classes, (2, 2)).tolist() == [[[5, 7], [13, 15]]]
    assert losses._resize_target(classes, (4, 4)) is classes


@pytest.mark.parametrize("normalise", [False, True])
def test_deep_supervision_matches_monai(normalise):
    logits, classes = _batch((2, 4, 16, 16, 8))
    generator = torch.Generator().manual_seed(1)
    outputs = [logits, torch.randn(2, 4, 8, 8, 4, generator=generator), torch.randn(2, 4, 4, 4, 2, generator=generator)]
    ours = losses.DeepSupervisionLoss(losses.DiceCELoss(batch_dice=False), normalise=normalise)(outputs, classes)
    oracle = MonaiDeepSupervision(MonaiDiceCE(to_onehot_y=True, softmax=True))(outputs, classes[:, None].float())
    scale = 1.75 if normalise else 1.0
    assert ours.item() == pytest.approx(oracle.item() / scale, rel=1e-5)
    single = losses.DeepSupervisionLoss(losses.DiceCELoss())(logits, classes)
    assert single.item() == pytest.approx(losses.DiceCELoss()(logits, classes).item())


def test_deep_supervision_scores_a_single_coarse_output_against_resized_labels():
    logits, classes = _batch((2, 4, 8, 8, 4))
    fine = classes.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)  # each voxel a 2x2x2 block
    ours = losses.DeepSupervisionLoss(losses.DiceCELoss())(logits, fine)
    assert ours.item() == pytest.approx(losses.DiceCELoss()(logits, classes).item(), rel=1e-6)


def test_losses_have_gradients():
    logits, classes = _batch()
    logits.requires_grad_(True)
    losses.DiceCELoss()(logits, classes).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
