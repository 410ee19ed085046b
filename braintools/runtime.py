"""Where and how code runs: the compute device, random seeds, CPU threads (notebooks 03-07).

- ``get_device``: CUDA, then Apple MPS, then the CPU (nothing hard-codes ``cuda``);
- ``model_device``: where a model's parameters live (batches are moved there);
- ``autocast_dtype``: the mixed-precision dtype of a device (bfloat16, float16 or none), ``cudnn_autotune``;
- ``seed_everything``: seed Python, NumPy and PyTorch for repeatable runs;
- ``free_cpu_threads``: how many PyTorch threads a shared CPU can take without slowing every step down.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn


def get_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else the best available device: CUDA, then MPS, then CPU (notebook 04).

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


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (the CPU for a model without parameters).

    Example:
        >>> model_device(nn.Linear(2, 2))
        device(type='cpu')
    """
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _native_bfloat16(device: torch.device | str | None = None) -> bool:
    """True when a CUDA GPU computes in bfloat16 in hardware (Ampere and newer, or ROCm); False on a T4 or P100.
    Introduced in notebook 04.

    ``torch.cuda.is_bf16_supported()`` alone also says True where bfloat16 is only emulated (a T4): slow, and
    cuDNN has no bfloat16 convolutions there; this asks for native support.
    """
    if not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return True
    with torch.cuda.device(device):
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # PyTorch before 2.3 has no including_emulation and does not count emulation
            return torch.cuda.is_bf16_supported()


def autocast_dtype(device: torch.device | str, bf16_supported: Callable[[], bool] | None = None
                   ) -> torch.dtype | None:
    """The dtype for mixed-precision training on ``device``, or None where autocast is not used.

    bfloat16 on GPUs that compute in it natively (A100, L4, H100: same range as float32, no gradient scaling);
    float16 on older CUDA GPUs (T4, P100, V100: needs ``torch.amp.GradScaler``, or small gradients underflow);
    ``None`` on CPUs and Apple GPUs, where the course trains in float32. ``bf16_supported`` replaces the check of
    the device (``_native_bfloat16``), e.g. in tests.

    Example:
        >>> autocast_dtype("cpu") is None
        True
        >>> autocast_dtype("cuda", bf16_supported=lambda: False)
        torch.float16
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    supported = bf16_supported() if bf16_supported is not None else _native_bfloat16(device)
    return torch.bfloat16 if supported else torch.float16


def mixed_precision(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device`` (``autocast_dtype``); ``None``: full precision.

    Example:
        >>> with mixed_precision("cpu", None):
        ...     torch.ones(1).dtype
        torch.float32
    """
    device = torch.device(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@contextlib.contextmanager
def cudnn_autotune(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """Inside the block, let cuDNN time its convolution algorithms per input shape and keep the fastest (CUDA only).

    Worth it when every batch has the same size (training patches, padded slices): the timing is paid once per
    shape. The previous ``torch.backends.cudnn.benchmark`` setting is restored afterwards.
    """
    previous = torch.backends.cudnn.benchmark
    if enabled and torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a fresh NumPy ``Generator`` (notebook 04)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def free_cpu_threads(cores: int | None = None, load: float | None = None) -> int:
    """CPU threads for PyTorch: the cores that other programs leave idle right now, at least 1 (notebook 04).

    On a shared CPU, more threads than idle cores make every step wait for preempted threads (several
    times slower); ``torch.set_num_threads(free_cpu_threads())`` avoids that. ``load`` is the number of busy
    cores; by default, on Linux, the processes running right now besides this one (``/proc/loadavg``, the
    median of a few samples), elsewhere the 1-minute load average. The load average lags: a program that
    ended a minute ago still counts, which is why Linux gets the instantaneous count.

    Example:
        >>> free_cpu_threads(cores=4, load=1.2)  # one core busy elsewhere
        3
    """
    cores = cores or os.cpu_count() or 1
    if load is None:
        load = _running_elsewhere()
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - math.ceil(load - 0.5)))


def _running_elsewhere(samples: int = 9, interval: float = 0.02) -> float | None:
    """Runnable processes other than this one, median of ``samples`` reads of /proc/loadavg; None if unreadable."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as file:
                running = int(file.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(max(0, running - 1))  # this process is running while it reads
        time.sleep(interval)
    return float(sorted(counts)[len(counts) // 2])
