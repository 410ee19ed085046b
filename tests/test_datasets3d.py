"""3D patch dataset: volume index, centre choice, cropping with flips and padding, augmentation, seeding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from braintools.data.preprocess import apply_zscore, brain_mask, brain_statistics, zscore_brain
from braintools.datasets import patches3d as d3
from braintools.datasets.augment import AppearanceAugmentation, augment_appearance, augment_intensity
from braintools.datasets.volumes import Volume
from braintools.errors import DataError

SHAPE = (24, 20, 12)


def _volume(seed: int = 0, shape=SHAPE, tumour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A tiny case: box brain with random intensities, a small tumour of classes 1..3 inside it."""
    rng = np.random.default_rng(seed)
    image = np.zeros((4,) + shape, np.float32)
    image[:, 2:-2, 2:-2, 1:-1] = rng.normal(2.0, 1.0, (4, shape[0] - 4, shape[1] - 4, shape[2] - 2))
    classes = np.zeros(shape, np.uint8)
    if tumour:
        classes[14:18, 5:8, 4:7] = rng.integers(1, 4, (4, 3, 3))
    return image, classes


@pytest.fixture()
def source():
    image, classes = _volume()
    return Volume("case_0", image, classes, normalised=True)


# ---------------------------------------------------------------------------------------------- index and centres


def test_volume_index_lists_every_tumour_voxel_and_a_brain_grid(source):
    index = d3._build_volume_index(source.image, source.classes, brain_step=2)
    assert index.shape == SHAPE
    np.testing.assert_array_equal(index.tumour, np.argwhere(source.classes > 0))
    mask = brain_mask(source.image)
    assert len(index.brain) == mask[::2, ::2, ::2].sum()
    assert mask[tuple(index.brain.T)].all() and (index.brain % 2 == 0).all()
    assert index.mean is None


def test_volume_index_statistics_match_zscore_brain(source):
    index = d3._build_volume_index(source.image, source.classes, with_statistics=True)
    mask = brain_mask(source.image)
    np.testing.assert_allclose(index.mean, source.image[:, mask].mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(index.std, source.image[:, mask].std(axis=1), rtol=1e-5)


def test_brain_statistics_of_an_empty_volume_are_neutral():
    mean, std = brain_statistics(np.zeros((2, 3, 3, 3), np.float16))
    assert mean.tolist() == [0.0, 0.0] and std.tolist() == [1.0, 1.0]


def test_volume_index_rejects_brats_label_values(source):
    with pytest.raises(DataError, match="contiguous 0..3.*to_contiguous"):
        d3._build_volume_index(source.image, np.where(source.classes == 3, 4, source.classes))


def test_centres_are_tumour_voxels_or_near_brain_voxels(source):
    index = d3._build_volume_index(source.image, source.classes, brain_step=4)
    rng = np.random.default_rng(0)
    mask = brain_mask(source.image)
    for _ in range(50):
        centre, on_tumour = d3.choose_patch_centre(index, rng, tumour_probability=1.0)
        assert on_tumour and source.classes[centre] > 0
        centre, on_tumour = d3.choose_patch_centre(index, rng, tumour_probability=0.0)
        corner = tuple(c // 4 * 4 for c in centre)
        assert not on_tumour and mask[corner] and all(0 <= c < s for c, s in zip(centre, SHAPE))


def test_centre_fallbacks_without_tumour_or_brain():
    rng = np.random.default_rng(0)
    image, classes = _volume(tumour=False)
    index = d3._build_volume_index(image, classes)
    assert d3.choose_patch_centre(index, rng, 1.0)[1] is False  # no tumour: brain
    empty = d3._build_volume_index(np.zeros((4,) + SHAPE, np.float32), classes)
    centre, on_tumour = d3.choose_patch_centre(empty, rng, 1.0)
    assert not on_tumour and all(0 <= c < s for c, s in zip(centre, SHAPE))


def test_patch_origin_keeps_the_patch_inside_or_centres_a_small_volume():
    assert d3._patch_origin((5, 100, 60), (240, 240, 155), (160, 160, 64)) == (0, 20, 28)
    assert d3._patch_origin((239, 239, 154), (240, 240, 155), (160, 160, 64)) == (80, 80, 91)
    assert d3._patch_origin((10, 10, 10), (20, 30, 40), (24, 30, 40)) == (-2, 0, 0)


# ---------------------------------------------------------------------------------------------- cropping


def test_crop_patch_inside_the_volume_is_a_slice_and_flips_are_mirrors():
    array = np.arange(2 * 6 * 5 * 4).reshape(2, 6, 5, 4)
    plain = d3.crop_patch(array, (1, 2, 0), (4, 3, 4))
    np.testing.assert_array_equal(plain, array[:, 1:5, 2:5, 0:4])
    for flips in itertools.product([False, True], repeat=3):
        axes = [axis + 1 for axis, flip in enumerate(flips) if flip]
        np.testing.assert_array_equal(d3.crop_patch(array, (1, 2, 0), (4, 3, 4), flips), np.flip(plain, axes))


def test_crop_patch_pads_outside_the_volume_with_zeros_and_casts():
    array = np.ones((3, 4, 2), np.uint8)
    patch = d3.crop_patch(array, (-1, 2, 0), (5, 4, 2), dtype=np.int64)
    assert patch.dtype == np.int64 and patch.shape == (5, 4, 2)
    assert patch.sum() == 3 * 2 * 2
    assert patch[0].sum() == 0 and patch[4].sum() == 0 and patch[:, 2:].sum() == 0
    with pytest.raises(ValueError, match="does not overlap"):
        d3.crop_patch(array, (5, 0, 0), (2, 2, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_crop_image_patch_equals_crop_then_augment_with_flips_and_padding(dtype):
    rng = np.random.default_rng(1)
    image = rng.standard_normal((3, 20, 17, 11)).astype(np.float16)
    scale, shift = rng.uniform(0.9, 1.1, 3), rng.uniform(-0.1, 0.1, 3)
    for origin, size in [((2, 3, 1), (8, 9, 7)), ((-3, 5, -2), (30, 8, 20)), ((10, -4, 4), (8, 9, 7))]:
        for flips in itertools.product([False, True], repeat=3):
            fast = d3._crop_image_patch(image, origin, size, flips, scale, shift, dtype=dtype, chunk=3)
            reference = augment_intensity(d3.crop_patch(image, origin, size, flips, dtype=np.float32), scale, shift)
            assert fast.dtype == dtype
            np.testing.assert_allclose(fast, reference, atol=1e-5 if dtype == np.float32 else 1e-2)


def test_crop_image_patch_reads_memmaps_and_other_array_likes(tmp_path):
    image = np.random.default_rng(2).standard_normal((2, 9, 8, 7)).astype(np.float16)
    np.save(tmp_path / "image.npy", image)
    mapped = np.load(tmp_path / "image.npy", mmap_mode="r")
    expected = d3.crop_patch(image, (1, 1, 1), (4, 4, 4), dtype=np.float32)
    np.testing.assert_array_equal(d3._crop_image_patch(mapped, (1, 1, 1), (4, 4, 4)), expected)

    class ArrayLike:  # e.g. an h5py dataset: slicing gives arrays, but it is no ndarray
        shape, dtype = image.shape, image.dtype

        def __getitem__(self, key):
            if any(isinstance(k, slice) and (k.step or 1) < 0 for k in key):
                raise ValueError("negative steps are not supported")  # as h5py
            return image[key]

    np.testing.assert_array_equal(d3._crop_image_patch(ArrayLike(), (1, 1, 1), (4, 4, 4)), expected)
    flipped = d3.crop_patch(ArrayLike(), (1, 1, 1), (4, 4, 4), (True, True, True))  # no negative-step reads
    np.testing.assert_array_equal(flipped, np.flip(image[:, 1:5, 1:5, 1:5], (1, 2, 3)))


def test_augment_intensity_and_apply_zscore_work_in_place():
    patch = np.ones((2, 2, 2, 2), np.float32)
    assert augment_intensity(patch, [2.0, 0.5], [0.0, 1.0]) is patch
    assert patch[0].max() == 2.0 and patch[1].min() == 1.5
    raw = np.zeros((2, 2, 2, 2), np.float32)
    raw[:, 0] = [[[3.0]], [[5.0]]]
    normalised = apply_zscore(raw, np.array([1.0, 1.0]), np.array([2.0, 4.0]))
    assert normalised is raw
    assert normalised[0, 0].max() == 1.0 and normalised[1, 0].max() == 1.0 and normalised[:, 1].max() == 0


def test_a_patch_zscored_with_volume_statistics_equals_the_window_of_the_zscored_volume():
    rng = np.random.default_rng(0)
    image = np.zeros((2, 12, 10, 8), np.float32)
    image[:, 2:10, 2:8, 1:7] = rng.normal(100, 20, (2, 8, 6, 6))
    mean, std = brain_statistics(image)
    window = (slice(None), slice(3, 9), slice(1, 7), slice(2, 6))
    patch = apply_zscore(image[window].copy(), mean, std)
    np.testing.assert_array_equal(patch, zscore_brain(image)[window])


# ---------------------------------------------------------------------------------------------- the dataset


def _dataset(sources, **kwargs):
    options = dict(patch_size=(8, 8, 4), patches_per_epoch=12)
    options.update(kwargs)
    return d3.PatchDataset3D(sources, **options)


def test_items_have_the_patch_shape_and_dtypes(source):
    dataset = _dataset([source])
    image, classes = dataset[0]
    assert len(dataset) == 12
    assert image.shape == (4, 8, 8, 4) and image.dtype == torch.float32
    assert classes.shape == (8, 8, 4) and classes.dtype == torch.uint8
    half = _dataset([source], image_dtype=torch.float16)[0][0]
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), image, atol=1e-2, rtol=1e-2)


def test_a_patch_bigger_than_the_volume_is_padded(source, monkeypatch):
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "kaggle")  # the environment plays no part: the sizes are passed
    dataset = d3.PatchDataset3D([source], (32, 32, 16), 4)
    assert dataset.patch_size == (32, 32, 16) and len(dataset) == 4
    assert dataset[0][0].shape == (4, 32, 32, 16)


def test_same_seed_and_epoch_give_the_same_patches_in_any_order(source):
    first, second = _dataset([source], seed=3), _dataset([source], seed=3)
    forward = [first[i] for i in range(4)]
    backward = [second[i] for i in reversed(range(4))][::-1]
    for (a, b), (c, e) in zip(forward, backward):
        assert torch.equal(a, c) and torch.equal(b, e)
    first.set_epoch(1)
    assert any(not torch.equal(first[i][0], forward[i][0]) for i in range(4))
    assert not torch.equal(_dataset([source], seed=4)[0][0], forward[0][0])


def test_tumour_centred_share_follows_the_probability(source):
    dataset = _dataset([source], patches_per_epoch=400, tumour_probability=0.6)
    share = np.mean([dataset.plan(i).tumour_centred for i in range(len(dataset))])
    assert 0.5 < share < 0.7
    always = _dataset([source], tumour_probability=1.0)
    for item in range(len(always)):
        assert always.plan(item).tumour_centred and (always[item][1] > 0).any()


def test_image_and_classes_stay_aligned_through_flips_and_augmentation():
    image, classes = _volume()
    image[0] = classes + 1.0  # channel 0 encodes the class of each voxel
    dataset = _dataset([Volume("c", image, classes, True)], patches_per_epoch=16, tumour_probability=1.0)
    for item in range(len(dataset)):
        plan = dataset.plan(item)
        patch, labels = dataset[item]
        decoded = (patch[0].numpy() - plan.shift[0]) / plan.scale[0] - 1.0
        np.testing.assert_allclose(decoded, labels.numpy(), atol=1e-4)
    assert any(any(dataset.plan(i).flips) for i in range(16))


def test_unnormalised_volumes_are_zscored_with_whole_volume_brain_statistics(source):
    raw = Volume(source.case_id, source.image, source.classes, normalised=False)
    dataset = _dataset([raw], augment=False)
    expected = zscore_brain(source.image)
    for item in range(4):
        origin = dataset.plan(item).origin
        patch = dataset[item][0].numpy()
        np.testing.assert_allclose(patch, d3.crop_patch(expected, origin, (8, 8, 4)), atol=1e-5)


def test_memmapped_volumes_give_the_same_items_as_arrays(source, tmp_path):
    np.save(tmp_path / "image.npy", source.image.astype(np.float16))
    np.save(tmp_path / "classes.npy", source.classes)
    mapped = Volume("case_0", np.load(tmp_path / "image.npy", mmap_mode="r"),
                    np.load(tmp_path / "classes.npy", mmap_mode="r"), True)
    in_memory = Volume("case_0", source.image.astype(np.float16), source.classes, True)
    for a, b in zip(_dataset([mapped]), _dataset([in_memory])):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_items_cycle_through_the_volumes_and_volumes_smaller_than_the_patch_are_padded():
    small = (np.ones((4, 6, 5, 3), np.float32), np.zeros((6, 5, 3), np.uint8))
    small[1][2, 2, 1] = 3
    dataset = _dataset([Volume("big", *_volume(0), True), Volume("small", *small, True)], augment=False)
    assert [dataset.plan(i).volume for i in range(4)] == [0, 1, 0, 1]
    image, classes = dataset[1]
    assert image.shape == (4, 8, 8, 4)
    assert image[:, 0].abs().sum() == 0 and classes.sum() == small[1].sum()


def test_dataloader_workers_give_the_same_batches(source):
    dataset = _dataset([source], patches_per_epoch=6)
    dataset.build_indices()
    single = list(DataLoader(dataset, batch_size=3, num_workers=0))
    parallel = list(DataLoader(dataset, batch_size=3, num_workers=2))
    assert single[0][0].shape == (3, 4, 8, 8, 4)
    for (a, b), (c, e) in zip(single, parallel):
        assert torch.equal(a, c) and torch.equal(b, e)


def test_bad_arguments_are_clear_errors(source):
    with pytest.raises(DataError, match="at least one"):
        d3.PatchDataset3D([], (8, 8, 4), 4)
    with pytest.raises(ValueError, match="three positive sizes"):
        _dataset([source], patch_size=(8, 8))
    with pytest.raises(ValueError, match="tumour_probability"):
        _dataset([source], tumour_probability=1.5)
    with pytest.raises(ValueError, match="image_dtype"):
        _dataset([source], image_dtype=torch.int8)
    with pytest.raises(IndexError, match="out of range"):
        _dataset([source])[12]


# ---------------------------------------------------------------------------------------------- appearance


def test_flip_axes_limits_the_mirrored_axes(source):
    everywhere = _dataset([source], patches_per_epoch=64)
    left_right = _dataset([source], patches_per_epoch=64, flip_axes=(0,))
    assert any(any(everywhere.plan(i).flips[1:]) for i in range(64))  # the default mirrors every axis
    plans = [left_right.plan(i) for i in range(64)]
    assert not any(any(plan.flips[1:]) for plan in plans) and any(plan.flips[0] for plan in plans)
    with pytest.raises(ValueError, match="flip_axes"):
        _dataset([source], flip_axes=(3,))


def test_augment_appearance_identity_gamma_noise_and_blur():
    rng = np.random.default_rng(0)
    patch = rng.uniform(-2, 3, (3, 16, 16, 8)).astype(np.float32)
    same = augment_appearance(patch.copy(), [0, 0, 0], [1, 1, 1], [0, 0, 0], rng)
    np.testing.assert_array_equal(same, patch)
    changed = augment_appearance(patch.copy(), [0, 0, 1.0], [1.5, 1, 1], [0, 0.2, 0], np.random.default_rng(1))
    for c in range(3):  # channel 0: gamma keeps the range and the order of values, moves the middle down
        assert changed[c].shape == patch[c].shape
    assert np.isclose(changed[0].min(), patch[0].min()) and np.isclose(changed[0].max(), patch[0].max())
    order = np.argsort(patch[0].ravel())
    assert np.all(np.diff(changed[0].ravel()[order]) >= -1e-5) and changed[0].mean() < patch[0].mean()
    assert 0.15 < np.std(changed[1] - patch[1]) < 0.25  # channel 1: additive noise of std 0.2
    assert changed[2].std() < 0.5 * patch[2].std()  # channel 2: blurring white noise removes most of its spread


def test_appearance_augmentation_is_seeded_changes_images_not_labels(source):
    look = AppearanceAugmentation(blur_probability=0.5, gamma_probability=1.0, noise_probability=1.0)
    plain = _dataset([source], seed=5, flip_axes=(0,))
    varied, again = (_dataset([source], seed=5, flip_axes=(0,), appearance=look) for _ in range(2))
    for item in range(4):
        (image, labels), (same_image, same_labels), (base, base_labels) = varied[item], again[item], plain[item]
        assert torch.equal(image, same_image) and torch.equal(labels, same_labels)
        assert torch.equal(labels, base_labels) and not torch.equal(image, base)
        assert (varied.plan(item).gamma != 1).all() and (varied.plan(item).noise > 0).all()
    assert plain.plan(0).gamma is None  # no appearance plan without the option: the patches of before
    half = _dataset([source], seed=5, flip_axes=(0,), appearance=look, image_dtype=torch.float16)
    assert torch.equal(half[0][0], varied[0][0].half())  # the same changes, in float32, then rounded
