"""Training on several GPUs (or CPU processes) with PyTorch's DistributedDataParallel, launched by ``torchrun``.

    torchrun --nproc_per_node=2 -m braintools train --model unet3d     # Kaggle "GPU T4 x2", or 2 CPU processes

``torchrun`` starts one process per device and tells each its rank in environment variables (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``). Every process builds the same model, wraps it in ``DistributedDataParallel``
(DDP) and trains on its own share of each epoch's items (``EpochSampler``); after every backward pass DDP
averages the gradients of all processes, so every copy of the model takes the same step. With N processes and a
batch of B per process, one step sees N x B items: the effective batch grows N times (the course keeps the
learning rate of the single-process recipe and gets N times fewer steps per epoch; the linear scaling rule would
multiply it by N, which is worth trying on large runs).

Only rank 0 writes checkpoints and prints progress; validation counts are summed over all processes, so every
process computes the same scores and agrees on the best epoch and on early stopping. The backend is NCCL on CUDA
and gloo on a CPU (so it is tested here). 2D smp models get ``SyncBatchNorm`` on CUDA (BatchNorm statistics over
the whole global batch); PyTorch's SyncBatchNorm does not run on a CPU, where each process keeps its own.
A checkpoint written by a DDP run is the same file as a single-process one (``checkpoints.unwrap``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

TIMEOUT = datetime.timedelta(minutes=10)  # a process that waits longer for the others stops with an error


def launched_by_torchrun() -> bool:
    """True when this process is one of several started by ``torchrun`` (``WORLD_SIZE`` > 1) (notebook 05)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed) (notebook 05)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes training together (1 when not distributed) (notebook 05)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, the process that writes checkpoints and prints progress (notebook 05)."""
    return get_rank() == 0


def setup(device: torch.device | str | None = None, timeout: datetime.timedelta = TIMEOUT) -> torch.device:
    """Join the process group ``torchrun`` set up (NCCL on CUDA, gloo on CPU); return this process's device.
    Introduced in notebook 05.

    Not launched by ``torchrun``: does nothing and returns ``device`` (default: the best available).
    """
    from braintools.runtime import get_device

    device = torch.device(device) if device is not None else get_device()
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return device


def teardown() -> None:
    """Leave the process group (at the end of a distributed run) (notebook 05)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """In a distributed run on CUDA, replace every BatchNorm by a ``SyncBatchNorm`` (same parameters); else no-op.
    Introduced in notebook 05.

    Call it before anything keeps references to the BatchNorm modules (an ``EncoderFreezer``).
    """
    if get_world_size() > 1 and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap_model(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` in a distributed run; else the model itself (notebook 05).

    ``find_unused_parameters``: some parameters get no gradient in some steps (frozen encoder stages).
    """
    if get_world_size() == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=find_unused_parameters)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (in place, returned); unchanged when not distributed (notebook 05)."""
    if get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for when not distributed) (notebook 05)."""
    if get_world_size() > 1:
        dist.barrier()


class EpochSampler(Sampler[int]):
    """Each epoch, ``num_samples`` item indices drawn from ``(seed, epoch)``, split between the processes (notebook 05).

    Item ``k`` of the epoch's order goes to process ``k % world_size``, so the processes see disjoint items whose
    union is what one process would see (the order is padded by repeating its start when it does not divide).
    ``train.fit`` calls ``set_epoch`` before every epoch: new items each epoch, the same ones after a resume.

    Example:
        >>> sampler = EpochSampler(10, num_samples=4, seed=0, rank=1, world_size=2)
        >>> len(sampler), len(list(sampler))
        (2, 2)
    """

    def __init__(self, n_items: int, num_samples: int | None = None, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        if n_items < 1:
            raise ValueError(f"EpochSampler needs at least one item, got {n_items}")
        self.n_items, self.shuffle, self.seed = n_items, shuffle, seed
        self.num_samples = min(num_samples or n_items, n_items)
        self.rank = get_rank() if rank is None else rank
        self.world_size = get_world_size() if world_size is None else world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose items to yield."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.num_samples // self.world_size)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n_items, generator=generator)[: self.num_samples].tolist()
        else:
            order = list(range(self.num_samples))
        padded = order + order[: len(self) * self.world_size - len(order)]
        return iter(padded[self.rank::self.world_size])
