"""segment_case and evaluate_cases: the one inference path (normalisation, brain box, windows, TTA, post-processing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from braintools.cache import store
from braintools.data import io
from braintools.data.labels import from_contiguous, to_contiguous
from braintools.data.preprocess import brain_box, normalise_image
from braintools.evaluation.cases import evaluate_cases
from braintools.inference.segment import InferenceSettings, _aligned_box, inference_window, segment_case
from braintools.models.checkpoints import ModelSpec, build_model, load_model, save_checkpoint

POINTWISE = ModelSpec("unet3d", features=(4,), window=(8, 8, 4))  # one level: any window size fits


class Pointwise(nn.Module):
    """Logits from each voxel alone (a 1x1x1 convolution), so window placement and crops cannot matter."""

    def __init__(self, seed: int = 0, out_channels: int = 4, spec: ModelSpec = POINTWISE):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv3d(4, out_channels, 1)
        self.spec = spec
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


def brain_case(shape=(20, 18, 10), seed=0) -> io.Case:
    rng = np.random.default_rng(seed)
    image = np.zeros((4, *shape), np.float32)
    image[:, 3:-3, 2:-2, 1:-1] = rng.normal(100, 20, (4, shape[0] - 6, shape[1] - 4, shape[2] - 2))
    seg = np.zeros(shape, np.uint8)
    seg[6:12, 6:12, 3:7] = 2
    seg[8:10, 8:10, 4:6] = 4
    return io.Case(f"case_{seed:03d}", image, seg, io.brats_affine(shape, (1.0, 1.0, 2.0)))


def expected_argmax(model: nn.Module, image: np.ndarray) -> np.ndarray:
    normalised = normalise_image(image)
    with torch.no_grad():
        logits = model(torch.from_numpy(normalised)[None])[0]
    classes = logits.argmax(0).numpy().astype(np.uint8)
    classes[~np.any(normalised != 0, axis=0)] = 0
    return classes


def test_segment_case_is_the_argmax_inside_the_brain_whatever_the_crop_and_window():
    case, model = brain_case(), Pointwise()
    expected = expected_argmax(model, case.image)
    assert expected.any() and not expected[:3].any()  # outside the brain: background
    for settings in (InferenceSettings(), InferenceSettings(crop_margin=None, window=(16, 16, 8), overlap=0.25),
                     InferenceSettings(crop_margin=0, blend="constant")):
        got = segment_case(model, case.image, settings)
        assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_raw_and_cached_inputs_give_identical_predictions(tmp_path):
    case, model = brain_case(), Pointwise(1)
    cached_image, _ = store.cached_arrays(case)  # what the npy cache stores: float16
    from_cache = segment_case(model, cached_image, normalised=True)
    np.testing.assert_array_equal(segment_case(model, case.image), from_cache)


def test_flip_tta_of_a_mirror_symmetric_model_changes_nothing_and_restores_training_mode():
    case, model = brain_case(), Pointwise(2).train()
    plain = segment_case(model, case.image)
    assert np.array_equal(segment_case(model, case.image, InferenceSettings(tta_flip_axes=(0, 1))), plain)
    assert model.training


def test_a_region_model_is_thresholded_at_one_half_and_nested():
    spec = ModelSpec("unet3d", output="regions", features=(4,), window=(8, 8, 4))
    model = Pointwise(out_channels=3, spec=spec)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.copy_(torch.tensor([1.0, -1.0, 1.0]))  # WT and ET on, TC off: ET wins (nested)
    case = brain_case()
    got = segment_case(model, case.image)
    inside = np.any(case.image != 0, axis=0)
    assert np.all(got[inside] == 3) and not got[~inside].any()


def test_post_processing_settings_are_applied_after_the_network():
    case, model = brain_case(), Pointwise(3)
    raw = segment_case(model, case.image)
    from braintools.inference.postprocess import keep_largest_component

    cleaned = segment_case(model, case.image, InferenceSettings(keep_largest=True))
    np.testing.assert_array_equal(cleaned, keep_largest_component(raw))
    emptied = segment_case(model, case.image, InferenceSettings(min_component=10**6))
    assert not np.isin(emptied, (1, 2, 3)).any()


def test_a_2d_model_predicts_whole_slices_of_a_volume(tmp_path):
    spec = ModelSpec("unet2d", architecture="Unet", encoder="resnet18", shrink=2, window=(-1, -1, 4))
    path = save_checkpoint(tmp_path / "unet2d_best.pt", build_model(spec))
    case = brain_case()
    classes = segment_case(load_model(path), case.image)
    assert classes.shape == case.seg.shape and set(np.unique(classes)) <= {0, 1, 2, 3}
    assert inference_window(spec, InferenceSettings(window=(64, 64, 6))) == (-1, -1, 6)
    assert "whole axial slices, 4 per pass" in InferenceSettings().describe(spec)


def test_inference_window_comes_from_the_spec_and_is_rounded_up():
    spec = ModelSpec("unet3d", features=(4, 8, 16), shrink=2, window=(60, 64, 30))
    assert inference_window(spec, InferenceSettings()) == (64, 64, 32)
    assert inference_window(spec, InferenceSettings(window=(9, 9, 9))) == (16, 16, 16)
    with pytest.raises(ValueError, match="no sliding window"):
        inference_window(ModelSpec("unet3d", features=(4,)), InferenceSettings())


def test_settings_are_checked_and_described():
    with pytest.raises(ValueError, match="overlap"):
        InferenceSettings(overlap=1.0)
    with pytest.raises(ValueError, match="blend"):
        InferenceSettings(blend="max")
    text = InferenceSettings(tta_flip_axes=[0], keep_largest=True, min_et_voxels=20).describe(POINTWISE)
    for words in ("window 8x8x4", "overlap 0.5", "gaussian", "brain box + 8", "flip TTA axes (0,)",
                  "keep largest WT", "ET < 20 -> NCR"):
        assert words in text


def test_windows_that_are_not_positive_or_far_larger_than_the_volume_are_refused_in_one_line():
    for bad in ((-32, 32, 16), (0, 0, 0), (8, 8), (2.5, 8, 8)):
        with pytest.raises(ValueError, match="window must be three positive whole sizes"):
            InferenceSettings(window=bad)
    case, model = brain_case(), Pointwise()  # a 20 x 18 x 10 volume
    with pytest.raises(ValueError, match=r"window 4000x4000x4000 is far larger than the volume 20x18x10 \(at most "
                                         r"40x36x20; 20x18x10 already covers all of it\)"):
        segment_case(model, case.image, InferenceSettings(window=(4000, 4000, 4000)))
    twice = segment_case(model, case.image, InferenceSettings(window=(40, 36, 20), crop_margin=None))
    np.testing.assert_array_equal(twice, expected_argmax(model, case.image))  # twice the volume is still allowed
    small = ModelSpec("unet3d", features=(4,), window=(64, 64, 64))  # a model's own window is never refused
    assert inference_window(small, InferenceSettings(), (20, 18, 10)) == (64, 64, 64)


def test_the_input_channels_follow_the_modalities_of_the_spec():
    from braintools.data.io import MODALITIES
    from braintools.inference.segment import model_inputs

    order = ("flair", "t1", "t1ce", "t2")  # a model trained on the HDF5 channels as stored
    permuted = ModelSpec("unet3d", features=(4,), window=(8, 8, 4), modalities=order)
    case = brain_case()
    reordered = Pointwise(3, spec=permuted)
    canonical = Pointwise(3)  # the same network, its first layer rewired to take the course's order
    with torch.no_grad():
        canonical.conv.weight[:] = reordered.conv.weight[:, [order.index(name) for name in MODALITIES]]
    expected = segment_case(canonical, case.image)
    assert expected.any()
    np.testing.assert_array_equal(segment_case(reordered, case.image), expected)
    image = case.image
    np.testing.assert_array_equal(model_inputs(image, permuted), image[[3, 0, 1, 2]])
    two = ModelSpec("unet3d", features=(4,), window=(8, 8, 4), in_channels=2, modalities=("t1ce", "flair"))
    np.testing.assert_array_equal(model_inputs(image, two), image[[1, 3]])
    np.testing.assert_array_equal(model_inputs(image[[1, 3]], two), image[[1, 3]])  # already in the model's order
    with pytest.raises(ValueError, match=r"image must be \(4, X, Y, Z\).*or \(2, X, Y, Z\).*got shape \(3,"):
        model_inputs(image[:3], two)


def test_a_model_without_a_spec_is_refused():
    with pytest.raises(ValueError, match="no spec"):
        segment_case(nn.Conv3d(4, 4, 1), brain_case().image)


def test_evaluate_cases_scores_each_variant_and_shares_the_network_pass():
    model = Pointwise(4)
    cases = [brain_case(seed=0), brain_case(seed=1)]
    variants = {"plain": InferenceSettings(), "largest": InferenceSettings(keep_largest=True),
                "TTA": InferenceSettings(tta_flip_axes=(0,))}
    calls_per_pass = model.calls
    segment_case(model, cases[0].image)
    calls_per_pass, model.calls = model.calls - calls_per_pass, 0
    result = evaluate_cases(model, cases, variants, keep_predictions=True, progress=False)
    assert model.calls == len(cases) * 3 * calls_per_pass  # plain (shared with largest) + TTA (2 passes)
    table = result.table
    assert len(table) == 6 and set(table["variant"]) == set(variants)
    assert {"Dice_WT", "HD95_ET", "Sensitivity_TC", "seconds", "settings", "empty_rule"} <= set(table.columns)
    for case in cases:
        for name, settings in variants.items():
            np.testing.assert_array_equal(result.predictions[name][case.case_id],
                                          segment_case(model, case.image, settings))
    assert "keep largest WT" in result.summary().loc["largest", "settings"]
    assert "mean of 2 cases" in result.score_line("plain")


def test_a_perfect_model_scores_one_and_spacing_comes_from_the_affine():
    case = brain_case()
    truth = to_contiguous(case.seg)

    class Oracle(nn.Module):
        spec = ModelSpec("unet3d", features=(4,), window=(20, 18, 10))

        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.from_numpy(truth).long(), 4).permute(3, 0, 1, 2)[None].float()

    result = evaluate_cases(Oracle(), [case], InferenceSettings(crop_margin=None), progress=False)
    row = result.table.iloc[0]
    assert row["Dice_WT"] == row["Dice_TC"] == row["Dice_ET"] == 1.0 and row["HD95_WT"] == 0.0
    with pytest.raises(ValueError, match="no segmentation"):
        evaluate_cases(Oracle(), [io.Case("x", case.image, None, case.affine)], progress=False)


def test_brain_box_bounds_the_non_zero_voxels_with_a_margin():
    image = np.zeros((2, 10, 12, 8), np.float32)
    image[1, 3:5, 4, 2:6] = 1.5
    assert brain_box(image) == (slice(3, 5), slice(4, 5), slice(2, 6))
    assert brain_box(image, margin=3) == (slice(0, 8), slice(1, 8), slice(0, 8))
    assert brain_box(np.zeros((1, 4, 4, 4))) == (slice(0, 4),) * 3


@pytest.mark.real_data
def test_a_real_case_from_its_files_and_from_the_cache_scores_the_same(real_sample_dir, tmp_path):
    files = io.find_cases(real_sample_dir)[0]
    full = io.load_case(files)
    crop = (slice(None), slice(80, 144), slice(80, 144), slice(50, 82))
    case = io.Case(full.case_id, full.image[crop], full.seg[crop[1:]], full.affine)
    model = Pointwise(5)
    from_files = evaluate_cases(model, [case], progress=False).table
    image, labels = store.cached_arrays(case)
    cached = segment_case(model, image, normalised=True)
    np.testing.assert_array_equal(cached, segment_case(model, case.image))
    assert from_contiguous(labels).shape == case.seg.shape and len(from_files) == 1


def test_the_rim_rule_needs_the_brain_and_is_described():
    settings = InferenceSettings(rim_voxels=4)
    assert "drop WT blobs on the 4-voxel brain rim" in settings.describe(POINTWISE)
    with pytest.raises(ValueError, match="needs the brain mask"):
        settings.postprocess(np.zeros((4, 4, 4), np.uint8))
    case, model = brain_case(), Pointwise(6)
    raw = segment_case(model, case.image)
    from braintools.inference.postprocess import remove_rim_components

    brain = np.any(case.image != 0, axis=0)
    np.testing.assert_array_equal(segment_case(model, case.image, settings), remove_rim_components(raw, brain, 4))


def test_a_shrunk_2d_model_sees_the_block_grid_it_was_trained_on_whatever_the_crop():
    spec = ModelSpec("unet2d", architecture="Unet", encoder="resnet18", shrink=4, window=(-1, -1, 4))
    assert _aligned_box((slice(7, 200), slice(13, 230), slice(3, 150)), (240, 240, 155), spec) == (
        slice(4, 200), slice(12, 230), slice(3, 150))
    unet3d = ModelSpec("unet3d", features=(4,), shrink=2, window=(8, 8, 4))
    box = (slice(7, 20), slice(3, 9), slice(1, 5))
    assert _aligned_box(box, (24, 24, 8), unet3d) == box  # trained on patches at any offset: left alone
    torch.manual_seed(0)
    network = build_model(spec).eval()
    case = brain_case(shape=(48, 44, 6))
    whole = segment_case(network, case.image, InferenceSettings(crop_margin=None))
    cropped = segment_case(network, case.image, InferenceSettings(crop_margin=1))
    inside = np.any(case.image != 0, axis=0)
    np.testing.assert_array_equal(cropped[inside], whole[inside])  # the crop changes nothing the network sees
