"""Profiles, paths, atomic writes, preprocessing."""

import errno
import shutil

import numpy as np
import pytest

from braintools import paths, profiles
from braintools._private import atomic
from braintools.data import preprocess
from braintools.errors import DiskFullError


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV, "ci")
    assert profiles.get_profile().name == "ci"
    monkeypatch.delenv(profiles.PROFILE_ENV)
    assert profiles.get_profile().name == profiles.DEFAULT_PROFILE == "course"
    assert profiles.get_profile("KAGGLE").source == "kaggle"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'fast'.*ci"):
        profiles.get_profile("fast")


def test_course_profile_is_real_brats_size():
    assert profiles.get_profile("course").grid_shape == (240, 240, 155)


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "d"))
    assert paths.data_dir() == (tmp_path / "d").resolve()
    assert paths.synthetic_dir("ci") == (tmp_path / "d").resolve() / "synthetic" / "ci"
    assert paths._outputs_dir("ci").is_dir()


def test_data_dir_naming_a_file_says_so_and_how_to_fix_it(monkeypatch, tmp_path):
    from braintools.errors import DataError

    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv(paths.DATA_ENV, str(a_file))
    with pytest.raises(DataError, match=r"data\.txt: BRAINTOOLS_DATA names a file, not a folder; point"):
        paths.data_dir()
    monkeypatch.setenv(paths.DATA_ENV, str(a_file / "below"))
    with pytest.raises(DataError, match=r"below: BRAINTOOLS_DATA cannot be created"):
        paths.data_dir()


def test_data_dir_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    assert paths._repo_root() is not None
    assert paths.data_dir() == paths._repo_root().resolve() / "data"


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "a.npy"
    with atomic.atomic_path(target) as temporary:
        assert temporary.name.endswith("a.npy") and temporary != target
        np.save(temporary, np.arange(3))
        assert not target.exists()
    assert np.load(target).tolist() == [0, 1, 2]
    assert [p.name for p in target.parent.iterdir()] == ["a.npy"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_an_error_writing_the_temporary_names_the_file_the_caller_asked_for(tmp_path):
    target = tmp_path / "scores.csv"
    with pytest.raises(PermissionError) as raised:
        with atomic.atomic_path(target) as temporary:
            raise PermissionError(errno.EACCES, "Permission denied", str(temporary))  # e.g. a read-only folder
    assert raised.value.filename == str(target) and ".tmp-" not in str(raised.value)


def test_a_writer_that_names_the_temporary_as_a_path_still_names_the_file_the_caller_asked_for(tmp_path):
    target = tmp_path / "per_case.csv"
    with pytest.raises(PermissionError) as raised:
        with atomic.atomic_path(target) as temporary:  # pandas' to_csv on a read-only disk: filename is a Path
            raise PermissionError(errno.EACCES, "Permission denied", temporary)
    assert str(raised.value.filename) == str(target) and ".tmp-" not in str(raised.value)


def test_a_read_only_disk_names_the_file_the_caller_asked_for_not_the_temporary(tmp_path, monkeypatch):
    import pandas as pd

    target = tmp_path / "per_case.csv"
    real_unlink = type(tmp_path).unlink

    def read_only(self, *args, **kwargs):  # a read-only file system refuses even to unlink a missing file
        if self.name.startswith(atomic.TEMPORARY_PREFIX):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, *args, **kwargs)

    def refuse(table, path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(type(tmp_path), "unlink", read_only)
    monkeypatch.setattr(pd.DataFrame, "to_csv", refuse)
    with pytest.raises(OSError) as raised:
        with atomic.atomic_path(target) as temporary:
            pd.DataFrame({"a": [1]}).to_csv(temporary, index=False)
    assert raised.value.filename == str(target) and ".tmp-" not in str(raised.value), str(raised.value)


def test_a_writer_that_loses_the_errno_on_a_full_disk_is_still_reported_as_disk_full(tmp_path, monkeypatch):
    target = tmp_path / "unet3d_last.pt"

    def write_like_torch_save_on_a_full_disk():  # what torch.save(state, path) raised on a full 3 MiB tmpfs
        with atomic.atomic_path(target) as temporary:
            temporary.write_bytes(b"PK half a checkpoint")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 640 vs 534")

    with pytest.raises(RuntimeError, match="unexpected pos"):  # plenty of free space: the writer's own error
        write_like_torch_save_on_a_full_disk()
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(2**30, 2**30, 4096))
    with pytest.raises(DiskFullError, match=r"unet3d_last\.pt: cannot write this file, the disk is full \(No space"):
        write_like_torch_save_on_a_full_disk()
    assert list(tmp_path.iterdir()) == []


def test_brain_mask_and_zscore():
    image = np.zeros((2, 4, 4, 1), dtype=np.float32)
    image[0, :2] = [[[1.0]] * 4, [[3.0]] * 4]
    image[1, :2] = 10.0
    mask = preprocess.brain_mask(image)
    assert mask.sum() == 8
    z = preprocess.zscore_brain(image)
    assert np.allclose(z[0][mask].mean(), 0) and np.allclose(z[0][mask].std(), 1, atol=1e-4)
    assert np.all(z[:, ~mask] == 0)
    assert np.all(z[1][mask] == 0)  # constant channel: no division by zero
    assert np.all(preprocess.zscore_brain(np.zeros((1, 2, 2))) == 0)


def test_paths_own_the_course_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path))
    outputs = tmp_path.resolve() / "outputs" / "ci"
    folders = {paths.cache_dir: "npy_cache", paths.h5_cache_dir: "npy_cache_h5", paths.checkpoint_dir: "checkpoints",
               paths.quick_checkpoint_dir: "quick_checkpoints", paths.predictions_dir: "predictions",
               paths.evaluation_dir: "evaluation", paths.figures_dir: "figures", paths.pretrained_dir: "pretrained"}
    for folder_of, name in folders.items():
        assert folder_of("ci") == outputs / name and (outputs / name).is_dir()
    assert paths.split_path("ci") == outputs / "split.json"
    assert paths.scratch_dir("ci", "timing") == outputs / "scratch" / "timing"
    assert paths.synthetic_dir("ci") == tmp_path.resolve() / "synthetic" / "ci"
