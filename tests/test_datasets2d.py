"""2D slice datasets over volume sources (in-memory arrays, NIfTI, HDF5, npy cache)."""

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from braintools.data import io, preprocess, splits
from braintools.datasets import augment, slices2d
from braintools.datasets.volumes import VolumeSource


def _volume(seed, shape=(4, 20, 18, 6), tumour_slices=(2, 3)):
    """Brain-like image (zero background, positive intensities) and classes with tumour on some slices."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    image[:, 3:17, 3:15, 1:5] = rng.uniform(100, 500, (shape[0], 14, 12, 4))
    classes = np.zeros(shape[1:], np.uint8)
    for z in tumour_slices:
        classes[6:10, 6:9, z] = 2
        classes[7:9, 7, z] = 3
    return image, classes


def _source(n=5, normalised=False):
    return VolumeSource.from_arrays(
        [(f"case_{i}", *_volume(i, tumour_slices=(2,) if i % 2 else (2, 3))) for i in range(n)], normalised
    )


def test_summary_and_slice_selection():
    source = _source(2)
    summaries = slices2d.summarise_source(source, progress=False)
    assert summaries[0].tumour_pixels.tolist() == [0, 0, 12, 12, 0, 0]
    assert summaries[0].brain_pixels.tolist() == [0, 168, 168, 168, 168, 0]
    assert summaries[1].tumour_voxels == 12
    tumour_only = slices2d.select_slices(summaries, keep_empty_fraction=0.0)
    assert tumour_only == [(0, 2), (0, 3), (1, 2)]
    everything = slices2d.select_slices(summaries, keep_empty_fraction=1.0)
    assert everything == [(v, z) for v in range(2) for z in range(1, 5)]  # blank slices 0 and 5 dropped
    with_blank = slices2d.select_slices(summaries, keep_empty_fraction=1.0, drop_blank=False)
    assert len(with_blank) == 12
    half = slices2d.select_slices(summaries, keep_empty_fraction=0.5, seed=1)
    assert set(tumour_only) < set(half) and len(half) == 3 + 2
    assert half == slices2d.select_slices(summaries, keep_empty_fraction=0.5, seed=1)
    with pytest.raises(ValueError, match="keep_empty_fraction"):
        slices2d.select_slices(summaries, keep_empty_fraction=1.5)


def test_pad_or_crop_round_trip():
    array = np.random.default_rng(0).normal(size=(4, 240, 240))
    padded = slices2d._pad_or_crop(array, 256)
    assert padded.shape == (4, 256, 256)
    assert np.array_equal(padded[:, 8:248, 8:248], array) and padded[:, :8].sum() == 0
    assert np.array_equal(slices2d._pad_or_crop(padded, 240), array)
    odd = slices2d._pad_or_crop(np.ones((5, 7)), (8, 4))
    assert odd.shape == (8, 4) and odd[0].sum() == 0 and odd[1:6].sum() == 20
    assert np.array_equal(slices2d._pad_or_crop(odd, (5, 7))[:, 1:5], np.ones((5, 4)))


def test_slice_dataset_normalises_and_pads():
    source = _source(2)
    dataset = slices2d.SliceDataset(source, [(1, 2), (0, 3)], image_size=32)
    assert len(dataset) == 2
    image, classes = dataset[1]
    assert image.shape == (4, 32, 32) and image.dtype == torch.float32
    assert classes.shape == (32, 32) and classes.dtype == torch.int64
    raw, truth = _volume(0)
    expected = slices2d._pad_or_crop(preprocess.zscore_brain(raw)[..., 3], 32)
    assert np.allclose(image.numpy(), expected, atol=1e-6)
    assert np.array_equal(classes.numpy(), slices2d._pad_or_crop(truth[..., 3], 32))


def test_normalised_sources_are_not_normalised_again():
    raw, truth = _volume(0)
    source = VolumeSource.from_arrays([("a", raw, truth)], normalised=True)
    image, _ = slices2d.SliceDataset(source, [(0, 2)], image_size=None)[0]
    assert np.array_equal(image.numpy(), raw[..., 2])


def test_augmentation_is_seeded_by_epoch_and_index():
    source = _source(2)
    dataset = slices2d.SliceDataset(source, [(0, 2), (0, 3)], 32, augment.SliceAugmenter(), seed=5)
    first = dataset[0][0]
    assert torch.equal(first, dataset[0][0])
    assert not torch.equal(first, dataset[1][0])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[0][0])
    dataset.set_epoch(0)
    assert torch.equal(first, dataset[0][0])


def test_dataset_pickles_without_its_cache_and_loads_in_batches():
    dataset = slices2d.SliceDataset(_source(2), [(0, 2), (0, 3), (1, 2)], 32)
    dataset[0]
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._cache is None and torch.equal(copy[0][0], dataset[0][0])
    images, classes = next(iter(DataLoader(dataset, batch_size=3)))
    assert images.shape == (3, 4, 32, 32) and classes.shape == (3, 32, 32)
    assert dataset._cache.misses == 2  # each volume loaded once


def test_no_patient_crosses_splits():
    source = _source(10)
    summaries = slices2d.summarise_source(source, progress=False)
    strata = splits.size_strata([s.tumour_voxels for s in summaries], n_bins=2)
    split = splits._split_patients(source.case_ids, strata=strata, seed=0)
    patients = {}
    for part in ("train", "val", "test"):
        part_source = source.subset(getattr(split, part))
        part_summaries = [summaries[source.case_ids.index(c)] for c in part_source.case_ids]
        dataset = slices2d.SliceDataset(part_source, slices2d.select_slices(part_summaries), 32)
        patients[part] = {dataset.source.case_ids[volume] for volume, _ in dataset.slices}
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert set().union(*patients.values()) == set(source.case_ids)


@pytest.mark.real_data
def test_real_case_gives_padded_slices(real_sample_dir):
    case = io.find_cases(real_sample_dir, require_seg=True)[:1]
    source = VolumeSource.from_nifti(case)
    summary = slices2d.summarise_source(source, progress=False)[0]
    slices = slices2d.select_slices([summary], keep_empty_fraction=0.0)
    assert len(slices) > 10 and summary.brain_pixels.max() > 10_000
    image, classes = slices2d.SliceDataset(source, slices, 256)[len(slices) // 2]
    assert image.shape == (4, 256, 256) and classes.shape == (256, 256)
    assert classes.max() > 0 and set(classes.unique().tolist()) <= {0, 1, 2, 3}
    brain = image.abs().sum(0) > 0
    assert abs(float(image[:, brain].mean())) < 1.0 and image[:, :8].abs().sum() == 0  # z-scored, zero padding


def test_spread_picks_skips_neighbouring_slices_of_one_patient():
    slices = [(0, 50), (0, 51), (0, 49), (1, 50), (0, 60), (0, 70)]
    assert slices2d.spread_picks(range(6), slices, 3) == [0, 3, 4]
    assert slices2d.spread_picks(range(6), slices, 10) == [0, 3, 4, 5]
    assert slices2d.spread_picks(range(6), slices, 10, min_gap=1) == [0, 1, 2, 3, 4, 5]
    assert slices2d.spread_picks([5, 4, 0], slices, 2, min_gap=15) == [5, 0]
