"""Benchmark: does the course's 3D U-Net, trained on synthetic data only, segment real tumours?

Runs notebook 05 as the ``course`` profile does (``course.prepare_data``: synthetic dataset, shared split, npy cache;
``recipes.train_unet3d`` with ``UNet3DRecipe.from_profile``) in a scratch folder, then scores the best checkpoint
with ``evaluate_cases`` on the real BraTS cases in ``../shared/data`` (brats_sample + brats_dev, 13 cases)
and on its own synthetic test patients. As the reference, the same recipe is trained on real cases (10 per fold:
8 train + 2 validation) and tested on the others, folds rotating so that every real case is tested once.

Prints one table: WT / TC / ET Dice (mean, median, worst) and HD95 WT, for the network alone and after each
post-processing of ``InferenceSettings`` (keep the largest whole-tumour component; drop blobs on the brain's rim).
Nothing is asserted: this is a measurement. Per-case scores go to ``--csv`` (default ``build/realism/<tag>.csv``).

    python benchmarks/realism.py                          # synthetic-only + the 5-fold real reference
    python benchmarks/realism.py --run-folds 2            # synthetic-only + 2 of the 5 reference folds
    python benchmarks/realism.py --folds 0                # synthetic-only (about 10 min on 2 quiet CPU cores)
    python benchmarks/realism.py --reference-only         # the 5 real-trained reference folds only
    python benchmarks/realism.py --epochs 2 --patches 16 --real-cases 3 --folds 0   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from braintools import course, paths
from braintools.cache import build
from braintools.cache.sources import nifti_sources
from braintools.data import io, splits
from braintools.evaluation.cases import evaluate_cases
from braintools.inference.segment import InferenceSettings
from braintools.models.checkpoints import load_model
from braintools.profiles import get_profile
from braintools.runtime import free_cpu_threads
from braintools.synthetic.dataset import ensure_synthetic_dataset
from braintools.training.recipes import UNet3DRecipe, train_unet3d

ROOT = Path(__file__).resolve().parents[1]
REAL_FOLDERS = [ROOT.parent / "shared" / "data" / name for name in ("brats_sample", "brats_dev")]
VARIANTS = {  # post-processing share one network pass (evaluate_cases)
    "network": InferenceSettings(tta_flip_axes=()),
    "largest": InferenceSettings(tta_flip_axes=(), keep_largest=True),
    "rim 3": InferenceSettings(tta_flip_axes=(), rim_voxels=3),
    "rim 3 + largest": InferenceSettings(tta_flip_axes=(), rim_voxels=3, keep_largest=True),
}


def real_case_files(folders: Sequence[Path], limit: int | None = None) -> list[io.CaseFiles]:
    """The real cases with a segmentation under ``folders``, sorted by id (the first ``limit``)."""
    found = sorted((files for folder in folders for files in io.find_cases(folder, require_seg=True)),
                   key=lambda files: files.case_id)
    if not found:
        raise SystemExit(f"no real BraTS cases under {[str(f) for f in folders]} (pass --real FOLDER ...)")
    return found[:limit]


def reference_folds(case_ids: Sequence[str], n_train: int = 10, n_val: int = 2,
                    n_folds: int = 5) -> list[splits.PatientSplit]:
    """Rotating folds over the real cases: each case is tested once; ``n_train`` others train (``n_val`` validate)."""
    ids = list(case_ids)
    folds = []
    for fold in range(n_folds):
        test = ids[fold::n_folds]
        rest = [case_id for case_id in ids if case_id not in test]
        pool = rest[len(rest) - n_train:]
        folds.append(splits.PatientSplit(tuple(pool[n_val:]), tuple(pool[:n_val]), tuple(test)))
    return folds


def train_and_load(recipe: UNet3DRecipe, cache_dir: Path, train_ids: Sequence[str], val_ids: Sequence[str],
                   checkpoint_dir: Path):
    """Train the recipe and load its best checkpoint (as notebooks 05-07 and ``predict`` do)."""
    train_unet3d(recipe, cache_dir, train_ids, val_ids, checkpoint_dir, progress=False)
    return load_model(paths.checkpoint_file(checkpoint_dir, "unet3d", "best"))


def scores(model, cases: Sequence[io.CaseFiles], label: str) -> pd.DataFrame:
    """Per-case scores of every post-processing variant, labelled with ``label``."""
    return evaluate_cases(model, cases, VARIANTS, progress=False).table.assign(model=label)


def run_synthetic(args, recipe: UNet3DRecipe, real: Sequence[io.CaseFiles], work: Path) -> pd.DataFrame:
    """Notebook 05 on the synthetic course data; scores on the real cases and the synthetic test patients."""
    profile = get_profile(args.profile)
    if args.synthetic_cases:
        profile = dataclasses.replace(profile, n_cases=args.synthetic_cases)
    os.environ[paths.DATA_ENV] = str(work / "data")
    began = time.perf_counter()
    ensure_synthetic_dataset(profile)
    generated = time.perf_counter() - began
    data = course.prepare_data(profile, cache_dir=work / "cache")
    began = time.perf_counter()
    model = train_and_load(recipe, data.cache_dir, data.split.train, data.split.val, work / "synthetic")
    trained = time.perf_counter() - began
    torch.save(model.model.state_dict(), args.save_model)
    began = time.perf_counter()
    table = pd.concat([scores(model, real, "synthetic -> real"),
                       scores(model, data.case_files(data.split.test), "synthetic -> synthetic test")])
    evaluated = time.perf_counter() - began
    print(f"synthetic: {profile.n_cases} cases generated in {generated:.0f} s; trained on {len(data.split.train)} "
          f"(validation {len(data.split.val)}) in {trained / 60:.1f} min; evaluation {evaluated:.0f} s")
    return table


def run_reference(args, recipe: UNet3DRecipe, real: Sequence[io.CaseFiles], work: Path) -> pd.DataFrame:
    """The same recipe trained on real cases and tested on the held-out ones, fold by fold."""
    by_id = {files.case_id: files for files in real}
    sources = [source for folder in args.real for source in nifti_sources(folder, require_seg=True)
               if source.case_id in by_id]
    build.precache(sources, work / "real-cache", progress=False)
    tables = []
    folds = reference_folds(list(by_id), n_folds=args.folds)[:args.run_folds]
    for number, fold in enumerate(folds, 1):
        began = time.perf_counter()
        model = train_and_load(recipe, work / "real-cache", fold.train, fold.val, work / f"fold{number}")
        tables.append(scores(model, [by_id[i] for i in fold.test], "real -> real"))
        print(f"reference fold {number}/{len(folds)}: train {len(fold.train)}, validation {len(fold.val)}, "
              f"test {list(fold.test)}: {(time.perf_counter() - began) / 60:.1f} min", flush=True)
    return pd.concat(tables)


def summary_row(per_case: pd.DataFrame) -> dict:
    """Mean, median and worst Dice per region, mean and median HD95 WT, of one model's per-case rows."""
    row = {"n": len(per_case)}
    for region in ("WT", "TC", "ET"):
        dice = per_case[f"Dice_{region}"]
        row.update({f"{region} mean": dice.mean(), f"{region} med": dice.median(), f"{region} min": dice.min()})
    row.update({"HD95 WT mean": per_case["HD95_WT"].mean(), "HD95 WT med": per_case["HD95_WT"].median()})
    return row


def results_table(per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, variant) of the per-case scores."""
    rows = {f"{model} | {variant}": summary_row(group)
            for (model, variant), group in per_case.groupby(["model", "variant"], sort=False)}
    return pd.DataFrame(rows).T


def commit_label() -> str:
    """The worktree's commit (short hash, '+dirty' when tracked files differ from it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    """Parse the arguments, train, evaluate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="course", help="profile whose notebook-05 recipe is trained")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the profile's)")
    parser.add_argument("--patches", type=int, default=None, help="training patches per epoch (default: profile)")
    parser.add_argument("--synthetic-cases", type=int, default=None, help="synthetic cases (default: profile)")
    parser.add_argument("--real", type=Path, nargs="+", default=REAL_FOLDERS, help="folders of real cases")
    parser.add_argument("--real-cases", type=int, default=None, help="use only the first N real cases")
    parser.add_argument("--folds", type=int, default=5, help="reference folds (0: no real-trained reference)")
    parser.add_argument("--run-folds", type=int, default=None,
                        help="train only the first N reference folds (default: all; each is one training)")
    parser.add_argument("--reference-only", action="store_true",
                        help="train only the real-data reference folds (no synthetic training)")
    parser.add_argument("--no-appearance", action="store_true",
                        help="train without the per-channel gamma and noise augmentation (the recipe's default)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: free cores)")
    parser.add_argument("--tag", default=None, help="name of the per-case CSV (default: a timestamp)")
    parser.add_argument("--csv", type=Path, default=None, help="per-case scores file")
    args = parser.parse_args()
    csv = args.csv or ROOT / "build" / "realism" / f"{args.tag or time.strftime('%Y%m%d-%H%M%S')}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    args.save_model = csv.with_suffix(".pt")
    threads = args.threads or free_cpu_threads()
    torch.set_num_threads(threads)
    changes = {key: value for key, value in (("epochs", args.epochs), ("patches_per_epoch", args.patches))
               if value is not None}
    if args.no_appearance:
        changes["appearance"] = None
    recipe = UNet3DRecipe.from_profile(get_profile(args.profile), **changes)
    began = time.perf_counter()
    real = real_case_files(args.real, args.real_cases)
    commit = commit_label()
    print(f"commit {commit}, {threads} PyTorch threads, {os.cpu_count()} cpus; {len(real)} real cases; recipe "
          f"{recipe.epochs} epochs x {recipe.patches_per_epoch} patches, seed {recipe.seed}, flips "
          f"{recipe.flip_axes}, appearance {recipe.appearance}", flush=True)
    with tempfile.TemporaryDirectory(prefix="realism-") as work:
        tables = [] if args.reference_only else [run_synthetic(args, recipe, real, Path(work))]
        if args.folds:
            tables.append(run_reference(args, recipe, real, Path(work)))
    per_case = pd.concat(tables, ignore_index=True)
    per_case.assign(commit=commit).to_csv(csv, index=False)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(results_table(per_case).to_string(float_format=lambda v: f"{v:.3f}" if not math.isnan(v) else "-",
                                                formatters={"n": "{:.0f}".format}))
    print(f"settings: {VARIANTS['network'].describe()}")
    print(f"per-case scores: {csv}; synthetic-trained weights: {'none' if args.reference_only else args.save_model}; "
          f"total {(time.perf_counter() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
