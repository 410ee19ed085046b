"""Check cached patients against their sources: checksums, shapes, labels, float16 rounding, channel order."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from braintools.cache.build import PrecacheError, _checked_workers, _run_per_case
from braintools.cache.sources import CacheSource, load_source, source_fingerprint
from braintools.cache.store import (
    FLOAT16_ATOL,
    FLOAT16_RTOL,
    cache_file_names,
    file_sha256,
    load_cached_case,
    manifest_entry,
    manifest_path,
)
from braintools.data import io
from braintools.data.labels import to_contiguous
from braintools.data.preprocess import zscore_brain
from braintools.errors import DataError


def verify_case(source: CacheSource, cache_dir: str | os.PathLike) -> None:
    """Check one cached patient against its source; raise ``DataError`` describing the first problem.

    Checks: manifest entry, unchanged source, file checksums, shapes and dtypes, labels exactly equal,
    image within float16 rounding of the z-scored source (a cropped patient is put back in its grid first, so
    a box that cut off brain or labels fails); for HDF5 sources, the channel order of the manifest
    against the source's and against the intensity signatures of the data (``signatures.check_channel_order``:
    only a contradiction fails, "cannot tell" passes).
    """
    cache_dir = Path(cache_dir)
    entry = manifest_entry(cache_dir, source.case_id)
    if entry.get("source") != source_fingerprint(source):
        raise DataError(f"{source.files[0]}: source of {source.case_id} changed since it was cached")
    recorded = tuple(entry.get("channel_order", source.channel_order))
    if source.kind == "h5" and recorded != tuple(source.channel_order):
        raise DataError(f"{manifest_path(cache_dir)}: {source.case_id} is recorded with HDF5 channel order "
                        f"{recorded}, its source is read as {tuple(source.channel_order)}")
    for array_entry in (entry["image"], entry["labels"]):
        if array_entry is not None and file_sha256(cache_dir / array_entry["file"]) != array_entry["sha256"]:
            raise DataError(f"{cache_dir / array_entry['file']}: checksum differs from the manifest (corrupt)")
    image, labels = load_cached_case(cache_dir, source.case_id, mmap=True, full_grid=True)
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
    """Raise ``DataError`` when the intensity signatures of an HDF5 volume contradict its channel order.

    Only a contradiction fails (the signatures clearly refute the order and indicate exactly one other); a volume
    on which they cannot tell (no enhancing tumour, too little brain) passes: a correct order is never reported.
    """
    from braintools.data import signatures

    stored = case.image[[case.modalities.index(modality) for modality in channel_order]]  # channels as in the files
    try:
        check = signatures.check_channel_order(stored, case.seg, channel_order, warn=False)
    except ValueError:  # nothing measurable (too little normal brain, not raw intensities): nothing to say
        return
    if check.contradicted:
        guess = check.guess
        failing = sorted(check.refuted_by.items(), key=lambda item: item[1])
        fails = ", ".join(f"'{name}' at {value:+.1f}" for name, value in failing[:2])
        if len(failing) > 2:
            fails += f" and {len(failing) - 2} more"
        raise DataError(f"{first_file}: {case.case_id} is cached with HDF5 channel order {channel_order}, but its "
                        f"intensity signatures say {check.indicated} ({guess.passed}/{guess.measured} hold), and "
                        f"{channel_order} fails {fails} (an effect of -{signatures.CLEAR_EFFECT} refutes); precache "
                        f"it again with that order (command line: --channel-order infer)")


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
    workers: int = 1,
    progress: bool = True,
    raise_on_failure: bool = True,
) -> dict[str, str]:
    """Check every cached patient against its source; return ``{case_id: problem}`` (empty: all good) (notebook 03).

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
        for source, _, error in _run_per_case(check, sources, _checked_workers(workers), progress, "verify")
        if error is not None
    }
    if problems and raise_on_failure:
        lines = "\n".join(f"  {case_id}: {message}" for case_id, message in sorted(problems.items()))
        raise PrecacheError(problems, f"{cache_dir}: {len(problems)} of {len(sources)} cached cases failed "
                                      f"verification\n{lines}")
    return problems
