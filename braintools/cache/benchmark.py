"""Timing helpers of notebook 03 and ``benchmarks/precache.py``: warm reads, medians, CPU time, disk sizes."""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from braintools.cache.build import PrecacheReport, precache
from braintools.cache.lru import value_nbytes
from braintools.cache.sources import CacheSource
from braintools.cache.store import IMAGE_DTYPE, cache_file_names, load_cached_case, manifest_entry, read_patch
from braintools.data import io

if TYPE_CHECKING:
    import pandas as pd

#: What ``benchmark_loads`` times, by row key: (description, what it returns).
LOAD_WAYS = {
    "h5": ("HDF5 slice files (io.load_h5_volume)", "float32 image + labels"),
    "npy": ("cached image (np.load)", "float16 image"),
    "fromfile": ("same bytes, raw (np.fromfile)", "float16 image, no header check"),
    "patient": ("cached patient (load_cached_case, in memory)", "float16 image + uint8 labels"),
    "patch": ("memory-mapped 3D patch (read_patch)", "float16 patch + uint8 labels"),
    "axial": ("memory-mapped axial slice", "float16 slice (4, X, Y)"),
}
def median_ms(function: Callable[[], object], repeats: int = 5) -> float:
    """Call ``function`` once to warm up, then ``repeats`` times; return the median wall time in ms (notebook 03)."""
    function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process and its finished child processes (pool workers)."""
    try:
        import resource  # Unix only
    except ImportError:
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_precache(sources: Iterable[CacheSource], cache_dir: str | os.PathLike, workers: int = 1,
                   progress: bool = False, crop: bool = False) -> tuple[PrecacheReport, float, float]:
    """Run ``precache`` and return (report, wall seconds, CPU seconds of this process and its workers) (notebook 03).

    CPU seconds / wall seconds is the number of cores kept busy: close to ``workers`` when converting scales.
    """
    start, start_cpu = time.perf_counter(), cpu_seconds()
    report = precache(sources, cache_dir, workers=workers, progress=progress, crop=crop)
    return report, time.perf_counter() - start, cpu_seconds() - start_cpu


def warm_files(paths: Iterable[str | os.PathLike]) -> None:
    """Read files once so that timed reads find them in the operating system's page cache (warm) (notebook 03)."""
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(8 * 2**20):
                pass


def random_patch_starts(shape: Sequence[int], size: Sequence[int], count: int, seed: int = 0
                        ) -> list[tuple[int, ...]]:
    """Return ``count`` random first voxels of patches of ``size`` that fit inside ``shape``."""
    rng = np.random.default_rng(seed)
    return [tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(shape, size)) for _ in range(count)]


def _nbytes(value: Any) -> int:
    if isinstance(value, io.Case):
        return value.image.nbytes + (0 if value.seg is None else value.seg.nbytes)
    return value_nbytes(value)


def _timed_loads(h5_files: Sequence[Path], cache_dir: Path, case_id: str, patch: tuple[int, ...], seed: int
                 ) -> dict[str, Callable[[], Any]]:
    """The functions ``benchmark_loads`` times, by row key (each returns what it read)."""
    image_path = cache_dir / cache_file_names(case_id)[0]
    stored = np.load(image_path, mmap_mode="r")
    starts = itertools.cycle(random_patch_starts(stored.shape[1:], patch, 64, seed))
    middle = stored.shape[3] // 2
    return {
        "h5": lambda: io.load_h5_volume(list(h5_files)),
        "npy": lambda: np.load(image_path),
        "fromfile": lambda: np.fromfile(image_path, IMAGE_DTYPE, offset=stored.offset),
        "patient": lambda: load_cached_case(cache_dir, case_id, mmap=False),
        "patch": lambda: read_patch(cache_dir, case_id, next(starts), patch),
        "axial": lambda: np.array(load_cached_case(cache_dir, case_id, mmap=True)[0][..., middle]),
    }


def benchmark_loads(
    h5_files: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    case_id: str,
    patch_size: Sequence[int] = (160, 160, 64),
    repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Time every way to read one patient, warm (files in the page cache); one row per way (``LOAD_WAYS``).
    Introduced in notebook 03.

    Columns: ``read`` (what), ``returns``, ``ms`` (median of ``repeats`` after one warm-up), ``MiB`` returned,
    ``MiB/s`` and ``speed-up`` (HDF5 time / this time). Patches start at random places (seeded); the patch size
    is clipped to the volume. ``table.attrs`` holds ``volume_shape`` and ``patch_size`` (X, Y, Z).

    Example:
        >>> table = benchmark_loads(h5_source.files, cache_dir, "volume_1")  # doctest: +SKIP
    """
    import pandas as pd

    cache_dir, h5_files = Path(cache_dir), [Path(path) for path in h5_files]
    shape = manifest_entry(cache_dir, case_id)["image"]["shape"][1:]
    patch = tuple(min(int(p), int(n)) for p, n in zip(patch_size, shape))
    warm_files(h5_files + [cache_dir / name for name in cache_file_names(case_id) if (cache_dir / name).exists()])
    rows = {}
    for key, load in _timed_loads(h5_files, cache_dir, case_id, patch, seed).items():
        read, returns = LOAD_WAYS[key]
        if key == "h5":
            read = f"{len(h5_files)} {read}"
        elif key == "patch":
            read = read.replace("3D patch", "x".join(map(str, patch)) + " patch")
        mebibytes = _nbytes(load()) / 2**20
        rows[key] = {"read": read, "returns": returns, "ms": median_ms(load, repeats), "MiB": mebibytes}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["MiB/s"] = table["MiB"] / (table["ms"] / 1000)
    table["speed-up"] = table.loc["h5", "ms"] / table["ms"]
    table.attrs.update(volume_shape=tuple(shape), patch_size=patch)
    return table


def disk_sizes(h5_files: Sequence[str | os.PathLike], cache_dir: str | os.PathLike, case_id: str) -> pd.DataFrame:
    """Disk size of one patient as HDF5 slices and as cached ``.npy`` files (files, MiB, bytes per voxel) (notebook 03).

    Bytes per voxel are per voxel of the scan's grid: a cache cropped to the brain box stores fewer voxels.
    """
    import pandas as pd

    entry = manifest_entry(cache_dir, case_id)
    voxels = int(np.prod(entry.get("grid", entry["image"]["shape"][1:])))
    rows = {f"{len(h5_files)} HDF5 slice files (float64 image + uint8 mask)":
            (len(h5_files), sum(os.path.getsize(path) for path in h5_files))}
    for array in (entry["image"], entry["labels"]):
        if array is not None:
            rows[f"{array['file']} ({array['dtype']})"] = (1, array["bytes"])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["files", "bytes"])
    table["MiB"] = table["bytes"] / 2**20
    table["bytes per voxel"] = table["bytes"] / voxels
    return table.drop(columns="bytes")
