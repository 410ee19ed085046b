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

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from braintools._private import distributed
from braintools.data.labels import REGIONS
from braintools.evaluation.dice import dice_from_counts
from braintools.evaluation.overlap import batch_counts
from braintools.models.checkpoints import load_checkpoint
from braintools.runtime import autocast_dtype, cudnn_autotune, mixed_precision, model_device
from braintools.training.checkpoint_folder import (
    CheckpointFolder,
    locked,
    new_run_id,
    random_state,
    restore_random_state,
)
from braintools.training.early_stopping import EarlyStopping

if TYPE_CHECKING:
    from braintools.training.freezing import EncoderFreezer

MONITORS = {"val_dice_mean": "max", "val_loss": "min", "train_loss": "min"}
CHECK_EVERY = 20  # training batches between two reads of the running loss on a GPU (each read waits for the GPU)


# --------------------------------------------------------------------------- one epoch


def _unpack_batch(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``(images, targets)`` of a batch, moved to ``device`` (notebook 04)."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"a batch must be (images, targets), got {type(batch).__name__}")
    return batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """Running sums on the device: float64 (what Python floats would give), float32 where float64 is missing (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def predict_batches(model: nn.Module, loader: Iterable, amp: bool = False, progress: bool = False,
                    description: str = "validate") -> Iterator[tuple[torch.Tensor | list, torch.Tensor]]:
    """Yield ``(outputs, targets)`` of every batch in eval mode without gradients, on the model's device.

    ``outputs`` is what the model returns (a list of logits with deep supervision); validation (``evaluate``) and the
    threshold search (``thresholds``) both loop over a loader this way.
    """
    device = model_device(model)
    dtype = autocast_dtype(device) if amp else None
    model.eval()
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
        images, targets = _unpack_batch(batch, device)
        with torch.no_grad(), mixed_precision(device, dtype):
            outputs = model(images)
        yield outputs, targets


def finest(outputs: torch.Tensor | list | tuple) -> torch.Tensor:
    """The full-resolution logits of a model's outputs (the first of a deep-supervision list)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable, output: str = "classes", amp: bool = True,
             progress: bool = False) -> dict[str, float]:
    """Validation loss (mean over batches) and pooled Dice of WT, TC, ET and their mean, in eval mode (notebook 06).

    Losses and overlap counts (``overlap.batch_counts``) are summed on the model's device and read once at the end;
    Dice of the pooled counts follows the BraTS rule (a region empty in prediction and truth alike scores 1). In a
    distributed run each process scores its share of the batches and the sums are pooled, so every process gets the
    same numbers.
    """
    device = model_device(model)
    counts = torch.zeros(len(REGIONS), 3, dtype=torch.int64, device=device)
    loss_sum = torch.zeros(2, dtype=_sum_dtype(device), device=device)  # sum of batch losses, batches
    for outputs, targets in predict_batches(model, loader, amp, progress):
        with torch.no_grad(), mixed_precision(device, autocast_dtype(device) if amp else None):
            loss_sum[0] += loss_fn(outputs, targets).detach().to(loss_sum.dtype)
        loss_sum[1] += 1
        counts += batch_counts(finest(outputs).float(), targets, output)
    counts = distributed.all_reduce_sum(counts).cpu()
    loss_sum = distributed.all_reduce_sum(loss_sum).cpu()
    dices = [float(value) for value in dice_from_counts(counts, empty="brats")]
    scores = {"val_loss": float(loss_sum[0] / max(1.0, float(loss_sum[1])))}
    scores.update({f"val_dice_{region}": value for region, value in zip(REGIONS, dices)})
    scores["val_dice_mean"] = sum(dices) / len(dices)
    return scores


def accumulated_step(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], loss_fn: Callable,
                     optimizer: torch.optim.Optimizer) -> float:
    """One optimizer step over several batches, written to be read: gradient accumulation (notebook 05).

    Each batch's loss is divided by the number of batches and its gradients are added to those already in ``.grad``,
    so the step follows the mean loss of all the batches: for a loss that averages over samples, the gradient of one
    batch as large as all of them together. ``train_one_epoch`` does the same with ``accumulation_steps``, plus mixed
    precision, gradient clipping and fewer waits for the GPU. Returns the mean loss.
    """
    optimizer.zero_grad()  # gradients add up in .grad: start from zero
    total = 0.0
    for images, targets in batches:
        loss = loss_fn(model(images), targets) / len(batches)  # this batch's share of the mean loss
        loss.backward()  # adds d(share)/d(weight) to every weight's .grad
        total += loss.item()
    optimizer.step()  # one step, with the summed gradients
    return total


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, accumulation_steps: int = 1, step_scheduler: Callable | None = None,
                    max_grad_norm: float | None = None, progress: bool = True, description: str = "train",
                    amp_dtype: torch.dtype | None = None, check_every: int | None = None) -> float:
    """One pass over ``loader``; an optimizer step every ``accumulation_steps`` batches; returns the mean loss.

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
        images, targets = _unpack_batch(batch, device)
        with mixed_precision(device, dtype):
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
            ``resume_from``) keeps an earlier run's best file as ``<checkpoint_name>_best.previous.pt`` once it has a
            best of its own; the folder is locked while ``fit`` writes it, and no kill, full disk or restart loses
            its best (``checkpoint_folder``).
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
    with contextlib.ExitStack() as stack:
        if checkpoint_dir is not None and main_process:  # one run at a time writes a checkpoint folder
            stack.enter_context(locked(checkpoint_dir, checkpoint_name))
        history: list[dict] = []
        start, run, legacy = 1, new_run_id(), False
        if resume_from is not None:
            state = load_checkpoint(resume_from, model, optimizer)
            history, start = list(state["history"]), state["epoch"] + 1
            run, legacy = state.get("run") or run, state.get("run") is None
            stopper.load_state_dict(state["early_stopping"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):  # empty when saved without float16 (a CPU, a bfloat16 GPU): keep the fresh scaler
                scaler.load_state_dict(state["scaler"])
            restore_random_state(state["random"])
        folder = None
        if checkpoint_dir is not None and main_process:
            folder = CheckpointFolder(checkpoint_dir, checkpoint_name, run, fresh=resume_from is None,
                                      progress=progress, legacy=legacy)
            folder.prepare()
            if resume_from is not None:
                folder.restore_best(model, start - 1, history, stopper.best_epoch,
                                    {"monitor": monitor, "early_stopping": stopper.state_dict(),
                                     **(checkpoint_extra or {})})
        per_step = scheduler.step if scheduler is not None and scheduler_interval == "step" else None
        with cudnn_autotune(device, fixed_input_size):  # one input size: time cuDNN's algorithms once
            for epoch in range(start, epochs + 1):
                began = time.perf_counter()
                model.train()
                phase = freezer.on_epoch_start(epoch) if freezer is not None else None
                _start_epoch(train_loader, epoch)
                row = {"epoch": epoch, "phase": phase, "lrs": _learning_rates(optimizer)}
                row["train_loss"] = train_one_epoch(model, train_loader, loss_fn, optimizer, scaler,
                                                    accumulation_steps, per_step, max_grad_norm, progress,
                                                    f"epoch {epoch}/{epochs}", amp_dtype)
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
                if folder is not None:
                    summary = {"monitor": monitor, "early_stopping": stopper.state_dict(), **(checkpoint_extra or {})}
                    resume = {"scheduler": None if scheduler is None else scheduler.state_dict(),
                              "scaler": scaler.state_dict(), "random": random_state()}
                    folder.save(model, optimizer, epoch, history, row["best"], summary, resume, epochs,
                                finished=epoch >= epochs or stopper.should_stop)
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
