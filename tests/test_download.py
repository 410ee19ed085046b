"""Download: pinned kagglehub handles, Kaggle mounts, layout discovery and the offline fallback."""

from __future__ import annotations

import kagglehub
import numpy as np
import pytest
import requests
from helpers import make_arrays, write_case, write_h5_volume, write_nifti

from braintools import profiles
from braintools.data import download, io
from braintools.errors import DataError
from braintools.synthetic import layout


def fake_nifti_download(root):
    train = root / "BraTS2020_TrainingData" / "MICCAI_BraTS2020_TrainingData"
    validation = root / "BraTS2020_ValidationData" / "MICCAI_BraTS2020_ValidationData"
    for number in (1, 2):
        write_case(train / f"BraTS20_Training_00{number}", f"BraTS20_Training_00{number}")
    write_case(validation / "BraTS20_Validation_001", "BraTS20_Validation_001", seg_name="")
    return train, validation


def fake_h5_download(root):
    data = root / "BraTS2020_training_data" / "content" / "data"
    images, seg = make_arrays()
    for volume in (1, 2):
        write_h5_volume(data, volume, images, seg)
    (root / download.H5_METADATA_NAME).write_text("slice_path,target,volume,slice\n")
    return data


def test_locate_dirs_in_a_kaggle_like_tree(tmp_path):
    train, validation = fake_nifti_download(tmp_path / "nifti" / "versions" / "1")
    assert download.locate_nifti_dirs(tmp_path / "nifti") == (train, validation)
    data = fake_h5_download(tmp_path / "h5")
    found, metadata = download.locate_h5_dir(tmp_path / "h5")
    assert found == data and metadata.name == download.H5_METADATA_NAME


def test_locate_nifti_dirs_for_other_releases(tmp_path):
    write_case(tmp_path / "MICCAI_BraTS_2018_Data_Training" / "HGG" / "Brats18_X_1", "Brats18_X_1")
    train, validation = download.locate_nifti_dirs(tmp_path)
    assert train == tmp_path / "MICCAI_BraTS_2018_Data_Training" / "HGG" and validation is None


def test_locate_h5_dir_without_slices_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no HDF5 slices"):
        download.locate_h5_dir(tmp_path)


def test_kaggle_input_mount_is_used_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv(download.KAGGLE_INPUT_ENV, raising=False)
    (tmp_path / "brats20-dataset-training-validation").mkdir()
    assert download.kaggle_input_dir(download.NIFTI_HANDLE, base=tmp_path) == tmp_path / (
        "brats20-dataset-training-validation")
    assert download.kaggle_input_dir(download.H5_HANDLE, base=tmp_path) is None
    monkeypatch.setattr(download, "KAGGLE_INPUT", tmp_path)
    monkeypatch.setattr(kagglehub, "dataset_download", lambda *a, **k: pytest.fail("must not download"))
    assert download.download_dataset(download.NIFTI_HANDLE, 1) == tmp_path / "brats20-dataset-training-validation"


def test_kaggle_input_mount_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setattr(kagglehub, "dataset_download", lambda *a, **k: pytest.fail("must not download"))
    monkeypatch.delenv(download.KAGGLE_INPUT_ENV, raising=False)
    assert download.kaggle_input_root() == download.KAGGLE_INPUT == download.Path("/kaggle/input")
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path))
    assert download.kaggle_input_root() == tmp_path
    (tmp_path / "brats20-dataset-training-validation").mkdir()
    assert download.download_dataset(download.NIFTI_HANDLE, 1) == tmp_path / "brats20-dataset-training-validation"
    with pytest.raises(DataError, match=r"no folder brats2020-training-data .*BRAINTOOLS_KAGGLE_INPUT"):
        download.download_dataset(download.H5_HANDLE, 3)  # set explicitly: a missing dataset is not downloaded


def test_kaggle_data_downloads_pinned_versions(tmp_path, monkeypatch):
    fake_nifti_download(tmp_path / "n")
    fake_h5_download(tmp_path / "h")
    requested = []

    def fake_dataset_download(handle, *args, **kwargs):
        requested.append(handle)
        return str(tmp_path / ("n" if "validation" in handle else "h"))

    monkeypatch.delenv(download.KAGGLE_INPUT_ENV, raising=False)
    monkeypatch.setattr(download, "KAGGLE_INPUT", tmp_path / "no-kaggle")
    monkeypatch.setattr(kagglehub, "dataset_download", fake_dataset_download)
    paths = download.get_dataset(profiles.get_profile("kaggle"))
    assert requested == ["awsaf49/brats20-dataset-training-validation/versions/1",
                         "awsaf49/brats2020-training-data/versions/3"]
    assert paths.source == "kaggle" and paths.nifti_validation is not None
    table = download.describe_data(paths)
    assert table["cases"].tolist() == [2, 1, 2]
    assert table["files"].tolist() == [10, 4, 2 * 4]


def test_offline_there_is_no_fallback_but_one_line_saying_where_it_looked(monkeypatch, tmp_path):
    def offline(handle, *args, **kwargs):
        raise requests.ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.delenv(download.KAGGLE_INPUT_ENV, raising=False)
    monkeypatch.setattr(download, "KAGGLE_INPUT", tmp_path)
    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    monkeypatch.setattr(download, "_synthetic_data", lambda profile: pytest.fail("no synthetic fallback"))
    with pytest.raises(DataError) as raised:
        download.get_dataset(profiles.get_profile("kaggle"))
    message = str(raised.value)
    assert message.startswith("no Kaggle dataset awsaf49/brats20-dataset-training-validation: not attached under")
    assert str(tmp_path) in message and "ConnectionError" in message and "\n" not in message


def test_layout_tree_lists_and_elides(tmp_path):
    fake_nifti_download(tmp_path)
    text = download.layout_tree(tmp_path, depth=3, max_entries=1)
    assert text.splitlines()[0] == f"{tmp_path.name}/"
    assert "BraTS2020_TrainingData/" in text and "more)" in text


def test_synthetic_ci_dataset_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path))
    profile = profiles.get_profile("ci")
    paths = download.get_dataset(profile)
    assert paths.source == "synthetic"
    assert paths.nifti_train.name == "MICCAI_BraTS2020_TrainingData"
    assert paths.nifti_validation.name == "MICCAI_BraTS2020_ValidationData"
    assert paths.h5_dir.parts[-3:] == ("BraTS2020_training_data", "content", "data")
    assert paths.h5_metadata.name == "BraTS20 Training Metadata.csv"
    table = download.describe_data(paths)
    assert table["cases"].tolist() == [profile.n_cases, profile.n_validation_cases, profile.n_cases]
    assert table["files"].iloc[2] == profile.n_cases * profile.grid_shape[2]
    assert np.all(table["size_GB"] > 0)


def test_pair_h5_volume_finds_the_case_by_its_brats20_id_and_checks_it(tmp_path):
    arrays = {}
    for shift, number in enumerate((1, 12, 46)):
        case_id = f"BraTS20_Training_{number:03d}"
        images, seg = make_arrays(seed=number)
        seg = np.roll(seg, shift, axis=0)  # a different tumour position for each case
        write_case(tmp_path / "nifti" / case_id, case_id, seed=number, seg_name="")
        write_nifti(tmp_path / "nifti" / case_id / f"{case_id}_seg.nii", seg)
        arrays[number] = (images, seg)
    cases = io.find_cases(tmp_path / "nifti")
    order = ("flair", "t1", "t1ce", "t2")
    h5 = tmp_path / "h5"
    layout.write_h5_volume(*arrays[12], h5, 12, channel_order=order)
    flipped = ({m: volume[::-1] for m, volume in arrays[46][0].items()}, arrays[46][1][::-1])
    layout.write_h5_volume(*flipped, h5, 46, channel_order=order)
    layout.write_h5_volume(*arrays[1], h5, 7, channel_order=order)  # no case 007 here
    layout.write_h5_volume(*arrays[1], h5, 1, channel_order=order)
    volumes = io.find_h5_volumes(h5)

    pairing = download.pair_h5_volume(io.load_h5_volume(volumes[12], channel_order=order), cases)
    assert (pairing.case_id, pairing.in_plane, pairing.images_identical) == ("BraTS20_Training_012", "as stored", True)
    assert pairing.describe().startswith("volume_12 is BraTS20_Training_012: identical segmentation")
    assert cases[11 % len(cases)].case_id != "BraTS20_Training_012"  # what pairing by list position would take
    wrong_order = download.pair_h5_volume(io.load_h5_volume(volumes[12]), cases)
    assert wrong_order.in_plane == "as stored" and wrong_order.images_identical is False
    assert "images differ" in wrong_order.describe()
    flipped_pairing = download.pair_h5_volume(io.load_h5_volume(volumes[46], channel_order=order), cases)
    assert flipped_pairing.in_plane == "flipped along axis 0" and flipped_pairing.images_identical
    assert "cannot be known" in download.pair_h5_volume(io.load_h5_volume(volumes[7], order), cases).describe()
    not_it = download.pair_h5_volume(io.load_h5_volume(volumes[1], order), cases, volume=46)
    assert not_it.in_plane is None and not_it.describe().startswith("volume_46 is not BraTS20_Training_046")


def test_the_banner_and_tag_say_whether_the_data_is_synthetic(tmp_path):
    synthetic = download.DataPaths("synthetic", tmp_path, None, tmp_path, None)
    real = download.DataPaths("kaggle", tmp_path, None, tmp_path, None)
    assert synthetic.synthetic and synthetic.tag == " (synthetic)" and synthetic.banner().startswith("SYNTHETIC")
    assert not real.synthetic and real.tag == "" and real.banner().startswith("REAL") and str(tmp_path) in real.banner()
