"""Pick the compute device automatically: CUDA, then Apple MPS, then CPU (nothing hard-codes ``cuda``)."""

from __future__ import annotations

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else the best available device: CUDA, then MPS, then CPU.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
