"""Sliding-window inference, flip test-time augmentation, and a wrapper that runs 2D networks on 3D volumes.

A network trained on patches (say 128 x 128 x 64 voxels) cannot see a whole 240 x 240 x 155 volume at once
on most GPUs. Sliding-window inference cuts the volume into overlapping windows on a regular grid, predicts
each window, and blends the overlapping predictions with a weighted average. The result is the same as
``monai.inferers.sliding_window_inference`` with the same settings (tested to 1e-5), written here to be read.

Shapes: inputs are (N, C, *spatial) tensors, spatial 2D (H, W) or 3D (X, Y, Z); predictors return logits
(N, K, *spatial) with the same spatial size as their input window.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

Predictor = Callable[[torch.Tensor], torch.Tensor]
BLEND_MODES = ("gaussian", "constant")
MIN_IMPORTANCE = 1e-3  # floor of the Gaussian weights, so every voxel keeps a non-zero total weight


def importance_map(
    roi_size: Sequence[int],
    mode: str = "gaussian",
    sigma_scale: float | Sequence[float] = 0.125,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Weight of each voxel of a window when overlapping windows are blended: a Gaussian bump or all ones.

    A network sees less context near the border of its window, so its predictions there are less reliable.
    The Gaussian map (peak 1 at the window centre, sigma = ``sigma_scale`` x window size on each axis) lets
    the centre of one window outvote the border of its neighbour. Weights are floored at 1e-3: voxels in the
    window corners still count a little, and the blended sum is never divided by (almost) zero.

    Example:
        >>> importance_map((5,), sigma_scale=0.25)
        tensor([0.2780, 0.7261, 1.0000, 0.7261, 0.2780])
    """
    _check_choice(mode, BLEND_MODES, "mode")
    if mode == "constant":
        return torch.ones(tuple(roi_size), device=device, dtype=dtype)
    scales = _per_axis(sigma_scale, len(roi_size), "sigma_scale")
    weights = torch.ones((), device=device)
    for size, scale in zip(roi_size, scales):
        centred = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
        bump = torch.exp(centred**2 / (-2 * (scale * size) ** 2))  # 1D Gaussian along this axis
        weights = weights.unsqueeze(-1) * bump  # outer product: the map gains one axis per loop
    return weights.clamp_min(MIN_IMPORTANCE).to(dtype)


def window_starts(image_size: int, roi_size: int, overlap: float) -> list[int]:
    """Start index of every window along one axis; the last window is moved back to end at the border (notebook 07).

    Windows step by ``int(roi_size * (1 - overlap))`` voxels (at least 1), MONAI's rule. Rather than pad
    the volume, a window that would run past the end is shifted back so it ends exactly at the border.

    Example:
        >>> window_starts(155, 64, 0.5)
        [0, 32, 64, 91]
    """
    if roi_size >= image_size:
        return [0]
    step = max(int(roi_size * (1 - overlap)), 1)
    count = math.ceil((image_size - roi_size) / step) + 1
    return [min(index * step, image_size - roi_size) for index in range(count)]


def window_slices(
    image_size: Sequence[int], roi_size: Sequence[int], overlap: Sequence[float]
) -> list[tuple[slice, ...]]:
    """Every window of the scan grid as a tuple of slices (one per spatial axis), last axis fastest (notebook 07)."""
    starts = [window_starts(size, roi, axis_overlap) for size, roi, axis_overlap in zip(image_size, roi_size, overlap)]
    return [
        tuple(slice(start, start + roi) for start, roi in zip(corner, roi_size))
        for corner in itertools.product(*starts)
    ]


def readable_sliding_window(
    volume: torch.Tensor,
    window: Sequence[int],
    predictor: Predictor,
    overlap: float = 0.5,
    flip_axes: Sequence[int] = (),
) -> torch.Tensor:
    """The whole of sliding-window inference in one loop, written to be read: windows, Gaussian blending, flip TTA.
    Introduced in notebook 07.

    ``volume`` is (N, C, *spatial), every axis at least one ``window`` long; returns softmax probabilities
    (N, K, *spatial). It gives what ``predict_with_flips`` gives with Gaussian blending and a softmax (the tests
    compare them); the course runs that one, which also batches windows, pads small volumes and keeps the result
    on another device than the network.
    """
    weights = importance_map(window, device=volume.device)  # one window's weights: 1 at its centre, small at edges
    starts = [window_starts(size, roi, overlap) for size, roi in zip(volume.shape[2:], window)]
    flips = [subset for count in range(len(flip_axes) + 1) for subset in itertools.combinations(flip_axes, count)]
    average = 0.0
    for flip in flips:  # () is the volume as it is; (0,) its left-right mirror image; ...
        dims = [2 + axis for axis in flip]  # tensor dimensions of the flipped axes (0 and 1 are N and C)
        mirrored = torch.flip(volume, dims)
        weighted_sum, total_weight = None, volume.new_zeros(volume.shape[2:])  # on the volume's device
        for corner in itertools.product(*starts):  # every window of the grid
            box = tuple(slice(start, start + roi) for start, roi in zip(corner, window))
            with torch.no_grad():
                logits = predictor(mirrored[(slice(None), slice(None), *box)])
            if weighted_sum is None:
                weighted_sum = volume.new_zeros(volume.shape[:1] + logits.shape[1:2] + volume.shape[2:])
            weighted_sum[(slice(None), slice(None), *box)] += logits * weights  # centre counts more than edges
            total_weight[box] += weights
        probabilities = torch.softmax(weighted_sum / total_weight, dim=1)  # the blend, then class probabilities
        average = average + torch.flip(probabilities, dims)  # mirrored back before averaging
    return average / len(flips)


def sliding_window_inference(
    inputs: torch.Tensor,
    roi_size: int | Sequence[int],
    predictor: Predictor,
    overlap: float | Sequence[float] = 0.5,
    mode: str = "gaussian",
    sigma_scale: float | Sequence[float] = 0.125,
    sw_batch_size: int = 1,
    sw_device: torch.device | str | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Predict a whole volume window by window and blend overlapping windows (runs under ``torch.no_grad``).
    Introduced in notebook 07.

    Args:
        inputs: (N, C, *spatial) tensor, 2D or 3D spatial.
        roi_size: window size per spatial axis (an int for all axes; ``None`` or <= 0: the whole axis).
        predictor: model or function mapping (B, C, *roi_size) to (B, K, *roi_size) logits.
        overlap: fraction of a window shared with its neighbour, in [0, 1) (one value or one per axis).
        mode: ``"gaussian"`` (window centres weigh more) or ``"constant"`` (plain average).
        sigma_scale: Gaussian sigma as a fraction of the window size (``"gaussian"`` mode only).
        sw_batch_size: windows per predictor call.
        sw_device: device of the predictor (default: the device of ``inputs``).
        device: device of the blended output (default: the device of ``inputs``); the CPU keeps a full
            volume off a small GPU while windows still run on ``sw_device``.
        progress: show a tqdm progress bar over window batches.

    Returns:
        (N, K, *spatial) blended predictions on ``device``, dtype of ``inputs``; axes shorter than the window
        are zero-padded (half before, half after) for prediction and cropped back.

    Example:
        >>> logits = sliding_window_inference(volume, (128, 128, 64), model, overlap=0.5)  # doctest: +SKIP
    """
    roi_size, overlaps = _checked_settings(inputs, roi_size, overlap, sw_batch_size)
    sw_device = torch.device(sw_device) if sw_device is not None else inputs.device
    device = torch.device(device) if device is not None else inputs.device

    padded, crop = _pad_to_roi(inputs, roi_size)  # from here on every axis is at least one window long
    windows = window_slices(padded.shape[2:], roi_size, overlaps)  # the scan grid, shared by all N images
    weights = importance_map(roi_size, mode, sigma_scale, device=sw_device, dtype=inputs.dtype)
    total_weight = torch.zeros(padded.shape[2:], device=device, dtype=inputs.dtype)
    weights_on_output_device = weights.to(device)
    for window in windows:  # how much weight every voxel receives in total (the same for every image)
        total_weight[window] += weights_on_output_device

    jobs = [(image, window) for image in range(len(padded)) for window in windows]
    output = None
    with torch.no_grad():
        for first in tqdm(range(0, len(jobs), sw_batch_size), desc="sliding window", disable=not progress):
            batch = jobs[first:first + sw_batch_size]
            patches = [padded[(slice(image, image + 1), slice(None), *window)] for image, window in batch]
            patches = (torch.cat(patches) if len(patches) > 1 else patches[0]).to(sw_device)
            logits = predictor(patches)
            _check_prediction(logits, patches)
            if output is None:
                output = torch.zeros((len(padded), logits.shape[1], *padded.shape[2:]), device=device,
                                     dtype=inputs.dtype)
            for (image, window), patch_logits in zip(batch, logits):
                _add_weighted(output[(image, slice(None), *window)], patch_logits, weights, mode)
    output /= total_weight  # the weighted average, voxel by voxel: sum(weight x logits) / sum(weight)
    return output[(slice(None), slice(None), *crop)]


def _add_weighted(target: torch.Tensor, logits: torch.Tensor, weights: torch.Tensor, mode: str) -> None:
    """Add ``logits`` x ``weights`` into ``target`` in place (fused when both sit on one device)."""
    if mode == "constant":  # all weights are 1: skip the multiplication
        target += logits.to(target.device)
    elif logits.device == target.device:
        target.addcmul_(logits, weights)
    else:  # weight on the model's device, then move: one transfer per window
        target += (logits * weights).to(target.device)


def _pad_to_roi(inputs: torch.Tensor, roi_size: Sequence[int]) -> tuple[torch.Tensor, list[slice]]:
    """Zero-pad spatial axes shorter than the window (half before, half after); return the undoing crop."""
    pad_per_axis, crop = [], []
    for size, roi in zip(inputs.shape[2:], roi_size):
        missing = max(roi - size, 0)
        pad_per_axis.append((missing // 2, missing - missing // 2))
        crop.append(slice(missing // 2, missing // 2 + size))
    if not any(before or after for before, after in pad_per_axis):
        return inputs, crop
    flat_pad = [amount for axis_pad in reversed(pad_per_axis) for amount in axis_pad]  # F.pad: last axis first
    return F.pad(inputs, flat_pad, mode="constant", value=0.0), crop


def _checked_settings(
    inputs: torch.Tensor, roi_size: int | Sequence[int], overlap: float | Sequence[float], sw_batch_size: int
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Check the arguments of ``sliding_window_inference``; return the window size and overlap per axis."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 3 or not inputs.is_floating_point():
        found = f"{inputs.dtype} {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a floating-point (N, C, *spatial) tensor, got {found}")
    roi_size = _resolve_roi_size(roi_size, inputs.shape[2:])
    overlaps = _per_axis(overlap, inputs.ndim - 2, "overlap")
    if any(not 0 <= value < 1 for value in overlaps):
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    if sw_batch_size < 1:
        raise ValueError(f"sw_batch_size must be at least 1, got {sw_batch_size}")
    return roi_size, overlaps


def _check_prediction(logits: torch.Tensor, patches: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"predictor must return a tensor, got {type(logits).__name__}")
    if logits.ndim != patches.ndim or logits.shape[0] != patches.shape[0] or logits.shape[2:] != patches.shape[2:]:
        raise ValueError(f"predictor must return (B, K, *window) for windows {tuple(patches.shape)}, "
                         f"got {tuple(logits.shape)}")


def _resolve_roi_size(roi_size: int | Sequence[int | None], spatial_size: Sequence[int]) -> tuple[int, ...]:
    """One window size per axis; ``None`` or a non-positive size means the whole axis."""
    sizes = _per_axis(roi_size, len(spatial_size), "roi_size")
    return tuple(int(roi) if roi is not None and roi > 0 else int(full) for roi, full in zip(sizes, spatial_size))


def _per_axis(value, n_axes: int, name: str) -> tuple:
    """Repeat a scalar for every axis, or check a sequence has one value per axis."""
    if value is None or isinstance(value, numbers.Number):
        return (value,) * n_axes
    values = tuple(value)
    if len(values) != n_axes:
        raise ValueError(f"{name} needs one value per spatial axis ({n_axes}), got {value}")
    return values


def _check_choice(value: str, choices: Sequence[str], name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _flip_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every subset of ``axes``, from no flip to all of them: 2 ** len(axes) mirror images (notebook 07).

    Example:
        >>> _flip_combinations((0, 1))
        [(), (0,), (1,), (0, 1)]
    """
    return [subset for count in range(len(axes) + 1) for subset in itertools.combinations(axes, count)]


def predict_with_flips(
    predictor: Predictor,
    inputs: torch.Tensor,
    roi_size: int | Sequence[int],
    overlap: float | Sequence[float] = 0.5,
    mode: str = "gaussian",
    sigma_scale: float | Sequence[float] = 0.125,
    sw_batch_size: int = 1,
    sw_device: torch.device | str | None = None,
    device: torch.device | str | None = None,
    flip_axes: Sequence[int] | None = None,
    progress: bool = False,
    activation: str = "softmax",
) -> torch.Tensor:
    """Flip test-time augmentation: probabilities averaged over mirrored copies of the input (notebook 07).

    Each mirror image is predicted with ``sliding_window_inference`` (same arguments), turned into
    probabilities (softmax over the class axis, or a sigmoid per channel), flipped back, and averaged.

    Args:
        flip_axes: spatial axes (0 = first spatial axis) whose flips are combined: every subset is used, so
            ``None`` (all axes of a 3D input) gives 8 predictions, ``(0,)`` gives 2, ``()`` gives plain
            inference. The other arguments are those of ``sliding_window_inference``.
        activation: ``"softmax"`` (exclusive classes) or ``"sigmoid"`` (overlapping regions WT, TC, ET).

    Returns:
        (N, K, *spatial) averaged probabilities.
    """
    _check_choice(activation, ("softmax", "sigmoid"), "activation")
    n_spatial = inputs.ndim - 2
    axes = tuple(range(n_spatial)) if flip_axes is None else tuple(flip_axes)
    if any(axis not in range(n_spatial) for axis in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"flip_axes must be distinct spatial axes in 0..{n_spatial - 1}, got {flip_axes}")
    flips = _flip_combinations(axes)
    average = None
    for flip in tqdm(flips, desc="flip TTA", disable=not progress or len(flips) == 1):
        dims = [2 + axis for axis in flip]  # tensor dims: skip N and C
        mirrored = torch.flip(inputs, dims) if dims else inputs
        logits = sliding_window_inference(mirrored, roi_size, predictor, overlap, mode, sigma_scale,
                                          sw_batch_size, sw_device, device, progress=progress and len(flips) == 1)
        logits = logits.float()
        probabilities = torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)
        probabilities = torch.flip(probabilities, dims) if dims else probabilities
        average = probabilities if average is None else average.add_(probabilities)
    return average / len(flips)
