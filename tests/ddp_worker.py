"""A tiny DistributedDataParallel run for tests/test_distributed.py, started by torchrun (not a test itself).

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py <train|fail> <folder>
"""

from __future__ import annotations

import sys

import torch

from braintools._private import distributed
from braintools.models.checkpoints import ModelSpec, build_model
from braintools.training import losses, train
from braintools.training.recipes import loader

SPEC = ModelSpec("unet3d", features=(4, 8), window=(8, 8, 4))
ITEMS, BATCH, EPOCHS, SEED = 8, 2, 2, 7


def dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Eight random patches (4, 8, 8, 4) with random classes 0..3, the same in every process."""
    generator = torch.Generator().manual_seed(SEED)
    return [(torch.randn(4, 8, 8, 4, generator=generator), torch.randint(0, 4, (8, 8, 4), generator=generator,
                                                                         dtype=torch.uint8)) for _ in range(ITEMS)]


def run(folder: str | None, batch_size: int = BATCH, fail_on_rank: int | None = None) -> list[dict]:
    """Train the tiny U-Net for two epochs (DDP under torchrun); cross-entropy only, so batches add up exactly."""
    torch.manual_seed(SEED)
    device = distributed.setup("cpu")
    model = distributed.wrap_model(build_model(SPEC), device)
    items = dataset()
    train_loader = loader(items, batch_size, True, device, seed=SEED)
    val_loader = loader(items, batch_size, False, device)
    if fail_on_rank is not None and distributed.get_rank() == fail_on_rank:
        raise RuntimeError(f"rank {fail_on_rank} failed on purpose")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train.fit(model, train_loader, val_loader, losses.DiceCELoss(dice_weight=0.0), optimizer, EPOCHS,
                        amp=False, checkpoint_dir=folder, checkpoint_name="tiny", progress=False)
    distributed.teardown()
    return history


if __name__ == "__main__":
    mode, folder = sys.argv[1], sys.argv[2]
    run(folder, fail_on_rank=1 if mode == "fail" else None)
