"""GPU efficiency of the training loop, tested on the CPU: the AMP dtype, the scaler, sums kept on the device."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from braintools import runtime
from braintools.evaluation import dice, overlap
from braintools.profiles import PROFILES
from braintools.training import losses, recipes, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
        self.dtypes: list[torch.dtype] = []

    def forward(self, x):
        out = self.body(x)
        self.dtypes.append(out.dtype)
        return out


def _data(n=24, batch_size=4):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(n, 4, 8, 8, generator=generator)
    return DataLoader(TensorDataset(images, images.argmax(1)), batch_size=batch_size)


def _model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = SmallNet()
    return model, torch.optim.AdamW(model.parameters(), lr=0.01)


def test_autocast_dtype_follows_the_device_capabilities():
    assert runtime.autocast_dtype("cpu") is None
    assert runtime.autocast_dtype(torch.device("mps")) is None
    assert runtime.autocast_dtype("cuda", bf16_supported=lambda: True) == torch.bfloat16  # A100, L4, H100
    assert runtime.autocast_dtype("cuda:1", bf16_supported=lambda: False) == torch.float16  # T4, P100, V100
    if not torch.cuda.is_available():
        assert runtime._native_bfloat16() is False
        assert runtime.autocast_dtype("cuda") == torch.float16  # asked without a GPU: nothing native


def test_cudnn_autotune_only_on_cuda_and_restores_the_setting():
    before = torch.backends.cudnn.benchmark
    with runtime.cudnn_autotune("cuda"):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark == before
    with runtime.cudnn_autotune("cpu"):
        assert torch.backends.cudnn.benchmark == before
    with pytest.raises(RuntimeError), runtime.cudnn_autotune("cuda"):
        raise RuntimeError("a failed epoch")
    assert torch.backends.cudnn.benchmark == before


def _old_epoch_loss(model, loader, loss_fn, optimizer, accumulation_steps):
    """The loop before the change: ``loss.item()`` every batch, summed in Python."""
    total, batches = 0.0, 0
    optimizer.zero_grad(set_to_none=True)
    for images, targets in loader:
        loss = loss_fn(model(images), targets)
        total, batches = total + loss.item(), batches + 1
        (loss / accumulation_steps).backward()
        if batches % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    if batches % accumulation_steps:
        optimizer.step()
    return total / batches


@pytest.mark.parametrize("accumulation_steps", [1, 3])
@pytest.mark.parametrize("check_every", [None, 1, 4, 100])
def test_the_epoch_loss_is_the_mean_of_the_batch_losses_as_before(accumulation_steps, check_every):
    loss_fn = losses.DiceCELoss()
    model, optimizer = _model_and_optimizer()
    expected = _old_epoch_loss(model, _data(), loss_fn, optimizer, accumulation_steps)
    model, optimizer = _model_and_optimizer()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    got = train.train_one_epoch(model, _data(), loss_fn, optimizer, scaler, accumulation_steps, progress=False,
                                check_every=check_every)
    assert got == expected  # the same float64 sum of the same float32 losses, in the same order


def test_host_reads_happen_every_check_every_batches_not_every_batch(monkeypatch):
    reads = []  # values read by the training loop's own code (the optimizer reads CPU step counters: no wait)
    for name in ("item", "__float__", "__int__", "__bool__", "tolist", "cpu"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename == train.__file__:
                reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    model, optimizer = _model_and_optimizer()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loader = _data(n=48, batch_size=2)  # 24 batches
    train.train_one_epoch(model, loader, lambda logits, target: logits.float().pow(2).mean(), optimizer, scaler,
                          progress=False, check_every=8)
    monkeypatch.undo()
    # 3 checks (batches 8, 16, 24): the non-finite flag and the running mean; then the flag and the epoch mean
    assert reads == ["__int__", "__float__"] * 3 + ["__int__", "cpu", "__float__", "__float__"], reads


def _nan_at(batch_index):
    calls = []

    def loss_fn(logits, target):
        calls.append(1)
        value = logits.float().pow(2).mean()
        return value * float("nan") if len(calls) - 1 == batch_index else value

    return loss_fn


def test_a_non_finite_loss_names_its_batch_even_when_read_later():
    model, optimizer = _model_and_optimizer()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with pytest.raises(FloatingPointError, match="loss is nan at batch 3"):
        train.train_one_epoch(model, _data(), _nan_at(3), optimizer, scaler, progress=False, check_every=5)


def test_on_a_cpu_a_non_finite_loss_stops_before_its_backward_pass():
    model, optimizer = _model_and_optimizer()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with pytest.raises(FloatingPointError, match="at batch 0"):
        train.train_one_epoch(model, _data(), _nan_at(0), optimizer, scaler, progress=False)
    assert all(torch.equal(old, new) for old, new in zip(before, model.parameters()))
    assert all(parameter.grad is None for parameter in model.parameters())


def test_evaluate_sums_on_the_device_the_same_numbers():
    model, _ = _model_and_optimizer()
    loader, loss_fn = _data(), losses.DiceCELoss()
    metrics = train.evaluate(model, loader, loss_fn)
    model.eval()
    with torch.no_grad():
        batch_losses = [float(loss_fn(model(images), targets)) for images, targets in loader]
        counts = sum(overlap.batch_counts(model(images), targets).double() for images, targets in loader)
    assert metrics["val_loss"] == pytest.approx(sum(batch_losses) / len(batch_losses), rel=1e-12)
    dices = dice.dice_from_counts(counts).tolist()
    assert [metrics[f"val_dice_{region}"] for region in ("WT", "TC", "ET")] == pytest.approx(dices, abs=1e-12)


@pytest.mark.parametrize("dtype, scaled", [(torch.bfloat16, False), (torch.float16, True)])
def test_fit_trains_under_the_chosen_dtype_and_scales_only_float16(monkeypatch, tmp_path, dtype, scaled):
    monkeypatch.setattr(train, "autocast_dtype", lambda device: dtype)  # a GPU's answer, simulated on the CPU
    model, optimizer = _model_and_optimizer()
    history = train.fit(model, _data(), _data(), losses.DiceCELoss(), optimizer, 2, checkpoint_dir=tmp_path,
                        checkpoint_name="amp", progress=False)
    assert len(history) == 2 and set(model.dtypes) == {dtype}
    scaler_state = torch.load(tmp_path / "amp_last.pt", weights_only=True)["scaler"]
    assert bool(scaler_state) is scaled  # a disabled GradScaler saves an empty state
    model.dtypes.clear()
    train.fit(model, _data(), None, losses.DiceCELoss(), optimizer, 1, amp=False, monitor="train_loss",
              progress=False)
    assert set(model.dtypes) == {torch.float32}


def test_a_run_saved_without_float16_resumes_with_float16(monkeypatch, tmp_path):
    model, optimizer = _model_and_optimizer()
    train.fit(model, _data(), _data(), losses.DiceCELoss(), optimizer, 1, checkpoint_dir=tmp_path,
              checkpoint_name="run", progress=False)  # on the CPU: no scaler state
    monkeypatch.setattr(train, "autocast_dtype", lambda device: torch.float16)  # resumed where float16 is used
    model, optimizer = _model_and_optimizer(seed=1)
    history = train.fit(model, _data(), _data(), losses.DiceCELoss(), optimizer, 2, checkpoint_dir=tmp_path,
                        checkpoint_name="run", resume_from=tmp_path / "run_last.pt", progress=False)
    assert [row["epoch"] for row in history] == [1, 2]


def test_recipes_take_the_profile_workers_and_resume_across_a_worker_change(tmp_path):
    kaggle, course = PROFILES["kaggle"], PROFILES["course"]
    assert kaggle.num_workers == 2 and course.num_workers == 0 and PROFILES["ci"].num_workers == 0
    assert recipes.UNet3DRecipe.from_profile(kaggle).num_workers == 2
    assert recipes.UNet2DRecipe.from_profile(course).num_workers == 0
    recipe = recipes.UNet3DRecipe.from_profile(PROFILES["ci"])
    model, optimizer = _model_and_optimizer()
    from braintools.models.checkpoints import save_checkpoint

    save_checkpoint(tmp_path / "unet3d_last.pt", model, optimizer, 1, [], recipe=recipes.recipe_settings(recipe))
    changed = recipes.UNet3DRecipe.from_profile(PROFILES["ci"], num_workers=4)
    assert recipes.resume_point(tmp_path, "unet3d", changed) == tmp_path / "unet3d_last.pt"
    with pytest.raises(Exception, match="batch_size"):
        recipes.resume_point(tmp_path, "unet3d", recipes.UNet3DRecipe.from_profile(PROFILES["ci"], batch_size=5))
