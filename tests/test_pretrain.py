"""The course's own pretrained encoder: the hidden-modality proxy task, its loss, the encoder file and its reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import toy_case
from torch import nn

from braintools.datasets.slices2d import SliceDataset, select_slices, summarise_source
from braintools.datasets.volumes import VolumeSource
from braintools.models import smp2d
from braintools.models.checkpoints import network_of
from braintools.training import pretrain
from braintools.training.recipes import UNet2DRecipe

TINY = dict(architecture="Unet", encoder="resnet18", image_size=32, shrink=1, batch_size=4, slices_per_epoch=8,
            learning_rate=1e-3, seed=3)


@pytest.fixture(scope="module")
def source():
    """Two toy patients (40 x 40 x 20, BraTS contrasts), z-scored on the fly."""
    items = []
    for seed in (1, 2):
        image, seg = toy_case(seed=seed)
        items.append((f"BraTS20_Training_00{seed}", image, np.where(seg == 4, 3, seg).astype(np.uint8)))
    return VolumeSource.from_arrays(items)


def test_hide_channel_zeroes_one_sequence_and_weighs_the_brain_only():
    image = torch.zeros(4, 6, 6)
    image[:, 1:5, 1:5] = torch.arange(1, 5, dtype=torch.float32)[:, None, None]  # a 4 x 4 "brain"
    masked, target = pretrain.hide_channel(image, 2)
    assert masked[2].abs().sum() == 0 and torch.equal(masked[[0, 1, 3]], image[[0, 1, 3]])
    assert torch.equal(target[:4], image)
    assert target[4:].sum(dim=(1, 2)).tolist() == [0.0, 0.0, 16.0, 0.0]
    assert torch.equal(target[6].bool(), image[2] != 0)
    with pytest.raises(ValueError, match="channel 4"):
        pretrain.hide_channel(image, 4)


def test_hidden_modality_loss_counts_the_hidden_sequence_inside_the_brain_only():
    image = torch.zeros(1, 4, 6, 6)
    image[:, :, 1:5, 1:5] = 1.0
    _, target = pretrain.hide_channel(image[0], 1)
    prediction = image.clone()
    prediction[:, 1, 1:5, 1:5] = 3.0  # off by 2 on the hidden sequence, inside the brain
    prediction[:, 0] = 50.0  # visible sequences and the background do not count
    prediction[:, 1, 0, 0] = 99.0
    assert pretrain._hidden_modality_loss(prediction, target[None]).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="does not match"):
        pretrain._hidden_modality_loss(prediction[:, :3], target[None])


def test_every_epoch_hides_other_sequences_reproducibly(source):
    slices = SliceDataset(source, select_slices(summarise_source(source, progress=False), 1.0), 48)
    dataset = pretrain.HiddenModalitySlices(slices, seed=5)
    drawn = {epoch: [] for epoch in (1, 2)}
    for epoch in drawn:
        dataset.set_epoch(epoch)
        drawn[epoch] = [dataset.hidden_channel(i) for i in range(len(dataset))]
        masked, _ = dataset[0]
        assert masked[drawn[epoch][0]].abs().sum() == 0  # the item hides the channel it says
    assert drawn[1] != drawn[2] and set(drawn[1]) == {0, 1, 2, 3}
    dataset.set_epoch(1)
    assert [dataset.hidden_channel(i) for i in range(len(dataset))] == drawn[1]
    assert slices.epoch == 1  # the augmentation draws follow the epoch too


class _Oracle(nn.Module):
    """Returns the true slices it was given at construction, whatever the input (a perfect reconstruction)."""

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, inputs):
        return self.images[: len(inputs)] + 0 * self.anchor


def test_reconstruction_errors_compare_the_network_with_guessing_the_mean(source):
    slices = SliceDataset(source, [(0, 10)], 48)
    image = slices[0][0][None]
    table = pretrain.reconstruction_errors(_Oracle(image), slices)
    assert list(table.index) == ["t1", "t1ce", "t2", "flair"]
    assert np.allclose(table["L1 network"], 0.0) and np.allclose(table["learnt"], 1.0)
    assert np.allclose(table["L1 of the answer at the network's size"], 0.0)  # shrink 1: the answer itself
    brain = image[0].ne(0).any(0)
    expected = [float(image[0, c][brain].abs().mean()) for c in range(4)]
    assert np.allclose(table["L1 guessing the mean"], expected, rtol=1e-5)
    assert np.allclose(pretrain.reconstruction_errors(_Oracle(torch.zeros_like(image)), slices)["learnt"], 0.0)
    blurred = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(image, 4), size=image.shape[-2:],
                                              mode="bilinear", align_corners=False)
    shrunk = pretrain.reconstruction_errors(_Oracle(blurred), slices, shrink=4)
    assert np.allclose(shrunk["L1 network"], shrunk["L1 of the answer at the network's size"])
    assert np.allclose(shrunk["learnt"], 1.0) and (shrunk["L1 network"] > 0.01).all()


def test_pretrain_encoder_saves_an_encoder_file_that_starts_notebook_04s_model(source, tmp_path, one_torch_thread):
    recipe = pretrain.PretrainRecipe(epochs=2, **TINY)
    first = pretrain.pretrain_encoder(recipe, source, tmp_path)
    assert not first.reused and len(first.history) == 2 and first.path == tmp_path / f"{recipe.name}.pt"
    assert all(np.isfinite(row["train_loss"]) for row in first.history)
    model = smp2d.create_smp_model("Unet", "resnet18", weights_path=first.path)
    assert model.initialisation == f"encoder from {first.path.name}"
    trained = network_of(first.model).encoder.state_dict()
    assert all(torch.equal(value, trained[key]) for key, value in model.encoder.state_dict().items())
    assert not torch.equal(model.encoder.conv1.weight, smp2d.create_smp_model("Unet", "resnet18").encoder.conv1.weight)
    segmenter = UNet2DRecipe(architecture="Unet", encoder="resnet18", encoder_weights=None, image_size=32, shrink=1,
                             epochs=3, batch_size=4, slices_per_epoch=8, learning_rate=1e-3, keep_empty_fraction=0.1,
                             unfreeze_top_epoch=2, unfreeze_all_epoch=3, weights_path=str(first.path))
    _, freezer = segmenter.model_and_freezer()
    assert freezer.schedule == "three_phase" and freezer.encoder_lr_scale == 0.1  # a pretrained start

    again = pretrain.pretrain_encoder(recipe, source, tmp_path)  # same settings: loaded, not trained
    assert again.reused and again.history == first.history
    assert all(torch.equal(value, trained[key]) for key, value in network_of(again.model).encoder.state_dict().items())


def test_an_interrupted_pretraining_resumes_and_other_settings_train_again(source, tmp_path, one_torch_thread):
    one_epoch = pretrain.pretrain_encoder(pretrain.PretrainRecipe(epochs=1, **TINY), source, tmp_path)
    resumed = pretrain.pretrain_encoder(pretrain.PretrainRecipe(epochs=2, **TINY), source, tmp_path)
    assert not resumed.reused and len(resumed.history) == 2
    assert resumed.history[0]["train_loss"] == one_epoch.history[0]["train_loss"]  # epoch 1 was not trained again
    other = pretrain.pretrain_encoder(pretrain.PretrainRecipe(epochs=1, **{**TINY, "learning_rate": 5e-4}), source,
                                      tmp_path)
    assert not other.reused and pretrain._read_settings(other.path)["settings"]["recipe"]["learning_rate"] == 5e-4
    fewer_patients = pretrain.pretrain_encoder(pretrain.PretrainRecipe(epochs=1, **{**TINY, "learning_rate": 5e-4}),
                                               source.subset(["BraTS20_Training_001"]), tmp_path)
    assert not fewer_patients.reused and fewer_patients.case_ids == ("BraTS20_Training_001",)
