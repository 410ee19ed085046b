"""Finding and loading cases in every BraTS naming, HDF5 slices, NIfTI export, and bad input."""

from __future__ import annotations

import gzip
import re
import warnings

import h5py
import nibabel as nib
import numpy as np
import pytest
from helpers import AFFINE, SHAPE, make_arrays, write_case, write_h5_volume, write_nifti

from braintools.data import io
from braintools.errors import DataError


def test_find_cases_in_all_namings(tmp_path):
    write_case(tmp_path / "2020" / "BraTS20_Training_001", "BraTS20_Training_001")
    write_case(tmp_path / "2018" / "HGG" / "Brats18_2013_3_1", "Brats18_2013_3_1", ext=".nii.gz")
    write_case(tmp_path / "2021" / "BraTS2021_00012", "BraTS2021_00012", ext=".nii.gz")
    write_case(tmp_path / "2020" / "BraTS20_Training_355", "BraTS20_Training_355", seg_name="W39_1998.09.19_Segm")
    found = io.find_cases(tmp_path)
    ids = [case.case_id for case in found]
    assert ids == ["Brats18_2013_3_1", "BraTS20_Training_001", "BraTS20_Training_355", "BraTS2021_00012"]
    for case in found:
        assert case.missing == [] and case.seg is not None
    case355 = found[2]
    assert case355.seg.name == "W39_1998.09.19_Segm.nii"


def test_cases_sorted_naturally(tmp_path):
    for number in (10, 9, 100):
        write_case(tmp_path / f"BraTS20_Training_{number}", f"BraTS20_Training_{number}", seg_name="")
    assert [c.case_id for c in io.find_cases(tmp_path)][0] == "BraTS20_Training_9"


def test_missing_modality_is_reported_and_load_names_it(tmp_path):
    write_case(tmp_path / "A", "A")
    write_case(tmp_path / "B", "B", modalities=("t1", "t2", "flair"))
    with pytest.warns(UserWarning, match=r"B \(missing t1ce\)"):
        found = io.find_cases(tmp_path)
    assert found[1].missing == ["t1ce"]
    with pytest.raises(DataError, match=r"B.*modality t1ce"):
        io.load_case(found[1])


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no BraTS cases found"):
        io.find_cases(tmp_path)
    with pytest.raises(DataError, match="folder not found"):
        io.find_cases(tmp_path / "nope")


def test_find_cases_enters_symlinked_case_folders_once_and_survives_link_loops(tmp_path):
    write_case(tmp_path / "store" / "BraTS20_Training_001", "BraTS20_Training_001")
    write_case(tmp_path / "store" / "BraTS20_Training_002", "BraTS20_Training_002")
    arranged = tmp_path / "arranged"
    arranged.mkdir()
    (arranged / "first").symlink_to(tmp_path / "store" / "BraTS20_Training_001", target_is_directory=True)
    (arranged / "again").symlink_to(tmp_path / "store" / "BraTS20_Training_001", target_is_directory=True)
    (arranged / "all").symlink_to(tmp_path / "store", target_is_directory=True)
    (arranged / "loop").symlink_to(arranged, target_is_directory=True)  # a link to its own parent
    found = io.find_cases(arranged)
    assert [case.case_id for case in found] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    assert all(case.missing == [] and case.seg is not None for case in found)


def test_require_seg_keeps_training_cases(tmp_path):
    write_case(tmp_path / "A", "A")
    write_case(tmp_path / "V", "V", seg_name="")
    assert [c.case_id for c in io.find_cases(tmp_path, require_seg=True)] == ["A"]


def test_load_case_values_order_and_dtypes(tmp_path):
    images, seg = write_case(tmp_path / "A", "A", ext=".nii.gz")
    case = io.load_case(tmp_path / "A")
    assert case.image.dtype == np.float32 and case.image.shape == (4,) + SHAPE
    for index, modality in enumerate(io.MODALITIES):
        assert np.array_equal(case.image[index], images[modality])
    assert np.array_equal(case.channel("flair"), images["flair"])
    assert case.seg.dtype == np.uint8 and np.array_equal(case.seg, seg)
    assert np.allclose(case.affine, AFFINE)
    assert nib.aff2axcodes(case.affine) == ("L", "P", "S")


def test_load_case_accepts_int16_seg(tmp_path):
    images, seg = write_case(tmp_path / "A", "A", seg_name="")
    write_nifti(tmp_path / "A" / "A_seg.nii", seg.astype(np.int16))
    assert io.load_case(tmp_path / "A").seg.dtype == np.uint8


def test_load_case_chosen_modalities(tmp_path):
    images, _ = write_case(tmp_path / "A", "A")
    case = io.load_case(tmp_path / "A", modalities=("flair", "t1ce"), with_seg=False)
    assert case.image.shape[0] == 2 and case.seg is None
    assert np.array_equal(case.image[0], images["flair"])


def test_bad_label_values_name_the_file(tmp_path):
    write_case(tmp_path / "A", "A", seg_name="")
    bad = np.zeros(SHAPE, dtype=np.uint8)
    bad[0, 0, 0] = 3
    write_nifti(tmp_path / "A" / "A_seg.nii", bad)
    with pytest.raises(DataError, match=r"A_seg.nii: unexpected label values \[3\]"):
        io.load_case(tmp_path / "A")


def test_nan_intensities_name_the_file(tmp_path):
    write_case(tmp_path / "A", "A")
    volume = np.ones(SHAPE, dtype=np.float32)
    volume[1, 1, 1] = np.nan
    write_nifti(tmp_path / "A" / "A_t2.nii", volume)
    with pytest.raises(DataError, match=r"A_t2.nii: image holds 1 NaN"):
        io.load_case(tmp_path / "A")


def test_wrong_shape_names_the_file(tmp_path):
    write_case(tmp_path / "A", "A")
    write_nifti(tmp_path / "A" / "A_t1ce.nii", np.ones((8, 8, 5), dtype=np.int16))
    with pytest.raises(DataError, match=r"A_t1ce.nii: shape \(8, 8, 5\) differs"):
        io.load_case(tmp_path / "A")
    write_nifti(tmp_path / "A" / "A_t1ce.nii", np.ones((8, 8), dtype=np.int16))
    with pytest.raises(DataError, match=r"A_t1ce.nii: expected a 3D volume"):
        io.load_case(tmp_path / "A")


def test_seg_shape_mismatch_names_the_file(tmp_path):
    write_case(tmp_path / "A", "A", seg_name="")
    write_nifti(tmp_path / "A" / "A_seg.nii", np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"A_seg.nii: segmentation shape"):
        io.load_case(tmp_path / "A")


def test_truncated_nifti_names_the_file(tmp_path):
    write_case(tmp_path / "A", "A", ext=".nii.gz")
    path = tmp_path / "A" / "A_flair.nii.gz"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=r"A_flair.nii.gz: cannot read NIfTI"):
        io.load_case(tmp_path / "A")


def gzip_without_compression(path, flip_at=None):
    """``path.gz`` with the bytes of ``path`` stored, not compressed (a flipped byte then changes one voxel only)."""
    stored = bytearray(gzip.compress(path.read_bytes(), compresslevel=0, mtime=0))
    if flip_at is not None:
        stored[flip_at % len(stored)] ^= 0x10
    gz_path = path.with_name(path.name + ".gz")
    gz_path.write_bytes(bytes(stored))
    path.unlink()
    return gz_path


@pytest.mark.parametrize("where, problem", [("voxels", "CRC check failed"), ("length", "Incorrect length")])
def test_a_flipped_bit_anywhere_in_a_nii_gz_names_the_file(tmp_path, where, problem):
    volume = np.arange(32 * 32 * 12, dtype=np.int16).reshape(32, 32, 12) % 500 + 1
    path = write_nifti(tmp_path / "A_flair.nii", volume)
    size = len(gzip.compress(path.read_bytes(), compresslevel=0))
    flipped = gzip_without_compression(path, flip_at=size // 2 if where == "voxels" else -2)
    with pytest.raises(DataError, match=rf"A_flair\.nii\.gz: cannot read NIfTI file \({problem}"):
        io.load_nifti(flipped)
    intact = gzip_without_compression(write_nifti(tmp_path / "B_flair.nii", volume))
    assert np.array_equal(io.load_nifti(intact)[0], volume)


@pytest.mark.parametrize("first, second", [("A_seg.nii", "A_seg.nii.gz"), ("A_flair.nii", "A-FLAIR.nii.gz")])
def test_two_files_for_one_modality_or_seg_name_both(tmp_path, first, second):
    write_case(tmp_path / "A", "A", seg_name="")
    _, seg = make_arrays()
    write_nifti(tmp_path / "A" / first, seg if "seg" in first else make_arrays(1)[0]["flair"])
    write_nifti(tmp_path / "A" / second, np.zeros(SHAPE, np.uint8))
    kind = "seg" if "seg" in first else "flair"
    one, other = sorted((first, second))
    with pytest.raises(DataError, match=rf"/A/{re.escape(one)} and \S+/A/{re.escape(other)}: two files for the "
                                        rf"{kind} of case A; keep one"):
        io.find_cases(tmp_path)


def test_files_of_one_case_must_share_one_voxel_grid(tmp_path):
    images, seg = write_case(tmp_path / "A", "A")
    nearly = AFFINE.copy()
    nearly[0, 3] += 1e-5  # float32 rounding of a header: the same grid
    write_nifti(tmp_path / "A" / "A_t2.nii", images["t2"], affine=nearly)
    assert io.load_case(tmp_path / "A").image.shape == (4, *SHAPE)
    shifted = AFFINE.copy()
    shifted[1, 3] += 0.5
    write_nifti(tmp_path / "A" / "A_t2.nii", images["t2"], affine=shifted)
    with pytest.raises(DataError, match=r"A_t2\.nii: affine differs from A_t1\.nii's by up to 0\.5 "):
        io.load_case(tmp_path / "A")
    write_nifti(tmp_path / "A" / "A_t2.nii", images["t2"])
    thicker = AFFINE.copy()
    thicker[2, 2] = 2.0  # 2 mm slices
    write_nifti(tmp_path / "A" / "A_seg.nii", seg, affine=thicker)
    with pytest.raises(DataError, match=r"A_seg\.nii: affine differs from A_t1\.nii's by up to 1 "):
        io.load_case(tmp_path / "A")
    assert io.load_case(tmp_path / "A", with_seg=False).seg is None


@pytest.mark.parametrize("value", [0, 7])
def test_a_modality_with_one_value_everywhere_names_the_file(tmp_path, value):
    write_case(tmp_path / "A", "A")
    write_nifti(tmp_path / "A" / "A_t1ce.nii", np.full(SHAPE, value, np.int16))
    with pytest.raises(DataError, match=rf"A_t1ce\.nii: every voxel is {value}; this modality holds no image"):
        io.load_case(tmp_path / "A")


def test_h5_volume_reassembles_to_the_nifti_volumes(tmp_path):
    images, seg = make_arrays(1)
    write_h5_volume(tmp_path, 7, images, seg)
    volumes = io.find_h5_volumes(tmp_path)
    assert list(volumes) == [7] and len(volumes[7]) == SHAPE[2]
    case = io.load_h5_volume(volumes[7])
    assert case.case_id == "volume_7"
    for index, modality in enumerate(io.MODALITIES):
        assert np.array_equal(case.image[index], images[modality])
    assert np.array_equal(case.seg, seg)
    assert np.allclose(case.affine, AFFINE)


def test_h5_channel_order_is_a_parameter(tmp_path):
    images, seg = make_arrays(2)
    order = ("flair", "t1", "t1ce", "t2")
    write_h5_volume(tmp_path, 1, images, seg, channel_order=order)
    case = io.load_h5_volume(io.find_h5_volumes(tmp_path)[1], channel_order=order)
    assert np.array_equal(case.channel("flair"), images["flair"])
    assert np.array_equal(case.channel("t1"), images["t1"])


def test_h5_slices_sorted_numerically(tmp_path):
    images, seg = make_arrays()
    seg = np.repeat(seg, 3, axis=2)
    images = {m: np.repeat(v, 3, axis=2) for m, v in images.items()}
    write_h5_volume(tmp_path, 1, images, seg)
    names = [p.name for p in io.find_h5_volumes(tmp_path)[1]]
    assert names[:3] == ["volume_1_slice_0.h5", "volume_1_slice_1.h5", "volume_1_slice_2.h5"]
    assert names[10] == "volume_1_slice_10.h5"


def test_h5_missing_slice_is_reported(tmp_path):
    images, seg = make_arrays()
    write_h5_volume(tmp_path, 1, images, seg)
    (tmp_path / "volume_1_slice_1.h5").unlink()
    with pytest.raises(DataError, match=r"missing or unordered slices \[1\]"):
        io.load_h5_volume(io.find_h5_volumes(tmp_path)[1])


def test_truncated_and_corrupt_h5_name_the_file(tmp_path):
    images, seg = make_arrays()
    write_h5_volume(tmp_path, 1, images, seg)
    truncated = tmp_path / "volume_1_slice_2.h5"
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(DataError, match=r"volume_1_slice_2.h5: cannot read HDF5"):
        io.load_h5_volume(io.find_h5_volumes(tmp_path)[1])
    garbage = tmp_path / "volume_1_slice_3.h5"
    garbage.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(DataError, match=r"volume_1_slice_3.h5: cannot read HDF5"):
        io.read_h5_slice(garbage)


def test_h5_wrong_datasets_shapes_and_nan(tmp_path):
    path = tmp_path / "volume_1_slice_0.h5"
    with h5py.File(path, "w") as handle:
        handle["image"] = np.zeros((4, 4, 4))
    with pytest.raises(DataError, match=r"expected datasets 'image' and 'mask'"):
        io.read_h5_slice(path)
    with h5py.File(path, "w") as handle:
        handle["image"] = np.zeros((4, 4, 3))
        handle["mask"] = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"'image' must be \(H, W, 4\)"):
        io.read_h5_slice(path)
    with h5py.File(path, "w") as handle:
        handle["image"] = np.full((4, 4, 4), np.nan)
        handle["mask"] = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"NaN"):
        io.read_h5_slice(path)
    with h5py.File(path, "w") as handle:
        handle["image"] = np.zeros((4, 4, 4))
        handle["mask"] = np.zeros((4, 5, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"'mask' must be"):
        io.read_h5_slice(path)


def test_an_h5_mask_that_is_not_0_or_1_names_the_file(tmp_path):
    images, seg = make_arrays()
    write_h5_volume(tmp_path, 1, images, seg)
    with h5py.File(tmp_path / "volume_1_slice_2.h5", "r+") as handle:
        handle["mask"][...] = handle["mask"][()] * 255
    with pytest.raises(DataError, match=r"volume_1_slice_2\.h5: 'mask' must hold only 0 and 1, found 0, 255"):
        io.load_h5_volume(io.find_h5_volumes(tmp_path)[1])


def test_an_h5_channel_blank_in_every_slice_names_the_volume(tmp_path):
    images, seg = make_arrays()
    write_h5_volume(tmp_path, 1, {**images, "t2": np.zeros(SHAPE, np.int16)}, seg)
    with pytest.raises(DataError, match=r"volume_1_slice_\*\.h5 \(t2\): every voxel is 0"):
        io.load_h5_volume(io.find_h5_volumes(tmp_path)[1])


def test_two_files_for_one_h5_slice_name_both(tmp_path):
    images, seg = make_arrays()
    write_h5_volume(tmp_path, 1, images, seg)
    (tmp_path / "volume_1_slice_02.h5").write_bytes((tmp_path / "volume_1_slice_3.h5").read_bytes())
    with pytest.raises(DataError, match=r"volume_1_slice_02\.h5 and .*volume_1_slice_2\.h5: two files for slice 2 "
                                        r"of volume 1"):
        io.find_h5_volumes(tmp_path)


def test_empty_h5_folder(tmp_path):
    with pytest.raises(DataError, match="no HDF5 slices"):
        io.find_h5_volumes(tmp_path)


def test_save_prediction_nifti_round_trip(tmp_path):
    classes = np.zeros(SHAPE, dtype=np.uint8)
    classes[1, 1, 1], classes[2, 2, 2], classes[3, 3, 3] = 1, 2, 3
    out = io.save_prediction_nifti(classes, AFFINE, tmp_path / "pred.nii.gz", contiguous=True)
    image = nib.load(out)
    assert np.allclose(image.affine, AFFINE)
    data = np.asanyarray(image.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) == {0, 1, 2, 4}
    assert [p.name for p in tmp_path.iterdir()] == ["pred.nii.gz"]


def test_save_prediction_rejects_bad_labels(tmp_path):
    with pytest.raises(DataError, match=r"pred.nii.*\[3\]"):
        io.save_prediction_nifti(np.full(SHAPE, 3, np.uint8), AFFINE, tmp_path / "pred.nii")
    assert not (tmp_path / "pred.nii").exists()


def test_real_sample_cases_load(real_sample_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = io.find_cases(real_sample_dir)
    assert len(found) == 3
    for case_files in found:
        case = io.load_case(case_files)
        assert case.image.shape == (4, 240, 240, 155) and case.image.dtype == np.float32
        assert set(np.unique(case.seg)) <= {0, 1, 2, 4}
        assert nib.aff2axcodes(case.affine) == ("L", "P", "S")
        assert np.allclose(np.abs(case.affine[:3, :3]), np.eye(3))
