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

Cropping (``crop=True``; the profile's ``crop_cache``, on for the real-data profiles): each patient is stored cropped
to the box around its brain and labels, zeros only outside it: 28.7 instead of 80.4 MB per real BraTS patient (369
patients: 10.6 instead of 29.6 GB). The manifest records the box (``store`` module docstring).

Crash safety: every file is written under a temporary name, flushed to disk, then renamed, so a loader
never sees a half-written file under its final name. The manifest is rewritten (atomically) after every
finished patient; a patient is in the cache only once its manifest entry exists, so an interrupted run
resumes with the patients that were not finished. Two ``precache`` runs on one folder take turns (a lock file,
``.precache.lock``, on Unix): the second says it waits, waits (up to ``BRAINTOOLS_LOCK_TIMEOUT`` seconds), then
skips what the first converted. A killed run never keeps the lock, and its pool workers die with it
(``braintools._private.processes``). A complete cache is only read (no lock, no write): it can live on read-only
media."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from braintools._private.atomic import remove_temporaries
from braintools._private.processes import file_lock, worker_pool
from braintools.cache.sources import CacheSource, source_fingerprint
from braintools.cache.store import _is_up_to_date, cache_file_names, convert_case, read_manifest, write_manifest
from braintools.errors import DataError, DiskFullError

LOCK_NAME = ".precache.lock"  # held while precache writes the folder
_NOT_WRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only folder or file system


def _checked_workers(workers: int) -> int:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return int(workers)


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


@dataclass
class PrecacheReport:
    """What ``precache`` did: patients converted now, already cached (skipped), and failed (id -> error)."""

    cache_dir: Path
    workers: int
    crop: bool = False
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
    workers: int = 1,
    progress: bool = True,
    raise_on_failure: bool = True,
    lock_timeout: float | None = None,
    crop: bool = False,
) -> PrecacheReport:
    """Convert patients to memory-mappable ``.npy`` files, resuming an interrupted run (notebook 03).

    Patients whose manifest entry matches their source files are skipped; when all are, nothing is written
    (the folder may be read-only). A patient that fails (missing, truncated or corrupt file) is reported at the
    end; the others are cached anyway. A full disk stops the run with ``DiskFullError`` naming the file.

    Args:
        sources: patients, from ``h5_sources`` or ``nifti_sources``.
        cache_dir: output folder (created if missing).
        workers: processes converting in parallel (1 = no pool; the course passes its profile's ``cache_workers``).
        progress: show a tqdm progress bar.
        raise_on_failure: raise ``PrecacheError`` (listing every failed patient) at the end if any failed.
        lock_timeout: seconds to wait for another run writing the same folder (default: ``BRAINTOOLS_LOCK_TIMEOUT``
            or 30 minutes), then raise ``DataError``.
        crop: store each patient cropped to the box of its brain and labels (``store.content_box``: about a third
            of the bytes on real scans, nothing lost; the course passes its profile's ``crop_cache``). Patients cached
            with the other setting are converted again.

    Example:
        >>> report = precache(h5_sources(data / "content/data"), cache_dir)  # doctest: +SKIP
    """
    cache_dir, sources = Path(cache_dir), list(sources)
    report = PrecacheReport(cache_dir, _checked_workers(workers), bool(crop))
    if _plan(sources, _editable(read_manifest(cache_dir)), cache_dir, report):  # something to convert
        report = PrecacheReport(cache_dir, report.workers, report.crop)  # planned again under the lock (busy run?)
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
    convert = functools.partial(convert_case, cache_dir=cache_dir, crop=report.crop)
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
        if _is_up_to_date(manifest["cases"].get(source.case_id), fingerprint, cache_dir, report.crop):
            report.skipped.append(source.case_id)
        else:
            manifest["cases"].pop(source.case_id, None)
            todo.append(source)
    return todo
