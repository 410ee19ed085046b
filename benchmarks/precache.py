"""Benchmark the HDF5 -> NPY pre-cache on full-size (240 x 240 x 155) patients; print what was measured.

Measures, warm (files already in the page cache; median of ``--repeats`` runs after one warm-up):

- one volume read from its 155 HDF5 slice files (``io.load_h5_volume``);
- one cached image file (``np.load``) and a raw read of the same bytes (``np.fromfile``);
- the full cached patient (``store.load_cached_case(mmap=False)``: image + labels);
- a memory-mapped 160 x 160 x 64 patch (``store.read_patch``: image + labels, memory maps kept open),
  float16 as stored, and converted to float32 with NumPy and with torch; the same through a fresh map;
- an axial slice through the memory map; disk sizes;
- the conversion wall time with 1 and 2 worker processes over ``--patients`` patients;
- with ``--layouts``: the same reads for other axis orders of the stored image (why (4, X, Y, Z)).

Then checks the targets and says PASS or FAIL with the numbers. Run from the repository root::

    python benchmarks/precache.py                 # 4 synthetic patients under <data>/benchmarks/precache
    python benchmarks/precache.py --patients 2 --repeats 5 --layouts
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from braintools.cache import benchmark, build, store
from braintools.cache.benchmark import median_ms, random_patch_starts, warm_files
from braintools.cache.sources import CacheSource, h5_sources
from braintools.data import io
from braintools.paths import data_dir
from braintools.synthetic import generator
from braintools.synthetic.layout import write_h5_case

PATCH = (160, 160, 64)
LAYOUTS = {"(4, X, Y, Z)": (0, 1, 2, 3), "(4, Z, X, Y)": (0, 3, 1, 2), "(Z, X, Y, 4)": (3, 1, 2, 0),
           "(X, Y, Z, 4)": (1, 2, 3, 0)}  # fmt: skip


def make_h5_patients(folder: Path, n_patients: int, seed: int) -> None:
    """Write full-size synthetic patients as Kaggle HDF5 slices (``volume_<v>_slice_<s>.h5``), once."""

    for volume in range(1, n_patients + 1):
        if (folder / f"volume_{volume}_slice_154.h5").is_file():
            continue
        start = time.perf_counter()
        case = generator.make_case(seed, volume, (240, 240, 155))
        write_h5_case(case, folder, volume)
        print(f"generated volume_{volume} (generator.make_case + write_h5_case) in {time.perf_counter() - start:.1f} s")


def time_conversion(sources: list[CacheSource], work_dir: Path, workers: int) -> tuple[float, float, Path]:
    """Convert ``sources`` into a fresh folder with ``workers`` processes; return (wall s, CPU s, folder)."""
    cache_dir = work_dir / f"cache_{workers}_workers"
    shutil.rmtree(cache_dir, ignore_errors=True)
    _, wall, cpu = benchmark.timed_precache(sources, cache_dir, workers=workers)
    return wall, cpu, cache_dir


def measure_conversion(sources: list[CacheSource], work_dir: Path, rounds: int) -> dict[int, float]:
    """Time conversions with 1 and 2 workers, alternated ``rounds`` times; return the median wall s per count."""
    walls: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            wall, cpu, _ = time_conversion(sources, work_dir, workers)
            walls[workers].append(wall)
            print(f"conversion of {len(sources)} patients with {workers} worker(s): {wall:.1f} s wall "
                  f"({wall / len(sources):.2f} s per patient), {cpu:.1f} CPU s (= {cpu / wall:.2f} busy cores), "
                  f"load average {os.getloadavg()[0]:.1f}")
    same = all((work_dir / "cache_1_workers" / path.name).read_bytes() == path.read_bytes()
               for path in (work_dir / "cache_2_workers").iterdir())
    print(f"1-worker and 2-worker caches byte-identical: {same}")
    return {workers: statistics.median(times) for workers, times in walls.items()}


def cycle(items: list) -> Callable[[], object]:
    """Return a function that hands out ``items`` one after the other, forever."""
    state = {"index": 0}

    def next_item() -> object:
        state["index"] += 1
        return items[state["index"] % len(items)]

    return next_item


def patch_from_fresh_map(cache_dir: Path, case_id: str, start: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A patch through memory maps opened for this one patch (``read_patch`` keeps them open instead)."""
    image, labels = store.load_cached_case(cache_dir, case_id, mmap=True)
    window = tuple(slice(a, a + n) for a, n in zip(start, PATCH))
    return np.array(image[(slice(None),) + window]), np.array(labels[window])


def measure_loads(h5_files: list[Path], cache_dir: Path, case_id: str, repeats: int) -> dict[str, float]:
    """Warm timings (ms) of every way to read one patient."""
    image_path = cache_dir / store.cache_file_names(case_id)[0]
    offset = np.load(image_path, mmap_mode="r").offset
    shape = np.load(image_path, mmap_mode="r").shape
    next_start = cycle(random_patch_starts(shape[1:], PATCH, 64))
    warm_files(h5_files + [image_path])
    figures = {
        "h5_155_slices": median_ms(lambda: io.load_h5_volume(h5_files), repeats),
        "npy_image_np_load": median_ms(lambda: np.load(image_path), repeats),
        "npy_image_np_fromfile": median_ms(lambda: np.fromfile(image_path, np.float16, offset=offset), repeats),
        "cached_case_full": median_ms(lambda: store.load_cached_case(cache_dir, case_id, mmap=False), repeats),
        "patch_mmap_float16": median_ms(lambda: store.read_patch(cache_dir, case_id, next_start(), PATCH), repeats),
        "patch_fresh_mmap_float16": median_ms(lambda: patch_from_fresh_map(cache_dir, case_id, next_start()), repeats),
        "patch_mmap_float32_numpy": median_ms(
            lambda: store.read_patch(cache_dir, case_id, next_start(), PATCH, dtype=np.float32), repeats),
        "axial_slice_mmap": median_ms(
            lambda: np.array(store.load_cached_case(cache_dir, case_id)[0][:, :, :, shape[3] // 2]), repeats),
    }
    try:
        import torch
    except ImportError:
        return figures
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    figures["patch_mmap_float32_torch_1_thread"] = median_ms(
        lambda: torch.from_numpy(store.read_patch(cache_dir, case_id, next_start(), PATCH)[0]).float(), repeats)
    torch.set_num_threads(threads)
    return figures


def time_layout(path: Path, back: tuple[int, ...], next_start: Callable[[], tuple], repeats: int) -> list[float]:
    """Median ms of a patch, an axial slice and a full load from a stored file; reads give (4, X, Y, Z)."""

    def patch() -> np.ndarray:
        view = np.load(path, mmap_mode="r").transpose(back)
        window = tuple(slice(a, a + n) for a, n in zip(next_start(), PATCH))
        return np.ascontiguousarray(view[(slice(None),) + window])

    def axial() -> np.ndarray:
        view = np.load(path, mmap_mode="r").transpose(back)
        return np.ascontiguousarray(view[:, :, :, view.shape[3] // 2])

    warm_files([path])
    return [median_ms(patch, repeats), median_ms(axial, repeats), median_ms(lambda: np.load(path), repeats)]


def measure_layouts(image_path: Path, work_dir: Path, repeats: int) -> None:
    """Print patch, axial-slice and full-load times for the stored image in other axis orders."""
    image = np.load(image_path)
    next_start = cycle(random_patch_starts(image.shape[1:], PATCH, 64, seed=1))
    print("\nlayout comparison (float16, warm, median ms; every read returns a C-contiguous (4, X, Y, Z) array):")
    print(f"  {'stored as':14s} {'patch 160x160x64':>17s} {'axial slice':>12s} {'full np.load':>13s}")
    for name, order in LAYOUTS.items():
        path = work_dir / f"layout_{'_'.join(map(str, order))}.npy"
        np.save(path, np.ascontiguousarray(image.transpose(order)))
        back = tuple(int(axis) for axis in np.argsort(order))  # stored axes -> (4, X, Y, Z)
        patch_ms, axial_ms, full_ms = time_layout(path, back, next_start, repeats)
        print(f"  {name:14s} {patch_ms:17.2f} {axial_ms:12.2f} {full_ms:13.1f}")
        path.unlink()


def disk_bytes(paths: list[Path]) -> int:
    return sum(path.stat().st_size for path in paths)


def print_figures(figures: dict[str, float], h5_files: list[Path], cache_dir: Path, case_id: str) -> None:
    print("\nwarm reads of one 240 x 240 x 155 patient (median ms):")
    for name, milliseconds in figures.items():
        print(f"  {name:36s} {milliseconds:9.2f}")
    image_name, labels_name = store.cache_file_names(case_id)
    print("\ndisk sizes:")
    print(f"  155 HDF5 slices (float64 image + uint8 mask) {disk_bytes(h5_files) / 2**20:8.1f} MiB")
    print(f"  {image_name} (float16)             {disk_bytes([cache_dir / image_name]) / 2**20:8.1f} MiB")
    print(f"  {labels_name} (uint8)              {disk_bytes([cache_dir / labels_name]) / 2**20:8.1f} MiB")


def check(name: str, value: float, target: str, holds: bool) -> None:
    print(f"  {'PASS' if holds else 'FAIL'}  {name}: {value:.2f}x (target {target})")


def print_targets(figures: dict[str, float], conversion: dict[int, float] | None) -> None:
    h5, full = figures["h5_155_slices"], figures["cached_case_full"]
    print("\nratios and targets:")
    ratio = h5 / figures["npy_image_np_load"]
    check("155 HDF5 slices / cached image np.load", ratio, ">= 50", ratio >= 50)
    check("155 HDF5 slices / cached patient (image + labels)", h5 / full, ">= 50", h5 / full >= 50)
    ratio = figures["npy_image_np_load"] / figures["npy_image_np_fromfile"]
    check("np.load / np.fromfile of the same bytes", ratio, "<= 2", ratio <= 2)
    ratio = full / figures["patch_mmap_float16"]
    check("full cached patient / mmap 160x160x64 patch (float16, maps open)", ratio, ">= 10", ratio >= 10)
    ratio = full / figures["patch_fresh_mmap_float16"]
    check("full cached patient / mmap 160x160x64 patch (float16, fresh map)", ratio, ">= 10", ratio >= 10)
    ratio = full / figures["patch_mmap_float32_numpy"]
    check("full cached patient / mmap patch converted to float32 (NumPy)", ratio, ">= 10", ratio >= 10)
    voxels = np.prod(PATCH) / (240 * 240 * 155)
    print(f"        (the patch holds {100 * voxels:.1f} % of the voxels: a byte-proportional read is "
          f"{1 / voxels:.1f}x faster)")
    if conversion:
        ratio = conversion[1] / conversion[2]
        check("conversion wall time 1 worker / 2 workers (medians)", ratio, "about 2, taken as >= 1.8", ratio >= 1.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: <data>/benchmarks/precache")
    parser.add_argument("--patients", type=int, default=4, help="full-size patients converted (default 4)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per figure (median)")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--layouts", action="store_true", help="also compare other axis orders")
    parser.add_argument("--conversion-rounds", type=int, default=2, help="1- and 2-worker runs, alternated")
    parser.add_argument("--skip-conversion", action="store_true", help="convert with 1 worker only, untimed")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the start")
    work_dir = args.work_dir or data_dir() / "benchmarks" / "precache"
    h5_dir = work_dir / "h5"
    make_h5_patients(h5_dir, args.patients, args.seed)
    sources = [source for source in h5_sources(h5_dir) if int(source.case_id.split("_")[1]) <= args.patients]
    warm_files([path for source in sources for path in source.files])
    conversion = None
    if args.skip_conversion:
        build.precache(sources, work_dir / "cache_1_workers", workers=1)
    else:
        conversion = measure_conversion(sources, work_dir, args.conversion_rounds)
    cache_dir = work_dir / "cache_1_workers"
    case_id, h5_files = sources[0].case_id, list(sources[0].files)
    figures = measure_loads(h5_files, cache_dir, case_id, args.repeats)
    print_figures(figures, h5_files, cache_dir, case_id)
    if args.layouts:
        measure_layouts(cache_dir / store.cache_file_names(case_id)[0], work_dir, args.repeats)
    print_targets(figures, conversion)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other work on this machine slows every figure)")


if __name__ == "__main__":
    main()
