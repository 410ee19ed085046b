"""The cache's files: the ``.npy`` layout, atomic writes, the manifest, and memory-mapped reads (notebook 03).

    <cache_dir>/<case_id>_image.npy    float16 (4, X, Y, Z)  brain-masked z-score, channels t1, t1ce, t2, flair
    <cache_dir>/<case_id>_labels.npy   uint8   (X, Y, Z)     contiguous classes 0 bg, 1 NCR, 2 ED, 3 ET
    <cache_dir>/manifest.json          one entry per finished patient (shapes, dtypes, source, sha256, box)

A patient is in the cache only once its manifest entry exists; every file is written under a temporary name,
flushed, then renamed, so a reader never sees a half-written file under its final name.

Cropping (``precache(..., crop=True)``, the ``kaggle`` and ``colab`` profiles): a patient's arrays are stored cropped
to the smallest box holding its brain and its labels (``content_box``): about 36 % of the 240 x 240 x 155 grid on
real BraTS scans, so 28.7 instead of 80.4 MB per patient. Outside that box the image (z-scored, 0 outside the brain)
and the labels are all zero, so nothing is lost: the manifest records the box and the grid (``"box"``, ``"grid"``),
``load_cached_case(..., full_grid=True)`` and ``preprocess.uncrop`` put the arrays back in the scan's grid.
Every other reader (``load_cached_case``, ``read_patch``, ``lru_case_cache``, the training datasets) works on the
stored arrays and their coordinates, whether they are cropped or not.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from braintools._private.atomic import atomic_path
from braintools.cache.lru import LRUVolumeCache
from braintools.cache.sources import CacheSource, load_source, source_fingerprint
from braintools.data import io
from braintools.data.labels import to_contiguous
from braintools.data.preprocess import bounding_box, brain_mask, normalise_image, uncrop
from braintools.errors import DataError

CACHE_FORMAT = 1
MANIFEST_NAME = "manifest.json"
IMAGE_DTYPE = np.dtype(np.float16)
LABEL_DTYPE = np.dtype(np.uint8)
LAYOUT = "image (4, X, Y, Z) float16 C order, channels t1, t1ce, t2, flair; labels (X, Y, Z) uint8 classes 0..3"
FLOAT16_RTOL = 2.0**-11  # float16 keeps 11 significant bits: rounding error <= 2**-11 of the value
FLOAT16_ATOL = 2.0**-24  # smallest float16 step (subnormals), for values near zero
OPEN_MEMORY_MAPS = 32  # patients whose memory maps read_patch keeps open (2 file descriptors each)
_SAFE_ID_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _check_case_id(case_id: str) -> None:
    if not case_id or not set(case_id) <= _SAFE_ID_CHARACTERS or case_id.startswith("."):
        raise DataError(f"{case_id!r}: case id must be letters, digits, '_', '-' or '.' to name a cache file")


def cache_file_names(case_id: str) -> tuple[str, str]:
    """Return the file names of a patient's cached image and labels, e.g. ``volume_1_image.npy`` (notebook 03)."""
    _check_case_id(case_id)
    return f"{case_id}_image.npy", f"{case_id}_labels.npy"


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file under a temporary name, flush it to disk, then rename it to ``path``."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


class _WriteOnly:
    """A file seen through ``write`` only: NumPy then writes through Python, which keeps a full disk's errno
    (its fast path for real files, ``tofile``, raises an ``OSError`` without errno)."""

    def __init__(self, handle: Any) -> None:
        self.write = handle.write


def _save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` as a ``.npy`` file atomically (temporary file, flush to disk, rename) (notebook 03)."""
    _atomic_write(Path(path), lambda handle: np.save(_WriteOnly(handle), array, allow_pickle=False))


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 8 * 2**20) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _array_entry(path: Path, array: np.ndarray) -> dict[str, Any]:
    return {"file": path.name, "shape": list(array.shape), "dtype": str(array.dtype),
            "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def cached_arrays(case: io.Case) -> tuple[np.ndarray, np.ndarray | None]:
    """Return what the cache stores for a case: float16 z-scored image and uint8 classes 0..3 (or None).
    Introduced in notebook 03."""
    image = normalise_image(case.image).astype(IMAGE_DTYPE)  # the course's one normalisation, rounded to float16
    labels = None if case.seg is None else to_contiguous(case.seg).astype(LABEL_DTYPE, copy=False)
    return image, labels


def content_box(image: np.ndarray, labels: np.ndarray | None) -> tuple[slice, ...]:
    """The smallest (X, Y, Z) box holding every brain voxel (any channel non-zero) and every labelled voxel.

    Outside it a cached image (0 outside the brain) and its labels are all zero: cropping to it loses nothing.

    Example:
        >>> image = np.zeros((4, 6, 6, 4), np.float16); image[0, 1:3, 2, 1] = 1
        >>> content_box(image, None)
        (slice(1, 3, None), slice(2, 3, None), slice(1, 2, None))
    """
    mask = brain_mask(image)
    if labels is not None:
        mask |= np.asarray(labels) > 0
    return bounding_box(mask)


def convert_case(source: CacheSource, cache_dir: str | os.PathLike, crop: bool = False) -> dict[str, Any]:
    """Convert one patient into ``<case_id>_image.npy`` and ``_labels.npy``; return its manifest entry (notebook 03).

    With ``crop``, the arrays are stored cropped to ``content_box`` (the entry records the box and the grid).
    Runs in a worker process of ``precache``; the caller writes the entry into the manifest.
    """
    cache_dir = Path(cache_dir)
    image_name, labels_name = cache_file_names(source.case_id)
    fingerprint = source_fingerprint(source)
    case = load_source(source)
    image, labels = cached_arrays(case)
    grid = image.shape[1:]
    box = content_box(image, labels) if crop else tuple(slice(0, size) for size in grid)
    image = np.ascontiguousarray(image[(slice(None), *box)])
    labels = None if labels is None else np.ascontiguousarray(labels[box])
    _save_npy(cache_dir / image_name, image)
    entry = {"format": CACHE_FORMAT, "modalities": list(case.modalities), "source": fingerprint,
             "image": _array_entry(cache_dir / image_name, image), "labels": None, "cropped": bool(crop),
             "grid": list(grid), "box": [[part.start, part.stop] for part in box]}
    if source.kind == "h5":
        entry["channel_order"] = list(source.channel_order)  # the modality of each stored HDF5 channel
    if labels is not None:
        _save_npy(cache_dir / labels_name, labels)
        entry["labels"] = _array_entry(cache_dir / labels_name, labels)
    return entry


def manifest_path(cache_dir: str | os.PathLike) -> Path:
    """Return the path of a cache folder's manifest (``manifest.json``)."""
    return Path(cache_dir) / MANIFEST_NAME


def _empty_manifest() -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "layout": LAYOUT, "cases": {}}


_MANIFEST_MEMO: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] = {}


def _manifest_version(path: Path) -> tuple[int, ...] | None:
    """Identify the current manifest file (inode, times, size): it changes whenever the manifest is rewritten."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)


def read_manifest(cache_dir: str | os.PathLike) -> dict[str, Any]:
    """Return the manifest of a cache folder (an empty one if the folder has none yet) (notebook 03).

    The parsed manifest is remembered until the file changes, so loaders can check it on every call.
    """
    path = manifest_path(cache_dir).resolve()
    version = _manifest_version(path)
    if version is None:
        return _empty_manifest()
    remembered = _MANIFEST_MEMO.get(path)
    if remembered is not None and remembered[0] == version:
        return remembered[1]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest.get("cases"), dict):
            raise ValueError("no 'cases' table")
    except (ValueError, AttributeError) as error:
        raise DataError(f"{path}: cache manifest is not valid ({error}); delete the cache folder and "
                        f"run precache again") from None
    _MANIFEST_MEMO[path] = (version, manifest)
    return manifest


def write_manifest(cache_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (sorted keys, so equal caches have byte-identical manifests) (notebook 03)."""
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _atomic_write(manifest_path(cache_dir), lambda handle: handle.write(text.encode("utf-8")))


def cached_case_ids(cache_dir: str | os.PathLike) -> list[str]:
    """Return the ids of the patients that are completely cached in ``cache_dir`` (notebook 03)."""
    return sorted(read_manifest(cache_dir)["cases"])


def _is_up_to_date(entry: dict[str, Any] | None, fingerprint: dict[str, Any], cache_dir: Path, crop: bool = False
                   ) -> bool:
    """True if a manifest entry matches the source and the crop setting, and its files exist with the recorded sizes."""
    if entry is None or entry.get("format") != CACHE_FORMAT or entry.get("source") != fingerprint:
        return False
    if bool(entry.get("cropped", False)) != crop:
        return False
    arrays = [entry["image"]] + ([entry["labels"]] if entry["labels"] is not None else [])
    for array in arrays:
        path = cache_dir / array["file"]
        if not path.is_file() or path.stat().st_size != array["bytes"]:
            return False
    return True


def manifest_entry(cache_dir: str | os.PathLike, case_id: str) -> dict[str, Any]:
    """The manifest entry of one cached patient; ``DataError`` when it is not (completely) cached."""
    entry = read_manifest(cache_dir)["cases"].get(case_id)
    if entry is None:
        raise DataError(f"{manifest_path(cache_dir)}: case {case_id} is not cached (never converted, or its "
                        f"conversion did not finish); run precache")
    return entry


def _entry_box(entry: dict[str, Any], cache_dir: str | os.PathLike, case_id: str
               ) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """The box of a manifest entry and its grid, checked against the stored shape (entries without one: whole array)."""
    stored = tuple(entry["image"]["shape"][1:])
    grid = tuple(int(size) for size in entry.get("grid", stored))
    pairs = entry.get("box") or [[0, size] for size in stored]
    box = tuple(slice(int(start), int(stop)) for start, stop in pairs)
    fits = len(box) == len(grid) == len(stored) and all(
        0 <= part.start < part.stop <= size and part.stop - part.start == extent
        for part, size, extent in zip(box, grid, stored))
    if not fits:
        raise DataError(f"{manifest_path(cache_dir)}: {case_id} has box {pairs} in grid {list(grid)}, which does not "
                        f"hold its stored arrays {list(stored)}; delete the cache folder and run precache again")
    return box, grid


def cached_box(cache_dir: str | os.PathLike, case_id: str) -> tuple[slice, ...]:
    """Where a cached patient's arrays lie in its scan: the brain box of a cropped cache, else the whole grid.

    Stored voxel ``(x, y, z)`` is voxel ``(x + box[0].start, y + box[1].start, z + box[2].start)`` of the scan.

    Example:
        >>> box = cached_box(cache_dir, "volume_1")  # doctest: +SKIP
    """
    return _entry_box(manifest_entry(cache_dir, case_id), cache_dir, case_id)[0]


def _load_array(path: Path, expected: dict[str, Any], mmap: bool) -> np.ndarray:
    """Load a cached array (memory-mapped or in memory) and check its shape and dtype against the manifest."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: cached file not found; run precache again") from None
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read cached file ({error}); run precache again") from None
    if list(array.shape) != expected["shape"] or str(array.dtype) != expected["dtype"]:
        raise DataError(f"{path}: cached array is {array.dtype} {array.shape}, the manifest says "
                        f"{expected['dtype']} {tuple(expected['shape'])}; run precache again")
    return array


def load_cached_case(
    cache_dir: str | os.PathLike, case_id: str, mmap: bool = True, full_grid: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return a cached patient: image float16 (4, X, Y, Z) and labels uint8 (X, Y, Z) classes 0..3 (notebook 03).

    Args:
        cache_dir: folder written by ``precache``.
        case_id: the patient, e.g. ``"volume_1"`` or ``"BraTS20_Training_001"``.
        mmap: memory-map the files (read-only; only the bytes you index are read from disk) instead of
            reading them whole into memory. Labels are ``None`` for cases without segmentation.
        full_grid: return the arrays in the scan's whole grid (in memory), zeros outside the stored box; by
            default they are returned as stored, cropped to the brain box in a cropped cache (``cached_box``).

    Example:
        >>> image, labels = load_cached_case(cache_dir, "volume_1")  # doctest: +SKIP
        >>> flair = image[3].astype(np.float32)  # reads this channel only  # doctest: +SKIP
    """
    entry = manifest_entry(cache_dir, case_id)
    box, grid = _entry_box(entry, cache_dir, case_id)
    image = _load_array(Path(cache_dir) / entry["image"]["file"], entry["image"], mmap)
    labels = None
    if entry["labels"] is not None:
        labels = _load_array(Path(cache_dir) / entry["labels"]["file"], entry["labels"], mmap)
    if full_grid:
        image = uncrop(image, box, grid)
        labels = None if labels is None else uncrop(labels, box, grid)
    return image, labels


def _patch_window(shape: Sequence[int], start: Sequence[int], size: Sequence[int], case_id: str
                  ) -> tuple[slice, ...]:
    if len(start) != len(shape) or len(size) != len(shape):
        raise ValueError(f"start {tuple(start)} and size {tuple(size)} must have {len(shape)} values (X, Y, Z)")
    for first, length, extent in zip(start, size, shape):
        if first < 0 or length < 1 or first + length > extent:
            raise ValueError(f"{case_id}: patch start {tuple(start)} size {tuple(size)} does not fit "
                             f"inside the volume {tuple(shape)}")
    return tuple(slice(int(first), int(first) + int(length)) for first, length in zip(start, size))


@functools.lru_cache(maxsize=OPEN_MEMORY_MAPS)
def _open_memory_maps(cache_dir: Path, case_id: str, manifest_version: tuple[int, ...] | None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Memory maps of a cached patient, kept open per manifest version (re-opened after any precache)."""
    return load_cached_case(cache_dir, case_id, mmap=True)


def read_patch(
    cache_dir: str | os.PathLike,
    case_id: str,
    start: Sequence[int],
    size: Sequence[int],
    dtype: npt.DTypeLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a 3D patch of a cached patient through a memory map: it costs about the patch, not the volume (notebook 03).

    Args:
        start: first voxel (x, y, z) of the patch, in the stored arrays (the brain box of a cropped cache,
            ``cached_box``; the whole scan otherwise).
        size: patch size (x, y, z); the patch must lie inside the stored arrays.
        dtype: image dtype of the result (default: as stored, float16; float32 costs a slow NumPy cast).

    Returns:
        image patch (4, *size) and labels patch (*size) uint8 (or ``None``), both C-contiguous copies.

    The memory maps of the last ``OPEN_MEMORY_MAPS`` patients stay open between calls: mapping a file's
    pages costs about as much as copying a patch, and is then paid once per patient, not once per patch.

    Example:
        >>> image, labels = read_patch(cache_dir, "volume_1", (40, 40, 45), (160, 160, 64))  # doctest: +SKIP
    """
    cache_dir = Path(cache_dir).resolve()
    image, labels = _open_memory_maps(cache_dir, case_id, _manifest_version(manifest_path(cache_dir)))
    window = _patch_window(image.shape[1:], start, size, case_id)
    image_patch = np.array(image[(slice(None),) + window], dtype=dtype)
    labels_patch = None if labels is None else np.array(labels[window])
    return image_patch, labels_patch


def lru_case_cache(cache_dir: str | os.PathLike, max_bytes: int) -> LRUVolumeCache:
    """Return an ``LRUVolumeCache`` that loads whole cached patients into memory, within ``max_bytes`` (notebook 03).

    Example:
        >>> cases = lru_case_cache(cache_dir, max_bytes=2 * 2**30)  # doctest: +SKIP
        >>> image, labels = cases.get("volume_1")  # doctest: +SKIP
    """
    return LRUVolumeCache(max_bytes, functools.partial(load_cached_case, cache_dir, mmap=False))
