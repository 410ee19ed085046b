"""The npy cache of notebook 03: patients converted once to memory-mappable ``.npy`` files, and read back fast.

- ``sources``: where patients come from (``h5_sources``, ``nifti_sources``);
- ``build``: ``precache`` converts them with a process pool (atomic, resumable, one run per folder at a time);
- ``store``: the files, the manifest (with each patient's box: caches may be cropped to the brain), ``load_cached_case``
  and ``read_patch`` (memory maps);
- ``verify``: check the cache against its sources;
- ``lru``: keep recently used volumes in memory within a byte budget;
- ``benchmark``: the timing helpers of notebook 03.
"""

from braintools.cache.benchmark import benchmark_loads, disk_sizes, median_ms, timed_precache, warm_files
from braintools.cache.build import PrecacheError, PrecacheReport, precache
from braintools.cache.lru import LRUVolumeCache
from braintools.cache.sources import CacheSource, h5_sources, load_source, nifti_sources, source_fingerprint
from braintools.cache.store import (
    LAYOUT,
    cache_file_names,
    cached_arrays,
    cached_box,
    cached_case_ids,
    content_box,
    convert_case,
    load_cached_case,
    lru_case_cache,
    read_manifest,
    read_patch,
    write_manifest,
)
from braintools.cache.verify import verify_cache, verify_case

__all__ = [
    "LAYOUT",
    "CacheSource",
    "LRUVolumeCache",
    "PrecacheError",
    "PrecacheReport",
    "benchmark_loads",
    "cache_file_names",
    "cached_arrays",
    "cached_box",
    "cached_case_ids",
    "content_box",
    "convert_case",
    "disk_sizes",
    "h5_sources",
    "load_cached_case",
    "load_source",
    "lru_case_cache",
    "median_ms",
    "nifti_sources",
    "precache",
    "read_manifest",
    "read_patch",
    "source_fingerprint",
    "timed_precache",
    "verify_cache",
    "verify_case",
    "warm_files",
    "write_manifest",
]
