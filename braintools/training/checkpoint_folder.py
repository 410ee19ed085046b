"""The checkpoint folder of a training run: locked while a run writes it, written only when writable, temporaries
of a killed write cleaned, the folder's best never lost, and the random state saved with each checkpoint
(notebook 05).

Three files per model name: ``<name>_best.pt`` (the best epoch of the folder's current run, for inference),
``<name>_last.pt`` (its latest epoch, to resume) and ``<name>_best.previous.pt`` (the best of the run before it).
Every checkpoint records the run that wrote it (``run``, a random id kept when a run resumes), and ``_last.pt``
whether that run finished (``finished``). The lifecycle, as a state machine:

- A new run (``fit`` without ``resume_from``, ``train --restart``) changes nothing until it has a best epoch of its
  own: the folder's best stays ``<name>_best.pt`` and an interrupted start leaves the folder as it was.
- At the new run's first best, the earlier run's best is linked as ``<name>_best.previous.pt`` (one atomic rename;
  the best file is still there), then the new run's ``_last.pt`` is written, then its ``_best.pt``. A run killed or
  stopped by a full disk between two of these steps leaves a folder where both bests are still on disk, and a
  ``_last.pt`` whose last epoch is its best: resuming writes the missing best from it.
- ``<name>_best.previous.pt`` is only ever replaced by the best of a run that finished; when the folder's best comes
  from a run that did not finish and a previous best of another run exists, a new run refuses to start (one line
  saying which two files and what to do) instead of dropping either.
- A lock file (``.<name>.lock``) is held while a run writes the folder: a second run on the same model name in the
  same folder stops at once with one line naming the holder (a killed run never keeps the lock).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from braintools import paths
from braintools._private.atomic import TEMPORARY_PREFIX, atomic_path, remove_temporaries
from braintools._private.processes import file_lock
from braintools.errors import DataError
from braintools.models.checkpoints import save_checkpoint

_HELD = threading.local()  # lock files this thread holds (a run's command, recipe and fit share one lock)


def lock_path(checkpoint_dir: str | os.PathLike, name: str) -> Path:
    """The lock file of the ``<name>`` checkpoints in a folder (held while a run writes them)."""
    return Path(checkpoint_dir) / f".{name}.lock"


@contextlib.contextmanager
def locked(checkpoint_dir: str | os.PathLike, name: str) -> Iterator[None]:
    """Hold the lock of the ``<name>`` checkpoints of a folder (created if missing) for a whole run.

    Another process (or thread) holding it is a ``DataError`` at once, naming it: two runs writing one folder would
    resume from each other's epochs and report each other's best. The same thread may enter it again (the command
    line, ``recipes.train_unet3d`` and ``train.fit`` each take it).
    """
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = lock_path(folder, name).resolve()
    held = _HELD.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    with file_lock(path, timeout=0, what=f"training run of {name}"):
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)


def new_run_id() -> str:
    """A random id for a new training run, stored in each of its checkpoints."""
    return uuid.uuid4().hex


def checkpoint_identity(path: str | os.PathLike) -> dict[str, Any] | None:
    """``run``, ``epoch``, ``epochs`` and ``finished`` of a checkpoint file, read without loading its weights;
    ``None`` when the file is missing or unreadable (it is then no best to keep)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - truncated, foreign or not a zip file: not a checkpoint to keep
        return None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        return None
    return {"run": state.get("run"), "epoch": int(state.get("epoch", 0)), "epochs": state.get("epochs"),
            "finished": state.get("finished")}


class CheckpointFolder:
    """The ``<name>_best.pt`` / ``_last.pt`` / ``_best.previous.pt`` files one run writes.

    ``run``: the run's id (``new_run_id`` for a new run, the resumed checkpoint's otherwise); ``fresh``: a new run.
    ``legacy``: the run resumed a checkpoint written before runs had ids, so a best without an id is its own.
    Create it under ``locked``, then ``prepare`` before the first epoch and ``save`` after each.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, name: str, run: str, fresh: bool, progress: bool = True,
                 legacy: bool = False):
        self.folder, self.name, self.run, self.fresh, self.progress = Path(checkpoint_dir), name, run, fresh, progress
        self.best = paths.checkpoint_file(self.folder, name, "best")
        self.last = paths.checkpoint_file(self.folder, name, "last")
        self.previous = paths.checkpoint_file(self.folder, name, "best.previous")
        self._own_runs = {run, None} if legacy else {run}
        self._best_is_ours = False
        self._others_here = False

    def _say(self, message: str) -> None:
        if self.progress:
            tqdm.write(message)

    def prepare(self) -> None:
        """Before the first epoch: check the folder is writable, delete temporaries a killed write left, and for a new
        run check that its first best can keep the folder's best without dropping another (else ``DataError``)."""
        self.folder.mkdir(parents=True, exist_ok=True)  # a read-only or not-a-folder path fails now, not later
        with atomic_path(self.folder / ".write-test") as probe:
            probe.write_bytes(b"")
        (self.folder / ".write-test").unlink()
        for path in (self.last, self.best, self.previous):
            remove_temporaries(path.parent, path.name)
        best, last = checkpoint_identity(self.best), checkpoint_identity(self.last)
        self._best_is_ours = best is not None and best["run"] in self._own_runs
        self._others_here = (self.best.exists() and not self._best_is_ours) or (
            last is not None and last["run"] not in self._own_runs)
        if self.fresh and best is not None:
            self._check_previous_can_go(best, last)
            self._say(f"a new run: {self.best.name} stays until this run has a best epoch of its own, then it is "
                      f"kept as {self.previous.name}")
        elif self.fresh and self.best.exists():
            self._say(f"{self.best.name} is not a readable checkpoint: this run's first best replaces it "
                      f"({self.previous.name} is kept)")

    def _check_previous_can_go(self, best: dict[str, Any], last: dict[str, Any] | None) -> None:
        """Refuse a new run whose first best would drop a best: the folder's best is from a run that did not finish
        and ``_best.previous.pt`` holds another run's best."""
        previous = checkpoint_identity(self.previous)
        if previous is None or previous["run"] == best["run"]:
            return
        ours = last is not None and last["run"] == best["run"]
        if ours and last["finished"] is not False:  # finished (or written before runs recorded it)
            return
        stopped = (f"it stopped after epoch {last['epoch']}" + (f" of {last['epochs']}" if last["epochs"] else "")
                   if ours else "it left no last checkpoint to resume")
        resume = ("resume that run (python -m braintools train without --restart, or fit(resume_from=...)), or "
                  if ours else "")
        raise DataError(f"{self.folder}: {self.best.name} is the best of a run that did not finish ({stopped}) and "
                        f"{self.previous.name} the best of the run before it; a new run would have to drop one of "
                        f"them: {resume}move one of the two files elsewhere, then train again")

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int, history: list[dict],
             best: bool, summary: dict[str, Any], resume: dict[str, Any], epochs: int, finished: bool) -> None:
        """Write the epoch's checkpoints: ``_best.pt`` when ``best``, always ``_last.pt`` (with ``epochs``, the last
        epoch asked for, and ``finished``: the run reached it or stopped early), in the order that keeps the folder's
        best through a kill or a full disk at any point (module docstring)."""
        summary = {**summary, "run": self.run}
        finished = {"epochs": int(epochs), "finished": bool(finished)}
        if best and not self._best_is_ours and self._others_here:
            self._keep_previous()
            # last first: a run killed before its best is written resumes after this epoch and writes it then
            save_checkpoint(self.last, model, optimizer, epoch, history, **summary, **resume, **finished)
            save_checkpoint(self.best, model, None, epoch, history, **summary)
            self._best_is_ours = True
            return
        if best:  # best first: a run killed between the two writes resumes this epoch, its best kept
            save_checkpoint(self.best, model, None, epoch, history, **summary)
            self._best_is_ours = True
        save_checkpoint(self.last, model, optimizer, epoch, history, **summary, **resume, **finished)

    def restore_best(self, model: torch.nn.Module, epoch: int, history: list[dict], best_epoch: int | None,
                     summary: dict[str, Any]) -> None:
        """On resume: when the run's best epoch is the epoch it resumes after and ``_best.pt`` is not its own (a kill
        between the two writes of its first best), write that best from the resumed weights."""
        if self._best_is_ours or best_epoch is None:
            return
        if best_epoch != epoch:
            self._say(f"{self.best.name} does not hold this run's best epoch {best_epoch}: it is replaced at this "
                      "run's next better epoch")
            return
        self._keep_previous()
        save_checkpoint(self.best, model, None, epoch, history, **summary, run=self.run)
        self._best_is_ours = True
        self._say(f"{self.best.name}: this run's best (epoch {epoch}) written from {self.last.name}")

    def _keep_previous(self) -> None:
        """Keep another run's readable best as ``_best.previous.pt`` (a hard link, or a copy, renamed into place);
        the best file itself stays until this run's best replaces it."""
        if checkpoint_identity(self.best) is None:
            return  # no best, or not a checkpoint: nothing to keep
        temporary = self.previous.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{self.previous.name}")
        try:
            temporary.unlink(missing_ok=True)
            os.link(self.best, temporary)  # no copy, no disk space: the same bytes under a second name
            os.replace(temporary, self.previous)
            temporary.unlink(missing_ok=True)  # rename() does nothing when both names already link the same file
        except OSError:  # a file system without hard links: copy (a full disk then names the file)
            temporary.unlink(missing_ok=True)
            with atomic_path(self.previous) as copy:
                shutil.copyfile(self.best, copy)
        self._say(f"a new run has its first best epoch: the earlier best is kept as {self.previous.name}")


def random_state() -> dict:
    """The torch random state (CPU and every GPU), to store in a checkpoint so a resumed run draws the same."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_random_state(state: dict) -> None:
    """Restore what ``random_state`` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
