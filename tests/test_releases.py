"""BraTS releases as data: 2018-2020, 2021 and 2023 cases recognised, one internal convention, export in their own."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers import SHAPE, make_arrays, write_nifti

from braintools.data import io, labels, releases
from braintools.data.releases import BRATS_2018_2020, BRATS_2021, BRATS_2023
from braintools.errors import DataError
from braintools.evaluation.cases import evaluate_folder
from braintools.synthetic.generator import make_case
from braintools.synthetic.layout import training_case_id, write_nifti_case

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = (("BraTS2021_00000", "BraTS-GLI-00000-000"), ("BraTS2021_00002", "BraTS-GLI-00002-000"))


def write_release_case(folder: Path, case_id: str, release: releases.Release, seed: int = 0) -> tuple[dict, np.ndarray]:
    """A small case in a release's names and labels; returns the images and the seg in the course's labels."""
    images, seg = make_arrays(seed)
    for modality, array in images.items():
        write_nifti(folder / release.file_name(case_id, modality), array)
    written = labels.convert_labels(seg, releases.INTERNAL_LABELS, release.labels)
    write_nifti(folder / release.file_name(case_id, "seg"),
                written.astype(np.float32) if release is BRATS_2023 else written)
    return images, seg


def test_each_release_is_a_row_of_names_and_labels():
    table = releases.release_table()
    assert list(table.index) == ["BraTS 2018-2020", "BraTS 2021", "BraTS 2023 GLI"]
    assert table.loc["BraTS 2023 GLI", ["T1", "T1ce", "T2", "FLAIR"]].tolist() == ["t1n", "t1c", "t2w", "t2f"]
    assert table.loc["BraTS 2023 GLI", "label values"] == "0/1/2/3" and table.loc["BraTS 2021", "label values"] == \
        "0/1/2/4"
    assert "3 ET" in table.loc["BraTS 2023 GLI", "meaning"] and "4 ET" in table.loc["BraTS 2018-2020", "meaning"]
    assert BRATS_2023.labels == labels.BRATS2023 and BRATS_2021.labels == labels.BRATS2020
    assert BRATS_2023.file_name("BraTS-GLI-00000-000", "seg") == "BraTS-GLI-00000-000-seg.nii.gz"
    assert BRATS_2018_2020.file_name("BraTS20_Training_001", "t1ce") == "BraTS20_Training_001_t1ce.nii"
    assert "t1n,t1c,t2w,t2f,seg" in BRATS_2023.describe() and "3 ET" in BRATS_2023.describe()
    assert releases.get_release("2019") is BRATS_2018_2020 and releases.get_release(BRATS_2021) is BRATS_2021
    with pytest.raises(ValueError, match="unknown BraTS release '2024'"):
        releases.get_release("2024")


@pytest.mark.parametrize("name, expected", [
    ("BraTS20_Training_001_t1ce.nii", ("BraTS20_Training_001", "t1ce", "t1ce")),
    ("Brats18_2013_3_1_FLAIR.nii.gz", ("Brats18_2013_3_1", "flair", "flair")),
    ("BraTS-GLI-00000-000-t1c.nii.gz", ("BraTS-GLI-00000-000", "t1ce", "t1c")),
    ("BraTS-GLI-00000-000-t1n.nii.gz", ("BraTS-GLI-00000-000", "t1", "t1n")),
    ("BraTS-GLI-00000-000-t2w.nii", ("BraTS-GLI-00000-000", "t2", "t2w")),
    ("BraTS-GLI-00000-000-seg.nii.gz", ("BraTS-GLI-00000-000", "seg", "seg")),
    ("W39_1998.09.19_Segm.nii", None), ("T1w.nii.gz", None), ("BraTS2021_00000_t1.txt", None),
])
def test_file_names_of_every_release_are_parsed(name, expected):
    assert releases.parse_file_name(name) == expected


def test_the_release_of_a_case_comes_from_its_names_then_its_id():
    assert releases.recognise("BraTS2021_00000", ["BraTS2021_00000_t1.nii.gz"]) is BRATS_2021
    assert releases.recognise("BraTS20_Training_001", ["BraTS20_Training_001_t1.nii"]) is BRATS_2018_2020
    assert releases.recognise("patient7", ["patient7_t1.nii"]) is BRATS_2018_2020
    assert releases.recognise("patient7", ["patient7-t1n.nii.gz"]) is BRATS_2023
    assert releases.recognise("BraTS-GLI-00000-000", ["BraTS-GLI-00000-000-seg.nii.gz"]) is BRATS_2023
    assert releases.recognise("BraTS2021_00000", ["BraTS2021_00000_seg.nii.gz"]) is BRATS_2021
    assert releases.recognise("p1", ["p1-seg.nii.gz"]) is BRATS_2023  # a segmentation alone, 2023's separator
    with pytest.raises(ValueError, match=r"mixes BraTS 2018-2021 file names \(p1_t1ce.nii\) and BraTS 2023"):
        releases.recognise("p1", ["p1_t1ce.nii", "p1-t1n.nii"])


def test_counterparts_and_counts():
    assert releases.counterpart_id("BraTS2021_00123", "2023") == "BraTS-GLI-00123-000"
    assert releases.counterpart_id("BraTS-GLI-00123-000", "2021") == "BraTS2021_00123"
    assert releases.counterpart_id("BraTS-GLI-00123-001", "2021") is None  # a later time point has no 2021 form
    assert releases.counterpart_id("BraTS20_Training_001", "2023") is None
    assert releases.counterpart_id("BraTS2021_00123", "2020") is None
    assert releases.describe_releases([]) == "no case"
    assert releases.expected_names().count("(BraTS 20") == 2


def test_labels_convert_between_releases_and_floats_with_whole_values_are_accepted():
    seg = np.array([0, 1, 2, 4, 4], np.uint8)
    as_2023 = labels.convert_labels(seg, labels.BRATS2020, labels.BRATS2023)
    assert as_2023.tolist() == [0, 1, 2, 3, 3] and as_2023.dtype == np.uint8
    assert labels.convert_labels(as_2023.astype(np.float32), labels.BRATS2023).tolist() == seg.tolist()
    assert labels.convert_labels(seg.astype(np.int16), labels.BRATS2020).dtype == np.uint8
    with pytest.raises(DataError, match=r"unexpected label values \[4\]; BraTS 2023 GLI allows \[0, 1, 2, 3\]"):
        labels.convert_labels(seg, labels.BRATS2023)
    with pytest.raises(DataError, match="non-integer"):
        labels.convert_labels(np.array([0, 1.5]), labels.BRATS2023)


@pytest.mark.parametrize("release", list(releases.RELEASES.values()), ids=lambda r: r.key)
def test_a_case_of_each_release_loads_into_the_course_convention(tmp_path, release):
    case_id = release.example
    images, seg = write_release_case(tmp_path / case_id, case_id, release)
    found = io.find_cases(tmp_path)
    assert [(files.case_id, files.release) for files in found] == [(case_id, release)]
    case = io.load_case(found[0])
    assert case.modalities == ("t1", "t1ce", "t2", "flair") and case.seg.dtype == np.uint8
    for index, modality in enumerate(case.modalities):
        np.testing.assert_array_equal(case.image[index], images[modality])
    np.testing.assert_array_equal(case.seg, seg)  # ET is 4 inside the course, whatever the file says


def test_a_segmentation_in_another_releases_labels_is_an_error_that_says_so(tmp_path):
    images, seg = make_arrays()
    for modality, array in images.items():
        write_nifti(tmp_path / f"BraTS2021_00001_{modality}.nii.gz", array)
    write_nifti(tmp_path / "BraTS2021_00001_seg.nii.gz", labels.convert_labels(seg, labels.BRATS2020, labels.BRATS2023))
    with pytest.raises(DataError, match=r"_seg.nii.gz: unexpected label values \[3\].*BraTS 2023 GLI labels"):
        io.load_case(tmp_path)
    for name in ("p1_t1.nii", "p1_t1ce.nii", "p1-t2w.nii", "p1-t2f.nii"):
        write_nifti(tmp_path / "mixed" / name, images["t1"])
    with pytest.raises(DataError, match=r"mixed: case p1 mixes BraTS 2018-2021 file names \(p1_t1.nii, p1_t1ce.nii\)"):
        io.find_cases(tmp_path / "mixed")


def test_the_synthetic_case_written_in_each_layout_loads_to_the_same_arrays(tmp_path):
    case = make_case(7, 1, (32, 32, 20))
    loaded = {}
    for release in releases.RELEASES.values():
        case_id = training_case_id(1, release)
        folder = write_nifti_case(case, tmp_path / release.key / case_id, case_id, release)
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted(release.file_name(case_id, kind) for kind in ("t1", "t1ce", "t2", "flair", "seg"))
        raw = nib.load(folder / release.file_name(case_id, "seg"))
        assert raw.get_data_dtype() == (np.float32 if release is BRATS_2023 else np.uint8)
        assert np.asarray(raw.dataobj).max() == release.labels.et
        [files] = io.find_cases(tmp_path / release.key)
        assert files.release is release
        loaded[release.key] = io.load_case(files)
    for other in ("2021", "2023"):
        np.testing.assert_array_equal(loaded[other].image, loaded["2020"].image)
        np.testing.assert_array_equal(loaded[other].seg, loaded["2020"].seg)
    np.testing.assert_array_equal(loaded["2020"].seg, case.seg)


def test_predictions_are_scored_in_the_labels_of_the_ground_truths_release(tmp_path):
    tables = {}
    for release in (BRATS_2021, BRATS_2023):
        case_id = training_case_id(1, release)
        _, seg = write_release_case(tmp_path / release.key / "gt" / case_id, case_id, release)
        predicted = seg.copy()
        predicted[2, 2, 1] = 4  # one edema voxel called enhancing
        io.save_prediction_nifti(labels.to_contiguous(predicted), io.brats_affine(SHAPE),
                                 tmp_path / release.key / "pred" / f"{case_id}.nii.gz", contiguous=True,
                                 convention=release.labels)
        saved = np.asarray(nib.load(tmp_path / release.key / "pred" / f"{case_id}.nii.gz").dataobj)
        assert set(np.unique(saved).tolist()) == set(release.labels.values)
        tables[release.key] = evaluate_folder(tmp_path / release.key / "pred", tmp_path / release.key / "gt",
                                              progress=False)
    metrics = [column for column in tables["2021"] if column not in ("case_id", "empty_rule")]
    assert 0 < tables["2021"]["Dice_ET"].iloc[0] < 1
    pd.testing.assert_frame_equal(tables["2021"][metrics], tables["2023"][metrics])
    stale = tmp_path / "stale" / f"{training_case_id(1, '2023')}.nii.gz"  # written with ET = 4 for a 2023 case
    stale.parent.mkdir()
    stale.write_bytes((tmp_path / "2021" / "pred" / f"{training_case_id(1, '2021')}.nii.gz").read_bytes())
    with pytest.raises(DataError, match=r"stale.*: unexpected label values \[4\]; BraTS 2023 GLI allows"):
        evaluate_folder(stale.parent, tmp_path / "2023" / "gt", progress=False)


# ---------------------------------------------------------------- the real samples (skipped without ../shared/data)

def _real_pair(case_2021: str, case_2023: str) -> tuple[io.CaseFiles, io.CaseFiles]:
    if not (SHARED / "brats2021_sample").is_dir() or not (SHARED / "brats2023_sample").is_dir():
        pytest.skip("real samples ../shared/data/brats2021_sample and brats2023_sample are absent")
    return (io.find_cases(SHARED / "brats2021_sample" / case_2021)[0],
            io.find_cases(SHARED / "brats2023_sample" / case_2023)[0])


@pytest.mark.real_data
@pytest.mark.parametrize("case_2021, case_2023", PAIRS)
def test_the_same_patient_in_its_2021_and_2023_forms_loads_to_identical_arrays(case_2021, case_2023):
    files_2021, files_2023 = _real_pair(case_2021, case_2023)
    assert files_2021.release is BRATS_2021 and files_2023.release is BRATS_2023
    assert releases.counterpart_id(case_2021, "2023") == case_2023
    assert nib.load(files_2023.seg).get_data_dtype() == np.float32  # stored as floats, loads all the same
    raw_2023 = np.unique(np.asarray(nib.load(files_2023.seg).dataobj)).tolist()
    assert raw_2023 == [0, 1, 2, 3]
    first, second = io.load_case(files_2021), io.load_case(files_2023)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.seg, second.seg)
    np.testing.assert_array_equal(first.affine, second.affine)
    assert np.unique(second.seg).tolist() == [0, 1, 2, 4] and second.seg.dtype == np.uint8


@pytest.mark.real_data
@pytest.mark.parametrize("case_2021, case_2023", PAIRS)
def test_predictions_of_the_same_patient_are_exported_in_each_releases_labels(case_2021, case_2023, tmp_path):
    files = dict(zip(("2021", "2023"), _real_pair(case_2021, case_2023)))
    case = io.load_case(files["2021"])
    classes = labels.to_contiguous(case.seg)  # a prediction with every class: the ground truth itself
    written = {}
    for key, case_files in files.items():
        path = io.save_prediction_nifti(classes, case.affine, tmp_path / key / f"{case_files.case_id}.nii.gz",
                                        contiguous=True, convention=case_files.release.labels)
        written[key] = np.asarray(nib.load(path).dataobj)
    assert np.unique(written["2021"]).tolist() == [0, 1, 2, 4] and np.unique(written["2023"]).tolist() == [0, 1, 2, 3]
    raw_2023 = np.asarray(nib.load(files["2023"].seg).dataobj)
    np.testing.assert_array_equal(written["2023"], raw_2023)  # the file the release itself ships
