"""Sliding-window inference (MONAI as the oracle), flip TTA and the slice-by-slice 2D wrapper."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from braintools.inference.sliding_window import (
    _flip_combinations,
    importance_map,
    predict_with_flips,
    sliding_window_inference,
    window_slices,
    window_starts,
)


def conv_net(spatial_dims: int, in_channels: int = 2, out_channels: int = 3, seed: int = 0) -> nn.Module:
    """A small deterministic network whose output depends on position inside the window (padding=1)."""
    torch.manual_seed(seed)
    conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
    return nn.Sequential(conv(in_channels, 4, 3, padding=1), nn.Tanh(), conv(4, out_channels, 3, padding=1)).eval()


# ---------------------------------------------------------------- MONAI oracle
# (shape, roi): non-divisible sizes, axes smaller than the window, a window equal to an axis, 2D and 3D.
ORACLE_CASES = [
    ((1, 2, 21, 17, 9), (8, 8, 8)),
    ((2, 2, 5, 7, 3), (8, 8, 4)),
    ((1, 2, 13, 9, 11), (13, 4, 5)),
    ((1, 2, 10, 12, 6), (4, 12, 16)),
    ((2, 2, 31, 10), (8, 8)),
    ((1, 2, 5, 40), (8, 6)),
    ((1, 2, 13, 12), (10, 10)),  # 10 * (1 - 0.7) = 3.0000000000000004: the same int() rounding as MONAI
]


@pytest.mark.parametrize(("shape", "roi"), ORACLE_CASES)
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_matches_monai(shape, roi, mode):
    monai_inferers = pytest.importorskip("monai.inferers")
    net = conv_net(len(roi))
    inputs = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    for overlap, sw_batch_size in [(0.0, 1), (0.25, 3), (0.5, 1), (0.5, 4), (0.7, 3)]:
        with torch.no_grad():
            expected = monai_inferers.sliding_window_inference(inputs, roi, sw_batch_size, net, overlap=overlap,
                                                               mode=mode)
        ours = sliding_window_inference(inputs, roi, net, overlap=overlap, mode=mode, sw_batch_size=sw_batch_size)
        assert ours.shape == expected.shape == (shape[0], 3, *shape[2:])
        assert ours.dtype == expected.dtype
        torch.testing.assert_close(ours, torch.as_tensor(expected), atol=1e-5, rtol=0)


def test_matches_monai_with_sigma_per_axis_and_whole_axis_roi():
    monai_inferers = pytest.importorskip("monai.inferers")
    net = conv_net(3)
    inputs = torch.randn(1, 2, 19, 14, 7, generator=torch.Generator().manual_seed(2))
    kwargs = dict(overlap=(0.5, 0.25, 0.0), mode="gaussian", sigma_scale=(0.1, 0.2, 0.3))
    with torch.no_grad():
        expected = monai_inferers.sliding_window_inference(inputs, (6, -1, 4), 2, net, **kwargs)
    ours = sliding_window_inference(inputs, (6, None, 4), net, sw_batch_size=2, **kwargs)
    torch.testing.assert_close(ours, torch.as_tensor(expected), atol=1e-5, rtol=0)


@pytest.mark.parametrize("roi", [(7, 5, 4), (16, 16, 16), (1, 1, 1)])
@pytest.mark.parametrize("sigma_scale", [0.125, (0.5, 0.1, 1.0)])
def test_importance_map_matches_monai(roi, sigma_scale):
    monai_utils = pytest.importorskip("monai.data.utils")
    for mode in ("gaussian", "constant"):
        expected = monai_utils.compute_importance_map(roi, mode=mode, sigma_scale=sigma_scale)
        torch.testing.assert_close(importance_map(roi, mode, sigma_scale), expected, atol=0, rtol=0)


# ---------------------------------------------------------------- scan grid and blending
def test_importance_map_peaks_in_the_centre_and_is_floored():
    weights = importance_map((9, 9, 9), sigma_scale=0.05)
    assert weights[4, 4, 4] == 1 and weights.max() == 1
    assert weights.min() == pytest.approx(1e-3)
    assert torch.equal(weights, weights.flip(0)) and torch.equal(weights, weights.flip(2))


def test_window_starts_cover_every_voxel_and_end_at_the_border():
    assert window_starts(155, 64, 0.5) == [0, 32, 64, 91]
    assert window_starts(240, 128, 0.0) == [0, 112]
    assert window_starts(10, 10, 0.5) == [0]
    assert window_starts(5, 4, 0.99) == [0, 1]  # the step never drops to zero
    for size, roi, overlap in itertools.product([7, 20, 33], [3, 7], [0.0, 0.3, 0.5, 0.9]):
        starts = window_starts(size, roi, overlap)
        covered = torch.zeros(size, dtype=torch.bool)
        for start in starts:
            covered[start:start + roi] = True
        assert covered.all() and starts[-1] + roi == size and starts == sorted(set(starts))


def test_window_slices_are_the_product_of_the_axis_grids():
    windows = window_slices((10, 6), (4, 6), (0.5, 0.5))
    assert windows[:2] == [(slice(0, 4), slice(0, 6)), (slice(2, 6), slice(0, 6))]
    assert len(windows) == len(window_starts(10, 4, 0.5))


def test_identity_predictor_reconstructs_the_input():
    inputs = torch.randn(2, 3, 11, 9, 5)
    for mode in ("constant", "gaussian"):
        output = sliding_window_inference(inputs, (4, 4, 4), lambda x: x, overlap=0.5, mode=mode, sw_batch_size=4)
        torch.testing.assert_close(output, inputs)
        assert inputs.abs().sum() > 0  # the input itself was not modified in place


def test_smaller_than_roi_is_padded_and_cropped_back():
    seen = []

    def predictor(patch):
        seen.append(tuple(patch.shape[2:]))
        return patch[:, :1] * 2

    inputs = torch.ones(1, 2, 3, 5, 2)
    output = sliding_window_inference(inputs, (8, 8, 8), predictor)
    assert seen == [(8, 8, 8)] and output.shape == (1, 1, 3, 5, 2)
    torch.testing.assert_close(output, torch.full((1, 1, 3, 5, 2), 2.0))


def test_runs_without_gradients_and_honours_output_device():
    net = conv_net(3)
    inputs = torch.randn(1, 2, 9, 9, 9)
    output = sliding_window_inference(inputs, (5, 5, 5), net)
    assert not output.requires_grad
    # Windows run on sw_device (CPU here), the blended volume is accumulated on `device`.
    on_meta = sliding_window_inference(inputs, (5, 5, 5), net, sw_device="cpu", device="meta")
    assert on_meta.device.type == "meta" and on_meta.shape == output.shape


def test_half_precision_logits_are_blended_in_the_input_dtype():
    inputs = torch.randn(1, 2, 9, 7, 5)
    output = sliding_window_inference(inputs, (4, 4, 4), lambda x: x.half(), mode="gaussian")
    assert output.dtype == torch.float32
    torch.testing.assert_close(output, inputs, atol=2e-3, rtol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_windows_on_gpu_output_on_cpu_matches_cpu_only():
    net = conv_net(3)
    inputs = torch.randn(1, 2, 20, 18, 12)
    expected = sliding_window_inference(inputs, (8, 8, 8), net)
    ours = sliding_window_inference(inputs, (8, 8, 8), net.to("cuda"), sw_device="cuda", device="cpu")
    assert ours.device.type == "cpu"
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_progress_bar(capsys):
    sliding_window_inference(torch.zeros(1, 1, 8, 8), (4, 4), lambda x: x, progress=True)
    assert "sliding window" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(overlap=1.0), "overlap"),
        (dict(mode="cosine"), "mode"),
        (dict(roi_size=(4, 4)), "roi_size"),
        (dict(sw_batch_size=0), "sw_batch_size"),
        (dict(predictor=lambda x: x[..., :2]), "predictor must return"),
        (dict(predictor=lambda x: x.numpy()), "predictor must return a tensor"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = dict(inputs=torch.zeros(1, 1, 6, 6, 6), roi_size=(4, 4, 4), predictor=lambda x: x) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        sliding_window_inference(**arguments)


def test_inputs_must_be_a_batched_float_tensor():
    with pytest.raises(ValueError, match="inputs"):
        sliding_window_inference(torch.zeros(6, 6), (4,), lambda x: x)
    with pytest.raises(ValueError, match="floating-point"):
        sliding_window_inference(torch.zeros(1, 1, 6, 6, dtype=torch.uint8), (4, 4), lambda x: x)


def test_numpy_sizes_are_accepted():
    import numpy as np

    output = sliding_window_inference(torch.ones(1, 1, 6, 6), np.array([4, 4]), lambda x: x, overlap=np.float32(0.5))
    torch.testing.assert_close(output, torch.ones(1, 1, 6, 6))


# ---------------------------------------------------------------- flip TTA
def test_flip_combinations():
    assert _flip_combinations((0, 1, 2))[0] == () and len(_flip_combinations((0, 1, 2))) == 8
    assert _flip_combinations((2,)) == [(), (2,)]


def test_without_flips_it_is_the_softmax_of_sliding_window():
    net = conv_net(3)
    inputs = torch.randn(1, 2, 10, 8, 6)
    plain = torch.softmax(sliding_window_inference(inputs, (4, 4, 4), net, overlap=0.25), dim=1)
    ours = predict_with_flips(net, inputs, (4, 4, 4), overlap=0.25, flip_axes=())
    torch.testing.assert_close(ours, plain)


def test_flip_tta_averages_the_mirrored_predictions():
    net = conv_net(3)
    inputs = torch.randn(1, 2, 8, 6, 4)
    flips = _flip_combinations((0, 1, 2))
    expected = sum(torch.softmax(net(inputs.flip([2 + a for a in f])), dim=1).flip([2 + a for a in f])
                   for f in flips) / 8
    with torch.no_grad():
        ours = predict_with_flips(net, inputs, (8, 6, 4))
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(ours.sum(dim=1), torch.ones(1, 8, 6, 4))


def test_flip_tta_of_a_symmetric_predictor_changes_nothing():
    pointwise = nn.Conv3d(2, 3, kernel_size=1)  # a 1x1x1 convolution commutes with flips
    inputs = torch.randn(1, 2, 9, 7, 5)
    with torch.no_grad():
        plain = torch.softmax(pointwise(inputs), dim=1)
    for axes in [None, (0,), (1, 2)]:
        torch.testing.assert_close(predict_with_flips(pointwise, inputs, (4, 4, 4), flip_axes=axes), plain)


def test_flip_tta_calls_and_2d_default():
    calls = []

    def predictor(patch):
        calls.append(patch.shape)
        return patch

    predict_with_flips(predictor, torch.randn(1, 2, 6, 6), (6, 6))
    assert len(calls) == 4  # 2D input: all subsets of 2 axes
    with pytest.raises(ValueError, match="flip_axes"):
        predict_with_flips(predictor, torch.randn(1, 2, 6, 6), (6, 6), flip_axes=(2,))


# ---------------------------------------------------------------- the readable loop of notebook 07
@pytest.mark.parametrize("flip_axes", [(), (0,), (0, 2)])
@pytest.mark.parametrize("overlap", [0.5, 0.25])
def test_the_readable_loop_gives_what_the_course_runs(flip_axes, overlap):
    from braintools.inference.sliding_window import readable_sliding_window

    net = conv_net(3)
    volume = torch.randn(2, 2, 21, 17, 11, generator=torch.Generator().manual_seed(1))
    window = (8, 8, 6)
    readable = readable_sliding_window(volume, window, net, overlap, flip_axes)
    course = predict_with_flips(net, volume, window, overlap, "gaussian", flip_axes=flip_axes, sw_batch_size=3)
    assert readable.shape == (2, 3, 21, 17, 11)
    torch.testing.assert_close(readable, course)
    torch.testing.assert_close(readable.sum(dim=1), torch.ones(2, 21, 17, 11))  # probabilities
