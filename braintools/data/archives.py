"""Extract the archives of a download once: atomic, resumable, with a progress bar (notebook 01).

Kaggle's BraTS 2021 Task 1 dataset ships its cases as tar files (``BraTS2021_Training_Data.tar``, reported). Each
archive found in a download (``*.tar``, ``*.tar.gz``, ``*.tgz``) is extracted into ``<destination>/<archive name>/``:

- atomic: members go to a hidden ``.<name>.partial`` folder (``io.find_cases`` never reads hidden folders), which is
  renamed into place only when the archive is complete, with a marker ``.extracted.json`` inside; a folder with
  the final name is always a whole archive;
- resumable: a run that was stopped leaves the partial folder; the next run keeps every file already extracted at its
  full size and extracts the rest (a file cut short is written again);
- once: an archive whose folder and marker exist (same archive size, same selection) is not read again;
- selective: ``keep`` extracts only some members (the ``kaggle-2021`` profile extracts only the cases it uses);
- safe: members that would land outside the folder (absolute paths, ``..``, links out) are refused (tarfile's
  ``data`` filter where Python has it).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

from braintools.errors import DataError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
MARKER = ".extracted.json"


def find_archives(root: str | os.PathLike) -> list[Path]:
    """The tar archives (``.tar``, ``.tar.gz``, ``.tgz``) under ``root``, any depth, sorted by path."""
    root = Path(root)
    found = [path for path in root.rglob("*") if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)
             and not path.name.startswith(".")]
    return sorted(found)


def archive_folder_name(archive: str | os.PathLike) -> str:
    """The folder an archive is extracted into: its name without the archive suffix.

    Example:
        >>> archive_folder_name("downloads/BraTS2021_Training_Data.tar")
        'BraTS2021_Training_Data'
    """
    name = Path(archive).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _safe_target(folder: Path, member: tarfile.TarInfo) -> Path:
    """Where a member goes inside ``folder``; ``DataError`` for a member that would land outside it."""
    target = (folder / member.name).resolve()
    if member.name.startswith(("/", "\\")) or not target.is_relative_to(folder.resolve()):
        raise DataError(f"archive member {member.name!r} would be written outside {folder}; refusing the archive")
    if member.issym() or member.islnk():
        link = (target.parent / member.linkname).resolve() if member.issym() else (folder / member.linkname).resolve()
        if not link.is_relative_to(folder.resolve()):
            raise DataError(f"archive member {member.name!r} links outside {folder}; refusing the archive")
    return target


def list_members(archive: str | os.PathLike) -> list[str]:
    """The names of the files in a tar archive (an uncompressed tar is listed from its headers alone, in seconds)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return [member.name for member in tar if member.isfile()]
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{archive}: cannot read the archive ({type(error).__name__}: {error}); is the download "
                        "complete?") from error


def extract_archive(archive: str | os.PathLike, destination: str | os.PathLike, progress: bool = True,
                    keep: Callable[[str], bool] | None = None, selection: str = "all") -> Path:
    """Extract one tar archive into ``destination/<archive name>/`` once, atomically and resumably.

    Returns the folder. A complete earlier extraction (the folder with its marker, for an archive of the same size
    and the same ``selection``) is returned at once; a partial one is resumed. ``keep``: extract only the files whose
    member name it accepts (e.g. the cases a profile uses), described by ``selection`` in the marker; a later call
    with another selection adds what is missing (the folder goes back to its partial name meanwhile). A corrupt or
    truncated archive is a ``DataError`` naming it (the partial folder stays, so that fixing the download and running
    again resumes).
    """
    archive, destination = Path(archive), Path(destination)
    name = archive_folder_name(archive)
    final, partial = destination / name, destination / f".{name}.partial"
    size = archive.stat().st_size
    marker = final / MARKER
    done = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
    if done.get("archive_bytes") == size and done.get("selection", "all") == selection:
        return final
    if final.exists():
        if done.get("archive_bytes") == size and not partial.exists():  # another selection: add what is missing
            marker.unlink()
            os.replace(final, partial)
        else:  # a folder without a complete marker, or of another archive version: extract it again
            shutil.rmtree(final)
    partial.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    members = kept = skipped = 0
    try:
        bar = tqdm(total=size, unit="B", unit_scale=True, disable=not progress, desc=f"extract {archive.name}")
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar, bar:
            for member in tar:
                members += 1
                target = _safe_target(partial, member)
                if member.isfile() and keep is not None and not keep(member.name):
                    skipped += 1
                elif member.isfile() and target.is_file() and target.stat().st_size == member.size:
                    kept += 1  # extracted by an earlier, interrupted run
                elif member.isdir() or member.isfile() or member.issym() or member.islnk():
                    if hasattr(tarfile, "data_filter"):
                        tar.extract(member, partial, filter="data")
                    else:  # Python without extraction filters: _safe_target checked the member
                        tar.extract(member, partial)
                bar.update(raw.tell() - bar.n)  # bytes of the archive read so far (compressed or not)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{archive}: cannot extract ({type(error).__name__}: {error}); is the download complete? "
                        f"What was extracted stays in {partial}, and the next run resumes") from error
    (partial / MARKER).write_text(json.dumps({"archive": archive.name, "archive_bytes": size, "members": members,
                                              "selection": selection, "not_selected": skipped,
                                              "kept_from_an_earlier_run": kept}) + "\n", encoding="utf-8")
    os.replace(partial, final)
    return final


def extract_archives(archives: list[Path], destination: str | os.PathLike, progress: bool = True,
                     keep: Callable[[str], bool] | None = None, selection: str = "all") -> list[Path]:
    """Extract every archive (``extract_archive``, same ``keep``) into its own folder under ``destination``.

    Example:
        >>> extract_archives(find_archives(download), paths.extracted_dir("brats-2021-task1"))  # doctest: +SKIP
    """
    names = [archive_folder_name(archive) for archive in archives]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise DataError(f"two archives would be extracted into the same folder {clashes[0]}: "
                        f"{', '.join(str(a) for a in archives if archive_folder_name(a) == clashes[0])}")
    return [extract_archive(archive, destination, progress, keep, selection) for archive in archives]
