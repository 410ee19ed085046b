"""How fast does PatchDataset3D deliver patches from a memory-mapped volume, next to a plain memory copy?

Writes one full-size volume (image 4 x 240 x 240 x 155 float16, classes uint8, a tumour blob) as .npy files
to a temporary folder, opens them with ``np.load(mmap_mode="r")`` as the pre-cache would, and times:

- the loader: ``PatchDataset3D[i]`` (tumour-centred or brain sampling, flips, intensity scale/shift,
  float32 image and uint8 class tensors), in one process with one PyTorch thread, as in a DataLoader
  worker (PyTorch gives each worker one thread), after one warm-up pass; and the same loader with
  ``image_dtype=torch.float16`` (for mixed-precision GPU training: half the bytes to write);
- the baseline: ``np.copy`` of the image and label windows at the same places from in-memory copies of
  the volume: the bytes the loader reads, with no work of its own. Also the same copy from a float32
  volume: the bytes the loader delivers (float32, twice what it reads).

Target: the loader delivers at least half the patches per second of a plain copy of the same bytes
(ratio >= 0.5). Both readings of "the same bytes" are printed: the float16 bytes read, and the float32
bytes delivered. The float16 loader reads and delivers the same number of bytes.
Figures vary with the machine and its load: run it when the machine is quiet, several times. Not measured
here: a DataLoader's collate (``torch.stack``) copies every patch once more, into shared memory with workers.

Usage: python benchmarks/patches.py [--patches 40] [--patch 160 160 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from braintools.datasets.patches3d import PatchDataset3D
from braintools.datasets.volumes import Volume

SHAPE = (240, 240, 155)


def brain_like_volume(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A brain-like z-scored float16 image (ellipsoid brain, spherical tumour: ED with an ET core) and its classes.

    The brain spans about 160 x 190 x 130 voxels of a 240 x 240 x 155 grid (scaled to other grids), a little more
    than a real brain box (about 140 x 170 x 140).
    """
    rng = np.random.default_rng(seed)
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    scaled = [size / full for size, full in zip(shape, SHAPE)]
    brain = (((x - 120 * scaled[0]) / (80 * scaled[0])) ** 2 + ((y - 120 * scaled[1]) / (95 * scaled[1])) ** 2
             + ((z - 75 * scaled[2]) / (65 * scaled[2])) ** 2) <= 1
    distance = ((x - 150 * scaled[0]) / scaled[0]) ** 2 + ((y - 100 * scaled[1]) / scaled[1]) ** 2 + (
        (z - 80 * scaled[2]) / scaled[2]) ** 2
    image = np.zeros((4,) + tuple(shape), dtype=np.float16)
    for channel in image:
        channel[brain] = rng.standard_normal(int(brain.sum())).astype(np.float16)
    classes = np.zeros(shape, dtype=np.uint8)
    classes[distance <= 20**2] = 2
    classes[distance <= 10**2] = 3
    return image, classes


def write_volume(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``brain_like_volume()`` at BraTS size as ``image.npy`` and ``classes.npy`` in ``folder``."""
    image, classes = brain_like_volume(SHAPE, seed)
    image_path, classes_path = folder / "image.npy", folder / "classes.npy"
    np.save(image_path, image)
    np.save(classes_path, classes)
    return image_path, classes_path


def time_loader(dataset: PatchDataset3D, n: int) -> float:
    """Seconds to fetch items 0..n-1 of the current epoch."""
    start = time.perf_counter()
    for item in range(n):
        dataset[item]
    return time.perf_counter() - start


def time_plain_copy(volume: np.ndarray, labels: np.ndarray, origins: list[tuple[int, int, int]],
                    patch: tuple[int, int, int]) -> float:
    """Seconds to np.copy the image and label windows at each origin of in-memory arrays."""
    start = time.perf_counter()
    for ox, oy, oz in origins:
        window = (slice(ox, ox + patch[0]), slice(oy, oy + patch[1]), slice(oz, oz + patch[2]))
        np.copy(volume[(slice(None),) + window])
        np.copy(labels[window])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=40)
    parser.add_argument("--patch", type=int, nargs=3, default=(160, 160, 64))
    parser.add_argument("--repeats", type=int, default=5, help="timed passes; the best one is reported")
    args = parser.parse_args()
    patch = tuple(args.patch)
    torch.set_num_threads(1)  # as in a DataLoader worker
    with tempfile.TemporaryDirectory() as folder:
        image_path, classes_path = write_volume(Path(folder))
        image = np.load(image_path, mmap_mode="r")
        classes = np.load(classes_path, mmap_mode="r")
        volumes = [Volume("bench", image, classes, normalised=True)]
        dataset = PatchDataset3D(volumes, patch_size=patch, patches_per_epoch=args.patches)
        half = PatchDataset3D(volumes, patch_size=patch, patches_per_epoch=args.patches, image_dtype=torch.float16)
        start = time.perf_counter()
        dataset.build_indices()
        index_seconds = time.perf_counter() - start
        half.build_indices()
        origins = [dataset.plan(item).origin for item in range(args.patches)]
        in_memory, in_memory_labels = np.array(image), np.array(classes)
        in_memory_float32 = in_memory.astype(np.float32)
        time_loader(dataset, args.patches)  # warm-up: page cache and memory maps
        time_plain_copy(in_memory, in_memory_labels, origins, patch)
        time_loader(half, args.patches)
        loader, loader16, copy, copy32 = float("inf"), float("inf"), float("inf"), float("inf")
        for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits all of them
            loader = min(loader, time_loader(dataset, args.patches))
            loader16 = min(loader16, time_loader(half, args.patches))
            copy = min(copy, time_plain_copy(in_memory, in_memory_labels, origins, patch))
            copy32 = min(copy32, time_plain_copy(in_memory_float32, in_memory_labels, origins, patch))
    voxels = int(np.prod(patch))
    n, megabytes, megabytes32 = args.patches, voxels * (4 * 2 + 1) / 1e6, voxels * (4 * 4 + 1) / 1e6
    print(f"volume index (once per volume): {index_seconds * 1000:.0f} ms")
    print(f"plain copy float16: {n / copy:7.1f} patches/s  ({megabytes:.1f} MB image + labels each, as stored)")
    print(f"plain copy float32: {n / copy32:7.1f} patches/s  ({megabytes32:.1f} MB, the bytes the loader delivers)")
    print(f"loader:             {n / loader:7.1f} patches/s  (memmap, flips, intensity aug, float32 + uint8)")
    print(f"loader float16:     {n / loader16:7.1f} patches/s  (the same with image_dtype=torch.float16)")
    print(f"RESULT patches {patch} (target: loader >= 0.5 x a plain copy of the same bytes):")
    print(f"  loader (float32) / copy of the bytes it delivers (float32 + uint8): {copy32 / loader:.2f}")
    print(f"  loader (float32) / copy of the bytes it reads (float16 + uint8):    {copy / loader:.2f}")
    print(f"  loader (float16) / copy of the bytes it reads and delivers:         {copy / loader16:.2f}")


if __name__ == "__main__":
    main()
