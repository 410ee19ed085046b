"""The command line on BraTS 2021 and 2023 folders: synthesize --release, predict --input, evaluate (issue 25)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from braintools.cli import main
from braintools.data import io, releases

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "tests" / "data" / "golden_unet3d_ci.pt"  # a small 3D U-Net of the ci recipe
SHARED = ROOT.parent / "shared" / "data"
METRICS = [f"{metric}_{region}" for metric in ("Dice", "HD95", "Sensitivity", "Specificity")
           for region in ("WT", "TC", "ET")]


def predict_and_evaluate(folder: Path, out: Path, capsys) -> pd.DataFrame:
    """``predict --input folder --cases all`` then ``evaluate`` against the same folder; the per-case table."""
    assert main(["predict", "--input", str(folder), "--cases", "all", "--checkpoint", str(CHECKPOINT),
                 "--out", str(out / "predictions"), "--device", "cpu"]) == 0
    assert main(["evaluate", "--pred-dir", str(out / "predictions"), "--gt", str(folder),
                 "--csv", str(out / "scores.csv")]) == 0
    capsys.readouterr()
    return pd.read_csv(out / "scores.csv")


@pytest.fixture(scope="module")
def synthetic_layouts(tmp_path_factory):
    """The same 3 tiny synthetic cases written by ``synthesize`` in the 2020, 2021 and 2023 layouts."""
    root = tmp_path_factory.mktemp("layouts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINTOOLS_DATA", str(root / "data"))
        for release in ("2020", "2021", "2023"):
            assert main(["synthesize", "--profile", "ci", "--release", release, "--cases", "3", "--validation-cases",
                         "0", "--out", str(root / release)]) == 0
    return root


def test_synthesize_writes_each_release_as_it_ships(synthetic_layouts, capsys):
    training = {key: io.find_cases(synthetic_layouts / key) for key in ("2020", "2021", "2023")}
    assert [case.case_id for case in training["2021"]] == ["BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00003"]
    assert [case.case_id for case in training["2023"]][0] == "BraTS-GLI-00001-000"
    assert {case.release.key for case in training["2023"]} == {"2023"}
    assert sorted(p.name for p in training["2023"][0].folder.iterdir()) == [
        f"BraTS-GLI-00001-000-{kind}.nii.gz" for kind in ("seg", "t1c", "t1n", "t2f", "t2w")]
    assert not (synthetic_layouts / "2023" / "brats2020-training-data").exists()  # no HDF5 copy of the newer releases
    assert (synthetic_layouts / "2020" / "brats2020-training-data").is_dir()


def test_release_of_the_profile_folder_is_the_profiles(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path))
    assert main(["synthesize", "--profile", "ci", "--release", "2023"]) == 2
    assert "use the profile ci-2023" in capsys.readouterr().err


def test_predict_and_evaluate_a_2023_folder_score_as_its_2021_and_2020_forms(synthetic_layouts, tmp_path, capsys):
    tables = {key: predict_and_evaluate(synthetic_layouts / key, tmp_path / key, capsys)
              for key in ("2020", "2021", "2023")}
    predictions = {key: sorted((tmp_path / key / "predictions").glob("*.nii.gz")) for key in tables}
    for key, release in (("2021", releases.BRATS_2021), ("2023", releases.BRATS_2023)):
        values = set().union(*(np.unique(np.asarray(nib.load(path).dataobj)).tolist() for path in predictions[key]))
        assert values <= set(release.labels.values) and release.labels.et in values  # 2023: ET written as 3
    for key in ("2021", "2023"):
        assert len(tables[key]) == 3
        pd.testing.assert_frame_equal(tables[key][METRICS], tables["2020"][METRICS])
    for first, second in zip(predictions["2021"], predictions["2023"]):
        as_2021 = releases.INTERNAL_LABELS.values  # same voxels, ET 4 -> 3
        raw_2021, raw_2023 = (np.asarray(nib.load(path).dataobj) for path in (first, second))
        np.testing.assert_array_equal(np.where(raw_2021 == as_2021[3], 3, raw_2021), raw_2023)


@pytest.mark.real_data
@pytest.mark.slow
def test_real_cases_of_both_releases_score_the_same(tmp_path, capsys):
    """The two real patients in their BraTS 2021 and 2023 forms, cut to a box around the tumour (CPU time)."""
    if not (SHARED / "brats2021_sample").is_dir() or not (SHARED / "brats2023_sample").is_dir():
        pytest.skip("real samples ../shared/data/brats2021_sample and brats2023_sample are absent")
    box = (slice(96, 176), slice(48, 128), slice(48, 96))  # both tumours reach into it
    for key in ("2021", "2023"):
        for files in io.find_cases(SHARED / f"brats{key}_sample"):
            folder = tmp_path / key / files.case_id
            folder.mkdir(parents=True)
            for path in files.files():  # the real files' values, dtypes and names, cut to the box
                image = nib.load(path)
                cut = nib.Nifti1Image(np.asarray(image.dataobj)[box], image.affine, image.header)
                nib.save(cut, folder / path.name)
    tables = {key: predict_and_evaluate(tmp_path / key, tmp_path / f"out_{key}", capsys) for key in ("2021", "2023")}
    assert sorted(tables["2021"]["case_id"]) == ["BraTS2021_00000", "BraTS2021_00002"]
    assert [releases.counterpart_id(case_id, "2023") for case_id in tables["2021"]["case_id"]] == list(
        tables["2023"]["case_id"])
    pd.testing.assert_frame_equal(tables["2021"][METRICS], tables["2023"][METRICS])
    written = np.asarray(nib.load(tmp_path / "out_2023" / "predictions" / "BraTS-GLI-00000-000.nii.gz").dataobj)
    assert 4 not in np.unique(written)
