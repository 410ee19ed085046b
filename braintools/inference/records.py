"""How each prediction in a folder was made: one record per case, checked against the file it describes.

``python -m braintools predict`` writes ``<case_id>.nii.gz`` files and, in the same folder,
``prediction_settings.json``: one record per case (the checkpoint, its epoch and checksum, the model, the inference
settings, and the checksum of the prediction file). A prediction and its record are written together under a lock on
the folder, so two ``predict`` runs into one folder, or predicting some cases again with other settings, leave every
file with the record of the run that wrote it. ``evaluate`` reads the records first (a damaged file is one clear
error, before any scoring) and reports each case with the settings that made it. A file whose checksum no longer
matches its record (written by something else, or by a run killed between the two writes) is reported as made in an
unknown way, never with another run's settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from braintools._private.atomic import TEMPORARY_PREFIX, atomic_path
from braintools._private.processes import file_lock
from braintools.cache.store import file_sha256
from braintools.errors import DataError

RECORDS_FILE = "prediction_settings.json"  # next to the predictions: how each one was made
LOCK_FILE = ".prediction_settings.lock"  # held while a prediction and its record are written
RECORDS_FORMAT = 2  # 1 (before per-case records): one description of the folder's last predict run
_FIELDS = ("file", "sha256", "checkpoint", "settings")  # what every record holds (and more)
UNKNOWN = "unknown"


def records_path(folder: str | os.PathLike) -> Path:
    """The records file of a prediction folder."""
    return Path(folder) / RECORDS_FILE


def describe_checkpoint(path: str | os.PathLike, epoch: int) -> dict[str, Any]:
    """The record fields naming a checkpoint: its path, epoch and SHA-256 (the weights, whatever the file is called
    later)."""
    return {"checkpoint": str(path), "epoch": int(epoch), "checkpoint_sha256": file_sha256(path)}


@contextlib.contextmanager
def recording(folder: str | os.PathLike, case_id: str, made_by: dict[str, Any]) -> Iterator[Path]:
    """Yield a temporary path to write the prediction of ``case_id`` to; then record how it was made and move it to
    ``<folder>/<case_id>.nii.gz``.

    The folder is locked from before the prediction is written until it is in place (``file_lock``, which a killed
    run never keeps), so concurrent runs cannot pair one run's file with another's record. The record is written
    before the file is moved into place: a failure (a full disk) leaves the earlier prediction and its record as they
    were, and a run killed between the two leaves a file whose checksum does not match the record (reported as made
    in an unknown way). ``made_by``: plain values, at least ``checkpoint`` and ``settings`` (``describe_checkpoint``
    and ``InferenceSettings.describe``).

    Example:
        >>> with recording(out_dir, case.case_id, made_by) as path:  # doctest: +SKIP
        ...     io.save_prediction_nifti(classes, case.affine, path, contiguous=True)
    """
    folder = Path(folder)
    target = folder / f"{case_id}.nii.gz"
    temporary = folder / f"{TEMPORARY_PREFIX}{os.getpid()}-{target.name}"  # hidden: evaluate never reads it
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / LOCK_FILE, what="predict run"):
        try:
            yield temporary
            records = read_records(folder)
            records[case_id] = {**made_by, "file": target.name, "sha256": file_sha256(temporary),
                                "written": time.strftime("%Y-%m-%d %H:%M:%S")}
            _write_records(folder, records)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


def read_records(folder: str | os.PathLike, missing_ok: bool = True) -> dict[str, dict[str, Any]]:
    """The records of a prediction folder by case id (``{}`` when it has none); a damaged file is a ``DataError``
    naming it and the fix.

    A file of the older format (one description of the folder's last run) gives that description to every case,
    marked as such: it cannot tell which run wrote which file.
    """
    path = records_path(folder)
    if not path.is_file():
        if missing_ok:
            return {}
        raise DataError(f"{path}: no prediction records")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return _checked(stored)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise DataError(f"{path}: prediction records are damaged ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:160]}); delete this file to score the predictions without "
                        "their settings (predict then records the cases it writes again), or predict into another "
                        "folder (--out)") from None


def _checked(stored: Any) -> dict[str, dict[str, Any]]:
    """The records of a parsed file, or an error saying what is missing."""
    if not isinstance(stored, dict):
        raise TypeError(f"expected a JSON object, found {type(stored).__name__}")
    if "cases" not in stored:  # format 1: {"checkpoint": ..., "model": ..., "settings": ...}
        for key in ("checkpoint", "settings"):
            if not isinstance(stored.get(key), str):
                raise KeyError(f"no '{key}'")
        return {"*": {**stored, "older_format": True}}
    cases = stored["cases"]
    if not isinstance(cases, dict):
        raise TypeError("'cases' is not an object")
    for case_id, record in cases.items():
        if not isinstance(record, dict):
            raise TypeError(f"the record of {case_id} is not an object")
        missing = [key for key in _FIELDS if not isinstance(record.get(key), str)]
        if missing:
            raise KeyError(f"the record of {case_id} has no {', '.join(repr(key) for key in missing)}")
    return dict(cases)


def _write_records(folder: Path, records: dict[str, dict[str, Any]]) -> None:
    """Write the records atomically (a reader sees the old file or the new one, never half of one)."""
    records = {case_id: record for case_id, record in records.items() if case_id != "*"}  # drop an older-format entry
    text = json.dumps({"format": RECORDS_FORMAT, "cases": dict(sorted(records.items()))}, indent=2) + "\n"
    with atomic_path(records_path(folder)) as temporary:
        temporary.write_text(text, encoding="utf-8")


def how_made(records: dict[str, dict[str, Any]], case_id: str, path: str | os.PathLike) -> dict[str, str]:
    """``{"checkpoint": ..., "settings": ...}`` of one prediction file, from its record when the file is the one the
    record describes (same SHA-256); otherwise ``unknown`` with the reason."""
    record = records.get(case_id)
    if record is None and "*" in records:
        older = records["*"]
        note = " (older record of the folder's last predict run: it may not be the run that wrote this file)"
        return {"checkpoint": older["checkpoint"] + note, "settings": older["settings"] + note}
    if record is None:
        reason = "no record" if records else f"no {RECORDS_FILE}"
        return {"checkpoint": f"{UNKNOWN} ({reason})", "settings": f"{UNKNOWN} ({reason})"}
    path = Path(path)
    if record["file"] != path.name or record["sha256"] != file_sha256(path):
        reason = f"{path.name} changed after its record was written"
        return {"checkpoint": f"{UNKNOWN} ({reason})", "settings": f"{UNKNOWN} ({reason})"}
    checkpoint = record["checkpoint"]
    if "epoch" in record:
        digest = record.get("checkpoint_sha256", "")
        checkpoint += f" (epoch {record['epoch']}" + (f", sha256 {digest[:12]})" if digest else ")")
    return {"checkpoint": checkpoint, "settings": record["settings"]}
