"""Medical-safe slice augmentation: flip, zoom, brightness/contrast; identical geometry on image and mask."""

import numpy as np
import pytest

from braintools.datasets import augment


def _slice(size=32, seed=0):
    """A (4, H, W) brain-like image (zero background) and a (H, W) mask with classes 0..3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    brain = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.4) ** 2
    image = np.where(brain, rng.normal(size=(4, size, size)), 0).astype(np.float32)
    mask = np.zeros((size, size), np.uint8)
    mask[8:20, 10:18] = 2
    mask[11:16, 12:15] = 1
    mask[12:14, 16:18] = 3
    return image, mask


def test_flip_reverses_the_x_axis():
    array = np.arange(12).reshape(1, 3, 4)
    assert np.array_equal(augment._flip_left_right(array), array[:, ::-1, :])
    assert augment._flip_left_right(array[0]).tolist() == array[0, ::-1].tolist()


def test_zoom_keeps_shape_centre_and_scales_areas():
    mask = np.zeros((41, 41), np.uint8)
    mask[10:31, 10:31] = 1
    assert np.array_equal(augment._zoom_slice(mask, 1.0, order=0), mask)
    bigger = augment._zoom_slice(mask, 1.2, order=0)
    assert bigger.shape == mask.shape and bigger.dtype == np.uint8
    assert bigger.sum() / mask.sum() == pytest.approx(1.2**2, rel=0.1)
    rows, cols = np.nonzero(bigger)
    assert rows.mean() == pytest.approx(20) and cols.mean() == pytest.approx(20)
    smaller = augment._zoom_slice(mask, 0.9, order=0)
    assert smaller.sum() < mask.sum() and smaller[0].sum() == 0


def test_brightness_contrast_changes_the_brain_only():
    image, _ = _slice()
    adjusted = augment._adjust_brightness_contrast(image, np.array([0.1, 0, 0, -0.1]), np.array([1.1, 1, 0.9, 1]))
    brain = np.any(image != 0, axis=0)
    assert np.all(adjusted[:, ~brain] == 0)
    assert np.allclose(adjusted[0][brain], image[0][brain] * 1.1 + 0.1)
    assert np.allclose(adjusted[2][brain], image[2][brain] * 0.9)
    assert adjusted.dtype == np.float32


def test_sampled_parameters_stay_in_their_ranges():
    augmenter = augment.SliceAugmenter()
    rng = np.random.default_rng(0)
    draws = [augmenter.sample(rng, 4) for _ in range(400)]
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    assert all(0.95 <= d.zoom <= 1.05 for d in draws)
    assert all(abs(b) <= 0.1 for d in draws for b in d.brightness)
    assert all(0.9 <= c <= 1.1 for d in draws for c in d.contrast)


def test_same_seed_same_augmentation():
    image, mask = _slice()
    augmenter = augment.SliceAugmenter()
    first = augmenter(image, mask, np.random.default_rng(7))
    second = augmenter(image, mask, np.random.default_rng(7))
    other = augmenter(image, mask, np.random.default_rng(8))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("seed", range(12))
def test_geometry_is_identical_on_image_and_mask(seed):
    _, mask = _slice()
    image = np.stack([mask.astype(np.float32)] * 4)  # every channel is a copy of the mask
    augmenter = augment.SliceAugmenter(flip_probability=0.5, zoom=0.05, brightness=0, contrast=0, image_order=0)
    new_image, new_mask = augmenter(image, mask, np.random.default_rng(seed))
    for channel in new_image:
        assert np.array_equal(channel, new_mask)
    assert set(np.unique(new_mask)) <= {0, 1, 2, 3}


def test_linear_image_and_nearest_mask_agree():
    _, mask = _slice()
    image = np.stack([mask.astype(np.float32)] * 4)
    augmenter = augment.SliceAugmenter(flip_probability=1.0, zoom=0.05, brightness=0, contrast=0)
    new_image, new_mask = augmenter(image, mask, np.random.default_rng(1))
    assert new_mask.dtype == np.uint8
    assert np.mean(np.rint(new_image[0]) == new_mask) > 0.95


def test_flip_is_applied_to_both():
    image, mask = _slice()
    augmenter = augment.SliceAugmenter(flip_probability=1.0, zoom=0, brightness=0, contrast=0)
    new_image, new_mask = augmenter(image, mask, np.random.default_rng(0))
    assert np.array_equal(new_mask, mask[::-1])
    assert np.allclose(new_image, image[:, ::-1])


def test_shapes_are_checked():
    augmenter = augment.SliceAugmenter()
    with pytest.raises(ValueError, match="expected image"):
        augmenter(np.zeros((4, 8, 8), np.float32), np.zeros((8, 9), np.uint8), np.random.default_rng(0))
