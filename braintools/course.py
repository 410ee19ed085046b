"""The preamble of every training and evaluation step: dataset -> patients -> shared split -> npy cache.

Notebooks 04-07 and the command line all start the same way: get the profile's data (real or synthetic), list the
training cases that have a segmentation, read (or make) the one patient split they share, and make sure the npy
cache of notebook 03 holds those patients. ``prepare_data`` does exactly that and nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from braintools import cache, paths
from braintools.data import download, io, splits
from braintools.errors import DataError
from braintools.profiles import Profile, get_profile

T = TypeVar("T")


@dataclass
class CourseData:
    """The profile's data, ready to train on (``prepare_data``).

    Attributes:
        profile: the profile it was prepared for.
        data: where the dataset lives (``download.DataPaths``); ``data.source`` says real (kaggle) or synthetic.
        cases: the training cases with a segmentation, by case id (at most ``profile.max_cases``, spread evenly
            over the sorted case ids, so a subset of BraTS 2020 mixes high- and low-grade patients).
        split: the patient split every notebook shares (``split.train``, ``split.val``, ``split.test``).
        cache_dir: the npy cache of these cases (``None`` when not asked for).
    """

    profile: Profile
    data: download.DataPaths
    cases: dict[str, io.CaseFiles]
    split: splits.PatientSplit
    cache_dir: Path | None

    @property
    def synthetic(self) -> bool:
        """True when the data is the course's synthetic dataset, not real scans."""
        return self.data.synthetic

    def case_files(self, case_ids) -> list[io.CaseFiles]:
        """The ``io.CaseFiles`` of some patients, e.g. ``course.case_files(course.split.test)``."""
        return [self.cases[case_id] for case_id in case_ids]

    def describe(self) -> str:
        """One line: where the data comes from and how the patients are split."""
        kind = "SYNTHETIC data (the course's generator)" if self.synthetic else "REAL BraTS data"
        return (f"{kind}, profile {self.profile.name}: {len(self.cases)} patients, split "
                f"{len(self.split.train)} train / {len(self.split.val)} validation / {len(self.split.test)} test")


REAL_CASES_ENV = "BRAINTOOLS_REAL_CASES"  # a folder of real BraTS cases to test models trained on synthetic data


def real_test_cases(data: CourseData, limit: int | None = None) -> tuple[list[io.CaseFiles], str]:
    """Real BraTS cases with segmentations to test the course's models on, and where they come from (notebook 07).

    Real data (the ``kaggle`` profile): the test patients of the split. Synthetic data: the cases under
    ``BRAINTOOLS_REAL_CASES`` if set, else the Kaggle NIfTI dataset when it is mounted (``/kaggle/input``), else
    none (an empty list). ``limit`` keeps the first cases only (inference on real volumes takes time on a CPU).
    """
    if not data.synthetic:
        return data.case_files(data.split.test)[:limit], f"the test patients of the real data ({data.data.nifti_train})"
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
    cases = io.find_cases(root, require_seg=True, warn_missing=False)[:limit]
    return cases, f"{len(cases)} real case(s) under {root}"


def spread_evenly(items: Sequence[T], count: int | None) -> list[T]:
    """``count`` items spread evenly over ``items``, first one included, order kept (``None``: all of them).

    BraTS 2020 numbers its high-grade patients first, so the first 60 cases would all be high grade.

    Example:
        >>> spread_evenly(list(range(10)), 3)
        [0, 3, 6]
    """
    if count is None or count >= len(items):
        return list(items)
    return [items[index * len(items) // count] for index in range(count)]


def prepare_data(profile: Profile | None = None, cache_cases: bool = True, progress: bool = False,
                 cache_dir: str | Path | None = None) -> CourseData:
    """Get the profile's dataset, list its labelled cases, load the shared split and fill the npy cache (notebook 04).

    Args:
        profile: the profile (default: ``BRAINTOOLS_PROFILE``).
        cache_cases: convert the cases to the npy cache (cases already cached are skipped, so this is cheap
            after notebook 03).
        progress: progress bars while caching.
        cache_dir: another folder for the npy cache (default: ``paths.cache_dir(profile.name)``).
    """
    profile = profile or get_profile()
    data = download.get_dataset(profile)
    found = io.find_cases(data.nifti_train, require_seg=True, warn_missing=False)
    if not found:
        raise DataError(f"{data.nifti_train}: no case with a segmentation")
    cases = {files.case_id: files for files in spread_evenly(found, profile.max_cases)}
    split = splits.course_split(list(cases), paths.split_path(profile.name), nifti_train=data.nifti_train,
                                seed=profile.seed)
    folder = None
    if cache_cases:
        folder = Path(cache_dir) if cache_dir else paths.cache_dir(profile.name)
        sources = [source for source in cache.nifti_sources(data.nifti_train, require_seg=True)
                   if source.case_id in cases]
        cache.precache(sources, folder, progress=progress, crop=profile.crop_cache)
    return CourseData(profile, data, cases, split, folder)
