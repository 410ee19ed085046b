"""Archives extracted once (atomic, resumable, safe) and the kaggle-2021 profile on a mount or a kagglehub download."""

from __future__ import annotations

import dataclasses
import io as bytes_io
import json
import tarfile
from pathlib import Path

import kagglehub
import pytest
from helpers import make_arrays, write_nifti

from braintools import paths
from braintools.data import archives, download, io, labels, releases
from braintools.errors import DataError
from braintools.profiles import get_profile


def write_2021_case(folder: Path, case_id: str, seed: int = 0) -> None:
    images, seg = make_arrays(seed)
    for modality, array in images.items():
        write_nifti(folder / f"{case_id}_{modality}.nii.gz", array)
    write_nifti(folder / f"{case_id}_seg.nii.gz", seg)


def make_tar(path: Path, source: Path, mode: str = "w") -> Path:
    """A tar of the case folders in ``source`` (members ``<case>/<file>``), like Kaggle's BraTS 2021 archives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for case in sorted(source.iterdir()):
            tar.add(case, arcname=case.name)
    return path


@pytest.fixture
def brats2021_tar(tmp_path) -> Path:
    for number in (1, 2):
        write_2021_case(tmp_path / "cases" / f"BraTS2021_{number:05d}", f"BraTS2021_{number:05d}", seed=number)
    return make_tar(tmp_path / "download" / "BraTS2021_Training_Data.tar", tmp_path / "cases")


def test_an_archive_is_extracted_once_into_its_own_folder(brats2021_tar, tmp_path, monkeypatch):
    [folder] = archives.extract_archives(archives.find_archives(brats2021_tar.parent), tmp_path / "out", progress=False)
    assert folder == tmp_path / "out" / "BraTS2021_Training_Data"
    assert [case.case_id for case in io.find_cases(folder)] == ["BraTS2021_00001", "BraTS2021_00002"]
    marker = json.loads((folder / archives.MARKER).read_text())
    assert marker["archive_bytes"] == brats2021_tar.stat().st_size and marker["members"] == 2 + 2 * 5
    assert not list((tmp_path / "out").glob(".*.partial"))
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("a complete extraction is not read again"))
    assert archives.extract_archive(brats2021_tar, tmp_path / "out", progress=False) == folder


def test_an_interrupted_extraction_resumes_and_is_never_seen_half_done(brats2021_tar, tmp_path):
    partial = tmp_path / "out" / ".BraTS2021_Training_Data.partial"
    with tarfile.open(brats2021_tar) as tar:  # a run stopped while writing the second case
        tar.extractall(partial, members=[m for m in tar if m.name.startswith("BraTS2021_00001")], filter="data")
        cut = partial / "BraTS2021_00002" / "BraTS2021_00002_t1.nii.gz"
        cut.parent.mkdir()
        cut.write_bytes(tar.extractfile("BraTS2021_00002/BraTS2021_00002_t1.nii.gz").read()[:100])
    assert not (tmp_path / "out" / "BraTS2021_Training_Data").exists()
    with pytest.raises(DataError, match="no BraTS cases found"):
        io.find_cases(tmp_path / "out")  # the hidden partial folder is not read
    folder = archives.extract_archive(brats2021_tar, tmp_path / "out", progress=False)
    assert json.loads((folder / archives.MARKER).read_text())["kept_from_an_earlier_run"] == 5  # the first case's files
    cases = io.find_cases(folder)
    assert [case.case_id for case in cases] == ["BraTS2021_00001", "BraTS2021_00002"]
    io.load_case(cases[1])  # the file cut short was written again


def test_a_truncated_archive_is_an_error_and_the_next_run_resumes(brats2021_tar, tmp_path):
    compressed = make_tar(tmp_path / "gz" / "BraTS2021_Training_Data.tar.gz", tmp_path / "cases", "w:gz")
    whole = compressed.read_bytes()
    compressed.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"BraTS2021_Training_Data.tar.gz: cannot extract.*next run resumes"):
        archives.extract_archive(compressed, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / ".BraTS2021_Training_Data.partial").is_dir()
    compressed.write_bytes(whole)  # the download completed
    folder = archives.extract_archive(compressed, tmp_path / "out", progress=False)
    assert len(io.find_cases(folder)) == 2


def test_members_outside_the_folder_are_refused(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        data = b"not a brain"
        member = tarfile.TarInfo("../escaped.txt")
        member.size = len(data)
        tar.addfile(member, bytes_io.BytesIO(data))
    with pytest.raises(DataError, match="outside"):
        archives.extract_archive(evil, tmp_path / "out", progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert archives.archive_folder_name("a/b.tar.gz") == "b" and archives.archive_folder_name("c.tgz") == "c"
    with pytest.raises(DataError, match="same folder b"):
        archives.extract_archives([Path("x/b.tar"), Path("y/b.tar.gz")], tmp_path / "out")


def test_a_download_of_archives_only_says_to_extract_them(brats2021_tar):
    with pytest.raises(DataError, match=r"extract the archive\(s\) BraTS2021_Training_Data.tar first"):
        io.find_cases(brats2021_tar.parent)


def test_the_kaggle_2021_profile_extracts_the_mounted_archives_once(brats2021_tar, tmp_path, monkeypatch):
    mount = tmp_path / "kaggle_input" / download.BRATS2021_HANDLE.split("/")[1]
    mount.mkdir(parents=True)
    (mount / brats2021_tar.name).symlink_to(brats2021_tar)
    write_2021_case(tmp_path / "extra" / "BraTS2021_00495", "BraTS2021_00495", seed=5)
    make_tar(mount / "BraTS2021_00495.tar", tmp_path / "extra")
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "kaggle_input"))
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(kagglehub, "dataset_download", lambda *a, **k: pytest.fail("must not download"))
    profile = get_profile("kaggle-2021")
    assert profile.source == "kaggle" and profile.release == "2021" and profile.max_cases == 330
    dataset = download.get_dataset(profile, progress=False)
    assert not dataset.synthetic and dataset.release is releases.BRATS_2021 and dataset.h5_dir is None
    assert dataset.nifti_train == paths.extracted_dir("brats-2021-task1")
    assert "REAL DATA: the BraTS 2021 training cases" in dataset.banner()
    cases = io.find_cases(dataset.nifti_train)
    assert [case.case_id for case in cases] == ["BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00495"]
    assert {case.release.key for case in cases} == {"2021"}
    assert io.load_case(cases[0]).seg.max() == labels.BRATS2020.et
    assert download.describe_data(dataset)["layout"].tolist() == ["NIfTI training"]
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("the archives are extracted once"))
    assert download.get_dataset(profile, progress=False).nifti_train == dataset.nifti_train


def test_the_kaggle_2021_profile_downloads_with_kagglehub_off_kaggle(brats2021_tar, tmp_path, monkeypatch):
    monkeypatch.delenv(download.KAGGLE_INPUT_ENV, raising=False)
    monkeypatch.setattr(download, "KAGGLE_INPUT", tmp_path / "not_on_kaggle")
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "data"))
    asked = []
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle, *a, **k: asked.append(handle) or
                        str(brats2021_tar.parent))
    dataset = download.get_dataset(get_profile("kaggle-2021"), progress=False)
    assert asked == [f"{download.BRATS2021_HANDLE}/versions/{download.BRATS2021_VERSION}"]
    assert len(io.find_cases(dataset.nifti_train)) == 2
    again = download.get_dataset(get_profile("kaggle-2021"), progress=False)  # the archive is not extracted again
    assert again.nifti_train == dataset.nifti_train and len(asked) == 2


def test_the_kaggle_2021_profile_extracts_only_the_cases_it_uses(brats2021_tar, tmp_path, monkeypatch):
    mount = tmp_path / "kaggle_input" / download.BRATS2021_HANDLE.split("/")[1]
    mount.mkdir(parents=True)
    for number in (3, 4):
        write_2021_case(tmp_path / "cases" / f"BraTS2021_{number:05d}", f"BraTS2021_{number:05d}", seed=number)
    make_tar(mount / "BraTS2021_Training_Data.tar", tmp_path / "cases")
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "kaggle_input"))
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "data"))
    two = dataclasses.replace(get_profile("kaggle-2021"), max_cases=2)
    dataset = download.get_dataset(two, progress=False)
    assert [case.case_id for case in io.find_cases(dataset.nifti_train)] == ["BraTS2021_00001", "BraTS2021_00003"]
    marker = json.loads((dataset.nifti_train / "BraTS2021_Training_Data" / archives.MARKER).read_text())
    assert marker["selection"].startswith("2 of 4 cases") and marker["not_selected"] == 2 * 5
    dataset = download.get_dataset(dataclasses.replace(two, max_cases=4), progress=False)  # more: the rest is added
    assert len(io.find_cases(dataset.nifti_train)) == 4
    assert json.loads((dataset.nifti_train / "BraTS2021_Training_Data" / archives.MARKER).read_text())[
        "kept_from_an_earlier_run"] == 2 * 5
