"""Short training recipes for the command line and for notebooks that find no checkpoint on disk.

Notebooks 04 and 05 teach training step by step (freezing schedules, deep supervision, warm-up, ...). These
recipes are the plain version of the same thing, sized by the profile: a 3D U-Net on tumour-centred patches
or a 2D smp model on axial slices, Dice + cross-entropy, AdamW, ``train.fit`` writing ``<name>_best.pt`` into
the checkpoint folder the notebooks read. Training data comes from the pre-cache (built here when missing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, RandomSampler

from braintools import cache
from braintools.datasets2d import SliceDataset, VolumeSource, select_slices, summarise_source
from braintools.datasets3d import PatchDataset3D, cached_sources
from braintools.losses import DiceCELoss
from braintools.models2d import Downsampled, create_smp_model
from braintools.models3d import UNet3D, wrap_downsampled
from braintools.profiles import Profile
from braintools.train import fit


def ensure_cached(nifti_train: str | os.PathLike, cache_dir: str | os.PathLike, case_ids: Sequence[str],
                  workers: int | None = None, progress: bool = True) -> cache.PrecacheReport:
    """Pre-cache the NIfTI cases ``case_ids`` into ``cache_dir`` (cases already cached are skipped)."""
    wanted = set(case_ids)
    sources = [source for source in cache.nifti_sources(nifti_train, require_seg=True) if source.case_id in wanted]
    missing = sorted(wanted - {source.case_id for source in sources})
    if missing:
        raise FileNotFoundError(f"{nifti_train}: no NIfTI case with a segmentation for {', '.join(missing[:5])}")
    return cache.precache(sources, cache_dir, workers=workers, progress=progress)


def train_unet3d(
    profile: Profile,
    cache_dir: str | os.PathLike,
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    checkpoint_dir: str | os.PathLike | None,
    features: Sequence[int] | None = None,
    epochs: int | None = None,
    patches_per_epoch: int | None = None,
    learning_rate: float = 3e-3,
    device: torch.device | str = "cpu",
    checkpoint_name: str = "unet3d",
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train a ``UNet3D`` on cached patches (sizes from the profile unless given); return it and its history.

    With ``profile.downsample_3d > 1`` the network is wrapped in ``models3d.Downsampled3D``, as in notebook 05.

    The best epoch (lowest validation loss on patches of ``val_ids``: steadier than the Dice of a few patches,
    notebook 05) is saved as ``<checkpoint_name>_best.pt``.
    """
    torch.manual_seed(seed)
    unet = UNet3D(features=tuple(features or profile.features_3d))
    model = wrap_downsampled(unet, profile.downsample_3d).to(device)  # as notebook 05 trains it
    patches = patches_per_epoch or profile.patches_per_epoch_3d
    train_set = PatchDataset3D(cached_sources(cache_dir, train_ids), profile.patch_size_3d, patches, seed=seed)
    val_set = PatchDataset3D(cached_sources(cache_dir, val_ids), profile.patch_size_3d,
                             max(2, patches // 4), augment=False, seed=seed + 1)
    train_loader = DataLoader(train_set, batch_size=profile.batch_size_3d, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=profile.batch_size_3d)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-5)
    history = fit(model, train_loader, val_loader, DiceCELoss(), optimizer, epochs or profile.epochs_3d,
                  monitor="val_loss", checkpoint_dir=checkpoint_dir, checkpoint_name=checkpoint_name,
                  progress=progress)
    return model, history


def train_unet2d(
    profile: Profile,
    cache_dir: str | os.PathLike,
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    checkpoint_dir: str | os.PathLike | None,
    epochs: int | None = None,
    device: torch.device | str = "cpu",
    checkpoint_name: str = "unet2d",
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train the profile's 2D smp model (random initialisation) on cached axial slices; return it and its history."""
    torch.manual_seed(seed)
    factor = profile.downsample_2d  # the network sees slices shrunk this many times
    network = create_smp_model(profile.architecture_2d, profile.encoder_2d, encoder_weights=None)
    model = (Downsampled(network, factor) if factor > 1 else network).to(device)
    source = VolumeSource.from_cache(cache_dir)
    train_source, val_source = source.subset(train_ids), source.subset(val_ids)
    train_slices = select_slices(summarise_source(train_source, progress), profile.keep_empty_fraction_2d, seed=seed)
    val_slices = select_slices(summarise_source(val_source, progress), 1.0, seed=seed)
    full_size = profile.image_size_2d * factor  # slices padded to this size (240 -> 256), shrunk by the wrapper
    train_set = SliceDataset(train_source, train_slices, full_size, seed=seed)
    val_set = SliceDataset(val_source, val_slices, full_size)
    sampler = RandomSampler(train_set, num_samples=min(profile.slices_per_epoch_2d or len(train_set), len(train_set)))
    train_loader = DataLoader(train_set, batch_size=profile.batch_size_2d, sampler=sampler)
    val_loader = DataLoader(val_set, batch_size=profile.batch_size_2d)
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile.learning_rate_2d)
    history = fit(model, train_loader, val_loader, DiceCELoss(), optimizer, epochs or profile.epochs_2d,
                  checkpoint_dir=checkpoint_dir, checkpoint_name=checkpoint_name, progress=progress)
    return model, history

