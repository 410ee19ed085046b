"""Finding cases (issue 23 A): each fault that made a phantom case, hid a case or named nothing, with its test."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import SHAPE, write_case, write_nifti

from braintools import course
from braintools.data import download, io
from braintools.errors import DataError
from braintools.evaluation.cases import evaluate_cases
from tests.test_segment import Pointwise

# the first bytes of a macOS AppleDouble file ("._<name>"): Finder writes one next to every file it copies to a
# disk that cannot hold extended attributes (FAT, exFAT, network shares, zip files)
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4062)
BRATS20_FILES = [f"BraTS20_Training_001_{kind}.nii" for kind in ("t1", "t1ce", "t2", "flair", "seg")]


def test_macos_resource_forks_are_not_cases(tmp_path):
    write_case(tmp_path / "BraTS20_Training_001", "BraTS20_Training_001")
    for name in BRATS20_FILES:
        (tmp_path / "BraTS20_Training_001" / f"._{name}").write_bytes(APPLEDOUBLE)
        (tmp_path / "__MACOSX" / "BraTS20_Training_001").mkdir(parents=True, exist_ok=True)
        (tmp_path / "__MACOSX" / "BraTS20_Training_001" / f"._{name}").write_bytes(APPLEDOUBLE)
    found = io.find_cases(tmp_path, require_seg=True)
    assert [case.case_id for case in found] == ["BraTS20_Training_001"]
    assert sorted(path.name for path in found[0].images.values()) == sorted(BRATS20_FILES[:4])


def test_a_half_written_case_folder_is_not_a_case(tmp_path):
    write_case(tmp_path / "BraTS20_Training_001", "BraTS20_Training_001")
    write_case(tmp_path / ".BraTS20_Training_002.partial", "BraTS20_Training_002")  # an interrupted writer's
    assert [case.case_id for case in io.find_cases(tmp_path)] == ["BraTS20_Training_001"]


def test_one_case_id_in_two_folders_is_an_error_naming_both(tmp_path):
    write_case(tmp_path / "site_a" / "BraTS2021_00001", "BraTS2021_00001", seed=0)
    write_case(tmp_path / "site_b" / "BraTS2021_00001", "BraTS2021_00001", seed=1)  # another patient, same id
    with pytest.raises(DataError, match=r"BraTS2021_00001.*site_a.*site_b"):
        io.find_cases(tmp_path)


def test_identical_copies_of_a_case_are_one_case(tmp_path):
    write_case(tmp_path / "copy_1" / "BraTS2021_00001", "BraTS2021_00001", seed=0)
    shutil.copytree(tmp_path / "copy_1", tmp_path / "copy_2")
    with pytest.warns(UserWarning, match=r"BraTS2021_00001.*identical"):
        found = io.find_cases(tmp_path)
    assert len(found) == 1 and found[0].folder == tmp_path / "copy_1" / "BraTS2021_00001"


def test_a_folder_without_cases_names_what_it_found_and_what_it_expected(tmp_path):
    write_nifti(tmp_path / "sub-01" / "anat" / "T1w.nii.gz", np.ones(SHAPE, np.int16))
    (tmp_path / "sub-01" / "notes.txt").write_text("BIDS, not BraTS")
    with pytest.raises(DataError) as error:
        io.find_cases(tmp_path)
    message = str(error.value)
    assert "T1w.nii.gz" in message and "notes.txt" in message  # what it found
    assert "t1ce" in message and "t1n" in message  # what it expected: BraTS 2018-2021 and BraTS 2023 names


def test_a_case_without_a_modality_names_the_files_of_its_folder(tmp_path):
    write_case(tmp_path / "A", "A", modalities=("t1", "t2", "flair"))
    write_nifti(tmp_path / "A" / "A_t1gd.nii.gz", np.ones(SHAPE, np.int16))  # T1ce under another name
    found = io.find_cases(tmp_path, warn_missing=False)
    with pytest.raises(DataError, match=r"no file for modality t1ce.*A_t1gd\.nii\.gz"):
        io.load_case(found[0])


def test_junk_in_the_real_cases_folder_is_left_out_and_named(tmp_path, monkeypatch):
    for number in (1, 2):
        write_case(tmp_path / "real" / f"case_{number}", f"case_{number}")
    write_nifti(tmp_path / "real" / "atlas" / "atlas_seg.nii.gz", np.zeros(SHAPE, np.uint8))  # a seg and no scan
    monkeypatch.setenv(course.REAL_CASES_ENV, str(tmp_path / "real"))
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "no_mount"))
    cases, where = course.real_reference_cases()
    assert [files.case_id for files in cases] == ["case_1", "case_2"]
    assert "atlas" in where and "t1ce" in where


def test_evaluate_cases_keeps_the_cases_scored_when_one_fails(tmp_path):
    for number in (1, 2, 3):
        write_case(tmp_path / f"case_{number}", f"case_{number}", seed=number)
    broken = tmp_path / "case_2" / "case_2_flair.nii"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    files = io.find_cases(tmp_path)
    with pytest.warns(UserWarning, match=r"case_2.*case_2_flair\.nii"):
        result = evaluate_cases(Pointwise(), files, progress=False)
    assert list(result.table["case_id"]) == ["case_1", "case_3"]
    assert list(result.failures) == ["case_2"] and "case_2_flair.nii" in result.failures["case_2"]
    assert "1 case failed" in result.score_line()
