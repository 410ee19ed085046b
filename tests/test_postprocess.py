"""Post-processing of contiguous class maps: small components, holes, the tiny-ET rule, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from braintools.inference.postprocess import (
    _fill_holes,
    _region_mask,
    _relabel_tiny_enhancing,
    _remove_small_components,
    postprocess_classes,
    remove_rim_components,
)


def tumour_with_speck() -> np.ndarray:
    """A 4-voxel-deep tumour (ED shell, NCR core, an ET voxel) and a separate 1-voxel ED speck."""
    classes = np.zeros((12, 12, 8), dtype=np.uint8)
    classes[2:8, 2:8, 2:6] = 2
    classes[4:6, 4:6, 3:5] = 1
    classes[4, 4, 3] = 3
    classes[10, 10, 7] = 2
    return classes


def test_region_mask():
    classes = np.array([0, 1, 2, 3])
    assert _region_mask(classes, "WT").tolist() == [False, True, True, True]
    assert _region_mask(classes, "TC").tolist() == [False, True, False, True]
    assert _region_mask(classes, "ET").tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="region"):
        _region_mask(classes, "NCR")


def test_remove_small_whole_tumour_components():
    classes = tumour_with_speck()
    before = classes.copy()
    cleaned = _remove_small_components(classes, min_size=2)
    assert cleaned[10, 10, 7] == 0
    assert np.array_equal(cleaned[:9], classes[:9])  # the big tumour is untouched
    assert np.array_equal(classes, before) and cleaned.dtype == np.uint8  # input not modified


def test_removed_sub_regions_fall_back_to_the_enclosing_class():
    classes = tumour_with_speck()
    no_et = _remove_small_components(classes, min_size=2, region="ET")
    assert no_et[4, 4, 3] == 1  # ET -> NCR: the voxel stays in the tumour core
    no_tc = _remove_small_components(classes, min_size=100, region="TC")
    assert not _region_mask(no_tc, "TC").any()
    assert np.array_equal(_region_mask(no_tc, "WT"), _region_mask(classes, "WT"))  # TC -> edema, WT unchanged


def test_connectivity_decides_what_is_one_component():
    diagonal = np.zeros((3, 3), dtype=np.uint8)
    diagonal[0, 0] = diagonal[1, 1] = 2
    assert _remove_small_components(diagonal, min_size=2).sum() == 4  # corners touch: one component of 2
    assert _remove_small_components(diagonal, min_size=2, connectivity=1).sum() == 0  # faces only: two of 1


def test_min_size_zero_keeps_everything():
    classes = tumour_with_speck()
    assert np.array_equal(_remove_small_components(classes, 0), classes)


def test_fill_holes_of_whole_tumour_and_core():
    classes = tumour_with_speck()
    classes[3, 3, 3] = 0  # a background cavity inside the edema
    classes[4, 5, 4] = 2  # an edema voxel inside the core: not a hole of TC (it reaches the core's border)
    filled = _fill_holes(classes, "WT")
    assert filled[3, 3, 3] == 2 and classes[3, 3, 3] == 0
    assert filled[0, 0, 0] == 0  # outside stays background
    assert _fill_holes(classes, "TC")[4, 5, 4] == 2
    core = np.zeros((5, 5, 5), dtype=np.uint8)
    core[1:4, 1:4, 1:4] = 1
    core[2, 2, 2] = 2
    assert _fill_holes(core, "TC")[2, 2, 2] == 1
    with pytest.raises(ValueError, match="ET holes are necrosis"):
        _fill_holes(core, "ET")


def test_relabel_tiny_enhancing():
    classes = tumour_with_speck()
    relabelled = _relabel_tiny_enhancing(classes, min_et_voxels=2)
    assert not (relabelled == 3).any() and relabelled[4, 4, 3] == 1
    assert np.array_equal(_region_mask(relabelled, "TC"), _region_mask(classes, "TC"))
    assert np.array_equal(_relabel_tiny_enhancing(classes, min_et_voxels=1), classes)  # 1 voxel is not < 1
    no_et = _relabel_tiny_enhancing(np.zeros((2, 2), dtype=np.uint8), 10)
    assert not no_et.any()


def test_postprocess_pipeline_order_and_options():
    classes = tumour_with_speck()
    classes[3, 3, 3] = 0
    cleaned = postprocess_classes(classes, min_component_size=2, fill_holes_in=("WT",), min_et_voxels=5)
    expected = _relabel_tiny_enhancing(_fill_holes(_remove_small_components(classes, 2), "WT"), 5)
    assert np.array_equal(cleaned, expected)
    assert np.array_equal(postprocess_classes(classes), classes)
    per_region = postprocess_classes(classes, min_component_size={"ET": 2})
    assert per_region[4, 4, 3] == 1 and per_region[10, 10, 7] == 2
    with pytest.raises(ValueError, match="unknown regions"):
        postprocess_classes(classes, min_component_size={"NCR": 2})


@pytest.mark.parametrize("bad", [np.array([0, 4]), np.array([0.5, 1.0]), np.array([-1, 0])])
def test_bad_class_maps_are_rejected(bad):
    with pytest.raises(ValueError, match="classes"):
        _remove_small_components(bad, 1)


def test_negative_thresholds_are_rejected():
    with pytest.raises(ValueError, match="min_size"):
        _remove_small_components(np.zeros(3, dtype=np.uint8), -1)
    with pytest.raises(ValueError, match="min_et_voxels"):
        _relabel_tiny_enhancing(np.zeros(3, dtype=np.uint8), -1)


def test_keep_largest_component_drops_the_smaller_blobs():
    from braintools.inference.postprocess import keep_largest_component

    classes = np.zeros((12, 6, 6), np.uint8)
    classes[1:5, 1:5, 1:5] = 2
    classes[2:4, 2:4, 2:4] = 3  # inside the big lesion: kept
    classes[8:10, 1:3, 1:3] = 1  # a separate small blob
    kept = keep_largest_component(classes)
    assert not kept[8:10].any() and np.array_equal(kept[:6], classes[:6])
    core = keep_largest_component(classes, "TC")  # the small NCR blob leaves the core, stays in the tumour
    assert np.all(core[8:10, 1:3, 1:3] == 2)
    one = keep_largest_component(classes[:6])
    assert np.array_equal(one, classes[:6]) and one is not classes


def test_rim_components_are_dropped_and_deep_tumours_kept_even_when_they_touch_the_surface():
    brain = np.zeros((30, 30, 30), bool)
    brain[2:28, 2:28, 2:28] = True
    classes = np.zeros(brain.shape, np.uint8)
    classes[2:5, 22:25, 22:25] = 2  # a small blob on the surface (a false alarm at the cortex)
    classes[8:20, 8:20, 8:20] = 2  # a tumour deep inside ...
    classes[3:8, 12:14, 12:14] = 2  # ... that reaches the surface through a thin extension
    classes[12:16, 12:16, 12:16] = 3
    cleaned = remove_rim_components(classes, brain, rim_voxels=3)
    assert not cleaned[2:5, 22:25, 22:25].any()  # the surface blob, not connected to the tumour, is gone
    np.testing.assert_array_equal(cleaned[8:20, 8:20, 8:20], classes[8:20, 8:20, 8:20])
    assert cleaned[3, 12, 12] == 2  # the tumour's extension to the surface stays with it
    thin_rim = remove_rim_components(classes, brain, rim_voxels=1)  # only a third of the blob lies that close
    np.testing.assert_array_equal(thin_rim, classes)
    with pytest.raises(ValueError, match="differ in shape"):
        remove_rim_components(classes, brain[:-1])
    with pytest.raises(ValueError, match="min_rim_fraction"):
        remove_rim_components(classes, brain, min_rim_fraction=0)
