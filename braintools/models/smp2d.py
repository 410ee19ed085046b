"""2D segmentation models from segmentation-models-pytorch (smp) with ImageNet or timm encoders.

``create_smp_model`` builds any smp architecture (Unet, UnetPlusPlus, FPN, DeepLabV3Plus, ...) with any smp
encoder (``resnet34``, ``efficientnet-b0``, ...) or any timm model as a ``tu-`` encoder (``tu-resnet18``,
``tu-efficientnet_b0``, ``tu-convnext_tiny``, ...), 4 input channels and 4 output classes.

Four MRI channels, ImageNet weights for three: smp (and timm, for ``tu-`` encoders) adapt the first
convolution by cycling the RGB filters over the new channels and scaling them by 3 / 4, so channel i gets
the pretrained filter of colour i % 3: T1 <- R, T1ce <- G, T2 <- B, FLAIR <- R, each times 0.75. The sum of
the filter responses over channels keeps its ImageNet scale; the network then learns what the channels mean.

Without internet the ImageNet download would fail only after the Hugging Face client's retries (about 40 s).
``create_smp_model`` first checks in about a second whether the Hub answers (``hub_reachable``); when it does not,
it asks the client for cached files only (offline mode), so it never waits on the network. Without the files it
says so and falls back to random initialisation. ``weights_path`` loads weights from a local file instead: a full model
(a ``state_dict`` or a ``braintools.training.train`` checkpoint) or an encoder alone (e.g. the smp-hub or timm file
for the encoder, with a 3-channel first convolution that is adapted the same way as above).

``wrappers.Downsampled(model, factor)`` runs a model on slices shrunk ``factor`` times (to save compute on a CPU) while
taking and returning full-size tensors: it averages blocks of ``factor x factor`` input pixels and upsamples the
logits back, so losses and Dice use the full-size labels (a thin enhancing rim survives).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from huggingface_hub import constants as hub_constants
from timm.models import adapt_input_conv
from torch import nn

# Keys of classification heads in ImageNet encoder files; a segmentation encoder has no such layer.
CLASSIFIER_PREFIXES = ("fc.", "_fc.", "classifier.", "head.", "last_linear.", "model.fc.", "model.classifier.")
HUB_HOST = "huggingface.co"  # smp and timm download ImageNet weights from the Hugging Face Hub


def hub_reachable(host: str = HUB_HOST, port: int = 443, timeout: float = 2.0) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds (no data is sent) (notebook 04)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # no DNS, no route, refused or timed out
        return False


@contextlib.contextmanager
def _hub_offline(offline: bool = True) -> Iterator[None]:
    """Temporarily switch the Hugging Face client to offline mode: cached files only, no network request.
    Introduced in notebook 04."""
    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = previous or offline
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def create_smp_model(
    architecture: str = "Unet",
    encoder_name: str = "resnet34",
    encoder_weights: str | None = None,
    in_channels: int = 4,
    num_classes: int = 4,
    weights_path: str | os.PathLike | None = None,
    **kwargs,
) -> nn.Module:
    """Build an smp model with 4-channel input and logits (N, num_classes, H, W) (notebook 06).

    Args:
        architecture: smp architecture name, e.g. ``"Unet"``, ``"UnetPlusPlus"``, ``"FPN"``, ``"DeepLabV3Plus"``.
        encoder_name: smp encoder (``"resnet34"``, ``"efficientnet-b0"``) or timm encoder (``"tu-resnet18"``).
        encoder_weights: ``None`` (random) or ``"imagenet"`` (downloaded; random with a message when offline).
        in_channels: input channels (4 MRI modalities).
        num_classes: output channels (4 classes, or 3 for sigmoid regions WT/TC/ET).
        weights_path: local weights file, loaded after building (overrides ``encoder_weights``).
        **kwargs: passed to the smp architecture (e.g. ``decoder_attention_type="scse"`` for Unet).

    The returned model has an ``initialisation`` attribute saying where its weights came from.

    Example:
        >>> model = create_smp_model("Unet", "resnet18")
        >>> model(torch.zeros(1, 4, 64, 64)).shape
        torch.Size([1, 4, 64, 64])
    """
    if architecture.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
        raise ValueError(f"unknown smp architecture {architecture!r}; choose one of "
                         f"{sorted(cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values())}")
    if weights_path is not None:
        model = _build(architecture, encoder_name, None, in_channels, num_classes, **kwargs)
        model.initialisation = _load_weights(model, weights_path)
        return model
    if encoder_weights is None:
        model = _build(architecture, encoder_name, None, in_channels, num_classes, **kwargs)
        model.initialisation = "random"
        return model
    online = hub_reachable()
    try:
        with _hub_offline(not online):
            model = _build(architecture, encoder_name, encoder_weights, in_channels, num_classes, **kwargs)
        model.initialisation = f"{encoder_weights} encoder"
    except OSError as error:  # no internet / no cached file: huggingface_hub and requests raise OSErrors
        where = "download failed" if online else f"{HUB_HOST} is not reachable and the local cache lacks them"
        print(f"create_smp_model: could not get the {encoder_weights} weights of encoder {encoder_name!r} "
              f"({where}; {type(error).__name__}: {str(error)[:160]}).\n"
              f"  Falling back to RANDOM initialisation. Offline? Copy the weights file here and pass "
              f"weights_path=..., or fill the Hugging Face cache on a machine with internet "
              f"(HF_HUB_OFFLINE=1 skips the download attempts).")
        model = _build(architecture, encoder_name, None, in_channels, num_classes, **kwargs)
        model.initialisation = f"random ({encoder_weights} weights unavailable)"
    return model


def _build(architecture: str, encoder_name: str, encoder_weights: str | None, in_channels: int,
           num_classes: int, **kwargs) -> nn.Module:
    """Call ``smp.create_model``; ``tu-`` encoders take ``True`` for "download the timm pretrained weights"."""
    if encoder_name.startswith("tu-") and encoder_weights is not None:
        encoder_weights = True
    return smp.create_model(architecture, encoder_name=encoder_name, encoder_weights=encoder_weights,
                            in_channels=in_channels, classes=num_classes, **kwargs)


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read tensors from a ``.safetensors`` file or a torch file (``weights_only=True``); unwrap checkpoints.
    Introduced in notebook 04.

    A ``braintools.training.train`` checkpoint keeps the weights under ``"model"``; other tools use ``"state_dict"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path}: expected a state_dict (parameter name -> tensor), got {type(state).__name__}")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _load_weights(model: nn.Module, path: str | os.PathLike) -> str:
    """Load a full-model or encoder-only weights file into an smp model; return what was loaded (notebook 04).

    Keys starting with ``encoder.`` mean a full model (loaded strictly); otherwise the file is an encoder
    (classifier-head keys are dropped, a 3-channel first convolution is adapted to the model's channels).
    A file that does not fit raises ``ValueError`` naming the file and the first mismatching keys.
    """
    state = _read_state_dict(path)
    if any(key.startswith("encoder.") for key in state):
        _load_strict(model, state, path)
        return f"full model from {Path(path).name}"
    encoder = model.encoder
    expected = encoder.state_dict()
    if not any(key in expected for key in state) and any(f"model.{key}" in expected for key in state):
        state = {f"model.{key}": value for key, value in state.items()}  # timm file into a tu- encoder
    state = {key: value for key, value in state.items() if key in expected or not key.startswith(CLASSIFIER_PREFIXES)}
    for key, value in state.items():
        target = expected.get(key)
        if target is not None and value.ndim == 4 and value.shape[1] == 3 and target.shape[1] != 3:
            state[key] = adapt_input_conv(target.shape[1], value)
    _load_strict(encoder, state, path)
    return f"encoder from {Path(path).name}"


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """``load_state_dict`` that explains a mismatch (missing, unexpected, wrong shape) with the file name."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [f"{key} {tuple(state[key].shape)} != {tuple(expected[key].shape)}"
                   for key in state if key in expected and state[key].shape != expected[key].shape]
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{path}: weights do not fit this {type(module).__name__} ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong_shape)} wrong shape); missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong_shape[:3]}. Was it saved from another architecture or encoder?"
        )
    module.load_state_dict(state, strict=True)
