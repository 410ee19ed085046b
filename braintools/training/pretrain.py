"""Self-supervised pretraining of a 2D encoder on a proxy task: bring back a hidden MRI sequence (notebook 04).

Transfer learning needs an encoder that already knows something. With internet, that is an ImageNet encoder;
without it, the course pretrains one itself on the data it has, with a task that needs no labels: hide one of the
four sequences of a slice (set it to 0, the brain's mean after z-scoring) and ask the network to draw it again from
the other three. To turn T1, T1ce and T2 into FLAIR, the network has to tell tissues apart (cerebrospinal fluid is
bright on T2 and dark on FLAIR, edema bright on both), which is what a tumour segmenter needs too.

- ``HiddenModalitySlices`` wraps a ``SliceDataset``: input = the slice with one random sequence zeroed; target =
  the slice and a weight map that is 1 inside the brain on the hidden sequence (labels are never read);
- ``_hidden_modality_loss``: mean absolute error (L1) on the hidden sequence inside the brain;
- ``PretrainRecipe`` and ``pretrain_encoder``: an smp model with the segmentation model's architecture and encoder,
  trained with ``train.fit`` (resumable), whose encoder is saved alone: a file that
  ``smp2d.create_smp_model(weights_path=...)`` loads like any downloaded encoder;
- ``reconstruction_errors``: how well each hidden sequence is brought back, against guessing the brain's mean.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from braintools import paths
from braintools._private.atomic import atomic_path
from braintools.data.io import MODALITIES
from braintools.datasets.augment import SliceAugmenter
from braintools.datasets.slices2d import SliceDataset, select_slices, summarise_source
from braintools.datasets.volumes import VolumeSource
from braintools.models import smp2d, wrappers
from braintools.models.checkpoints import load_checkpoint, network_of, read_checkpoint
from braintools.profiles import Profile
from braintools.runtime import model_device
from braintools.training import schedules
from braintools.training.train import fit

TASK = "hidden modality"  # the proxy task, as named in file names and settings


def hide_channel(image: torch.Tensor, channel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero one channel of a (C, H, W) slice; return (input, target) for ``_hidden_modality_loss`` (notebook 04).

    The target (2C, H, W) is the slice, then one weight map per channel: 1 inside the brain (any channel non-zero)
    on the hidden channel, 0 everywhere else.

    Example:
        >>> masked, target = hide_channel(torch.ones(4, 2, 2), 3)
        >>> masked[3].abs().sum().item(), target[4:].sum(dim=(1, 2)).tolist()
        (0.0, [0.0, 0.0, 0.0, 4.0])
    """
    if not 0 <= channel < image.shape[0]:
        raise ValueError(f"channel {channel} is not one of the {image.shape[0]} channels of the slice")
    brain = (image != 0).any(dim=0)
    masked = image.clone()
    masked[channel] = 0
    weight = torch.zeros_like(image)
    weight[channel] = brain.to(image.dtype)
    return masked, torch.cat([image, weight])


def _hidden_modality_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between ``prediction`` (N, C, H, W) and the hidden channel, inside the brain only.
    Introduced in notebook 04.

    ``target`` is (N, 2C, H, W) from ``hide_channel``: the slices, then the weight maps.

    Example:
        >>> _, target = hide_channel(torch.ones(4, 2, 2), 0)
        >>> _hidden_modality_loss(torch.zeros(1, 4, 2, 2), target[None]).item()
        1.0
    """
    image, weight = target.float().chunk(2, dim=1)
    if prediction.shape != image.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} does not match the slices {tuple(image.shape)}")
    return (weight * (prediction.float() - image).abs()).sum() / weight.sum().clamp_min(1.0)


class HiddenModalitySlices(Dataset):
    """The slices of a ``SliceDataset`` with one random sequence hidden: items ``(input, target)`` of ``hide_channel``.

    The hidden channel of item i in epoch e is drawn from ``(seed, e, i)``, so every epoch hides other sequences.
    The labels the slice dataset returns are not used: the task needs none.
    """

    def __init__(self, slices: SliceDataset, seed: int = 0):
        self.slices, self.seed, self.epoch = slices, seed, 0

    def __len__(self) -> int:
        return len(self.slices)

    def set_epoch(self, epoch: int) -> None:
        """New augmentations and hidden sequences (``fit`` calls this before every epoch)."""
        self.epoch = int(epoch)
        self.slices.set_epoch(epoch)

    def hidden_channel(self, index: int, n_channels: int = len(MODALITIES)) -> int:
        """The channel item ``index`` hides in the current epoch."""
        return int(np.random.default_rng([self.seed, self.epoch, index, 1]).integers(n_channels))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, _ = self.slices[index]
        return hide_channel(image, self.hidden_channel(index, image.shape[0]))


@dataclass(frozen=True)
class PretrainRecipe:
    """Every setting of the proxy-task pretraining (``from_profile``: the profile's 2D model and budget).
    Introduced in notebook 04."""

    architecture: str
    encoder: str
    image_size: int  # network input after shrinking, as in ``UNet2DRecipe``
    shrink: int
    epochs: int
    batch_size: int
    slices_per_epoch: int | None
    learning_rate: float
    warmup_fraction: float = 0.1
    weight_decay: float = 1e-4
    task: str = TASK
    seed: int = 0
    num_workers: int = 0

    @classmethod
    def from_profile(cls, profile: Profile, **changes) -> PretrainRecipe:
        """The profile's pretraining (same network and slice size as notebook 04's model), some fields changed."""
        values = dict(architecture=profile.architecture_2d, encoder=profile.encoder_2d,
                      image_size=profile.image_size_2d, shrink=profile.downsample_2d,
                      epochs=profile.pretrain_epochs_2d, batch_size=profile.batch_size_2d,
                      slices_per_epoch=profile.pretrain_slices_per_epoch_2d,
                      learning_rate=profile.pretrain_learning_rate_2d, seed=profile.seed)
        return cls(**{**values, **changes})

    @property
    def name(self) -> str:
        """File stem of the weights, e.g. ``Unet_resnet18_hidden-modality_x4``."""
        return f"{self.architecture}_{self.encoder}_{self.task.replace(' ', '-')}_x{self.shrink}"

    def model(self) -> nn.Module:
        """A randomly initialised proxy network: the smp model of notebook 04 with one output per sequence."""
        network = smp2d.create_smp_model(self.architecture, self.encoder, in_channels=len(MODALITIES),
                                         num_classes=len(MODALITIES))
        return wrappers.Downsampled(network, self.shrink)

    def dataset(self, source: VolumeSource, progress: bool = False) -> HiddenModalitySlices:
        """Every slice that shows brain (tumour or not), augmented like notebook 04's training slices."""
        slices = select_slices(summarise_source(source, progress), keep_empty_fraction=1.0, seed=self.seed)
        augmenter = SliceAugmenter(flip_probability=0.5, zoom=0.05, brightness=0.1, contrast=0.1)
        return HiddenModalitySlices(SliceDataset(source, slices, self.image_size * self.shrink, augmenter,
                                                 seed=self.seed), seed=self.seed)


@dataclass
class PretrainedEncoder:
    """What ``pretrain_encoder`` returns: the encoder file, the whole proxy network and how it was trained."""

    path: Path  # encoder weights alone: ``create_smp_model(..., weights_path=path)``
    model: nn.Module  # the proxy network (encoder + decoder), for looking at its reconstructions
    history: list[dict]
    case_ids: tuple[str, ...]  # the patients it saw (their images only)
    reused: bool  # True when an earlier run with the same settings was loaded instead of trained

    def describe(self) -> str:
        """One line: file, epochs, patients, final loss, trained now or reused."""
        loss = self.history[-1]["train_loss"] if self.history else float("nan")
        how = "reused from an earlier run" if self.reused else "trained now"
        return (f"{self.path.name}: {len(self.history)} epochs on {len(self.case_ids)} patients, final L1 "
                f"{loss:.3f} ({how})")


def _settings(recipe: PretrainRecipe, case_ids: Sequence[str]) -> dict[str, Any]:
    values = dataclasses.asdict(recipe)
    values.pop("epochs")
    values.pop("num_workers")
    return {"recipe": values, "case_ids": list(case_ids), "modalities": list(MODALITIES)}


def _save_encoder(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the encoder's weights alone (no ``encoder.`` prefix) atomically: a pretrained-encoder file.
    Introduced in notebook 04."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(network_of(model).encoder.state_dict(), handle)
    return Path(path)


def _read_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The settings stored next to an encoder file (``<name>.json``), or ``None`` when there are none (notebook 04)."""
    sidecar = Path(path).with_suffix(".json")
    return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else None


def pretrain_encoder(recipe: PretrainRecipe, source: VolumeSource, folder: str | os.PathLike,
                     device: torch.device | str = "cpu", progress: bool = False, retrain: bool = False
                     ) -> PretrainedEncoder:
    """Pretrain the proxy network on ``source``'s slices and save its encoder as ``<folder>/<recipe.name>.pt``.
    Introduced in notebook 04.

    A finished run with the same settings and patients is reused (``retrain=True`` trains again); an interrupted
    one resumes from ``<name>_last.pt``. Give only training patients: the task reads no labels, but the
    test patients' scans must stay unseen.

    Example:
        >>> encoder = pretrain_encoder(PretrainRecipe.from_profile(profile), h5.source.subset(h5.ids("train")),
        ...                            paths.pretrained_dir(profile.name))  # doctest: +SKIP
        >>> create_smp_model("Unet", "resnet18", weights_path=encoder.path).initialisation  # doctest: +SKIP
        'encoder from Unet_resnet18_hidden-modality_x4.pt'
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{recipe.name}.pt"
    settings = _settings(recipe, source.case_ids)
    last = paths.checkpoint_file(folder, recipe.name, "last")
    torch.manual_seed(recipe.seed)
    model = recipe.model().to(device)
    stored = _read_settings(path)
    if not retrain and path.is_file() and last.is_file() and stored is not None and stored["settings"] == settings:
        state = load_checkpoint(last, model)
        if state["epoch"] >= recipe.epochs:
            return PretrainedEncoder(path, model.eval(), stored["history"], source.case_ids, reused=True)
    history = _train(recipe, model, source, folder, settings, device, progress, resume=not retrain)
    _save_encoder(model, path)
    with atomic_path(path.with_suffix(".json")) as temporary:
        Path(temporary).write_text(json.dumps({"settings": settings, "history": history}, indent=1, default=float),
                                   encoding="utf-8")
    return PretrainedEncoder(path, model.eval(), history, source.case_ids, reused=False)


def _train(recipe: PretrainRecipe, model: nn.Module, source: VolumeSource, folder: Path, settings: dict,
           device: torch.device | str, progress: bool, resume: bool) -> list[dict]:
    """Train the proxy network with ``fit`` (AdamW, warm-up + cosine per step), resuming a matching run."""
    from braintools.training.recipes import loader

    dataset = recipe.dataset(source, progress)
    train_loader = loader(dataset, recipe.batch_size, True, device, recipe.num_workers, recipe.slices_per_epoch,
                          recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    total = recipe.epochs * len(train_loader)
    scheduler = schedules.warmup_cosine_scheduler(optimizer, max(1, round(recipe.warmup_fraction * total)), total)
    last = paths.checkpoint_file(folder, recipe.name, "last")
    start = last if resume and last.is_file() and _stored_settings(last) == settings else None
    return fit(model, train_loader, None, _hidden_modality_loss, optimizer, recipe.epochs, scheduler=scheduler,
               scheduler_interval="step", monitor="train_loss", checkpoint_dir=folder, checkpoint_name=recipe.name,
               resume_from=start, checkpoint_extra={"settings": settings}, progress=progress)


def _stored_settings(checkpoint: Path) -> dict | None:
    return read_checkpoint(checkpoint).get("settings")


def reconstruction_errors(model: nn.Module, slices: SliceDataset, shrink: int = 1, batch_size: int = 16
                          ) -> pd.DataFrame:
    """How well each hidden sequence is drawn again, inside the brain: the network against two references (notebook 04).

    Columns (mean absolute error per brain pixel, one row per modality in ``MODALITIES`` order):
    ``L1 network``; ``L1 guessing the mean`` (0, the brain's mean after z-scoring: what a network that learnt
    nothing would do); ``L1 of the answer at the network's size`` (the hidden sequence itself, block-averaged
    ``shrink`` times and enlarged again as ``wrappers.Downsampled`` does: about the best a network that sees
    shrunk slices can draw); ``learnt`` = (guess - network) / (guess - answer at the network's size), 0 for nothing
    learnt, 1 for as good as that resolution allows.
    """
    device = model_device(model)
    sums = np.zeros((len(MODALITIES), 4))  # network error, guess error, shrunk-answer error, brain pixels
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(slices), batch_size):
                images = torch.stack([slices[i][0] for i in range(start, min(start + batch_size, len(slices)))])
                shrunk = _shrunk_and_enlarged(images, shrink)
                for channel in range(len(MODALITIES)):
                    pairs = [hide_channel(image, channel) for image in images]
                    inputs = torch.stack([masked for masked, _ in pairs]).to(device)
                    targets = torch.stack([target for _, target in pairs]).to(device)
                    weight = float(targets[:, len(MODALITIES):].sum())
                    errors = [_hidden_modality_loss(model(inputs), targets),
                              _hidden_modality_loss(torch.zeros_like(inputs), targets),
                              _hidden_modality_loss(shrunk.to(device), targets)]
                    sums[channel] += [float(error) * weight for error in errors] + [weight]
    finally:
        model.train(was_training)
    pixels = np.maximum(sums[:, 3], 1.0)
    table = pd.DataFrame({"L1 network": sums[:, 0] / pixels, "L1 guessing the mean": sums[:, 1] / pixels,
                          "L1 of the answer at the network's size": sums[:, 2] / pixels},
                         index=pd.Index(MODALITIES, name="hidden"))
    reachable = table["L1 guessing the mean"] - table["L1 of the answer at the network's size"]
    table["learnt"] = (table["L1 guessing the mean"] - table["L1 network"]) / reachable.where(reachable > 0)
    return table


def _shrunk_and_enlarged(images: torch.Tensor, shrink: int) -> torch.Tensor:
    """Block means of ``shrink`` x ``shrink`` pixels, enlarged back (bilinear): the detail a shrunk network keeps."""
    if shrink == 1:
        return images
    small = torch.nn.functional.avg_pool2d(images, shrink)
    return torch.nn.functional.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
