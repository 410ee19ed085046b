"""The 3D U-Net: shapes, deep supervision, input checks, parameter count, training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from braintools.models.unet3d import ConvBlock3d, UNet3D, count_parameters

TINY = (4, 8, 16)  # three levels: inputs divisible by 4


def test_output_shape_is_logits_per_class():
    model = UNet3D(in_channels=4, num_classes=4, features=TINY).eval()
    x = torch.randn(2, 4, 16, 12, 8)
    assert model(x).shape == (2, 4, 16, 12, 8)


def test_default_architecture_has_four_levels_and_instance_norm():
    model = UNet3D()
    assert model.features == (32, 64, 128, 256) and model.size_divisor == 8
    kinds = {type(m) for m in model.modules()}
    assert {nn.InstanceNorm3d, nn.LeakyReLU, nn.ConvTranspose3d} <= kinds
    assert not kinds & {nn.BatchNorm3d, nn.Upsample}
    convs_per_level = [sum(isinstance(m, nn.Conv3d) for m in block.modules()) for block in model.encoder]
    assert convs_per_level == [2, 2, 2, 2]


def test_deep_supervision_returns_decreasing_resolutions_in_training_only():
    model = UNet3D(features=(4, 8, 16, 32), deep_supervision=True).train()
    x = torch.randn(1, 4, 16, 16, 8)
    outputs = model(x)
    assert isinstance(outputs, list)
    assert [tuple(o.shape) for o in outputs] == [(1, 4, 16, 16, 8), (1, 4, 8, 8, 4), (1, 4, 4, 4, 2)]
    model.eval()
    with torch.no_grad():
        full = model(x)
    assert isinstance(full, torch.Tensor) and full.shape == (1, 4, 16, 16, 8)


def test_without_deep_supervision_training_returns_a_tensor():
    model = UNet3D(features=TINY).train()
    assert isinstance(model(torch.randn(1, 4, 8, 8, 8)), torch.Tensor)
    assert len(model.deep_heads) == 0


@pytest.mark.parametrize("shape", [(1, 4, 10, 16, 8), (1, 4, 16, 16, 6)])
def test_indivisible_input_is_a_clear_error(shape):
    model = UNet3D(features=TINY)
    with pytest.raises(ValueError, match="divisible by 4.*e.g. to"):
        model(torch.zeros(shape))


def test_wrong_rank_and_bad_features_are_clear_errors():
    with pytest.raises(ValueError, match="5D tensor"):
        UNet3D(features=TINY)(torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="at least 2"):
        UNet3D(features=(8,))


def test_count_parameters_matches_manual_sum_and_respects_freezing():
    model = UNet3D(features=TINY)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    for p in model.encoder.parameters():
        p.requires_grad = False
    frozen = sum(p.numel() for p in model.encoder.parameters())
    assert count_parameters(model) == total - frozen
    assert count_parameters(model, trainable_only=False) == total
    assert count_parameters(nn.Linear(3, 2)) == 8


def test_conv_block_has_two_convolutions():
    block = ConvBlock3d(4, 6)
    assert block(torch.randn(1, 4, 4, 4, 4)).shape == (1, 6, 4, 4, 4)
    assert sum(isinstance(m, nn.Conv3d) for m in block) == 2


def test_one_training_step_reduces_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = UNet3D(features=TINY, deep_supervision=True)
    x = torch.randn(2, 4, 8, 8, 8)
    target = (x[:, :1] > 0).long().squeeze(1)  # a learnable rule: class 1 where channel 0 is positive
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = sum(  # every output level, each against the target subsampled to its size
            nn.functional.cross_entropy(logits, target[:, :: 2**k, :: 2**k, :: 2**k])
            for k, logits in enumerate(model(x))
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.deep_heads.parameters())


@pytest.mark.parametrize("name", ["ci", "course", "kaggle"])
def test_every_profile_patch_fits_its_unet3d(name):
    from braintools.profiles import get_profile

    profile = get_profile(name)
    divisor = UNet3D(features=profile.features_3d).size_divisor * profile.downsample_3d
    assert all(size % divisor == 0 for size in profile.patch_size_3d)
    assert profile.accumulation_steps_3d >= 1 and 0.0 <= profile.tumour_probability_3d <= 1.0
    assert profile.val_patches_3d >= 1 and profile.learning_rate_3d > 0
