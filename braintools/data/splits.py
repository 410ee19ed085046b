"""Patient-level train / validation / test splits, seeded and stratified.

Slices (or patches) of one patient look alike, so a patient whose slices sit in both the training and the
test set leaks information and inflates the test score. Every split in the course is therefore made on
patients (case ids) first; datasets of slices or patches are then built from each part separately.

Stratification keeps the parts alike: each part gets about the same mix of small and large tumours (or of
high- and low-grade cases), so a lucky or unlucky draw cannot put all the easy cases in the test set.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from braintools._private.atomic import atomic_path

T = TypeVar("T")

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class PatientSplit:
    """Case ids of the training, validation and test patients (disjoint)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def check_disjoint(self) -> None:
        """Raise ``ValueError`` naming the patients that appear in more than one part."""
        seen: dict[str, str] = {}
        for part in PARTS:
            for case_id in getattr(self, part):
                if case_id in seen:
                    raise ValueError(f"patient {case_id!r} is in both {seen[case_id]!r} and {part!r}")
                seen[case_id] = part

    def part_of(self, case_id: str) -> str:
        """Return ``"train"``, ``"val"`` or ``"test"``: the part that holds ``case_id``."""
        for part in PARTS:
            if case_id in getattr(self, part):
                return part
        raise KeyError(f"patient {case_id!r} is in no part of this split")

    def as_dict(self) -> dict[str, list[str]]:
        """Return ``{"train": [...], "val": [...], "test": [...]}`` (what ``_save_split`` writes)."""
        return {part: list(getattr(self, part)) for part in PARTS}


def spread_evenly(items: Sequence[T], count: int | None) -> list[T]:
    """``count`` items spread evenly over ``items``, first one included, order kept (``None``: all of them).

    BraTS 2020 numbers its high-grade patients first, so the first 60 cases would all be high grade. The patients a
    profile with ``max_cases`` uses (``course.prepare_data``) and the cases the ``kaggle-2021`` profile extracts.

    Example:
        >>> spread_evenly(list(range(10)), 3)
        [0, 3, 6]
    """
    if count is None or count >= len(items):
        return list(items)
    return [items[index * len(items) // count] for index in range(count)]


def part_sizes(n_patients: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[int, int, int]:
    """Return (train, val, test) patient counts: rounded fractions, at least one each when possible.

    Example:
        >>> part_sizes(20), part_sizes(6), part_sizes(369)
        ((16, 2, 2), (4, 1, 1), (295, 37, 37))
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    if n_patients < 1:
        raise ValueError(f"cannot split {n_patients} patients")
    _, val_fraction, test_fraction = fractions
    room = n_patients >= 3  # one patient per part needs three patients
    n_val = max(int(room and val_fraction > 0), round(n_patients * val_fraction))
    n_test = max(int(room and test_fraction > 0), round(n_patients * test_fraction))
    n_train = n_patients - n_val - n_test
    if n_train < 1:
        raise ValueError(f"fractions {tuple(fractions)} leave no training patient out of {n_patients}")
    return n_train, n_val, n_test


def _stratified_order(strata: Sequence[Hashable], rng: np.random.Generator) -> np.ndarray:
    """Return an order of the patients in which every stratum is spread evenly from start to end (notebook 04).

    Each stratum is shuffled, its k-th patient of n gets the position key (k + u) / n with u random in
    [0, 1), and patients are sorted by key. Any run of consecutive patients then holds the strata in about
    their overall proportions, so cutting the order into parts gives stratified parts.
    """
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, stratum in enumerate(strata):
        members[stratum].append(index)
    keys = np.empty(len(strata))
    for indices in members.values():
        shuffled = rng.permutation(indices)
        keys[shuffled] = (np.arange(len(shuffled)) + rng.random(len(shuffled))) / len(shuffled)
    return np.argsort(keys, kind="stable")


def _split_patients(
    case_ids: Sequence[str],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    strata: Sequence[Hashable] | None = None,
    seed: int = 0,
) -> PatientSplit:
    """Split patients into train / val / test parts (seeded; stratified when ``strata`` is given) (notebook 04).

    Args:
        case_ids: one id per patient (no duplicates).
        fractions: train, val and test fractions (rounded; val and test get at least one patient each
            when there are at least three patients).
        strata: one group label per patient, e.g. from ``size_strata`` or the grade (HGG/LGG).
        seed: the same seed gives the same split.

    Example:
        >>> split = _split_patients([f"case_{i}" for i in range(10)], seed=0)
        >>> len(split.train), len(split.val), len(split.test)
        (8, 1, 1)
    """
    case_ids = [str(case_id) for case_id in case_ids]
    duplicates = sorted({case_id for case_id in case_ids if case_ids.count(case_id) > 1})
    if duplicates:
        raise ValueError(f"duplicate patient ids {duplicates[:5]}: a patient must appear once")
    if strata is not None and len(strata) != len(case_ids):
        raise ValueError(f"strata has {len(strata)} labels for {len(case_ids)} patients")
    n_train, n_val, n_test = part_sizes(len(case_ids), fractions)
    order = _stratified_order(strata if strata is not None else [0] * len(case_ids), np.random.default_rng(seed))
    ordered = [case_ids[index] for index in order]
    split = PatientSplit(
        train=tuple(sorted(ordered[n_test + n_val:])),
        val=tuple(sorted(ordered[n_test:n_test + n_val])),
        test=tuple(sorted(ordered[:n_test])),
    )
    split.check_disjoint()
    return split


def size_strata(tumour_voxels: Sequence[float], n_bins: int = 3) -> list[int]:
    """Label each patient with its tumour-size bin 0..n_bins-1 (quantile bins: small, medium, large).

    Example:
        >>> size_strata([10, 500, 20, 900, 0, 300], n_bins=3)
        [0, 2, 1, 2, 0, 1]
    """
    sizes = np.asarray(tumour_voxels, dtype=np.float64)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    ranks = np.argsort(np.argsort(sizes, kind="stable"), kind="stable")
    return [int(rank * n_bins // len(sizes)) for rank in ranks]


def _save_split(split: PatientSplit, path: str | os.PathLike) -> Path:
    """Write a split as JSON (atomic), so later notebooks evaluate on the same test patients."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(split.as_dict(), indent=2), encoding="utf-8")
    return Path(path)


def _load_split(path: str | os.PathLike) -> PatientSplit:
    """Read a split written by ``_save_split`` (and check that its parts are disjoint) (notebook 04)."""
    path = Path(path)
    try:
        parts = json.loads(path.read_text(encoding="utf-8"))
        split = PatientSplit(*(tuple(parts[part]) for part in PARTS))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: split file not found") from None
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a split file with parts {list(PARTS)} ({error})") from None
    split.check_disjoint()
    return split


def _read_grades(nifti_train: str | os.PathLike) -> dict[str, str]:
    """Return ``{case_id: "HGG" | "LGG"}`` from a BraTS 2020 training folder's ``name_mapping.csv`` ({} if absent).
    Introduced in notebook 04."""
    import pandas as pd

    path = Path(nifti_train) / "name_mapping.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    if not {"Grade", "BraTS_2020_subject_ID"} <= set(table.columns):
        raise ValueError(f"{path}: expected columns Grade and BraTS_2020_subject_ID, found {list(table.columns)}")
    return dict(zip(table["BraTS_2020_subject_ID"].astype(str), table["Grade"].astype(str)))


def course_split(case_ids: Sequence[str], path: str | os.PathLike, nifti_train: str | os.PathLike | None = None,
                 seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> PatientSplit:
    """Return the course's one split (``fractions``, stratified by grade), read from ``path`` or made and saved there.

    Every notebook calls this with the same ``path`` (``paths.split_path(profile.name)``), so they train and
    evaluate on the same patients whichever runs first. A saved split made for other patients, or with other
    part sizes, is replaced.
    """
    path = Path(path)
    wanted = sorted(str(case_id) for case_id in case_ids)
    if path.is_file():
        saved = _load_split(path)
        sizes = (len(saved.train), len(saved.val), len(saved.test))
        if sorted(saved.train + saved.val + saved.test) == wanted and sizes == part_sizes(len(wanted), fractions):
            return saved
    grades = _read_grades(nifti_train) if nifti_train is not None else {}
    strata = [grades.get(case_id, "unknown") for case_id in wanted]
    split = _split_patients(wanted, fractions=fractions, strata=strata, seed=seed)
    _save_split(split, path)
    return split
