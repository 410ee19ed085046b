"""A cache cropped to the brain box: lossless, smaller, recorded in the manifest, and read correctly everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from test_cache import make_volume, write_h5_volume, write_nifti_case

from braintools.cache import build, store, verify
from braintools.cache.sources import h5_sources, nifti_sources
from braintools.data import io, splits
from braintools.data.preprocess import bounding_box, brain_mask, uncrop
from braintools.datasets.patches3d import PatchDataset3D
from braintools.datasets.slices2d import SliceDataset, select_slices, summarise_source
from braintools.datasets.volumes import VolumeSource
from braintools.errors import DataError
from braintools.profiles import PROFILES

GRID = (40, 36, 16)
OFFSET = (7, 12, 3)  # where the brain-like volume sits in the grid: off centre, zeros around it


def off_centre_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A brain-like case (``test_cache.make_volume``) placed off centre in a larger all-zero grid."""
    image, seg = make_volume(seed, shape=(24, 20, 10))
    window = tuple(slice(start, start + size) for start, size in zip(OFFSET, seg.shape))
    full_image, full_seg = np.zeros((4,) + GRID, np.float32), np.zeros(GRID, np.uint8)
    full_image[(slice(None), *window)], full_seg[window] = image, seg
    return full_image, full_seg


@pytest.fixture
def nifti_tree(tmp_path) -> Path:
    root = tmp_path / "nii"
    for number in (1, 2):
        write_nifti_case(root / f"case_{number}", f"case_{number}", *off_centre_case(number))
    return root


def inside_grid(shape) -> bool:
    """True when every axis of ``shape`` is shorter than the grid's."""
    return all(size < grid for size, grid in zip(shape, GRID))


def precache(root: Path, folder: Path, crop: bool) -> build.PrecacheReport:
    return build.precache(nifti_sources(root), folder, workers=1, progress=False, crop=crop)


def test_cropped_cache_is_lossless_smaller_and_records_its_box(nifti_tree, tmp_path):
    precache(nifti_tree, tmp_path / "full", crop=False)
    report = precache(nifti_tree, tmp_path / "cropped", crop=True)
    assert report.converted == ["case_1", "case_2"] and report.crop
    for case_id in ("case_1", "case_2"):
        full_image, full_labels = store.load_cached_case(tmp_path / "full", case_id, mmap=False)
        image, labels = store.load_cached_case(tmp_path / "cropped", case_id, mmap=False)
        box = store.cached_box(tmp_path / "cropped", case_id)
        # the box is the smallest one holding the brain: nothing outside it, something on each face
        assert box == bounding_box(brain_mask(full_image))
        assert image.shape == (4, *(part.stop - part.start for part in box)) and inside_grid(image.shape[1:])
        np.testing.assert_array_equal(image, full_image[(slice(None), *box)])
        np.testing.assert_array_equal(labels, full_labels[box])
        again_image, again_labels = store.load_cached_case(tmp_path / "cropped", case_id, full_grid=True)
        np.testing.assert_array_equal(again_image, full_image)  # lossless: the whole scan comes back
        np.testing.assert_array_equal(again_labels, full_labels)
        entry = store.read_manifest(tmp_path / "cropped")["cases"][case_id]
        assert entry["cropped"] is True and entry["grid"] == list(GRID)
        assert entry["box"] == [[part.start, part.stop] for part in box]
        uncropped_entry = store.read_manifest(tmp_path / "full")["cases"][case_id]
        assert uncropped_entry["box"] == [[0, size] for size in GRID] and uncropped_entry["cropped"] is False
        assert entry["image"]["bytes"] < 0.6 * uncropped_entry["image"]["bytes"]
        assert store.cached_box(tmp_path / "full", case_id) == tuple(slice(0, size) for size in GRID)
    assert verify.verify_cache(nifti_sources(nifti_tree), tmp_path / "cropped", workers=1, progress=False) == {}


def test_the_box_keeps_labels_outside_the_brain(tmp_path):
    image, seg = off_centre_case(3)
    seg[1, 1, 1] = 2  # a labelled voxel where every channel is zero (one real BraTS 2018 case has one)
    write_nifti_case(tmp_path / "nii" / "case_3", "case_3", image, seg)
    precache(tmp_path / "nii", tmp_path / "cache", crop=True)
    box = store.cached_box(tmp_path / "cache", "case_3")
    assert [part.start for part in box] == [1, 1, 1]
    _, labels = store.load_cached_case(tmp_path / "cache", "case_3", full_grid=True)
    np.testing.assert_array_equal(labels, store.cached_arrays(io.load_case(
        io.find_cases(tmp_path / "nii")[0]))[1])
    assert verify.verify_cache(nifti_sources(tmp_path / "nii"), tmp_path / "cache", workers=1,
                              progress=False) == {}


def test_a_box_that_cuts_off_brain_fails_verification(nifti_tree, tmp_path):
    folder = tmp_path / "cropped"
    precache(nifti_tree, folder, crop=True)
    manifest = store.read_manifest(folder)
    entry = manifest["cases"]["case_1"]
    image, labels = store.load_cached_case(folder, "case_1", mmap=False)
    (x0, x1), *rest = entry["box"]
    store._save_npy(folder / "case_1_image.npy", np.ascontiguousarray(image[:, 1:]))  # one X plane of brain lost
    store._save_npy(folder / "case_1_labels.npy", np.ascontiguousarray(labels[1:]))
    for key, array in (("image", image[:, 1:]), ("labels", labels[1:])):
        entry[key].update(shape=list(array.shape), bytes=(folder / entry[key]["file"]).stat().st_size,
                          sha256=store.file_sha256(folder / entry[key]["file"]))
    entry["box"] = [[x0 + 1, x1], *rest]
    store.write_manifest(folder, manifest)
    problems = verify.verify_cache(nifti_sources(nifti_tree), folder, workers=1, progress=False,
                                  raise_on_failure=False)
    assert list(problems) == ["case_1"] and "differ from the z-scored source" in problems["case_1"]


def test_a_manifest_box_that_does_not_hold_the_arrays_is_a_data_error(nifti_tree, tmp_path):
    folder = tmp_path / "cropped"
    precache(nifti_tree, folder, crop=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["cases"]["case_2"]["box"][0][1] += 1  # one voxel wider than the stored arrays
    store.write_manifest(folder, manifest)
    with pytest.raises(DataError, match=r"manifest.json: case_2 has box .* does not hold its stored arrays"):
        store.load_cached_case(folder, "case_2")
    with pytest.raises(DataError, match="does not hold"):
        store.cached_box(folder, "case_2")


def test_changing_the_crop_setting_converts_again(nifti_tree, tmp_path):
    folder = tmp_path / "cache"
    assert precache(nifti_tree, folder, crop=False).converted == ["case_1", "case_2"]
    assert precache(nifti_tree, folder, crop=True).converted == ["case_1", "case_2"]
    assert precache(nifti_tree, folder, crop=True).skipped == ["case_1", "case_2"]
    assert inside_grid(store.load_cached_case(folder, "case_1")[0].shape[1:])
    assert precache(nifti_tree, folder, crop=False).converted == ["case_1", "case_2"]
    assert store.load_cached_case(folder, "case_1")[0].shape[1:] == GRID


def test_an_entry_written_before_boxes_existed_reads_as_uncropped(nifti_tree, tmp_path):
    folder = tmp_path / "cache"
    precache(nifti_tree, folder, crop=False)
    manifest = store.read_manifest(folder)
    for entry in manifest["cases"].values():
        for key in ("box", "grid", "cropped"):
            del entry[key]
    store.write_manifest(folder, manifest)
    assert store.cached_box(folder, "case_1") == tuple(slice(0, size) for size in GRID)
    assert precache(nifti_tree, folder, crop=False).skipped == ["case_1", "case_2"]  # still up to date
    assert verify.verify_cache(nifti_sources(nifti_tree), folder, workers=1, progress=False) == {}


def test_hdf5_sources_crop_too(tmp_path):
    image, seg = off_centre_case(5)
    write_h5_volume(tmp_path / "h5", 5, image, seg)
    build.precache(h5_sources(tmp_path / "h5"), tmp_path / "cache", workers=1, progress=False, crop=True)
    stored, _ = store.load_cached_case(tmp_path / "cache", "volume_5")
    box = bounding_box(brain_mask(image))
    assert store.cached_box(tmp_path / "cache", "volume_5") == box and inside_grid(stored.shape[1:])
    assert verify.verify_cache(h5_sources(tmp_path / "h5"), tmp_path / "cache", workers=1, progress=False) == {}


def test_precache_never_reads_the_profile_from_the_environment(nifti_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "kaggle")  # a cropping profile: it must play no part here
    assert PROFILES["kaggle"].crop_cache and not PROFILES["course"].crop_cache and not PROFILES["ci"].crop_cache
    report = build.precache(nifti_sources(nifti_tree), tmp_path / "cache", progress=False)
    assert not report.crop and report.workers == 1  # the defaults are the arguments', whatever the environment says
    assert store.load_cached_case(tmp_path / "cache", "case_1")[0].shape[1:] == nib.load(
        next(nifti_tree.rglob("case_1_t1.nii*"))).shape


def test_training_datasets_read_a_cropped_cache(nifti_tree, tmp_path):
    precache(nifti_tree, tmp_path / "full", crop=False)
    precache(nifti_tree, tmp_path / "cropped", crop=True)
    full, cropped = VolumeSource.from_cache(tmp_path / "full"), VolumeSource.from_cache(tmp_path / "cropped")
    # where the cropped arrays sit in the scan: stored voxel + origin = scan voxel
    for whole, part in zip(full, cropped):
        assert whole.origin == (0, 0, 0) and part.origin == tuple(
            box.start for box in store.cached_box(tmp_path / "cropped", part.case_id))
        x, y, z = np.argwhere(np.asarray(part.classes) > 0)[0]
        assert whole.classes[x + part.origin[0], y + part.origin[1], z + part.origin[2]] == part.classes[x, y, z]
        assert part.origin[2] > 0  # the off-centre case starts above the grid's first slice
    # 2D: the same slices carry the same tumour, padded to the network size
    summaries = {name: summarise_source(source, progress=False) for name, source in
                 (("full", full), ("cropped", cropped))}
    assert [s.tumour_voxels for s in summaries["full"]] == [s.tumour_voxels for s in summaries["cropped"]]
    slices = select_slices(summaries["cropped"], keep_empty_fraction=1.0)
    assert len(slices) == len(select_slices(summaries["full"], keep_empty_fraction=1.0))
    image, classes = SliceDataset(cropped, slices, image_size=48)[0]
    assert image.shape == (4, 48, 48) and classes.shape == (48, 48)
    # 3D: patches larger than the brain box are padded with zeros; tumour-centred ones hold the tumour
    box_shape = cropped[0].image.shape[1:]
    patch_size = (32, 32, 16)
    assert any(p > n for p, n in zip(patch_size, box_shape))
    dataset = PatchDataset3D(cropped, patch_size, patches_per_epoch=6, tumour_probability=1.0, augment=False)
    tumour_in_volumes = [int((volume.classes > 0).sum()) for volume in cropped]
    for item in range(len(dataset)):
        patch, patch_classes = dataset[item]
        assert patch.shape == (4, *patch_size) and patch_classes.dtype == torch.uint8
        # the whole (small) brain fits in the patch: every tumour voxel of the volume is in it
        assert int((patch_classes > 0).sum()) == tumour_in_volumes[item % 2]


def test_uncrop_puts_a_crop_back():
    full = np.arange(2 * 5 * 4 * 3).reshape(2, 5, 4, 3)
    box = (slice(1, 4), slice(0, 2), slice(2, 3))
    restored = uncrop(full[(slice(None), *box)], box, (5, 4, 3))
    assert restored.shape == full.shape and restored.dtype == full.dtype
    np.testing.assert_array_equal(restored[(slice(None), *box)], full[(slice(None), *box)])
    assert restored.sum() == full[(slice(None), *box)].sum()  # zeros everywhere else


def test_spread_evenly_mixes_the_whole_list():
    assert splits.spread_evenly(list(range(369)), 60)[:3] == [0, 6, 12]
    assert len(set(splits.spread_evenly(list(range(369)), 60))) == 60
    assert splits.spread_evenly(["a", "b"], 5) == ["a", "b"] and splits.spread_evenly([1, 2, 3], None) == [1, 2, 3]


def test_real_cases_crop_to_about_a_third(real_sample_dir, tmp_path):
    sources = nifti_sources(real_sample_dir)[:2]
    report = build.precache(sources, tmp_path / "cache", workers=1, progress=False, crop=True)
    assert sorted(report.converted) == sorted(source.case_id for source in sources)
    manifest = store.read_manifest(tmp_path / "cache")
    for source in sources:
        entry = manifest["cases"][source.case_id]
        stored, grid = np.prod(entry["image"]["shape"][1:]), np.prod(entry["grid"])
        assert 0.2 < stored / grid < 0.5, f"{source.case_id}: the brain box holds {stored / grid:.0%} of the grid"
    assert verify.verify_cache(sources, tmp_path / "cache", workers=1, progress=False) == {}
