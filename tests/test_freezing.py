"""Encoder stages and the freezing schedules: exactly the claimed parameters train, frozen BN stays put."""

import pytest
import torch
from torch import nn

from braintools.models import smp2d
from braintools.training import freezing
from braintools.training.freezing import freeze_batchnorm_statistics

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(encoder="resnet18"):
    torch.manual_seed(0)
    return smp2d.create_smp_model("Unet", encoder)


def _batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 32, 32, generator=generator), torch.randint(0, 4, (2, 32, 32), generator=generator)


def test_resnet_stages_are_stem_and_the_four_layers():
    found = freezing._find_encoder_stages(_model().encoder, in_channels=4)
    prefixes = [{name.split(".")[0] for name in stage} for stage in found.stages]
    assert prefixes == [{"conv1", "bn1"}, {"layer1"}, {"layer2"}, {"layer3"}, {"layer4"}]
    assert found.unused == []


def test_efficientnet_stages_and_unused_head():
    found = freezing._find_encoder_stages(_model("efficientnet-b0").encoder, in_channels=4)
    assert len(found.stages) == 5
    assert {name.split(".")[0] for name in found.stages[0]} == {"_conv_stem", "_bn0"}
    assert sorted(found.unused) == ["_bn1.bias", "_bn1.weight", "_conv_head.weight"]  # smp never calls them


def test_timm_encoder_stages():
    found = freezing._find_encoder_stages(_model("tu-resnet18").encoder, in_channels=4)
    assert [sorted({name.split(".")[1] for name in stage}) for stage in found.stages] == [
        ["bn1", "conv1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]


def test_stage_search_leaves_the_encoder_as_it_was():
    encoder = _model().encoder.train()
    encoder.conv1.weight.requires_grad_(False)
    before = encoder.bn1.running_mean.clone()
    freezing._find_encoder_stages(encoder, in_channels=4)
    assert encoder.training and not encoder.conv1.weight.requires_grad and encoder.layer1[0].conv1.weight.requires_grad
    assert torch.equal(encoder.bn1.running_mean, before)


def test_param_groups_cover_every_used_parameter_once():
    model = _model()
    freezer = freezing.EncoderFreezer(model, encoder_lr_scale=0.1, stage_lr_decay=0.5)
    groups = freezer.param_groups(lr=1e-3, weight_decay=0.01)
    assert [g["name"] for g in groups] == ["decoder"] + [f"encoder stage {k}" for k in range(1, 6)]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-4 / 16, 1e-4 / 8, 1e-4 / 4, 1e-4 / 2, 1e-4])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    torch.optim.AdamW(groups)


def test_three_phase_descriptions():
    freezer = freezing.EncoderFreezer(_model(), "three_phase", top_stages_epoch=3, all_stages_epoch=5)
    assert [freezer.trainable_stages(e) for e in (1, 2, 3, 4, 5, 9)] == [[], [], [4, 5], [4, 5], [1, 2, 3, 4, 5]] + [
        [1, 2, 3, 4, 5]]
    assert freezer.phase(1) == "phase 1: decoder + head"
    assert freezer.phase(3) == "phase 2: decoder + head + encoder stages 4-5"
    assert freezer.phase(5) == "phase 3: everything (differential learning rates)"


@pytest.mark.parametrize("schedule, frozen, text", [
    ("freeze_first_two", [1, 2], "fixed: encoder stages 1-2 frozen"),
    ("freeze_first", [1], "fixed: encoder stage 1 frozen"),
    ("none", [], "fixed: nothing frozen"),
])
def test_fixed_schedules(schedule, frozen, text):
    freezer = freezing.EncoderFreezer(_model(), schedule)
    for epoch in (1, 4, 10):
        assert [s for s in range(1, 6) if s not in freezer.trainable_stages(epoch)] == frozen
        assert freezer.phase(epoch) == text


def test_bad_schedules_are_errors():
    model = _model()
    with pytest.raises(ValueError, match="schedule must be one of"):
        freezing.EncoderFreezer(model, "slowly")
    with pytest.raises(ValueError, match="top_stages_epoch <= all_stages_epoch"):
        freezing.EncoderFreezer(model, top_stages_epoch=4, all_stages_epoch=2)


def _train_step(model, optimizer):
    images, classes = _batch()
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(images), classes).backward()
    optimizer.step()


def _expected_trainable(freezer, epoch):
    stages = freezer.trainable_stages(epoch)
    names = set(_decoder_names(freezer))
    for stage in stages:
        names |= {f"encoder.{name}" for name in freezer.stage_names[stage - 1]}
    return names


def _decoder_names(freezer):
    ids = {id(p) for p in freezer.decoder}
    return [name for name, p in freezer.model.named_parameters() if id(p) in ids]


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet-b0"])
def test_each_phase_trains_exactly_its_parameters(encoder):
    model = _model(encoder)
    freezer = freezing.EncoderFreezer(model, "three_phase", top_stages_epoch=2, all_stages_epoch=3)
    optimizer = torch.optim.AdamW(freezer.param_groups(lr=1e-3, weight_decay=0.01))
    for epoch in (1, 2, 3):
        model.train()
        freezer.on_epoch_start(epoch)
        expected = _expected_trainable(freezer, epoch)
        assert {name for name, p in model.named_parameters() if p.requires_grad} == expected
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        _train_step(model, optimizer)
        changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
        assert changed == expected, epoch


def _running_stats(modules):
    return [torch.cat([m.running_mean, m.running_var]).clone() for m in modules]


def test_frozen_batchnorm_statistics_do_not_move():
    model = _model()
    freezer = freezing.EncoderFreezer(model, "freeze_first_two")
    optimizer = torch.optim.AdamW(freezer.param_groups(lr=1e-3))
    model.train()
    freezer.on_epoch_start(1)
    frozen = freezer.frozen_batchnorms()
    assert frozen == [model.encoder.bn1] + [m for m in model.encoder.layer1.modules()
                                             if isinstance(m, torch.nn.BatchNorm2d)]
    trainable = [m for m in model.encoder.layer3.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    frozen_before, trainable_before = _running_stats(frozen), _running_stats(trainable)
    for _ in range(2):
        model.train()  # as a training loop does every epoch: the hook keeps frozen BN in eval mode
        _train_step(model, optimizer)
    assert all(not m.training for m in frozen) and all(m.training for m in trainable)
    assert all(torch.equal(a, b) for a, b in zip(_running_stats(frozen), frozen_before))
    assert not any(torch.equal(a, b) for a, b in zip(_running_stats(trainable), trainable_before))


def test_unfreezing_releases_batchnorm():
    model = _model()
    freezer = freezing.EncoderFreezer(model, "three_phase", top_stages_epoch=2, all_stages_epoch=2)
    model.train()
    freezer.on_epoch_start(1)
    assert len(freezer.frozen_batchnorms()) == 20
    freezer.on_epoch_start(2)
    assert freezer.frozen_batchnorms() == [] and freezer.current_phase.startswith("phase 3")
    before = model.encoder.bn1.running_mean.clone()
    _train_step(model, torch.optim.SGD(model.parameters(), lr=0.0))
    assert model.encoder.bn1.training and not torch.equal(model.encoder.bn1.running_mean, before)


def test_graph_parameters_finds_the_leaves_of_a_result():
    first, second = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    hidden = first(torch.zeros(1, 3))
    assert freezing._graph_parameters(hidden) == {id(first.weight), id(first.bias)}
    assert freezing._graph_parameters(second(hidden)) == {id(p) for p in (*first.parameters(), *second.parameters())}
    assert freezing._graph_parameters(torch.zeros(2)) == set()


def test_freeze_batchnorm_statistics_keeps_running_stats_in_training():
    model = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.BatchNorm3d(2), nn.ReLU())
    assert freeze_batchnorm_statistics(model) == 1
    before = model[1].running_mean.clone()
    model.train()
    model(torch.randn(2, 1, 4, 4, 4) + 3).sum().backward()
    torch.testing.assert_close(model[1].running_mean, before)
    assert model[1].weight.grad is not None and model[0].training
