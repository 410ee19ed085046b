"""Segment one case end to end: normalise, sliding window (+ flip TTA), argmax, post-process, NIfTI export."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from braintools.inference import predict_with_flips
from braintools.io import Case, save_prediction_nifti
from braintools.labels import BRATS2020, CLASS_NAMES, LabelConvention, from_contiguous
from braintools.preprocess import zscore_brain


def predict_case(
    model: nn.Module,
    case: Case,
    roi_size: int | Sequence[int],
    overlap: float = 0.5,
    mode: str = "gaussian",
    sw_batch_size: int = 1,
    tta: bool = False,
    flip_axes: Sequence[int] | None = None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    out_path: str | os.PathLike | None = None,
    sw_device: torch.device | str | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    convention: LabelConvention = BRATS2020,
) -> np.ndarray:
    """Segment a loaded case and return BraTS labels (X, Y, Z) uint8 (0/1/2/4); optionally write a NIfTI.

    Steps: brain-masked z-score of each channel, sliding-window inference (with flip TTA when ``tta``),
    softmax and argmax over the 4 classes, optional post-processing of the class map, classes 0..3 mapped
    back to BraTS labels. The model is put in eval mode for the call (and restored afterwards).

    Args:
        model: 3D network (or ``SliceWise2D`` around a 2D one) returning (N, 4, *window) logits.
        case: the case from ``io.load_case``; its affine is copied into the NIfTI.
        roi_size, overlap, mode, sw_batch_size: sliding-window settings (see ``sliding_window_inference``).
        tta: average softmax probabilities over flips of ``flip_axes`` (default all 3 axes: 8 predictions).
        postprocess: function on the contiguous class map, e.g.
            ``functools.partial(postprocess.postprocess_classes, min_et_voxels=200)``.
        out_path: ``.nii``/``.nii.gz`` file to write (atomically) with the case's affine.
        sw_device: device of the model's windows (default: the device of the model's parameters).
        device: device holding the full-volume probabilities (default: the CPU).
        convention: label values to write (BraTS 2018-2021 by default: ET = 4).

    Example:
        >>> labels = predict_case(model, io.load_case(folder), (128, 128, 64), tta=True)  # doctest: +SKIP
    """
    inputs = torch.from_numpy(zscore_brain(case.image))[None]
    sw_device = sw_device if sw_device is not None else _parameter_device(model)
    was_training = model.training
    model.eval()
    try:
        probabilities = predict_with_flips(model, inputs, roi_size, overlap, mode, sw_batch_size=sw_batch_size,
                                           sw_device=sw_device, device=device or "cpu",
                                           flip_axes=flip_axes if tta else (), progress=progress)
    finally:
        model.train(was_training)
    if probabilities.shape[1] != len(CLASS_NAMES):
        raise ValueError(f"model must output {len(CLASS_NAMES)} logits {CLASS_NAMES}, got {probabilities.shape[1]}")
    classes = probabilities[0].argmax(dim=0).to("cpu").numpy().astype(np.uint8)
    if postprocess is not None:
        classes = np.asarray(postprocess(classes), dtype=np.uint8)
    labels = from_contiguous(classes, convention)
    if out_path is not None:
        save_prediction_nifti(labels, case.affine, out_path, convention=convention)
    return labels


def _parameter_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
