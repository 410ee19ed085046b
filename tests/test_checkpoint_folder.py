"""The checkpoint folder's lifecycle: kills, full disks and restarts never lose the folder's best; one run at a time."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from braintools.errors import DataError, DiskFullError
from braintools.training import checkpoint_folder, losses, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))

    def forward(self, x):
        return self.body(x)


def _loaders():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 4, 8, 8, generator=generator)
    dataset = TensorDataset(images, images.argmax(1))
    return DataLoader(dataset, batch_size=4), DataLoader(dataset, batch_size=8)


def _fit(folder, epochs=2, seed=0, resume=False, monitor="train_loss"):
    """One run of ``fit`` on the tiny model: a new run (seeded) or a resumed one."""
    torch.manual_seed(seed)
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader, val_loader = _loaders()
    last = checkpoint_folder.paths.checkpoint_file(folder, "tiny", "last")
    return train.fit(model, train_loader, val_loader, losses.DiceCELoss(), optimizer, epochs, monitor=monitor,
                     checkpoint_dir=folder, checkpoint_name="tiny", resume_from=last if resume else None,
                     progress=False)


def _files(folder):
    """The bytes of every checkpoint in the folder, by name (lock and temporaries left out)."""
    return {path.name: path.read_bytes() for path in sorted(Path(folder).glob("tiny_*.pt"))}


def _kill_at(monkeypatch, write: int, error: BaseException):
    """Make the ``write``-th checkpoint write (1-based) of the next run fail with ``error``."""
    real, count = checkpoint_folder.save_checkpoint, [0]

    def failing(path, *args, **kwargs):
        count[0] += 1
        if count[0] == write:
            raise error
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_folder, "save_checkpoint", failing)


def _identity(path):
    return checkpoint_folder.checkpoint_identity(path)


def test_a_restart_changes_nothing_until_it_has_a_best_of_its_own(tmp_path, monkeypatch):
    _fit(tmp_path)  # a finished run
    before = _files(tmp_path)
    monkeypatch.setattr(train, "train_one_epoch", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C right after "a new run"
        _fit(tmp_path, seed=1)
    assert _files(tmp_path) == before  # the best is still there, the last still that run's (nothing to resume)
    monkeypatch.undo()
    _fit(tmp_path, seed=1)
    after = _files(tmp_path)
    assert after["tiny_best.previous.pt"] == before["tiny_best.pt"]
    assert _identity(tmp_path / "tiny_best.pt")["run"] == _identity(tmp_path / "tiny_last.pt")["run"]


@pytest.mark.parametrize("write", [1, 2])  # the new run's last checkpoint, then its best
@pytest.mark.parametrize("error", [KeyboardInterrupt(), DiskFullError(errno.ENOSPC, "tiny: the disk is full")])
def test_a_kill_or_full_disk_at_any_write_of_a_restart_then_any_next_step_keeps_the_old_best(
        tmp_path, monkeypatch, write, error):
    _fit(tmp_path)
    old_best = _files(tmp_path)["tiny_best.pt"]
    _kill_at(monkeypatch, write, error)
    with pytest.raises(type(error)):
        _fit(tmp_path, seed=1)
    monkeypatch.undo()
    files = _files(tmp_path)
    assert files["tiny_best.pt"] == old_best == files["tiny_best.previous.pt"]  # kept twice, lost nowhere
    for next_step in ("restart", "resume"):
        folder = tmp_path / next_step
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        resumable = _identity(folder / "tiny_last.pt")["run"] != _identity(folder / "tiny_best.pt")["run"]
        if next_step == "resume" and not resumable:
            continue  # the restart never wrote its last: the old run is complete, nothing to resume
        _fit(folder, seed=2, resume=next_step == "resume")
        assert (folder / "tiny_best.previous.pt").read_bytes() == old_best, next_step
        best, last = _identity(folder / "tiny_best.pt"), _identity(folder / "tiny_last.pt")
        assert best["run"] == last["run"] and last["finished"], next_step


def test_the_old_issue_sequence_full_disk_during_a_restart_then_a_restart_to_recover(tmp_path, monkeypatch):
    _fit(tmp_path, epochs=1)
    old_best = _files(tmp_path)["tiny_best.pt"]
    _kill_at(monkeypatch, 1, DiskFullError(errno.ENOSPC, "tiny_last.pt: the disk is full"))  # the big file fails
    with pytest.raises(DiskFullError):
        _fit(tmp_path, epochs=1, seed=1)
    monkeypatch.undo()
    for seed in (2, 3):  # --restart to recover, then another one
        _fit(tmp_path, epochs=1, seed=seed)
        if seed == 2:
            assert (tmp_path / "tiny_best.previous.pt").read_bytes() == old_best
    assert (tmp_path / "tiny_best.previous.pt").read_bytes() != old_best  # one level: the finished run before


def test_a_restart_after_a_full_disk_leaves_no_temporary_link_of_the_previous_best(tmp_path, monkeypatch):
    # the full disk left _best.previous.pt a hard link of _best.pt; rename() of one link onto another of the same
    # file does nothing, so the next restart's temporary link stayed (holding the old best's bytes once replaced)
    _fit(tmp_path, epochs=1)
    _kill_at(monkeypatch, 1, DiskFullError(errno.ENOSPC, "tiny_last.pt: the disk is full"))
    with pytest.raises(DiskFullError):
        _fit(tmp_path, epochs=1, seed=1)
    monkeypatch.undo()
    _fit(tmp_path, epochs=1, seed=2)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".tmp")) == []


def test_a_restart_over_an_unfinished_run_with_a_previous_best_refuses_and_drops_nothing(tmp_path, monkeypatch):
    _fit(tmp_path, epochs=1)  # run A, finished
    _kill_at(monkeypatch, 3, KeyboardInterrupt())  # run B: epoch 1 written (last, best), killed in epoch 2
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, epochs=3, seed=1)
    monkeypatch.undo()
    before = _files(tmp_path)
    with pytest.raises(DataError, match=r"tiny_best\.pt is the best of a run that did not finish \(it stopped after "
                                        r"epoch 1 of 3\) and tiny_best\.previous\.pt the best of the run before it; "
                                        r"a new run would have to drop one of them: resume that run"):
        _fit(tmp_path, epochs=1, seed=2)
    assert _files(tmp_path) == before
    _fit(tmp_path, epochs=3, resume=True)  # resume it, as the message says: it finishes
    assert _files(tmp_path)["tiny_best.previous.pt"] == before["tiny_best.previous.pt"]
    finished_best = _files(tmp_path)["tiny_best.pt"]
    _fit(tmp_path, epochs=1, seed=2)  # now a restart keeps the finished run's best
    assert _files(tmp_path)["tiny_best.previous.pt"] == finished_best


def test_resuming_a_run_killed_between_its_last_and_its_first_best_writes_that_best(tmp_path, monkeypatch):
    _fit(tmp_path, epochs=1)
    old_best = _files(tmp_path)["tiny_best.pt"]
    _kill_at(monkeypatch, 2, KeyboardInterrupt())  # the restart's first best: last written, best not
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, epochs=2, seed=1)
    monkeypatch.undo()
    history = _fit(tmp_path, epochs=2, resume=True)
    best_epoch = max((row for row in history if row["best"]), key=lambda row: row["epoch"])["epoch"]
    best = _identity(tmp_path / "tiny_best.pt")
    assert best["epoch"] == best_epoch and best["run"] == _identity(tmp_path / "tiny_last.pt")["run"]
    assert (tmp_path / "tiny_best.previous.pt").read_bytes() == old_best


def test_an_unreadable_best_is_replaced_and_never_kept_as_the_previous_one(tmp_path):
    _fit(tmp_path, epochs=1)
    _fit(tmp_path, epochs=1, seed=1)
    previous = _files(tmp_path)["tiny_best.previous.pt"]
    (tmp_path / "tiny_best.pt").write_bytes(b"truncated")
    _fit(tmp_path, epochs=1, seed=2)
    assert _files(tmp_path)["tiny_best.previous.pt"] == previous and _identity(tmp_path / "tiny_best.pt")


def test_a_second_run_on_a_locked_folder_stops_at_once_naming_the_holder(tmp_path):
    holding, release = threading.Event(), threading.Event()

    def hold():
        with checkpoint_folder.locked(tmp_path, "tiny"):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    try:
        with pytest.raises(DataError, match=r"another training run of tiny is writing this folder \(another thread"):
            _fit(tmp_path)
    finally:
        release.set()
        holder.join()
    assert not list(tmp_path.glob("tiny_*.pt"))
    with checkpoint_folder.locked(tmp_path, "tiny"), checkpoint_folder.locked(tmp_path, "tiny"):
        pass  # one thread may take it again (command, recipe and fit)


CHILD = textwrap.dedent("""
    import os, signal, sys, time
    sys.path[:0] = [{tests!r}, {repo!r}]
    import test_checkpoint_folder as t
    from braintools.training import checkpoint_folder
    from pathlib import Path
    folder, kill_at, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    real, count = checkpoint_folder.save_checkpoint, [0]
    def save(path, *args, **kwargs):
        count[0] += 1
        if count[0] == kill_at:
            print("holding", flush=True)
            time.sleep(float(os.environ.get("HOLD_S", "0")))
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, *args, **kwargs)
    checkpoint_folder.save_checkpoint = save
    t._fit(folder, epochs=2, seed=seed)
""")


def _child(tmp_path, folder, kill_at, seed, hold_s=0.0):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(REPO / "tests"), repo=str(REPO)))
    environment = {**os.environ, "HOLD_S": str(hold_s), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(folder), str(kill_at), str(seed)],
                            stdout=subprocess.PIPE, text=True, env=environment)


def test_sigkill_at_each_write_of_a_restart_keeps_the_best_and_never_keeps_the_lock(tmp_path):
    folder = tmp_path / "checkpoints"
    _fit(folder)
    old_best = _files(folder)["tiny_best.pt"]
    for kill_at in (1, 2, 3):  # the restart's last, its first best, its epoch-2 write
        child = _child(tmp_path, folder, kill_at, seed=1)
        child.wait(120)
        assert child.returncode == -signal.SIGKILL
        files = _files(folder)
        assert old_best in (files.get("tiny_best.pt"), files.get("tiny_best.previous.pt")), kill_at
    _fit(folder, epochs=2, resume=True)  # the killed restart resumes (the lock died with it)
    assert _files(folder)["tiny_best.previous.pt"] == old_best


def test_a_second_process_cannot_train_into_a_folder_another_is_writing(tmp_path):
    folder = tmp_path / "checkpoints"
    child = _child(tmp_path, folder, kill_at=1, seed=1, hold_s=60)  # holds the lock inside its first write
    try:
        assert child.stdout.readline().strip() == "holding"
        with pytest.raises(DataError, match=rf"another training run of tiny is writing this folder \(pid {child.pid}"):
            _fit(folder)
    finally:
        child.kill()
        child.wait(30)
    _fit(folder)  # the killed holder left no lock
