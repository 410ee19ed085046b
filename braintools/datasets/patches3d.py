"""3D training patches from whole volumes: tumour-centred sampling, flips, intensity augmentation.

A full BraTS volume (4 x 240 x 240 x 155 voxels) does not fit a GPU batch with a 3D U-Net, so training
crops patches, (160, 160, 64) voxels by default (X, Y, Z). Most voxels are healthy brain or background,
so a share of the patches (``tumour_probability``, 0.6) is centred on a random tumour voxel; the rest are
centred on a random brain voxel.

Training data is a list of ``volumes.Volume`` (case id, image (C, X, Y, Z), contiguous classes 0..3), e.g. a
``VolumeSource.from_cache(cache_dir).subset(split.train)``. The arrays may be ``np.memmap`` (the npy cache): a
patch reads only its own bytes. Per volume, the dataset reads the label array once and a strided view of the
image once, to list tumour and brain voxel coordinates (``VolumeIndex``); picking a patch centre is then one
random draw.

Every random choice comes from ``np.random.default_rng((seed, epoch, index))``: the same epoch gives the same
patches whatever the number of DataLoader workers; call ``set_epoch`` before each epoch for new patches
(with ``persistent_workers=True`` workers keep the epoch they started with).

DataLoader workers: on Linux (fork) workers share the memmaps and the volume indices built before they
start (``build_indices``). Where workers are spawned (macOS, Windows), each worker unpickles the dataset,
and NumPy pickles a memmap as a full in-memory copy: there, pass ``num_workers=0`` or keep volumes few.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from braintools.data.preprocess import apply_zscore, brain_mask, brain_statistics
from braintools.datasets.augment import AppearanceAugmentation, augment_appearance, augment_intensity
from braintools.datasets.volumes import Volume, check_class_values, check_volume
from braintools.errors import DataError

# ----------------------------------------------------------------------------------------------------------
# Where to crop: a per-volume index of tumour and brain voxels
# ----------------------------------------------------------------------------------------------------------


@dataclass
class VolumeIndex:
    """Voxel coordinates to centre patches on, listed once per volume.

    Attributes:
        shape: the volume's (X, Y, Z) size.
        tumour: (N, 3) coordinates of every tumour voxel (class > 0), full resolution.
        brain: (M, 3) coordinates of brain voxels on a grid of step ``brain_step``.
        brain_step: grid step of ``brain``; a centre is jittered within its grid cell.
        mean, std: per-channel brain statistics (only for volumes that still need z-scoring).
    """

    shape: tuple[int, int, int]
    tumour: np.ndarray
    brain: np.ndarray
    brain_step: int
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def _build_volume_index(
    image: np.ndarray, classes: np.ndarray, brain_step: int = 4, with_statistics: bool = False, eps: float = 1e-8
) -> VolumeIndex:
    """List tumour voxels (from ``classes``) and brain voxels (from every ``brain_step``-th voxel of ``image``).
    Introduced in notebook 05.

    Reads the label array once and 1/``brain_step`` of the image planes; with ``with_statistics`` it reads
    the whole image once to get per-channel brain mean and std (for volumes that are not yet z-scored).
    """
    classes = np.asarray(classes)
    largest = int(classes.max()) if classes.size else 0
    if largest > 3 or (classes.size and int(classes.min()) < 0):
        raise DataError(f"classes must be contiguous 0..3, found values up to {largest}; map BraTS labels "
                        "0/1/2/4 with braintools.data.labels.to_contiguous first")
    coordinate_type = np.int16 if max(classes.shape) < 2**15 else np.int32
    tumour = np.argwhere(classes > 0).astype(coordinate_type)
    step = brain_step
    coarse = np.asarray(image[:, ::step, ::step, ::step])
    brain = (np.argwhere(brain_mask(coarse)) * step).astype(coordinate_type)
    mean = std = None
    if with_statistics:
        mean, std = brain_statistics(image, eps=eps)
    return VolumeIndex(tuple(classes.shape), tumour, brain, step, mean, std)


def choose_patch_centre(index: VolumeIndex, rng: np.random.Generator, tumour_probability: float = 0.6
                        ) -> tuple[tuple[int, int, int], bool]:
    """Pick a patch centre: a random tumour voxel with ``tumour_probability``, else a random point of the brain.
    Introduced in notebook 05.

    The brain point is a random brain voxel of the coarse grid, jittered within its grid cell: close to
    uniform over the brain (a cell on the brain's edge may put the centre a few voxels outside it).
    Falls back to the brain when there is no tumour, and to anywhere in the volume when there is no brain.
    Returns the centre and whether it is a tumour voxel.
    """
    if len(index.tumour) and rng.random() < tumour_probability:
        return tuple(int(c) for c in index.tumour[rng.integers(len(index.tumour))]), True
    if len(index.brain):
        corner = index.brain[rng.integers(len(index.brain))]
        jitter = rng.integers(0, index.brain_step, size=3)
        centre = np.minimum(corner + jitter, np.array(index.shape) - 1)
        return tuple(int(c) for c in centre), False
    return tuple(int(rng.integers(size)) for size in index.shape), False


def _patch_origin(centre: Sequence[int], volume_shape: Sequence[int], patch_size: Sequence[int]) -> tuple[int, ...]:
    """Corner of the patch around ``centre``, moved inside the volume; centred (negative) where the volume is smaller.
    Introduced in notebook 05.

    Example:
        >>> _patch_origin((5, 100, 60), (240, 240, 155), (160, 160, 64))
        (0, 20, 28)
    """
    origin = []
    for c, volume, patch in zip(centre, volume_shape, patch_size):
        if volume >= patch:
            origin.append(int(min(max(c - patch // 2, 0), volume - patch)))
        else:
            origin.append(-((patch - volume) // 2))
    return tuple(origin)


# ----------------------------------------------------------------------------------------------------------
# Cropping (with flips and zero padding in one pass)
# ----------------------------------------------------------------------------------------------------------


def _window(origin: int, patch: int, volume: int) -> tuple[slice, slice]:
    """Source range in the volume and destination range in the patch along one axis (before any flip)."""
    start, stop = max(origin, 0), min(origin + patch, volume)
    if stop <= start:
        raise ValueError(f"patch [{origin}, {origin + patch}) does not overlap the volume [0, {volume})")
    return slice(start, stop), slice(start - origin, stop - origin)


def _flipped(destination: slice, size: int) -> slice:
    """Where a destination range lands once the patch is mirrored along that axis."""
    return slice(size - destination.stop, size - destination.start)


def _mirror(flips: Sequence[bool]) -> tuple[slice, ...]:
    """Index that reverses the flipped axes of a (..., X, Y, Z) view."""
    return (Ellipsis,) + tuple(slice(None, None, -1) if flip else slice(None) for flip in flips)


def crop_patch(
    array: np.ndarray,
    origin: Sequence[int],
    patch_size: Sequence[int],
    flips: Sequence[bool] = (False, False, False),
    dtype: np.dtype | type | None = None,
) -> np.ndarray:
    """Copy the patch at ``origin`` of the last three axes of ``array``, flipped and zero-padded as needed.
    Introduced in notebook 05.

    Only the patch's voxels are read, so this is cheap on a memmap. Parts of the patch outside the volume
    are zeros (a negative ``origin`` or one too close to the far side).

    Args:
        array: (..., X, Y, Z) array, e.g. an image (C, X, Y, Z) or labels (X, Y, Z).
        origin: patch corner in voxels (may be negative).
        patch_size: (px, py, pz).
        flips: mirror the patch along X, Y, Z.
        dtype: dtype of the result (default: the array's); the cast happens during the copy.

    Example:
        >>> crop_patch(np.arange(4).reshape(1, 1, 4), (0, 0, 2), (1, 1, 3)).tolist()
        [[[2, 3, 0]]]
    """
    windows = [_window(o, p, v) for o, p, v in zip(origin, patch_size, array.shape[-3:])]
    source = (Ellipsis,) + tuple(src for src, _ in windows)
    target = (Ellipsis,) + tuple(_flipped(dst, p) if flip else dst
                                 for (_, dst), p, flip in zip(windows, patch_size, flips))
    shape = tuple(array.shape[:-3]) + tuple(patch_size)
    inside = all(dst.stop - dst.start == p for (_, dst), p in zip(windows, patch_size))
    patch = np.empty(shape, dtype or array.dtype) if inside else np.zeros(shape, dtype or array.dtype)
    patch[target] = np.asarray(array[source])[_mirror(flips)]  # a memmap slice is a view: one copy
    return patch


def _crop_image_patch(
    image: np.ndarray,
    origin: Sequence[int],
    patch_size: Sequence[int],
    flips: Sequence[bool] = (False, False, False),
    scale: Sequence[float] | None = None,
    shift: Sequence[float] | None = None,
    dtype: type = np.float32,
    chunk: int = 16,
) -> np.ndarray:
    """Crop an image patch (C, px, py, pz), flipped, scaled and shifted, in one pass over memory (notebook 05).

    Gives the same result as ``augment_intensity(crop_patch(image, ..., dtype=dtype), scale, shift)``
    (padding, if any, gets the shift too), but faster: the work is done on slabs of ``chunk`` X-planes that
    stay in the CPU cache, and PyTorch converts float16 to float32 with vector instructions (NumPy's cast
    is element by element). A float16 memmap is read once, only where the patch lies.

    Args:
        image: (C, X, Y, Z) array, memmap or array-like.
        origin, patch_size, flips: as for ``crop_patch``.
        scale, shift: per-channel intensity factors (default 1 and 0).
        dtype: ``np.float32`` or ``np.float16`` (half the bytes, for mixed-precision GPU training).
        chunk: X-planes per slab (a slab of 16 x 160 x 64 float32 is 650 kB: it fits a 1 MB L2 cache).
    """
    channels = image.shape[0]
    scale = np.ones(channels) if scale is None else scale
    shift = np.zeros(channels) if shift is None else shift
    # Source ranges in the volume and destination ranges in the (unflipped) patch, per axis.
    (x_src, x_dst), (y_src, y_dst), (z_src, z_dst) = [
        _window(o, p, v) for o, p, v in zip(origin, patch_size, image.shape[-3:])]
    y_out = _flipped(y_dst, patch_size[1]) if flips[1] else y_dst
    z_out = _flipped(z_dst, patch_size[2]) if flips[2] else z_dst
    mirror = _mirror(flips)
    patch = np.empty((channels,) + tuple(patch_size), dtype)
    padded = (x_dst.stop - x_dst.start, y_dst.stop - y_dst.start, z_dst.stop - z_dst.start) != tuple(patch_size)
    source = _as_tensor(image)
    slab_shape = (chunk, y_src.stop - y_src.start, z_src.stop - z_src.start)
    slab = torch.from_numpy(np.empty(slab_shape, dtype))
    # Reading strided memory and converting float16 in one step is slow; a same-type copy into the cache
    # first, then a contiguous conversion, takes about 35 % less time.
    raw = None if source is None or source.dtype == slab.dtype else torch.empty(slab_shape, dtype=source.dtype)
    for c in range(channels):
        if padded:
            patch[c].fill(shift[c])  # padding is 0 before augmentation: 0 * scale + shift
        offset = torch.tensor(float(shift[c]), dtype=slab.dtype)
        for x in range(x_src.start, x_src.stop, chunk):
            stop = min(x + chunk, x_src.stop)
            block = slab[: stop - x]
            if raw is not None:
                block.copy_(raw[: stop - x].copy_(source[c, x:stop, y_src, z_src]))  # read, then convert
            elif source is not None:
                block.copy_(source[c, x:stop, y_src, z_src])
            else:
                block.copy_(torch.from_numpy(np.asarray(image[c, x:stop, y_src, z_src])))
            torch.add(offset, block, alpha=float(scale[c]), out=block)  # shift + scale * block, in cache
            x_out = slice(x_dst.start + x - x_src.start, x_dst.start + stop - x_src.start)
            x_out = _flipped(x_out, patch_size[0]) if flips[0] else x_out
            np.copyto(patch[c, x_out, y_out, z_out], block.numpy()[mirror])  # mirrored write
    return patch


def _as_tensor(image) -> torch.Tensor | None:
    """A zero-copy tensor view of a NumPy array or memmap (read-only is fine: it is only read), else None."""
    if not isinstance(image, np.ndarray) or any(step < 0 for step in image.strides):
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            return torch.from_numpy(image)
        except TypeError:  # a dtype torch does not know
            return None


# ----------------------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchPlan:
    """Every random choice behind one patch (reproducible from seed, epoch and index)."""

    volume: int
    origin: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    scale: np.ndarray
    shift: np.ndarray
    tumour_centred: bool
    blur: np.ndarray | None = None  # per channel: Gaussian sigma in voxels (0: none); None: no appearance change
    gamma: np.ndarray | None = None  # per channel (1: none)
    noise: np.ndarray | None = None  # per channel: std in z-score units (0: none)
    noise_seed: int = 0


class PatchDataset3D(Dataset):
    """Random 3D training patches (notebook 05); item ``i`` is (image (C, px, py, pz), classes (px, py, pz)).
    Introduced in notebook 06.

    The image is float32 (or ``image_dtype``); classes are uint8, 8x fewer bytes to collate and copy to the
    GPU than int64. ``braintools.training.losses`` takes them as they are; for ``F.cross_entropy`` or ``F.one_hot``
    call ``.long()`` on the device. ``braintools.training.train.fit`` calls ``set_epoch`` at each epoch.

    Args:
        volumes: ``volumes.Volume`` items (a ``VolumeSource`` is loaded once here); arrays may be memmaps. An image
            that is not yet brain-masked z-scored (``Volume.normalised`` False) is z-scored patch by patch with
            its volume's brain statistics (computed once per volume).
        patch_size: (px, py, pz) voxels (notebook 05: the profile's ``patch_size_3d``).
        patches_per_epoch: dataset length (notebook 05: the profile's ``patches_per_epoch_3d``). Item ``i`` comes
            from volume ``i % len(volumes)``, so every volume is used equally.
        tumour_probability: share of patches centred on a tumour voxel (the rest on a brain voxel).
        augment: random flips along each of ``flip_axes`` (probability ``flip_probability``) and per-channel
            intensity scale (1 +- ``intensity_scale``) and shift (+- ``intensity_shift``, in z-score units), the
            shift on every voxel as in MONAI's BraTS recipe; with ``appearance``, also per-channel blur, gamma
            and noise (``AppearanceAugmentation``, computed in float32 before the cast to ``image_dtype``).
        flip_axes: the axes that may be mirrored; ``(0,)``, left-right only, is the medical-safe choice (brains
            are nearly mirror-symmetric left-right, never upside down or back to front).
        seed: base seed; the randomness of item ``i`` in epoch ``e`` depends only on (seed, e, i).
        brain_step: grid step of the brain-voxel index (reads 1/brain_step of the image planes once).
        image_dtype: ``torch.float32``, or ``torch.float16`` to halve the bytes for mixed-precision GPU
            training (the model then needs ``autocast`` or ``.float()`` on the device).

    Example:
        >>> dataset = PatchDataset3D([("case", image, classes)], patch_size=(64, 64, 32))  # doctest: +SKIP
        >>> image_patch, class_patch = dataset[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        volumes: Sequence[Volume],
        patch_size: Sequence[int],
        patches_per_epoch: int,
        tumour_probability: float = 0.6,
        augment: bool = True,
        flip_probability: float = 0.5,
        intensity_scale: float = 0.1,
        intensity_shift: float = 0.1,
        flip_axes: Sequence[int] = (0, 1, 2),
        appearance: AppearanceAugmentation | None = None,
        seed: int = 0,
        brain_step: int = 4,
        image_dtype: torch.dtype = torch.float32,
    ):
        self.volumes = list(volumes)
        for volume in self.volumes:
            check_volume(volume)
        if not self.volumes:
            raise DataError("PatchDataset3D needs at least one volume")
        self.patch_size = tuple(int(p) for p in patch_size)
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size must be three positive sizes (X, Y, Z), got {patch_size}")
        self.patches_per_epoch = int(patches_per_epoch)
        if not 0.0 <= tumour_probability <= 1.0:
            raise ValueError(f"tumour_probability must lie in [0, 1], got {tumour_probability}")
        self.tumour_probability = tumour_probability
        self.augment = augment
        self.flip_probability = flip_probability
        self.intensity_scale = intensity_scale
        self.intensity_shift = intensity_shift
        if not set(flip_axes) <= {0, 1, 2}:
            raise ValueError(f"flip_axes must be a subset of (0, 1, 2), got {flip_axes}")
        self.flip_axes = tuple(int(a) for a in flip_axes)
        self.appearance = appearance
        self.seed = seed
        self.brain_step = brain_step
        if image_dtype not in (torch.float32, torch.float16):
            raise ValueError(f"image_dtype must be torch.float32 or torch.float16, got {image_dtype}")
        self.image_dtype = image_dtype
        self.epoch = 0
        self._indices: dict[int, VolumeIndex] = {}

    def __len__(self) -> int:
        return self.patches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose patches the dataset returns (call before each epoch)."""
        self.epoch = int(epoch)

    def volume_index(self, volume: int) -> VolumeIndex:
        """The tumour/brain voxel index of one volume, built on first use and kept."""
        if volume not in self._indices:
            chosen = self.volumes[volume]
            classes = np.asarray(chosen.classes)
            check_class_values(chosen, classes)  # a damaged cache file is named, with the fix
            self._indices[volume] = _build_volume_index(chosen.image, classes, self.brain_step,
                                                       with_statistics=not chosen.normalised)
        return self._indices[volume]

    def build_indices(self) -> None:
        """Build every volume index now (e.g. before forking DataLoader workers, so they share it)."""
        for volume in range(len(self.volumes)):
            self.volume_index(volume)

    def plan(self, item: int) -> PatchPlan:
        """Make every random choice of item ``item`` in the current epoch (no patch data is read)."""
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} patches per epoch")
        rng = np.random.default_rng((self.seed, self.epoch, item))
        volume = item % len(self.volumes)
        index = self.volume_index(volume)
        centre, tumour_centred = choose_patch_centre(index, rng, self.tumour_probability)
        channels = self.volumes[volume].image.shape[0]
        changes = {}
        if self.augment:
            flips = tuple(bool(f) and axis in self.flip_axes
                          for axis, f in enumerate(rng.random(3) < self.flip_probability))
            scale = rng.uniform(1 - self.intensity_scale, 1 + self.intensity_scale, channels).astype(np.float32)
            shift = rng.uniform(-self.intensity_shift, self.intensity_shift, channels).astype(np.float32)
            if self.appearance is not None:
                changes = self._appearance_plan(rng, channels)
        else:
            flips = (False, False, False)
            scale, shift = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        origin = _patch_origin(centre, index.shape, self.patch_size)
        return PatchPlan(volume, origin, flips, scale, shift, tumour_centred, **changes)

    def _appearance_plan(self, rng: np.random.Generator, channels: int) -> dict:
        """Per-channel blur sigma, gamma and noise std of one patch (``self.appearance``)."""
        look = self.appearance
        blur = np.where(rng.random(channels) < look.blur_probability, rng.uniform(*look.blur_sigma, channels), 0.0)
        gamma = np.where(rng.random(channels) < look.gamma_probability,
                         np.exp(rng.uniform(-look.gamma_range, look.gamma_range, channels)), 1.0)
        noise = np.where(rng.random(channels) < look.noise_probability, rng.uniform(0, look.noise_std, channels), 0.0)
        return {"blur": blur, "gamma": gamma, "noise": noise, "noise_seed": int(rng.integers(2**31))}

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (image (C, px, py, pz) of ``image_dtype``, classes uint8 (px, py, pz)) of item ``item``."""
        plan = self.plan(item)
        chosen = self.volumes[plan.volume]
        image, classes = chosen.image, chosen.classes
        dtype = np.float16 if self.image_dtype == torch.float16 else np.float32
        work_dtype = np.float32 if plan.blur is not None else dtype  # appearance changes are computed in float32
        if chosen.normalised:
            patch = _crop_image_patch(image, plan.origin, self.patch_size, plan.flips, plan.scale, plan.shift,
                                     work_dtype)
        else:  # z-score needs the brain mask of the raw patch first: a slower, simpler path
            index = self.volume_index(plan.volume)
            patch = crop_patch(image, plan.origin, self.patch_size, plan.flips, dtype=np.float32)
            augment_intensity(apply_zscore(patch, index.mean, index.std), plan.scale, plan.shift)
        if plan.blur is not None:
            augment_appearance(patch, plan.blur, plan.gamma, plan.noise, np.random.default_rng(plan.noise_seed))
        patch = patch.astype(dtype, copy=False)
        labels = crop_patch(classes, plan.origin, self.patch_size, plan.flips, dtype=np.uint8)
        return torch.from_numpy(patch), torch.from_numpy(labels)
