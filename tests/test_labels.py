import numpy as np
import pytest

from braintools.data import labels
from braintools.errors import DataError


def test_contiguous_round_trip_brats2020():
    seg = np.array([[0, 1], [2, 4]], dtype=np.uint8)
    classes = labels.to_contiguous(seg)
    assert classes.tolist() == [[0, 1], [2, 3]]
    assert labels.from_contiguous(classes).tolist() == seg.tolist()


def test_contiguous_round_trip_brats2023():
    seg = np.array([0, 1, 2, 3])
    classes = labels.to_contiguous(seg, labels.BRATS2023)
    assert classes.tolist() == [0, 1, 2, 3]
    assert labels.from_contiguous(classes, labels.BRATS2023).tolist() == [0, 1, 2, 3]


def test_label_3_is_rejected_in_brats2020_and_4_in_brats2023():
    with pytest.raises(DataError, match=r"case_7_seg.nii.*\[3\]"):
        labels.validate_labels(np.array([0, 1, 3]), source="case_7_seg.nii")
    with pytest.raises(DataError, match=r"\[4\]"):
        labels.validate_labels(np.array([0, 4]), labels.BRATS2023)


def test_int16_and_integral_float_segs_are_accepted():
    labels.validate_labels(np.array([0, 1, 2, 4], dtype=np.int16))
    labels.validate_labels(np.array([0.0, 4.0]))
    with pytest.raises(DataError, match="non-integer"):
        labels.validate_labels(np.array([0.5]))


def test_from_contiguous_rejects_out_of_range():
    with pytest.raises(DataError):
        labels.from_contiguous(np.array([0, 4]))


def test_h5_mask_round_trip_and_channel_meaning():
    seg = np.array([[0, 1, 2, 4]], dtype=np.uint8)
    mask = labels.labels_to_h5_mask(seg)
    assert mask.shape == (1, 4, 3) and mask.dtype == np.uint8
    assert mask[0, 1].tolist() == [1, 0, 0]  # NCR
    assert mask[0, 2].tolist() == [0, 1, 0]  # ED
    assert mask[0, 3].tolist() == [0, 0, 1]  # ET
    assert labels.h5_mask_to_labels(mask).tolist() == seg.tolist()


def test_h5_mask_overlap_and_shape_errors():
    with pytest.raises(DataError, match="overlap"):
        labels.h5_mask_to_labels(np.array([[1, 1, 0]], dtype=np.uint8))
    with pytest.raises(DataError, match="3 channels"):
        labels.h5_mask_to_labels(np.zeros((2, 2, 4), dtype=np.uint8))


def test_regions_follow_brats_definitions():
    seg = np.array([0, 1, 2, 4])
    wt, tc, et = labels.regions_from_labels(seg)
    assert wt.tolist() == [False, True, True, True]
    assert tc.tolist() == [False, True, False, True]
    assert et.tolist() == [False, False, False, True]
    assert labels.regions_from_classes(np.array([0, 1, 2, 3])).tolist() == [wt.tolist(), tc.tolist(), et.tolist()]


def test_convention_values():
    assert labels.BRATS2020.values == (0, 1, 2, 4)
    assert labels.BRATS2023.values == (0, 1, 2, 3)
