"""A training loop for 2D and 3D segmentation: AMP, accumulation, schedulers, early stopping, checkpoints, resume.

``fit`` trains any model whose loader yields ``(images, classes)`` batches, e.g. (N, 4, H, W) slices or
(N, 4, X, Y, Z) patches with (N, H, W) / (N, X, Y, Z) integer classes 0..3, and whose logits are
(N, 4, ...) softmax classes (``output="classes"``) or (N, 3, ...) sigmoid regions WT/TC/ET
(``output="regions"``). A model may return a list of logits in training mode (deep supervision, finest
first); the loss then has to accept it (``losses.DeepSupervisionLoss``).

On a GPU: mixed precision (bfloat16 where the GPU has it natively, float16 with a gradient scaler on a T4 or P100:
``runtime.autocast_dtype``), cuDNN's algorithm autotuning for fixed-size batches, batches copied with
``non_blocking=True`` (asynchronous from pinned memory: ``recipes.loader`` pins it), and no host-device
synchronisation per batch: losses and Dice counts are summed on the device and read a few times per epoch.

Every epoch adds one row to the history: epoch, phase (from an ``EncoderFreezer``), learning rates,
train loss, validation loss and validation Dice of WT, TC, ET (from argmax classes, or sigmoid > 0.5 for
regions) pooled over the whole validation set (sum of overlaps / sum of sizes; an empty region in both
prediction and truth scores 1, the BraTS convention).

Checkpoints (``checkpoint_dir``): ``<name>_last.pt`` after every epoch (to resume) and ``<name>_best.pt`` when
the monitored value improves, each written atomically and holding model, optimizer, scheduler, AMP scaler,
epoch, history, early-stopping state and the torch random state (so a resumed run draws the same shuffles
and dropout masks as an uninterrupted one). Checkpoints load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from braintools.atomic import atomic_path, remove_temporaries
from braintools.data.labels import REGIONS, regions_from_classes
from braintools.models.checkpoints import load_checkpoint, save_checkpoint
from braintools.runtime import autocast_dtype, cudnn_autotune, model_device
from braintools.training import distributed

if TYPE_CHECKING:
    from braintools.training.freezing import EncoderFreezer

MONITORS = {"val_dice_mean": "max", "val_loss": "min", "train_loss": "min"}
CHECK_EVERY = 20  # training batches between two reads of the running loss on a GPU (each read waits for the GPU)


# --------------------------------------------------------------------------- metrics


def predicted_regions(logits: torch.Tensor, output: str = "classes") -> torch.Tensor:
    """Boolean region masks (N, 3, ...) [WT, TC, ET] of logits: argmax classes, or sigmoid > 0.5 for regions.
    Introduced in notebook 04."""
    if output == "classes":
        return regions_from_classes(logits.argmax(1), axis=1)
    if output == "regions":
        return logits > 0  # sigmoid(x) > 0.5
    raise ValueError(f"output must be 'classes' or 'regions', got {output!r}")


def region_dice_counts(logits: torch.Tensor, target: torch.Tensor, output: str = "classes") -> torch.Tensor:
    """Per region [WT, TC, ET]: (overlap, predicted voxels, true voxels) summed over the batch, shape (3, 3).
    Introduced in notebook 04.

    ``target`` holds integer classes (N, ...), or a float tensor shaped like the logits (region masks for
    ``output="regions"``, one-hot classes otherwise).
    """
    return _region_counts(logits, target, output).double().cpu()


def _region_counts(logits: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """``region_dice_counts`` as int64 on the logits' device (summed there without waiting for the GPU)."""
    predicted = predicted_regions(logits, output)
    if target.shape != logits.shape:  # integer classes
        truth = regions_from_classes(target, axis=1)
    else:  # region masks, or one-hot classes
        truth = target.bool() if output == "regions" else regions_from_classes(target.argmax(1), axis=1)
    dims = [0, *range(2, predicted.ndim)]
    overlap = (predicted & truth).sum(dims)
    return torch.stack([overlap, predicted.sum(dims), truth.sum(dims)], dim=1)


def dice_from_counts(counts: torch.Tensor, empty_score: float = 1.0) -> list[float]:
    """Dice 2 * overlap / (predicted + true) per row of ``counts``; ``empty_score`` when both are empty.
    Introduced in notebook 04."""
    return [float(2 * overlap / (pred + true)) if pred + true > 0 else empty_score for overlap, pred, true in counts]


# --------------------------------------------------------------------------- one epoch


def unpack_batch(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``(images, targets)`` of a batch, moved to ``device`` (notebook 04)."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"a batch must be (images, targets), got {type(batch).__name__}")
    return batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """Running sums on the device: float64 (what Python floats would give), float32 where float64 is missing (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable, output: str = "classes", amp: bool = True,
             progress: bool = False) -> dict[str, float]:
    """Validation loss (mean over batches) and pooled Dice of WT, TC, ET and their mean, in eval mode (notebook 06).

    Losses and overlap counts are summed on the model's device and read once at the end. In a distributed run each
    process scores its share of the batches and the sums are pooled, so every process gets the same numbers.
    """
    device = model_device(model)
    dtype = autocast_dtype(device) if amp else None
    model.eval()
    counts = torch.zeros(len(REGIONS), 3, dtype=torch.int64, device=device)
    loss_sum = torch.zeros(2, dtype=_sum_dtype(device), device=device)  # sum of batch losses, batches
    with torch.no_grad():
        for batch in tqdm(loader, desc="validate", leave=False, disable=not progress):
            images, targets = unpack_batch(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(images)
                loss_sum[0] += loss_fn(logits, targets).detach().to(loss_sum.dtype)
            loss_sum[1] += 1
            logits = logits[0] if isinstance(logits, (list, tuple)) else logits
            counts += _region_counts(logits.float(), targets, output)
    counts = distributed.all_reduce_sum(counts).double().cpu()
    loss_sum = distributed.all_reduce_sum(loss_sum).cpu()
    dices = dice_from_counts(counts)
    metrics = {"val_loss": float(loss_sum[0] / max(1.0, float(loss_sum[1])))}
    metrics.update({f"val_dice_{region}": value for region, value in zip(REGIONS, dices)})
    metrics["val_dice_mean"] = sum(dices) / len(dices)
    return metrics


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, accumulation_steps: int = 1, step_scheduler: Callable | None = None,
                    max_grad_norm: float | None = None, progress: bool = True, description: str = "train",
                    amp_dtype: torch.dtype | None = None, check_every: int | None = None) -> float:
    """One pass over ``loader``; an optimizer step every ``accumulation_steps`` batches; returns the mean loss.
    Introduced in notebook 04.

    Args:
        scaler: the AMP gradient scaler (enabled for float16 autocast only).
        amp_dtype: autocast dtype (``runtime.autocast_dtype``); ``None``: float16 if ``scaler`` is enabled, else none.
        check_every: batches between two reads of the running loss (``None``: every batch on a CPU, every
            ``CHECK_EVERY`` on a GPU). Reading a GPU number makes Python wait until the GPU has finished everything
            queued so far, which leaves the GPU idle while the next batch is prepared; so the losses are summed on the
            device, and a non-finite one (remembered with its batch number) stops the run at the next read, before
            that batch's backward pass, naming the first bad batch.
    """
    device = model_device(model)
    dtype = amp_dtype if amp_dtype is not None else (torch.float16 if scaler.is_enabled() else None)
    check_every = check_every or (1 if device.type == "cpu" else CHECK_EVERY)
    total = torch.zeros((), dtype=_sum_dtype(device), device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # first batch with a non-finite loss
    bad_value = torch.zeros((), dtype=total.dtype, device=device)  # and its loss
    batches, pending = 0, False
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=description, leave=False, disable=not progress)
    for batch in bar:
        images, targets = unpack_batch(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(images), targets)
        value = loss.detach().to(total.dtype)
        total += value
        newly_bad = (first_bad < 0) & ~torch.isfinite(value)
        first_bad, bad_value = torch.where(newly_bad, batches, first_bad), torch.where(newly_bad, value, bad_value)
        batches += 1
        if batches % check_every == 0:
            _raise_if_not_finite(first_bad, bad_value, description)
            bar.set_postfix(loss=f"{float(total) / batches:.4f}")
        scaler.scale(loss / accumulation_steps).backward()
        pending = True
        if batches % accumulation_steps == 0:
            _optimizer_step(model, optimizer, scaler, max_grad_norm, step_scheduler)
            pending = False
    if pending:  # the last, incomplete accumulation
        _optimizer_step(model, optimizer, scaler, max_grad_norm, step_scheduler)
    _raise_if_not_finite(first_bad, bad_value, description)
    pooled = distributed.all_reduce_sum(torch.stack([total, torch.tensor(batches, dtype=total.dtype, device=device)]))
    pooled = pooled.cpu()
    return float(pooled[0] / max(1.0, float(pooled[1])))  # every process reports the mean over all batches


def _raise_if_not_finite(first_bad: torch.Tensor, bad_value: torch.Tensor, description: str) -> None:
    """Raise ``FloatingPointError`` if a batch had a non-finite loss (one read of a device number)."""
    batch = int(first_bad)
    if batch >= 0:
        raise FloatingPointError(f"{description}: loss is {float(bad_value)} at batch {batch}; lower the "
                                 "learning rate or check the inputs for NaN")


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    max_grad_norm: float | None, step_scheduler: Callable | None) -> None:
    """Unscale, clip, step, update the AMP scale, clear gradients, then advance a per-step scheduler."""
    if max_grad_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if step_scheduler is not None:
        step_scheduler()


# --------------------------------------------------------------------------- checkpoints


@dataclass
class EarlyStopping:
    """Track the best value of a monitored metric and count epochs without improvement (notebook 04)."""

    mode: str = "max"
    patience: int | None = None  # None: never stop early
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record ``value`` of ``epoch``; return True when it is the best so far."""
        better = self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                       else value < self.best - self.min_delta)
        if better:
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        """Plain values to store in a checkpoint."""
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


def checkpoint_paths(checkpoint_dir: str | os.PathLike, name: str = "model") -> tuple[Path, Path]:
    """Return the (last, best) checkpoint paths ``<dir>/<name>_last.pt`` and ``<dir>/<name>_best.pt`` (notebook 05)."""
    return Path(checkpoint_dir) / f"{name}_last.pt", Path(checkpoint_dir) / f"{name}_best.pt"


def _prepare_checkpoint_dir(last_path: Path, best_path: Path, fresh: bool, progress: bool) -> None:
    """Check the folder is writable before any training; delete temporary files a killed checkpoint write left; on a
    fresh run, keep the old best file aside."""
    last_path.parent.mkdir(parents=True, exist_ok=True)  # a read-only or not-a-folder path fails now, not later
    with atomic_path(last_path.parent / ".write-test") as probe:
        probe.write_bytes(b"")
    (last_path.parent / ".write-test").unlink()
    for path in (last_path, best_path):
        remove_temporaries(path.parent, path.name)
    if fresh and best_path.is_file():
        previous = best_path.with_name(best_path.name.replace("_best.pt", "_best.previous.pt"))
        os.replace(best_path, previous)
        if progress:
            tqdm.write(f"a new run: the earlier best checkpoint is kept as {previous.name}")


def _random_state() -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def _restore_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# --------------------------------------------------------------------------- fit


def _check_scheduler(scheduler, monitor: str, interval: str) -> None:
    if interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {interval!r}")
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler.mode != MONITORS[monitor]:
        raise ValueError(f"ReduceLROnPlateau(mode={scheduler.mode!r}) does not fit monitor {monitor!r}, "
                         f"which needs mode={MONITORS[monitor]!r}")


def _learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Current learning rate of each parameter group, by its ``name`` (or ``group <i>``)."""
    return {group.get("name", f"group {i}"): float(group["lr"]) for i, group in enumerate(optimizer.param_groups)}


def _start_epoch(loader: Iterable, epoch: int) -> None:
    """Tell the dataset (augmentation draws) and a distributed sampler which epoch starts."""
    for owner in (getattr(loader, "dataset", None), getattr(loader, "sampler", None)):
        if hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | ReduceLROnPlateau | None = None,
    scheduler_interval: str = "epoch",
    accumulation_steps: int = 1,
    amp: bool = True,
    max_grad_norm: float | None = None,
    freezer: EncoderFreezer | None = None,
    output: str = "classes",
    monitor: str = "val_dice_mean",
    early_stopping_patience: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_name: str = "model",
    resume_from: str | os.PathLike | None = None,
    checkpoint_extra: dict | None = None,
    progress: bool = True,
    fixed_input_size: bool = True,
) -> list[dict]:
    """Train ``model`` for epochs 1..``epochs`` (continuing after ``resume_from``); return the history (notebook 04).

    Args:
        model: already on its device (``device.get_device()``); batches are moved to it.
        train_loader, val_loader: yield ``(images, classes)``; ``val_loader`` may be ``None`` (no validation).
        loss_fn: ``loss_fn(logits_or_list, classes)`` (see ``braintools.training.losses``).
        optimizer: e.g. ``AdamW(freezer.param_groups(lr))``.
        epochs: last epoch to train (counting from 1).
        scheduler: any torch LR scheduler; ``ReduceLROnPlateau`` steps with the monitored value each epoch.
        scheduler_interval: ``"epoch"`` or ``"step"`` (per optimizer step, e.g. ``schedules.warmup_cosine_scheduler``).
        accumulation_steps: batches per optimizer step (a larger effective batch in the same memory).
        amp: mixed precision on CUDA (``runtime.autocast_dtype``): bfloat16 where the GPU has it natively, else
            float16 with gradient scaling (T4, P100); off on CPUs and Apple GPUs.
        max_grad_norm: clip the gradient norm (``None``: no clipping).
        freezer: an ``EncoderFreezer``; its ``on_epoch_start`` runs after ``model.train()`` every epoch.
        output: ``"classes"`` (softmax logits) or ``"regions"`` (sigmoid WT/TC/ET logits), for validation Dice.
        monitor: ``"val_dice_mean"``, ``"val_loss"`` or ``"train_loss"``: decides the best checkpoint,
            early stopping and ``ReduceLROnPlateau``.
        early_stopping_patience: stop after this many epochs without improvement (``None``: never).
        checkpoint_dir: where ``<checkpoint_name>_last.pt`` (to resume: with the optimizer's state) and
            ``_best.pt`` (for inference: spec and weights only) go; ``None``: no checkpoints. A fresh run (no
            ``resume_from``) keeps an earlier run's best file as ``<checkpoint_name>_best.previous.pt``.
        resume_from: a ``_last.pt`` checkpoint: restores everything and continues after its epoch.
        checkpoint_extra: plain values stored in both checkpoints (e.g. the training recipe, to resume only
            with the same settings).
        progress: show tqdm progress bars.
        fixed_input_size: every batch has the same shape (patches, padded slices): on CUDA, cuDNN times its
            convolution algorithms once and keeps the fastest (``runtime.cudnn_autotune``).

    Example:
        >>> history = fit(model, train_loader, val_loader, DiceCELoss(), optimizer, epochs=6,
        ...               freezer=freezer, checkpoint_dir=paths.checkpoint_dir("course"))  # doctest: +SKIP
        >>> pandas.DataFrame(history)  # doctest: +SKIP
    """
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {sorted(MONITORS)}, got {monitor!r}")
    if val_loader is None and monitor != "train_loss":
        raise ValueError(f"monitor {monitor!r} needs a val_loader; pass one or use monitor='train_loss'")
    if accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
    _check_scheduler(scheduler, monitor, scheduler_interval)
    main_process = distributed.is_main_process()  # only rank 0 writes checkpoints and shows progress
    progress = progress and main_process
    device = model_device(model)
    amp_dtype = autocast_dtype(device) if amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)  # float16 only: bfloat16 has
    # float32's range, so its small gradients do not underflow
    stopper = EarlyStopping(MONITORS[monitor], early_stopping_patience)
    history: list[dict] = []
    start = 1
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer)
        history, start = list(state["history"]), state["epoch"] + 1
        stopper.load_state_dict(state["early_stopping"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty when saved without float16 (a CPU, a bfloat16 GPU): keep the fresh scaler
            scaler.load_state_dict(state["scaler"])
        _restore_random_state(state["random"])
    per_step = scheduler.step if scheduler is not None and scheduler_interval == "step" else None
    last_path, best_path = checkpoint_paths(checkpoint_dir, checkpoint_name) if checkpoint_dir else (None, None)
    if not main_process:
        last_path = best_path = None
    if last_path is not None:
        _prepare_checkpoint_dir(last_path, best_path, fresh=resume_from is None, progress=progress)
    with cudnn_autotune(device, fixed_input_size):  # one input size: time cuDNN's algorithms once
        for epoch in range(start, epochs + 1):
            began = time.perf_counter()
            model.train()
            phase = freezer.on_epoch_start(epoch) if freezer is not None else None
            _start_epoch(train_loader, epoch)
            row = {"epoch": epoch, "phase": phase, "lrs": _learning_rates(optimizer)}
            row["train_loss"] = train_one_epoch(model, train_loader, loss_fn, optimizer, scaler, accumulation_steps,
                                                per_step, max_grad_norm, progress, f"epoch {epoch}/{epochs}",
                                                amp_dtype)
            if val_loader is not None:
                row.update(evaluate(model, val_loader, loss_fn, output, amp, progress))
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(row[monitor])
            elif scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            row["best"] = stopper.update(row[monitor], epoch)
            row["seconds"] = time.perf_counter() - began
            history.append(row)
            if progress:
                tqdm.write(_summary(row))
            if last_path is not None:
                summary = {"monitor": monitor, "early_stopping": stopper.state_dict(), **(checkpoint_extra or {})}
                resume = {"scheduler": None if scheduler is None else scheduler.state_dict(),
                          "scaler": scaler.state_dict(), "random": _random_state()}
                if row["best"]:  # best first: a run killed between the two writes resumes this epoch, best kept
                    save_checkpoint(best_path, model, None, epoch, history, **summary)
                save_checkpoint(last_path, model, optimizer, epoch, history, **summary, **resume)
            if stopper.should_stop:
                if progress:
                    tqdm.write(f"early stopping: no better {monitor} for {stopper.patience} epochs "
                               f"(best {stopper.best:.4f} at epoch {stopper.best_epoch})")
                break
    return history


def _summary(row: dict) -> str:
    """One line per epoch: epoch, phase, losses and Dice."""
    parts = [f"epoch {row['epoch']}"] + ([row["phase"]] if row["phase"] else [])
    parts += [f"{key} {row[key]:.4f}" for key in ("train_loss", "val_loss", "val_dice_WT", "val_dice_TC",
                                                   "val_dice_ET") if key in row]
    return " | ".join(parts) + (" *" if row["best"] else "")
