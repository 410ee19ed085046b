"""Wrappers that change how a network sees its input: shrunk volumes, shrunk slices, 2D slices of a 3D volume.

On a CPU, a network that sees an image shrunk ``factor`` times trains many times faster. The shrink wrappers
(notebooks 04-06) average blocks of ``factor`` voxels, run the inner network and upsample its logits to the input
size, so the loss and the metrics use full-size labels:

- ``Downsampled``: 2D slices (N, C, H, W), shrunk in both axes (notebook 04);
- ``Downsampled3D``: 3D patches (N, C, X, Y, Z), shrunk along every axis (notebook 05);
- ``InPlaneDownsampled``: 3D volumes shrunk in X and Y only, for a network inflated from a shrunk 2D one (06).

Their ``state_dict`` is the inner network's (no ``model.`` prefix), so the weights load into the plain network,
and the model spec of a checkpoint (``checkpoints.ModelSpec.shrink``) says which wrapper to rebuild.
``SliceWise2D`` runs a 2D network on every axial slice of a 3D volume, so 2D and 3D models share one inference
path (notebook 07).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShrunkInput(nn.Module):
    """Hold an inner ``model`` and a shrink ``factor``; save and load the inner model's ``state_dict`` only.

    Example:
        >>> ShrunkInput(nn.Conv2d(4, 4, 1), 2).state_dict().keys()
        odict_keys(['weight', 'bias'])
    """

    def __init__(self, model: nn.Module, factor: int = 2):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.model, self.factor = model, int(factor)

    def state_dict(self, *args, **kwargs) -> dict:
        """The inner model's ``state_dict`` (no ``model.`` prefix)."""
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load an inner-model ``state_dict`` (e.g. from a checkpoint of the plain model)."""
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)


class Downsampled(ShrunkInput):
    """Run ``model`` on inputs shrunk ``factor`` times (block means) and upsample its logits to the input size.

    Train and predict with the wrapper on full-size slices. Its ``state_dict`` is the inner model's (same keys),
    so a checkpoint that ``train.fit`` saves from the wrapper loads into a plain ``create_smp_model`` model.

    Example:
        >>> from braintools.models.smp2d import create_smp_model
        >>> Downsampled(create_smp_model("Unet", "resnet18"), 2).eval()(torch.zeros(1, 4, 64, 64)).shape
        torch.Size([1, 4, 64, 64])
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits at the size of ``images`` (N, C, H, W); H and W must be multiples of ``factor``."""
        if self.factor == 1:
            return self.model(images)
        if images.shape[-1] % self.factor or images.shape[-2] % self.factor:
            raise ValueError(f"input {tuple(images.shape[-2:])} is not a multiple of factor {self.factor}")
        logits = self.model(F.avg_pool2d(images, self.factor))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


class Downsampled3D(ShrunkInput):
    """Run a 3D ``model`` on volumes shrunk ``factor`` times along every axis (block means); logits at full size.

    The 3D twin of ``Downsampled``: on a CPU, a patch shrunk 2x costs 8x less, so the network sees much
    more brain per step. The full-resolution logits are upsampled (trilinear) to the input size, so the metrics
    use full-size labels; deep-supervision outputs stay at their own (coarse) size. Its ``state_dict`` is the
    inner model's (same keys), so a checkpoint saved through the wrapper loads into a plain ``UNet3D``.

    Args:
        model: the 3D network, e.g. ``UNet3D``.
        factor: shrink factor per axis.
        full_size_in_training: in training mode, upsample the logits to the input size too (the loss then
            scores full-size labels). ``False`` returns the network's own-size outputs in training, and
            ``losses.DeepSupervisionLoss`` scores them against labels resized to them: with a 2x shrink this
            made a CPU training step about 1.8x faster. Eval mode always returns full-size logits.

    Example:
        >>> from braintools.models.unet3d import UNet3D
        >>> Downsampled3D(UNet3D(features=(4, 8)), 2).eval()(torch.zeros(1, 4, 8, 8, 4)).shape
        torch.Size([1, 4, 8, 8, 4])
    """

    def __init__(self, model: nn.Module, factor: int = 2, full_size_in_training: bool = True):
        super().__init__(model, factor)
        self.full_size_in_training = full_size_in_training

    @property
    def size_divisor(self) -> int:
        """Every input axis must be a multiple of this number (the inner divisor times ``factor``)."""
        return getattr(self.model, "size_divisor", 1) * self.factor

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits (N, K, X, Y, Z) at the size of ``x``; a deep-supervision list keeps its coarse outputs as they are."""
        if self.factor == 1:
            return self.model(x)
        if any(size % self.factor for size in x.shape[2:]):
            raise ValueError(f"input {tuple(x.shape[2:])} is not a multiple of factor {self.factor}")
        outputs = self.model(F.avg_pool3d(x, self.factor))
        if self.training and not self.full_size_in_training:
            return outputs
        first = outputs[0] if isinstance(outputs, list) else outputs
        full = F.interpolate(first, size=x.shape[2:], mode="trilinear", align_corners=False)
        return [full, *outputs[1:]] if isinstance(outputs, list) else full




class InPlaneDownsampled(ShrunkInput):
    """Run a 3D ``model`` on volumes shrunk ``factor`` times in X and Y (block means), Z kept; logits at full size.

    The 3D twin of ``Downsampled``: a 2D model trained on slices shrunk ``downsample_2d`` times
    (notebook 04 on a CPU) must, once inflated, see the same in-plane scale. Its ``state_dict`` is the inner
    model's (same keys), so a checkpoint saved through the wrapper loads into the plain inflated model.

    Example:
        >>> InPlaneDownsampled(nn.Conv3d(4, 4, 1), 2)(torch.zeros(1, 4, 8, 8, 3)).shape
        torch.Size([1, 4, 8, 8, 3])
    """

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Logits (N, K, X, Y, Z) for a volume (N, C, X, Y, Z) whose X and Y are multiples of ``factor``."""
        if self.factor == 1:
            return self.model(volume)
        if volume.shape[2] % self.factor or volume.shape[3] % self.factor:
            raise ValueError(f"X, Y {tuple(volume.shape[2:4])} are not multiples of factor {self.factor}")
        logits = self.model(F.avg_pool3d(volume, (self.factor, self.factor, 1)))
        return F.interpolate(logits, size=volume.shape[2:], mode="trilinear", align_corners=False)


class SliceWise2D(nn.Module):
    """Run a 2D network (N, C, H, W) on 3D volumes (N, C, X, Y, Z), one axial (Z) slice at a time.

    Every slice becomes one item of a 2D batch; X and Y are zero-padded (centred) to a multiple of
    ``multiple`` (encoders of segmentation-models-pytorch need 32: 240 -> 256) and the output is cropped
    back. So 2D and 3D models share one inference path (``sliding_window_inference``, TTA, ``predict_case``).

    Args:
        model: 2D network returning (B, K, H, W) logits.
        multiple: pad X and Y up to a multiple of this.
        slice_batch_size: slices per call of ``model`` (``None``: all slices of the input at once).
        align: the padding before each axis is a multiple of this. A network trained on slices shrunk ``align``
            times (``Downsampled``) learnt on one grid of ``align x align`` blocks; keeping inputs on that grid
            (with ``segment.segment_case`` aligning its crop) keeps its predictions the ones it was trained for.

    Example:
        >>> volume_model = SliceWise2D(unet_2d).eval()  # doctest: +SKIP
        >>> logits = sliding_window_inference(volume, (240, 240, 16), volume_model, overlap=0)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, multiple: int = 32, slice_batch_size: int | None = None,
                 align: int = 1) -> None:
        super().__init__()
        if multiple < 1 or align < 1 or (slice_batch_size is not None and slice_batch_size < 1):
            raise ValueError(f"multiple, align and slice_batch_size must be >= 1, got {multiple}, {align}, "
                             f"{slice_batch_size}")
        self.model = model
        self.multiple = multiple
        self.slice_batch_size = slice_batch_size
        self.align = align

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Predict (N, C, X, Y, Z) -> (N, K, X, Y, Z) slice by slice."""
        if volume.ndim != 5:
            raise ValueError(f"SliceWise2D expects (N, C, X, Y, Z) volumes, got shape {tuple(volume.shape)}")
        n, channels, size_x, size_y, size_z = volume.shape
        slices = volume.permute(0, 4, 1, 2, 3).reshape(n * size_z, channels, size_x, size_y)
        pad_x, pad_y = (-size_x) % self.multiple, (-size_y) % self.multiple
        before_x, before_y = (pad_x // 2) // self.align * self.align, (pad_y // 2) // self.align * self.align
        slices = F.pad(slices, (before_y, pad_y - before_y, before_x, pad_x - before_x))
        chunk = self.slice_batch_size or len(slices)
        logits = torch.cat([self.model(slices[start:start + chunk]) for start in range(0, len(slices), chunk)])
        logits = logits[:, :, before_x:before_x + size_x, before_y:before_y + size_y]
        return logits.reshape(n, size_z, logits.shape[1], size_x, size_y).permute(0, 2, 3, 4, 1)
