"""The course's two training recipes, used by notebooks 04 and 05, the command line and the benchmarks.

A recipe is every hyperparameter of one way to train (a frozen dataclass, built from the profile with
``from_profile`` and overridable field by field) plus small functions that turn it into the pieces ``train.fit``
needs: datasets, model, loss, optimizer, scheduler. Notebooks 04 and 05 build those pieces one by one to teach
them; ``train_unet2d`` and ``train_unet3d`` chain the same functions, so the command line, the benchmarks and the
notebooks train exactly the same way.

- ``UNet3DRecipe`` (notebook 05): a ``UNet3D`` on tumour-centred 3D patches of the npy cache, weighted soft Dice +
  focal loss at every deep-supervision scale, AdamW with a linear warm-up then cosine decay per optimizer step,
  gradient clipping, best epoch by validation loss.
- ``UNet2DRecipe`` (notebook 04): an smp model on axial slices of the npy cache (the NIfTI cases, or the HDF5 slice
  volumes as notebook 04 does), a pretrained encoder (ImageNet, or the course's own, ``training.pretrain``) with
  the three-phase freezing schedule, Dice + cross-entropy, ``ReduceLROnPlateau`` and early stopping on the
  validation Dice.

Checkpoints (``<name>_best.pt`` for inference, ``<name>_last.pt`` to resume) carry the model spec and the recipe;
``resume_point`` finds the last checkpoint of the same recipe, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from braintools import paths
from braintools._private import distributed
from braintools.datasets.patches3d import AppearanceAugmentation, PatchDataset3D
from braintools.datasets.slices2d import SliceDataset, select_slices, summarise_source
from braintools.datasets.volumes import VolumeSource
from braintools.errors import DataError
from braintools.models.checkpoints import ModelSpec, build_model, network_of, read_checkpoint
from braintools.profiles import Profile
from braintools.training import losses, schedules
from braintools.training.checkpoint_folder import locked
from braintools.training.freezing import EncoderFreezer
from braintools.training.train import fit

_RESULT_NEUTRAL = ("num_workers",)  # recipe fields a resumed run may change: items depend on (seed, epoch, index) only


def recipe_settings(recipe: Any) -> dict[str, Any]:
    """The recipe's fields that must match to resume a run (all but the number of epochs), as plain values.
    Introduced in notebook 04."""
    values = dataclasses.asdict(recipe)
    values.pop("epochs")
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


def resume_point(checkpoint_dir: str | os.PathLike, name: str, recipe: Any) -> Path | None:
    """The ``<name>_last.pt`` to resume from: ``None`` when there is none; an error when its recipe differs.

    Example:
        >>> resume_point(checkpoint_dir, "unet3d", UNet3DRecipe.from_profile(profile))  # doctest: +SKIP
    """
    last = paths.checkpoint_file(checkpoint_dir, name, "last")
    if not last.is_file():
        return None
    stored = read_checkpoint(last).get("recipe")
    wanted = recipe_settings(recipe)
    if stored is not None:  # settings that never change a result (e.g. DataLoader workers) may differ
        stored = {key: value for key, value in stored.items() if key not in _RESULT_NEUTRAL} | {
            key: wanted[key] for key in _RESULT_NEUTRAL if key in wanted}
    if stored != wanted:
        changed = sorted(key for key in set(wanted) | set(stored or {}) if (stored or {}).get(key) != wanted.get(key))
        raise DataError(f"{last}: an earlier run with other settings ({', '.join(changed) or 'no recipe stored'}); "
                        "start over with --restart (the earlier best checkpoint is kept as "
                        f"{name}_best.previous.pt), or choose another --checkpoint-dir")
    return last


def _locked(checkpoint_dir: str | os.PathLike | None, name: str):
    """The checkpoint folder's lock for this process's run (nothing without a folder, or in a non-main process)."""
    if checkpoint_dir is None or not distributed.is_main_process():
        return contextlib.nullcontext()
    return locked(checkpoint_dir, name)


def loader(dataset: Dataset, batch_size: int, shuffle: bool, device: torch.device | str, num_workers: int = 0,
           num_samples: int | None = None, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` whose ``distributed.EpochSampler`` draws ``num_samples`` items per epoch (this process's share).
    Introduced in notebook 04.

    One process takes every item; under ``torchrun`` each process takes its own share of the same epoch order.
    ``num_workers`` processes make the batches while the model trains (the profile's ``num_workers``); for a CUDA
    device they are put in pinned (page-locked) memory, from which ``train.fit`` copies them asynchronously.
    """
    sampler = distributed.EpochSampler(len(dataset), num_samples, shuffle, seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=torch.device(device).type == "cuda")


# --------------------------------------------------------------------------- 3D U-Net (notebook 05)


@dataclass(frozen=True)
class UNet3DRecipe:
    """Every hyperparameter of the 3D U-Net training of notebook 05 (``from_profile`` gives the profile's).
    Introduced in notebook 05."""

    patch_size: tuple[int, int, int]
    shrink: int
    features: tuple[int, ...]
    epochs: int
    batch_size: int
    accumulation_steps: int
    patches_per_epoch: int
    val_patches: int
    learning_rate: float
    tumour_probability: float
    deep_supervision: bool = True
    full_size_loss: bool = False
    output: str = "classes"
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.1
    max_grad_norm: float = 12.0
    class_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 2.0)
    focal_gamma: float = 2.0
    monitor: str = "val_loss"
    flip_axes: tuple[int, ...] = (0,)  # left-right mirroring only: a brain is never upside down or back to front
    appearance: AppearanceAugmentation | None = AppearanceAugmentation()  # per-channel gamma and noise
    seed: int = 0
    num_workers: int = 0

    @classmethod
    def from_profile(cls, profile: Profile, **changes) -> UNet3DRecipe:
        """The profile's recipe, with some fields changed (e.g. ``epochs=2``)."""
        values = dict(patch_size=profile.patch_size_3d, shrink=profile.downsample_3d, features=profile.features_3d,
                      epochs=profile.epochs_3d, batch_size=profile.batch_size_3d,
                      accumulation_steps=profile.accumulation_steps_3d,
                      patches_per_epoch=profile.patches_per_epoch_3d, val_patches=profile.val_patches_3d,
                      learning_rate=profile.learning_rate_3d, tumour_probability=profile.tumour_probability_3d,
                      seed=profile.seed, num_workers=profile.num_workers)
        return cls(**{**values, **changes})

    def spec(self) -> ModelSpec:
        """The model this recipe trains; the training patch is its default inference window."""
        return ModelSpec("unet3d", output=self.output, shrink=self.shrink, window=tuple(self.patch_size),
                         features=tuple(self.features), deep_supervision=self.deep_supervision,
                         full_size_in_training=self.full_size_loss)

    def loss(self) -> losses.DeepSupervisionLoss:
        """Weighted soft Dice + focal BCE at every output scale (class weights only for 4-class outputs)."""
        weights = self.class_weights if self.output == "classes" else None
        return losses.DeepSupervisionLoss(losses.DiceFocalLoss(self.output, weights, gamma=self.focal_gamma))

    def datasets(self, cache_dir: str | os.PathLike, train_ids: Sequence[str], val_ids: Sequence[str]
                 ) -> tuple[PatchDataset3D, PatchDataset3D]:
        """Training patches (new ones every epoch, augmented) and fixed validation patches from the npy cache."""
        source = VolumeSource.from_cache(cache_dir)
        train_set = PatchDataset3D(source.subset(train_ids), self.patch_size, self.patches_per_epoch,
                                   self.tumour_probability, flip_axes=self.flip_axes, appearance=self.appearance,
                                   seed=self.seed)
        val_set = PatchDataset3D(source.subset(val_ids), self.patch_size, self.val_patches, self.tumour_probability,
                                 augment=False, seed=self.seed + 1)
        return train_set, val_set

    def optimizer(self, model: torch.nn.Module, batches_per_epoch: int):
        """AdamW and its warm-up + cosine scheduler (stepped once per optimizer step)."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        total_steps = self.epochs * math.ceil(batches_per_epoch / self.accumulation_steps)
        warmup_steps = max(1, round(self.warmup_fraction * total_steps))
        return optimizer, schedules.warmup_cosine_scheduler(optimizer, warmup_steps, total_steps)


def train_unet3d(recipe: UNet3DRecipe, cache_dir: str | os.PathLike, train_ids: Sequence[str],
                 val_ids: Sequence[str], checkpoint_dir: str | os.PathLike | None, name: str = "unet3d",
                 device: torch.device | str = "cpu", resume: bool = False, progress: bool = True
                 ) -> tuple[torch.nn.Module, list[dict]]:
    """Train the 3D U-Net of a recipe on cached patients; return the model and its history (notebook 07).

    With ``resume``, a ``<name>_last.pt`` of the same recipe in ``checkpoint_dir`` is continued (see
    ``resume_point``); otherwise training starts over and an earlier best checkpoint is kept aside. Under
    ``torchrun`` (``distributed.setup`` first) the model trains with DistributedDataParallel.
    """
    torch.manual_seed(recipe.seed)
    model = distributed.wrap_model(build_model(recipe.spec()).to(device), torch.device(device))
    train_set, val_set = recipe.datasets(cache_dir, train_ids, val_ids)
    train_set.build_indices()  # before DataLoader workers fork: they share the indices instead of each building them
    val_set.build_indices()
    train_loader = loader(train_set, recipe.batch_size, True, device, recipe.num_workers, seed=recipe.seed)
    val_loader = loader(val_set, recipe.batch_size, False, device, recipe.num_workers)
    optimizer, scheduler = recipe.optimizer(model, len(train_loader))
    with _locked(checkpoint_dir, name):  # the run resumed is the one this run continues
        start = resume_point(checkpoint_dir, name, recipe) if resume and checkpoint_dir else None
        history = fit(model, train_loader, val_loader, recipe.loss(), optimizer, recipe.epochs, scheduler=scheduler,
                      scheduler_interval="step", accumulation_steps=recipe.accumulation_steps,
                      max_grad_norm=recipe.max_grad_norm, output=recipe.output, monitor=recipe.monitor,
                      checkpoint_dir=checkpoint_dir, checkpoint_name=name, resume_from=start,
                      checkpoint_extra={"recipe": recipe_settings(recipe)}, progress=progress)
    return model, history


# --------------------------------------------------------------------------- 2D smp model (notebook 04)


@dataclass(frozen=True)
class UNet2DRecipe:
    """Every hyperparameter of the 2D training of notebook 04 (``from_profile`` gives the profile's) (notebook 04)."""

    architecture: str
    encoder: str
    encoder_weights: str | None
    image_size: int  # network input after shrinking; slices are padded to image_size * shrink
    shrink: int
    epochs: int
    batch_size: int
    slices_per_epoch: int | None
    learning_rate: float
    keep_empty_fraction: float
    unfreeze_top_epoch: int
    unfreeze_all_epoch: int
    weights_path: str | None = None
    val_empty_fraction: float = 0.25
    freeze_schedule: str | None = None  # None: "three_phase" for a pretrained encoder, "none" for a random one
    encoder_lr_scale: float | None = None  # None: 0.1 for a pretrained encoder, 1.0 for a random one
    weight_decay: float = 1e-4
    early_stopping_patience: int | None = 3
    output: str = "classes"
    slices_per_window: int = 16  # inference: axial slices per forward pass
    monitor: str = "val_dice_mean"
    seed: int = 0
    num_workers: int = 0

    @classmethod
    def from_profile(cls, profile: Profile, **changes) -> UNet2DRecipe:
        """The profile's recipe, with some fields changed (e.g. ``encoder_weights=None``)."""
        values = dict(architecture=profile.architecture_2d, encoder=profile.encoder_2d,
                      encoder_weights=profile.encoder_weights_2d, image_size=profile.image_size_2d,
                      shrink=profile.downsample_2d, epochs=profile.epochs_2d, batch_size=profile.batch_size_2d,
                      slices_per_epoch=profile.slices_per_epoch_2d, learning_rate=profile.learning_rate_2d,
                      keep_empty_fraction=profile.keep_empty_fraction_2d,
                      unfreeze_top_epoch=profile.unfreeze_top_epoch_2d,
                      unfreeze_all_epoch=profile.unfreeze_all_epoch_2d, seed=profile.seed,
                      num_workers=profile.num_workers)
        return cls(**{**values, **changes})

    @property
    def slice_size(self) -> int:
        """Slices are padded to this size (240 -> 256) before the model shrinks them ``shrink`` times."""
        return self.image_size * self.shrink

    def spec(self) -> ModelSpec:
        """The model this recipe trains (inference: whole slices, ``slices_per_window`` at a time)."""
        return ModelSpec("unet2d", output=self.output, shrink=self.shrink, window=(-1, -1, self.slices_per_window),
                         architecture=self.architecture, encoder=self.encoder)

    def loss(self) -> torch.nn.Module:
        """Soft Dice + cross-entropy on softmax classes, or Dice + BCE on sigmoid regions."""
        return losses.DiceCELoss() if self.output == "classes" else losses.RegionDiceBCELoss()

    def datasets(self, source: VolumeSource, train_ids: Sequence[str], val_ids: Sequence[str],
                 progress: bool = False) -> tuple[SliceDataset, SliceDataset]:
        """Augmented training slices (all tumour slices, a share of the others) and validation slices."""
        from braintools.datasets.augment import SliceAugmenter

        train_part, val_part = source.subset(train_ids), source.subset(val_ids)
        train_slices = select_slices(summarise_source(train_part, progress), self.keep_empty_fraction, seed=self.seed)
        val_slices = select_slices(summarise_source(val_part, progress), self.val_empty_fraction, seed=self.seed)
        augmenter = SliceAugmenter(flip_probability=0.5, zoom=0.05, brightness=0.1, contrast=0.1)
        return (SliceDataset(train_part, train_slices, self.slice_size, augmenter, seed=self.seed),
                SliceDataset(val_part, val_slices, self.slice_size))

    def model_and_freezer(self, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, EncoderFreezer]:
        """The model on ``device`` (pretrained encoder if asked and available) and its encoder freezing schedule.

        Under ``torchrun`` on GPUs, its BatchNorm layers become SyncBatchNorm first.
        """
        model = build_model(self.spec(), self.encoder_weights, self.weights_path).to(device)
        model = distributed.sync_batchnorm(model, torch.device(device))
        network = network_of(model)
        pretrained = not network.initialisation.startswith("random")
        schedule = self.freeze_schedule or ("three_phase" if pretrained else "none")
        scale = self.encoder_lr_scale if self.encoder_lr_scale is not None else (0.1 if pretrained else 1.0)
        freezer = EncoderFreezer(network, schedule, top_stages_epoch=self.unfreeze_top_epoch,
                                 all_stages_epoch=self.unfreeze_all_epoch, encoder_lr_scale=scale)
        return model, freezer

    def optimizer(self, freezer: EncoderFreezer):
        """AdamW over the freezer's parameter groups and a ``ReduceLROnPlateau`` on the validation Dice."""
        optimizer = torch.optim.AdamW(freezer.param_groups(self.learning_rate, weight_decay=self.weight_decay))
        mode = "max" if self.monitor == "val_dice_mean" else "min"
        return optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=1)


def train_unet2d(recipe: UNet2DRecipe, volumes: str | os.PathLike | VolumeSource, train_ids: Sequence[str],
                 val_ids: Sequence[str], checkpoint_dir: str | os.PathLike | None, name: str = "unet2d",
                 device: torch.device | str = "cpu", resume: bool = False, progress: bool = True
                 ) -> tuple[torch.nn.Module, list[dict]]:
    """Train the 2D model of a recipe on axial slices of cached patients; return it and its history (notebook 04).

    ``volumes`` is an npy cache folder (the NIfTI cases, as the command line trains) or any ``VolumeSource``
    holding ``train_ids`` and ``val_ids`` (notebook 04: the HDF5 slices, ``course.prepare_h5_slices``).
    Resuming and ``torchrun`` work as in ``train_unet3d``; frozen encoder stages make some parameters unused in
    some epochs, which DistributedDataParallel is told about.
    """
    torch.manual_seed(recipe.seed)
    model, freezer = recipe.model_and_freezer(device)
    optimizer, scheduler = recipe.optimizer(freezer)
    model = distributed.wrap_model(model, torch.device(device), find_unused_parameters=True)
    source = volumes if isinstance(volumes, VolumeSource) else VolumeSource.from_cache(volumes)
    train_set, val_set = recipe.datasets(source, train_ids, val_ids, progress)
    train_loader = loader(train_set, recipe.batch_size, True, device, recipe.num_workers, recipe.slices_per_epoch,
                          recipe.seed)
    val_loader = loader(val_set, recipe.batch_size, False, device, recipe.num_workers)
    with _locked(checkpoint_dir, name):  # the run resumed is the one this run continues
        start = resume_point(checkpoint_dir, name, recipe) if resume and checkpoint_dir else None
        history = fit(model, train_loader, val_loader, recipe.loss(), optimizer, recipe.epochs, scheduler=scheduler,
                      freezer=freezer, output=recipe.output, monitor=recipe.monitor,
                      early_stopping_patience=recipe.early_stopping_patience, checkpoint_dir=checkpoint_dir,
                      checkpoint_name=name, resume_from=start, checkpoint_extra={"recipe": recipe_settings(recipe)},
                      progress=progress)
    return model, history
