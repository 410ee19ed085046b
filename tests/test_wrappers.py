"""The wrappers: shrunk slices, volumes and planes (inner state_dict, factor check), and 2D slices of a volume."""

import pytest
import torch
from torch import nn

from braintools.inference.sliding_window import sliding_window_inference
from braintools.models import checkpoints, smp2d
from braintools.models.unet3d import UNet3D
from braintools.models.wrappers import Downsampled, Downsampled3D, InPlaneDownsampled, ShrunkInput, SliceWise2D
from tests.test_inference import conv_net

TINY = (4, 8, 16)  # three levels: inputs divisible by 4


@pytest.mark.parametrize("wrapper", [ShrunkInput, Downsampled, Downsampled3D, InPlaneDownsampled])
def test_wrappers_save_and_load_the_inner_state_dict_and_check_the_factor(wrapper):
    inner = nn.Conv3d(4, 4, 1)
    wrapped = wrapper(inner, 2)
    assert list(wrapped.state_dict()) == ["weight", "bias"]
    plain = nn.Conv3d(4, 4, 1)
    wrapper(plain, 2).load_state_dict(wrapped.state_dict())
    assert torch.equal(plain.weight, inner.weight)
    with pytest.raises(ValueError, match="factor"):
        wrapper(inner, 0)


def test_downsampled_wrapper_runs_the_model_on_shrunk_inputs():
    torch.manual_seed(3)
    inner = smp2d.create_smp_model("Unet", "resnet18").eval()
    images = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        logits = Downsampled(inner, 2)(images)
        small = inner(torch.nn.functional.avg_pool2d(images, 2))
        assert torch.equal(Downsampled(inner, 1)(images), inner(images))
    expected = torch.nn.functional.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
    assert logits.shape == (1, 4, 64, 64) and torch.allclose(logits, expected, atol=1e-5)
    with pytest.raises(ValueError, match="not a multiple of factor 3"):
        Downsampled(inner, 3)(images)


def test_downsampled_checkpoints_load_into_the_plain_model(tmp_path):
    torch.manual_seed(4)
    inner = smp2d.create_smp_model("Unet", "resnet18")
    wrapper = Downsampled(inner, 2)
    assert list(wrapper.state_dict()) == list(inner.state_dict())
    checkpoints.save_checkpoint(tmp_path / "unet2d_best.pt", wrapper, epoch=1)
    plain = smp2d.create_smp_model("Unet", "resnet18")
    checkpoints.load_checkpoint(tmp_path / "unet2d_best.pt", plain)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), inner.state_dict().values()))
    again = Downsampled(smp2d.create_smp_model("Unet", "resnet18"), 2)
    checkpoints.load_checkpoint(tmp_path / "unet2d_best.pt", again)
    assert torch.equal(again.model.encoder.conv1.weight, inner.encoder.conv1.weight)


def test_downsampled3d_runs_the_unet_on_shrunk_volumes_and_returns_full_size_logits():
    inner = UNet3D(features=TINY, deep_supervision=True)
    model = Downsampled3D(inner, 2)
    assert model.size_divisor == 8 and set(model.state_dict()) == set(inner.state_dict())
    outputs = model.train()(torch.randn(1, 4, 16, 16, 8))
    assert [tuple(out.shape[2:]) for out in outputs] == [(16, 16, 8), (4, 4, 2)]  # full, then inner 1/2
    assert model.eval()(torch.randn(1, 4, 16, 16, 8)).shape == (1, 4, 16, 16, 8)
    plain = UNet3D(features=TINY, deep_supervision=True)
    plain.load_state_dict(model.state_dict())  # the wrapper saves the inner model's keys
    model.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="multiple of factor"):
        model(torch.zeros(1, 4, 16, 16, 7))
    with pytest.raises(ValueError, match="factor"):
        Downsampled3D(inner, 0)


def test_downsampled3d_can_return_its_own_size_outputs_in_training_only():
    torch.manual_seed(0)
    model = Downsampled3D(UNet3D(features=TINY, deep_supervision=True), 2, full_size_in_training=False)
    assert isinstance(model, Downsampled3D) and not model.full_size_in_training
    volume = torch.randn(1, 4, 16, 16, 8)
    outputs = model.train()(volume)
    assert [tuple(out.shape[2:]) for out in outputs] == [(8, 8, 4), (4, 4, 2)]  # the inner model's sizes
    inner_outputs = model.model(torch.nn.functional.avg_pool3d(volume, 2))
    assert torch.allclose(outputs[0], inner_outputs[0])
    assert model.eval()(volume).shape == (1, 4, 16, 16, 8)  # evaluation: full size, as always


def test_downsampled3d_sees_block_means_and_factor_one_is_the_model_itself():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x

    volume = torch.arange(2 * 4 * 4 * 2, dtype=torch.float32).reshape(1, 2, 4, 4, 2)
    Downsampled3D(Spy(), 2)(volume)
    assert seen[0].shape == (1, 2, 2, 2, 1)
    assert torch.isclose(seen[0][0, 0, 0, 0, 0], volume[0, 0, :2, :2, :].mean())
    inner = UNet3D(features=TINY).eval()
    x = torch.randn(1, 4, 8, 8, 4)
    with torch.no_grad():
        assert torch.equal(Downsampled3D(inner, 1)(x), inner(x))


# ---------------------------------------------------------------- 2D networks on volumes
def test_slicewise_matches_a_loop_over_axial_slices():
    net2d = conv_net(2, in_channels=4, out_channels=4)
    volume = torch.randn(2, 4, 32, 32, 5)
    with torch.no_grad():
        expected = torch.stack([net2d(volume[..., z]) for z in range(5)], dim=-1)
        ours = SliceWise2D(net2d)(volume)
        chunked = SliceWise2D(net2d, slice_batch_size=3)(volume)
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(chunked, expected)


def test_slicewise_pads_to_a_multiple_and_crops_back():
    seen = []

    def net2d(batch):
        seen.append(tuple(batch.shape))
        return batch[:, :3] + 1

    volume = torch.randn(1, 4, 40, 24, 3)
    output = SliceWise2D(net2d, multiple=32)(volume)
    assert seen == [(3, 4, 64, 32)]
    torch.testing.assert_close(output, volume[:, :3] + 1)


def test_slicewise_runs_an_smp_unet_through_sliding_window():
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    unet = smp.Unet("resnet18", encoder_weights=None, in_channels=4, classes=4).eval()
    volume = torch.randn(1, 4, 40, 40, 6)
    logits = sliding_window_inference(volume, (40, 40, 3), SliceWise2D(unet), overlap=0.0)
    assert logits.shape == (1, 4, 40, 40, 6) and torch.isfinite(logits).all()


def test_slicewise_rejects_2d_inputs_and_bad_settings():
    with pytest.raises(ValueError, match=r"\(N, C, X, Y, Z\)"):
        SliceWise2D(nn.Identity())(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="multiple"):
        SliceWise2D(nn.Identity(), multiple=0)


def test_in_plane_downsampled_shrinks_x_and_y_only_and_keeps_the_inner_state_dict():
    seen = []
    inner = nn.Conv3d(2, 3, 1)
    inner.register_forward_pre_hook(lambda module, inputs: seen.append(tuple(inputs[0].shape)))
    model = InPlaneDownsampled(inner, 4)
    out = model(torch.randn(1, 2, 8, 12, 5))
    assert seen == [(1, 2, 2, 3, 5)] and out.shape == (1, 3, 8, 12, 5)
    assert list(model.state_dict()) == ["weight", "bias"]
    model.load_state_dict(nn.Conv3d(2, 3, 1).state_dict())
    x = torch.randn(1, 2, 4, 4, 2)
    torch.testing.assert_close(InPlaneDownsampled(inner, 1)(x), inner(x))
    with pytest.raises(ValueError, match="multiples of factor 4"):
        model(torch.zeros(1, 2, 6, 8, 2))
    with pytest.raises(ValueError, match="factor"):
        InPlaneDownsampled(inner, 0)
