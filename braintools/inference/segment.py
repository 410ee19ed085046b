"""Segment a case: the one inference path of notebooks 05-08 and the command line.

``segment_case`` turns one image (raw from ``io.load_case``, or already normalised) into a class map: the course's
normalisation, the brain's bounding box, sliding windows (with flip TTA if asked), argmax (or sigmoid > 0.5 for a
region model), background outside the brain, then the post-processing asked for. Every setting that changes a
segmentation lives in one ``InferenceSettings`` with one set of defaults, and ``describe()`` prints them next to every
score (``evaluation.cases.evaluate_cases``), so the same checkpoint, cases and settings give the same number in every
notebook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from braintools.data.io import MODALITIES
from braintools.data.labels import classes_from_regions
from braintools.data.preprocess import brain_box, brain_mask, normalise_image
from braintools.inference import postprocess
from braintools.inference.sliding_window import predict_with_flips
from braintools.models.checkpoints import SMP_DIVISOR, LoadedModel, ModelSpec, model_spec
from braintools.models.wrappers import SliceWise2D
from braintools.runtime import model_device


@dataclass(frozen=True)
class InferenceSettings:
    """Every setting that changes a segmentation, with the course's defaults (notebook 07 studies each one).
    Introduced in notebook 04.

    Attributes:
        window: sliding window (X, Y, Z); ``None``: the one stored in the model's spec (its training patch).
            Rounded up to what the network accepts.
        overlap: fraction of a window shared with its neighbour, in [0, 1).
        blend: ``"gaussian"`` (window centres weigh more) or ``"constant"``.
        crop_margin: predict only inside the brain's bounding box grown by this many voxels (``None``: the grid).
        tta_flip_axes: flip test-time augmentation over every subset of these axes (``()``: none; ``(0,)``:
            left-right, 2 passes).
        keep_largest: keep only the largest connected whole-tumour component.
        rim_voxels: remove whole-tumour components lying mostly within this many voxels of the brain's surface
            (``postprocess.remove_rim_components``; 0: off), the false alarms of real scans at the cortex.
        min_component: remove whole-tumour components smaller than this many voxels (0: keep all).
        min_et_voxels: a predicted enhancing tumour smaller than this in total becomes necrosis (0: off).
        sw_batch_size: windows per forward pass (speed and memory only: it never changes a score).
    """

    window: tuple[int, int, int] | None = None
    overlap: float = 0.5
    blend: str = "gaussian"
    crop_margin: int | None = 8
    tta_flip_axes: tuple[int, ...] = ()
    keep_largest: bool = False
    rim_voxels: int = 0
    min_component: int = 0
    min_et_voxels: int = 0
    sw_batch_size: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must lie in [0, 1), got {self.overlap}")
        if self.blend not in ("gaussian", "constant"):
            raise ValueError(f"blend must be 'gaussian' or 'constant', got {self.blend!r}")
        if self.window is not None:
            window = tuple(self.window)
            if len(window) != 3 or not all(float(size) == int(size) and int(size) >= 1 for size in window):
                raise ValueError(f"window must be three positive whole sizes (X, Y, Z), got {self.window}")
            object.__setattr__(self, "window", tuple(int(size) for size in window))
        object.__setattr__(self, "tta_flip_axes", tuple(int(axis) for axis in self.tta_flip_axes))

    def replace(self, **changes) -> InferenceSettings:
        """A copy with some settings changed, e.g. ``settings.replace(keep_largest=True)``."""
        return dataclasses.replace(self, **changes)

    def network_settings(self) -> tuple:
        """The settings that change the network's output (post-processing excluded)."""
        return (self.window, self.overlap, self.blend, self.crop_margin, self.tta_flip_axes)

    def postprocess(self, classes: np.ndarray, brain: np.ndarray | None = None) -> np.ndarray:
        """Apply the post-processing steps these settings ask for to a contiguous class map (a new array).

        ``brain`` (the brain mask) is needed for ``rim_voxels``.
        """
        if self.rim_voxels:
            if brain is None:
                raise ValueError("rim_voxels needs the brain mask: postprocess(classes, brain)")
            classes = postprocess.remove_rim_components(classes, brain, self.rim_voxels)
        if self.keep_largest:
            classes = postprocess.keep_largest_component(classes, "WT")
        return postprocess.postprocess_classes(classes, min_component_size=self.min_component or None,
                                               min_et_voxels=self.min_et_voxels or None)

    def describe(self, spec: ModelSpec | None = None) -> str:
        """The settings in one line, printed next to every score (``spec`` resolves the default window)."""
        window = inference_window(spec, self) if spec is not None else self.window
        if spec is not None and spec.kind == "unet2d":
            windows = f"whole axial slices, {window[2]} per pass"
        else:
            shown = "x".join(map(str, window)) if window else "the model's patch"
            windows = f"window {shown}, overlap {self.overlap:g}, {self.blend}"
        crop = "whole grid" if self.crop_margin is None else f"brain box + {self.crop_margin}"
        tta = f"flip TTA axes {self.tta_flip_axes}" if self.tta_flip_axes else "no TTA"
        steps = ([f"drop WT blobs on the {self.rim_voxels}-voxel brain rim"] if self.rim_voxels else []) + (
            ["keep largest WT"] if self.keep_largest else []) + (
            [f"WT blobs < {self.min_component}"] if self.min_component else []) + (
            [f"ET < {self.min_et_voxels} -> NCR"] if self.min_et_voxels else [])
        return f"{windows}; {crop}; {tta}; post-processing: {', '.join(steps) or 'none'}"


def _round_up(window: Sequence[int], divisors: Sequence[int]) -> tuple[int, ...]:
    """Round every window axis up to a multiple of its divisor (a U-Net halves each axis several times) (notebook 07).

    Example:
        >>> _round_up((100, 100, 16), (32, 32, 32))
        (128, 128, 32)
    """
    return tuple(-(-int(size) // int(divisor)) * int(divisor) for size, divisor in zip(window, divisors))


def inference_window(spec: ModelSpec, settings: InferenceSettings,
                     grid: Sequence[int] | None = None) -> tuple[int, ...]:
    """The window a model predicts with: the settings' or its spec's, rounded up to what the network accepts.
    Introduced in notebook 07.

    A slice-wise 2D model takes whole slices (``-1`` in X and Y) and ``window[2]`` slices per pass. With the volume's
    ``grid`` (X, Y, Z), a window chosen in the settings that is more than twice the volume on some axis (and larger
    than the model's own) is refused with a ``ValueError``: beyond the volume a window only adds zero padding, and a
    window of thousands of voxels cannot even be allocated.
    """
    window = settings.window or spec.window
    if window is None:
        raise ValueError(f"no sliding window: the model's spec ({spec.describe()}) stores none; pass "
                         "InferenceSettings(window=(X, Y, Z))")
    rounded = (-1, -1, int(window[2])) if spec.kind == "unet2d" else _round_up(window, spec.size_divisor)
    if grid is not None and settings.window is not None:
        own = inference_window(spec, InferenceSettings()) if spec.window is not None else (0, 0, 0)
        limits = tuple(max(size, *_round_up((2 * int(axis),), (divisor,))) for size, axis, divisor in
                       zip(own, grid, spec.size_divisor))
        if any(size > limit for size, limit in zip(rounded, limits) if size != -1):
            fits = "x".join(map(str, _round_up(grid, spec.size_divisor)))
            raise ValueError(f"window {'x'.join(map(str, settings.window))} is far larger than the volume "
                             f"{'x'.join(map(str, grid))} (at most {'x'.join(map(str, limits))}; {fits} already "
                             "covers all of it): choose a smaller window (--roi)")
    return rounded


def model_inputs(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The channels a model takes, in its order: an image in the course's order (``io.MODALITIES``: t1, t1ce, t2,
    flair, as ``io.load_case`` returns it) is reordered (or subset) to the spec's ``modalities``.

    An image with ``spec.in_channels`` channels and another count than ``io.MODALITIES`` is taken as already in the
    model's order.
    """
    channels = image.shape[0] if image.ndim == 4 else None
    if channels == len(MODALITIES):
        if tuple(spec.modalities) == MODALITIES:
            return image
        return image[[MODALITIES.index(name) for name in spec.modalities]]
    if channels == spec.in_channels:
        return image
    raise ValueError(f"image must be ({len(MODALITIES)}, X, Y, Z) in the order {MODALITIES} (io.load_case), or "
                     f"({spec.in_channels}, X, Y, Z) in the model's order {tuple(spec.modalities)}; got shape "
                     f"{image.shape}")


def volume_predictor(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """A module taking (N, C, X, Y, Z) volumes: the model, or a 2D model run on each axial slice (notebook 07)."""
    if spec.kind == "unet2d":
        return SliceWise2D(model, multiple=SMP_DIVISOR * spec.shrink, align=spec.shrink)
    return model


def _aligned_box(box: tuple[slice, ...], shape: tuple[int, ...], spec: ModelSpec) -> tuple[slice, ...]:
    """Move a crop box's X and Y start down to a multiple of the model's in-plane shrink factor (notebook 07).

    A 2D network trained on slices shrunk ``shrink`` times always saw the same grid of blocks (slices padded from
    240 to 256, 8 pixels before); a crop that starts elsewhere shifts that grid, and thin structures such as the
    enhancing rim then fall between blocks differently from training. Z (slices) and 3D U-Nets (trained on patches
    at any offset) are left as they are.
    """
    if spec.kind == "unet3d" or spec.shrink == 1:
        return box
    aligned = list(box)
    for axis in (0, 1):
        start, stop, _ = box[axis].indices(shape[axis])
        aligned[axis] = slice(start - start % spec.shrink, stop)
    return tuple(aligned)


def model_and_spec(model: nn.Module | LoadedModel) -> tuple[nn.Module, ModelSpec]:
    """The network and its spec, of a ``LoadedModel`` or of a model built by ``build_model``."""
    if isinstance(model, LoadedModel):
        return model.model, model.spec
    spec = model_spec(model)
    if spec is None:
        raise ValueError("the model has no spec: build it with checkpoints.build_model or load it with "
                         "checkpoints.load_model")
    return model, spec


def segment_case(
    model: nn.Module | LoadedModel,
    image: np.ndarray,
    settings: InferenceSettings = InferenceSettings(),
    normalised: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Segment one (C, X, Y, Z) image; return contiguous classes (X, Y, Z) uint8 (0 bg, 1 NCR, 2 ED, 3 ET).

    Args:
        model: a ``LoadedModel`` (``checkpoints.load_model``) or a model built by ``checkpoints.build_model``.
        image: raw intensities (``io.load_case(...).image``), or already normalised (the npy cache) with
            ``normalised=True``; both give the same network input. Its channels are in the course's order
            (``io.MODALITIES``) and are given to the model in the order of its spec's ``modalities``
            (``model_inputs``).
        settings: window, overlap, blending, crop, TTA and post-processing (``InferenceSettings``).
        progress: a progress bar over the windows.

    The model runs in eval mode (its mode is restored afterwards) on its own device; the blended volume stays
    on the CPU. Voxels outside the brain (all channels zero) are background: BraTS images are skull-stripped.

    Example:
        >>> classes = segment_case(load_model(path), io.load_case(folder).image)  # doctest: +SKIP
    """
    network, spec = model_and_spec(model)
    image = np.asarray(image, dtype=np.float32) if normalised else normalise_image(image)
    channels = model_inputs(image, spec)  # the model's modalities, in its order
    brain = brain_mask(image)
    box = (_aligned_box(brain_box(image, settings.crop_margin), image.shape[1:], spec)
           if settings.crop_margin is not None else (slice(None),) * 3)
    inputs = torch.from_numpy(np.ascontiguousarray(channels[(slice(None), *box)]))[None]
    window = inference_window(spec, settings, image.shape[1:])
    was_training = network.training
    network.eval()
    try:
        probabilities = predict_with_flips(
            volume_predictor(network, spec), inputs, window, 0.0 if spec.kind == "unet2d" else settings.overlap,
            settings.blend, sw_batch_size=settings.sw_batch_size, sw_device=model_device(network), device="cpu",
            flip_axes=settings.tta_flip_axes, progress=progress,
            activation="softmax" if spec.output == "classes" else "sigmoid")
    finally:
        network.train(was_training)
    if probabilities.shape[1] != spec.num_outputs:
        raise ValueError(f"the model returned {probabilities.shape[1]} channels, its spec says {spec.num_outputs}")
    classes = np.zeros(image.shape[1:], np.uint8)
    if spec.output == "classes":
        classes[box] = probabilities[0].argmax(dim=0).numpy()
    else:
        classes[box] = classes_from_regions((probabilities[0] > 0.5).numpy())
    classes[~brain] = 0
    return settings.postprocess(classes, brain)
