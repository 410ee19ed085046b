"""Inflate a 2D network (e.g. an ImageNet-pretrained smp U-Net) into a 3D one ("I3D" inflation).

**Axes.** The 2D model saw axial slices ``volume[..., z]``, tensors (N, C, X, Y). The 3D model takes
(N, C, X, Y, Z): every in-plane kernel keeps its (X, Y) shape and gains an extent along Z, the last axis.

**Weights.** A 2D kernel ``w`` of a Conv2d becomes a 3D kernel of depth ``kd`` (``depth_kernel`` for kernels
larger than 1x1, 1 for 1x1 kernels):

- ``mode="i3d"``: ``w / kd`` repeated ``kd`` times along Z (Carreira & Zisserman 2017). On a volume that is
  constant along Z each window sums ``kd`` copies of ``w / kd`` times the same slice: exactly the 2D output.
- ``mode="center"``: ``w`` in the centre depth slice, zeros elsewhere: each slice at first only sees itself.

BatchNorm statistics and affine parameters are copied; pools, upsampling, padding and dropout get their
3D twins. With ``downsample_depth=True`` (default) every 2D stride also strides Z, as for isotropic data.

**Padding convention (why the equivalence is exact).** In-plane padding stays exactly the 2D model's.
Along Z, windowed layers pad ``(kd - 1) // 2`` slices on each side by *replicating* the first and last slice
(``depth_padding="replicate"``, default). A volume constant along Z stays constant after such padding, so
every depth window sees ``kd`` equal slices, at the borders too, and the output on every slice equals the
2D model's output. With zero padding, an I3D kernel of depth 3 at the first slice sums only 2 of its 3 copies:
that slice gets 2/3 of the 2D response of the layer (plus the bias), and since strides shrink Z to a few slices,
the error then reaches every slice of a thin volume. ``mode="center"`` is exact with either padding (padded
slices meet zero weights). Max-pooling keeps PyTorch's -inf padding, which is exact for constant inputs.

**Functional calls.** Replacing modules does not reach 2D operations written inside a ``forward``. The ones
in the supported encoders and decoder are handled by *forward swaps*: the block keeps its sub-modules and
weights and its class is switched to a 3D subclass whose ``forward`` is the same code with the 3D call:

- smp ``UnetDecoder`` / ``UnetDecoderBlock``: target sizes of ``F.interpolate`` were (height, width);
- smp EfficientNet ``MBConvBlock``: ``F.adaptive_avg_pool2d`` in squeeze-excitation, 4D drop-connect;
- timm ``SqueezeExcite``: ``x.mean((2, 3))``;
- smp ``Unet.check_input_shape``: read the last two axes (now Y, Z) instead of X, Y;
- smp/timm "same" convolutions (``Conv2dStaticSamePadding``, ``Conv2dDynamicSamePadding``, ``Conv2dSame``)
  call ``F.conv2d`` after TF-style padding: replaced by ``InflatedConv3d`` with that in-plane padding.

Any module whose type is not known (neither converted nor known to be dimension-agnostic) stops the
inflation with ``UnsupportedLayerError`` listing each module path and type: an unknown ``forward`` could
hide a 2D-only call, and a silent wrong network is worse than a clear error.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import timm.layers
import torch
import torch.nn.functional as F
from torch import nn

from braintools.models.inflated_blocks import (
    FORWARD_SWAPS,
    INTERPOLATION_3D,
    SmpMBConvBlock,
    smp_effnet,
)

MODES = ("i3d", "center")
DEPTH_PADDINGS = ("replicate", "zeros")


class UnsupportedLayerError(TypeError):
    """The 2D network holds modules that ``inflate_2d_model_to_3d`` cannot convert (listed in the message).
    Introduced in notebook 06."""


@dataclass(frozen=True)
class InflationOptions:
    """How 2D layers become 3D: weight rule, depth kernel, depth padding, and whether Z is downsampled."""

    mode: str = "i3d"
    depth_kernel: int = 3
    depth_padding: str = "replicate"
    downsample_depth: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.depth_padding not in DEPTH_PADDINGS:
            raise ValueError(f"depth_padding must be one of {DEPTH_PADDINGS}, got {self.depth_padding!r}")
        if not isinstance(self.depth_kernel, int) or self.depth_kernel < 1 or self.depth_kernel % 2 == 0:
            raise ValueError(f"depth_kernel must be an odd positive integer, got {self.depth_kernel!r}")

    def depth_kernel_for(self, kernel_2d: tuple[int, int]) -> int:
        """Depth of the kernel inflated from ``kernel_2d``: 1 for 1x1 kernels, ``depth_kernel`` otherwise."""
        return 1 if max(kernel_2d) == 1 else self.depth_kernel

    def depth_stride_for(self, stride_2d: tuple[int, int]) -> int:
        """Stride along Z: the in-plane stride when ``downsample_depth``, else 1."""
        return min(stride_2d) if self.downsample_depth else 1


# ----------------------------------------------------------------------------------------------------------
# Weights and 3D layers
# ----------------------------------------------------------------------------------------------------------


def inflate_conv_weight(weight: torch.Tensor, depth: int, mode: str = "i3d") -> torch.Tensor:
    """Turn a Conv2d weight (O, I, kx, ky) into a Conv3d weight (O, I, kx, ky, depth) (notebook 06).

    Args:
        weight: the 2D kernel.
        depth: kernel extent along Z.
        mode: ``"i3d"`` (repeat along Z, divide by ``depth``) or ``"center"`` (only the centre slice).

    Example:
        >>> inflate_conv_weight(torch.ones(1, 1, 3, 3), 3).sum().item()
        9.0
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a Conv2d weight (O, I, kx, ky), got shape {tuple(weight.shape)}")
    if mode == "i3d":
        return (weight / depth).unsqueeze(-1).expand(*weight.shape, depth).contiguous()
    if mode == "center":
        inflated = weight.new_zeros(weight.shape + (depth,))
        inflated[..., depth // 2] = weight
        return inflated
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _pad_depth(x: torch.Tensor, before: int, after: int, mode: str = "replicate") -> torch.Tensor:
    """Pad the last axis (Z) of a 5D tensor by ``before``/``after`` slices, replicating or with zeros (notebook 06)."""
    if before == 0 and after == 0:
        return x
    torch_mode = "replicate" if mode == "replicate" else "constant"
    return F.pad(x, (before, after, 0, 0, 0, 0), mode=torch_mode)


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis: the output has ceil(size / stride) entries.
    Introduced in notebook 06."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class InflatedConv3d(nn.Conv3d):
    """A Conv3d made from a Conv2d: the 2D model's in-plane padding, plus its own padding along Z.

    Args:
        plane_padding: extra zero padding (y_before, y_after, x_before, x_after) applied before the
            convolution (asymmetric "same" padding of TF-style convs), ``"same"`` to compute it per input
            like TensorFlow, or ``None`` when the symmetric in-plane padding lives in ``padding``.
        depth_padding: ``"replicate"`` or ``"zeros"`` for the ``(kd - 1) // 2`` slices padded on each side of Z.
        Other arguments as ``nn.Conv3d`` (``padding`` in (X, Y, Z) order; Z padding is handled here).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, plane_padding: tuple[int, int, int, int] | str | None = None,
                 depth_padding: str = "replicate", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         device=device, dtype=dtype)
        self.plane_padding = plane_padding
        self.depth_padding = depth_padding
        kd = self.kernel_size[2]
        self.depth_pad = (kd - 1) // 2 if depth_padding == "replicate" else 0
        if depth_padding == "zeros":
            self.padding = (self.padding[0], self.padding[1], (kd - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad Z (replicate), pad the plane (TF "same" if asked), then convolve."""
        x = _pad_depth(x, self.depth_pad, self.depth_pad, self.depth_padding)
        if self.plane_padding == "same":
            y_pad = _same_padding(x.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
            x_pad = _same_padding(x.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
            x = F.pad(x, (0, 0) + y_pad + x_pad)
        elif self.plane_padding is not None:
            x = F.pad(x, (0, 0) + tuple(self.plane_padding))
        return super().forward(x)


class InflatedAvgPool3d(nn.AvgPool3d):
    """An AvgPool3d whose Z padding replicates the border slices (in-plane padding as in 2D)."""

    def __init__(self, *args, depth_pad: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.depth_pad = depth_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate-pad Z, then average-pool."""
        return super().forward(_pad_depth(x, self.depth_pad, self.depth_pad, "replicate"))


# ----------------------------------------------------------------------------------------------------------
# Converters: one function per 2D layer type, each returning the 3D layer
# ----------------------------------------------------------------------------------------------------------


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _finish(new: nn.Module, old: nn.Module) -> nn.Module:
    """Give ``new`` the device, dtype, train/eval mode and frozen parameters of ``old`` (before copying weights)."""
    reference = next(old.parameters(), None)
    if reference is not None:
        new.to(device=reference.device, dtype=reference.dtype)
    new.train(old.training)
    frozen = {name for name, p in old.named_parameters(recurse=False) if not p.requires_grad}
    for name, parameter in new.named_parameters(recurse=False):
        parameter.requires_grad_(name not in frozen)
    return new


def _conv_plane_padding(conv: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """Split a Conv2d's padding into symmetric (px, py) for the conv and an optional asymmetric extra pad."""
    if conv.padding == "valid":
        return (0, 0), None
    if conv.padding == "same":  # PyTorch puts the odd pixel after
        totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if all(t % 2 == 0 for t in totals):
            return (totals[0] // 2, totals[1] // 2), None
        (tx, ty) = totals
        return (0, 0), (ty // 2, ty - ty // 2, tx // 2, tx - tx // 2)
    return _pair(conv.padding), None


def _inflate_conv(conv: nn.Conv2d, options: InflationOptions, plane_padding=None, plane=None) -> InflatedConv3d:
    kx, ky = conv.kernel_size
    kd = options.depth_kernel_for((kx, ky))
    if plane is None:
        plane, plane_padding = _conv_plane_padding(conv)
    # skip_init: no random initialisation (slow for big kernels), weights are copied right after; created
    # with the 2D weight's device and dtype, so float64 weights are copied without rounding.
    new = nn.utils.skip_init(
        InflatedConv3d, conv.in_channels, conv.out_channels, (kx, ky, kd),
        stride=tuple(conv.stride) + (options.depth_stride_for(conv.stride),),
        padding=tuple(plane) + (0,), dilation=tuple(conv.dilation) + (1,), groups=conv.groups,
        bias=conv.bias is not None, plane_padding=plane_padding, depth_padding=options.depth_padding,
        device=conv.weight.device, dtype=conv.weight.dtype,
    )
    new = _finish(new, conv)
    with torch.no_grad():
        new.weight.copy_(inflate_conv_weight(conv.weight.detach(), kd, options.mode))
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())
    return new


def _inflate_static_same_conv(conv: nn.Conv2d, options: InflationOptions) -> InflatedConv3d:
    """smp EfficientNet's ``Conv2dStaticSamePadding``: a ZeroPad2d (or Identity) then F.conv2d."""
    static = getattr(conv, "static_padding", None)
    extra = tuple(static.padding) if isinstance(static, nn.ZeroPad2d) else None
    return _inflate_conv(conv, options, plane_padding=extra, plane=_pair(conv.padding))


def _inflate_dynamic_same_conv(conv: nn.Conv2d, options: InflationOptions) -> InflatedConv3d:
    """TF-style "same" convs (smp ``Conv2dDynamicSamePadding``, timm ``Conv2dSame``): padding per input."""
    return _inflate_conv(conv, options, plane_padding="same", plane=_pair(conv.padding))


def _batchnorm_arguments(bn: nn.modules.batchnorm._BatchNorm) -> dict:
    return dict(num_features=bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                track_running_stats=bn.track_running_stats)


def _inflate_batchnorm(bn: nn.BatchNorm2d, options: InflationOptions) -> nn.BatchNorm3d:
    new = _finish(nn.BatchNorm3d(**_batchnorm_arguments(bn)), bn)
    new.load_state_dict(bn.state_dict())
    return new


def _inflate_instancenorm(norm: nn.InstanceNorm2d, options: InflationOptions) -> nn.InstanceNorm3d:
    new = nn.InstanceNorm3d(norm.num_features, eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                            track_running_stats=norm.track_running_stats)
    new = _finish(new, norm)
    new.load_state_dict(norm.state_dict())
    return new


class BatchNormAct3d(nn.BatchNorm3d):
    """3D twin of timm's ``BatchNormAct2d``: batch norm, then its ``drop`` and ``act`` sub-modules."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise, drop, activate."""
        return self.act(self.drop(super().forward(x)))


def _inflate_batchnorm_act(bn: nn.BatchNorm2d, options: InflationOptions) -> BatchNormAct3d:
    new = _finish(BatchNormAct3d(**_batchnorm_arguments(bn)), bn)
    new.drop, new.act = bn.drop, bn.act  # converted later, like every child
    new.load_state_dict(bn.state_dict())
    return new


def _pool_geometry(pool: nn.Module, options: InflationOptions) -> tuple[tuple, tuple, tuple, int]:
    """3D (kernel, stride, in-plane padding, depth padding) of a 2D pool; Z pooled only if downsampling."""
    kernel, padding = _pair(pool.kernel_size), _pair(pool.padding)
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if options.downsample_depth:
        return kernel + (kernel[0],), stride + (stride[0],), padding, padding[0]
    return kernel + (1,), stride + (1,), padding, 0


def _inflate_maxpool(pool: nn.MaxPool2d, options: InflationOptions) -> nn.MaxPool3d:
    kernel, stride, padding, depth_pad = _pool_geometry(pool, options)
    dilation = _pair(pool.dilation) + (1,)
    new = nn.MaxPool3d(kernel, stride, padding + (depth_pad,), dilation, pool.return_indices, pool.ceil_mode)
    return _finish(new, pool)


def _inflate_avgpool(pool: nn.AvgPool2d, options: InflationOptions) -> InflatedAvgPool3d:
    kernel, stride, padding, depth_pad = _pool_geometry(pool, options)
    divisor = pool.divisor_override * kernel[2] if pool.divisor_override else None
    new = InflatedAvgPool3d(kernel, stride, padding + (0,), pool.ceil_mode, pool.count_include_pad, divisor,
                            depth_pad=depth_pad)
    return _finish(new, pool)


def _adaptive_size(output_size) -> int | tuple:
    """(1, 1) (global pooling) becomes 1 (global in 3D); other sizes keep Z as it is (None)."""
    size = _pair(output_size)
    return 1 if size == (1, 1) else size + (None,)


def _inflate_adaptive_avgpool(pool: nn.AdaptiveAvgPool2d, options: InflationOptions) -> nn.Module:
    return _finish(nn.AdaptiveAvgPool3d(_adaptive_size(pool.output_size)), pool)


def _inflate_adaptive_maxpool(pool: nn.AdaptiveMaxPool2d, options: InflationOptions) -> nn.Module:
    return _finish(nn.AdaptiveMaxPool3d(_adaptive_size(pool.output_size), pool.return_indices), pool)


def _inflate_upsample(up: nn.Upsample, options: InflationOptions) -> nn.Upsample:
    scale = _pair(up.scale_factor)
    depth_scale = scale[0] if options.downsample_depth else 1.0
    new = nn.Upsample(scale_factor=tuple(float(s) for s in scale) + (float(depth_scale),),
                      mode=INTERPOLATION_3D[up.mode], align_corners=up.align_corners,
                      recompute_scale_factor=up.recompute_scale_factor)
    return _finish(new, up)


def _inflate_pad(pad: nn.Module, options: InflationOptions) -> nn.Module:
    """(y_before, y_after, x_before, x_after) in 2D becomes (0, 0, y..., x...) in 3D: Z is not padded."""
    padding = (0, 0) + tuple(pad.padding)
    kind = type(pad).__name__.replace("2d", "3d")
    if isinstance(pad, nn.ConstantPad2d):  # ZeroPad2d is a ConstantPad2d in recent PyTorch
        return _finish(nn.ConstantPad3d(padding, pad.value), pad)
    return _finish(getattr(nn, kind)(padding), pad)


def _inflate_dropout2d(drop: nn.Dropout2d, options: InflationOptions) -> nn.Dropout3d:
    return _finish(nn.Dropout3d(drop.p, drop.inplace), drop)


# ----------------------------------------------------------------------------------------------------------
# Registries: what is converted, what is swapped, what works unchanged in 3D
# ----------------------------------------------------------------------------------------------------------


@cache
def _converters() -> dict[type, Callable]:
    converters: dict[type, Callable] = {
        nn.Conv2d: _inflate_conv,
        nn.BatchNorm2d: _inflate_batchnorm,
        nn.InstanceNorm2d: _inflate_instancenorm,
        nn.MaxPool2d: _inflate_maxpool,
        nn.AvgPool2d: _inflate_avgpool,
        nn.AdaptiveAvgPool2d: _inflate_adaptive_avgpool,
        nn.AdaptiveMaxPool2d: _inflate_adaptive_maxpool,
        nn.Upsample: _inflate_upsample,
        nn.UpsamplingNearest2d: _inflate_upsample,
        nn.UpsamplingBilinear2d: _inflate_upsample,
        nn.ZeroPad2d: _inflate_pad,
        nn.ConstantPad2d: _inflate_pad,
        nn.ReflectionPad2d: _inflate_pad,
        nn.ReplicationPad2d: _inflate_pad,
        nn.Dropout2d: _inflate_dropout2d,
    }
    if SmpMBConvBlock is not None:
        converters[smp_effnet.Conv2dStaticSamePadding] = _inflate_static_same_conv
        converters[smp_effnet.Conv2dDynamicSamePadding] = _inflate_dynamic_same_conv
    converters[timm.layers.Conv2dSame] = _inflate_dynamic_same_conv
    converters[timm.layers.BatchNormAct2d] = _inflate_batchnorm_act
    return converters


def _import_types(module_name: str, names: tuple[str, ...]) -> list[type]:
    """The classes ``names`` of ``module_name`` that exist in the installed library version."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # pragma: no cover - depends on the installed library versions
        return []
    return [getattr(module, name) for name in names if hasattr(module, name)]


@cache
def _dimension_agnostic() -> frozenset:
    """Module types whose forward works unchanged on 5D tensors (containers, activations, residual blocks)."""
    types = [
        nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Identity, nn.Flatten, nn.Linear, nn.GroupNorm,
        nn.Dropout, nn.AlphaDropout, nn.Softmax, nn.LogSoftmax,
        nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
        nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
    ]
    types += _import_types("torchvision.models.resnet", ("BasicBlock", "Bottleneck"))
    types += _import_types("segmentation_models_pytorch.base.modules",
                           ("Conv2dReLU", "Attention", "SCSEModule", "Activation", "ArgMax", "Clamp"))
    types += _import_types("segmentation_models_pytorch.base.heads", ("SegmentationHead", "ClassificationHead"))
    types += _import_types("segmentation_models_pytorch.encoders.resnet", ("ResNetEncoder",))
    types += _import_types("segmentation_models_pytorch.encoders.efficientnet", ("EfficientNetEncoder",))
    types += _import_types("segmentation_models_pytorch.encoders.timm_efficientnet",
                           ("EfficientNetBaseEncoder", "EfficientNetEncoder", "EfficientNetLiteEncoder"))
    types += _import_types("timm.models._efficientnet_blocks", ("DepthwiseSeparableConv", "InvertedResidual"))
    types += _import_types("timm.layers", ("DropPath", "SelectAdaptivePool2d", "Swish", "Sigmoid", "Tanh",
                                           "HardSwish", "HardSigmoid", "GELU", "Mish"))
    return frozenset(types)


def _unsupported_reason(module: nn.Module) -> str | None:
    """Why ``module`` (not its children) cannot be inflated, or None when it can."""
    kind = type(module)
    if kind in _converters():
        if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r} (only 'zeros')"
        if isinstance(module, nn.Upsample):
            if module.size is not None:
                return "a fixed output size (only scale_factor)"
            if module.mode not in INTERPOLATION_3D:
                return f"mode={module.mode!r} (only {sorted(INTERPOLATION_3D)})"
        return None
    if kind in FORWARD_SWAPS:
        mode = getattr(module, "interpolation_mode", "nearest")
        return None if mode in INTERPOLATION_3D else f"interpolation_mode={mode!r}"
    if kind in _dimension_agnostic():
        if isinstance(module, (nn.Softmax, nn.LogSoftmax)) and module.dim not in (1, None):
            return f"dim={module.dim} (only the channel axis 1)"
        return None
    return "no 3D conversion known for this type"


def _find_unsupported_modules(model: nn.Module) -> list[str]:
    """List "path (type): reason" for every module that ``inflate_2d_model_to_3d`` cannot convert (notebook 06).

    Example:
        >>> _find_unsupported_modules(nn.Sequential(nn.Conv2d(1, 1, 3), nn.LSTM(1, 1)))
        ['1 (torch.nn.modules.rnn.LSTM): no 3D conversion known for this type']
    """
    problems = []
    for path, module in model.named_modules():
        reason = _unsupported_reason(module)
        if reason is not None:
            kind = type(module)
            problems.append(f"{path or '<root>'} ({kind.__module__}.{kind.__qualname__}): {reason}")
    return problems


def _convert(module: nn.Module, options: InflationOptions) -> nn.Module:
    """Return the 3D version of ``module``: converted, or class-swapped, with all children converted."""
    converter = _converters().get(type(module))
    if converter is not None:
        module = converter(module, options)
    swap = FORWARD_SWAPS.get(type(module))
    if swap is not None:
        module.__class__ = swap
    for name, child in list(module.named_children()):
        setattr(module, name, _convert(child, options))
    return module


def inflate_2d_model_to_3d(
    model: nn.Module,
    mode: str = "i3d",
    depth_kernel: int = 3,
    depth_padding: str = "replicate",
    downsample_depth: bool = True,
) -> nn.Module:
    """Return a 3D copy of a 2D network (the original is left untouched); see the module docstring (notebook 06).

    Supported: smp ``Unet`` with ResNet (torchvision) and EfficientNet (smp ``efficientnet-b*`` and
    ``timm-efficientnet-b*``) encoders, and any network built from the layers listed in this module.

    Args:
        model: the 2D network, taking (N, C, X, Y) axial slices.
        mode: ``"i3d"`` (kernel repeated along Z and divided by its depth) or ``"center"`` (centre slice only).
        depth_kernel: odd kernel depth given to every convolution larger than 1x1.
        depth_padding: ``"replicate"`` (exact 2D equivalence on Z-constant inputs, also at the Z borders) or
            ``"zeros"`` (exact only with ``mode="center"``).
        downsample_depth: stride and pool along Z as in-plane; ``False`` keeps the Z resolution everywhere.

    Raises:
        UnsupportedLayerError: listing the path and type of every module that cannot be inflated.

    Example:
        >>> model_2d = smp.Unet("resnet18", encoder_weights=None, in_channels=4, classes=4)  # doctest: +SKIP
        >>> model_3d = inflate_2d_model_to_3d(model_2d)  # doctest: +SKIP
        >>> model_3d(torch.zeros(1, 4, 64, 64, 32)).shape  # doctest: +SKIP
        torch.Size([1, 4, 64, 64, 32])
    """
    options = InflationOptions(mode, depth_kernel, depth_padding, downsample_depth)
    problems = _find_unsupported_modules(model)
    if problems:
        raise UnsupportedLayerError(_describe_problems(problems))
    return _convert(copy.deepcopy(model), options)


def _describe_problems(problems: list[str], shown: int = 25) -> str:
    listing = "\n  ".join(problems[:shown])
    more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return (f"cannot inflate {len(problems)} module(s) of this model to 3D (path (type): reason):\n  {listing}{more}"
            "\nSupported: smp Unet with ResNet or EfficientNet encoders and the layers listed in "
            "braintools.models.inflation; an unlisted block may call 2D-only functions in its forward.")


# ----------------------------------------------------------------------------------------------------------
# Checking the equivalence
# ----------------------------------------------------------------------------------------------------------


def depth_constant_volume(x2d: torch.Tensor, depth: int) -> torch.Tensor:
    """Stack ``depth`` copies of a 2D batch (N, C, X, Y) along a new last axis: (N, C, X, Y, depth) (notebook 06).

    Example:
        >>> depth_constant_volume(torch.zeros(1, 4, 8, 8), 5).shape
        torch.Size([1, 4, 8, 8, 5])
    """
    return x2d.unsqueeze(-1).expand(*x2d.shape, depth).contiguous()


def max_slice_error(model_2d: nn.Module, model_3d: nn.Module, x2d: torch.Tensor, depth: int) -> tuple[float, float]:
    """Largest |3D output - 2D output| over every slice of the Z-constant volume built from ``x2d`` (notebook 06).

    Both models run in eval mode under ``torch.no_grad``; returns (max error, max |2D output|) so the error
    can be read relative to the output's scale.
    """
    with torch.no_grad():
        out_2d = model_2d.eval()(x2d)
        out_3d = model_3d.eval()(depth_constant_volume(x2d, depth))
    if tuple(out_3d.shape) != tuple(out_2d.shape) + (depth,):
        raise ValueError(f"3D output {tuple(out_3d.shape)} is not the 2D output {tuple(out_2d.shape)} x {depth}")
    return (out_3d - out_2d.unsqueeze(-1)).abs().max().item(), out_2d.abs().max().item()
