"""Write synthetic cases exactly as the Kaggle BraTS 2020 datasets store real ones (FORMATS.md).

Layouts written under a dataset root::

    brats20-dataset-training-validation/BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/...
    brats20-dataset-training-validation/BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData/...
    brats2020-training-data/BraTS2020_training_data/content/data/volume_<v>_slice_<s>.h5, meta_data.csv
    brats2020-training-data/BraTS20 Training Metadata.csv

HDF5 slice ``s`` of volume ``v`` is exactly ``nifti_array[:, :, s]`` of training case ``v`` (no flip, no transpose),
channels ``H5_CHANNEL_ORDER``, float64 copies of the int16 values; NIfTI files are uncompressed with the BraTS affine
and header codes; the CSVs have the real files' columns.

The newer releases (``data.releases``) ship NIfTI cases only, compressed, in their own names and labels::

    BraTS2021_Training_Data/BraTS2021_00001/BraTS2021_00001_{flair,t1,t1ce,t2,seg}.nii.gz        labels 0/1/2/4, uint8
    ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData/BraTS-GLI-00001-000/
        BraTS-GLI-00001-000-{t2f,t1n,t1c,t2w,seg}.nii.gz           labels 0/1/2/3 (ET = 3), float32 as the real samples

Case ``i`` is the same synthetic patient in every layout (``training_case_id``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from braintools._private.atomic import atomic_path
from braintools.data import releases
from braintools.data.io import Case
from braintools.data.labels import convert_labels, labels_to_h5_mask
from braintools.data.releases import Release
from braintools.synthetic.anatomy import MODALITIES

NIFTI_DATASET_DIR = "brats20-dataset-training-validation"
H5_DATASET_DIR = "brats2020-training-data"
TRAINING_SUBDIR = Path("BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData")
VALIDATION_SUBDIR = Path("BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData")
H5_DATA_SUBDIR = Path("BraTS2020_training_data/content/data")
H5_METADATA_CSV = "BraTS20 Training Metadata.csv"  # at the root of H5_DATASET_DIR
H5_META_DATA_CSV = "meta_data.csv"  # inside H5_DATA_SUBDIR
H5_CHANNEL_ORDER = ("t1", "t1ce", "t2", "flair")
H5_SLICE_PREFIX = "/content/data"  # the foreign prefix of slice_path in the metadata CSVs
NIFTI_MODALITIES = ("flair", "t1", "t1ce", "t2")
TRAINING_CASE = "BraTS20_Training_{:03d}"
VALIDATION_CASE = "BraTS20_Validation_{:03d}"
VALIDATION_INDEX_OFFSET = 100_000  # make_case index of validation case i is VALIDATION_INDEX_OFFSET + i
RELEASE_TRAINING_DIR = {"2021": "BraTS2021_Training_Data", "2023": "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData"}
RELEASE_CASE = {"2020": TRAINING_CASE, "2021": "BraTS2021_{:05d}", "2023": "BraTS-GLI-{:05d}-000"}
NAME_MAPPING_COLUMNS = ("Grade", "BraTS_2017_subject_ID", "BraTS_2018_subject_ID", "TCGA_TCIA_subject_ID",
                        "BraTS_2019_subject_ID", "BraTS_2020_subject_ID")  # fmt: skip
SURVIVAL_COLUMNS = ("Brats20ID", "Age", "Survival_days", "Extent_of_Resection")
VALIDATION_MAPPING_COLUMNS = NAME_MAPPING_COLUMNS[1:]
VALIDATION_SURVIVAL_COLUMNS = ("BraTS20ID", "Age", "ResectionStatus")
META_DATA_COLUMNS = ("slice_path", "target", "volume", "slice")
METADATA_COLUMNS = (*META_DATA_COLUMNS, "label0_pxl_cnt", "label1_pxl_cnt", "label2_pxl_cnt", "background_ratio")


def _nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """Wrap an array like a real BraTS file: qform and sform code 1 (scanner), units mm."""
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return image


def training_case_id(index: int, release: str | Release = "2020") -> str:
    """The id of synthetic training case ``index`` in a release's naming, e.g. ``BraTS-GLI-00003-000`` for 2023.

    Example:
        >>> training_case_id(3), training_case_id(3, "2021"), training_case_id(3, "2023")
        ('BraTS20_Training_003', 'BraTS2021_00003', 'BraTS-GLI-00003-000')
    """
    return RELEASE_CASE[releases.get_release(release).key].format(index)


def write_nifti_case(case: Case, folder: str | Path, case_id: str, release: str | Release = "2020") -> Path:
    """Write a case's files into ``folder`` in a release's names, labels and extension; return the folder.

    BraTS 2020 (default): ``<case_id>_{flair,t1,t1ce,t2[,seg]}.nii`` uncompressed, uint8 labels 0/1/2/4; BraTS 2021:
    the same names, ``.nii.gz``; BraTS 2023: ``<case_id>-{t2f,t1n,t1c,t2w[,seg]}.nii.gz`` with ET written as 3 and
    the segmentation stored as float32 (as in the real BraTS 2023 samples). ``case.seg`` has the course's labels.
    """
    release = releases.get_release(release)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for modality in NIFTI_MODALITIES:
        nib.save(_nifti(case.channel(modality), case.affine), folder / release.file_name(case_id, modality))
    if case.seg is not None:
        seg = convert_labels(case.seg, releases.INTERNAL_LABELS, release.labels)
        seg = seg.astype(np.float32) if release is releases.BRATS_2023 else seg
        nib.save(_nifti(seg, case.affine), folder / release.file_name(case_id, "seg"))
    return folder


def slice_rows(images: dict[str, np.ndarray], seg: np.ndarray | None, volume: int) -> list[dict]:
    """Rows of the HDF5 metadata CSVs (METADATA_COLUMNS) for every axial slice of one volume."""
    shape = images[MODALITIES[0]].shape
    seg = np.zeros(shape, np.uint8) if seg is None else seg
    counts = np.stack([(seg == value).sum(axis=(0, 1)) for value in (1, 2, 4)])
    empty = np.ones(shape, bool)
    for modality in MODALITIES:
        empty &= images[modality] == 0
    background = empty.mean(axis=(0, 1))
    return [
        dict(zip(METADATA_COLUMNS, (f"{H5_SLICE_PREFIX}/volume_{volume}_slice_{s}.h5", int(counts[:, s].sum() > 0),
                                    volume, s, *(int(c) for c in counts[:, s]), float(background[s]))))
        for s in range(shape[2])
    ]  # fmt: skip


def write_h5_volume(
    images: dict[str, np.ndarray],
    seg: np.ndarray | None,
    h5_data_dir: str | Path,
    volume: int,
    channel_order: tuple[str, ...] = H5_CHANNEL_ORDER,
) -> list[dict]:
    """Write one volume as Kaggle HDF5 slices ``volume_<volume>_slice_<s>.h5``; return its metadata rows.

    Args:
        images: (X, Y, Z) volumes keyed t1, t1ce, t2, flair.
        seg: (X, Y, Z) BraTS labels, or None (empty masks).
        channel_order: modality of each channel of the stored ``image`` (float64, channels last).
    """
    h5_data_dir = Path(h5_data_dir)
    h5_data_dir.mkdir(parents=True, exist_ok=True)
    seg_or_empty = np.zeros(images[MODALITIES[0]].shape, np.uint8) if seg is None else seg
    stack = np.stack([images[m] for m in channel_order], axis=-1)
    for s in range(stack.shape[2]):
        with atomic_path(h5_data_dir / f"volume_{volume}_slice_{s}.h5") as partial:
            with h5py.File(partial, "w") as handle:
                handle.create_dataset("image", data=stack[:, :, s].astype(np.float64), track_times=False)
                handle.create_dataset("mask", data=labels_to_h5_mask(seg_or_empty[:, :, s]), track_times=False)
    return slice_rows(images, seg, volume)


def write_h5_case(case: Case, h5_data_dir: str | Path, volume: int) -> list[dict]:
    """Write a synthetic case as HDF5 slices in ``H5_CHANNEL_ORDER`` (``write_h5_volume``); return the rows."""
    return write_h5_volume({m: case.channel(m) for m in MODALITIES}, case.seg, h5_data_dir, volume)


def _write_h5_tables(h5_root: str | Path, rows: list[dict], seed: int) -> None:
    """Write the HDF5 dataset's two metadata CSVs: ``content/data/meta_data.csv`` and the shuffled root CSV.
    Introduced in notebook 01."""
    h5_root = Path(h5_root)
    (h5_root / H5_DATA_SUBDIR).mkdir(parents=True, exist_ok=True)
    write_csv(h5_root / H5_DATA_SUBDIR / H5_META_DATA_CSV, META_DATA_COLUMNS, rows)
    shuffled = [rows[i] for i in np.random.default_rng([seed, 7]).permutation(len(rows))]
    write_csv(h5_root / H5_METADATA_CSV, METADATA_COLUMNS, shuffled)


def write_csv(path: str | Path, columns: tuple, rows: list) -> None:
    """Write a CSV with a header (rows are dicts or sequences), like the Kaggle datasets' tables."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[row[c] for c in columns] if isinstance(row, dict) else row for row in rows])


def _survival_tables(seed: int, grades: dict, n_validation_cases: int) -> tuple[list, list]:
    """Plausible survival_info.csv rows (high-grade cases only, like the real file) and validation rows (notebook 01).

    ``grades`` maps the number of each BraTS20 training case to its grade, ``"HGG"`` or ``"LGG"``.
    """
    rng = np.random.default_rng([seed, 11])
    training = []
    for index, grade in sorted(grades.items()):
        age, days = round(float(rng.uniform(30, 85)), 3), int(np.clip(rng.lognormal(np.log(380), 0.7), 5, 1800))
        resection = rng.choice(["GTR", "STR", "NA"], p=[0.55, 0.1, 0.35])
        survival = f"ALIVE ({days} days later)" if rng.random() < 0.03 else str(days)
        if grade == "HGG":
            training.append((TRAINING_CASE.format(index), age, survival, resection))
    validation = [
        (VALIDATION_CASE.format(i), round(float(rng.uniform(30, 85)), 3), "GTR")
        for i in range(1, n_validation_cases + 1)
    ]
    return training, validation


def write_tables(root: Path, seed: int, summaries: dict, n_cases: int, n_validation_cases: int,
                 h5: bool = True) -> None:
    """Write the CSV files of both layouts (of the NIfTI layout alone without ``h5``) from the per-case summaries."""
    training_dir = root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    grades = {i: summaries["training", i]["grade"] for i in range(1, n_cases + 1)}
    ids = {i: (f"Brats17_SYN_{i:04d}_1", f"Brats18_SYN_{i:04d}_1", "NA", f"BraTS19_SYN_{i:04d}_1") for i in grades}
    mapping = [(grades[i], *ids[i], TRAINING_CASE.format(i)) for i in grades]
    write_csv(training_dir / "name_mapping.csv", NAME_MAPPING_COLUMNS, mapping)
    survival, validation_survival = _survival_tables(seed, grades, n_validation_cases)
    write_csv(training_dir / "survival_info.csv", SURVIVAL_COLUMNS, survival)
    validation_dir = root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    validation_dir.mkdir(parents=True, exist_ok=True)
    validation_ids = [("NA", "NA", "NA", "NA", VALIDATION_CASE.format(i)) for i in range(1, n_validation_cases + 1)]
    write_csv(validation_dir / "name_mapping_validation_data.csv", VALIDATION_MAPPING_COLUMNS, validation_ids)
    write_csv(validation_dir / "survival_evaluation.csv", VALIDATION_SURVIVAL_COLUMNS, validation_survival)
    if h5:
        rows = [row for i in range(1, n_cases + 1) for row in summaries["training", i]["rows"]]
        _write_h5_tables(root / H5_DATASET_DIR, rows, seed)
