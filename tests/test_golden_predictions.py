"""One checkpoint, real cases: the same voxels and the same scores as recorded, through the API and the command line.

``tests/data/golden_unet3d_ci.pt`` is a small 3D U-Net (the ci recipe, 3 epochs on the ci synthetic data; made by
the course's own training code). Its predictions on real BraTS cases of ``../shared/data`` were recorded once in
``tests/data/golden_predictions.json`` as SHA-256 digests of the predicted class maps (no voxels are stored) and the
scores. A change of the package that moves code around must leave both unchanged; a change that is meant to change a
prediction rewrites the record on purpose: ``python tests/test_golden_predictions.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "tests" / "data" / "golden_unet3d_ci.pt"
RECORD = ROOT / "tests" / "data" / "golden_predictions.json"
REAL = ROOT.parent / "shared" / "data" / "brats_sample"
CASES = ("Brats18_2013_3_1", "Brats18_TCIA10_628_1")  # one with an int16 segmentation, one low grade
WINDOW = (128, 128, 96)
SCORES = [f"{metric}_{region}" for metric in ("Dice", "HD95") for region in ("WT", "TC", "ET")]


def digest(classes: np.ndarray) -> str:
    """SHA-256 of a class map's shape, dtype and bytes."""
    array = np.ascontiguousarray(classes)
    return hashlib.sha256(f"{array.shape}{array.dtype}".encode() + array.tobytes()).hexdigest()


def predictions() -> dict:
    """Predict the recorded cases with the golden checkpoint: digests and scores per case and settings."""
    from braintools.data import io
    from braintools.evaluation.cases import evaluate_cases
    from braintools.inference.segment import InferenceSettings
    from braintools.models.checkpoints import load_model

    model = load_model(CHECKPOINT, "cpu")
    cases = [case for case in io.find_cases(REAL, require_seg=True) if case.case_id in CASES]
    plain = InferenceSettings(window=WINDOW, overlap=0.5)
    variants = {"plain": plain, "largest": plain.replace(keep_largest=True, min_et_voxels=50)}
    evaluation = evaluate_cases(model, cases, variants, keep_predictions=True, progress=False)
    record = {}
    for row in evaluation.table.to_dict("records"):
        classes = evaluation.predictions[row["variant"]][row["case_id"]]
        record[f"{row['case_id']} {row['variant']}"] = {
            "classes": digest(classes), **{name: round(float(row[name]), 6) for name in SCORES}}
    return record


@pytest.fixture(scope="module")
def recorded() -> dict:
    if not REAL.is_dir():
        pytest.skip("real sample data ../shared/data/brats_sample is absent")
    return json.loads(RECORD.read_text(encoding="utf-8"))


def test_the_golden_checkpoint_gives_the_recorded_voxels_and_scores(recorded):
    assert predictions() == recorded


def test_the_command_line_writes_the_same_voxels(recorded, tmp_path, monkeypatch):
    from braintools.cli import main

    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / CASES[0]).symlink_to(REAL / CASES[0], target_is_directory=True)
    assert main(["predict", "--profile", "ci", "--input", str(tmp_path / "in"), "--cases", "all", "--checkpoint",
                 str(CHECKPOINT), "--roi", *map(str, WINDOW), "--out", str(tmp_path / "out")]) == 0
    saved = np.asanyarray(nib.load(tmp_path / "out" / f"{CASES[0]}.nii.gz").dataobj)
    from braintools.data.labels import to_contiguous

    assert digest(to_contiguous(saved)) == recorded[f"{CASES[0]} plain"]["classes"]
    assert main(["evaluate", "--profile", "ci", "--pred-dir", str(tmp_path / "out"), "--gt", str(tmp_path / "in"),
                 "--csv", str(tmp_path / "scores.csv")]) == 0
    import pandas as pd

    row = pd.read_csv(tmp_path / "scores.csv").iloc[0]
    for name in SCORES:
        assert row[name] == pytest.approx(recorded[f"{CASES[0]} plain"][name], abs=1e-5), name


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden_predictions.py --write   (records the current predictions)")
    RECORD.write_text(json.dumps(predictions(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RECORD}")
