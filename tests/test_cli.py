"""The command line, in-process on tiny synthetic data: synthesize, precache, train, predict, evaluate."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from braintools.__main__ import build_parser, main

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


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "usage: python -m braintools " + command in capsys.readouterr().out


def test_bad_arguments_give_one_line_and_status_2(capsys):
    assert main(["predict", "--overlap", "1.5"]) == 2
    assert main(["train", "--model", "resnet"]) == 2
    assert main(["nonsense"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all("error:" in line for line in errors)
    assert "must lie in [0, 1)" in errors[0] and "resnet" in errors[1]


def test_pipeline_end_to_end(ci_data, capsys):
    outputs = ci_data / "outputs" / "ci"
    assert main(["precache"]) == 0
    assert "6 converted" in capsys.readouterr().out
    assert main(["train", "--epochs", "1"]) == 0
    assert (outputs / "checkpoints" / "unet3d_best.pt").is_file()
    assert main(["predict", "--tta"]) == 0
    predictions = sorted((outputs / "predictions").glob("*.nii.gz"))
    assert len(predictions) == 1  # the one test patient of the ci split
    saved = nib.load(predictions[0])
    assert set(np.unique(np.asanyarray(saved.dataobj))) <= {0, 1, 2, 4} and saved.get_data_dtype() == np.uint8
    assert main(["evaluate", "--convention", "ignore"]) == 0
    table = pd.read_csv(outputs / "evaluation" / "per_case.csv")
    assert list(table["case_id"]) == [predictions[0].name.removesuffix(".nii.gz")]
    assert set(table["convention"]) == {"ignore"} and "Dice_WT" in table
    assert "convention 'ignore'" in capsys.readouterr().out


def test_train_and_predict_the_2d_model(ci_data, tmp_path, capsys):
    checkpoints = tmp_path / "checkpoints"
    assert main(["train", "--model", "unet2d", "--epochs", "1", "--checkpoint-dir", str(checkpoints)]) == 0
    assert (checkpoints / "unet2d_best.pt").is_file()
    out = tmp_path / "predictions"
    case_id = "BraTS20_Training_001"
    assert main(["predict", "--checkpoint-dir", str(checkpoints), "--cases", case_id, "--out", str(out)]) == 0
    assert "unet2d" in capsys.readouterr().out
    assert (out / f"{case_id}.nii.gz").is_file()


def test_bad_input_is_one_clear_line(ci_data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--checkpoint-dir", str(empty)]) == 2
    assert main(["predict", "--cases", "no_such_case"]) == 2
    assert main(["evaluate", "--pred-dir", str(empty)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3
    assert "no checkpoint" in errors[0] and "no_such_case" in errors[1] and "no predictions" in errors[2]


def test_parser_lists_every_command():
    help_text = build_parser().format_help()
    assert all(command in help_text for command in COMMANDS)
