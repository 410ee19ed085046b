"""The synthetic dataset of a profile, generated once into both Kaggle layouts, resumable (notebook 01).

``release`` chooses the layout: ``"2020"`` (default) writes the two Kaggle BraTS 2020 datasets (NIfTI and HDF5
slices); ``"2021"`` and ``"2023"`` write the training cases as those releases ship them, NIfTI only, in their names and
labels (``layout.write_nifti_case``), so that the offline course and the tests run the newer releases' code paths.

Resuming: a case folder appears only by renaming a finished temporary folder (after its HDF5 slices),
``synthetic_params.json`` is written first and ``synthetic_complete.json`` last. Calling ``generate_dataset`` again
with the same parameters returns at once, or finishes an interrupted run; different parameters raise ``DataError``
unless ``overwrite=True``, which deletes the two layout folders and regenerates (``ensure_synthetic_dataset`` does
that in its own default folder). Cases are made by a pool of worker processes that die with their parent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from braintools._private.processes import worker_pool
from braintools.data import releases
from braintools.data.io import Case
from braintools.errors import DataError
from braintools.paths import synthetic_dir
from braintools.profiles import BRATS_SHAPE, Profile
from braintools.synthetic.anatomy import MODALITIES
from braintools.synthetic.generator import GENERATOR_VERSION, make_case
from braintools.synthetic.layout import (
    H5_DATA_SUBDIR,
    H5_DATASET_DIR,
    NIFTI_DATASET_DIR,
    RELEASE_TRAINING_DIR,
    TRAINING_CASE,
    TRAINING_SUBDIR,
    VALIDATION_CASE,
    VALIDATION_INDEX_OFFSET,
    VALIDATION_SUBDIR,
    slice_rows,
    training_case_id,
    write_h5_case,
    write_nifti_case,
    write_tables,
)

PARAMS_MARKER = "synthetic_params.json"
COMPLETE_MARKER = "synthetic_complete.json"


def _case_summary(folder: Path, case_id: str, volume: int) -> dict:
    """Grade and HDF5 metadata rows of a training case already on disk (read back from its NIfTI files)."""
    images = {m: np.asarray(nib.load(folder / f"{case_id}_{m}.nii").dataobj) for m in MODALITIES}
    seg = np.asarray(nib.load(folder / f"{case_id}_seg.nii").dataobj)
    grade = "HGG" if np.any(seg == 4) else "LGG"
    return {"grade": grade, "rows": slice_rows(images, seg, volume)}


def commit_nifti_case(case: Case, parent: Path, case_id: str, release: str = "2020") -> None:
    """Write a case folder (in a release's names and labels) under a temporary name, then rename it into place, so that
    an interrupted write never leaves a half case."""
    partial = parent / f".{case_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    write_nifti_case(case, partial, case_id, release)
    os.replace(partial, parent / case_id)


def _generate_job(job: tuple) -> tuple[str, int, dict]:
    """Generate and write one training or validation case (runs in a worker process)."""
    kind, index, root, grid_shape, seed, release, h5 = job
    if release != "2020":  # a newer release: NIfTI training cases only, in its names and labels
        case_id = training_case_id(index, release)
        case = make_case(seed, index, grid_shape, case_id=case_id)
        commit_nifti_case(case, root / RELEASE_TRAINING_DIR[release], case_id, release)
        return kind, index, {"grade": case.grade}
    if kind == "validation":
        case_id = VALIDATION_CASE.format(index)
        case = replace(make_case(seed, VALIDATION_INDEX_OFFSET + index, grid_shape, case_id=case_id), seg=None)
        commit_nifti_case(case, root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR, case_id)
        return kind, index, {}
    case = make_case(seed, index, grid_shape, case_id=TRAINING_CASE.format(index))
    rows = []
    if h5:
        h5_dir = root / H5_DATASET_DIR / H5_DATA_SUBDIR
        for stale in h5_dir.glob(f".tmp-*-volume_{index}_slice_*.h5"):  # left by an interrupted run
            stale.unlink(missing_ok=True)
        rows = write_h5_case(case, h5_dir, index)
    commit_nifti_case(case, root / NIFTI_DATASET_DIR / TRAINING_SUBDIR, case.case_id)
    return kind, index, {"grade": case.grade, "rows": rows}


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
        with worker_pool(workers, spawn=True, torch_threads=1) as pool:  # the pool provides the parallelism
            for future in as_completed([pool.submit(_generate_job, job) for job in jobs]):
                kind, index, summary = future.result()
                results[kind, index] = summary
                bar.update()
    return results


def _read_json(path: Path) -> dict | None:
    """Return the JSON content of ``path``, or None when it does not exist."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _prepare_root(root: Path, params: dict, overwrite: bool) -> bool:
    """Check the markers in ``root``; return True when the dataset is already complete."""
    complete, started = _read_json(root / COMPLETE_MARKER), _read_json(root / PARAMS_MARKER)
    if complete is not None and complete.get("parameters") == params:
        return True
    layouts = [root / name for name in (NIFTI_DATASET_DIR, H5_DATASET_DIR, *RELEASE_TRAINING_DIR.values())]
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
    release: str = "2020",
    h5: bool = True,
) -> Path:
    """Generate (or finish, or reuse) the synthetic dataset under ``root``: both Kaggle layouts, or a newer release's.

    ``workers`` processes (default: up to 2 for full-size grids, in-process for small ones) each build
    and write whole cases. Different parameters in ``root`` raise ``DataError`` unless ``overwrite``.
    HDF5 slices are uncompressed float64 like the Kaggle files: about 2 MB each, 12 GB for the course.
    ``release`` ``"2021"`` or ``"2023"``: the ``n_cases`` training cases only, in that release's layout
    (``layout.RELEASE_TRAINING_DIR``; no HDF5 slices, no validation cases, no CSV tables: those releases have none).
    ``h5=False`` writes the BraTS 2020 NIfTI layout alone (same NIfTI bytes; for experiments that train 3D models
    only, e.g. ``benchmarks/realism.py``); such a dataset records it and is never taken for a two-layout one.
    """
    root = Path(root)
    release = releases.get_release(release).key
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
    if release != "2020":  # (the parameters of a BraTS 2020 layout stay as they were: old datasets stay valid)
        params.update(release=release, n_validation_cases=0)
    elif not h5:
        params["layouts"] = [NIFTI_DATASET_DIR]
    if _prepare_root(root, params, overwrite):
        return root
    if workers is None:  # small grids run in this process: starting workers would cost more than the cases
        workers = min(2, os.cpu_count() or 1) if np.prod(grid_shape) >= 1_000_000 else 1
    if release != "2020":
        folder = root / RELEASE_TRAINING_DIR[release]
        jobs = [("training", i, root, grid_shape, seed, release, True) for i in range(1, n_cases + 1)
                if not (folder / training_case_id(i, release)).is_dir()]  # fmt: skip
        _run_jobs(jobs, workers, progress)
        marker = {"parameters": params, "layouts": [RELEASE_TRAINING_DIR[release]]}
        (root / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        return root
    training_dir = root / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    validation_dir = root / NIFTI_DATASET_DIR / VALIDATION_SUBDIR
    jobs = [("training", i, root, grid_shape, seed, release, h5) for i in range(1, n_cases + 1)
            if not (training_dir / TRAINING_CASE.format(i)).is_dir()]  # fmt: skip
    jobs += [("validation", i, root, grid_shape, seed, release, h5) for i in range(1, n_validation_cases + 1)
             if not (validation_dir / VALIDATION_CASE.format(i)).is_dir()]  # fmt: skip
    summaries = _run_jobs(jobs, workers, progress)
    for i in range(1, n_cases + 1):
        if ("training", i) not in summaries:
            case_id = TRAINING_CASE.format(i)
            summaries["training", i] = _case_summary(training_dir / case_id, case_id, i)
    write_tables(root, seed, summaries, n_cases, n_validation_cases, h5)
    marker = {"parameters": params, "layouts": [NIFTI_DATASET_DIR, H5_DATASET_DIR] if h5 else [NIFTI_DATASET_DIR]}
    (root / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return root


def ensure_synthetic_dataset(profile: Profile, root: str | Path | None = None) -> Path:
    """Return the synthetic dataset folder of a synthetic ``profile``, generating it if needed.

    In the profile's default folder a dataset made with other parameters is regenerated; in a folder
    you chose, that is a ``DataError``. A real-data profile (``kaggle``, ...) has no synthetic dataset: ``ValueError``.
    """
    if profile.source != "synthetic":
        raise ValueError(f"profile {profile.name!r} uses the real Kaggle data, not a synthetic dataset")
    folder = synthetic_dir(profile.name) if root is None else Path(root)
    # a progress bar only in a terminal: in a notebook a bar would stay saved at "0 %" in the executed copy
    return generate_dataset(folder, profile.n_cases, profile.n_validation_cases, profile.grid_shape,
                            profile.seed, progress=sys.stderr.isatty(), overwrite=root is None,
                            release=profile.release)  # fmt: skip
