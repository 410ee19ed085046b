"""The command line, in-process on tiny synthetic data: synthesize, precache, train, predict, evaluate."""

from __future__ import annotations

import errno
import shutil
import threading

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from braintools.cache import build
from braintools.cli import build_parser, main
from braintools.errors import DiskFullError
from braintools.models import checkpoints

COMMANDS = ("synthesize", "precache", "train", "predict", "evaluate")


@pytest.fixture(scope="module")
def ci_data(tmp_path_factory):
    """BRAINTOOLS_DATA in a temporary folder holding the ci synthetic dataset (6 cases of 64 x 64 x 40)."""
    root = tmp_path_factory.mktemp("cli_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINTOOLS_DATA", str(root))
        patch.setenv("BRAINTOOLS_PROFILE", "ci")
        assert main(["synthesize"]) == 0
        yield root


@pytest.fixture(scope="module")
def ci_checkpoint(ci_data):
    """A 3D U-Net trained for one epoch on the ci data, in its own folder: for the tests that only need a model."""
    folder = ci_data / "fixture_checkpoints"
    assert main(["precache"]) == 0
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    return folder / "unet3d_best.pt"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "usage: python -m braintools " + command in capsys.readouterr().out


def _errors(capsys) -> list[str]:
    """The message lines on stderr (progress bars left out)."""
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    return [line for line in lines if line.startswith(("error:", "failed:", "python -m braintools"))]


def test_bad_arguments_give_one_line_and_status_2(capsys):
    cases = {("predict", "--overlap", "1.5"): "must lie in [0, 1)", ("train", "--model", "resnet"): "resnet",
             ("nonsense",): "invalid choice", ("synthesize", "--cases", "0"): "positive integer",
             ("synthesize", "--validation-cases", "-1"): "0 or more", ("precache", "--workers", "-2"): "positive",
             ("train", "--device", "gpu0"): "not a device"}
    if not torch.cuda.is_available():
        cases[("predict", "--device", "cuda")] = "no CUDA GPU"
    for arguments, words in cases.items():
        assert main(list(arguments)) == 2
        errors = _errors(capsys)
        assert len(errors) == 1 and "error:" in errors[0] and words in errors[0], (arguments, errors)


def test_profile_may_come_before_or_after_the_command(ci_data, capsys):
    assert main(["--profile", "ci", "precache"]) == 0
    assert main(["precache", "--profile", "ci"]) == 0
    assert main(["--profile", "nope", "precache"]) == 2 and "unknown profile" in _errors(capsys)[0]


def test_pipeline_end_to_end(ci_data, capsys):
    outputs = ci_data / "outputs" / "ci"
    assert main(["precache"]) == 0
    assert main(["train", "--epochs", "1"]) == 0
    best = outputs / "checkpoints" / "unet3d_best.pt"
    assert best.is_file() and checkpoints.load_model(best).spec.kind == "unet3d"
    assert main(["predict", "--tta"]) == 0
    out = capsys.readouterr().out
    assert "flip TTA axes (0,)" in out and "window" in out
    predictions = sorted((outputs / "predictions").glob("*.nii.gz"))
    assert len(predictions) == 1  # the one test patient of the ci split
    saved = nib.load(predictions[0])
    assert set(np.unique(np.asanyarray(saved.dataobj))) <= {0, 1, 2, 4} and saved.get_data_dtype() == np.uint8
    assert main(["evaluate", "--empty-rule", "ignore"]) == 0
    table = pd.read_csv(outputs / "evaluation" / "per_case.csv")
    assert list(table["case_id"]) == [predictions[0].name.removesuffix(".nii.gz")]
    assert set(table["empty_rule"]) == {"ignore"} and "Dice_WT" in table
    out = capsys.readouterr().out
    assert "empty-region rule 'ignore'" in out and "flip TTA" in out  # the settings are printed next to the scores


def test_train_resumes_by_default_and_never_loses_the_best(ci_data, tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    assert main(["train", "--epochs", "2", "--checkpoint-dir", str(folder)]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    state = checkpoints.read_checkpoint(folder / "unet3d_last.pt")
    assert [row["epoch"] for row in state["history"]] == [1, 2]  # epoch 2 continued epoch 1
    assert main(["train", "--epochs", "2", "--checkpoint-dir", str(folder)]) == 0  # nothing left to train
    assert "already reached epoch 2 of 2" in capsys.readouterr().out
    best_before = (folder / "unet3d_best.pt").read_bytes()
    assert main(["train", "--epochs", "1", "--restart", "--checkpoint-dir", str(folder)]) == 0
    assert (folder / "unet3d_best.previous.pt").read_bytes() == best_before


def test_train_refuses_to_resume_another_recipe(ci_data, tmp_path, capsys, monkeypatch):
    from braintools.training import recipes

    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    original = recipes.UNet3DRecipe.from_profile
    monkeypatch.setattr(recipes.UNet3DRecipe, "from_profile",
                        classmethod(lambda cls, profile, **changes: original(profile, learning_rate=0.5, **changes)))
    assert main(["train", "--epochs", "2", "--checkpoint-dir", str(folder)]) == 2
    error = _errors(capsys)[0]
    assert "other settings (learning_rate)" in error and "--restart" in error


def test_train_and_predict_the_2d_model(ci_data, tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    assert main(["train", "--model", "unet2d", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    assert (folder / "unet2d_best.pt").is_file()
    out = tmp_path / "predictions"
    case_id = "BraTS20_Training_001"
    assert main(["predict", "--checkpoint-dir", str(folder), "--cases", case_id, "--out", str(out)]) == 0
    assert "unet2d" in capsys.readouterr().out
    assert (out / f"{case_id}.nii.gz").is_file()


def test_predict_on_a_folder_needs_no_course_dataset(ci_data, ci_checkpoint, tmp_path, monkeypatch, capsys):
    source = ci_data / "synthetic" / "ci" / "brats20-dataset-training-validation"
    cases = sorted(source.rglob("BraTS20_Training_00[12]"))
    for case in cases:
        shutil.copytree(case, tmp_path / "mine" / case.name)
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "elsewhere"))  # no synthetic dataset there
    out = tmp_path / "out"
    assert main(["predict", "--input", str(tmp_path / "mine"), "--checkpoint", str(ci_checkpoint),
                 "--out", str(out)]) == 0
    assert len(list(out.glob("*.nii.gz"))) == 2
    assert not (tmp_path / "elsewhere" / "synthetic").exists()


def test_a_model_trained_under_one_profile_predicts_the_same_under_another(ci_data, tmp_path):
    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0  # ci: 64 x 64 x 40, shrunk 2x
    moved = tmp_path / "elsewhere" / "my_model.pt"  # another folder, another file name
    moved.parent.mkdir()
    shutil.copy(folder / "unet3d_best.pt", moved)
    source = ci_data / "synthetic" / "ci" / "brats20-dataset-training-validation"
    shutil.copytree(next(source.rglob("BraTS20_Training_004")), tmp_path / "mine" / "BraTS20_Training_004")
    outputs = {}
    for profile, checkpoint in (("ci", folder / "unet3d_best.pt"), ("course", moved), ("kaggle", moved)):
        out = tmp_path / profile
        assert main(["predict", "--profile", profile, "--input", str(tmp_path / "mine"), "--checkpoint",
                     str(checkpoint), "--out", str(out)]) == 0
        outputs[profile] = np.asanyarray(nib.load(out / "BraTS20_Training_004.nii.gz").dataobj)
    assert outputs["ci"].any()  # the test would pass trivially on empty predictions
    np.testing.assert_array_equal(outputs["course"], outputs["ci"])
    np.testing.assert_array_equal(outputs["kaggle"], outputs["ci"])


def test_one_bad_case_does_not_stop_the_others(ci_data, ci_checkpoint, tmp_path, capsys):
    source = ci_data / "synthetic" / "ci" / "brats20-dataset-training-validation"
    for case in sorted(source.rglob("BraTS20_Training_00[123]")):
        shutil.copytree(case, tmp_path / "mine" / case.name)
    broken = next((tmp_path / "mine" / "BraTS20_Training_002").glob("*_flair.nii"))
    broken.write_bytes(broken.read_bytes()[:500])  # truncated
    out = tmp_path / "out"
    status = main(["predict", "--input", str(tmp_path / "mine"), "--checkpoint", str(ci_checkpoint), "--out", str(out)])
    errors = _errors(capsys)
    assert status == 1 and sorted(p.name for p in out.glob("*.nii.gz")) == [
        "BraTS20_Training_001.nii.gz", "BraTS20_Training_003.nii.gz"]
    assert any("BraTS20_Training_002" in line and "_flair.nii" in line for line in errors)
    assert "1 of 3 case(s) failed" in errors[-1]
    (out / "BraTS20_Training_003.nii.gz").write_bytes(b"garbage")
    csv = tmp_path / "scores.csv"
    assert main(["evaluate", "--pred-dir", str(out), "--gt", str(tmp_path / "mine"), "--csv", str(csv)]) == 1
    assert list(pd.read_csv(csv)["case_id"]) == ["BraTS20_Training_001"]
    assert any("BraTS20_Training_003" in line for line in _errors(capsys))


def test_bad_checkpoints_and_folders_are_one_clear_line(ci_data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    zero = tmp_path / "zero.pt"
    zero.write_bytes(b"")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    runs = {("predict", "--checkpoint-dir", str(empty)): "no checkpoint",
            ("predict", "--cases", "no_such_case"): "no_such_case",
            ("evaluate", "--pred-dir", str(empty)): "no predictions",
            ("predict", "--checkpoint", str(zero)): "empty",
            ("predict", "--checkpoint", str(tmp_path / "none.pt")): "not found",
            ("predict", "--out", str(not_a_folder / "sub")): "Not a directory"}
    for arguments, words in runs.items():
        assert main(list(arguments)) == 2, arguments
        errors = _errors(capsys)
        assert len(errors) == 1 and words in errors[0], (arguments, errors)


def test_parser_lists_every_command():
    help_text = build_parser().format_help()
    assert all(command in help_text for command in COMMANDS)


def test_a_full_disk_while_predicting_names_the_file_and_leaves_no_empty_one(ci_data, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    real_write_text = type(tmp_path).write_text

    def full_disk(self, *args, **kwargs):
        if "prediction_settings" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "write_text", full_disk)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint-dir", str(folder), "--cases", "BraTS20_Training_001",
                 "--out", str(out)]) == 2
    error = _errors(capsys)[0]
    assert "prediction_settings.json" in error and "disk is full" in error
    assert [path.name for path in out.iterdir()] == [".prediction_settings.lock"]  # no prediction without its
    # record, no empty settings file, no temporary


def test_long_commands_draw_no_progress_bars_outside_a_terminal(ci_data, tmp_path, capsys):
    assert main(["synthesize", "--cases", "3", "--validation-cases", "0", "--out", str(tmp_path / "data")]) == 0
    assert main(["precache", "--cache-dir", str(tmp_path / "cache")]) == 0
    captured = capsys.readouterr()
    assert "%|" not in captured.err and "%|" not in captured.out  # a log file gets the summary lines alone
    assert "converted" in captured.out


@pytest.mark.parametrize("command", [["predict"], ["evaluate"], ["train", "--epochs", "1"], ["precache"]])
def test_a_real_data_profile_without_the_kaggle_data_stops_in_one_line_and_generates_nothing(
        command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "course")  # ignored: --profile decides
    monkeypatch.setenv("BRAINTOOLS_KAGGLE_INPUT", str(tmp_path / "no_mount"))
    assert main([*command, "--profile", "kaggle"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "no_mount: no folder brats20-dataset-training-validation" in errors[0], errors
    assert not (tmp_path / "data" / "synthetic").exists()


def test_synthesize_refuses_a_real_data_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    assert main(["synthesize", "--profile", "kaggle"]) == 2
    assert "uses the real Kaggle data" in _errors(capsys)[0] and not (tmp_path / "data" / "synthetic").exists()


def test_precache_takes_its_worker_count_from_the_profile_given(ci_data, monkeypatch):

    seen = []
    real_precache = build.precache

    def recording(*args, **kwargs):
        seen.append(kwargs)
        return real_precache(*args, **kwargs)

    monkeypatch.setattr(build, "precache", recording)
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "course")  # 2 workers there, 1 in ci
    assert main(["precache", "--profile", "ci"]) == 0
    assert seen[-1]["workers"] == 1 and seen[-1]["crop"] is False
    assert main(["precache", "--profile", "ci", "--workers", "2"]) == 0 and seen[-1]["workers"] == 2


def test_precache_with_one_bad_case_among_good_ones_caches_the_others_and_exits_1(ci_data, tmp_path, capsys):
    source = ci_data / "synthetic" / "ci" / "brats20-dataset-training-validation"
    for case in sorted(source.rglob("BraTS20_Training_00[123]")):
        shutil.copytree(case, tmp_path / "mine" / case.name)
    broken = next((tmp_path / "mine" / "BraTS20_Training_002").glob("*_t1.nii"))
    broken.write_bytes(broken.read_bytes()[:500])
    cache = tmp_path / "cache"
    assert main(["precache", "--input", str(tmp_path / "mine"), "--cache-dir", str(cache)]) == 1  # as the README says
    errors = _errors(capsys)
    assert any("BraTS20_Training_002" in line and "_t1.nii" in line for line in errors), errors
    assert "1 of 3 case(s) failed" in errors[-1]
    assert sorted(build.read_manifest(cache)["cases"]) == ["BraTS20_Training_001", "BraTS20_Training_003"]


def test_a_bad_window_model_or_spec_is_one_line_before_any_case(ci_data, tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    capsys.readouterr()
    best = folder / "unet3d_best.pt"
    out = tmp_path / "out"
    damaged = tmp_path / "damaged_best.pt"
    state = torch.load(best, weights_only=True)
    state["spec"]["shrink"] = 1000
    torch.save(state, damaged)
    runs = {("--roi", "4000", "4000", "4000"): "window 4000x4000x4000 is far larger than the volume 64x64x40",
            ("--checkpoint", str(best), "--model", "unet2d"): "--model unet2d, but this checkpoint holds a unet3d",
            ("--checkpoint", str(damaged)): "damaged_best.pt: invalid model spec: shrink must be a whole number"}
    for arguments, words in runs.items():
        status = main(["predict", "--checkpoint-dir", str(folder), "--cases", "all", "--out", str(out), *arguments])
        errors = _errors(capsys)
        assert status == 2 and len(errors) == 1 and words in errors[0], (arguments, errors)
        assert not list(out.glob("*.nii.gz"))  # refused before any case


def test_evaluate_reports_each_case_with_the_settings_that_made_it(ci_data, tmp_path, capsys):
    folder, out, csv = tmp_path / "checkpoints", tmp_path / "out", tmp_path / "scores.csv"
    assert main(["train", "--epochs", "1", "--checkpoint-dir", str(folder)]) == 0
    common = ["--checkpoint-dir", str(folder), "--out", str(out)]
    assert main(["predict", *common, "--cases", "BraTS20_Training_001", "BraTS20_Training_002"]) == 0
    assert main(["predict", *common, "--cases", "BraTS20_Training_002", "--keep-largest"]) == 0  # one case again
    capsys.readouterr()
    assert main(["evaluate", "--pred-dir", str(out), "--csv", str(csv)]) == 0
    captured = capsys.readouterr()
    table = pd.read_csv(csv).set_index("case_id")
    assert "keep largest WT" in table.loc["BraTS20_Training_002", "settings"]
    assert "post-processing: none" in table.loc["BraTS20_Training_001", "settings"]
    assert (table["checkpoint"].str.startswith(str(folder / "unet3d_best.pt") + " (epoch 1, sha256 ")).all()
    assert "the predictions were made 2 different ways" in captured.out
    assert "4 case(s) with ground truth under" in captured.err and "BraTS20_Training_003" in captured.err


def test_damaged_records_name_a_fix_that_predict_itself_accepts(tmp_path):
    # predict refuses a folder whose records are damaged, so "or predict again" there only repeated the error
    from braintools.errors import DataError
    from braintools.inference import records

    (tmp_path / "prediction_settings.json").write_text('{"format": 2, "cases": {"a": ')
    with pytest.raises(DataError, match="prediction records are damaged") as error:
        records.read_records(tmp_path)
    assert "into another folder (--out)" in str(error.value)


def test_evaluate_checks_the_records_first_and_never_empties_a_table(ci_checkpoint, tmp_path, capsys):
    out, csv = tmp_path / "out", tmp_path / "scores.csv"
    assert main(["predict", "--checkpoint", str(ci_checkpoint), "--cases", "BraTS20_Training_001",
                 "--out", str(out)]) == 0
    assert main(["evaluate", "--pred-dir", str(out), "--csv", str(csv)]) == 0
    good = csv.read_bytes()
    records = out / "prediction_settings.json"
    kept = records.read_text()
    records.write_text(kept.replace('"settings"', '"setting"'))  # damaged: a record lost its settings
    capsys.readouterr()
    assert main(["evaluate", "--pred-dir", str(out), "--csv", str(csv)]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "prediction_settings.json: prediction records are damaged" in errors[0], errors
    records.write_text(kept)
    (out / "BraTS20_Training_001.nii.gz").write_bytes(b"garbage")  # every case now fails
    assert main(["evaluate", "--pred-dir", str(out), "--csv", str(csv)]) == 1
    captured = capsys.readouterr()
    assert csv.read_bytes() == good and "per-case table not written" in captured.out
    assert "scores.csv: not written, no case could be scored; the earlier table is kept" in captured.err


def test_restart_interrupted_or_out_of_disk_never_loses_the_best_and_a_second_train_is_refused(
        ci_data, tmp_path, monkeypatch, capsys):
    from braintools.training import checkpoint_folder, train

    folder = tmp_path / "checkpoints"
    assert main(["train", "--epochs", "2", "--checkpoint-dir", str(folder)]) == 0
    best = (folder / "unet3d_best.pt").read_bytes()
    with monkeypatch.context() as patch:  # Ctrl-C right after "a new run"
        patch.setattr(train, "train_one_epoch", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
        assert main(["train", "--epochs", "2", "--restart", "--checkpoint-dir", str(folder)]) == 130
    assert (folder / "unet3d_best.pt").read_bytes() == best and not (folder / "unet3d_best.previous.pt").exists()
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint-dir", str(folder), "--cases", "BraTS20_Training_001", "--out", str(out)]) == 0
    real_save = checkpoint_folder.save_checkpoint

    def full_disk(path, *args, **kwargs):
        if path.name == "unet3d_last.pt":
            raise DiskFullError(errno.ENOSPC, f"{path}: cannot write this file, the disk is full")
        return real_save(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_folder, "save_checkpoint", full_disk)
        assert main(["train", "--epochs", "2", "--restart", "--checkpoint-dir", str(folder)]) == 2
    assert "disk is full" in _errors(capsys)[-1]
    assert main(["train", "--epochs", "2", "--restart", "--checkpoint-dir", str(folder)]) == 0  # to recover
    assert (folder / "unet3d_best.previous.pt").read_bytes() == best  # the old best is still there
    from braintools import course

    with checkpoint_folder.locked(folder, "unet3d"), monkeypatch.context() as patch:
        patch.setattr(course, "prepare_data", lambda *args, **kwargs: pytest.fail("data prepared before the lock"))
        holder = threading.Thread(target=lambda: statuses.append(
            main(["train", "--epochs", "3", "--checkpoint-dir", str(folder)])))
        statuses: list[int] = []
        holder.start()
        holder.join()
    assert statuses == [2] and "another training run of unet3d is writing this folder" in _errors(capsys)[-1]


def test_an_output_on_a_read_only_disk_names_the_file_and_the_fix(ci_checkpoint, tmp_path, monkeypatch, capsys):
    from braintools.evaluation import cases

    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(ci_checkpoint), "--cases", "BraTS20_Training_001",
                 "--out", str(out)]) == 0

    def read_only(table, path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(cases, "write_csv", read_only)
    csv = tmp_path / "ro" / "per_case.csv"
    assert main(["evaluate", "--pred-dir", str(out), "--csv", str(csv)]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and f"Read-only file system: '{csv}'" in errors[0] and "choose another output" in errors[0]
