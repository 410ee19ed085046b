"""A realistic synthetic BraTS 2020 dataset, written in exactly the two Kaggle on-disk layouts.

Anatomy comes from the MNI152 template and tissue maps shipped with nilearn, warped per case
(``anatomy``); each training case gets a tumour (``tumour``) and per-case scanner
effects (bias field, Rician noise, contrast and intensity scale). Same (seed, case index), same bytes.

Orientation: every volume is a (nx, ny, nz) array with voxel axes L, P, S (nibabel axcodes) like real
BraTS. The course grid is 240 x 240 x 155 at 1 mm with the exact BraTS affine; smaller grids (the ``ci``
profile) sample the same 240 x 240 x 155 mm field of view with coarser voxels, affine
``diag(-240/nx, -240/ny, 155/nz)`` with y offset ``240/ny * (ny - 1)`` (voxel (0, ny-1, 0) at the world
origin, as in BraTS; ``anatomy.grid_affine``, same rule as ``io.brats_affine``).
HDF5 slice ``s`` of volume ``v`` is exactly ``nifti_array[:, :, s]`` of training case ``v`` (no flip,
no transpose), channels ``H5_CHANNEL_ORDER``, float64 copies of the int16 values.

Layouts written under ``root`` (see FORMATS.md)::

    brats20-dataset-training-validation/BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/...
    brats20-dataset-training-validation/BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData/...
    brats2020-training-data/BraTS2020_training_data/content/data/volume_<v>_slice_<s>.h5, meta_data.csv
    brats2020-training-data/BraTS20 Training Metadata.csv

Resuming: a case folder appears only by renaming a finished temporary folder (after its HDF5 slices),
``synthetic_params.json`` is written first and ``synthetic_complete.json`` last. Calling
``generate_dataset`` again with the same parameters returns at once, or finishes an interrupted run;
different parameters raise ``DataError`` unless ``overwrite=True``, which deletes the two layout folders
and regenerates (``ensure_synthetic_dataset`` does that in its own default folder).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.ndimage as ndi

from braintools.atomic import atomic_path
from braintools.data.labels import labels_to_h5_mask
from braintools.data.synthetic.anatomy import (
    GM,
    MASK,
    MODALITIES,
    TISSUE_CONTRAST,
    WM,
    add_lookalikes,
    case_spots,
    grid_affine,
    lookalike_weights,
    normal_images,
    random_lookalikes,
    random_transform,
    smooth_noise,
    template_brain_box,
    warp_tissues,
)
from braintools.data.synthetic.tumour import (
    SATELLITE_FRACTION,
    grow_tumour,
    paint_tumour,
    random_tumour_contrast,
    sample_satellite,
    sample_tumour,
)
from braintools.errors import DataError
from braintools.paths import synthetic_dir
from braintools.profiles import BRATS_SHAPE, Profile, get_profile

GENERATOR_VERSION = 2
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
NAME_MAPPING_COLUMNS = ("Grade", "BraTS_2017_subject_ID", "BraTS_2018_subject_ID", "TCGA_TCIA_subject_ID",
                        "BraTS_2019_subject_ID", "BraTS_2020_subject_ID")  # fmt: skip
SURVIVAL_COLUMNS = ("Brats20ID", "Age", "Survival_days", "Extent_of_Resection")
VALIDATION_MAPPING_COLUMNS = NAME_MAPPING_COLUMNS[1:]
VALIDATION_SURVIVAL_COLUMNS = ("BraTS20ID", "Age", "ResectionStatus")
META_DATA_COLUMNS = ("slice_path", "target", "volume", "slice")
METADATA_COLUMNS = (*META_DATA_COLUMNS, "label0_pxl_cnt", "label1_pxl_cnt", "label2_pxl_cnt", "background_ratio")
PARAMS_MARKER = "synthetic_params.json"
COMPLETE_MARKER = "synthetic_complete.json"


@dataclass
class SyntheticCase:
    """One synthetic case: int16 images keyed t1/t1ce/t2/flair, uint8 labels {0,1,2,4} (or None) (notebook 01)."""

    images: dict[str, np.ndarray]
    seg: np.ndarray | None
    affine: np.ndarray
    grade: str  # "HGG" (has enhancing tumour), "LGG" or "" (no tumour)


@dataclass(frozen=True)
class Scanner:
    """Per-case appearance: contrasts (white matter = 1), texture, bias fields, intensity scale, noise, resolution.
    Introduced in notebook 01."""

    tissue_contrast: dict[str, tuple]
    tumour_contrast: dict[str, tuple]
    texture: tuple[float, float]  # (mixing angle of the two texture fields, amplitude)
    bias_basis: np.ndarray  # (2, *COARSE_FIELD_SHAPE) smooth fields, max |value| 1
    bias_weights: np.ndarray  # (4, 2) log-bias of each modality (MODALITIES order) = weights @ basis
    white_matter: dict[str, float]  # int16 value of white matter per modality
    noise: dict[str, float]  # noise sigma as a fraction of white matter, per modality
    blur: dict[str, tuple[int, float]]  # (axis, Gaussian sigma in mm) of each modality's thick-slice blur


# Real FLAIR and T2 are often acquired in thick axial slices and resampled to 1 mm: smoother along z (in the 13
# real cases, neighbour differences are half as large along z as in-plane); T1 and T1ce less often.
THICK_SLICE_PROBABILITY = {"t1": 0.3, "t1ce": 0.3, "t2": 0.7, "flair": 0.7}


def random_scanner(rng: np.random.Generator) -> Scanner:
    """Draw per-case contrasts, texture, bias fields (about +-15-50 %), intensity scale, noise and slice blur.
    Introduced in notebook 01."""
    tissue = {m: (1.0, *(np.array(c[1:]) * np.exp(rng.normal(0, 0.08, 2)))) for m, c in TISSUE_CONTRAST.items()}
    tumour = random_tumour_contrast(rng)
    texture = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.03, 0.06)))
    basis = smooth_noise(rng, (2, 5, 5, 4))
    weights = rng.normal(0, 1, (4, 2)) + np.array([1.0, 0.0])  # modalities share part of the coil profile
    peak = np.abs(np.tensordot(weights, basis, axes=1)).max(axis=(1, 2, 3))
    weights *= (rng.uniform(0.15, 0.5, 4) / peak)[:, None]
    scale = np.exp(rng.uniform(np.log(120), np.log(1200)))
    white = {m: float(scale * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))) for m in MODALITIES}
    noise = {m: float(rng.uniform(0.01, 0.05) if m in ("t1", "t1ce") else rng.uniform(0.03, 0.1)) for m in MODALITIES}
    blur = {}
    for modality in MODALITIES:
        axis = 2 if rng.random() < 0.8 else int(rng.integers(2))
        thick = rng.random() < THICK_SLICE_PROBABILITY[modality]
        blur[modality] = (axis, float(0.3 * rng.uniform(2.0, 6.0)) if thick else 0.0)  # boxcar of the slice ~ 0.3 T
    return Scanner(tissue, tumour, texture, basis, weights.astype(np.float32), white, noise, blur)


def _blur_inside(volume: np.ndarray, brain: np.ndarray, axis: int, sigma_voxels: float) -> np.ndarray:
    """Gaussian blur along one axis, averaging over brain voxels only (no dark rim from the background)."""
    weight = ndi.gaussian_filter1d(brain.astype(np.float32), sigma_voxels, axis=axis)
    blurred = ndi.gaussian_filter1d(volume * brain, sigma_voxels, axis=axis)
    return np.where(brain, blurred / np.maximum(weight, 1e-3), 0).astype(np.float32)


def scanner_effects(
    images: dict[str, np.ndarray], brain: np.ndarray, bias_basis: np.ndarray, scanner: Scanner,
    rng: np.random.Generator,
    spacing: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Apply bias field, intensity scale, Rician noise and thick-slice blur inside ``brain``; int16, 0 outside.
    Introduced in notebook 01."""
    spacing = np.ones(3) if spacing is None else np.asarray(spacing)
    out = {}
    basis = [field[brain] for field in bias_basis]
    for channel, modality in enumerate(MODALITIES):
        white = np.float32(scanner.white_matter[modality])
        log_bias = scanner.bias_weights[channel, 0] * basis[0] + scanner.bias_weights[channel, 1] * basis[1]
        value = images[modality][brain] * np.exp(log_bias) * white
        sigma = np.float32(scanner.noise[modality]) * white
        real = value + sigma * rng.standard_normal(value.size, dtype=np.float32)
        imaginary = sigma * rng.standard_normal(value.size, dtype=np.float32)
        magnitude = np.zeros(brain.shape, np.float32)
        magnitude[brain] = np.sqrt(real * real + imaginary * imaginary)
        axis, blur_mm = scanner.blur[modality]
        if blur_mm / spacing[axis] > 0.3:
            magnitude = _blur_inside(magnitude, brain, axis, blur_mm / spacing[axis])
        volume = np.zeros(brain.shape, np.int16)
        volume[brain] = np.clip(np.rint(magnitude[brain]), 1, 32767)
        out[modality] = volume
    return out


def make_case(
    seed: int, case_index: int, grid_shape: tuple[int, int, int] = BRATS_SHAPE, tumour: bool = True
) -> SyntheticCase:
    """Generate one case deterministically from (seed, case_index) (notebook 01)."""
    grid_shape = tuple(int(n) for n in grid_shape)
    params, noise = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, case_index]).spawn(2))
    transform = random_transform(params, grid_shape)
    specs = [sample_tumour(params, transform)] if tumour else []
    if specs and params.random() < SATELLITE_FRACTION:
        specs.append(sample_satellite(params, specs[0], transform.spacing))
    scanner = random_scanner(params)
    look = random_lookalikes(params)
    box = template_brain_box(transform, grid_shape)
    mass = specs[0].mass_effect if specs else None
    channels, coarse = warp_tissues(transform, box, extra=np.concatenate([scanner.bias_basis, look.density]),
                                    mass=mass)
    brain = channels[MASK] > 0.5
    gm, wm = (np.clip(channel, 0, 1) * brain for channel in channels[[GM, WM]])
    csf = np.clip(1 - gm - wm, 0, 1) * brain
    angle, amount = scanner.texture
    first, second = case_spots(channels, angle)
    vessels = np.clip((first - 1.8) / 0.6, 0, 1) * np.clip((csf - 0.3) / 0.4, 0, 1)
    images = normal_images(scanner.tissue_contrast, gm, wm, csf, np.float32(amount) * second, vessels)
    add_lookalikes(images, lookalike_weights(channels, coarse[2:], look, wm), look, brain)
    seg = np.zeros(grid_shape, np.uint8) if specs else None
    for spec in specs:
        sub, labels, strength = grow_tumour(spec, transform.spacing, box, (gm, wm, csf, brain))
        if not np.any((labels == 1) | (labels == 4)):
            continue  # a satellite that fell outside the brain
        paint_tumour(images, sub, labels, strength, scanner.tumour_contrast, transform.spacing, noise,
                     spec.heterogeneity)
        target = seg[box][sub]
        np.copyto(target, labels, where=(labels != 0) & ((labels != 2) | (target == 0)))
    finished = scanner_effects(images, brain, coarse[:2], scanner, noise, transform.spacing)
    volumes = {}
    for modality in MODALITIES:
        volumes[modality] = np.zeros(grid_shape, np.int16)
        volumes[modality][box] = finished[modality]
    grade = "" if seg is None else ("HGG" if np.any(seg == 4) else "LGG")
    return SyntheticCase(volumes, seg, grid_affine(grid_shape), grade)


def _nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """Wrap an array like a real BraTS file: qform and sform code 1 (scanner), units mm."""
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return image


def write_nifti_case(case: SyntheticCase, folder: str | Path, case_id: str) -> Path:
    """Write ``<case_id>_{flair,t1,t1ce,t2[,seg]}.nii`` (uncompressed) into ``folder``; return it (notebook 01)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for modality in NIFTI_MODALITIES:
        nib.save(_nifti(case.images[modality], case.affine), folder / f"{case_id}_{modality}.nii")
    if case.seg is not None:
        nib.save(_nifti(case.seg, case.affine), folder / f"{case_id}_seg.nii")
    return folder


def slice_rows(images: dict[str, np.ndarray], seg: np.ndarray | None, volume: int) -> list[dict]:
    """Rows of the HDF5 metadata CSVs (METADATA_COLUMNS) for every axial slice of one volume (notebook 01)."""
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
    """Write one volume as Kaggle HDF5 slices ``volume_<volume>_slice_<s>.h5``; return its metadata rows (notebook 01).

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


def write_h5_case(case: SyntheticCase, h5_data_dir: str | Path, volume: int) -> list[dict]:
    """Write a synthetic case as HDF5 slices in ``H5_CHANNEL_ORDER`` (``write_h5_volume``); return the rows.
    Introduced in notebook 01."""
    return write_h5_volume(case.images, case.seg, h5_data_dir, volume)


def write_h5_tables(h5_root: str | Path, rows: list[dict], seed: int) -> None:
    """Write the HDF5 dataset's two metadata CSVs: ``content/data/meta_data.csv`` and the shuffled root CSV.
    Introduced in notebook 01."""
    h5_root = Path(h5_root)
    (h5_root / H5_DATA_SUBDIR).mkdir(parents=True, exist_ok=True)
    write_csv(h5_root / H5_DATA_SUBDIR / H5_META_DATA_CSV, META_DATA_COLUMNS, rows)
    shuffled = [rows[i] for i in np.random.default_rng([seed, 7]).permutation(len(rows))]
    write_csv(h5_root / H5_METADATA_CSV, METADATA_COLUMNS, shuffled)


def write_csv(path: str | Path, columns: tuple, rows: list) -> None:
    """Write a CSV with a header (rows are dicts or sequences), like the Kaggle datasets' tables (notebook 01)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[row[c] for c in columns] if isinstance(row, dict) else row for row in rows])


def _case_summary(folder: Path, case_id: str, volume: int) -> dict:
    """Grade and HDF5 metadata rows of a training case already on disk (read back from its NIfTI files)."""
    images = {m: np.asarray(nib.load(folder / f"{case_id}_{m}.nii").dataobj) for m in MODALITIES}
    seg = np.asarray(nib.load(folder / f"{case_id}_seg.nii").dataobj)
    grade = "HGG" if np.any(seg == 4) else "LGG"
    return {"grade": grade, "rows": slice_rows(images, seg, volume)}


def _commit_nifti(case: SyntheticCase, parent: Path, case_id: str) -> None:
    """Write a case folder under a temporary name, then rename it into place."""
    partial = parent / f".{case_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    write_nifti_case(case, partial, case_id)
    os.replace(partial, parent / case_id)


def _generate_job(job: tuple) -> tuple[str, int, dict]:
    """Generate and write one training or validation case (runs in a worker process)."""
    kind, index, root, grid_shape, seed, h5 = job
    if kind == "validation":
        case = replace(make_case(seed, VALIDATION_INDEX_OFFSET + index, grid_shape), seg=None)
        _commit_nifti(case, root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR, VALIDATION_CASE.format(index))
        return kind, index, {}
    case = make_case(seed, index, grid_shape)
    rows = []
    if h5:
        h5_dir = root / H5_DATASET_DIR / H5_DATA_SUBDIR
        for stale in h5_dir.glob(f".tmp-*-volume_{index}_slice_*.h5"):  # left by an interrupted run
            stale.unlink(missing_ok=True)
        rows = write_h5_case(case, h5_dir, index)
    _commit_nifti(case, root / NIFTI_DATASET_DIR / TRAINING_SUBDIR, TRAINING_CASE.format(index))
    return kind, index, {"grade": case.grade, "rows": rows}


def _init_worker() -> None:
    """One torch thread per worker process (the pool provides the parallelism); the worker dies with its parent."""
    import torch

    from braintools.processes import die_with_parent

    die_with_parent()
    torch.set_num_threads(1)


def _run_jobs(jobs: list, workers: int, progress: bool) -> dict:
    """Run generation jobs inline (one worker) or in a process pool; return summaries by (kind, index)."""
    from tqdm.auto import tqdm

    results = {}
    with tqdm(total=len(jobs), desc="synthetic BraTS cases", unit="case", disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                kind, index, summary = _generate_job(job)
                results[kind, index] = summary
                bar.update()
            return results
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            for future in as_completed([pool.submit(_generate_job, job) for job in jobs]):
                kind, index, summary = future.result()
                results[kind, index] = summary
                bar.update()
    return results


def survival_tables(seed: int, grades: dict, n_validation_cases: int) -> tuple[list, list]:
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


def _write_tables(root: Path, seed: int, summaries: dict, n_cases: int, n_validation_cases: int,
                  h5: bool = True) -> None:
    """Write the CSV files of both layouts (of the NIfTI layout alone without ``h5``) from the per-case summaries."""
    training_dir = root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    grades = {i: summaries["training", i]["grade"] for i in range(1, n_cases + 1)}
    ids = {i: (f"Brats17_SYN_{i:04d}_1", f"Brats18_SYN_{i:04d}_1", "NA", f"BraTS19_SYN_{i:04d}_1") for i in grades}
    mapping = [(grades[i], *ids[i], TRAINING_CASE.format(i)) for i in grades]
    write_csv(training_dir / "name_mapping.csv", NAME_MAPPING_COLUMNS, mapping)
    survival, validation_survival = survival_tables(seed, grades, n_validation_cases)
    write_csv(training_dir / "survival_info.csv", SURVIVAL_COLUMNS, survival)
    validation_dir = root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    validation_dir.mkdir(parents=True, exist_ok=True)
    validation_ids = [("NA", "NA", "NA", "NA", VALIDATION_CASE.format(i)) for i in range(1, n_validation_cases + 1)]
    write_csv(validation_dir / "name_mapping_validation_data.csv", VALIDATION_MAPPING_COLUMNS, validation_ids)
    write_csv(validation_dir / "survival_evaluation.csv", VALIDATION_SURVIVAL_COLUMNS, validation_survival)
    if h5:
        rows = [row for i in range(1, n_cases + 1) for row in summaries["training", i]["rows"]]
        write_h5_tables(root / H5_DATASET_DIR, rows, seed)


def _read_json(path: Path) -> dict | None:
    """Return the JSON content of ``path``, or None when it does not exist."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _prepare_root(root: Path, params: dict, overwrite: bool) -> bool:
    """Check the markers in ``root``; return True when the dataset is already complete."""
    complete, started = _read_json(root / COMPLETE_MARKER), _read_json(root / PARAMS_MARKER)
    if complete is not None and complete.get("parameters") == params:
        return True
    layouts = [root / NIFTI_DATASET_DIR, root / H5_DATASET_DIR]
    known = started == params and complete is None
    if not known and (complete is not None or started is not None or any(p.exists() for p in layouts)):
        if not overwrite:
            found = (complete or {}).get("parameters", started)
            raise DataError(
                f"{root}: holds a synthetic dataset made with other parameters ({found}, wanted {params}); "
                "regenerate it with overwrite=True (command line: synthesize --overwrite), or choose another folder"
            )
        for path in layouts:
            shutil.rmtree(path, ignore_errors=True)
        (root / COMPLETE_MARKER).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / PARAMS_MARKER).write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    return False


def generate_dataset(
    root: str | Path,
    n_cases: int,
    n_validation_cases: int,
    grid_shape: tuple[int, int, int] = BRATS_SHAPE,
    seed: int = 2020,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    h5: bool = True,
) -> Path:
    """Generate (or finish, or reuse) the synthetic dataset in both Kaggle layouts under ``root`` (notebook 01).

    ``workers`` processes (default: up to 2 for full-size grids, in-process for small ones) each build
    and write whole cases. Different parameters in ``root`` raise ``DataError`` unless ``overwrite``.
    HDF5 slices are uncompressed float64 like the Kaggle files: about 2 MB each, 12 GB for the course.
    ``h5=False`` writes the NIfTI layout alone (same NIfTI bytes; for experiments that train 3D models only,
    e.g. ``benchmarks/realism.py``); such a dataset records it and is never taken for a two-layout one.
    """
    root = Path(root)
    grid_shape = tuple(int(n) for n in grid_shape)
    if int(n_cases) < 1 or int(n_validation_cases) < 0:
        raise ValueError(f"a synthetic dataset needs at least 1 training case and 0 or more validation cases, "
                         f"got {n_cases} and {n_validation_cases}")
    params = {
        "generator_version": GENERATOR_VERSION,
        "n_cases": int(n_cases),
        "n_validation_cases": int(n_validation_cases),
        "grid_shape": list(grid_shape),
        "seed": int(seed),
    }
    if not h5:
        params["layouts"] = [NIFTI_DATASET_DIR]
    if _prepare_root(root, params, overwrite):
        return root
    training_dir = root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    validation_dir = root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    jobs = [("training", i, root, grid_shape, seed, h5) for i in range(1, n_cases + 1)
            if not (training_dir / TRAINING_CASE.format(i)).is_dir()]  # fmt: skip
    jobs += [("validation", i, root, grid_shape, seed, h5) for i in range(1, n_validation_cases + 1)
             if not (validation_dir / VALIDATION_CASE.format(i)).is_dir()]  # fmt: skip
    if workers is None:  # small grids run in this process: starting workers would cost more than the cases
        workers = min(2, os.cpu_count() or 1) if np.prod(grid_shape) >= 1_000_000 else 1
    summaries = _run_jobs(jobs, workers, progress)
    for i in range(1, n_cases + 1):
        if ("training", i) not in summaries:
            case_id = TRAINING_CASE.format(i)
            summaries["training", i] = _case_summary(training_dir / case_id, case_id, i)
    _write_tables(root, seed, summaries, n_cases, n_validation_cases, h5)
    marker = {"parameters": params, "layouts": [NIFTI_DATASET_DIR, H5_DATASET_DIR] if h5 else [NIFTI_DATASET_DIR]}
    (root / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return root


def ensure_synthetic_dataset(profile: Profile | None = None, root: str | Path | None = None) -> Path:
    """Return the synthetic dataset folder of ``profile`` (default: ``get_profile()``), generating it if needed.
    Introduced in notebook 01.

    In the profile's default folder a dataset made with other parameters is regenerated; in a folder
    you chose, that is a ``DataError``.
    """
    profile = profile or get_profile()
    folder = synthetic_dir(profile.name) if root is None else Path(root)
    return generate_dataset(folder, profile.n_cases, profile.n_validation_cases, profile.grid_shape,
                            profile.seed, overwrite=root is None)  # fmt: skip
