"""Segmentation losses for 2D and 3D BraTS models: soft Dice combined with (focal) cross-entropy.

Every loss takes raw logits (N, K, *spatial) and a target of integer classes (N, *spatial) with values
0..3 (background, NCR, ED, ET); a float target with the logits' shape (one-hot or region masks) is also
accepted. Two ways to predict:

- ``classes``: K = 4 mutually exclusive classes, softmax; Dice on the one-hot classes + cross-entropy.
- ``regions``: K = 3 overlapping regions [WT, TC, ET], one sigmoid each; Dice on the region masks + BCE.
  This optimises exactly what BraTS scores.

Soft Dice of one channel is 1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s) with s = 1e-5, as in MONAI's
``DiceLoss`` (tested against it). ``batch_dice=True`` sums over the whole batch before dividing, which keeps
the loss meaningful on slices where a class is absent (the nnU-Net choice for 2D); ``False`` averages
per-sample Dice values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from braintools.data.labels import REGIONS, regions_from_classes

SMOOTH = 1e-5


def one_hot(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Turn integer classes (N, *spatial) into a float one-hot tensor (N, num_classes, *spatial)."""
    encoded = F.one_hot(classes.long(), num_classes)  # (N, *spatial, K)
    return encoded.movedim(-1, 1).float()


def _prepare_target(logits: torch.Tensor, target: torch.Tensor, mode: str) -> torch.Tensor:
    """Return the float target with the logits' shape: one-hot classes (``"classes"``) or regions (``"regions"``).
    Introduced in notebook 04."""
    if target.shape == logits.shape:
        return target.float()
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"target must be classes {tuple(logits.shape[:1] + logits.shape[2:])} or a tensor shaped "
                         f"like the logits {tuple(logits.shape)}, got {tuple(target.shape)}")
    if mode == "classes":
        return one_hot(target, logits.shape[1])
    if mode == "regions":
        if logits.shape[1] != len(REGIONS):
            raise ValueError(f"region mode needs {len(REGIONS)} output channels {REGIONS}, got {logits.shape[1]}")
        return regions_from_classes(target, axis=1).float()
    raise ValueError(f"mode must be 'classes' or 'regions', got {mode!r}")


def soft_dice_loss(
    probabilities: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] | torch.Tensor | None = None,
    batch_dice: bool = True,
    smooth: float = SMOOTH,
) -> torch.Tensor:
    """Mean (or weighted mean) over channels of 1 - soft Dice, for probabilities and targets (N, K, *spatial).
    Introduced in notebook 04.

    Args:
        weights: one weight per channel; the result is sum(w_k loss_k) / sum(w_k).
        batch_dice: pool the batch before dividing (True) or average per-sample Dice values (False).
    """
    dims = [0, *range(2, probabilities.ndim)] if batch_dice else list(range(2, probabilities.ndim))
    intersection = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    losses = 1.0 - (2.0 * intersection + smooth) / (total + smooth)  # (K,) or (N, K)
    if weights is None:
        return losses.mean()
    weights = torch.as_tensor(weights, dtype=losses.dtype, device=losses.device)
    if weights.shape != (probabilities.shape[1],) or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(f"weights must be {probabilities.shape[1]} non-negative numbers, not all 0, "
                         f"got {weights.tolist()}")
    return (losses * weights).sum(-1).mean() / weights.sum()


def _focal_bce_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean sigmoid focal loss -(1 - p_t)^gamma log(p_t) of every element (torchvision, no alpha weighting).
    Introduced in notebook 04.

    gamma = 0 is plain binary cross-entropy; gamma = 2 down-weights easy pixels (most of the background).
    """
    return sigmoid_focal_loss(logits, target, alpha=-1, gamma=gamma, reduction="mean")


class DiceCELoss(nn.Module):
    """Soft Dice on softmax classes + cross-entropy, for 4-class logits (N, 4, *spatial).

    Args:
        dice_weight, ce_weight: weights of the two terms.
        include_background: count the background channel in the Dice term.
        batch_dice: see ``soft_dice_loss``.

    Example:
        >>> loss = DiceCELoss()(torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))
    """

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0, include_background: bool = True,
                 batch_dice: bool = True):
        super().__init__()
        self.dice_weight, self.ce_weight = dice_weight, ce_weight
        self.include_background, self.batch_dice = include_background, batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = _prepare_target(logits, target, "classes")
        probabilities = torch.softmax(logits, dim=1)
        first = 0 if self.include_background else 1
        dice = soft_dice_loss(probabilities[:, first:], target[:, first:], batch_dice=self.batch_dice)
        ce = F.cross_entropy(logits, target)  # a one-hot target gives the usual class-index cross-entropy
        return self.dice_weight * dice + self.ce_weight * ce


class RegionDiceBCELoss(nn.Module):
    """Soft Dice + binary cross-entropy on the sigmoid regions [WT, TC, ET], for logits (N, 3, *spatial).

    Example:
        >>> loss = RegionDiceBCELoss()(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))
    """

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, batch_dice: bool = True):
        super().__init__()
        self.dice_weight, self.bce_weight, self.batch_dice = dice_weight, bce_weight, batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = _prepare_target(logits, target, "regions")
        dice = soft_dice_loss(torch.sigmoid(logits), target, batch_dice=self.batch_dice)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return self.dice_weight * dice + self.bce_weight * bce


class DiceFocalLoss(nn.Module):
    """Weighted soft Dice + focal BCE (gamma 2): the loss of the 3D notebook (notebook 06).

    Args:
        mode: ``"regions"`` (sigmoid, 3 channels WT/TC/ET) or ``"classes"`` (softmax Dice on one-hot classes;
            the focal term always scores each channel with a sigmoid, as MONAI's ``FocalLoss`` does).
        class_weights: one Dice weight per channel, e.g. (1, 1, 2) to push the small ET region.
        gamma: focal exponent.
        dice_weight, focal_weight: weights of the two terms.
        batch_dice: see ``soft_dice_loss``.
    """

    def __init__(self, mode: str = "regions", class_weights: Sequence[float] | None = None, gamma: float = 2.0,
                 dice_weight: float = 1.0, focal_weight: float = 1.0, batch_dice: bool = True):
        super().__init__()
        if mode not in ("regions", "classes"):
            raise ValueError(f"mode must be 'regions' or 'classes', got {mode!r}")
        self.mode, self.gamma, self.batch_dice = mode, gamma, batch_dice
        self.class_weights = None if class_weights is None else tuple(float(w) for w in class_weights)
        self.dice_weight, self.focal_weight = dice_weight, focal_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = _prepare_target(logits, target, self.mode)
        probabilities = torch.sigmoid(logits) if self.mode == "regions" else torch.softmax(logits, dim=1)
        dice = soft_dice_loss(probabilities, target, self.class_weights, batch_dice=self.batch_dice)
        focal = _focal_bce_loss(logits, target, self.gamma)
        return self.dice_weight * dice + self.focal_weight * focal


def deep_supervision_weights(levels: int, decay: float = 0.5, normalise: bool = True) -> list[float]:
    """Weights 1, decay, decay^2, ... of the output scales, finest first (summing to 1 when ``normalise``).
    Introduced in notebook 05.

    Example:
        >>> deep_supervision_weights(3)
        [0.5714285714285714, 0.2857142857142857, 0.14285714285714285]
    """
    weights = [decay**level for level in range(levels)]
    total = sum(weights) if normalise else 1.0
    return [weight / total for weight in weights]


def _resize_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize integer classes (N, *spatial) or float masks (N, K, *spatial) to ``size`` (nearest-exact).
    Introduced in notebook 04."""
    if target.shape[-len(size):] == tuple(size):
        return target
    is_classes = not target.is_floating_point()
    stacked = target.unsqueeze(1).float() if is_classes else target
    resized = F.interpolate(stacked, size=tuple(size), mode="nearest-exact")
    return resized[:, 0].to(target.dtype) if is_classes else resized


class DeepSupervisionLoss(nn.Module):
    """Combine a loss over several output scales (finest first) with decreasing weights (notebook 05).

    The target is resized (nearest-exact) to each scale. A single tensor is scored against the target resized
    to its size (nothing to do when they match), so the same loss object also works in evaluation mode, where
    deep-supervision models return one output.

    Args:
        loss: the loss of one scale, e.g. ``DiceFocalLoss()``.
        decay: weight ratio between consecutive scales (weights 1, 0.5, 0.25, ...).
        normalise: divide the weights by their sum (so the loss stays on the scale of ``loss``).
    """

    def __init__(self, loss: nn.Module, decay: float = 0.5, normalise: bool = True):
        super().__init__()
        self.loss, self.decay, self.normalise = loss, decay, normalise

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.loss(outputs, _resize_target(target, outputs.shape[2:]))
        weights = deep_supervision_weights(len(outputs), self.decay, self.normalise)
        terms = [w * self.loss(out, _resize_target(target, out.shape[2:])) for w, out in zip(weights, outputs)]
        return torch.stack(terms).sum()
