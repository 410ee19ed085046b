"""Course profiles: every size, case count and epoch count of the course, in one place.

- ``ci``: tiny synthetic cases on a small grid, so every notebook runs in seconds on a CPU;
- ``course`` (default): synthetic cases at the real BraTS size, minutes on a CPU;
- ``kaggle``: the real BraTS 2020 data (369 training patients) sized for one Kaggle GPU session (a P100 16 GB, or
  one of the two T4 16 GB of "GPU T4 x2"; a session lasts up to 12 h and writes to a ~20 GB working folder);
- ``colab``: the same real data, 60 patients and smaller networks, for a free Colab T4 session of about an hour;
- ``kaggle-cpu``: the same real data (the Kaggle layout, e.g. laid out by the tests under ``BRAINTOOLS_KAGGLE_INPUT``)
  with sizes small enough for a CPU: a check that every notebook runs on real files, not a way to learn;
- ``kaggle-2021``: the real BraTS 2021 Task 1 data (Kaggle ``dschettler8845/brats-2021-task1``: 1,251 patients in tar
  archives), 330 of them spread over the ids (only those are extracted into ``BRAINTOOLS_DATA``), with the ``kaggle``
  sizes: extracted files, cropped cache, notebook 03's HDF5 lesson and checkpoints fit Kaggle's 20 GB working folder;
- ``ci-2021``, ``ci-2023``, ``course-2021``, ``course-2023``: the synthetic data written in the BraTS 2021 or BraTS
  2023 layout (names, labels; NIfTI only, like those releases), so that the offline course and the tests run the
  code paths of the newer releases.

A profile's ``release`` says which BraTS release its data is in (``data.releases``). BraTS 2021 and 2023 have no HDF5
slice dataset: under them notebook 01 skips the HDF5 sections (and says so), notebook 03 writes a few cases as HDF5
slices for its lesson (``course.h5_lesson_dir``), and notebook 04 trains on slices of the NIfTI cache.

The profile is chosen once, at an entry point: a notebook's ``parameters`` cell (``PROFILE = "kaggle"``; ``None``
reads ``BRAINTOOLS_PROFILE``, default ``course``), the command line's ``--profile``, a benchmark's argument. The entry
point calls ``get_profile`` and hands the ``Profile`` (or the values it needs) to everything below; no function of
the package reads ``BRAINTOOLS_PROFILE`` itself, so the profile of the cell is the profile of the code.

The budget of the GPU profiles (README, "Time and disk per profile"; ``benchmarks/budget.py`` derives it):

- disk: the real-data profiles cache each patient cropped to its brain box (``crop_cache``): measured on the 13 real
  BraTS cases of the project, 28.7 MB per patient instead of 80.4 MB, so 369 patients take 10.6 GB instead of
  29.6 GB, plus 1.8 GB of checkpoints; on Kaggle the datasets are mounted read-only and cost none of the working
  folder.
- time: estimates, not measurements (no GPU was available). Training FLOPs per patch or slice are counted exactly
  (``torch.utils.flop_counter`` on the profile's networks) and divided by an effective speed derived from NVIDIA's
  published nnU-Net figures (3D U-Net, 128^3 patches, batch 2: 5.49 patches/s with AMP on one V100) scaled to a
  P100 (fp32 peak ratio; Pascal gains nothing from float16) and a T4 (memory-bandwidth ratio). Expect +-50 %.
- ``kaggle`` 05: a 5-level 3D U-Net (32-320 channels, 2.9 TFLOP per 128^3 training patch, the size of nnU-Net's
  BraTS network) for 50 epochs of 296 patches (one per training patient): 14,800 patches, about 3.1 h on a P100 and
  2.2 h on a T4. 04: Unet/resnet34 on 256 x 256 slices, every tumour slice of 295 patients for up to 10 epochs
  (48 / 34 min); 06: the inflated network for 30 epochs of 296 patches (20 / 15 min).
- ``colab`` 05: a 16-256-channel U-Net (0.73 TFLOP per patch), 50 epochs of 96 patches (about 11 min on a T4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

PROFILE_ENV = "BRAINTOOLS_PROFILE"
DEFAULT_PROFILE = "course"
BRATS_SHAPE = (240, 240, 155)


@dataclass(frozen=True)
class Profile:
    """Sizes for one way of running the course.

    Attributes:
        name: profile name (``ci``, ``course``, ``kaggle``, ``colab``, ``kaggle-cpu``, ``kaggle-2021``, ``ci-2021``...).
        source: ``"synthetic"`` (embedded generator) or ``"kaggle"`` (real download).
        release: the BraTS release of the data (``"2020"``, ``"2021"``, ``"2023"``; ``data.releases``): the Kaggle
            dataset a real-data profile reads, the layout a synthetic profile writes.
        n_cases: synthetic training cases (with segmentation) to generate.
        n_validation_cases: synthetic validation cases (no segmentation), like the Kaggle validation set.
        grid_shape: voxels per synthetic volume; the real BraTS grid is 240 x 240 x 155.
        seed: seed of the synthetic dataset (same seed, same bytes).
        max_cases: cap on the cases a notebook uses from the data (``None``: all of them).
        split_fractions: train, validation and test shares of the patients (``splits.course_split``).
    """

    name: str
    source: str
    n_cases: int
    n_validation_cases: int
    grid_shape: tuple[int, int, int]
    seed: int = 2020
    release: str = "2020"
    max_cases: int | None = None
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    # --- 03 precache ---
    cache_workers: int = 2
    crop_cache: bool = False  # store each cached patient cropped to its brain box (about 36 % of a real scan's grid)
    # --- 04-06 training ---
    num_workers: int = 0  # DataLoader worker processes (0: batches are made in the notebook's process, best on a CPU)
    # --- 04 transfer_2d (2D slices, smp + timm) ---
    image_size_2d: int = 256  # network input size; slices are padded to image_size_2d * downsample_2d
    downsample_2d: int = 1  # wrappers.Downsampled: the network sees slices shrunk this many times; 1: full size
    encoder_weights_2d: str | None = "imagenet"  # None: random encoder (no download attempted)
    epochs_2d: int = 6
    batch_size_2d: int = 16
    slices_per_epoch_2d: int | None = None  # None: every selected training slice
    architecture_2d: str = "Unet"
    encoder_2d: str = "resnet34"
    learning_rate_2d: float = 1e-3
    keep_empty_fraction_2d: float = 0.1  # fraction of tumour-free training slices kept
    h5_volumes_2d: int | None = None  # 04 caches at most this many HDF5 volumes (None: all), the rest from NIfTI
    unfreeze_top_epoch_2d: int = 3  # three-phase freezing: first epoch of phase 2 (top encoder stages train)
    unfreeze_all_epoch_2d: int = 5  # first epoch of phase 3 (everything trains)
    # 04 without ImageNet weights (offline, or encoder_weights_2d None): the encoder is first pretrained on the
    # hidden-modality proxy task (training.pretrain) over the training patients' HDF5 slices
    pretrain_epochs_2d: int = 4
    pretrain_slices_per_epoch_2d: int | None = None  # None: every brain slice of the training patients
    pretrain_learning_rate_2d: float = 1e-3
    # --- 05 unet_3d / 06 inflation (3D patches) ---
    patch_size_3d: tuple[int, int, int] = (160, 160, 64)  # (X, Y, Z) voxels
    downsample_3d: int = 1  # wrappers.Downsampled3D: the 3D U-Net sees patches shrunk this many times per axis (05)
    features_3d: tuple[int, ...] = (32, 64, 128, 256)
    epochs_3d: int = 10
    batch_size_3d: int = 1
    patches_per_epoch_3d: int = 40
    accumulation_steps_3d: int = 2  # batches per optimizer step (05)
    learning_rate_3d: float = 1e-3  # AdamW peak learning rate after the warm-up (05)
    tumour_probability_3d: float = 0.6  # share of training patches centred on a tumour voxel (05)
    val_patches_3d: int = 16  # fixed validation patches scored after every epoch (05)
    # --- 07 sliding_window ---
    roi_size: tuple[int, int, int] = (160, 160, 64)
    overlap: float = 0.5
    sw_batch_size: int = 2
    tta_flip_axes: tuple[int, ...] = (0,)  # flip TTA: every subset of these axes (0: left-right), 2 ** n passes
    quick_features_3d: tuple[int, ...] = (8, 16, 32, 64)  # 07 trains this small U-Net when no checkpoint exists
    quick_epochs_3d: int = 3
    quick_patches_3d: int = 16
    # --- 06 inflation (the 2D smp Unet of 04 inflated to 3D, then fine-tuned on 3D patches) ---
    depth_kernel_inflated: int = 3  # kernel depth given to every inflated convolution larger than 1x1
    patch_size_inflated: tuple[int, int, int] = (128, 128, 64)  # (X, Y, Z); X and Y multiples of 32
    batch_size_inflated: int = 2
    epochs_inflated: int = 10
    patches_per_epoch_inflated: int = 40
    val_patches_inflated: int = 8  # fixed validation patches scored after every epoch
    learning_rate_inflated: float = 1e-4  # AdamW peak learning rate (fine-tuning: 10x below training from scratch)
    roi_size_inflated: tuple[int, int, int] = (128, 128, 64)  # sliding window of the test evaluation
    overlap_inflated: float = 0.5


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci", source="synthetic", n_cases=6, n_validation_cases=1, grid_shape=(64, 64, 40),
        cache_workers=1, image_size_2d=64, encoder_weights_2d=None, encoder_2d="resnet18", epochs_2d=3,
        batch_size_2d=8, slices_per_epoch_2d=32,
        unfreeze_top_epoch_2d=2, unfreeze_all_epoch_2d=3, pretrain_epochs_2d=1, pretrain_slices_per_epoch_2d=32,
        patch_size_3d=(32, 32, 16), downsample_3d=2, features_3d=(8, 16, 32, 64), epochs_3d=2, batch_size_3d=2,
        patches_per_epoch_3d=4, val_patches_3d=2, roi_size=(32, 32, 16), sw_batch_size=2,
        # 06: the inflated Unet (encoder_2d) on one 32x32x16 patch per step
        patch_size_inflated=(32, 32, 16), batch_size_inflated=1, epochs_inflated=1, patches_per_epoch_inflated=2,
        val_patches_inflated=1, roi_size_inflated=(64, 64, 16), overlap_inflated=0.25,
    ),
    "course": Profile(
        name="course", source="synthetic", n_cases=40, n_validation_cases=2, grid_shape=BRATS_SHAPE,
        # 24 / 8 / 8 patients: 8 test patients so that the differences the notebooks discuss can be told from noise
        split_fractions=(0.6, 0.2, 0.2),
        # 04: Unet/resnet18 on 256 slices shrunk 4x to 64 trains at about 4-6 slices/s on a shared 2-core CPU
        encoder_2d="resnet18", downsample_2d=4, image_size_2d=64, batch_size_2d=8, epochs_2d=5,
        slices_per_epoch_2d=320, learning_rate_2d=2e-3, unfreeze_top_epoch_2d=2, unfreeze_all_epoch_2d=3,
        # 04 offline: the proxy task pretrains the encoder on 4 x 512 slices of the training patients first (about 2 min
        # on a shared 2-core CPU); then three models (pretrained and random encoder, softmax classes and sigmoid
        # regions) train 5 x 320 slices each (about 1-2 min each)
        pretrain_epochs_2d=4, pretrain_slices_per_epoch_2d=512, pretrain_learning_rate_2d=3e-3,
        # 05: a small 3D U-Net sees 128x128x96 patches shrunk 2x (64x64x48 voxels for the network, 8x more brain
        # than a full-size 64x64x48 patch), scored at its own size in training: about 0.7 s per batch of 2 on 2
        # quiet cores; no accumulation here: more optimizer steps in a short CPU run (800 in about 12 minutes).
        # 20 epochs, not 10: on the 8 real tuning cases of benchmarks/realism.py (3 seeds) TC Dice rose 0.547 -> 0.668,
        # ET 0.566 -> 0.613, WT 0.774 -> 0.792 and the HD95 WT median fell 35.9 -> 22.8 mm (issue 22). Two thirds of
        # the patches centred on tumour, not half: on the same 8 cases TC 0.668 -> 0.677, ET 0.613 -> 0.630, HD95
        # 22.8 -> 19.9 mm, WT 0.792 -> 0.782 (within its seed spread); a third had lowered WT and TC
        patch_size_3d=(128, 128, 96), downsample_3d=2, features_3d=(8, 16, 32, 64), epochs_3d=20, batch_size_3d=2,
        patches_per_epoch_3d=80, accumulation_steps_3d=1, learning_rate_3d=3e-3, tumour_probability_3d=0.67,
        val_patches_3d=8,
        # 05-08: the U-Net's sliding window is its training patch (InstanceNorm then sees the same extent): on
        # validation case 013, a (160, 160, 64) window gave WT 0.872 / TC 0.879 against 0.893 / 0.923
        roi_size=(128, 128, 96),
        # 06: notebook 04 trains resnet18 on slices shrunk 4x (downsample_2d), so the inflated network sees volumes
        # shrunk 4x in X and Y: a 128x128x32 patch is 32x32x32 voxels for it (a few seconds per step on 2 cores);
        # a 256x256x64 window covers the brain box in-plane (240 -> 64 x 64 for the network)
        patch_size_inflated=(128, 128, 32), batch_size_inflated=2, epochs_inflated=4, patches_per_epoch_inflated=16,
        val_patches_inflated=4, roi_size_inflated=(256, 256, 64), overlap_inflated=0.25,
    ),
    # real data on one GPU of a Kaggle session (P100 16 GB or T4 16 GB, up to 12 h, ~20 GB working folder): 295
    # training / 37 validation / 37 test patients; 03 converts 20 HDF5 volumes (n_cases) for its lesson
    "kaggle": Profile(
        name="kaggle", source="kaggle", n_cases=20, n_validation_cases=2, grid_shape=BRATS_SHAPE,
        crop_cache=True, num_workers=2,
        # 04: Unet/resnet34 (ImageNet) on 256 x 256 slices, every tumour slice and 10 % of the others per epoch
        # (~22,000 slices, 47 GFLOP each to train): up to 10 epochs, early stopping after 3 without progress; the
        # slices of 150 training patients come from their HDF5 volumes (4.3 GB cached, cropped), the others from the
        # NIfTI cache: both caches of all patients would not fit Kaggle's ~20 GB working folder
        epochs_2d=10, unfreeze_top_epoch_2d=3, unfreeze_all_epoch_2d=6, h5_volumes_2d=150,
        # 05: nnU-Net's size of BraTS network (5 levels, 32-320 channels) on 128^3 patches (the brain box is about
        # 140 x 170 x 140), batch 2 fits 16 GB; 50 epochs of one patch per training patient (14,800 patches)
        patch_size_3d=(128, 128, 128), features_3d=(32, 64, 128, 256, 320), epochs_3d=50, batch_size_3d=2,
        patches_per_epoch_3d=296, accumulation_steps_3d=1, val_patches_3d=32, roi_size=(128, 128, 128),
        sw_batch_size=4,
        # 06: the inflated Unet/resnet34 fine-tuned on 128 x 128 x 64 patches, 30 epochs of 296 (8,880 patches)
        patch_size_inflated=(128, 128, 64), batch_size_inflated=2, epochs_inflated=30, patches_per_epoch_inflated=296,
        val_patches_inflated=16, roi_size_inflated=(128, 128, 64),
    ),
    # real data in a free Colab session on one T4 (about an hour for notebooks 04-07): the first 60 patients
    # (48 training / 6 validation / 6 test), smaller 3D networks, the same patch sizes as kaggle
    "colab": Profile(
        name="colab", source="kaggle", n_cases=6, n_validation_cases=1, grid_shape=BRATS_SHAPE, max_cases=60,
        crop_cache=True, num_workers=2,
        # 04: Unet/resnet34 on 256 x 256 slices, every selected slice of 48 patients (~3,700) for up to 6 epochs
        # 05: a 5-level U-Net of 16-256 channels (0.73 TFLOP per 128^3 patch), 50 epochs of 96 patches (4,800)
        patch_size_3d=(128, 128, 128), features_3d=(16, 32, 64, 128, 256), epochs_3d=50, batch_size_3d=2,
        patches_per_epoch_3d=96, accumulation_steps_3d=1, val_patches_3d=16, roi_size=(128, 128, 128),
        sw_batch_size=4,
        # 06: the inflated network, 20 epochs of 96 patches of 128 x 128 x 64 (1,920 patches)
        patch_size_inflated=(128, 128, 64), batch_size_inflated=2, epochs_inflated=20, patches_per_epoch_inflated=96,
        val_patches_inflated=8, roi_size_inflated=(128, 128, 64),
    ),
    # real Kaggle layout, sizes for a 2-core CPU (about a minute or two per notebook): the course profile's networks
    # and patches, a few steps each; 03 converts 3 HDF5 volumes (n_cases, as max_cases is unset)
    "kaggle-cpu": Profile(
        name="kaggle-cpu", source="kaggle", n_cases=3, n_validation_cases=1, grid_shape=BRATS_SHAPE, crop_cache=True,
        encoder_weights_2d=None, encoder_2d="resnet18", downsample_2d=4, image_size_2d=64, batch_size_2d=8,
        epochs_2d=2, slices_per_epoch_2d=48, unfreeze_top_epoch_2d=2, unfreeze_all_epoch_2d=2, pretrain_epochs_2d=1,
        pretrain_slices_per_epoch_2d=48,
        patch_size_3d=(128, 128, 96), downsample_3d=2, features_3d=(8, 16, 32, 64), epochs_3d=2, batch_size_3d=2,
        patches_per_epoch_3d=8, accumulation_steps_3d=1, learning_rate_3d=3e-3, val_patches_3d=2,
        roi_size=(128, 128, 96), sw_batch_size=2, quick_epochs_3d=1, quick_patches_3d=4,
        patch_size_inflated=(128, 128, 32), batch_size_inflated=2, epochs_inflated=1, patches_per_epoch_inflated=4,
        val_patches_inflated=2, roi_size_inflated=(256, 256, 64), overlap_inflated=0.25,
    ),
}
# the synthetic data in the layouts of the newer releases: the same cases, names and labels of BraTS 2021 or 2023
for _base in ("ci", "course"):
    for _release in ("2021", "2023"):
        PROFILES[f"{_base}-{_release}"] = replace(PROFILES[_base], name=f"{_base}-{_release}", release=_release)
# real BraTS 2021 (1,251 patients) on one Kaggle GPU with the kaggle sizes: 330 of them spread over the ids, so that
# their extracted files (9.7 MB each), cropped cache (29 MB each), 03's HDF5 lesson (3 cases written as HDF5 slices,
# 316 MB each: BraTS 2021 has no HDF5 copy) and the checkpoints (1.8 GB) take 15.7 GB of the 20 GB working folder
# (measured on the two real BraTS 2021 cases: tests/test_course_releases.py); GPU time as kaggle's (same patches)
PROFILES["kaggle-2021"] = replace(PROFILES["kaggle"], name="kaggle-2021", release="2021", max_cases=330, n_cases=3)


def get_profile(name: str | None = None) -> Profile:
    """Return the profile ``name``; ``None``: the one ``BRAINTOOLS_PROFILE`` names, else ``course`` (notebook 01).

    Call it at an entry point only (a notebook's parameters, the command line) and pass the profile down.

    Example:
        >>> get_profile("ci").grid_shape
        (64, 64, 40)
    """
    chosen = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    try:
        return PROFILES[chosen.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown profile {chosen!r} (from {PROFILE_ENV} or the argument); choose one of {sorted(PROFILES)}"
        ) from None
