"""Tests of the synthetic BraTS generator (ci grid, except one full-size case)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from braintools.data.io import Case
from braintools.errors import DataError
from braintools.profiles import Profile
from braintools.synthetic.anatomy import BRATS_AFFINE, grid_affine
from braintools.synthetic.dataset import COMPLETE_MARKER, ensure_synthetic_dataset, generate_dataset
from braintools.synthetic.generator import make_case
from braintools.synthetic.layout import (
    H5_CHANNEL_ORDER,
    H5_DATA_SUBDIR,
    H5_DATASET_DIR,
    METADATA_COLUMNS,
    NAME_MAPPING_COLUMNS,
    NIFTI_DATASET_DIR,
    TRAINING_SUBDIR,
    VALIDATION_MAPPING_COLUMNS,
    VALIDATION_SUBDIR,
    VALIDATION_SURVIVAL_COLUMNS,
)

CI_GRID = (64, 64, 40)
SEED = 2020
N_CASES, N_VALIDATION = 3, 1


def digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV file."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def ci_root(tmp_path_factory) -> Path:
    """A small synthetic dataset on the ci grid, generated in this process."""
    root = tmp_path_factory.mktemp("synthetic") / "ci"
    return generate_dataset(root, N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False)


@pytest.fixture(scope="module")
def full_case() -> Case:
    """One case at the real BraTS size."""
    return make_case(SEED, 1)


def brain_mask(case: Case) -> np.ndarray:
    return case.channel("t1") > 0


def test_make_case_is_deterministic_and_seed_dependent():
    first, again, other = make_case(SEED, 2, CI_GRID), make_case(SEED, 2, CI_GRID), make_case(SEED + 1, 2, CI_GRID)
    for modality in H5_CHANNEL_ORDER:
        np.testing.assert_array_equal(first.channel(modality), again.channel(modality))
        assert not np.array_equal(first.channel(modality), other.channel(modality))
    np.testing.assert_array_equal(first.seg, again.seg)


def test_ci_case_dtypes_labels_and_background():
    for index in (1, 2, 3):
        case = make_case(SEED, index, CI_GRID)
        brain = brain_mask(case)
        assert case.seg.dtype == np.uint8 and case.seg.shape == CI_GRID
        assert set(np.unique(case.seg).tolist()) <= {0, 1, 2, 4}
        assert np.any(case.seg == 1) and np.any(case.seg == 2)
        for image in case.image:
            assert image.dtype == np.int16 and image.shape == CI_GRID
            assert np.array_equal(image > 0, brain)  # exactly 0 outside the brain, positive inside
        assert np.all(brain[case.seg > 0])  # the tumour stays inside the brain
        assert 0.05 < brain.mean() < 0.4
        np.testing.assert_allclose(case.affine, grid_affine(CI_GRID))


def test_full_size_geometry(full_case):
    assert full_case.seg.shape == (240, 240, 155)
    np.testing.assert_array_equal(full_case.affine, BRATS_AFFINE)
    assert nib.aff2axcodes(full_case.affine) == ("L", "P", "S")
    brain = np.argwhere(brain_mask(full_case))
    low, high, centre = brain.min(0), brain.max(0), brain.mean(0)
    assert abs(centre[0] - 119.5) < 12 and abs(centre[1] - 135) < 15  # centred like a real BraTS brain
    assert 120 < high[2] < 154 and low[0] > 20 and high[0] < 220 and low[1] > 15 and high[1] < 230
    anterior, posterior = brain[brain[:, 1] < centre[1]], brain[brain[:, 1] >= centre[1]]
    assert anterior[:, 2].min() > posterior[:, 2].min()  # cerebellum (low slices) at the back: j grows posterior
    assert 1.0e6 < len(brain) < 2.0e6


def test_coarse_affine_matches_io_convention():
    io = pytest.importorskip("braintools.data.io")
    if not hasattr(io, "brats_affine"):
        pytest.skip("braintools.data.io.brats_affine not available")
    np.testing.assert_allclose(grid_affine(CI_GRID), io.brats_affine(CI_GRID, (3.75, 3.75, 3.875)))
    np.testing.assert_array_equal(grid_affine((240, 240, 155)), io.brats_affine())


def relative_medians(case: Case) -> dict[str, dict[str, float]]:
    """Median of each region per modality relative to the median of normal brain."""
    normal = brain_mask(case) & (case.seg == 0)
    reference = {m: np.median(image[normal]) for m, image in zip(case.modalities, case.image)}
    t2 = case.channel("t2")
    regions = {"NCR": case.seg == 1, "ED": case.seg == 2, "ET": case.seg == 4}
    regions["CSF"] = normal & (t2 >= np.quantile(t2[normal], 0.98))  # brightest 2 % of normal brain on T2
    return {
        name: {m: np.median(image[mask]) / reference[m] for m, image in zip(case.modalities, case.image)}
        for name, mask in regions.items()
        if mask.sum() >= 5
    }


def check_signatures(case: Case) -> bool:
    """Assert the signatures FORMATS.md checked on 32/32 real cases; return whether the core is dark on T1 and
    T1ce and bright on T2 (true in 11 of the 13 real development cases, so not of every case; the generator's
    randomised tissue contrasts move the normal-brain median it is compared with, so fewer synthetic cores qualify)."""
    r = relative_medians(case)
    if "ET" in r:
        assert r["ET"]["t1ce"] > r["NCR"]["t1ce"]
        assert r["ET"]["t1ce"] > r["ET"]["t1"]  # enhancement
    assert r["ED"]["flair"] > 1 and r["ED"]["t2"] > 1
    assert r["CSF"]["t2"] > 1 and r["CSF"]["flair"] < 1 and r["CSF"]["t1"] < 1
    return bool(r["NCR"]["t1"] < 1 and r["NCR"]["t1ce"] < 1 and r["NCR"]["t2"] > 1)


def test_intensity_signatures(full_case):
    typical_core = [check_signatures(full_case)]
    typical_core += [check_signatures(make_case(SEED, index, CI_GRID)) for index in range(1, 13)]
    assert sum(typical_core) >= 9  # most cores (9 of 13) are dark on T1 / T1ce and bright on T2, as in real cases


def test_grades_follow_enhancing_tumour():
    cases = [make_case(SEED, index, CI_GRID) for index in range(1, 16)]
    grades = {case.grade for case in cases}
    assert grades == {"HGG", "LGG"}  # about 15 % low-grade-like cases
    for case in cases:
        assert case.grade == ("HGG" if np.any(case.seg == 4) else "LGG")
    assert make_case(SEED, 1, CI_GRID, tumour=False).seg is None


def test_intensity_scale_varies_between_cases():
    maxima = [int(make_case(SEED, index, CI_GRID).channel("t2").max()) for index in range(1, 7)]
    assert max(maxima) > 1.5 * min(maxima)


def test_layouts_names_and_columns(ci_root):
    training = ci_root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    validation = ci_root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    h5_dir = ci_root / H5_DATASET_DIR / H5_DATA_SUBDIR
    for index in range(1, N_CASES + 1):
        case_id = f"BraTS20_Training_{index:03d}"
        names = sorted(path.name for path in (training / case_id).iterdir())
        assert names == sorted(f"{case_id}_{kind}.nii" for kind in ("flair", "t1", "t1ce", "t2", "seg"))
        assert nib.load(training / case_id / f"{case_id}_t1.nii").get_data_dtype() == np.int16
        assert nib.load(training / case_id / f"{case_id}_seg.nii").get_data_dtype() == np.uint8
    names = sorted(path.name for path in (validation / "BraTS20_Validation_001").iterdir())
    assert names == [f"BraTS20_Validation_001_{kind}.nii" for kind in ("flair", "t1", "t1ce", "t2")]
    columns, mapping = read_csv(training / "name_mapping.csv")
    assert columns == list(NAME_MAPPING_COLUMNS) and len(mapping) == N_CASES
    columns, survival = read_csv(training / "survival_info.csv")
    assert columns == ["Brats20ID", "Age", "Survival_days", "Extent_of_Resection"]
    assert {row["Brats20ID"] for row in survival} <= {
        r["BraTS_2020_subject_ID"] for r in mapping if r["Grade"] == "HGG"
    }
    assert read_csv(validation / "name_mapping_validation_data.csv")[0] == list(VALIDATION_MAPPING_COLUMNS)
    assert read_csv(validation / "survival_evaluation.csv")[0] == list(VALIDATION_SURVIVAL_COLUMNS)
    assert len(list(h5_dir.glob("volume_*_slice_*.h5"))) == N_CASES * CI_GRID[2]
    assert sorted(path.name for path in h5_dir.iterdir() if path.suffix != ".h5") == ["meta_data.csv"]
    assert read_csv(h5_dir / "meta_data.csv")[0] == ["slice_path", "target", "volume", "slice"]
    assert json.loads((ci_root / COMPLETE_MARKER).read_text())["parameters"]["seed"] == SEED


def test_h5_slices_reassemble_to_nifti(ci_root):
    training = ci_root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    h5_dir = ci_root / H5_DATASET_DIR / H5_DATA_SUBDIR
    columns, mapping = read_csv(training / "name_mapping.csv")
    for volume in range(1, N_CASES + 1):
        case_id = f"BraTS20_Training_{volume:03d}"
        nifti = {m: np.asarray(nib.load(training / case_id / f"{case_id}_{m}.nii").dataobj) for m in H5_CHANNEL_ORDER}
        seg = np.asarray(nib.load(training / case_id / f"{case_id}_seg.nii").dataobj)
        images, masks = [], []
        for s in range(CI_GRID[2]):
            with h5py.File(h5_dir / f"volume_{volume}_slice_{s}.h5", "r") as handle:
                assert sorted(handle.keys()) == ["image", "mask"]
                assert handle["image"].dtype == np.float64 and handle["image"].shape == (64, 64, 4)
                assert handle["mask"].dtype == np.uint8 and handle["mask"].shape == (64, 64, 3)
                images.append(handle["image"][()])
                masks.append(handle["mask"][()])
        image, mask = np.stack(images, axis=2), np.stack(masks, axis=2)
        for channel, modality in enumerate(H5_CHANNEL_ORDER):
            np.testing.assert_array_equal(image[..., channel], nifti[modality].astype(np.float64))
        for channel, value in enumerate((1, 2, 4)):
            np.testing.assert_array_equal(mask[..., channel], (seg == value).astype(np.uint8))
        assert mapping[volume - 1]["Grade"] == ("HGG" if np.any(seg == 4) else "LGG")


def test_training_metadata_csv(ci_root):
    columns, rows = read_csv(ci_root / H5_DATASET_DIR / "BraTS20 Training Metadata.csv")
    assert columns == list(METADATA_COLUMNS)
    assert len(rows) == N_CASES * CI_GRID[2]
    keys = [(int(row["volume"]), int(row["slice"])) for row in rows]
    assert keys != sorted(keys) and sorted(keys) == [(v, s) for v in range(1, N_CASES + 1) for s in range(CI_GRID[2])]
    h5_dir = ci_root / H5_DATASET_DIR / H5_DATA_SUBDIR
    for row in rows[:: max(1, len(rows) // 25)]:
        assert row["slice_path"] == f"/content/data/volume_{row['volume']}_slice_{row['slice']}.h5"
        with h5py.File(h5_dir / Path(row["slice_path"]).name, "r") as handle:
            image, mask = handle["image"][()], handle["mask"][()]
        counts = mask.reshape(-1, 3).sum(axis=0)
        assert [int(row[f"label{k}_pxl_cnt"]) for k in range(3)] == counts.tolist()
        assert int(row["target"]) == int(counts.sum() > 0)
        assert float(row["background_ratio"]) == pytest.approx(np.all(image == 0, axis=-1).mean())


def test_dataset_bytes_are_reproducible_and_resumable(ci_root, tmp_path):
    expected = digest(ci_root)
    again = generate_dataset(tmp_path / "again", N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False)
    assert digest(again) == expected
    # Simulate an interruption: one case folder, some of its slices and the completion marker are gone.
    training = again / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    shutil.rmtree(training / "BraTS20_Training_002")
    for path in list((again / H5_DATASET_DIR / H5_DATA_SUBDIR).glob("volume_2_slice_1*.h5")):
        path.unlink()
    (again / COMPLETE_MARKER).unlink()
    (again / H5_DATASET_DIR / "BraTS20 Training Metadata.csv").unlink()
    generate_dataset(again, N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False)
    assert digest(again) == expected


def test_worker_processes_write_the_same_bytes(ci_root, tmp_path):
    root = tmp_path / "pool"
    generate_dataset(root, N_CASES, N_VALIDATION, CI_GRID, SEED, workers=2, progress=False)
    assert digest(root) == digest(ci_root)


def test_other_parameters_need_overwrite(ci_root, tmp_path):
    root = tmp_path / "small"
    generate_dataset(root, 1, 1, CI_GRID, SEED, workers=1, progress=False)
    with pytest.raises(DataError, match="other parameters"):
        generate_dataset(root, 1, 1, CI_GRID, SEED + 1, workers=1, progress=False)
    generate_dataset(root, 1, 1, CI_GRID, SEED + 1, workers=1, progress=False, overwrite=True)
    assert json.loads((root / COMPLETE_MARKER).read_text())["parameters"]["seed"] == SEED + 1


def test_ensure_synthetic_dataset(tmp_path):
    profile = Profile(name="tiny", source="synthetic", n_cases=1, n_validation_cases=1, grid_shape=CI_GRID)
    root = ensure_synthetic_dataset(profile, root=tmp_path / "tiny")
    assert (root / COMPLETE_MARKER).is_file()
    assert ensure_synthetic_dataset(profile, root=tmp_path / "tiny") == root


def test_nifti_only_dataset_has_the_same_nifti_bytes(ci_root, tmp_path):
    root = generate_dataset(tmp_path / "nifti", N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False,
                            h5=False)
    assert not (root / H5_DATASET_DIR).exists()
    nifti = {path: value for path, value in digest(ci_root).items() if path.startswith(NIFTI_DATASET_DIR)}
    assert {p: v for p, v in digest(root).items() if p.startswith(NIFTI_DATASET_DIR)} == nifti
    marker = json.loads((root / COMPLETE_MARKER).read_text())
    assert marker["layouts"] == [NIFTI_DATASET_DIR] and marker["parameters"]["layouts"] == [NIFTI_DATASET_DIR]
    assert generate_dataset(root, N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False, h5=False) == root
    with pytest.raises(DataError, match="other parameters"):  # never taken for a dataset with both layouts
        generate_dataset(root, N_CASES, N_VALIDATION, CI_GRID, SEED, workers=1, progress=False)
