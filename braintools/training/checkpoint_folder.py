"""The checkpoint folder of a training run: written only when writable, temporaries of a killed write cleaned, an
earlier best kept aside on a fresh run, and the random state saved with each checkpoint (notebook 05)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from braintools import paths
from braintools._private.atomic import atomic_path, remove_temporaries


def prepare_checkpoint_dir(last_path: Path, best_path: Path, fresh: bool, progress: bool) -> None:
    """Before the first epoch: check the folder is writable, delete temporary files a killed checkpoint write left,
    and on a fresh run keep the earlier best file aside as ``<name>_best.previous.pt``."""
    last_path.parent.mkdir(parents=True, exist_ok=True)  # a read-only or not-a-folder path fails now, not later
    with atomic_path(last_path.parent / ".write-test") as probe:
        probe.write_bytes(b"")
    (last_path.parent / ".write-test").unlink()
    for path in (last_path, best_path):
        remove_temporaries(path.parent, path.name)
    if fresh and best_path.is_file():
        previous = paths.checkpoint_file(best_path.parent, best_path.name.removesuffix("_best.pt"), "best.previous")
        os.replace(best_path, previous)
        if progress:
            tqdm.write(f"a new run: the earlier best checkpoint is kept as {previous.name}")


def random_state() -> dict:
    """The torch random state (CPU and every GPU), to store in a checkpoint so a resumed run draws the same."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_random_state(state: dict) -> None:
    """Restore what ``random_state`` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
