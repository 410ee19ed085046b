"""DistributedDataParallel with torchrun on the CPU (gloo): same parameters as one process, clear failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from braintools._private.distributed import EpochSampler, get_rank, get_world_size, is_main_process
from braintools.models import checkpoints
from tests import ddp_worker

WORKER = Path(ddp_worker.__file__)


def _torchrun(*arguments: str, processes: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               f"--master_port={port}", str(WORKER), *arguments]
    environment = {**os.environ, "PYTHONPATH": str(WORKER.parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment,
                          cwd=WORKER.parents[1])


def test_two_processes_take_the_same_steps_as_one_process_on_their_union(tmp_path):
    result = _torchrun("train", str(tmp_path / "ddp"))
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = checkpoints.read_checkpoint(tmp_path / "ddp" / "tiny_last.pt")
    single_history = ddp_worker.run(str(tmp_path / "single"), batch_size=2 * ddp_worker.BATCH)  # batches twice as big
    single = checkpoints.read_checkpoint(tmp_path / "single" / "tiny_last.pt")
    torch.manual_seed(ddp_worker.SEED)
    initial = checkpoints.build_model(ddp_worker.SPEC).state_dict()
    for key, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-4, atol=1e-6)
    assert max(float((single["model"][key] - initial[key]).abs().max()) for key in initial) > 1e-3  # it did train
    assert len(ddp["history"]) == len(single_history) == ddp_worker.EPOCHS
    for ddp_row, single_row in zip(ddp["history"], single_history):
        assert ddp_row["train_loss"] == pytest.approx(single_row["train_loss"], rel=1e-5)
        assert ddp_row["val_loss"] == pytest.approx(single_row["val_loss"], rel=1e-5)  # pooled over both processes


def test_the_checkpoint_of_rank_0_loads_and_predicts_in_a_plain_process(tmp_path):
    result = _torchrun("train", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == [".tiny.lock", "tiny_best.pt", "tiny_last.pt"]
    loaded = checkpoints.load_model(tmp_path / "tiny_best.pt")
    assert loaded.spec == ddp_worker.SPEC and not any(key.startswith("module.") for key in loaded.model.state_dict())
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 4, 8, 8, 4)).shape == (1, 4, 8, 8, 4)


def test_a_failing_rank_fails_the_whole_run_with_its_message(tmp_path):
    result = _torchrun("fail", str(tmp_path), timeout=180)
    assert result.returncode != 0
    assert "rank 1 failed on purpose" in result.stdout + result.stderr
    assert not (tmp_path / "tiny_best.pt").exists()


def test_epoch_sampler_splits_an_epoch_between_processes():
    single = list(_set(EpochSampler(10, num_samples=7, seed=3), epoch=2))
    parts = [list(_set(EpochSampler(10, num_samples=7, seed=3, rank=r, world_size=2), epoch=2)) for r in (0, 1)]
    assert len(single) == 7 and len(set(single)) == 7
    assert parts[0] + parts[1] != single and sorted(set(parts[0] + parts[1])) == sorted(single)
    assert [item for pair in zip(*parts) for item in pair][:7] == single  # item k goes to process k % 2
    assert list(_set(EpochSampler(10, num_samples=7, seed=3), epoch=3)) != single  # new items each epoch
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least one item"):
        EpochSampler(0)


def _set(sampler: EpochSampler, epoch: int) -> EpochSampler:
    sampler.set_epoch(epoch)
    return sampler


def test_outside_torchrun_there_is_one_process():
    assert get_rank() == 0 and get_world_size() == 1 and is_main_process()
