"""Pre-cache to .npy: round trips, resume after a crash, atomic files, bad sources, LRU and memory-mapped patches."""

from __future__ import annotations

import errno
import gzip
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from braintools import cache
from braintools._private import processes
from braintools._private.atomic import atomic_path
from braintools.cache import benchmark, build, store, verify
from braintools.cache.lru import LRUVolumeCache, value_nbytes
from braintools.cache.sources import CacheSource, h5_sources, nifti_sources
from braintools.data import io, labels
from braintools.data.preprocess import zscore_brain
from braintools.errors import DataError, DiskFullError
from braintools.viz import charts

SHAPE = (32, 32, 12)


# --------------------------------------------------------------------------- fixture helpers


def make_volume(seed: int, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """A small brain-like case: (4, X, Y, Z) integer intensities, zero outside an ellipsoid, and BraTS labels."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    brain = (grid**2).sum(axis=0) < 0.8
    image = rng.integers(50, 1000, (4,) + shape).astype(np.float32) * brain
    seg = np.zeros(shape, dtype=np.uint8)
    centre = [n // 2 + rng.integers(-2, 3) for n in shape]
    seg[centre[0] - 4:centre[0] + 4, centre[1] - 4:centre[1] + 4, centre[2] - 2:centre[2] + 3] = 2
    seg[centre[0] - 2:centre[0] + 2, centre[1] - 2:centre[1] + 2, centre[2] - 1:centre[2] + 2] = 1
    seg[centre[0], centre[1] - 2:centre[1] + 2, centre[2]] = 4
    return image, seg


def write_h5_volume(folder: Path, volume: int, image: np.ndarray, seg: np.ndarray) -> list[Path]:
    """Write one volume as Kaggle HDF5 slices: image (X, Y, 4) float64 [t1, t1ce, t2, flair], mask (X, Y, 3)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(image.shape[-1]):
        path = folder / f"volume_{volume}_slice_{index}.h5"
        with h5py.File(path, "w") as handle:
            handle["image"] = np.moveaxis(image[..., index], 0, -1).astype(np.float64)
            handle["mask"] = labels.labels_to_h5_mask(seg[..., index])
        paths.append(path)
    return paths


def write_h5_tree(folder: Path, n_volumes: int = 3, shape=SHAPE) -> Path:
    for volume in range(1, n_volumes + 1):
        write_h5_volume(folder, volume, *make_volume(volume, shape))
    return folder


def write_nifti_case(folder: Path, case_id: str, image: np.ndarray, seg: np.ndarray | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    affine = io.brats_affine(image.shape[1:])
    for modality, volume in zip(io.MODALITIES, image):
        nib.save(nib.Nifti1Image(volume.astype(np.int16), affine), folder / f"{case_id}_{modality}.nii")
    if seg is not None:
        nib.save(nib.Nifti1Image(seg, affine), folder / f"{case_id}_seg.nii")


def cache_bytes(cache_dir: Path) -> dict[str, bytes]:
    """Every file in a cache folder, by name (temporary files included, so leftovers show up)."""
    return {path.name: path.read_bytes() for path in sorted(cache_dir.iterdir())}


def without_lock(files: dict[str, bytes]) -> dict[str, bytes]:
    """``cache_bytes`` less the lock file, which may still name a killed holder (a courtesy text, not cache data)."""
    return {name: data for name, data in files.items() if name != build.LOCK_NAME}


def final_npy_files(cache_dir: Path) -> list[Path]:
    """The .npy files under their final names (pathlib's glob also matches the hidden .tmp-* files)."""
    return [path for path in cache_dir.glob("*.npy") if not path.name.startswith(".tmp-")]


def complete_npy(path: Path) -> bool:
    """True if a .npy file holds all the bytes its header announces."""
    array = np.load(path, mmap_mode="r")
    return path.stat().st_size == array.offset + array.nbytes


# --------------------------------------------------------------------------- round trips


def test_h5_round_trip_equals_source(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5")
    report = build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False)
    assert report.converted == ["volume_1", "volume_2", "volume_3"] and not report.failed
    for volume in (1, 2, 3):
        source = io.load_h5_volume(io.find_h5_volumes(h5_dir)[volume])
        reference = zscore_brain(source.image)
        for mmap in (True, False):
            image, classes = store.load_cached_case(tmp_path / "cache", f"volume_{volume}", mmap=mmap)
            assert isinstance(image, np.memmap) == mmap
            assert image.dtype == np.float16 and image.shape == (4,) + SHAPE
            assert classes.dtype == np.uint8 and classes.shape == SHAPE
            np.testing.assert_array_equal(image, reference.astype(np.float16))
            np.testing.assert_allclose(image.astype(np.float32), reference, rtol=2**-11, atol=2**-24)
            np.testing.assert_array_equal(classes, labels.to_contiguous(source.seg))
    assert set(np.unique(classes)) == {0, 1, 2, 3}


def test_nifti_round_trip_and_case_without_segmentation(tmp_path):
    image, seg = make_volume(7)
    write_nifti_case(tmp_path / "nii" / "BraTS20_Training_001", "BraTS20_Training_001", image, seg)
    write_nifti_case(tmp_path / "nii" / "BraTS20_Validation_001", "BraTS20_Validation_001", image, None)
    sources = nifti_sources(tmp_path / "nii")
    assert [source.kind for source in sources] == ["nifti", "nifti"]
    build.precache(sources, tmp_path / "cache", workers=1, progress=False)
    cached_image, classes = store.load_cached_case(tmp_path / "cache", "BraTS20_Training_001")
    np.testing.assert_array_equal(cached_image, zscore_brain(image).astype(np.float16))
    np.testing.assert_array_equal(classes, labels.to_contiguous(seg))
    validation_image, no_labels = store.load_cached_case(tmp_path / "cache", "BraTS20_Validation_001")
    assert no_labels is None and validation_image.shape == (4,) + SHAPE
    assert not (tmp_path / "cache" / "BraTS20_Validation_001_labels.npy").exists()
    assert store.cached_case_ids(tmp_path / "cache") == ["BraTS20_Training_001", "BraTS20_Validation_001"]


def test_manifest_describes_each_patient(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=2)
    build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False)
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["format"] == store.CACHE_FORMAT and "(4, X, Y, Z)" in manifest["layout"]
    entry = manifest["cases"]["volume_2"]
    assert entry["image"]["shape"] == [4, *SHAPE] and entry["image"]["dtype"] == "float16"
    assert entry["labels"]["shape"] == list(SHAPE) and entry["labels"]["dtype"] == "uint8"
    assert entry["image"]["sha256"] == store.file_sha256(tmp_path / "cache" / "volume_2_image.npy")
    assert entry["source"]["kind"] == "h5" and entry["source"]["files"] == SHAPE[2]
    assert entry["modalities"] == list(io.MODALITIES)


def test_second_run_skips_and_a_changed_source_is_converted_again(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5")
    cache_dir = tmp_path / "cache"
    build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
    before = cache_bytes(cache_dir)
    again = build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
    assert again.converted == [] and again.skipped == ["volume_1", "volume_2", "volume_3"]
    assert cache_bytes(cache_dir) == before
    new_image, new_seg = make_volume(99)
    write_h5_volume(h5_dir, 2, new_image, new_seg)
    changed = build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
    assert changed.converted == ["volume_2"] and changed.skipped == ["volume_1", "volume_3"]
    image, _ = store.load_cached_case(cache_dir, "volume_2")
    np.testing.assert_array_equal(image, zscore_brain(new_image).astype(np.float16))


def test_a_changed_channel_order_is_a_changed_source(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=1)
    build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False)
    swapped = h5_sources(h5_dir, channel_order=("flair", "t1", "t1ce", "t2"))
    report = build.precache(swapped, tmp_path / "cache", workers=1, progress=False)
    assert report.converted == ["volume_1"]


def test_process_pool_writes_the_same_bytes_as_one_process(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=4)
    build.precache(h5_sources(h5_dir), tmp_path / "one", workers=1, progress=False)
    report = build.precache(h5_sources(h5_dir), tmp_path / "two", workers=2, progress=False)
    assert sorted(report.converted) == ["volume_1", "volume_2", "volume_3", "volume_4"]
    assert cache_bytes(tmp_path / "two") == cache_bytes(tmp_path / "one")


def test_workers_default_to_the_profile(tmp_path, monkeypatch):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=1)
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "ci")
    assert build.precache(h5_sources(h5_dir), tmp_path / "c", progress=False).workers == 1
    assert build.precache(h5_sources(h5_dir), tmp_path / "c", workers=2, progress=False).workers == 2
    with pytest.raises(ValueError, match="workers"):
        build.precache(h5_sources(h5_dir), tmp_path / "c", workers=0, progress=False)


# --------------------------------------------------------------------------- interruption and atomic files

@pytest.fixture(scope="module")
def reference_cache(tmp_path_factory):
    """Three HDF5 volumes and their cache from one uninterrupted run."""
    root = tmp_path_factory.mktemp("reference")
    h5_dir = write_h5_tree(root / "h5")
    build.precache(h5_sources(h5_dir), root / "cache", workers=1, progress=False)
    return h5_dir, cache_bytes(root / "cache")


def assert_only_complete_files_under_final_names(cache_dir: Path, reference: dict[str, bytes]) -> None:
    """Every .npy under its final name is complete and byte-identical to the uninterrupted run's; the
    manifest lists a subset of the patients, each with the uninterrupted run's entry."""
    for path in final_npy_files(cache_dir):
        assert path.read_bytes() == reference[path.name], f"{path.name} differs from the uninterrupted run"
    finished = store.read_manifest(cache_dir)["cases"]
    expected = json.loads(reference["manifest.json"])["cases"]
    assert all(entry == expected[case_id] for case_id, entry in finished.items())


# A real `python -m braintools precache` on the ci synthetic data, SIGKILLed at seeded random moments while it
# writes: once `files` .npy files (temporary or final, of 12) exist, plus `delay` seconds; at most half of the
# files, so that the pool is still at work however slow the machine. (workers, files, delay):
_MOMENTS = random.Random(2012)
KILL_MOMENTS = [(workers, files, round(_MOMENTS.uniform(0, 0.03), 3))
                for workers, files in zip((2, 2, 2, 1), _MOMENTS.sample(range(1, 7), 4))]
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds worker processes in /proc (Linux)")


def braintools_env(**variables: str) -> dict[str, str]:
    """Environment for a subprocess that imports this checkout's braintools."""
    root = str(Path(cache.__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            **variables}


def run_braintools(*arguments: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "braintools", *arguments], env=env,
                            cwd=Path(cache.__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, parent pid, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def child_pids(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid and stat[0] not in "ZX":
                found.append(int(entry.name))
    return found


def still_running(pids: list[int], wait_s: float) -> list[int]:
    """The processes of ``pids`` still running (not gone, not a zombie) after waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = [pid for pid in pids if (_proc_stat(pid) or ["X"])[0] not in "ZX"]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def npy_files_written(cache_dir: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(cache_dir) if entry.name.endswith(".npy"))
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def ci_precache(tmp_path_factory):
    """The ci synthetic dataset (6 cases of 64 x 64 x 40) in a temporary BRAINTOOLS_DATA, and its cache written by
    one uninterrupted ``python -m braintools precache --workers 2``: (environment, training folder, cache bytes)."""
    from braintools.data import download
    from braintools.profiles import get_profile

    root = tmp_path_factory.mktemp("ci_data")
    env = braintools_env(BRAINTOOLS_DATA=str(root), BRAINTOOLS_PROFILE="ci")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINTOOLS_DATA", str(root))
        train_dir = download.get_dataset(get_profile("ci")).nifti_train
    run = run_braintools("precache", "--workers", "2", "--cache-dir", str(root / "reference"), env=env)
    assert run.wait(timeout=300) == 0, run.stderr.read()
    return env, train_dir, cache_bytes(root / "reference")


@needs_proc
@pytest.mark.parametrize("workers, files, delay", KILL_MOMENTS)
def test_sigkill_of_a_real_precache_then_resume_equals_an_uninterrupted_run(
        tmp_path, ci_precache, workers, files, delay, capsys):
    env, train_dir, reference = ci_precache
    cache_dir = tmp_path / "cache"
    run = run_braintools("precache", "--workers", str(workers), "--cache-dir", str(cache_dir), env=env)
    deadline = time.monotonic() + 120
    while npy_files_written(cache_dir) < files:
        assert run.poll() is None, f"precache ended (status {run.returncode}) before writing {files} files"
        assert time.monotonic() < deadline, "precache wrote nothing for 120 s"
        time.sleep(0.001)
    time.sleep(delay)
    pool_workers = child_pids(run.pid)
    run.kill()
    assert run.wait(timeout=30) == -signal.SIGKILL
    survivors = still_running(pool_workers, wait_s=10)
    for pid in survivors:  # the old code's orphans: do not leave them running after a failed test
        os.kill(pid, signal.SIGKILL)
    assert len(pool_workers) == (workers if workers > 1 else 0), "the kill did not land while the pool ran"
    assert survivors == [], f"pool workers {survivors} outlived the killed precache"
    assert_only_complete_files_under_final_names(cache_dir, reference)

    report = build.precache(nifti_sources(train_dir, require_seg=True), cache_dir, workers=2, progress=False,
                            lock_timeout=20)
    assert "waiting" not in capsys.readouterr().err, "the killed run left its lock behind"
    assert len(report.converted) + len(report.skipped) == 6 and not report.failed
    assert without_lock(cache_bytes(cache_dir)) == without_lock(reference)


ORPHANED_POOL = textwrap.dedent("""
    import os, signal, sys, time
    from braintools._private import processes

    if sys.argv[1] == "without-prctl":  # the portable way alone, as on macOS
        processes._set_parent_death_signal = lambda: None
    pool = processes.worker_pool(2)
    for _ in range(4):
        pool.submit(time.sleep, 60)
    time.sleep(0.5)  # both workers started
    os.kill(os.getpid(), signal.SIGKILL)
""")


@needs_proc
@pytest.mark.parametrize("how", ["with-prctl", "without-prctl"])
def test_pool_workers_die_with_their_killed_parent(how):
    parent = subprocess.Popen([sys.executable, "-c", ORPHANED_POOL, how], env=braintools_env())
    deadline = time.monotonic() + 60
    while len(workers := child_pids(parent.pid)) < 2 and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert parent.wait(timeout=60) == -signal.SIGKILL and len(workers) == 2
    survivors = still_running(workers, wait_s=10)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], f"pool workers {survivors} outlived their parent"


HOLD_LOCK = textwrap.dedent("""
    import os, sys, time
    from braintools._private import processes

    with processes.file_lock(sys.argv[1], what="test run"):
        child = os.fork() if sys.argv[2] == "fork" else -1
        if child == 0:  # a child forked while the lock is held, that goes on living when its parent is killed
            time.sleep(120)
            os._exit(0)
        print("locked", child, flush=True)
        time.sleep(120)
""")


def hold_lock(lock_path: Path, fork: bool) -> tuple[subprocess.Popen, int]:
    """Start a process that takes the lock (and forks a long-lived child); return it and the child's pid."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock_path), "fork" if fork else "-"],
                              env=braintools_env(), stdout=subprocess.PIPE, text=True)
    word, child = holder.stdout.readline().split()
    assert word == "locked"
    return holder, int(child)


@pytest.mark.skipif(sys.platform == "win32", reason="the folder lock between processes uses fcntl (Unix)")
def test_a_run_that_waits_for_the_lock_says_so_and_gives_up_after_the_timeout(tmp_path, capsys):
    h5_dir, cache_dir = write_h5_tree(tmp_path / "h5", n_volumes=1), tmp_path / "cache"
    cache_dir.mkdir()
    holder, _ = hold_lock(cache_dir / build.LOCK_NAME, fork=False)
    try:
        with pytest.raises(DataError, match=rf"cache: another precache run has held this folder for more than 0.5 s "
                                            rf"\(pid {holder.pid} on .* since .*\); let it finish or stop it"):
            build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False, lock_timeout=0.5)
        waiting = capsys.readouterr().err.strip().splitlines()
        assert len(waiting) == 1 and waiting[0].startswith(f"{cache_dir}: waiting for another precache run")
        assert f"(pid {holder.pid} on " in waiting[0] and "giving up after 0.5 s" in waiting[0]
    finally:
        holder.kill()
        holder.wait()
    report = build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False, lock_timeout=5)
    assert report.converted == ["volume_1"] and capsys.readouterr().err == ""
    assert (cache_dir / build.LOCK_NAME).read_bytes() == b"", "an unlocked folder still names a holder"


@needs_proc
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_lock_is_held_never_holds_it(tmp_path, capsys):
    lock_path = tmp_path / build.LOCK_NAME
    holder, child = hold_lock(lock_path, fork=True)
    try:
        holder.kill()  # SIGKILL: the child lives on, an orphan
        holder.wait()
        assert still_running([child], wait_s=0) == [child]
        with processes.file_lock(lock_path, timeout=5):
            assert capsys.readouterr().err == "", "had to wait for a lock held by nobody alive but the orphan"
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="needs fork to patch the workers")
def test_a_worker_dying_mid_write_then_resume_equals_an_uninterrupted_run(tmp_path, reference_cache, monkeypatch):
    h5_dir, reference = reference_cache
    cache_dir, parent, real_write = tmp_path / "cache", os.getpid(), store._atomic_write

    def die_in_worker(path, write):
        if os.getpid() != parent and path.name == "volume_2_image.npy":
            with atomic_path(path) as temporary:
                temporary.write_bytes(b"\x93NUMPY half")
                os._exit(1)
        real_write(path, write)

    monkeypatch.setattr(store, "_atomic_write", die_in_worker)
    with pytest.raises(build.PrecacheError, match="volume_2: worker process died") as failure:
        build.precache(h5_sources(h5_dir), cache_dir, workers=2, progress=False)
    assert "volume_2" in failure.value.report.failed
    assert_only_complete_files_under_final_names(cache_dir, reference)
    monkeypatch.undo()
    report = build.precache(h5_sources(h5_dir), cache_dir, workers=2, progress=False)
    assert "volume_2" in report.converted
    assert cache_bytes(cache_dir) == reference


def test_no_half_written_file_is_ever_visible_under_its_final_name(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=4, shape=(64, 64, 24))
    cache_dir, done, seen, bad = tmp_path / "cache", threading.Event(), set(), []

    def watch() -> None:
        while True:
            finished = done.is_set()
            for path in final_npy_files(cache_dir):
                try:
                    if not complete_npy(path):
                        bad.append(path.name)
                    seen.add(path.name)
                except FileNotFoundError:
                    pass
                except ValueError as error:  # np.load could not even parse a header
                    bad.append(f"{path.name}: {error}")
            if finished:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
    finally:
        done.set()
        watcher.join()
    assert bad == [] and len(seen) == 8


@pytest.mark.skipif(sys.platform == "win32", reason="the folder lock uses fcntl.flock (Unix)")
def test_a_second_precache_on_one_folder_waits_for_the_first(tmp_path):
    h5_dir, cache_dir = write_h5_tree(tmp_path / "h5", n_volumes=1), tmp_path / "cache"
    cache_dir.mkdir()
    reports = []
    second = threading.Thread(target=lambda: reports.append(
        build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)))
    with processes.file_lock(cache_dir / build.LOCK_NAME):  # a first run holds the folder
        (cache_dir / ".tmp-1-volume_1_image.npy").write_bytes(b"the first run is writing this")
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive() and reports == [], "the second run did not wait for the lock"
        assert (cache_dir / ".tmp-1-volume_1_image.npy").exists(), "the second run deleted a file being written"
    second.join()
    assert reports[0].converted == ["volume_1"] and store.cached_case_ids(cache_dir) == ["volume_1"]


def test_leftover_temporary_files_are_removed(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / ".tmp-123-volume_1_image.npy").write_bytes(b"partial")
    build.precache(h5_sources(write_h5_tree(tmp_path / "h5", n_volumes=1)), cache_dir, workers=1,
                   progress=False)
    assert not list(cache_dir.glob(".tmp-*"))


# --------------------------------------------------------------------------- read-only media and a full disk

READ_ONLY_RUN = textwrap.dedent("""
    import errno, os, sys
    from pathlib import Path

    cache_dir, nifti_dir = Path(sys.argv[1]).resolve(), sys.argv[2]
    WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    CHANGES = {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "os.utime", "os.link",
               "os.symlink"}

    def read_only_media(event, args):
        # inside the cache folder, what a read-only disk refuses fails here too, even for root
        if event in ("fcntl.lockf", "fcntl.flock"):
            raise OSError(errno.EROFS, "a lock on read-only media")
        if event == "open":
            changes = isinstance(args[2], int) and args[2] & WRITES
        else:
            changes = event in CHANGES
        if changes and isinstance(args[0], (str, os.PathLike)) and cache_dir in Path(args[0]).resolve().parents:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(args[0]))

    sys.addaudithook(read_only_media)
    from braintools.cache import build, store
    from braintools.cache.sources import nifti_sources
    from braintools.errors import DataError

    sources = nifti_sources(nifti_dir)
    report = build.precache(sources, cache_dir, workers=2, progress=False)
    image, labels = store.load_cached_case(cache_dir, sources[0].case_id)
    patch, _ = store.read_patch(cache_dir, sources[1].case_id, (0, 0, 0), (8, 8, 4))
    print(len(report.skipped), len(report.converted), image.shape, labels.shape, patch.shape)
    os.utime(sources[1].files[0])  # a changed source: this case needs converting, which read-only media refuse
    try:
        build.precache(sources, cache_dir, workers=1, progress=False)
    except DataError as error:
        print(error)
""")


def test_a_complete_cache_on_read_only_media_is_read_without_a_single_write(tmp_path):
    for index in (1, 2):
        write_nifti_case(tmp_path / "nii" / f"case_{index}", f"case_{index}", *make_volume(index))
    cache_dir = tmp_path / "cache"
    build.precache(nifti_sources(tmp_path / "nii"), cache_dir, workers=1, progress=False)
    (cache_dir / ".tmp-123-case_1_image.npy").write_bytes(b"left by a killed run")
    before = cache_bytes(cache_dir)
    run = subprocess.run([sys.executable, "-c", READ_ONLY_RUN, str(cache_dir), str(tmp_path / "nii")],
                         env=braintools_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    counts, refused = run.stdout.strip().splitlines()
    assert counts == f"2 0 (4, {SHAPE[0]}, {SHAPE[1]}, {SHAPE[2]}) {SHAPE} (4, 8, 8, 4)"
    assert refused.startswith(f"{cache_dir / build.LOCK_NAME}: cannot write to the cache folder (Read-only file")
    assert "some cases are not cached yet" in refused
    assert cache_bytes(cache_dir) == before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_complete_cache_in_a_folder_without_write_permission_is_read(tmp_path):
    h5_dir, cache_dir = write_h5_tree(tmp_path / "h5", n_volumes=2), tmp_path / "cache"
    build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
    before = cache_bytes(cache_dir)
    cache_dir.chmod(0o555)
    try:
        try:
            (cache_dir / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("permissions do not stop this user (root); the audit-hook test above covers it")
        report = build.precache(h5_sources(h5_dir), cache_dir, workers=2, progress=False)
        assert report.skipped == ["volume_1", "volume_2"] and report.converted == []
        assert store.load_cached_case(cache_dir, "volume_2")[0].shape == (4, *SHAPE)
        write_h5_volume(h5_dir, 2, *make_volume(22))
        with pytest.raises(DataError, match=r"cannot write to the cache folder \(Permission denied\)"):
            build.precache(h5_sources(h5_dir), cache_dir, workers=1, progress=False)
        assert cache_bytes(cache_dir) == before
    finally:
        cache_dir.chmod(0o755)


@needs_proc
@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="needs fork to patch the workers")
def test_a_full_disk_stops_precache_naming_the_file_and_leaves_no_temporary_file(
        tmp_path, reference_cache, monkeypatch):
    h5_dir, reference = reference_cache
    cache_dir, real_fsync = tmp_path / "cache", os.fsync

    def fsync_onto_a_full_disk(descriptor):  # what a full NFS or thin-provisioned disk reports at fsync
        if "volume_2_image" in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync_onto_a_full_disk)
    with pytest.raises(DiskFullError, match=r"/cache/volume_2_image\.npy: cannot write this file, the disk is full "
                                            r"\(No space left on device\); free some space") as full:
        build.precache(h5_sources(h5_dir), cache_dir, workers=2, progress=False)
    assert isinstance(full.value, OSError) and full.value.errno == errno.ENOSPC
    assert not list(cache_dir.glob(".tmp-*"))
    assert_only_complete_files_under_final_names(cache_dir, reference)
    monkeypatch.undo()
    build.precache(h5_sources(h5_dir), cache_dir, workers=2, progress=False)
    assert cache_bytes(cache_dir) == reference


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_real_disk_full_error_names_the_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "volume_1_image.npy"
    store._save_npy(target, np.zeros(3, np.float16))
    old = target.read_bytes()
    # the kernel's own ENOSPC: the temporary file save_npy writes first is /dev/full
    (tmp_path / f".tmp-{os.getpid()}-volume_1_image.npy").symlink_to("/dev/full")
    with pytest.raises(DiskFullError, match=r"volume_1_image\.npy: cannot write this file, the disk is full"):
        store._save_npy(target, np.ones(10_000, np.float16))
    assert [path.name for path in tmp_path.iterdir()] == ["volume_1_image.npy"] and target.read_bytes() == old


# --------------------------------------------------------------------------- bad sources


def test_truncated_h5_slice_names_the_file_and_the_others_are_cached(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5")
    broken = h5_dir / "volume_2_slice_5.h5"
    broken.write_bytes(broken.read_bytes()[:300])
    with pytest.raises(build.PrecacheError, match=r"volume_2_slice_5\.h5: cannot read HDF5") as failure:
        build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=2, progress=False)
    report = failure.value.report
    assert list(report.failed) == ["volume_2"] and sorted(report.converted) == ["volume_1", "volume_3"]
    assert store.cached_case_ids(tmp_path / "cache") == ["volume_1", "volume_3"]
    assert not (tmp_path / "cache" / "volume_2_image.npy").exists()


@pytest.mark.parametrize("missing_slice", [4, SHAPE[2] - 1])
def test_missing_h5_slice_names_the_file(tmp_path, missing_slice):
    h5_dir = write_h5_tree(tmp_path / "h5")
    (h5_dir / f"volume_3_slice_{missing_slice}.h5").unlink()
    report = build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False,
                            raise_on_failure=False)
    assert f"volume_3_slice_{missing_slice}.h5: file not found" in report.failed["volume_3"]
    assert report.converted == ["volume_1", "volume_2"]
    assert "volume_3: " in report.summary() and "2 converted" in report.summary()


def test_source_deleted_after_listing_names_the_file(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5")
    sources = h5_sources(h5_dir)
    (h5_dir / "volume_1_slice_0.h5").unlink()
    report = build.precache(sources, tmp_path / "cache", workers=1, progress=False, raise_on_failure=False)
    assert "volume_1_slice_0.h5: file not found" in report.failed["volume_1"]
    assert report.converted == ["volume_2", "volume_3"]


def test_truncated_and_missing_nifti_files_name_the_file(tmp_path):
    for index in (1, 2, 3):
        case_id = f"BraTS20_Training_00{index}"
        write_nifti_case(tmp_path / "nii" / case_id, case_id, *make_volume(index))
    truncated = tmp_path / "nii" / "BraTS20_Training_001" / "BraTS20_Training_001_t2.nii"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    sources = nifti_sources(tmp_path / "nii")
    (tmp_path / "nii" / "BraTS20_Training_003" / "BraTS20_Training_003_seg.nii").unlink()
    report = build.precache(sources, tmp_path / "cache", workers=1, progress=False, raise_on_failure=False)
    assert "BraTS20_Training_001_t2.nii: cannot read NIfTI" in report.failed["BraTS20_Training_001"]
    assert "BraTS20_Training_003_seg.nii: file not found" in report.failed["BraTS20_Training_003"]
    assert report.converted == ["BraTS20_Training_002"]


def test_a_flipped_bit_in_a_nii_gz_fails_that_case_and_the_others_are_cached(tmp_path):
    for index in (1, 2):
        write_nifti_case(tmp_path / "nii" / f"case_{index}", f"case_{index}", *make_volume(index))
    plain = tmp_path / "nii" / "case_1" / "case_1_t1ce.nii"
    stored = bytearray(gzip.compress(plain.read_bytes(), compresslevel=0))  # stored: the flip changes one voxel
    stored[len(stored) // 2] ^= 0x01
    plain.with_suffix(".nii.gz").write_bytes(bytes(stored))
    plain.unlink()
    report = build.precache(nifti_sources(tmp_path / "nii"), tmp_path / "cache", workers=1, progress=False,
                            raise_on_failure=False)
    assert "case_1_t1ce.nii.gz: cannot read NIfTI file (CRC check failed)" in report.failed["case_1"]
    assert report.converted == ["case_2"] and store.cached_case_ids(tmp_path / "cache") == ["case_2"]


def test_unsafe_or_duplicate_case_ids_are_refused(tmp_path):
    source = h5_sources(write_h5_tree(tmp_path / "h5", n_volumes=1))[0]
    bad = CacheSource("../escape", source.kind, source.files, n_slices=source.n_slices)
    report = build.precache([source, source, bad], tmp_path / "cache", workers=1, progress=False,
                            raise_on_failure=False)
    assert "two sources have this case id" in report.failed["volume_1"]
    assert "case id must be" in report.failed["../escape"]
    assert store.cache_file_names("volume_1") == ("volume_1_image.npy", "volume_1_labels.npy")


# --------------------------------------------------------------------------- loading


@pytest.fixture()
def small_cache(tmp_path):
    cache_dir = tmp_path / "cache"
    build.precache(h5_sources(write_h5_tree(tmp_path / "h5", n_volumes=2)), cache_dir, workers=1,
                   progress=False)
    return cache_dir


def test_memory_mapped_patch_equals_the_slice_of_the_full_array(small_cache):
    image, classes = store.load_cached_case(small_cache, "volume_1", mmap=False)
    rng = np.random.default_rng(0)
    for _ in range(10):
        size = [int(rng.integers(1, n + 1)) for n in SHAPE]
        start = [int(rng.integers(0, n - s + 1)) for n, s in zip(SHAPE, size)]
        window = tuple(slice(a, a + s) for a, s in zip(start, size))
        patch, patch_classes = store.read_patch(small_cache, "volume_1", start, size)
        assert type(patch) is np.ndarray and patch.flags.c_contiguous and patch.dtype == np.float16
        np.testing.assert_array_equal(patch, image[(slice(None),) + window])
        np.testing.assert_array_equal(patch_classes, classes[window])
    as_float32, _ = store.read_patch(small_cache, "volume_1", (0, 0, 0), SHAPE, dtype=np.float32)
    np.testing.assert_array_equal(as_float32, image.astype(np.float32))


def test_read_patch_sees_a_patient_converted_again(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=1)
    build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False)
    before, _ = store.read_patch(tmp_path / "cache", "volume_1", (0, 0, 0), SHAPE)
    new_image, new_seg = make_volume(42)
    write_h5_volume(h5_dir, 1, new_image, new_seg)
    build.precache(h5_sources(h5_dir), tmp_path / "cache", workers=1, progress=False)
    after, classes = store.read_patch(tmp_path / "cache", "volume_1", (0, 0, 0), SHAPE)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, zscore_brain(new_image).astype(np.float16))
    np.testing.assert_array_equal(classes, labels.to_contiguous(new_seg))


@pytest.mark.parametrize("start, size", [((-1, 0, 0), (4, 4, 4)), ((30, 0, 0), (4, 4, 4)), ((0, 0), (4, 4))])
def test_patch_outside_the_volume_is_refused(small_cache, start, size):
    with pytest.raises(ValueError, match="start"):
        store.read_patch(small_cache, "volume_1", start, size)


def test_loader_errors_name_the_file(small_cache):
    with pytest.raises(DataError, match=r"manifest\.json: case volume_9 is not cached"):
        store.load_cached_case(small_cache, "volume_9")
    (small_cache / "volume_2_labels.npy").unlink()
    with pytest.raises(DataError, match=r"volume_2_labels\.npy: cached file not found"):
        store.load_cached_case(small_cache, "volume_2")
    np.save(small_cache / "volume_1_image.npy", np.zeros((4, 2, 2, 2), np.float16))
    with pytest.raises(DataError, match=r"volume_1_image\.npy: cached array is float16 \(4, 2, 2, 2\)"):
        store.load_cached_case(small_cache, "volume_1")
    (small_cache / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"manifest\.json: cache manifest is not valid"):
        store.cached_case_ids(small_cache)


def test_a_flipped_byte_in_cached_labels_names_the_file_and_the_fix(small_cache):
    from braintools.datasets.patches3d import PatchDataset3D
    from braintools.datasets.slices2d import summarise_source
    from braintools.datasets.volumes import VolumeSource

    labels = small_cache / "volume_1_labels.npy"
    damaged = bytearray(labels.read_bytes())
    damaged[-1] ^= 0x80  # one flipped bit: class 0 or 1 becomes 128 or 129
    labels.write_bytes(bytes(damaged))
    source = VolumeSource.from_cache(small_cache)
    expected = (r"volume_1_labels\.npy: the cached classes of volume_1 hold the value 12[89], outside 0\.\.3 \(the "
                r"file is damaged: its checksum no longer matches the cache manifest\); delete this file and run "
                r"precache again")
    with pytest.raises(DataError, match=expected):
        PatchDataset3D(source, (4, 4, 2), 2).build_indices()
    with pytest.raises(DataError, match=expected):
        summarise_source(source, progress=False)
    labels.unlink()  # the fix the message gives
    build.precache(h5_sources(small_cache.parent / "h5"), small_cache, workers=1, progress=False)
    PatchDataset3D(VolumeSource.from_cache(small_cache), (4, 4, 2), 2).build_indices()


# --------------------------------------------------------------------------- LRU


def test_lru_evicts_least_recently_used_by_bytes():
    sizes = {"a": 400, "b": 300, "c": 200, "d": 500}
    lru = LRUVolumeCache(1000, load=lambda key: np.zeros(sizes[key], np.uint8))
    for key in ("a", "b", "c"):
        lru.get(key)
    assert lru.current_bytes == 900 and lru.keys() == ["a", "b", "c"]
    lru.get("a")  # a hit makes "a" the most recent
    lru.get("d")  # 900 + 500 > 1000: evict "b" (300), then "c" (200)
    assert lru.keys() == ["a", "d"] and lru.current_bytes == 900 and lru.evictions == 2
    assert (lru.hits, lru.misses) == (1, 4)
    assert "a" in lru and "b" not in lru and len(lru) == 2


def test_lru_counts_tuples_does_not_keep_oversized_volumes_and_returns_read_only_arrays():
    lru = LRUVolumeCache(100, load=lambda size: (np.zeros(size, np.uint8), None))
    big, _ = lru.get(150)
    assert big.shape == (150,) and len(lru) == 0 and lru.current_bytes == 0
    small, _ = lru.get(60)
    assert not small.flags.writeable
    with pytest.raises(ValueError):
        small[0] = 1
    lru.clear()
    assert len(lru) == 0 and lru.misses == 2
    assert value_nbytes((np.zeros(3, np.float32), [np.zeros(2, np.float16)], None)) == 16
    with pytest.raises(TypeError):
        value_nbytes("text")
    with pytest.raises(ValueError):
        LRUVolumeCache(-1, load=str)


def test_lru_case_cache_loads_whole_cases_within_the_budget(small_cache):
    image, classes = store.load_cached_case(small_cache, "volume_1", mmap=False)
    one_case = image.nbytes + classes.nbytes
    cases = store.lru_case_cache(small_cache, max_bytes=one_case)
    first = cases.get("volume_1")
    assert type(first[0]) is np.ndarray and cases.get("volume_1") is first
    cases.get("volume_2")
    assert cases.keys() == ["volume_2"] and (cases.hits, cases.misses) == (1, 2)
    np.testing.assert_array_equal(first[0], image)


# --------------------------------------------------------------------------- verify


def test_verify_accepts_a_good_cache_and_finds_each_kind_of_problem(tmp_path):
    h5_dir = write_h5_tree(tmp_path / "h5", n_volumes=4)
    cache_dir = tmp_path / "cache"
    sources = h5_sources(h5_dir)
    build.precache(sources[:3], cache_dir, workers=1, progress=False)
    assert verify.verify_cache(sources[:3], cache_dir, workers=2, progress=False) == {}
    # volume_1: bytes corrupted on disk; volume_2: source changed; volume_3: values wrong but checksum updated
    corrupted = bytearray((cache_dir / "volume_1_image.npy").read_bytes())
    corrupted[-1] ^= 0xFF
    (cache_dir / "volume_1_image.npy").write_bytes(bytes(corrupted))
    write_h5_volume(h5_dir, 2, *make_volume(50))
    manifest = store.read_manifest(cache_dir)
    wrong, _ = store.load_cached_case(cache_dir, "volume_3", mmap=False)
    wrong[0, 16, 16, 6] += 1
    store._save_npy(cache_dir / "volume_3_image.npy", wrong)
    manifest["cases"]["volume_3"]["image"]["sha256"] = store.file_sha256(cache_dir / "volume_3_image.npy")
    store.write_manifest(cache_dir, manifest)
    problems = verify.verify_cache(sources, cache_dir, workers=1, progress=False, raise_on_failure=False)
    assert "volume_1_image.npy: checksum differs" in problems["volume_1"]
    assert "source of volume_2 changed" in problems["volume_2"]
    assert "1 voxels differ from the z-scored source" in problems["volume_3"]
    assert "volume_4 is not cached" in problems["volume_4"]
    with pytest.raises(build.PrecacheError, match="4 of 4 cached cases failed verification"):
        verify.verify_cache(sources, cache_dir, workers=1, progress=False)


# --------------------------------------------------------------------------- real data


@pytest.mark.real_data
@pytest.mark.slow
def test_real_case_with_int16_segmentation_round_trips(real_sample_dir, tmp_path):
    sources = [s for s in nifti_sources(real_sample_dir) if s.case_id == "Brats18_2013_3_1"]
    build.precache(sources, tmp_path / "cache", workers=1, progress=False)
    assert verify.verify_cache(sources, tmp_path / "cache", workers=1, progress=False) == {}
    image, classes = store.load_cached_case(tmp_path / "cache", "Brats18_2013_3_1")
    assert image.shape == (4, 240, 240, 155) and image.dtype == np.float16
    assert set(np.unique(classes)) <= {0, 1, 2, 3} and np.isfinite(image).all()


# --------------------------------------------------------------------------- benchmark helpers (no timing asserted)


def test_median_ms_warms_up_once_then_repeats():
    calls = []
    milliseconds = benchmark.median_ms(lambda: calls.append(1), repeats=4)
    assert len(calls) == 5 and milliseconds >= 0


def test_cpu_seconds_grow_and_timed_precache_reports(tmp_path):
    before = benchmark.cpu_seconds()
    report, wall, cpu = benchmark.timed_precache(h5_sources(write_h5_tree(tmp_path / "h5", n_volumes=2)),
                                             tmp_path / "cache", workers=2)
    assert sorted(report.converted) == ["volume_1", "volume_2"] and wall > 0 and cpu >= 0
    assert benchmark.cpu_seconds() >= before


def test_random_patch_starts_fit_and_repeat_with_the_seed():
    starts = benchmark.random_patch_starts((20, 10, 5), (8, 10, 2), 50, seed=3)
    assert starts == benchmark.random_patch_starts((20, 10, 5), (8, 10, 2), 50, seed=3)
    assert all(0 <= x <= 12 and y == 0 and 0 <= z <= 3 for x, y, z in starts)


def test_benchmark_loads_returns_every_way_with_sizes_and_speed_ups(small_cache, tmp_path):
    h5_files = io.find_h5_volumes(tmp_path / "h5")[1]
    table = benchmark.benchmark_loads(h5_files, small_cache, "volume_1", patch_size=(16, 64, 6), repeats=1)
    assert list(table.index) == list(benchmark.LOAD_WAYS)
    assert table.loc["h5", "read"].startswith(f"{SHAPE[2]} HDF5") and "16x32x6 patch" in table.loc["patch", "read"]
    voxels = int(np.prod(SHAPE))
    expected_mib = {"h5": voxels * 17, "npy": voxels * 8, "fromfile": voxels * 8, "patient": voxels * 9,
                    "patch": 16 * 32 * 6 * 9, "axial": 4 * 32 * 32 * 2}
    for key, size in expected_mib.items():
        assert table.loc[key, "MiB"] == pytest.approx(size / 2**20)
    assert table.attrs == {"volume_shape": SHAPE, "patch_size": (16, 32, 6)}
    assert table.loc["h5", "speed-up"] == 1 and (table["ms"] > 0).all()
    np.testing.assert_allclose(table["speed-up"], table.loc["h5", "ms"] / table["ms"])


def test_disk_sizes_and_plot(small_cache, tmp_path):
    h5_files = io.find_h5_volumes(tmp_path / "h5")[2]
    sizes = benchmark.disk_sizes(h5_files, small_cache, "volume_2")
    assert sizes["files"].tolist() == [SHAPE[2], 1, 1]
    voxels = int(np.prod(SHAPE))
    assert sizes["bytes per voxel"].iloc[1] == pytest.approx(8, abs=128 / voxels)  # 8 bytes + the .npy header
    assert sizes["MiB"].iloc[2] == pytest.approx(os.path.getsize(small_cache / "volume_2_labels.npy") / 2**20)
    table = benchmark.benchmark_loads(h5_files, small_cache, "volume_2", patch_size=(8, 8, 4), repeats=1)
    fig = charts.plot_load_times(table, title="test", repeats=1)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert "median of 1 runs,\nfiles already in the page cache" in fig.axes[0].get_xlabel()


def test_lru_stats():
    lru = LRUVolumeCache(100, load=lambda key: np.zeros(60, np.uint8))
    assert lru.stats()["hit rate"] == 0.0
    for key in ("a", "a", "b", "a"):
        lru.get(key)
    assert lru.stats() == {"volumes": 1, "MiB": 60 / 2**20, "hits": 1, "misses": 3, "evictions": 2,
                           "hit rate": 0.25}
