"""Lay the 13 real BraTS cases of ../shared out exactly as Kaggle mounts the two BraTS 2020 datasets.

    <mount>/brats20-dataset-training-validation/BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/
        BraTS20_Training_NNN/BraTS20_Training_NNN_{flair,t1,t1ce,t2,seg}.nii    uncompressed, the real headers
        BraTS20_Training_355/W39_1998.09.19_Segm.nii                             the known misnamed segmentation
        name_mapping.csv, survival_info.csv
    <mount>/brats20-dataset-training-validation/BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData/
        BraTS20_Validation_001/...   one case, images only (hard links to the files of a training case)
        name_mapping_validation_data.csv, survival_evaluation.csv
    <mount>/brats2020-training-data/BraTS2020_training_data/content/data/volume_<v>_slice_<s>.h5, meta_data.csv
    <mount>/brats2020-training-data/BraTS20 Training Metadata.csv

The NIfTI files are the real ``.nii.gz`` files decompressed byte for byte (real headers, one int16 segmentation).
Each case gets a BraTS20 training number (``CASES``: sparse, so that a case's position in the list is not its number;
the low-grade case gets a number in the low-grade range 260-335 of BraTS 2020). ``name_mapping.csv`` holds each
case's real BraTS 2018 id; the 2019 ids are derived from it, the survival table is made up
(``survival_tables``).

HDF5 slices are written with the writer of the synthetic data (``write_h5_volume``) from the NIfTI arrays,
slice ``s`` = ``[:, :, s]``, channels in ``H5_CHANNEL_ORDER`` (FLAIR, T1, T1ce, T2: not the package default), for
the ``H5_VOLUMES`` only: 3 volumes x 155 slices of float64 are about 0.9 GB, all 13 would be 3.7 GB. Three are
what the tests and notebooks 01 and 03 need (the channel-order vote reads three; 03 converts ``n_cases`` = 3 under
the ``kaggle-cpu`` profile), and they include the low-grade case.

Laying out takes about half a minute and 2 GB of disk; a folder that holds a complete layout (its marker
``kaggle_layout.json``) is reused. Usage: ``python tests/kaggle_layout.py <mount>``, then
``BRAINTOOLS_KAGGLE_INPUT=<mount>`` and ``PROFILE = "kaggle-cpu"`` in a notebook's parameters (or
``--profile kaggle-cpu`` on the command line).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from braintools.data import io
from braintools.synthetic.layout import (
    H5_DATA_SUBDIR,
    H5_DATASET_DIR,
    NAME_MAPPING_COLUMNS,
    NIFTI_DATASET_DIR,
    NIFTI_MODALITIES,
    SURVIVAL_COLUMNS,
    TRAINING_CASE,
    TRAINING_SUBDIR,
    VALIDATION_CASE,
    VALIDATION_MAPPING_COLUMNS,
    VALIDATION_SUBDIR,
    VALIDATION_SURVIVAL_COLUMNS,
    _survival_tables,
    _write_h5_tables,
    write_csv,
    write_h5_volume,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCE_FOLDERS = ("brats_sample", "brats_dev")
CASES = {  # real BraTS 2018 case -> BraTS20 training number given to it here
    "Brats18_CBICA_AOZ_1": 3, "Brats18_2013_3_1": 12, "Brats18_CBICA_APR_1": 27, "Brats18_CBICA_ABM_1": 46,
    "Brats18_CBICA_APZ_1": 88, "Brats18_CBICA_AQO_1": 129, "Brats18_CBICA_AQP_1": 174, "Brats18_CBICA_AQQ_1": 203,
    "Brats18_CBICA_ASV_1": 238, "Brats18_TCIA10_628_1": 301, "Brats18_CBICA_ASW_1": 340, "Brats18_CBICA_ASY_1": 355,
    "Brats18_CBICA_ATD_1": 369,
}  # fmt: skip
LOW_GRADE = {"Brats18_TCIA10_628_1"}
MISNAMED_SEG = (355, "W39_1998.09.19_Segm.nii")  # BraTS 2020 case 355's segmentation file name
H5_VOLUMES = (12, 46, 301)
H5_CHANNEL_ORDER = ("flair", "t1", "t1ce", "t2")
VALIDATION_FROM = 3  # the training case whose images BraTS20_Validation_001 links to
SEED = 2020
MARKER = "kaggle_layout.json"
LAYOUT_VERSION = 1


@dataclass(frozen=True)
class KaggleLayout:
    """A laid-out Kaggle mount: where it is and what it holds."""

    mount: Path  # the folder to give as BRAINTOOLS_KAGGLE_INPUT
    case_ids: dict[str, str]  # BraTS20 training id -> real BraTS 2018 id
    h5_volumes: tuple[int, ...]
    h5_channel_order: tuple[str, ...]
    misnamed_case: str  # the case whose segmentation is W39_1998.09.19_Segm.nii

    @property
    def nifti_train(self) -> Path:
        """The training case folders (``MICCAI_BraTS2020_TrainingData``)."""
        return self.mount / NIFTI_DATASET_DIR / TRAINING_SUBDIR

    @property
    def h5_dir(self) -> Path:
        """The HDF5 slice folder (``content/data``)."""
        return self.mount / H5_DATASET_DIR / H5_DATA_SUBDIR


def real_data_present() -> bool:
    """True when ../shared holds the 13 real cases."""
    return all((SHARED_DATA / folder).is_dir() for folder in SOURCE_FOLDERS)


def _sources() -> dict[str, io.CaseFiles]:
    found = {case.case_id: case for folder in SOURCE_FOLDERS for case in io.find_cases(SHARED_DATA / folder)}
    missing = sorted(set(CASES) - set(found))
    if missing:
        raise FileNotFoundError(f"{SHARED_DATA}: real cases {missing} not found")
    return {case_id: found[case_id] for case_id in CASES}


def _decompress(source: Path, target: Path) -> None:
    """Write the uncompressed bytes of a ``.nii.gz`` (the ``.nii`` Kaggle ships)."""
    with gzip.open(source, "rb") as compressed, open(target, "wb") as plain:
        shutil.copyfileobj(compressed, plain, 16 * 2**20)


def _training_case(case: io.CaseFiles, number: int, training_dir: Path) -> Path:
    case_id = TRAINING_CASE.format(number)
    folder = training_dir / case_id
    folder.mkdir(parents=True)
    for modality, path in case.images.items():
        _decompress(path, folder / f"{case_id}_{modality}.nii")
    seg_name = MISNAMED_SEG[1] if number == MISNAMED_SEG[0] else f"{case_id}_seg.nii"
    _decompress(case.seg, folder / seg_name)
    return folder


def _validation_case(training_case: Path, validation_dir: Path) -> None:
    """One validation case without segmentation: hard links to a training case's images (copies if links fail)."""
    case_id = VALIDATION_CASE.format(1)
    folder = validation_dir / case_id
    folder.mkdir(parents=True)
    for modality in NIFTI_MODALITIES:
        source = training_case / f"{training_case.name}_{modality}.nii"
        try:
            os.link(source, folder / f"{case_id}_{modality}.nii")
        except OSError:
            shutil.copyfile(source, folder / f"{case_id}_{modality}.nii")


def _h5_volume(case: io.CaseFiles, volume: int, h5_data_dir: Path) -> list[dict]:
    images = {m: np.asanyarray(nib.load(path).dataobj) for m, path in case.images.items()}
    seg = np.asanyarray(nib.load(case.seg).dataobj)
    return write_h5_volume(images, seg, h5_data_dir, volume, channel_order=H5_CHANNEL_ORDER)


def _tables(training_dir: Path, validation_dir: Path) -> None:
    grades = {number: "LGG" if case in LOW_GRADE else "HGG" for case, number in CASES.items()}
    mapping = [(grades[number], "NA", case, "NA", case.replace("Brats18_", "BraTS19_"),
                TRAINING_CASE.format(number)) for case, number in sorted(CASES.items(), key=lambda c: c[1])]
    survival, validation_survival = _survival_tables(SEED, grades, 1)
    write_csv(training_dir / "name_mapping.csv", NAME_MAPPING_COLUMNS, mapping)
    write_csv(training_dir / "survival_info.csv", SURVIVAL_COLUMNS, survival)
    write_csv(validation_dir / "name_mapping_validation_data.csv", VALIDATION_MAPPING_COLUMNS,
                        [("NA", "NA", "NA", "NA", VALIDATION_CASE.format(1))])
    write_csv(validation_dir / "survival_evaluation.csv", VALIDATION_SURVIVAL_COLUMNS,
                        validation_survival)


def _describe(mount: Path) -> KaggleLayout:
    return KaggleLayout(mount, {TRAINING_CASE.format(n): case for case, n in CASES.items()}, H5_VOLUMES,
                        H5_CHANNEL_ORDER, TRAINING_CASE.format(MISNAMED_SEG[0]))


def lay_out(mount: str | os.PathLike) -> KaggleLayout:
    """Lay the real cases out under ``mount`` as the two Kaggle datasets (reused when already complete).

    Refuses a folder that holds anything else than an earlier layout (it never deletes data it did not write).
    """
    mount = Path(mount)
    parameters = {"version": LAYOUT_VERSION, "cases": CASES, "h5_volumes": list(H5_VOLUMES),
                  "h5_channel_order": list(H5_CHANNEL_ORDER)}
    marker = mount / MARKER
    if marker.is_file() and json.loads(marker.read_text())["parameters"] == parameters:
        return _describe(mount)
    datasets = (NIFTI_DATASET_DIR, H5_DATASET_DIR)
    others = sorted(p.name for p in mount.iterdir() if p.name not in (*datasets, MARKER)) if mount.is_dir() else []
    if others:
        raise FileExistsError(f"{mount}: holds {others[:5]}; lay the Kaggle layout out in an empty folder")
    marker.unlink(missing_ok=True)
    for name in datasets:
        shutil.rmtree(mount / name, ignore_errors=True)
    sources = _sources()
    training_dir = mount / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    validation_dir = mount / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    h5_root = mount / H5_DATASET_DIR
    folders = {number: _training_case(sources[case], number, training_dir) for case, number in CASES.items()}
    _validation_case(folders[VALIDATION_FROM], validation_dir)
    by_number = {number: sources[case] for case, number in CASES.items()}
    h5_data_dir = h5_root / H5_DATA_SUBDIR
    rows = [row for volume in H5_VOLUMES for row in _h5_volume(by_number[volume], volume, h5_data_dir)]
    _write_h5_tables(h5_root, rows, SEED)
    _tables(training_dir, validation_dir)
    marker.write_text(json.dumps({"parameters": parameters}, indent=1) + "\n")
    return _describe(mount)


def cache_fingerprint(cache_dir: str | os.PathLike) -> str:
    """One line naming every cached case and when its files were written; exits if a case is stored uncropped.

    ``run_real_notebooks.sh`` compares the line after notebook 03 and after 04-08: equal means nothing was converted
    again (a rewritten file changes its modification time)."""
    cache_dir = Path(cache_dir)
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    uncropped = sorted(case_id for case_id, entry in manifest["cases"].items() if not entry.get("cropped"))
    if uncropped or not manifest["cases"]:
        sys.exit(f"{cache_dir}: {len(uncropped)} of {len(manifest['cases'])} cached cases are not cropped: "
                 f"{uncropped[:5]}")
    files = sorted(cache_dir.glob("*.npy"))
    stamps = hashlib.sha256(",".join(f"{path.name}:{path.stat().st_mtime_ns}" for path in files).encode())
    return f"{len(manifest['cases'])} cases cropped, {len(files)} files, written {stamps.hexdigest()[:12]}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--cache-fingerprint":
        print(cache_fingerprint(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/kaggle_layout.py <mount folder> | --cache-fingerprint <cache folder>")
    if not real_data_present():
        sys.exit(f"{SHARED_DATA}: the real cases are absent; nothing to lay out")
    print(f"Kaggle layout ready: BRAINTOOLS_KAGGLE_INPUT={lay_out(sys.argv[1]).mount}")
