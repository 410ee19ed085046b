"""Where cached patients come from: HDF5 slice volumes or NIfTI cases, and what identifies their files."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from braintools.data import io
from braintools.errors import DataError


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
    """List the patients of a Kaggle HDF5 slice folder (``volume_<v>_slice_<s>.h5``), one per volume (notebook 03).

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
