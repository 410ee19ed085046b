"""Learning-rate schedules: linear warm-up followed by cosine decay (for ``torch.optim.lr_scheduler.LambdaLR``).

Warm-up: the first updates of a freshly initialised network (or of a new decoder on a pretrained encoder)
have large, noisy gradients; ramping the learning rate up over a few hundred steps avoids wrecking the
weights early. Cosine decay then lowers it smoothly to ``min_lr_ratio`` times the base rate at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Learning-rate factor at ``step`` (0-based): linear up to 1 over ``warmup_steps``, then cosine down (notebook 05).

    The factor reaches ``min_lr_ratio`` at ``total_steps`` and stays there.

    Example:
        >>> [round(warmup_cosine_factor(s, 2, 6), 3) for s in range(7)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if warmup_steps < 0 or total_steps < 1 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, got {warmup_steps}, "
                         f"{total_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _warmup_cosine_lambda(warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> Callable[[int], float]:
    """Return ``step -> factor`` for ``LambdaLR`` (checks its arguments now, not at the first step) (notebook 05)."""
    warmup_cosine_factor(0, warmup_steps, total_steps, min_lr_ratio)

    def factor(step: int) -> float:
        return warmup_cosine_factor(step, warmup_steps, total_steps, min_lr_ratio)

    return factor


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """A ``LambdaLR`` with linear warm-up then cosine decay; call ``step()`` once per optimizer step (notebook 06).

    Example:
        >>> scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=100, total_steps=2000)  # doctest: +SKIP
        >>> fit(..., scheduler=scheduler, scheduler_interval="step")  # doctest: +SKIP
    """
    return LambdaLR(optimizer, _warmup_cosine_lambda(warmup_steps, total_steps, min_lr_ratio))
