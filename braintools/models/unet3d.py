"""A plain 3D U-Net for BraTS patches, with optional deep supervision.

Tensors are (N, C, X, Y, Z); the model returns logits (N, num_classes, X, Y, Z).

Architecture (one "level" per entry of ``features``):

- encoder: at each level two 3x3x3 convolutions, each followed by InstanceNorm3d and LeakyReLU;
  a 2x2x2 max-pool halves every axis between levels;
- decoder: a 2x2x2 transposed convolution doubles every axis, the encoder's feature map of the same
  size is concatenated (the skip connection), then two more convolutions;
- a 1x1x1 convolution turns the last feature map into class logits.

With ``deep_supervision=True`` extra 1x1x1 heads also predict logits from the coarser decoder levels.
In training mode the model then returns a list ``[full, 1/2, 1/4, ...]`` (decreasing resolution) for a
deep-supervision loss; in eval mode it returns only the full-resolution logits, so inference code never
has to know.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvBlock3d(nn.Sequential):
    """Two (Conv3d 3x3x3 -> InstanceNorm3d -> LeakyReLU) layers: the work done at each U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.01):
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers += [
                nn.Conv3d(channels_in, out_channels, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm3d(out_channels, affine=True),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
        super().__init__(*layers)


class UNet3D(nn.Module):
    """3D U-Net: InstanceNorm, LeakyReLU, two convs per level, transposed-conv upsampling (notebook 05).

    Args:
        in_channels: input channels (4 MRI modalities).
        num_classes: output classes (4: background, NCR, ED, ET).
        features: channels per level, shallow to deep; ``len(features)`` levels, so every input axis must
            be divisible by ``2 ** (len(features) - 1)``.
        deep_supervision: add logits heads on the coarser decoder levels (returned in training mode only).

    Example:
        >>> model = UNet3D(features=(8, 16, 32))
        >>> model(torch.zeros(1, 4, 16, 16, 8)).shape
        torch.Size([1, 4, 16, 16, 8])
    """

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 4,
        features: Sequence[int] = (32, 64, 128, 256),
        deep_supervision: bool = False,
    ):
        super().__init__()
        features = tuple(int(f) for f in features)
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"features must list at least 2 positive channel counts, got {features}")
        self.features = features
        self.deep_supervision = deep_supervision
        self.encoder = nn.ModuleList(
            [ConvBlock3d(in_channels, features[0])]
            + [ConvBlock3d(features[i - 1], features[i]) for i in range(1, len(features))]
        )
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        # Decoder stages run deep to shallow: stage i brings level i+1 up to level i.
        shallow_levels = range(len(features) - 2, -1, -1)
        self.upsamplers = nn.ModuleList(
            [nn.ConvTranspose3d(features[i + 1], features[i], kernel_size=2, stride=2) for i in shallow_levels]
        )
        self.decoder = nn.ModuleList([ConvBlock3d(2 * features[i], features[i]) for i in shallow_levels])
        self.head = nn.Conv3d(features[0], num_classes, kernel_size=1)
        # One extra head per coarse decoder level (1/2, 1/4, ...), finest first; none for the bottleneck.
        self.deep_heads = nn.ModuleList(
            [nn.Conv3d(features[i], num_classes, kernel_size=1) for i in range(1, len(features) - 1)]
            if deep_supervision
            else []
        )

    @property
    def size_divisor(self) -> int:
        """Every input axis must be a multiple of this number (one halving per level below the top)."""
        return 2 ** (len(self.features) - 1)

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is (N, C, X, Y, Z) with X, Y, Z divisible by ``size_divisor``."""
        if x.ndim != 5:
            raise ValueError(f"UNet3D expects a 5D tensor (N, C, X, Y, Z), got shape {tuple(x.shape)}")
        sizes = tuple(x.shape[2:])
        divisor = self.size_divisor
        if any(size % divisor for size in sizes):
            fixed = tuple(-(-size // divisor) * divisor for size in sizes)
            raise ValueError(
                f"UNet3D with {len(self.features)} levels needs every spatial size divisible by {divisor}, "
                f"got {sizes}; pad or crop the input, e.g. to {fixed}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Return logits (N, classes, X, Y, Z), or in training with deep supervision a list, finest first."""
        self.check_input_shape(x)
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        decoded = []  # decoder outputs, coarsest first
        for upsample, block, skip in zip(self.upsamplers, self.decoder, reversed(skips[:-1])):
            x = block(torch.cat([upsample(x), skip], dim=1))
            decoded.append(x)
        logits = self.head(x)
        if not (self.deep_supervision and self.training):
            return logits
        coarse = decoded[-2::-1]  # 1/2, 1/4, ... resolution outputs, finest first
        return [logits] + [head(features) for head, features in zip(self.deep_heads, coarse)]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Return the number of (trainable, by default) parameters of ``model`` (notebook 05).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
