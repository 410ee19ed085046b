"""The training loop: history, checkpoints, exact resume, accumulation, schedulers, early stopping, freezer."""


import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from braintools import paths
from braintools.data import labels
from braintools.errors import DataError
from braintools.evaluation import dice, overlap
from braintools.models import checkpoints, smp2d
from braintools.models.unet3d import UNet3D
from braintools.training import checkpoint_folder, freezing, losses, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """A 2-layer conv net with BatchNorm and dropout (both matter for exact resume)."""

    def __init__(self, norm=True, dropout=0.2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8) if norm else nn.Identity(),
                                  nn.ReLU(), nn.Dropout(dropout), nn.Conv2d(8, 4, 1))

    def forward(self, x):
        return self.body(x)


def _loaders(n=16, batch_size=4, shuffle=True, size=8):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(n, 4, size, size, generator=generator)
    classes = images.argmax(1)  # learnable: the brightest channel is the class
    dataset = TensorDataset(images, classes)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle), DataLoader(dataset, batch_size=8)


def _setup(seed=0, lr=0.01, **kwargs):
    torch.manual_seed(seed)
    model = TinyNet(**kwargs)
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def test_history_rows_and_checkpoints(tmp_path):
    model, optimizer = _setup()
    train_loader, val_loader = _loaders()
    history = train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, epochs=3,
                        checkpoint_dir=tmp_path, checkpoint_name="tiny", progress=False)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "phase", "lrs", "train_loss", "val_loss", "val_dice_WT", "val_dice_TC",
                               "val_dice_ET", "val_dice_mean", "best", "seconds"}
    assert history[0]["lrs"] == {"group 0": 0.01} and history[0]["phase"] is None
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(0.0 <= row[f"val_dice_{r}"] <= 1.0 for row in history for r in ("WT", "TC", "ET"))
    last, best = paths.checkpoint_file(tmp_path, "tiny", "last"), paths.checkpoint_file(tmp_path, "tiny", "best")
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] == 3 and saved["history"] == history
    assert set(saved) >= {"model", "optimizer", "epoch", "history", "scheduler", "scaler", "early_stopping"}
    scores = [row["val_dice_mean"] for row in history]
    improved = [score > max(scores[:i], default=float("-inf")) for i, score in enumerate(scores)]
    assert [row["best"] for row in history] == improved  # flagged exactly when the monitored score improved
    best_saved = torch.load(best, weights_only=True)
    assert best_saved["epoch"] == max(history, key=lambda row: row["val_dice_mean"])["epoch"]
    assert "optimizer" not in best_saved and "random" not in best_saved  # for inference: weights only
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tiny.lock", "tiny_best.pt", "tiny_last.pt"]


def test_a_fresh_run_keeps_the_earlier_best_and_removes_stray_temporaries(tmp_path):
    train_loader, val_loader = _loaders()
    model, optimizer = _setup()
    train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1, checkpoint_dir=tmp_path,
              checkpoint_name="tiny", progress=False)
    first_best = (tmp_path / "tiny_best.pt").read_bytes()
    (tmp_path / ".tmp-12345-tiny_last.pt").write_bytes(b"half a checkpoint")  # a write killed midway
    model, optimizer = _setup(seed=1)
    train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1, checkpoint_dir=tmp_path,
              checkpoint_name="tiny", progress=False)
    assert (tmp_path / "tiny_best.previous.pt").read_bytes() == first_best
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tiny.lock", "tiny_best.previous.pt", "tiny_best.pt",
                                                          "tiny_last.pt"]


def test_a_run_killed_between_its_two_checkpoint_writes_keeps_its_best(tmp_path, monkeypatch):
    train_loader, val_loader = _loaders()
    model, optimizer = _setup()
    written = []

    def killed_at_the_last_write(path, *args, **kwargs):
        written.append(path.name)
        if path.name.endswith("_last.pt"):
            raise KeyboardInterrupt  # the process dies between the best and the last checkpoint of epoch 1
        return save(path, *args, **kwargs)

    save = checkpoint_folder.save_checkpoint
    monkeypatch.setattr(checkpoint_folder, "save_checkpoint", killed_at_the_last_write)
    with pytest.raises(KeyboardInterrupt):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 2, checkpoint_dir=tmp_path,
                  checkpoint_name="tiny", progress=False)
    assert written == ["tiny_best.pt", "tiny_last.pt"]  # best first: the epoch's best survives the kill
    assert torch.load(tmp_path / "tiny_best.pt", weights_only=True)["epoch"] == 1


def _without_seconds(history):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    train_loader, val_loader = _loaders()
    straight, optimizer = _setup()
    history = train.fit(straight, train_loader, val_loader, losses.DiceCELoss(), optimizer, 3, progress=False)

    first, optimizer = _setup()
    train.fit(first, train_loader, val_loader, losses.DiceCELoss(), optimizer, 2, checkpoint_dir=tmp_path,
              progress=False)
    last = paths.checkpoint_file(tmp_path, "model", "last")
    saved_weights = torch.load(last, weights_only=True)["model"]

    resumed, optimizer = _setup(seed=99)  # different initial weights: all must come from the checkpoint
    same = train.fit(resumed, train_loader, val_loader, losses.DiceCELoss(), optimizer, 2, resume_from=last,
                     progress=False)
    assert len(same) == 2
    assert all(torch.equal(resumed.state_dict()[k], v) for k, v in saved_weights.items())

    torch.manual_seed(12345)  # whatever happened to the random state in between
    resumed_history = train.fit(resumed, train_loader, val_loader, losses.DiceCELoss(), optimizer, 3,
                                resume_from=last, progress=False)
    assert [row["epoch"] for row in resumed_history] == [1, 2, 3]
    assert _without_seconds(resumed_history) == _without_seconds(history)
    assert all(torch.equal(resumed.state_dict()[k], v) for k, v in straight.state_dict().items())


def test_gradient_accumulation_equals_a_larger_batch():
    results = []
    for batch_size, steps in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = TinyNet(norm=False, dropout=0.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        train_loader, _ = _loaders(n=8, batch_size=batch_size, shuffle=False)
        loss = nn.CrossEntropyLoss()
        train.fit(model, train_loader, None, loss, optimizer, 1, accumulation_steps=steps, monitor="train_loss",
                  progress=False)
        results.append(model.state_dict())
    assert all(torch.allclose(results[0][k], results[1][k], atol=1e-6) for k in results[0])


def test_leftover_batches_still_step_and_step_schedulers_count_steps():
    model, optimizer = _setup()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    train_loader, _ = _loaders(n=20, batch_size=4)  # 5 batches
    train.fit(model, train_loader, None, losses.DiceCELoss(), optimizer, 2, accumulation_steps=2,
              scheduler=scheduler, scheduler_interval="step", monitor="train_loss", progress=False)
    assert scheduler.last_epoch == 2 * 3  # 3 optimizer steps per epoch: 2 + 2 + 1 batches


def test_reduce_lr_on_plateau_mode_must_match_the_monitor():
    model, optimizer = _setup()
    train_loader, val_loader = _loaders()
    with pytest.raises(ValueError, match="mode='min'.*needs mode='max'"):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1,
                  scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min"), progress=False)


def test_reduce_lr_on_plateau_halves_the_rate():
    torch.manual_seed(0)
    model = TinyNet(norm=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-12)  # effectively frozen: validation never improves
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=0, factor=0.5,
                                                           threshold=0.5)
    train_loader, val_loader = _loaders()
    history = train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 3, scheduler=scheduler,
                        monitor="val_loss", progress=False)
    assert [row["lrs"]["group 0"] for row in history] == pytest.approx([1e-12, 5e-13, 2.5e-13])


def test_early_stopping():
    torch.manual_seed(0)
    model = TinyNet(norm=False)  # no BatchNorm statistics: with lr 0 validation never changes
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_loader, val_loader = _loaders()
    history = train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 10,
                        early_stopping_patience=2, progress=False)
    assert len(history) == 3 and [row["best"] for row in history] == [True, False, False]


def test_early_stopping_state():
    stopper = train.EarlyStopping("min", patience=2, min_delta=0.1)
    assert stopper.update(1.0, 1) and not stopper.update(0.95, 2) and stopper.update(0.8, 3)
    assert not stopper.update(0.9, 4) and not stopper.should_stop and not stopper.update(0.85, 5)
    assert stopper.should_stop and stopper.best == 0.8 and stopper.best_epoch == 3
    copy = train.EarlyStopping("min")
    copy.load_state_dict(stopper.state_dict())
    assert copy.state_dict() == stopper.state_dict()


def test_argument_errors(tmp_path):
    model, optimizer = _setup()
    train_loader, val_loader = _loaders()
    with pytest.raises(ValueError, match="needs a val_loader"):
        train.fit(model, train_loader, None, losses.DiceCELoss(), optimizer, 1, progress=False)
    with pytest.raises(ValueError, match="monitor must be one of"):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1, monitor="dice")
    with pytest.raises(ValueError, match="accumulation_steps"):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1, accumulation_steps=0)
    with pytest.raises(ValueError, match="scheduler_interval"):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1, scheduler_interval="batch")
    with pytest.raises(DataError, match="checkpoint not found"):
        checkpoints.load_checkpoint(tmp_path / "none.pt", model)
    with pytest.raises(TypeError, match="a batch must be"):
        train._unpack_batch(torch.zeros(2), torch.device("cpu"))


def test_non_finite_loss_stops_with_a_clear_error():
    model, optimizer = _setup()
    train_loader, val_loader = _loaders()
    with pytest.raises(FloatingPointError, match="loss is nan"):
        train.fit(model, train_loader, val_loader, lambda logits, target: logits.sum() * float("nan"), optimizer, 1,
                  progress=False)


def test_batch_counts_match_numpy_dice():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 9, 7, generator=generator)
    classes = torch.randint(0, 4, (2, 9, 7), generator=generator)
    counts = overlap.batch_counts(logits, classes)
    predicted = labels.regions_from_classes(logits.argmax(1), axis=1).numpy()
    truth = labels.regions_from_classes(classes, axis=1).numpy()
    expected = [dice.dice(predicted[:, r], truth[:, r]) for r in range(3)]
    assert dice.dice_from_counts(counts).tolist() == pytest.approx(expected)
    one_hot = losses.one_hot(classes, 4)
    assert torch.equal(overlap.batch_counts(logits, one_hot), counts)
    region_logits = torch.where(labels.regions_from_classes(classes, axis=1).float() > 0, 5.0, -5.0)
    assert dice.dice_from_counts(overlap.batch_counts(region_logits, classes, "regions")).tolist() == [1.0, 1.0, 1.0]
    assert dice.dice_from_counts(torch.zeros(1, 3)).tolist() == [1.0]  # both empty: the BraTS rule
    with pytest.raises(ValueError, match="output"):
        overlap.predicted_regions(logits, "labels")


def test_freezer_phases_appear_in_the_history():
    torch.manual_seed(0)
    model = smp2d.create_smp_model("Unet", "resnet18", decoder_channels=(32, 16, 8, 8, 4))
    freezer = freezing.EncoderFreezer(model, "three_phase", top_stages_epoch=2, all_stages_epoch=3)
    optimizer = torch.optim.AdamW(freezer.param_groups(lr=1e-3))
    train_loader, val_loader = _loaders(n=4, batch_size=2, size=32)
    history = train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 3, freezer=freezer,
                        progress=False)
    assert [row["phase"][:7] for row in history] == ["phase 1", "phase 2", "phase 3"]
    assert list(history[0]["lrs"]) == ["decoder"] + [f"encoder stage {k}" for k in range(1, 6)]


def test_fit_trains_a_3d_unet_with_deep_supervision():
    torch.manual_seed(0)
    model = UNet3D(features=(4, 8, 16), deep_supervision=True)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 4, 8, 8, 8, generator=generator)
    dataset = TensorDataset(images, images.argmax(1))
    loader = DataLoader(dataset, batch_size=2)
    loss = losses.DeepSupervisionLoss(losses.DiceFocalLoss("classes"))
    history = train.fit(model, loader, loader, loss, torch.optim.AdamW(model.parameters(), 1e-3), 2,
                        progress=False)
    assert len(history) == 2 and 0.0 <= history[-1]["val_dice_ET"] <= 1.0


def test_a_checkpoint_folder_that_cannot_be_written_fails_before_any_training(tmp_path, monkeypatch):
    train_loader, val_loader = _loaders()
    model, optimizer = _setup()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    trained = []
    monkeypatch.setattr(train, "train_one_epoch", lambda *args, **kwargs: trained.append(1) or 0.0)
    with pytest.raises(OSError):
        train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, 1,
                  checkpoint_dir=blocker / "checkpoints", checkpoint_name="tiny", progress=False)
    assert trained == [] and blocker.read_text() == "not a folder"


def test_the_readable_accumulated_step_is_the_gradient_of_one_larger_batch():
    images = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    targets = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(4))
    loss_fn = nn.CrossEntropyLoss()  # a mean over samples and pixels
    gradients, weights, losses_seen = [], [], []
    for batches in ([(images, targets)], [(images[:1], targets[:1]), (images[1:], targets[1:])]):
        torch.manual_seed(0)
        model = TinyNet(norm=False, dropout=0.0)
        losses_seen.append(train.accumulated_step(model, batches, loss_fn, torch.optim.SGD(model.parameters(), lr=0.5)))
        gradients.append([p.grad.clone() for p in model.parameters()])
        weights.append(model.state_dict())
    assert losses_seen[1] == pytest.approx(losses_seen[0], abs=1e-6)  # the mean loss of the two batches
    for one, accumulated in zip(*gradients):
        torch.testing.assert_close(accumulated, one)
    # fit's own accumulation (train_one_epoch, accumulation_steps=2) takes the same step
    torch.manual_seed(0)
    model = TinyNet(norm=False, dropout=0.0)
    loader = DataLoader(TensorDataset(images, targets), batch_size=1)
    train.fit(model, loader, None, loss_fn, torch.optim.SGD(model.parameters(), lr=0.5), 1, accumulation_steps=2,
              monitor="train_loss", progress=False)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[0][name])
