"""The preamble of every training and evaluation step: dataset -> patients -> shared split -> npy cache.

Notebooks 04-07 and the command line all start the same way: get the profile's data (real or synthetic), list the
training cases that have a segmentation, read (or make) the one patient split they share, and make sure the npy
cache of notebook 03 holds those patients. ``prepare_data`` does exactly that and nothing more.

Notebook 04 trains on the other copy of the same patients, the Kaggle HDF5 slices (cached by notebook 03):
``prepare_h5_slices`` pairs each HDF5 volume with its NIfTI case, so the one patient split decides which slices
train and which patients test.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from braintools import paths
from braintools.cache import build, store
from braintools.cache.sources import CacheSource, h5_sources, nifti_sources
from braintools.data import download, io, releases, signatures, splits
from braintools.datasets.volumes import VolumeSource
from braintools.errors import DataError
from braintools.profiles import Profile


@dataclass
class CourseData:
    """The profile's data, ready to train on (``prepare_data``).

    Attributes:
        profile: the profile it was prepared for.
        dataset: where the dataset lives (``download.DataPaths``); ``dataset.source`` says real (kaggle) or synthetic.
        cases: the training cases with a segmentation, by case id (at most ``profile.max_cases``, spread evenly
            over the sorted case ids, so a subset of BraTS 2020 mixes high- and low-grade patients).
        split: the patient split every notebook shares (``split.train``, ``split.val``, ``split.test``).
        cache_dir: the npy cache of these cases (notebook 03's ``paths.cache_dir(profile.name)`` unless given).
        cache_report: what filling the cache did (``None`` when ``prepare_data`` was asked not to fill it).
    """

    profile: Profile
    dataset: download.DataPaths
    cases: dict[str, io.CaseFiles]
    split: splits.PatientSplit
    cache_dir: Path
    cache_report: build.PrecacheReport | None = None

    @property
    def synthetic(self) -> bool:
        """True when the data is the course's synthetic dataset, not real scans."""
        return self.dataset.synthetic

    def case_files(self, case_ids) -> list[io.CaseFiles]:
        """The ``io.CaseFiles`` of some patients, e.g. ``course.case_files(course.split.test)``."""
        return [self.cases[case_id] for case_id in case_ids]

    def nifti_sources(self) -> list[CacheSource]:
        """The cache sources of these cases (what ``prepare_data`` caches, and notebook 03 times)."""
        return [source for source in nifti_sources(self.dataset.nifti_train, require_seg=True)
                if source.case_id in self.cases]

    def describe(self) -> str:
        """One line: where the data comes from and how the patients are split."""
        kind = "SYNTHETIC data (the course's generator)" if self.synthetic else "REAL BraTS data"
        return (f"{kind}, profile {self.profile.name}: {len(self.cases)} patients, split "
                f"{len(self.split.train)} train / {len(self.split.val)} validation / {len(self.split.test)} test")


REAL_CASES_ENV = "BRAINTOOLS_REAL_CASES"  # a folder of real BraTS cases to test models trained on synthetic data


def real_reference_cases(limit: int | None = None, one_form: bool = False) -> tuple[list[io.CaseFiles], str]:
    """Real BraTS cases with segmentations to set beside synthetic ones, and where they come from (notebook 02).

    The cases under ``BRAINTOOLS_REAL_CASES`` if set (any BraTS release: 2018-2020, 2021, 2023), else the Kaggle NIfTI
    dataset when it is mounted (``/kaggle/input``), else none (an empty list). ``limit`` keeps the first cases only.
    Only whole cases are used (four modalities and a segmentation): anything else the folder holds (a segmentation
    alone, an atlas, notes) is left out and named in the description. ``one_form``: a patient found in two releases'
    forms (BraTS 2021 and 2023 GLI) is kept once (``one_form_per_patient``), so that no patient counts twice in a score.
    """
    configured = os.environ.get(REAL_CASES_ENV)
    if configured:
        root = Path(configured).expanduser()
        if not root.is_dir():
            raise DataError(f"{root}: folder not found (set by {REAL_CASES_ENV})")
    else:
        mounted = download.kaggle_input_dir(download.NIFTI_HANDLE)
        if mounted is None:
            return [], "none found (set BRAINTOOLS_REAL_CASES to a folder of BraTS cases, or mount the Kaggle data)"
        root = download.locate_nifti_dirs(mounted)[0]
    cases, left_out = _complete_cases(io.find_cases(root, require_seg=True, warn_missing=False))
    cases, twice = one_form_per_patient(cases) if one_form else (cases, [])
    cases = cases[:limit]
    where = f"{len(cases)} real case(s) under {root} ({releases.describe_releases(cases)})"
    if twice:
        where += f"; left out, the same patient as another case in another release's form: {', '.join(twice)}"
    return cases, where + (f"; left out, not a whole case: {left_out}" if left_out else "")


def _complete_cases(found: Sequence[io.CaseFiles]) -> tuple[list[io.CaseFiles], str]:
    """The cases with every modality, and the others named with what they miss (e.g. a folder holding a seg alone)."""
    complete = [files for files in found if not files.missing]
    left_out = [f"{files.case_id} in {files.folder} (no {', '.join(files.missing)})"
                for files in found if files.missing]
    return complete, "; ".join(left_out)


def release_examples(profile: Profile) -> tuple[dict[str, io.CaseFiles], str]:
    """One case of each BraTS release to set side by side, and where they come from (notebook 01).

    Real cases when the real cases (``real_reference_cases``: ``BRAINTOOLS_REAL_CASES``) hold all three releases: a
    BraTS 2018-2020 case, and one patient in both its BraTS 2021 and 2023 forms when there is one. Otherwise the
    profile's first synthetic case written in the three layouts (once, under ``paths.scratch_dir``), so that the
    three are the same patient. Keyed by release name, oldest first.
    """
    real, where = real_reference_cases()
    by_release: dict[str, list[io.CaseFiles]] = {}
    for files in real:
        by_release.setdefault(files.release.key, []).append(files)
    if all(key in by_release for key in releases.RELEASES):
        forms_2023 = {files.case_id: files for files in by_release["2023"]}
        pairs = [(files, forms_2023[releases.counterpart_id(files.case_id, "2023")]) for files in by_release["2021"]
                 if releases.counterpart_id(files.case_id, "2023") in forms_2023]
        chosen = [by_release["2020"][0], *(pairs[0] if pairs else (by_release["2021"][0], by_release["2023"][0]))]
        return {files.release.name: files for files in chosen}, f"real cases: {where}"
    from braintools.synthetic.dataset import commit_nifti_case
    from braintools.synthetic.generator import GENERATOR_VERSION, make_case
    from braintools.synthetic.layout import training_case_id

    folder = paths.scratch_dir(profile.name, f"releases_seed{profile.seed}_v{GENERATOR_VERSION}")
    case, examples = None, {}
    for release in releases.RELEASES.values():
        case_id = training_case_id(1, release)
        if not (folder / release.key / case_id).is_dir():
            case = case or make_case(profile.seed, 1, profile.grid_shape, case_id=case_id)
            commit_nifti_case(case, folder / release.key, case_id, release.key)
        examples[release.name] = io.find_cases(folder / release.key)[0]
    return examples, (f"synthetic case 1 of profile {profile.name} written in the three layouts, under {folder} (no "
                      f"real cases of every release at hand; real: {where})")


def compare_release_examples(examples: dict[str, io.CaseFiles]) -> pd.DataFrame:
    """The cases of ``release_examples`` side by side: file names, labels on disk, labels loaded (notebook 01).

    The column ``identical after loading to`` names the other cases whose loaded image and segmentation are equal
    voxel for voxel: the same patient in two releases' forms loads to the same arrays.
    """
    import nibabel as nib
    import numpy as np

    loaded = {name: io.load_case(files) for name, files in examples.items()}
    rows = {}
    for name, files in examples.items():
        on_disk = nib.load(files.seg)
        raw = np.unique(np.asarray(on_disk.dataobj))
        same = [other for other, case in loaded.items() if other != name and case.image.shape ==
                loaded[name].image.shape and np.array_equal(case.image, loaded[name].image)
                and np.array_equal(case.seg, loaded[name].seg)]
        rows[name] = {
            "case": files.case_id,
            "files": ", ".join(path.name.replace(files.case_id, "<case>") for path in files.files()),
            "seg on disk": f"{on_disk.get_data_dtype()}: {', '.join(f'{value:g}' for value in raw)}",
            "ET on disk": files.release.labels.et,
            "seg loaded": f"{loaded[name].seg.dtype}: {', '.join(str(v) for v in np.unique(loaded[name].seg))}",
            "identical after loading to": ", ".join(same) or "-",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "release"
    return table


def real_test_cases(data: CourseData, limit: int | None = None) -> tuple[list[io.CaseFiles], str]:
    """Real BraTS cases with segmentations to test the course's models on, and where they come from (notebook 07).

    Real data (the ``kaggle`` profile): the test patients of the split. Synthetic data: ``real_reference_cases``
    (``BRAINTOOLS_REAL_CASES``, or the mounted Kaggle data). ``limit`` keeps the first cases only (inference on
    real volumes takes time on a CPU).
    """
    if not data.synthetic:
        where = f"the test patients of the real data ({data.dataset.nifti_train})"
        return data.case_files(data.split.test)[:limit], where
    return real_reference_cases(limit, one_form=True)


def one_form_per_patient(cases: Sequence[io.CaseFiles]) -> tuple[list[io.CaseFiles], list[str]]:
    """The cases without a second form of one patient (BraTS 2021 and 2023 GLI name the same patients), and the ids
    left out, so that no patient counts twice in a mean."""
    kept, seen, twice = [], set(), []
    for files in cases:
        forms = {files.case_id} | {releases.counterpart_id(files.case_id, key) for key in ("2021", "2023")}
        if forms & seen:
            twice.append(files.case_id)
            continue
        seen |= forms - {None}
        kept.append(files)
    return kept, twice


def prepare_data(profile: Profile, cache_cases: bool = True, progress: bool = False,
                 cache_dir: str | Path | None = None) -> CourseData:
    """Get the profile's dataset, list its labelled cases, load the shared split and fill the npy cache (notebook 03).

    Args:
        profile: the profile, resolved once by the caller (a notebook's parameters, the command line's
            ``--profile``); its ``crop_cache`` and ``cache_workers`` decide how the cache is written.
        cache_cases: convert the cases to the npy cache (cases already cached are skipped, so this is cheap
            after notebook 03).
        progress: progress bars while caching.
        cache_dir: another folder for the npy cache (default: ``paths.cache_dir(profile.name)``).
    """
    dataset = download.get_dataset(profile)
    found, left_out = _complete_cases(io.find_cases(dataset.nifti_train, require_seg=True, warn_missing=False))
    if left_out:  # a patient that cannot be trained on never enters the split
        warnings.warn(f"{dataset.nifti_train}: left out, not a whole case: {left_out}", stacklevel=2)
    if not found:
        raise DataError(f"{dataset.nifti_train}: no case with four modalities and a segmentation")
    cases = {files.case_id: files for files in splits.spread_evenly(found, profile.max_cases)}
    split = splits.course_split(list(cases), paths.split_path(profile.name), nifti_train=dataset.nifti_train,
                                seed=profile.seed, fractions=profile.split_fractions)
    folder = Path(cache_dir) if cache_dir else paths.cache_dir(profile.name)
    prepared = CourseData(profile, dataset, cases, split, folder)
    if cache_cases:
        prepared.cache_report = build.precache(prepared.nifti_sources(), folder, workers=profile.cache_workers,
                                               progress=progress, crop=profile.crop_cache)
    return prepared


@dataclass
class H5Slices:
    """The HDF5 slice volumes of some parts of the split, cached and paired with their NIfTI cases.

    Attributes:
        source: the patients of those parts, named by their NIfTI case ids, so a split part selects them directly
            (``source.subset(h5.ids("train"))``): their HDF5 volumes turned to the NIfTI orientation, or the NIfTI
            npy cache for the patients without a usable HDF5 volume (``nifti_fallback``).
        table: one row per HDF5 volume: its number, its NIfTI case, part, orientation and whether it is used.
        vote: the inferred channel order (``signatures.infer_h5_channel_order``), the order the cache was read with;
            None for a release without HDF5 slices (every patient then comes from the NIfTI npy cache).
        cache_dir: the npy cache of the HDF5 volumes (notebook 03's ``paths.h5_cache_dir``).
        split: the patient split, for the order of ``ids``.
        nifti_fallback: patients of those parts read from the NIfTI npy cache (no usable HDF5 volume).
    """

    source: VolumeSource
    table: pd.DataFrame
    vote: signatures.ChannelOrderVote | None  # None: the dataset has no HDF5 slices (BraTS 2021, 2023)
    cache_dir: Path
    split: splits.PatientSplit
    nifti_fallback: tuple[str, ...] = ()

    def ids(self, part: str) -> list[str]:
        """Case ids of one split part (``"train"``, ``"val"``, ``"test"``) in this source, in the split's order."""
        present = set(self.source.case_ids)
        return [case_id for case_id in getattr(self.split, part) if case_id in present]

    def describe(self) -> str:
        """One line: how many volumes of each part are used, why others are not, and any NIfTI fallback."""
        if self.vote is None:
            return (f"no HDF5 slice dataset in this release: the {len(self.nifti_fallback)} patients are read as "
                    "slices of the NIfTI npy cache (notebook 03)")
        used = self.table[self.table["used"]]
        counts = ", ".join(f"{count} {part}" for part, count in used["part"].value_counts(sort=False).items())
        skipped = self.table.loc[~self.table["used"], "note"].value_counts()
        why = "; ".join(f"{count} {note}" for note, count in skipped.items())
        line = (f"{len(self.table)} HDF5 volumes, channel order {self.vote.order}: using {counts or 'none'}"
                + (f" (not used: {why})" if why else ""))
        if self.nifti_fallback:
            line += (f"; {len(self.nifti_fallback)} patients without a usable HDF5 volume are read from the NIfTI "
                     f"cache instead")
        return line


def _cap(rows: list[dict], limit: int | None, cached: set[str]) -> None:
    """Mark the usable volumes beyond ``limit`` as unused: the cached ones are kept first, then spread evenly."""
    usable = [row for row in rows if row["used"]]
    if limit is None or len(usable) <= limit:
        return
    kept = [row for row in usable if row["volume"] in cached][:limit]
    rest = [row for row in usable if row["volume"] not in cached]
    kept += splits.spread_evenly(rest, limit - len(kept))
    kept_ids = {id(row) for row in kept}
    for row in usable:
        if id(row) not in kept_ids:
            row["used"], row["note"] = False, f"over the profile's HDF5 budget of {limit} volumes"


def prepare_h5_slices(course: CourseData, parts: tuple[str, ...] = ("train", "val"), progress: bool = False,
                      cache_dir: str | Path | None = None, nifti_fallback: bool = True,
                      max_volumes: int | None = -1) -> H5Slices:
    """Cache the HDF5 volumes of some split ``parts`` (inferred channel order) and pair them with their cases.
    Introduced in notebook 04.

    Volume ``v`` is the NIfTI case ``BraTS20_Training_<v>`` (``download.h5_volume_case``) only when their labels are
    equal up to an in-plane flip or transpose (``download.match_in_plane``, against the NIfTI npy cache); that
    mapping turns the volume to the NIfTI orientation. Volumes of other parts, without a case or whose labels
    differ are not used, so no test patient's slices can reach training. A dataset without HDF5 slices (BraTS 2021
    and 2023 ship NIfTI only) gives every patient of ``parts`` from the NIfTI npy cache (``vote`` None).

    Args:
        course: from ``prepare_data`` (with its npy cache).
        parts: split parts whose volumes are cached and used.
        progress: progress bars while caching.
        cache_dir: the HDF5 npy cache (default: ``paths.h5_cache_dir(profile.name)``, notebook 03's).
        nifti_fallback: read the patients of ``parts`` that have no usable HDF5 volume (a partial download, or over
            ``max_volumes``) from the NIfTI npy cache; ``False``: leave them out.
        max_volumes: cache at most this many HDF5 volumes (those already cached first, then spread evenly over the
            rest; ``None``: all); default: the profile's ``h5_volumes_2d``. Kaggle's ~20 GB working folder cannot hold
            both caches of all 369 patients: the ``kaggle`` profile reads most training patients from the NIfTI cache.
    """
    if course.cache_report is None:
        raise ValueError("prepare_h5_slices pairs volumes against the NIfTI npy cache: "
                         "call prepare_data(profile, cache_cases=True) first")
    if course.dataset.h5_dir is None:  # BraTS 2021, 2023: no HDF5 copy, every patient from the NIfTI cache
        wanted = [case_id for part in parts for case_id in getattr(course.split, part)]
        table = pd.DataFrame(columns=["volume", "case_id", "part", "in_plane", "used", "note"])
        return H5Slices(VolumeSource.from_cache(course.cache_dir).subset(wanted), table, None, course.cache_dir,
                        course.split, tuple(wanted))
    volumes = io.find_h5_volumes(course.dataset.h5_dir)
    vote = signatures.infer_h5_channel_order(volumes)
    if not vote.conclusive:
        raise DataError(f"{course.dataset.h5_dir}: the HDF5 channel order cannot be inferred ({vote.describe()}); "
                        "look at the volumes (notebook 01) before training on them")
    rows, case_list = [], list(course.cases.values())
    for volume in volumes:
        case = download.h5_volume_case(volume, case_list)
        part = course.split.part_of(case.case_id) if case is not None else None
        note = "no NIfTI case" if case is None else ("" if part in parts else f"{part} patient")
        rows.append({"volume": f"volume_{volume}", "case_id": case.case_id if case else None, "part": part,
                     "in_plane": None, "used": not note, "note": note or None})
    folder = Path(cache_dir) if cache_dir else paths.h5_cache_dir(course.profile.name)
    limit = course.profile.h5_volumes_2d if max_volumes == -1 else max_volumes
    _cap(rows, limit, set(store.cached_case_ids(folder)))
    wanted = {row["volume"] for row in rows if row["used"]}
    sources = [source for source in h5_sources(course.dataset.h5_dir, vote.order) if source.case_id in wanted]
    build.precache(sources, folder, workers=course.profile.cache_workers, progress=progress,
                   crop=course.profile.crop_cache)
    for row in rows:
        if row["used"]:
            h5_labels = store.load_cached_case(folder, row["volume"])[1]
            nifti_labels = store.load_cached_case(course.cache_dir, row["case_id"])[1]
            row["in_plane"] = download.match_in_plane(h5_labels, nifti_labels)
            if row["in_plane"] is None:
                row["used"], row["note"] = False, "labels differ from the NIfTI case"
    table = pd.DataFrame(rows, columns=["volume", "case_id", "part", "in_plane", "used", "note"])
    used = table[table["used"]]
    source = VolumeSource.from_cache_as(folder, dict(zip(used["case_id"], used["volume"])),
                                        dict(zip(used["case_id"], used["in_plane"])))
    missing = [case_id for part in parts for case_id in getattr(course.split, part)
               if case_id not in set(used["case_id"])] if nifti_fallback else []
    if missing:
        source = VolumeSource.join(source, VolumeSource.from_cache(course.cache_dir).subset(missing))
    return H5Slices(source, table, vote, folder, course.split, tuple(missing))


H5_LESSON_MARKER = "h5_lesson.json"


def write_h5_lesson(dataset: download.DataPaths, profile: Profile, count: int | None = None,
                    progress: bool = False) -> Path:
    """HDF5 slices of the first ``count`` training cases (default ``profile.n_cases``) for a lesson (notebook 03).

    BraTS 2021 and 2023 have no HDF5 copy. To show why 155 small files per patient are slow, notebook 03 writes a few
    cases exactly as Kaggle's BraTS 2020 HDF5 copy stores them (``synthetic.layout.write_h5_volume``: ``image`` (H, W,
    4) float64 in ``io.H5_CHANNEL_ORDER``, ``mask`` (H, W, 3)), volume ``v`` being the ``v``-th case, into
    ``paths.h5_lesson_dir`` (about 300 MB per real-size case). Written once: a folder whose marker names the same
    cases is reused.
    """
    from tqdm.auto import tqdm

    from braintools.synthetic.layout import write_h5_volume

    folder = paths.h5_lesson_dir(profile.name)
    found, _ = _complete_cases(io.find_cases(dataset.nifti_train, require_seg=True, warn_missing=False))
    chosen = found[: profile.n_cases if count is None else count]
    wanted = {"cases": [files.case_id for files in chosen], "channel_order": list(io.H5_CHANNEL_ORDER)}
    marker = folder / H5_LESSON_MARKER
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for volume, files in enumerate(tqdm(chosen, desc="HDF5 lesson slices", disable=not progress), start=1):
        case = io.load_case(files)
        write_h5_volume({m: case.channel(m) for m in io.MODALITIES}, case.seg, folder, volume)
    marker.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    return folder
