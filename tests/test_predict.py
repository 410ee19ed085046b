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
