"""2D -> 3D inflation: exact equivalence on volumes constant along Z, layer by layer and for smp U-Nets.

The equivalence tests of whole networks run in float64: the inflated network then matches the 2D one to
~1e-13, which shows the equivalence is exact, not approximate. In float32 the two networks add the same
numbers in a different order, so they differ by float32 rounding: the float32 test compares that
difference with the 2D model's own float32 rounding error.
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

from braintools.models.inflation import (
    InflatedConv3d,
    InflationOptions,
    UnsupportedLayerError,
    _find_unsupported_modules,
    _pad_depth,
    _same_padding,
    depth_constant_volume,
    inflate_2d_model_to_3d,
    inflate_conv_weight,
    max_slice_error,
)

smp = pytest.importorskip("segmentation_models_pytorch")
DEPTH = 8


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters (the defaults are an identity)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model


def _unet(encoder: str, dtype=torch.float64, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.Unet(encoder, encoder_weights=None, in_channels=4, classes=4, **kwargs)
    return _randomise_batchnorm(model).to(dtype).eval()


@pytest.fixture(scope="module")
def small_unet():
    """A 3-level smp Unet (resnet18 stem and first stages), float64: cheap tests of padding conventions."""
    return _unet("resnet18", encoder_depth=3, decoder_channels=(32, 16, 8))


def _constant_along_depth(x2d: torch.Tensor, depth: int = DEPTH) -> torch.Tensor:
    return x2d.unsqueeze(-1).expand(*x2d.shape, depth).contiguous()


def _max_slice_error(model_2d: nn.Module, model_3d: nn.Module, x2d: torch.Tensor) -> tuple[float, float]:
    """Largest |3D output - 2D output| over all slices of a Z-constant volume, and the 2D output scale."""
    with torch.no_grad():
        out_2d = model_2d(x2d)
        out_3d = model_3d(_constant_along_depth(x2d))
    assert out_3d.shape == out_2d.shape + (DEPTH,)
    return (out_3d - out_2d.unsqueeze(-1)).abs().max().item(), out_2d.abs().max().item()


# ---------------------------------------------------------------------------------------------- the key test


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet-b0", "timm-efficientnet-b0"])
def test_inflated_unet_equals_2d_unet_on_every_slice_of_a_depth_constant_volume(encoder):
    model_2d = _unet(encoder)
    model_3d = inflate_2d_model_to_3d(model_2d).eval()  # i3d weights, replicate padding along Z
    x2d = torch.randn(1, 4, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    error, scale = _max_slice_error(model_2d, model_3d, x2d)
    assert scale > 0.1  # a real signal, not all zeros
    assert error < 1e-5


@pytest.mark.parametrize("encoder", ["resnet34"])
def test_float32_inflated_unet_matches_to_float32_rounding(encoder):
    """In float32 the inflated model differs from the 2D one by no more than float32 rounding itself does.

    The yardstick is the 2D model's own float32 error (float32 vs the same weights in float64): a deep
    network with random BatchNorm statistics amplifies rounding, so a fixed tolerance would be arbitrary.
    """
    model_2d = _unet(encoder, torch.float32)
    model_3d = inflate_2d_model_to_3d(model_2d).eval()
    x2d = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(2))
    error, scale = _max_slice_error(model_2d, model_3d, x2d)
    with torch.no_grad():
        rounding = (model_2d(x2d).double() - _unet(encoder, torch.float64)(x2d.double())).abs().max().item()
    assert scale > 1.0
    assert error < 10 * rounding + 1e-6 * scale
    assert error < 1e-4 * scale


def test_center_mode_is_exact_with_either_depth_padding(small_unet):
    x2d = torch.randn(1, 4, 32, 32, dtype=torch.float64)
    for padding in ("zeros", "replicate"):
        model_3d = inflate_2d_model_to_3d(small_unet, mode="center", depth_padding=padding).eval()
        assert _max_slice_error(small_unet, model_3d, x2d)[0] < 1e-5


def test_i3d_with_zero_padding_is_not_exact_which_is_why_replicate_is_the_default(small_unet):
    model_3d = inflate_2d_model_to_3d(small_unet, mode="i3d", depth_padding="zeros").eval()
    x2d = torch.randn(1, 4, 32, 32, dtype=torch.float64)
    error, scale = _max_slice_error(small_unet, model_3d, x2d)
    assert error > 0.01 * scale


def test_zero_depth_padding_scales_the_border_slices_of_one_i3d_conv_by_two_thirds():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    x2d = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    expected = conv(x2d)
    with torch.no_grad():
        zeros = inflate_2d_model_to_3d(conv, depth_padding="zeros")(_constant_along_depth(x2d, 4))
        replicate = inflate_2d_model_to_3d(conv, depth_padding="replicate")(_constant_along_depth(x2d, 4))
    torch.testing.assert_close(zeros[..., 1:-1], _constant_along_depth(expected, 2))  # interior exact
    torch.testing.assert_close(zeros[..., 0], expected * 2 / 3)  # a third of the kernel met zeros
    torch.testing.assert_close(replicate, _constant_along_depth(expected, 4))


def test_center_mode_without_depth_downsampling_is_the_2d_model_slice_by_slice_on_any_volume(small_unet):
    model_3d = inflate_2d_model_to_3d(small_unet, mode="center", downsample_depth=False).eval()
    volume = torch.randn(1, 4, 32, 32, 3, dtype=torch.float64)  # not constant along Z
    with torch.no_grad():
        out_3d = model_3d(volume)
        slices = torch.stack([small_unet(volume[..., z]) for z in range(volume.shape[-1])], dim=-1)
    assert (out_3d - slices).abs().max().item() < 1e-5


# ---------------------------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def resnet_pair():
    model_2d = _unet("resnet18", torch.float32, encoder_depth=3, decoder_channels=(32, 16, 8))
    return model_2d, inflate_2d_model_to_3d(model_2d)


def test_original_model_is_untouched_and_state_dict_keys_are_kept(resnet_pair):
    model_2d, model_3d = resnet_pair
    assert isinstance(model_2d.encoder.conv1, nn.Conv2d) and not isinstance(model_2d.encoder.conv1, nn.Conv3d)
    assert model_3d.encoder.conv1.weight.shape == (64, 4, 7, 7, 3)
    assert list(model_3d.state_dict()) == list(model_2d.state_dict())
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)) for m in model_3d.modules())


def test_inflated_model_trains_and_handles_any_depth(resnet_pair):
    _, model_3d = resnet_pair
    model_3d.train()
    out = model_3d(torch.randn(2, 4, 16, 16, 5))  # Z need not divide by the output stride
    assert out.shape == (2, 4, 16, 16, 5)
    out.mean().backward()
    assert model_3d.encoder.conv1.weight.grad is not None
    model_3d.zero_grad()


def test_inflated_unet_checks_its_input_shape(resnet_pair):
    _, model_3d = resnet_pair
    with pytest.raises(ValueError, match="divisible by 8"):
        model_3d(torch.zeros(1, 4, 36, 32, 8))
    with pytest.raises(ValueError, match=r"\(N, C, X, Y, Z\)"):
        model_3d(torch.zeros(1, 4, 64, 64))


def test_inflated_model_can_be_saved_whole(resnet_pair):
    _, model_3d = resnet_pair
    buffer = io.BytesIO()
    torch.save(model_3d, buffer)
    buffer.seek(0)
    assert type(torch.load(buffer, weights_only=False)) is type(model_3d)


def test_efficientnet_trains_with_drop_connect_on_a_batch_of_two():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_2d = smp.Unet("efficientnet-b0", encoder_weights=None, in_channels=4, classes=4, encoder_depth=3,
                            decoder_channels=(32, 16, 8))
    model_3d = inflate_2d_model_to_3d(model_2d).train()
    out = model_3d(torch.randn(2, 4, 32, 32, 4))
    assert out.shape == (2, 4, 32, 32, 4)
    out.mean().backward()


def test_dtype_train_mode_and_frozen_parameters_are_kept():
    model_2d = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)).double().eval()
    model_2d[0].weight.requires_grad_(False)
    model_3d = inflate_2d_model_to_3d(model_2d)
    assert model_3d[0].weight.dtype == torch.float64
    assert not model_3d.training and not model_3d[1].training
    assert not model_3d[0].weight.requires_grad and model_3d[0].bias.requires_grad


# ---------------------------------------------------------------------------------------------- layers


def _assert_equivalent(layer_2d: nn.Module, x2d: torch.Tensor, **options) -> nn.Module:
    layer_2d = layer_2d.double().eval()
    layer_3d = inflate_2d_model_to_3d(layer_2d, **options).eval()
    x2d = x2d.double()
    with torch.no_grad():
        expected, got = layer_2d(x2d), layer_3d(_constant_along_depth(x2d, 6))
    if got.ndim == expected.ndim + 1:  # a feature map: compare every slice
        expected = _constant_along_depth(expected, got.shape[-1])
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    return layer_3d


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_every_supported_torch_layer_is_exact_on_depth_constant_input():
    torch.manual_seed(0)
    layers = nn.Sequential(
        nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(3, 4, 3, stride=2), nn.InstanceNorm2d(4, affine=True),
        nn.ReflectionPad2d(1), nn.Conv2d(4, 4, 5, padding="same", dilation=2, groups=2), nn.ReLU(),
        nn.Conv2d(4, 4, 4, padding="same"),  # asymmetric: PyTorch pads 1 before, 2 after
        nn.ReplicationPad2d((0, 1, 1, 0)), nn.ConstantPad2d(1, 0.5), nn.AvgPool2d(3, 2, padding=1),
        nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.UpsamplingNearest2d(scale_factor=2), nn.UpsamplingBilinear2d(scale_factor=2), nn.Dropout2d(0.5),
        nn.AdaptiveMaxPool2d((3, 2)), nn.Conv2d(4, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )
    _assert_equivalent(layers, torch.randn(2, 3, 15, 17))


@pytest.mark.parametrize("options", [{"depth_kernel": 1}, {"depth_kernel": 5}, {"downsample_depth": False},
                                     {"mode": "center", "depth_padding": "zeros"}])
def test_options_keep_the_equivalence(options):
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.MaxPool2d(2),
                           nn.Conv2d(3, 3, 3, padding=1), nn.Upsample(scale_factor=2))
    _randomise_batchnorm(layers)
    layer_3d = _assert_equivalent(layers, torch.randn(1, 2, 16, 16), **options)
    depth_kernel = options.get("depth_kernel", 3)
    assert layer_3d[0].weight.shape[-1] == depth_kernel
    assert layer_3d[0].stride[-1] == (1 if options.get("downsample_depth") is False else 2)


def test_smp_and_timm_same_padding_convolutions_keep_their_asymmetric_padding():
    from segmentation_models_pytorch.encoders._efficientnet import (
        Conv2dDynamicSamePadding,
        Conv2dStaticSamePadding,
    )
    from timm.layers import Conv2dSame

    torch.manual_seed(0)
    layers = nn.Sequential(Conv2dStaticSamePadding(2, 3, 5, stride=2, image_size=(15, 17)),
                           Conv2dDynamicSamePadding(3, 3, 3, stride=2), Conv2dSame(3, 2, 3, stride=2))
    layer_3d = _assert_equivalent(layers, torch.randn(1, 2, 15, 17))
    assert all(isinstance(m, InflatedConv3d) for m in layer_3d)


def test_timm_batchnorm_act_and_squeeze_excite_are_converted():
    from timm.layers import BatchNormAct2d
    from timm.models._efficientnet_blocks import SqueezeExcite

    layers = nn.Sequential(BatchNormAct2d(4, act_layer=nn.SiLU), SqueezeExcite(4, rd_ratio=0.5))
    _randomise_batchnorm(layers)
    _assert_equivalent(layers, torch.randn(2, 4, 8, 8))


# ---------------------------------------------------------------------------------------------- helpers


def test_inflate_conv_weight_i3d_sums_back_to_the_2d_kernel_and_center_is_one_slice():
    weight = torch.randn(5, 4, 3, 3)
    i3d = inflate_conv_weight(weight, 3, "i3d")
    assert i3d.shape == (5, 4, 3, 3, 3)
    torch.testing.assert_close(i3d.sum(-1), weight)
    center = inflate_conv_weight(weight, 5, "center")
    torch.testing.assert_close(center[..., 2], weight)
    assert center[..., [0, 1, 3, 4]].abs().sum() == 0
    with pytest.raises(ValueError, match="mode"):
        inflate_conv_weight(weight, 3, "mean")
    with pytest.raises(ValueError, match=r"\(O, I, kx, ky\)"):
        inflate_conv_weight(torch.zeros(3, 3), 3)


def test_pad_depth_replicates_or_zeros_only_the_last_axis():
    x = torch.arange(6.0).reshape(1, 1, 1, 2, 3)
    replicated = _pad_depth(x, 1, 2)
    assert replicated.shape == (1, 1, 1, 2, 6)
    assert replicated[0, 0, 0, 0].tolist() == [0, 0, 1, 2, 2, 2]
    assert _pad_depth(x, 1, 0, "zeros")[0, 0, 0, 1].tolist() == [0, 3, 4, 5]
    assert _pad_depth(x, 0, 0) is x


def test_same_padding_matches_tensorflow():
    assert _same_padding(64, 3, 2, 1) == (0, 1)
    assert _same_padding(15, 5, 2, 1) == (2, 2)
    assert _same_padding(8, 3, 1, 2) == (2, 2)
    assert _same_padding(8, 1, 2, 1) == (0, 0)


def test_inflation_options_are_validated():
    with pytest.raises(ValueError, match="mode"):
        inflate_2d_model_to_3d(nn.Conv2d(1, 1, 3), mode="mean")
    with pytest.raises(ValueError, match="odd"):
        InflationOptions(depth_kernel=2)
    with pytest.raises(ValueError, match="depth_padding"):
        InflationOptions(depth_padding="reflect")
    assert InflationOptions().depth_kernel_for((1, 1)) == 1
    assert InflationOptions(downsample_depth=False).depth_stride_for((2, 2)) == 1


# ---------------------------------------------------------------------------------------------- errors


class _Custom2dBlock(nn.Module):
    """A block whose forward could hide a 2D-only call: must be refused."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv(x)


def test_unsupported_modules_are_listed_with_path_and_type():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Sequential(_Custom2dBlock(), nn.LSTM(1, 1)),
                          nn.Upsample(size=(4, 4)), nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"))
    problems = _find_unsupported_modules(model)
    assert problems == [
        "1.0 (test_inflation._Custom2dBlock): no 3D conversion known for this type",
        "1.1 (torch.nn.modules.rnn.LSTM): no 3D conversion known for this type",
        "2 (torch.nn.modules.upsampling.Upsample): a fixed output size (only scale_factor)",
        "3 (torch.nn.modules.conv.Conv2d): padding_mode='reflect' (only 'zeros')",
    ]
    with pytest.raises(UnsupportedLayerError, match=r"cannot inflate 4 module\(s\)[\s\S]*1.0 \(test_inflation"):
        inflate_2d_model_to_3d(model)


def test_an_unsupported_smp_architecture_names_its_decoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.FPN("resnet18", encoder_weights=None, encoder_depth=3)
    with pytest.raises(UnsupportedLayerError, match=r"decoder \(segmentation_models_pytorch\.decoders\.fpn"):
        inflate_2d_model_to_3d(model)


# ---------------------------------------------------------------------------------------------- notebook helpers


def test_depth_constant_volume_and_max_slice_error_measure_the_equivalence(small_unet):
    x2d = torch.randn(1, 4, 32, 32, dtype=torch.float64)
    volume = depth_constant_volume(x2d, 5)
    assert volume.shape == (1, 4, 32, 32, 5) and torch.equal(volume[..., 3], x2d)
    error, scale = max_slice_error(small_unet, inflate_2d_model_to_3d(small_unet), x2d, depth=5)
    assert error < 1e-10 and scale > 0.1
    wrong, _ = max_slice_error(small_unet, inflate_2d_model_to_3d(small_unet, depth_padding="zeros"), x2d, depth=5)
    assert wrong > 1e-3
