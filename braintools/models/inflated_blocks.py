"""3D forwards of smp and timm blocks that call 2D functions inside ``forward`` (used by ``inflation``, notebook 06).

Replacing modules does not reach 2D operations written inside a ``forward``. These blocks keep their sub-modules and
weights; ``inflation`` switches their class to the 3D subclass below, whose ``forward`` is the same code with the 3D
call (``FORWARD_SWAPS``): smp's ``Unet`` (input check), ``UnetDecoder`` and ``UnetDecoderBlock`` (interpolation target
sizes), smp's EfficientNet ``MBConvBlock`` and timm's ``SqueezeExcite`` (global pooling, drop-connect).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder, UnetDecoderBlock

# Private modules of smp and timm: their blocks call 2D functions in forward and get 3D subclasses below.
# Guarded, so another library version only loses those encoders (reported as unsupported), not the module.
try:
    from segmentation_models_pytorch.encoders import _efficientnet as smp_effnet

    SmpMBConvBlock = smp_effnet.MBConvBlock
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed smp version
    smp_effnet, SmpMBConvBlock = None, None
try:
    from timm.models._efficientnet_blocks import SqueezeExcite as TimmSqueezeExcite
except ImportError:  # pragma: no cover - depends on the installed timm version
    TimmSqueezeExcite = None

INTERPOLATION_3D = {"nearest": "nearest", "nearest-exact": "nearest-exact", "bilinear": "trilinear"}


def _drop_connect(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Stochastic depth for any rank: drop whole samples with probability ``rate``, rescale the rest."""
    keep = 1.0 - rate
    mask = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device) < keep
    return x / keep * mask


class Unet3d(smp.Unet):
    """smp ``Unet`` inflated to 3D: input (N, C, X, Y, Z); X and Y must divide by the encoder's output stride."""

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is 5D with X and Y divisible by the output stride (was H, W)."""
        if x.ndim != 5:
            raise ValueError(f"the inflated Unet expects (N, C, X, Y, Z), got shape {tuple(x.shape)}")
        stride = self.encoder.output_stride
        if x.shape[2] % stride or x.shape[3] % stride:
            raise ValueError(f"X and Y must be divisible by {stride}, got shape {tuple(x.shape)}")


class UnetDecoderBlock3d(UnetDecoderBlock):
    """smp ``UnetDecoderBlock`` whose upsampling takes a 3D target size (was height, width)."""

    def forward(self, feature_map, target_size, skip_connection=None):
        """Upsample to ``target_size`` (X, Y, Z), concatenate the skip, two convolutions."""
        mode = INTERPOLATION_3D[getattr(self, "interpolation_mode", "nearest")]
        feature_map = F.interpolate(feature_map, size=tuple(target_size), mode=mode)
        if skip_connection is not None:
            feature_map = self.attention1(torch.cat([feature_map, skip_connection], dim=1))
        return self.attention2(self.conv2(self.conv1(feature_map)))


class UnetDecoder3d(UnetDecoder):
    """smp ``UnetDecoder`` that hands each block the full (X, Y, Z) size of the next skip connection."""

    def forward(self, features):
        """Decode the encoder features (finest first) into the last decoder feature map."""
        sizes = [tuple(f.shape[2:]) for f in features][::-1]  # deepest first
        features = features[1:][::-1]  # drop the input-resolution "feature"; deepest first
        x, skips = self.center(features[0]), features[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, sizes[i + 1], skips[i] if i < len(skips) else None)
        return x


FORWARD_SWAPS: dict[type, type] = {smp.Unet: Unet3d, UnetDecoder: UnetDecoder3d, UnetDecoderBlock: UnetDecoderBlock3d}

if SmpMBConvBlock is not None:

    class MBConvBlock3d(SmpMBConvBlock):
        """smp EfficientNet block with 3D squeeze-excitation pooling and drop-connect."""

        def forward(self, inputs, drop_connect_rate=None):
            """The smp block's forward with ``F.adaptive_avg_pool3d`` and a rank-agnostic drop-connect."""
            x = inputs
            if self._has_expansion:
                x = self._swish(self._bn0(self._expand_conv(inputs)))
            x = self._swish(self._bn1(self._depthwise_conv(x)))
            if self._has_se:
                squeezed = F.adaptive_avg_pool3d(x, 1)  # was F.adaptive_avg_pool2d
                squeezed = self._se_expand(self._swish(self._se_reduce(squeezed)))
                x = torch.sigmoid(squeezed) * x
            x = self._bn2(self._project_conv(x))
            if self._has_drop_connect:
                if drop_connect_rate and self.training:
                    x = _drop_connect(x, drop_connect_rate)
                x = x + inputs
            return x

    FORWARD_SWAPS[SmpMBConvBlock] = MBConvBlock3d

if TimmSqueezeExcite is not None:

    class SqueezeExcite3d(TimmSqueezeExcite):
        """timm squeeze-excitation that averages over X, Y and Z."""

        def forward(self, x):
            """Gate the channels of ``x`` by its global (X, Y, Z) average."""
            x_se = x.mean((2, 3, 4), keepdim=True)  # was x.mean((2, 3))
            x_se = self.conv_expand(self.act1(self.conv_reduce(x_se)))
            return x * self.gate(x_se)

    FORWARD_SWAPS[TimmSqueezeExcite] = SqueezeExcite3d
