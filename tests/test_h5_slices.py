"""Notebook 04 trains on the HDF5 slices: volumes paired with their NIfTI cases, turned to their orientation, and only
the parts of the split that are asked for (never a test patient)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import toy_case, write_nifti

from braintools import course
from braintools.cache import build, store
from braintools.cache.sources import h5_sources, nifti_sources
from braintools.data import download, io, labels, splits
from braintools.datasets.volumes import VolumeSource
from braintools.errors import DataError
from braintools.profiles import get_profile
from braintools.synthetic.layout import write_h5_volume

FLAIR_FIRST = ("flair", "t1", "t1ce", "t2")  # not the package default: the inferred order must be the one used


def test_match_in_plane_names_the_view_and_apply_in_plane_undoes_it():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 4, (6, 6, 3))
    for name, view in (("as stored", reference), ("transposed", reference.swapaxes(0, 1)),
                       ("flipped along axis 0", reference[::-1]),
                       ("transposed, flipped along axis 1", reference.swapaxes(0, 1)[:, ::-1])):
        stored = np.ascontiguousarray(view)  # what the other copy holds
        found = download.match_in_plane(stored, reference)
        assert np.array_equal(download.apply_in_plane(stored, found), reference), name
    assert download.match_in_plane(rng.integers(0, 4, (6, 6, 3)), reference) is None
    assert download.match_in_plane(reference[:5], reference) is None  # another shape never matches
    with pytest.raises(ValueError, match="unknown in-plane mapping"):
        download.apply_in_plane(reference, "upside down")


def test_from_cache_as_renames_and_turns_cached_volumes(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.uniform(50, 500, (4, 10, 10, 4)).astype(np.float32)
    seg = rng.choice(np.array([0, 1, 2, 4], np.uint8), (10, 10, 4))
    stored_image, stored_seg = image.swapaxes(1, 2)[:, ::-1], seg.swapaxes(0, 1)[::-1]  # transposed, then flipped
    write_h5_volume(dict(zip(io.MODALITIES, np.ascontiguousarray(stored_image))),
                              np.ascontiguousarray(stored_seg), tmp_path / "h5", 7)
    cache_dir = tmp_path / "cache"
    build.precache(h5_sources(tmp_path / "h5"), cache_dir, workers=1, progress=False)
    plain, classes = VolumeSource.from_cache(cache_dir)[0], labels.to_contiguous(seg)
    mapping = download.match_in_plane(plain.classes, classes)
    assert mapping == "transposed, flipped along axis 1"  # flip axis 0 then transpose = transpose then flip axis 1
    renamed = VolumeSource.from_cache_as(cache_dir, {"BraTS20_Training_007": "volume_7"},
                                         {"BraTS20_Training_007": mapping})
    volume = renamed[0]
    assert renamed.case_ids == ("BraTS20_Training_007",) and volume.case_id == "BraTS20_Training_007"
    assert volume.normalised and volume.image.shape == (4, 10, 10, 4)
    assert np.array_equal(volume.classes, classes)
    np.testing.assert_array_equal(volume.image, download.apply_in_plane(
        np.moveaxis(np.asarray(plain.image), 0, -1), mapping).transpose(3, 0, 1, 2))
    with pytest.raises(DataError, match="not cached"):
        VolumeSource.from_cache_as(cache_dir, {"BraTS20_Training_008": "volume_8"})


def _world(root):
    """Toy NIfTI cases 1-6 and HDF5 volumes (FLAIR first) of 1-5 and 7: volume 2 stored transposed, volume 5 with
    another patient's labels, case 6 without HDF5 volume, volume 7 without NIfTI case."""
    nifti_train, h5_dir = root / "nifti", root / "h5"
    for number in range(1, 8):
        image, seg = toy_case(seed=number)
        image, seg = np.roll(image, 2 * number, axis=1), np.roll(seg, 2 * number, axis=0)  # tumours differ, and
        # are not symmetric under a transpose
        image = image.astype(np.int16)  # both copies hold the same int16 values, as on Kaggle
        if number <= 6:
            case_id = f"BraTS20_Training_{number:03d}"
            for channel, modality in enumerate(io.MODALITIES):
                write_nifti(nifti_train / case_id / f"{case_id}_{modality}.nii", image[channel])
            write_nifti(nifti_train / case_id / f"{case_id}_seg.nii", seg)
        if number == 6:
            continue
        if number == 2:
            image, seg = image.swapaxes(1, 2), seg.swapaxes(0, 1)
        if number == 5:
            seg = np.roll(seg, 3, axis=0)
        write_h5_volume(dict(zip(io.MODALITIES, np.ascontiguousarray(image))), np.ascontiguousarray(seg),
                                  h5_dir, number, channel_order=FLAIR_FIRST)
    cases = {files.case_id: files for files in io.find_cases(nifti_train, require_seg=True)}
    split = splits.PatientSplit(train=tuple(f"BraTS20_Training_00{n}" for n in (1, 2, 5, 6)),
                                val=("BraTS20_Training_003",), test=("BraTS20_Training_004",))
    cache_dir = root / "nifti_cache"
    report = build.precache(nifti_sources(nifti_train, require_seg=True), cache_dir, workers=1, progress=False)
    data = download.DataPaths("synthetic", nifti_train, None, h5_dir, None)
    return course.CourseData(get_profile("ci"), data, cases, split, cache_dir, report)


def test_prepare_h5_slices_pairs_volumes_with_the_split_and_never_reads_a_test_patient(tmp_path):
    world = _world(tmp_path)
    h5_cache = tmp_path / "h5_cache"
    h5 = course.prepare_h5_slices(world, progress=False, cache_dir=h5_cache, nifti_fallback=False)
    assert h5.vote.order == FLAIR_FIRST
    assert h5.ids("train") == ["BraTS20_Training_001", "BraTS20_Training_002"]
    assert h5.ids("val") == ["BraTS20_Training_003"] and h5.ids("test") == []
    notes = dict(zip(h5.table["volume"], h5.table["note"]))
    assert notes["volume_4"] == "test patient" and notes["volume_7"] == "no NIfTI case"
    assert notes["volume_5"] == "labels differ from the NIfTI case"
    assert "volume_4" not in store.cached_case_ids(h5_cache)  # the test patient's slices are not even cached
    assert dict(zip(h5.table["volume"], h5.table["in_plane"]))["volume_2"] == "transposed"
    for case_id in ("BraTS20_Training_001", "BraTS20_Training_002"):  # NIfTI orientation and channel order
        volume = h5.source.subset([case_id])[0]
        nifti_image, nifti_labels = store.load_cached_case(world.cache_dir, case_id)
        assert np.array_equal(volume.classes, nifti_labels)
        assert np.array_equal(volume.image, nifti_image)
    assert "2 train, 1 val" in h5.describe() and "1 test patient" in h5.describe()


def test_prepare_h5_slices_needs_the_nifti_cache(tmp_path):
    world = _world(tmp_path)
    world.cache_report = None  # prepare_data(profile, cache_cases=False)
    with pytest.raises(ValueError, match="NIfTI npy cache"):
        course.prepare_h5_slices(world, cache_dir=tmp_path / "h5_cache")


def test_patients_without_a_usable_hdf5_volume_come_from_the_nifti_cache(tmp_path):
    world = _world(tmp_path)
    h5 = course.prepare_h5_slices(world, cache_dir=tmp_path / "h5_cache")
    assert h5.ids("train") == ["BraTS20_Training_001", "BraTS20_Training_002", "BraTS20_Training_005",
                               "BraTS20_Training_006"]  # 5: labels differ, 6: no volume; in the split's order
    assert h5.nifti_fallback == ("BraTS20_Training_005", "BraTS20_Training_006") and h5.ids("test") == []
    image, labels_ = store.load_cached_case(world.cache_dir, "BraTS20_Training_005")
    volume = h5.source.subset(["BraTS20_Training_005"])[0]
    assert np.array_equal(volume.image, image) and np.array_equal(volume.classes, labels_)
    assert "2 patients without a usable HDF5 volume are read from the NIfTI cache" in h5.describe()
    with pytest.raises(ValueError, match="more than one source"):
        VolumeSource.join(h5.source, h5.source)


def test_a_budget_of_hdf5_volumes_keeps_the_cached_ones_and_reads_the_rest_from_the_nifti_cache(tmp_path):
    world = _world(tmp_path)
    full = course.prepare_h5_slices(world, cache_dir=tmp_path / "all", max_volumes=None)
    usable = sorted(full.table.loc[full.table["used"], "volume"])
    assert len(usable) == 3  # train 1, 2 and val 3 (5: labels differ, found once cached; 6: no volume; 4: test)
    h5 = course.prepare_h5_slices(world, cache_dir=tmp_path / "all", max_volumes=1)
    kept = sorted(h5.table.loc[h5.table["used"], "volume"])
    assert len(kept) == 1 and kept[0] in usable  # one already cached volume is kept
    capped = h5.table[h5.table["note"].fillna("").str.startswith("over the profile's HDF5 budget of 1 volumes")]
    assert len(capped) == 3  # of the 4 candidates (1, 2, 3, 5) before their labels were compared
    from_h5 = set(h5.table.loc[h5.table["used"], "case_id"])
    assert set(h5.nifti_fallback) == set(world.split.train + world.split.val) - from_h5 and len(from_h5) == 1
    assert sorted(h5.ids("train") + h5.ids("val")) == sorted(world.split.train + world.split.val)
    course.prepare_h5_slices(world, cache_dir=tmp_path / "fresh", max_volumes=2)
    assert len(store.cached_case_ids(tmp_path / "fresh")) == 2  # nothing over the budget is converted
    assert world.profile.h5_volumes_2d is None and get_profile("kaggle").h5_volumes_2d == 150
