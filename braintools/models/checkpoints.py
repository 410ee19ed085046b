"""Self-describing checkpoints: the model's spec is saved next to its weights, and one loader rebuilds it.

A checkpoint written by ``save_checkpoint`` holds a ``ModelSpec``: what network it is (3D U-Net, 2D smp model,
inflated 2D model), its sizes, the shrink wrapper it was trained in, its inputs (channels, modality order,
normalisation), its outputs (4 softmax classes or 3 sigmoid regions, label convention) and the sliding window it
was validated with. ``load_model(path)`` rebuilds exactly that model, wrapped as it was trained, whatever profile,
notebook parameter or folder it is used from; nothing is guessed from weight shapes.

Two kinds of files (``train.fit`` writes both):

- ``<name>_best.pt``, for inference: spec, weights, epoch, history. No optimizer state (a few MB to ~170 MB).
- ``<name>_last.pt``, for resuming: the same plus optimizer, scheduler, AMP scaler, early-stopping and random state.

Files are read with ``torch.load(..., weights_only=True)`` (a checkpoint cannot run code) and written atomically.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from braintools import paths
from braintools._private.atomic import atomic_path
from braintools.data.io import MODALITIES
from braintools.data.labels import BRATS2020, BRATS2023, LabelConvention
from braintools.errors import DataError
from braintools.runtime import model_device

CHECKPOINT_FORMAT = 2  # 1: no spec (braintools before self-describing checkpoints)
KINDS = ("unet3d", "unet2d", "inflated3d")
OUTPUTS = {"classes": 4, "regions": 3}  # softmax over background/NCR/ED/ET, or sigmoid WT/TC/ET
NORMALISATIONS = ("zscore_brain",)  # preprocess.normalise_image: brain-masked z-score, float16-rounded
LABEL_CONVENTIONS = {convention.name: convention for convention in (BRATS2020, BRATS2023)}
SMP_DIVISOR = 32  # an smp encoder halves every axis five times
MAX_SHRINK = 16  # a 240-voxel axis shrunk 16 times is 15 voxels: more leaves nothing to segment
MAX_FEATURES = 4096  # channels per level; nnU-Net's largest 3D U-Net has 320
MAX_WINDOW = 1024  # voxels per window axis; a BraTS scan is 240 x 240 x 155


def _whole(value: Any) -> bool:
    """True for a whole number (an int, not a bool, not a float such as 2.5)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a trained model exactly; saved in every checkpoint (notebook 06).

    Attributes:
        kind: ``"unet3d"`` (``unet3d.UNet3D``), ``"unet2d"`` (an smp model on axial slices) or ``"inflated3d"``
            (an smp model inflated to 3D, notebook 06).
        output: ``"classes"`` (4 softmax logits: background, NCR, ED, ET) or ``"regions"`` (3 sigmoid logits:
            WT, TC, ET).
        shrink: the network sees inputs shrunk this many times (``Downsampled3D`` for ``unet3d``, ``Downsampled`` for
            ``unet2d``, ``InPlaneDownsampled`` in X and Y for ``inflated3d``); 1: full size.
        window: sliding window (X, Y, Z) the model was validated with, the default for inference; for ``unet2d``,
            X and Y are ``-1`` (whole slices) and Z is the number of slices per window.
        features, deep_supervision, full_size_in_training: ``unet3d`` sizes (``UNet3D``, ``Downsampled3D``).
        architecture, encoder: the smp model of ``unet2d`` and ``inflated3d`` (e.g. ``"Unet"``, ``"resnet18"``).
        inflation: ``inflation.InflationOptions`` as a dict (``inflated3d`` only).
        in_channels, modalities, normalisation, labels: the inputs and the label values of exported predictions.
    """

    kind: str
    output: str = "classes"
    shrink: int = 1
    window: tuple[int, ...] | None = None
    features: tuple[int, ...] | None = None
    deep_supervision: bool = False
    full_size_in_training: bool = True
    architecture: str | None = None
    encoder: str | None = None
    inflation: dict[str, Any] | None = None
    in_channels: int = 4
    modalities: tuple[str, ...] = MODALITIES
    normalisation: str = "zscore_brain"
    labels: str = BRATS2020.name

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if self.output not in OUTPUTS:
            problems.append(f"output {self.output!r} is not one of {tuple(OUTPUTS)}")
        if not _whole(self.shrink) or not 1 <= self.shrink <= MAX_SHRINK:
            problems.append(f"shrink must be a whole number from 1 to {MAX_SHRINK}, got {self.shrink!r}")
        if self.kind == "unet3d" and not self.features:
            problems.append("a unet3d spec needs features (channels per level)")
        elif self.features is not None and not (
                isinstance(self.features, (tuple, list)) and self.features
                and all(_whole(value) and 1 <= value <= MAX_FEATURES for value in self.features)):
            problems.append(f"features must be channel counts from 1 to {MAX_FEATURES}, got {self.features!r}")
        if self.kind != "unet3d" and not (isinstance(self.architecture, str) and isinstance(self.encoder, str)
                                          and self.architecture and self.encoder):
            problems.append(f"a {self.kind} spec needs an smp architecture and encoder")
        if self.kind == "inflated3d" and not isinstance(self.inflation, dict):
            problems.append("an inflated3d spec needs its inflation options")
        for flag in ("deep_supervision", "full_size_in_training"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if not _whole(self.in_channels) or self.in_channels < 1:
            problems.append(f"in_channels must be a whole number >= 1, got {self.in_channels!r}")
        elif len(self.modalities) != self.in_channels:
            problems.append(f"{self.in_channels} input channels but modalities {self.modalities}")
        unknown = [name for name in self.modalities if name not in MODALITIES]
        if unknown or len(set(self.modalities)) != len(self.modalities):
            problems.append(f"modalities must be distinct names among {MODALITIES}, got {self.modalities}")
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation {self.normalisation!r} is not one of {NORMALISATIONS}")
        if self.labels not in LABEL_CONVENTIONS:
            problems.append(f"labels {self.labels!r} is not one of {sorted(LABEL_CONVENTIONS)}")
        if not problems:
            problems += self._window_problems()
        if problems:
            raise ValueError("invalid model spec: " + "; ".join(problems))

    def _window_problems(self) -> list[str]:
        """What is wrong with the window: three whole sizes, positive (``-1, -1, Z`` for a 2D model), not below
        what the network needs (its size divisor, in the axes the shrink factor applies to), not absurdly large."""
        if self.window is None:
            return []
        window = tuple(self.window)
        if len(window) != 3 or not all(_whole(size) for size in window):
            return [f"window must be three whole sizes (X, Y, Z), got {self.window!r}"]
        if self.kind == "unet2d":
            if window[2] < 1 or any(size < 1 and size != -1 for size in window[:2]):
                return [f"a unet2d window is (-1, -1, slices per pass), slices >= 1, got {window}"]
            checked = [2]
        else:
            if min(window) < 1:
                return [f"window sizes must be positive, got {window}"]
            checked = [0, 1, 2] if self.kind == "unet3d" else [0, 1]  # inflated3d: Z is not shrunk
        if max(window) > MAX_WINDOW:
            return [f"window {window} is larger than any scan (at most {MAX_WINDOW} voxels per axis)"]
        divisor = self.size_divisor
        small = [axis for axis in checked if window[axis] != -1 and window[axis] < divisor[axis]]
        if small and self.kind != "unet2d":
            return [f"shrink {self.shrink} is too large for this network: it needs windows of at least "
                    f"{'x'.join(map(str, divisor))} voxels, its window is {'x'.join(map(str, window))}"]
        return []

    @property
    def num_outputs(self) -> int:
        """Output channels: 4 classes or 3 regions."""
        return OUTPUTS[self.output]

    @property
    def label_convention(self) -> LabelConvention:
        """The label values predictions are exported with (BraTS 2018-2021: ET = 4)."""
        return LABEL_CONVENTIONS[self.labels]

    @property
    def size_divisor(self) -> tuple[int, int, int]:
        """Every window axis (X, Y, Z) must be a multiple of these numbers."""
        if self.kind == "unet3d":
            return (2 ** (len(self.features) - 1) * self.shrink,) * 3
        if self.kind == "inflated3d":
            return (SMP_DIVISOR * self.shrink, SMP_DIVISOR * self.shrink, SMP_DIVISOR)
        return (1, 1, 1)  # unet2d: SliceWise2D pads each slice itself

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, strings, numbers) for a checkpoint file."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelSpec:
        """Rebuild a spec from ``to_dict`` output; unknown keys are an error (a newer braintools wrote it)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model spec has unknown fields {unknown}: written by a newer braintools?")
        tuples = {key: tuple(value) for key, value in values.items()
                  if key in ("window", "features", "modalities") and value is not None}
        return cls(**{**values, **tuples})

    def describe(self) -> str:
        """One line: what network this is, e.g. ``unet3d (8, 16, 32, 64) on inputs shrunk 2x, 4 classes``."""
        if self.kind == "unet3d":
            network = f"UNet3D {tuple(self.features)}" + (" + deep supervision" if self.deep_supervision else "")
        else:
            network = f"{self.architecture}/{self.encoder} " + ("inflated to 3D" if self.kind == "inflated3d" else "2D")
        shrunk = f", inputs shrunk {self.shrink}x" if self.shrink > 1 else ""
        return f"{self.kind}: {network}{shrunk}, {self.num_outputs} {self.output}"


def build_model(spec: ModelSpec, encoder_weights: str | None = None,
                weights_path: str | os.PathLike | None = None) -> nn.Module:
    """Build the model a spec describes, wrapped as it is trained; ``model.spec`` holds the spec (notebook 05).

    ``encoder_weights`` (``"imagenet"``) and ``weights_path`` start an smp encoder from pretrained weights
    (``smp2d.create_smp_model``); every model is otherwise randomly initialised.
    """
    from braintools.models import smp2d, unet3d

    if spec.kind == "unet3d":
        network = unet3d.UNet3D(spec.in_channels, spec.num_outputs, spec.features, spec.deep_supervision)
    else:
        network = smp2d.create_smp_model(spec.architecture, spec.encoder, encoder_weights=encoder_weights,
                                            in_channels=spec.in_channels, num_classes=spec.num_outputs,
                                            weights_path=weights_path)
        if spec.kind == "inflated3d":
            from braintools.models.inflation import inflate_2d_model_to_3d

            network = inflate_2d_model_to_3d(network, **spec.inflation)
    return wrap(network, spec)


def wrap(network: nn.Module, spec: ModelSpec) -> nn.Module:
    """Wrap a network as its spec says it is trained (its shrink wrapper) and attach the spec (notebook 06).

    ``build_model`` uses it for fresh networks; notebook 06 uses it for the network it inflates itself.
    """
    from braintools.models import wrappers

    if spec.shrink == 1:
        model = network
    elif spec.kind == "unet3d":
        model = wrappers.Downsampled3D(network, spec.shrink, spec.full_size_in_training)
    elif spec.kind == "unet2d":
        model = wrappers.Downsampled(network, spec.shrink)
    else:
        model = wrappers.InPlaneDownsampled(network, spec.shrink)
    model.spec = spec
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper or ``torch.compile`` (or itself)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def network_of(model: nn.Module) -> nn.Module:
    """The network inside the shrink wrapper (and DDP), e.g. the smp model whose ``encoder`` a freezer needs.
    Introduced in notebook 04."""
    from braintools.models.wrappers import ShrunkInput

    model = unwrap(model)
    return model.model if isinstance(model, ShrunkInput) else model


def model_spec(model: nn.Module) -> ModelSpec | None:
    """The ``ModelSpec`` a model was built from (``build_model`` sets it), or ``None``."""
    return getattr(unwrap(model), "spec", None)


# --------------------------------------------------------------------------- writing and reading


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    epoch: int = 0, history: Sequence[dict] | None = None, spec: ModelSpec | None = None,
                    **extra) -> Path:
    """Write spec, weights, epoch, history (and the optimizer's state, for resuming) atomically to ``path``.

    ``spec`` defaults to the model's own (``build_model``). Leave ``optimizer`` out for a checkpoint meant for
    inference: it is then a fraction of the size. ``extra`` entries (scheduler, random state...) are stored as given.
    """
    spec = spec or model_spec(model)
    state = {"format": CHECKPOINT_FORMAT, "spec": None if spec is None else spec.to_dict(),
             "model": unwrap(model).state_dict(), "epoch": int(epoch), "history": list(history or []), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(state, handle)  # through an open file: a full disk keeps its error code (ENOSPC)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint file (``weights_only=True``); a missing, truncated or foreign file is a ``DataError``.
    Introduced in notebook 06."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: checkpoint is empty (0 bytes): an interrupted copy? Delete it and train again")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: refused to load: the file holds more than tensors and plain values, which "
                        f"weights_only=True does not run ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise DataError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): "
                        f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise DataError(f"{path}: not a braintools checkpoint (no 'model' weights entry)")
    return state


def _checkpoint_spec(state: dict[str, Any], path: str | os.PathLike) -> ModelSpec:
    """The ``ModelSpec`` stored in a checkpoint read by ``read_checkpoint``; a clear error when it has none.
    Introduced in notebook 05."""
    if state.get("spec") is None:
        raise DataError(f"{path}: checkpoint has no model spec (written by braintools before self-describing "
                        "checkpoints, or from a model not built with checkpoints.build_model): train it again, or "
                        "build the model by hand and load its weights with load_checkpoint(path, model)")
    try:
        return ModelSpec.from_dict(dict(state["spec"]))
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: {error}") from None


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Read a checkpoint and load its weights into ``model`` (strictly) and its state into ``optimizer``.
    Introduced in notebook 04."""
    state = read_checkpoint(path, model_device(model) if model is not None else "cpu")
    if model is not None:
        try:
            unwrap(model).load_state_dict(state["model"])
        except RuntimeError as error:
            raise DataError(f"{path}: weights do not fit this {type(unwrap(model)).__name__}: "
                            f"{str(error).splitlines()[0][:200]}") from None
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state


@dataclass
class LoadedModel:
    """A model rebuilt from its checkpoint by ``load_model``, in eval mode, ready for ``segment.segment_case``."""

    model: nn.Module
    spec: ModelSpec
    path: Path
    epoch: int
    history: list[dict]

    @property
    def name(self) -> str:
        """The checkpoint's file name without ``_best.pt`` (e.g. ``unet3d``)."""
        return self.path.name.removesuffix(".pt").removesuffix("_best").removesuffix("_last")

    @property
    def description(self) -> str:
        """One line: file, epoch, network, parameters."""
        parameters = sum(p.numel() for p in self.model.parameters())
        return (f"{self.path.name} (epoch {self.epoch}): {self.spec.describe()}, "
                f"{parameters / 1e6:.2f} M parameters")


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model a checkpoint describes, load its weights (strictly) and put it in eval mode on ``device``.
    Introduced in notebook 04.

    Example:
        >>> loaded = load_model("outputs/course/checkpoints/unet3d_best.pt")  # doctest: +SKIP
        >>> loaded.spec.kind, loaded.model.training  # doctest: +SKIP
        ('unet3d', False)
    """
    state = read_checkpoint(path)
    spec = _checkpoint_spec(state, path)
    try:
        model = build_model(spec)
    except (ValueError, TypeError, KeyError, RuntimeError) as error:  # e.g. an encoder smp does not know
        raise DataError(f"{path}: cannot build the model its spec describes ({spec.describe()}): "
                        f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise DataError(f"{path}: weights do not fit the model its spec describes ({spec.describe()}): "
                        f"{str(error).splitlines()[0][:200]}") from None
    return LoadedModel(model.to(device).eval(), spec, Path(path), int(state.get("epoch", 0)),
                       list(state.get("history", [])))


def load_best_model(checkpoint_dir: str | os.PathLike, names: Sequence[str] = KINDS,
                    device: torch.device | str = "cpu") -> LoadedModel | None:
    """Load the first ``<name>_best.pt`` of ``names`` that loads (notebook 07); ``None`` when none exists (notebook 07).

    A file that exists but cannot be loaded is reported (one printed line naming it and why) and the next name is
    tried; when every existing file fails, a ``DataError`` lists them all.
    """
    failures = []
    for name in names:
        path = paths.checkpoint_file(checkpoint_dir, name, "best")
        if not path.is_file():
            continue
        try:
            return load_model(path, device)
        except DataError as error:
            failures.append(str(error))
            print(f"skipping {error}")
    if failures:
        raise DataError(f"{checkpoint_dir}: no checkpoint could be loaded: " + " | ".join(failures))
    return None
