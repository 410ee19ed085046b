"""predict_case: one case to BraTS labels and a NIfTI with the source affine (synthetic and real data)."""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from braintools import io
from braintools.inference import SliceWise2D
from braintools.labels import from_contiguous
from braintools.postprocess import postprocess_classes
from braintools.predict import predict_case


def tiny_model(seed: int = 0, out_channels: int = 4, spatial_dims: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
    return nn.Sequential(conv(4, 8, 3, padding=1), nn.ReLU(), conv(8, out_channels, 1))


def synthetic_case(shape=(20, 18, 10)) -> io.Case:
    rng = np.random.default_rng(0)
    image = np.zeros((4, *shape), np.float32)
    image[:, 2:-2, 2:-2, 1:-1] = rng.normal(100, 20, (4, shape[0] - 4, shape[1] - 4, shape[2] - 2))
    return io.Case("synthetic_001", image, None, io.brats_affine(shape, (1.0, 1.0, 2.0)))


def test_predict_case_writes_a_nifti_with_the_source_affine(tmp_path):
    case = synthetic_case()
    out = tmp_path / "preds" / "synthetic_001.nii.gz"
    labels = predict_case(tiny_model(), case, roi_size=(8, 8, 8), overlap=0.25, out_path=out)
    assert labels.shape == case.image.shape[1:] and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 4}
    saved = nib.load(out)
    np.testing.assert_array_equal(saved.affine, case.affine)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), labels)


def test_predict_case_is_argmax_of_the_normalised_volume():
    from braintools.preprocess import zscore_brain

    case, model = synthetic_case(), tiny_model(1)
    with torch.no_grad():
        logits = model(torch.from_numpy(zscore_brain(case.image))[None])
    expected = from_contiguous(logits[0].argmax(0).numpy())
    labels = predict_case(model, case, roi_size=case.image.shape[1:])  # one window: same as a plain call
    np.testing.assert_array_equal(labels, expected)


def test_predict_case_with_tta_postprocess_and_2d_model():
    case = synthetic_case()
    cleanup = functools.partial(postprocess_classes, min_component_size=10_000)  # removes every tumour voxel
    labels = predict_case(tiny_model(), case, (8, 8, 8), tta=True, flip_axes=(0, 1), postprocess=cleanup)
    assert not labels.any()
    slice_model = SliceWise2D(tiny_model(spatial_dims=2), multiple=8)
    labels_2d = predict_case(slice_model, case, roi_size=(20, 18, 4), overlap=0.0, tta=True)
    assert labels_2d.shape == case.image.shape[1:] and set(np.unique(labels_2d)) <= {0, 1, 2, 4}


def test_predict_case_restores_training_mode_and_checks_classes():
    model = tiny_model().train()
    predict_case(model, synthetic_case(), (8, 8, 8))
    assert model.training
    with pytest.raises(ValueError, match="4 logits"):
        predict_case(tiny_model(out_channels=3), synthetic_case(), (8, 8, 8))


@pytest.mark.real_data
def test_predict_case_on_a_cropped_real_case(real_sample_dir, tmp_path):
    full = io.load_case(io.find_cases(real_sample_dir)[0])
    start = np.array([96, 96, 60])
    crop = tuple(slice(s, s + size) for s, size in zip(start, (32, 32, 16)))
    affine = full.affine.copy()
    affine[:3, 3] += affine[:3, :3] @ start  # the crop's first voxel keeps its world position
    case = io.Case(full.case_id, full.image[(slice(None), *crop)], full.seg[crop], affine)
    out = tmp_path / f"{case.case_id}.nii"
    labels = predict_case(tiny_model(), case, (16, 16, 16), sw_batch_size=2, out_path=out)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, affine)
    assert set(np.unique(np.asanyarray(saved.dataobj))) <= {0, 1, 2, 4}
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), labels)


def test_predict_case_crop_margin_predicts_inside_the_brain_box_only():
    from braintools.predict import brain_box

    case = synthetic_case()
    pointwise = nn.Sequential(nn.Conv3d(4, 4, 1))  # each voxel on its own: window placement does not matter
    torch.manual_seed(3)
    full = predict_case(pointwise, case, (8, 8, 8))
    cropped = predict_case(pointwise, case, (8, 8, 8), crop_margin=1)
    box = brain_box(case.image, 1)
    np.testing.assert_array_equal(cropped[box], full[box])
    outside = np.ones(case.image.shape[1:], bool)
    outside[box] = False
    assert outside.any() and not cropped[outside].any()


def test_brain_box_and_round_up_roi():
    from braintools.predict import brain_box, round_up_roi

    image = np.zeros((2, 10, 12, 8), np.float32)
    image[1, 3:5, 4:9, 2] = 1.0
    assert brain_box(image, 0) == (slice(3, 5), slice(4, 9), slice(2, 3))
    assert brain_box(image, 2) == (slice(1, 7), slice(2, 11), slice(0, 5))
    assert brain_box(np.zeros((1, 4, 4, 4)), 2) == (slice(0, 4),) * 3
    assert round_up_roi((32, 33, 16), 16) == (32, 48, 16)
    assert round_up_roi((100, 100, 16), (128, 128, 32)) == (128, 128, 32)


def test_unet3d_is_rebuilt_from_its_weights_alone():
    from braintools.models3d import UNet3D
    from braintools.predict import unet3d_from_state

    for deep in (False, True):
        original = UNet3D(features=(4, 8, 16), deep_supervision=deep)
        rebuilt = unet3d_from_state(original.state_dict())
        assert rebuilt.features == (4, 8, 16) and rebuilt.deep_supervision == deep
        rebuilt.load_state_dict(original.state_dict())  # strict: every key and shape fits
    with pytest.raises(ValueError, match="UNet3D"):
        unet3d_from_state({"weight": torch.zeros(1)})


def test_load_best_model_prefers_the_3d_unet_and_wraps_2d_models(tmp_path):
    from braintools.models2d import create_smp_model
    from braintools.models3d import UNet3D
    from braintools.predict import load_best_model
    from braintools.profiles import get_profile
    from braintools.train import save_checkpoint

    profile = get_profile("ci")
    assert load_best_model(tmp_path, profile) is None
    save_checkpoint(tmp_path / "unet2d_best.pt", create_smp_model(profile.architecture_2d, profile.encoder_2d), epoch=2)
    loaded = load_best_model(tmp_path, profile)
    assert loaded.name == "unet2d" and isinstance(loaded.model, SliceWise2D) and loaded.epoch == 2
    assert loaded.roi_size == (-1, -1, profile.roi_size[2]) and loaded.overlap == 0.0
    save_checkpoint(tmp_path / "unet3d_best.pt", UNet3D(features=(4, 8, 16, 32)), epoch=5)
    loaded = load_best_model(tmp_path, profile)
    unet = getattr(loaded.model, "model", loaded.model)  # ci: wrapped in Downsampled3D (profile.downsample_3d)
    assert loaded.name == "unet3d" and unet.features == (4, 8, 16, 32) and not loaded.model.training
    assert loaded.roi_size == profile.roi_size and "unet3d" in loaded.description
    (tmp_path / "inflated3d_best.pt").write_bytes(b"")  # not a usable checkpoint, and not preferred anyway
    assert load_best_model(tmp_path, profile, order=("unet2d",)).name == "unet2d"


def test_window_settings_follow_the_profile_unless_given():
    from braintools.predict import _window_settings
    from braintools.profiles import get_profile

    profile = get_profile("course")
    assert _window_settings("unet3d", profile, None, None) == (profile.roi_size, profile.overlap)
    assert _window_settings("unet3d", profile, (64, 64, 32), 0.25) == ((64, 64, 32), 0.25)
    inflated = (profile.roi_size_inflated, profile.overlap_inflated)
    assert _window_settings("inflated3d", profile, None, None) == inflated


def test_a_2d_model_trained_on_shrunk_slices_predicts_full_size_volumes(tmp_path):
    import dataclasses

    from braintools.models2d import Downsampled, create_smp_model
    from braintools.predict import load_best_model
    from braintools.profiles import get_profile
    from braintools.train import save_checkpoint

    profile = dataclasses.replace(get_profile("ci"), downsample_2d=2)
    wrapped = Downsampled(create_smp_model(profile.architecture_2d, profile.encoder_2d), 2)
    save_checkpoint(tmp_path / "unet2d_best.pt", wrapped)  # the wrapper saves the inner model's keys
    loaded = load_best_model(tmp_path, profile)
    assert isinstance(loaded.model.model, Downsampled) and loaded.model.multiple == 64
    with torch.no_grad():
        logits = loaded.model(torch.zeros(1, 4, 40, 36, 3))
    assert logits.shape == (1, 4, 40, 36, 3)


def test_an_inflated_model_of_a_shrunk_2d_model_sees_the_same_in_plane_scale(tmp_path):
    import dataclasses

    from braintools.inflation import InPlaneDownsampled, inflate_2d_model_to_3d
    from braintools.models2d import create_smp_model
    from braintools.predict import load_best_model
    from braintools.profiles import get_profile
    from braintools.train import save_checkpoint

    profile = dataclasses.replace(get_profile("ci"), downsample_2d=2, roi_size_inflated=(40, 40, 16))
    inflated = inflate_2d_model_to_3d(create_smp_model(profile.architecture_2d, profile.encoder_2d))
    save_checkpoint(tmp_path / "inflated3d_best.pt", inflated)
    loaded = load_best_model(tmp_path, profile)
    assert loaded.name == "inflated3d" and isinstance(loaded.model, InPlaneDownsampled)
    assert loaded.roi_size == (64, 64, 32)  # X and Y multiples of 32 x 2, Z of 32
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 4, 64, 64, 32)).shape == (1, 4, 64, 64, 32)


def test_a_unet3d_trained_on_shrunk_patches_is_wrapped_the_same_way(tmp_path):
    import dataclasses

    from braintools.models3d import Downsampled3D, UNet3D
    from braintools.predict import load_best_model
    from braintools.profiles import get_profile
    from braintools.train import save_checkpoint

    profile = dataclasses.replace(get_profile("ci"), downsample_3d=2, roi_size=(40, 40, 16))
    save_checkpoint(tmp_path / "unet3d_best.pt", Downsampled3D(UNet3D(features=(4, 8, 16, 32)), 2))
    loaded = load_best_model(tmp_path, profile)
    assert loaded.name == "unet3d" and isinstance(loaded.model, Downsampled3D) and loaded.model.factor == 2
    assert loaded.roi_size == (48, 48, 16)  # multiples of 8 (three halvings) x 2
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 4, 48, 48, 16)).shape == (1, 4, 48, 48, 16)
    plain = load_best_model(tmp_path, dataclasses.replace(profile, downsample_3d=1))
    assert isinstance(plain.model, UNet3D)
