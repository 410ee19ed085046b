"""The fixed tuning / locked split of the 13 real development cases (benchmarks/realism.py, issue #22)."""

from __future__ import annotations

import dataclasses
import doctest
import importlib.util
from pathlib import Path

import pytest

from braintools.synthetic import reference

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data"
DEVELOPMENT_CASES = ["Brats18_2013_3_1", "Brats18_CBICA_ABM_1", "Brats18_TCIA10_628_1"] + [
    f"Brats18_CBICA_{name}_1" for name in ("AOZ", "APR", "APZ", "AQO", "AQP", "AQQ", "ASV", "ASW", "ASY", "ATD")]


@pytest.fixture(scope="module")
def realism():
    spec = importlib.util.spec_from_file_location("realism", ROOT / "benchmarks" / "realism.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_split_is_what_the_rule_makes(realism):
    assert realism.split_real_cases(DEVELOPMENT_CASES) == (realism.TUNING_CASES, realism.LOCKED_CASES)
    assert realism.split_real_cases(sorted(DEVELOPMENT_CASES, reverse=True)) == realism.split_real_cases(
        DEVELOPMENT_CASES)  # the order the cases are listed in does not matter
    tuning, locked = set(realism.TUNING_CASES), set(realism.LOCKED_CASES)
    assert len(tuning) == 8 and len(locked) == 5 and not tuning & locked
    assert tuning | locked == set(DEVELOPMENT_CASES)
    for cases in (tuning, locked):  # both sets mix institutions
        assert {realism.institution_group(case) for case in cases} == {"CBICA", "other"}
    assert realism.real_split() == {"tuning": realism.TUNING_CASES, "locked": realism.LOCKED_CASES}
    assert doctest.testmod(realism).failed == 0


def test_references_train_on_tuning_cases_only(realism):
    reference = realism.REFERENCE_SPLIT
    assert set(reference["train"]) | set(reference["val"]) == set(realism.TUNING_CASES)
    assert not set(reference["train"]) & set(reference["val"])
    folds = realism.tuning_folds()
    assert sorted(case for fold in folds for case in fold["test"]) == sorted(realism.TUNING_CASES)
    for fold in folds:
        used = set(fold["train"]) | set(fold["val"])
        assert used | set(fold["test"]) == set(realism.TUNING_CASES) and not used & set(fold["test"])


def test_real_statistics_come_from_the_tuning_cases(realism):
    assert reference.REAL_CASE_IDS == realism.TUNING_CASES
    assert reference.REAL_CASES == len(realism.TUNING_CASES)


@pytest.mark.real_data
def test_the_split_names_the_real_cases():
    folders = [REAL_DATA / "brats_sample", REAL_DATA / "brats_dev"]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip("the 13 real development cases (../shared/data/brats_sample, brats_dev) are absent")
    found = sorted(path.name for folder in folders for path in folder.iterdir() if path.is_dir())
    assert found == sorted(DEVELOPMENT_CASES)


def test_reuse_takes_the_model_an_identical_run_left(realism, tmp_path, monkeypatch):
    """``--reuse`` scores the kept model of an identical earlier run and trains again when anything differs."""
    from braintools import paths
    from braintools.models import checkpoints
    from braintools.profiles import get_profile
    from braintools.training import recipes

    trained = []

    def fake_train(recipe, cache_dir, train_ids, val_ids, run_dir, progress):
        trained.append(recipe.epochs)
        paths.checkpoint_file(run_dir, "unet3d", "best").write_bytes(b"weights")

    monkeypatch.setattr(recipes, "train_unet3d", fake_train)
    monkeypatch.setattr(checkpoints, "load_model", lambda path: Path(path).read_bytes())
    recipe = recipes.UNet3DRecipe.from_profile(get_profile("ci"))
    run = tmp_path / "run"
    run.mkdir()
    assert realism.trained_model(recipe, tmp_path, ["a"], ["b"], run, True, {"generator": "g"})[0] == b"weights"
    realism.trained_model(recipe, tmp_path, ["a"], ["b"], run, True, {"generator": "g"})
    assert trained == [recipe.epochs]  # the second, identical run reused the model
    realism.trained_model(recipe, tmp_path, ["a"], ["b"], run, False, {"generator": "g"})
    realism.trained_model(dataclasses.replace(recipe, epochs=7), tmp_path, ["a"], ["b"], run, True, {"generator": "g"})
    assert trained == [recipe.epochs, recipe.epochs, 7]  # without --reuse, or with another recipe: trained again
