"""Volumes and volume sources: in-memory arrays, NIfTI cases, HDF5 volumes and the npy cache alike."""

import numpy as np
import pytest

from braintools.cache import build
from braintools.cache.sources import nifti_sources
from braintools.data import io, labels, preprocess
from braintools.datasets.volumes import Volume, VolumeSource, _volume_from_case, check_volume
from braintools.errors import DataError
from tests import helpers
from tests.test_datasets2d import _source, _volume


def test_array_source_basics():
    source = _source(3)
    assert len(source) == 3 and source.case_ids == ("case_0", "case_1", "case_2")
    volume = source[1]
    assert volume.case_id == "case_1" and volume.image.shape == (4, 20, 18, 6) and not volume.normalised
    part = source.subset(["case_2", "case_0"])
    assert part.case_ids == ("case_2", "case_0") and part[0].case_id == "case_2"
    with pytest.raises(KeyError, match="case_9"):
        source.subset(["case_9"])


def test_volume_shapes_are_checked():
    bad = VolumeSource.from_arrays([("bad", np.zeros((4, 8, 8, 3)), np.zeros((8, 8, 4), np.uint8))])
    with pytest.raises(DataError, match="bad: expected image"):
        bad[0]
    floats = VolumeSource.from_arrays([("f", np.zeros((4, 8, 8, 3)), np.zeros((8, 8, 3)))])
    with pytest.raises(DataError, match="integers"):
        floats[0]


def test_nifti_and_h5_sources_read_the_same_volume(tmp_path):
    images, seg = helpers.write_case(tmp_path / "nifti" / "case_a", "case_a")
    helpers.write_h5_volume(tmp_path / "h5", 7, images, seg)
    from_nifti = VolumeSource.from_nifti(io.find_cases(tmp_path / "nifti", require_seg=True))[0]
    from_h5 = VolumeSource.from_h5(io.find_h5_volumes(tmp_path / "h5"))[0]
    assert from_h5.case_id == "volume_7" and from_nifti.case_id == "case_a"
    expected_image = np.stack([images[m] for m in io.MODALITIES]).astype(np.float32)
    for volume in (from_nifti, from_h5):
        assert np.array_equal(volume.image, expected_image)
        assert np.array_equal(volume.classes, labels.to_contiguous(seg))
        assert not volume.normalised


def test_cache_source_reads_normalised_memmaps(tmp_path):
    helpers.write_case(tmp_path / "nifti" / "case_a", "case_a")
    build.precache(nifti_sources(tmp_path / "nifti"), tmp_path / "cache", workers=1, progress=False)
    source = VolumeSource.from_cache(tmp_path / "cache")
    volume = source[0]
    assert source.case_ids == ("case_a",) and volume.normalised
    assert isinstance(volume.image, np.memmap) and volume.image.dtype == np.float16
    case = io.load_case(io.find_cases(tmp_path / "nifti")[0])
    assert np.allclose(volume.image, preprocess.zscore_brain(case.image), atol=1e-2)


def test_check_volume_names_the_case_in_errors():
    image, classes = _volume(0)
    check_volume(Volume("case_0", image, classes))
    with pytest.raises(DataError, match="case_0: expected image"):
        check_volume(Volume("case_0", image[0], classes))
    with pytest.raises(DataError, match="case_0: expected image"):
        check_volume(Volume("case_0", image, classes[:-1]))
    with pytest.raises(DataError, match="case_0: classes must be integers"):
        check_volume(Volume("case_0", image, classes.astype(np.float32)))


def test_volume_from_case_maps_brats_labels_to_classes():
    image, _ = _volume(0)
    seg = np.zeros(image.shape[1:], np.uint8)
    seg[1, 1, 1], seg[2, 2, 2] = 4, 2
    made = _volume_from_case(io.Case("c", image, seg, np.eye(4)))
    assert made.case_id == "c" and made.classes[1, 1, 1] == 3 and made.classes[2, 2, 2] == 2 and not made.normalised
    with pytest.raises(DataError, match="needs a segmentation"):
        _volume_from_case(io.Case("c", image, None, np.eye(4)))


def test_a_cached_case_without_labels_cannot_be_a_training_volume(tmp_path):
    helpers.write_case(tmp_path / "nifti" / "case_a", "case_a", seg_name=None)
    build.precache(nifti_sources(tmp_path / "nifti"), tmp_path / "cache", workers=1, progress=False)
    with pytest.raises(DataError, match="case_a has no labels"):
        VolumeSource.from_cache(tmp_path / "cache")[0]
