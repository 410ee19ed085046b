"""Segment one case end to end: normalise, sliding window (+ flip TTA), argmax, post-process, NIfTI export."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from braintools.inference import SliceWise2D, predict_with_flips
from braintools.io import Case, save_prediction_nifti
from braintools.labels import BRATS2020, CLASS_NAMES, LabelConvention, from_contiguous
from braintools.models2d import Downsampled
from braintools.models3d import UNet3D, wrap_downsampled
from braintools.preprocess import zscore_brain
from braintools.profiles import Profile


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
    crop_margin: int | None = None,
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
        crop_margin: predict only inside the box around the brain (non-zero voxels) grown by this many
            voxels, background elsewhere (``None``: the whole grid). Often halves the windows on BraTS.

    Example:
        >>> labels = predict_case(model, io.load_case(folder), (128, 128, 64), tta=True)  # doctest: +SKIP
    """
    box = brain_box(case.image, crop_margin) if crop_margin is not None else (slice(None),) * 3
    inputs = torch.from_numpy(zscore_brain(case.image[(slice(None), *box)]))[None]
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
    classes = np.zeros(case.image.shape[1:], np.uint8)
    classes[box] = probabilities[0].argmax(dim=0).to("cpu").numpy()
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


# --------------------------------------------------------------------------- the best model on disk

CHECKPOINT_ORDER = ("unet3d", "inflated3d", "unet2d")  # preference when several checkpoints exist
INFLATED_DIVISOR = 32  # an smp Unet halves every axis five times
FALLBACK_SMP_MODELS = (("Unet", "resnet34"), ("Unet", "resnet18"))  # tried when the profile's model does not fit


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, ready for ``predict_case`` with its own sliding-window settings.

    Attributes:
        name: ``"unet3d"``, ``"inflated3d"`` or ``"unet2d"`` (the checkpoint's name).
        model: takes (N, 4, X, Y, Z) volumes (a 2D model is wrapped in ``SliceWise2D``), in eval mode.
        path: the checkpoint file.
        roi_size: window for ``sliding_window_inference`` (``-1``: the whole axis).
        overlap: window overlap (0 for a slice-wise 2D model: its slices do not depend on each other).
        epoch: training epoch stored in the checkpoint.
        description: one line saying what was loaded.
    """

    name: str
    model: nn.Module
    path: Path
    roi_size: tuple[int, ...]
    overlap: float
    epoch: int
    description: str


def unet3d_from_state(state: dict[str, torch.Tensor]) -> UNet3D:
    """Build the ``UNet3D`` whose weights ``state`` holds (levels and channels read from the weight shapes)."""
    features, level = [], 0
    while f"encoder.{level}.0.weight" in state:
        features.append(int(state[f"encoder.{level}.0.weight"].shape[0]))
        level += 1
    if len(features) < 2:
        raise ValueError("not a UNet3D state dict: no encoder.<level>.0.weight entries")
    in_channels = int(state["encoder.0.0.weight"].shape[1])
    num_classes = int(state["head.weight"].shape[0])
    deep = any(key.startswith("deep_heads.") for key in state)
    return UNet3D(in_channels, num_classes, features, deep_supervision=deep)


def _smp_candidates(profile: Profile) -> list[tuple[str, str]]:
    """(architecture, encoder) pairs a 2D or inflated checkpoint of this profile may hold, most likely first."""
    pairs = [(profile.architecture_2d, profile.encoder_2d), *FALLBACK_SMP_MODELS]
    return list(dict.fromkeys(pairs))


def build_checkpoint_model(name: str, state: dict[str, torch.Tensor], profile: Profile) -> nn.Module:
    """Rebuild the network of checkpoint ``name`` and load ``state`` into it (strict); raise ValueError if none fits."""
    if name == "unet3d":
        model = unet3d_from_state(state)
        model.load_state_dict(state)
        return model
    if name not in ("inflated3d", "unet2d"):
        raise ValueError(f"unknown checkpoint name {name!r}; expected one of {CHECKPOINT_ORDER}")
    from braintools.inflation import inflate_2d_model_to_3d
    from braintools.models2d import create_smp_model

    if name == "unet2d" and state and all(key.startswith("model.") for key in state):  # saved from a wrapper
        state = {key.removeprefix("model."): value for key, value in state.items()}
    errors = []
    for architecture, encoder in _smp_candidates(profile):
        model = create_smp_model(architecture, encoder, encoder_weights=None)
        if name == "inflated3d":
            model = inflate_2d_model_to_3d(model, depth_kernel=profile.depth_kernel_inflated)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            errors.append(f"{architecture}/{encoder}: {str(error).splitlines()[0]}")
            continue
        return model
    raise ValueError(f"{name} checkpoint fits none of the profile's models ({'; '.join(errors)})")


def round_up_roi(roi_size: Sequence[int], divisor: int | Sequence[int]) -> tuple[int, ...]:
    """Round every window axis up to a multiple of ``divisor`` (one for all axes, or one per axis).

    A U-Net halves each axis several times, so its input must divide evenly.

    Example:
        >>> round_up_roi((32, 32, 16), 32), round_up_roi((100, 100, 16), (128, 128, 32))
        ((32, 32, 32), (128, 128, 32))
    """
    divisors = [int(divisor)] * len(roi_size) if isinstance(divisor, int) else [int(d) for d in divisor]
    return tuple(-(-int(size) // d) * d for size, d in zip(roi_size, divisors))


def load_best_model(
    checkpoint_dir: str | os.PathLike,
    profile: Profile,
    device: torch.device | str = "cpu",
    order: Sequence[str] = CHECKPOINT_ORDER,
    roi_size: Sequence[int] | None = None,
    overlap: float | None = None,
) -> LoadedModel | None:
    """Load the first checkpoint ``<name>_best.pt`` of ``order`` found in ``checkpoint_dir``; ``None`` if none.

    A checkpoint that cannot be rebuilt is skipped with a printed reason, and the next one is tried.
    Windows: ``roi_size`` and ``overlap`` (default: the profile's), rounded up to what the network accepts;
    a slice-wise 2D model takes whole slices, ``roi_size[2]`` of them per window, without overlap.
    """
    for name in order:
        path = Path(checkpoint_dir) / f"{name}_best.pt"
        if not path.is_file():
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            network = build_checkpoint_model(name, state["model"], profile)
        except (ValueError, KeyError) as error:
            print(f"skipping {path}: {error}")
            continue
        window = _window_settings(name, profile, roi_size, overlap)
        return _loaded(name, network, path, int(state.get("epoch", 0)), profile, device, window)
    return None


def _window_settings(name: str, profile: Profile, roi_size: Sequence[int] | None, overlap: float | None
                     ) -> tuple[tuple[int, ...], float]:
    """Window and overlap: the arguments, else the profile's (``roi_size_inflated`` for an inflated model)."""
    inflated = name == "inflated3d"
    default_roi, default_overlap = ((profile.roi_size_inflated, profile.overlap_inflated) if inflated
                                    else (profile.roi_size, profile.overlap))
    return tuple(roi_size or default_roi), float(default_overlap if overlap is None else overlap)


def _loaded(name: str, network: nn.Module, path: Path, epoch: int, profile: Profile,
            device: torch.device | str, window: tuple[tuple[int, ...], float]) -> LoadedModel:
    """Wrap a rebuilt network with the sliding-window settings that suit it."""
    roi, overlap = window
    if name == "unet2d":  # trained on slices shrunk downsample_2d times (notebook 04): predict the same way
        factor = profile.downsample_2d
        inner = Downsampled(network, factor) if factor > 1 else network
        model = SliceWise2D(inner, multiple=INFLATED_DIVISOR * factor, slice_batch_size=profile.batch_size_2d)
        roi, overlap = (-1, -1, roi[2]), 0.0
    elif name == "inflated3d":  # inflated from that 2D model: it must see the same in-plane scale
        from braintools.inflation import InPlaneDownsampled

        factor = profile.downsample_2d
        model = InPlaneDownsampled(network, factor) if factor > 1 else network
        roi = round_up_roi(roi, (INFLATED_DIVISOR * factor, INFLATED_DIVISOR * factor, INFLATED_DIVISOR))
    else:  # notebook 05 trains the 3D U-Net on patches shrunk downsample_3d times: predict the same way
        model = wrap_downsampled(network, profile.downsample_3d)
        roi = round_up_roi(roi, model.size_divisor)
    model = model.to(device).eval()
    parameters = sum(p.numel() for p in model.parameters())
    description = (f"{name} from {path.name} (epoch {epoch}, {parameters / 1e6:.2f} M parameters), "
                   f"window {roi}, overlap {overlap}")
    return LoadedModel(name, model, path, roi, overlap, epoch, description)


def brain_box(image: np.ndarray, margin: int = 8) -> tuple[slice, ...]:
    """Spatial slices of the box around all non-zero voxels of (C, X, Y, Z) ``image``, grown by ``margin``.

    BraTS images are skull-stripped: about half the grid is zero background, which a network need not see.
    Returns the whole grid when the image is all zero.
    """
    mask = np.any(np.asarray(image) != 0, axis=0)
    if not mask.any():
        return tuple(slice(0, size) for size in mask.shape)
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)
