"""Pre-cache BraTS patients as ``.npy`` files that memory-map, and load them back fast.

Why: one patient in the Kaggle HDF5 layout is 155 small files (float64, about 300 MB); reading them is the
bottleneck of every training epoch. ``precache`` converts each patient once into two files::

    <cache_dir>/<case_id>_image.npy    float16 (4, X, Y, Z)  brain-masked z-score, channels t1, t1ce, t2, flair
    <cache_dir>/<case_id>_labels.npy   uint8   (X, Y, Z)     contiguous classes 0 bg, 1 NCR, 2 ED, 3 ET
    <cache_dir>/manifest.json          one entry per finished patient (shapes, dtypes, source, sha256)

Axis order: (4, X, Y, Z) in C order, the order of ``io.Case.image``, so the loaders return the stored
arrays themselves. A 3D patch is then a set of contiguous runs along Z (64 voxels = 128 bytes for a
160 x 160 x 64 patch) copied without any transposition. ``benchmarks/precache.py --layouts`` stored one
240 x 240 x 155 image in four axis orders and read a 160 x 160 x 64 patch into a (4, X, Y, Z) array
(warm page cache, 5 runs on a shared 2-core machine): stored (4, X, Y, Z) was fastest in every run,
1.2-2.3x faster than (4, Z, X, Y), 3.3-5x faster than (Z, X, Y, 4) and 4-5.7x faster than (X, Y, Z, 4).
The price: one axial slice reads 10-50x slower than from (4, Z, X, Y) (2-11 ms against 0.15-0.3 ms),
because it touches every page of the file. We optimise the 3D patch (notebooks 05-07); 2D training
(notebook 04) should keep whole volumes in memory with ``lru_case_cache``.

float16: half the bytes of float32 to read. A z-score is at most sqrt(n - 1) for n brain voxels (< 3000),
far inside float16's range (65504); the rounding error is at most 2**-11 of the value. Casting a patch to
float32 in NumPy took 2-4x longer than reading it: keep patches float16 until they reach torch (and the
GPU), and cast there.

Crash safety: every file is written under a temporary name, flushed to disk, then renamed, so a loader
never sees a half-written file under its final name. The manifest is rewritten (atomically) after every
finished patient; a patient is in the cache only once its manifest entry exists, so an interrupted run
resumes with the patients that were not finished. Two ``precache`` runs on one folder take turns (a lock file,
``.precache.lock``, on Unix): the second says it waits, waits (up to ``BRAINTOOLS_LOCK_TIMEOUT`` seconds), then
skips what the first converted. A killed run never keeps the lock, and its pool workers die with it
(``braintools.processes``). A complete cache is only read (no lock, no write): it can live on read-only media.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import itertools
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from braintools import io
from braintools.atomic import atomic_path, remove_temporaries
from braintools.errors import DataError, DiskFullError
from braintools.labels import to_contiguous
from braintools.lru import LRUVolumeCache, value_nbytes
from braintools.preprocess import zscore_brain
from braintools.processes import file_lock, worker_pool
from braintools.profiles import get_profile

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CACHE_FORMAT = 1
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".precache.lock"  # held while precache writes the folder
IMAGE_DTYPE = np.dtype(np.float16)
LABEL_DTYPE = np.dtype(np.uint8)
LAYOUT = "image (4, X, Y, Z) float16 C order, channels t1, t1ce, t2, flair; labels (X, Y, Z) uint8 classes 0..3"
FLOAT16_RTOL = 2.0**-11  # float16 keeps 11 significant bits: rounding error <= 2**-11 of the value
FLOAT16_ATOL = 2.0**-24  # smallest float16 step (subnormals), for values near zero
OPEN_MEMORY_MAPS = 32  # patients whose memory maps read_patch keeps open (2 file descriptors each)
_NOT_WRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only folder or file system
_SAFE_ID_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class CacheSource:
    """Where one patient comes from: its HDF5 slice files (``kind="h5"``) or its NIfTI case (``"nifti"``).

    Attributes:
        case_id: the patient's name in the cache (``volume_<v>`` for HDF5, the case id for NIfTI).
        kind: ``"h5"`` or ``"nifti"``.
        files: every source file (their sizes and modification times tell whether the cache is stale).
        channel_order: modality of each HDF5 ``image`` channel (HDF5 only).
        n_slices: slices the HDF5 volume must have (HDF5 only; ``None``: as many as given).
        case_files: the ``io.CaseFiles`` of a NIfTI case (NIfTI only).
    """

    case_id: str
    kind: str
    files: tuple[Path, ...]
    channel_order: tuple[str, ...] = io.H5_CHANNEL_ORDER
    n_slices: int | None = None
    case_files: io.CaseFiles | None = None


def h5_sources(folder: str | os.PathLike, channel_order: tuple[str, ...] = io.H5_CHANNEL_ORDER) -> list[CacheSource]:
    """List the patients of a Kaggle HDF5 slice folder (``volume_<v>_slice_<s>.h5``), one per volume.

    Every volume is expected to have as many slices as most volumes do (155 for BraTS); a volume with
    fewer files fails at conversion with an error naming the missing files.

    Args:
        folder: the ``.../content/data`` folder holding the slice files.
        channel_order: modality of each channel of the stored ``image`` (see ``io.load_h5_volume``).
    """
    volumes = io.find_h5_volumes(folder)
    expected_slices = Counter(len(files) for files in volumes.values()).most_common(1)[0][0]
    return [
        CacheSource(f"volume_{volume}", "h5", tuple(files), tuple(channel_order), max(expected_slices, len(files)))
        for volume, files in volumes.items()
    ]


def nifti_sources(root: str | os.PathLike, require_seg: bool = False) -> list[CacheSource]:
    """List the patients of a NIfTI tree (any BraTS naming, see ``io.find_cases``), one per case."""
    sources = []
    for case in io.find_cases(root, require_seg=require_seg, warn_missing=False):
        files = tuple(case.images[modality] for modality in io.MODALITIES if modality in case.images)
        files += (case.seg,) if case.seg is not None else ()
        sources.append(CacheSource(case.case_id, "nifti", files, case_files=case))
    return sources


def _check_h5_slices(source: CacheSource) -> None:
    """Raise ``DataError`` naming the missing slice files of an HDF5 volume."""
    if not source.files:
        raise DataError(f"{source.case_id}: no HDF5 slice files given")
    folder = Path(source.files[0]).parent
    present = {Path(path).name for path in source.files}
    prefix = Path(source.files[0]).name.rsplit("_slice_", 1)[0]  # "volume_<v>"
    expected = [f"{prefix}_slice_{index}.h5" for index in range(source.n_slices or len(source.files))]
    missing = [name for name in expected if name not in present]
    if missing:
        shown = ", ".join(str(folder / name) for name in missing[:5])
        raise DataError(f"{shown}: file not found ({len(missing)} of {len(expected)} slices of "
                        f"{source.case_id} missing)")


def load_source(source: CacheSource) -> io.Case:
    """Load one patient from its source files into an ``io.Case`` (float32 image, BraTS labels or None)."""
    if source.kind == "h5":
        _check_h5_slices(source)
        return io.load_h5_volume(list(source.files), channel_order=source.channel_order, case_id=source.case_id)
    if source.kind == "nifti":
        return io.load_case(source.case_files)
    raise ValueError(f"{source.case_id}: unknown source kind {source.kind!r} (expected 'h5' or 'nifti')")


def source_fingerprint(source: CacheSource) -> dict[str, Any]:
    """Describe the source files by name, size and modification time, to notice when they change.

    Raises ``DataError`` naming a source file that does not exist.
    """
    digest = hashlib.sha256(f"{source.kind} {','.join(source.channel_order)}\n".encode())
    total_bytes = 0
    for path in source.files:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"{path}: file not found (source of {source.case_id})") from None
        total_bytes += stat.st_size
        digest.update(f"{Path(path).name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {"kind": source.kind, "files": len(source.files), "bytes": total_bytes, "fingerprint": digest.hexdigest()}


# --------------------------------------------------------------------------- writing files


def _check_case_id(case_id: str) -> None:
    if not case_id or not set(case_id) <= _SAFE_ID_CHARACTERS or case_id.startswith("."):
        raise DataError(f"{case_id!r}: case id must be letters, digits, '_', '-' or '.' to name a cache file")


def cache_file_names(case_id: str) -> tuple[str, str]:
    """Return the file names of a patient's cached image and labels, e.g. ``volume_1_image.npy``."""
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


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` as a ``.npy`` file atomically (temporary file, flush to disk, rename)."""
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
    """Return what the cache stores for a case: float16 z-scored image and uint8 classes 0..3 (or None)."""
    image = zscore_brain(case.image).astype(IMAGE_DTYPE)
    labels = None if case.seg is None else to_contiguous(case.seg).astype(LABEL_DTYPE, copy=False)
    return image, labels


def convert_case(source: CacheSource, cache_dir: str | os.PathLike) -> dict[str, Any]:
    """Convert one patient into ``<case_id>_image.npy`` and ``_labels.npy``; return its manifest entry.

    Runs in a worker process of ``precache``; the caller writes the entry into the manifest.
    """
    cache_dir = Path(cache_dir)
    image_name, labels_name = cache_file_names(source.case_id)
    fingerprint = source_fingerprint(source)
    case = load_source(source)
    image, labels = cached_arrays(case)
    save_npy(cache_dir / image_name, image)
    entry = {"format": CACHE_FORMAT, "modalities": list(case.modalities), "source": fingerprint,
             "image": _array_entry(cache_dir / image_name, image), "labels": None}
    if source.kind == "h5":
        entry["channel_order"] = list(source.channel_order)  # the modality of each stored HDF5 channel
    if labels is not None:
        save_npy(cache_dir / labels_name, labels)
        entry["labels"] = _array_entry(cache_dir / labels_name, labels)
    return entry


# --------------------------------------------------------------------------- manifest


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
    """Return the manifest of a cache folder (an empty one if the folder has none yet).

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
    """Write the manifest atomically (sorted keys, so equal caches have byte-identical manifests)."""
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _atomic_write(manifest_path(cache_dir), lambda handle: handle.write(text.encode("utf-8")))


def cached_case_ids(cache_dir: str | os.PathLike) -> list[str]:
    """Return the ids of the patients that are completely cached in ``cache_dir``."""
    return sorted(read_manifest(cache_dir)["cases"])


def _is_up_to_date(entry: dict[str, Any] | None, fingerprint: dict[str, Any], cache_dir: Path) -> bool:
    """True if a manifest entry matches the source and its files exist with the recorded sizes."""
    if entry is None or entry.get("format") != CACHE_FORMAT or entry.get("source") != fingerprint:
        return False
    arrays = [entry["image"]] + ([entry["labels"]] if entry["labels"] is not None else [])
    for array in arrays:
        path = cache_dir / array["file"]
        if not path.is_file() or path.stat().st_size != array["bytes"]:
            return False
    return True


# --------------------------------------------------------------------------- running many patients


def _default_workers(workers: int | None) -> int:
    chosen = get_profile().cache_workers if workers is None else workers
    if chosen < 1:
        raise ValueError(f"workers must be >= 1, got {chosen}")
    return chosen


def _error_message(error: BaseException) -> str:
    if isinstance(error, DataError):
        return str(error)
    if isinstance(error, BrokenProcessPool):
        return "worker process died before finishing (killed or out of memory); run again to resume"
    return f"{type(error).__name__}: {error}"


def _run_per_case(
    function: Callable[[CacheSource], Any], sources: Sequence[CacheSource], workers: int, progress: bool, desc: str
) -> Iterator[tuple[CacheSource, Any, str | None]]:
    """Run ``function`` on every source (a process pool when ``workers > 1``); yield (source, result, error)."""
    bar = tqdm(total=len(sources), desc=desc, unit="case", disable=not progress or not sources)
    try:
        if workers == 1 or len(sources) <= 1:
            for source in sources:
                try:
                    yield source, function(source), None
                except DiskFullError:
                    raise  # every other patient would fail the same way
                except Exception as error:  # noqa: BLE001 - one bad patient must not stop the others
                    yield source, None, _error_message(error)
                bar.update()
            return
        pool = worker_pool(min(workers, len(sources)))
        try:
            futures = {pool.submit(function, source): source for source in sources}
            for future in as_completed(futures):
                error = future.exception()
                if isinstance(error, DiskFullError):
                    raise error
                if error is None:
                    yield futures[future], future.result(), None
                else:
                    yield futures[future], None, _error_message(error)
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


# --------------------------------------------------------------------------- precache


@dataclass
class PrecacheReport:
    """What ``precache`` did: patients converted now, already cached (skipped), and failed (id -> error)."""

    cache_dir: Path
    workers: int
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph: counts, then one line per failed patient with its error."""
        lines = [f"{self.cache_dir}: {len(self.converted)} converted, {len(self.skipped)} already cached, "
                 f"{len(self.failed)} failed"]
        lines += [f"  {case_id}: {message}" for case_id, message in sorted(self.failed.items())]
        return "\n".join(lines)


class PrecacheError(DataError):
    """Some patients could not be cached; ``.report`` says which and why (the others are cached)."""

    def __init__(self, report: PrecacheReport | dict[str, str], message: str) -> None:
        super().__init__(message)
        self.report = report


def precache(
    sources: Iterable[CacheSource],
    cache_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    raise_on_failure: bool = True,
    lock_timeout: float | None = None,
) -> PrecacheReport:
    """Convert patients to memory-mappable ``.npy`` files, resuming an interrupted run.

    Patients whose manifest entry matches their source files are skipped; when all are, nothing is written
    (the folder may be read-only). A patient that fails (missing, truncated or corrupt file) is reported at the
    end; the others are cached anyway. A full disk stops the run with ``DiskFullError`` naming the file.

    Args:
        sources: patients, from ``h5_sources`` or ``nifti_sources``.
        cache_dir: output folder (created if missing).
        workers: processes converting in parallel (default: the profile's ``cache_workers``; 1 = no pool).
        progress: show a tqdm progress bar.
        raise_on_failure: raise ``PrecacheError`` (listing every failed patient) at the end if any failed.
        lock_timeout: seconds to wait for another run writing the same folder (default: ``BRAINTOOLS_LOCK_TIMEOUT``
            or 30 minutes), then raise ``DataError``.

    Example:
        >>> report = precache(h5_sources(data / "content/data"), cache_dir)  # doctest: +SKIP
    """
    cache_dir, sources = Path(cache_dir), list(sources)
    report = PrecacheReport(cache_dir, _default_workers(workers))
    if _plan(sources, _editable(read_manifest(cache_dir)), cache_dir, report):  # something to convert
        report = PrecacheReport(cache_dir, report.workers)  # planned again under the lock: another run may be busy
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            with file_lock(cache_dir / LOCK_NAME, lock_timeout, what="precache run"):
                _convert_missing(sources, cache_dir, report, progress)
        except OSError as error:
            if error.errno not in _NOT_WRITABLE_ERRNOS:
                raise
            raise DataError(f"{error.filename or cache_dir}: cannot write to the cache folder ({error.strerror}) and "
                            f"some cases are not cached yet; use a writable cache folder") from error
    if report.failed and raise_on_failure:
        raise PrecacheError(report, report.summary())
    return report


def _convert_missing(sources: list[CacheSource], cache_dir: Path, report: PrecacheReport, progress: bool) -> None:
    """Convert the sources whose cache is missing or stale, recording each finished patient in the manifest."""
    remove_temporaries(cache_dir)  # left by an interrupted run (they never carry a final name)
    manifest = _editable(read_manifest(cache_dir))
    todo = _plan(sources, manifest, cache_dir, report)
    write_manifest(cache_dir, manifest)  # stale entries are gone before their files are rewritten
    convert = functools.partial(convert_case, cache_dir=cache_dir)
    for source, entry, error in _run_per_case(convert, todo, report.workers, progress, "precache"):
        if error is not None:
            report.failed[source.case_id] = error
            continue
        manifest["cases"][source.case_id] = entry
        write_manifest(cache_dir, manifest)
        report.converted.append(source.case_id)


def _editable(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of a manifest whose ``cases`` table can be changed without touching the remembered one."""
    return {**manifest, "cases": dict(manifest["cases"])}


def _plan(sources: list[CacheSource], manifest: dict[str, Any], cache_dir: Path, report: PrecacheReport
          ) -> list[CacheSource]:
    """Return the sources to convert; record skipped and failed ones and drop stale manifest entries."""
    todo, seen = [], set()
    for source in sources:
        try:
            if source.case_id in seen:
                raise DataError(f"{source.case_id}: two sources have this case id; give each a unique id")
            seen.add(source.case_id)
            cache_file_names(source.case_id)
            fingerprint = source_fingerprint(source)
        except DataError as error:
            report.failed[source.case_id] = str(error)
            continue
        if _is_up_to_date(manifest["cases"].get(source.case_id), fingerprint, cache_dir):
            report.skipped.append(source.case_id)
        else:
            manifest["cases"].pop(source.case_id, None)
            todo.append(source)
    return todo


# --------------------------------------------------------------------------- loading


def _manifest_entry(cache_dir: str | os.PathLike, case_id: str) -> dict[str, Any]:
    entry = read_manifest(cache_dir)["cases"].get(case_id)
    if entry is None:
        raise DataError(f"{manifest_path(cache_dir)}: case {case_id} is not cached (never converted, or its "
                        f"conversion did not finish); run precache")
    return entry


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
    cache_dir: str | os.PathLike, case_id: str, mmap: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return a cached patient: image float16 (4, X, Y, Z) and labels uint8 (X, Y, Z) classes 0..3.

    Args:
        cache_dir: folder written by ``precache``.
        case_id: the patient, e.g. ``"volume_1"`` or ``"BraTS20_Training_001"``.
        mmap: memory-map the files (read-only; only the bytes you index are read from disk) instead of
            reading them whole into memory. Labels are ``None`` for cases without segmentation.

    Example:
        >>> image, labels = load_cached_case(cache_dir, "volume_1")  # doctest: +SKIP
        >>> flair = image[3].astype(np.float32)  # reads this channel only
    """
    entry = _manifest_entry(cache_dir, case_id)
    image = _load_array(Path(cache_dir) / entry["image"]["file"], entry["image"], mmap)
    labels = None
    if entry["labels"] is not None:
        labels = _load_array(Path(cache_dir) / entry["labels"]["file"], entry["labels"], mmap)
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
    """Read a 3D patch of a cached patient through a memory map: it costs about the patch, not the volume.

    Args:
        start: first voxel (x, y, z) of the patch.
        size: patch size (x, y, z); the patch must lie inside the volume.
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
    """Return an ``LRUVolumeCache`` that loads whole cached patients into memory, within ``max_bytes``.

    Example:
        >>> cases = lru_case_cache(cache_dir, max_bytes=2 * 2**30)  # doctest: +SKIP
        >>> image, labels = cases.get("volume_1")
    """
    return LRUVolumeCache(max_bytes, functools.partial(load_cached_case, cache_dir, mmap=False))


# --------------------------------------------------------------------------- verify


def verify_case(source: CacheSource, cache_dir: str | os.PathLike) -> None:
    """Check one cached patient against its source; raise ``DataError`` describing the first problem.

    Checks: manifest entry, unchanged source, file checksums, shapes and dtypes, labels exactly equal,
    image within float16 rounding of the z-scored source; for HDF5 sources, the channel order of the manifest
    against the source's and against the intensity signatures of the data (``signatures.contradicting_order``).
    """
    cache_dir = Path(cache_dir)
    entry = _manifest_entry(cache_dir, source.case_id)
    if entry.get("source") != source_fingerprint(source):
        raise DataError(f"{source.files[0]}: source of {source.case_id} changed since it was cached")
    recorded = tuple(entry.get("channel_order", source.channel_order))
    if source.kind == "h5" and recorded != tuple(source.channel_order):
        raise DataError(f"{manifest_path(cache_dir)}: {source.case_id} is recorded with HDF5 channel order "
                        f"{recorded}, its source is read as {tuple(source.channel_order)}")
    for array_entry in (entry["image"], entry["labels"]):
        if array_entry is not None and file_sha256(cache_dir / array_entry["file"]) != array_entry["sha256"]:
            raise DataError(f"{cache_dir / array_entry['file']}: checksum differs from the manifest (corrupt)")
    image, labels = load_cached_case(cache_dir, source.case_id, mmap=True)
    case = load_source(source)
    if source.kind == "h5" and case.seg is not None:
        _check_signatures(case, recorded, source.files[0])
    _compare_image(image, zscore_brain(case.image), cache_dir / entry["image"]["file"])
    expected_labels = None if case.seg is None else to_contiguous(case.seg)
    if (labels is None) != (expected_labels is None) or (
        labels is not None and not np.array_equal(labels, expected_labels)
    ):
        raise DataError(f"{cache_dir / cache_file_names(source.case_id)[1]}: labels differ from the source")


def _check_signatures(case: io.Case, channel_order: tuple[str, ...], first_file: Path) -> None:
    """Raise ``DataError`` when the intensity signatures of an HDF5 volume clearly refute its channel order."""
    from braintools import signatures

    stored = case.image[[case.modalities.index(modality) for modality in channel_order]]  # channels as in the files
    preferred = signatures.contradicting_order(stored, case.seg, channel_order)
    if preferred is not None:
        raise DataError(f"{first_file}: {case.case_id} is cached with HDF5 channel order {channel_order}, but its "
                        f"intensity signatures say {preferred.order} ({preferred.passed}/{preferred.measured} hold); "
                        f"precache it again with that order (command line: --channel-order infer)")


def _compare_image(cached: np.ndarray, reference: np.ndarray, path: Path) -> None:
    if cached.shape != reference.shape:
        raise DataError(f"{path}: shape {cached.shape} differs from the source {reference.shape}")
    error = np.abs(cached.astype(np.float32) - reference)
    allowed = FLOAT16_RTOL * np.abs(reference) + FLOAT16_ATOL
    if np.any(error > allowed):
        worst = float(np.max(error - allowed))
        raise DataError(f"{path}: {np.count_nonzero(error > allowed)} voxels differ from the z-scored source "
                        f"by more than float16 rounding (worst excess {worst:.3g})")


def verify_cache(
    sources: Iterable[CacheSource],
    cache_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    raise_on_failure: bool = True,
) -> dict[str, str]:
    """Check every cached patient against its source; return ``{case_id: problem}`` (empty: all good).

    Same arguments as ``precache``. Raises ``PrecacheError`` listing the problems when ``raise_on_failure``
    and any patient fails (see ``verify_case`` for what is checked).

    Example:
        >>> verify_cache(h5_sources(h5_dir), cache_dir)  # doctest: +SKIP
        {}
    """
    sources = list(sources)
    check = functools.partial(verify_case, cache_dir=cache_dir)
    problems = {
        source.case_id: error
        for source, _, error in _run_per_case(check, sources, _default_workers(workers), progress, "verify")
        if error is not None
    }
    if problems and raise_on_failure:
        lines = "\n".join(f"  {case_id}: {message}" for case_id, message in sorted(problems.items()))
        raise PrecacheError(problems, f"{cache_dir}: {len(problems)} of {len(sources)} cached cases failed "
                                      f"verification\n{lines}")
    return problems


# --------------------------------------------------------------------------- benchmark

#: What ``benchmark_loads`` times, by row key: (description, what it returns).
LOAD_WAYS = {
    "h5": ("HDF5 slice files (io.load_h5_volume)", "float32 image + labels"),
    "npy": ("cached image (np.load)", "float16 image"),
    "fromfile": ("same bytes, raw (np.fromfile)", "float16 image, no header check"),
    "patient": ("cached patient (load_cached_case, in memory)", "float16 image + uint8 labels"),
    "patch": ("memory-mapped 3D patch (read_patch)", "float16 patch + uint8 labels"),
    "axial": ("memory-mapped axial slice", "float16 slice (4, X, Y)"),
}
#: Targets of the pre-cache (issue "Done means"): (slower way, faster way, comparison, ratio).
LOAD_TARGETS = (("h5", "npy", ">=", 50.0), ("npy", "fromfile", "<=", 2.0), ("patient", "patch", ">=", 10.0))


def median_ms(function: Callable[[], object], repeats: int = 5) -> float:
    """Call ``function`` once to warm up, then ``repeats`` times; return the median wall time in ms."""
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


def timed_precache(sources: Iterable[CacheSource], cache_dir: str | os.PathLike, workers: int | None = None,
                   progress: bool = False) -> tuple[PrecacheReport, float, float]:
    """Run ``precache`` and return (report, wall seconds, CPU seconds of this process and its workers).

    CPU seconds / wall seconds is the number of cores kept busy: close to ``workers`` when converting scales.
    """
    start, start_cpu = time.perf_counter(), cpu_seconds()
    report = precache(sources, cache_dir, workers=workers, progress=progress)
    return report, time.perf_counter() - start, cpu_seconds() - start_cpu


def warm_files(paths: Iterable[str | os.PathLike]) -> None:
    """Read files once so that timed reads find them in the operating system's page cache (warm)."""
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

    Columns: ``read`` (what), ``returns``, ``ms`` (median of ``repeats`` after one warm-up), ``MiB`` returned,
    ``MiB/s`` and ``speed-up`` (HDF5 time / this time). Patches start at random places (seeded); the patch size
    is clipped to the volume. ``table.attrs`` holds ``volume_shape`` and ``patch_size`` (X, Y, Z).

    Example:
        >>> table = benchmark_loads(h5_source.files, cache_dir, "volume_1")  # doctest: +SKIP
    """
    import pandas as pd

    cache_dir, h5_files = Path(cache_dir), [Path(path) for path in h5_files]
    shape = _manifest_entry(cache_dir, case_id)["image"]["shape"][1:]
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


def check_load_targets(table: pd.DataFrame) -> pd.DataFrame:
    """Compare ``benchmark_loads`` figures with the pre-cache targets (``LOAD_TARGETS``); one row per target."""
    import pandas as pd

    rows = []
    for slower, faster, comparison, target in LOAD_TARGETS:
        ratio = float(table.loc[slower, "ms"] / table.loc[faster, "ms"])
        holds = ratio >= target if comparison == ">=" else ratio <= target
        rows.append({"ratio": f"{table.loc[slower, 'read']} / {table.loc[faster, 'read']}",
                     "measured": ratio, "target": f"{comparison} {target:g}", "holds": bool(holds)})
    return pd.DataFrame(rows)


def disk_sizes(h5_files: Sequence[str | os.PathLike], cache_dir: str | os.PathLike, case_id: str) -> pd.DataFrame:
    """Disk size of one patient as HDF5 slices and as cached ``.npy`` files (files, MiB, bytes per voxel)."""
    import pandas as pd

    entry = _manifest_entry(cache_dir, case_id)
    voxels = int(np.prod(entry["image"]["shape"][1:]))
    rows = {f"{len(h5_files)} HDF5 slice files (float64 image + uint8 mask)":
            (len(h5_files), sum(os.path.getsize(path) for path in h5_files))}
    for array in (entry["image"], entry["labels"]):
        if array is not None:
            rows[f"{array['file']} ({array['dtype']})"] = (1, array["bytes"])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["files", "bytes"])
    table["MiB"] = table["bytes"] / 2**20
    table["bytes per voxel"] = table["bytes"] / voxels
    return table.drop(columns="bytes")


def _time_label(ms: float, speed_up: float) -> str:
    """Label of one bar, e.g. ``"28.3 ms  (62x faster)"``."""
    label = f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"
    if speed_up != 1:
        label += f"  ({speed_up:,.{0 if speed_up >= 10 else 1}f}x faster)"
    return label


def plot_load_times(table: pd.DataFrame, title: str = "") -> Figure:
    """Bar charts of a ``benchmark_loads`` table: time per read (log scale, with speed-ups) and MiB returned."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 0.55 * len(table) + 1.6), layout="constrained")
    time_ax, size_ax = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    positions = np.arange(len(table))[::-1]
    colours = ["#D55E00" if key == "h5" else "#0072B2" for key in table.index]
    time_ax.barh(positions, table["ms"], color=colours)
    time_ax.set_xscale("log")
    time_ax.set_xlim(table["ms"].min() / 3, table["ms"].max() * 30)
    for position, (ms, speed_up) in zip(positions, table[["ms", "speed-up"]].itertuples(index=False)):
        time_ax.text(ms * 1.15, position, _time_label(ms, speed_up), va="center", fontsize=9)
    time_ax.set_yticks(positions, table["read"])
    time_ax.set_xlabel("milliseconds per read (log scale, median, warm)")
    size_ax.barh(positions, table["MiB"], color=colours)
    for position, mebibytes in zip(positions, table["MiB"]):
        size_ax.text(mebibytes, position, f" {mebibytes:.3g}", va="center", fontsize=9)
    size_ax.set_xlim(0, table["MiB"].max() * 1.25)
    size_ax.set_xlabel("MiB returned per read")
    fig.suptitle(title or "Reading one patient: HDF5 slices vs the .npy cache")
    return fig
