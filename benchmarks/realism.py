"""Benchmark: does the course's 3D U-Net, trained on synthetic data only, segment real tumours?

Trains notebook 05's recipe (``course`` profile) on the synthetic course dataset and evaluates it on the real
BraTS cases in ``../shared/data`` (brats_sample + brats_dev, 13 cases); as the reference, the same recipe is
trained on real cases (10 per fold: 8 train + 2 validation) and tested on the others, folds rotating so that
every real case is tested once. Prints one table: WT / TC / ET Dice (mean, median, worst) and HD95 WT, for the
network alone and after keeping the largest whole-tumour component. Nothing is asserted: this is a measurement.

    python benchmarks/realism.py                          # full recipe, synthetic-only + real reference
    python benchmarks/realism.py --skip-reference         # synthetic-only (about 11 min of training)
    python benchmarks/realism.py --epochs 3 --patches 40 --real-cases 5 --skip-reference   # a quick look

Both the synthetic and the real cases go through the pre-cache's normalisation (``cache.cached_arrays``: brain-
masked z-score, float16), as the course's training data does. The synthetic cases are generated in memory
(``synthetic.make_case``: the same arrays the course writes to disk and reads back). ``train_course_unet`` and
``evaluate_cases`` are the two pieces to swap for the package's own recipe and evaluation when they exist.
Per-case scores go to ``--csv`` (default ``build/realism/<tag>.csv``).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from braintools import cache, io, losses, metrics, models3d, postprocess, schedules, splits, train
from braintools.datasets3d import AppearanceAugmentation, PatchDataset3D, VolumeSource
from braintools.inference import sliding_window_inference
from braintools.preprocess import brain_mask
from braintools.profiles import Profile, get_profile
from braintools.synthetic import make_case

ROOT = Path(__file__).resolve().parents[1]
REAL_FOLDERS = [ROOT.parent / "shared" / "data" / name for name in ("brats_sample", "brats_dev")]


@dataclass(frozen=True)
class Recipe:
    """Notebook 05's training and evaluation settings (``course`` profile values by default)."""

    patch_size: tuple[int, int, int]
    downsample: int
    features: tuple[int, ...]
    epochs: int
    patches_per_epoch: int
    batch_size: int
    learning_rate: float
    tumour_probability: float
    val_patches: int
    roi_size: tuple[int, int, int]
    overlap: float
    sw_batch_size: int
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.1
    max_grad_norm: float = 12.0
    class_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 2.0)
    focal_gamma: float = 2.0
    seed: int = 2020
    flip_axes: tuple[int, ...] = (0, 1, 2)  # notebook 05: PatchDataset3D's default flips
    appearance: AppearanceAugmentation | None = None


AUGMENTATIONS = {
    "course": {},
    "safe": {"flip_axes": (0,)},
    "appearance": {"flip_axes": (0,), "appearance": AppearanceAugmentation()},
}


def course_recipe(profile: Profile, **changes) -> Recipe:
    """The recipe notebook 05 runs under ``profile`` (patch, shrink, features, budget, window), with ``changes``."""
    recipe = Recipe(profile.patch_size_3d, profile.downsample_3d, profile.features_3d, profile.epochs_3d,
                    profile.patches_per_epoch_3d, profile.batch_size_3d, profile.learning_rate_3d,
                    profile.tumour_probability_3d, profile.val_patches_3d, profile.patch_size_3d, profile.overlap,
                    profile.sw_batch_size, seed=profile.seed)
    return replace(recipe, **{key: value for key, value in changes.items() if value is not None})


# --------------------------------------------------------------------------- data


@dataclass
class LabelledCase:
    """A case as the course trains on it: float16 z-scored image (4, X, Y, Z), classes 0..3, affine, grade."""

    case_id: str
    image: np.ndarray
    classes: np.ndarray
    affine: np.ndarray
    grade: str = ""

    def source(self) -> VolumeSource:
        """The case as a training source of ``PatchDataset3D``."""
        return VolumeSource(self.case_id, self.image, self.classes)


def _cached(case: io.Case, grade: str = "") -> LabelledCase:
    image, classes = cache.cached_arrays(case)
    return LabelledCase(case.case_id, image, classes, case.affine, grade)


def _synthetic_job(job: tuple) -> LabelledCase:
    """Generate one synthetic training case and normalise it like the pre-cache (runs in a worker)."""
    seed, index, grid_shape = job
    torch.set_num_threads(1)
    made = make_case(seed, index, grid_shape)
    image = np.stack([made.images[m] for m in io.MODALITIES]).astype(np.float32)
    case = io.Case(f"BraTS20_Training_{index:03d}", image, made.seg, made.affine)
    return _cached(case, made.grade)


def synthetic_cases(n_cases: int, seed: int, grid_shape: Sequence[int], workers: int = 2) -> list[LabelledCase]:
    """The synthetic training cases 1..``n_cases`` of dataset ``seed``, cached-normalised, in index order."""
    jobs = [(seed, index, tuple(grid_shape)) for index in range(1, n_cases + 1)]
    if workers <= 1:
        return [_synthetic_job(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_synthetic_job, jobs))


def real_cases(folders: Sequence[Path], limit: int | None = None) -> list[LabelledCase]:
    """The real cases with a segmentation under ``folders``, cached-normalised, sorted by id."""
    found = sorted((files for folder in folders for files in io.find_cases(folder, require_seg=True)),
                   key=lambda files: files.case_id)
    if not found:
        raise SystemExit(f"no real BraTS cases under {[str(f) for f in folders]} (pass --real FOLDER ...)")
    return [_cached(io.load_case(files)) for files in found[:limit]]


def course_split(cases: Sequence[LabelledCase], seed: int) -> splits.PatientSplit:
    """The course's 80/10/10 split of the synthetic cases, stratified by grade (as ``splits.course_split``)."""
    return splits.split_patients([c.case_id for c in cases], strata=[c.grade for c in cases], seed=seed)


def reference_folds(case_ids: Sequence[str], n_train: int = 10, n_val: int = 2,
                    n_folds: int = 5) -> list[splits.PatientSplit]:
    """Rotating folds over the real cases: each case is tested once; ``n_train`` others train (``n_val`` validate)."""
    ids = list(case_ids)
    tests = [ids[fold::n_folds] for fold in range(n_folds)]
    folds = []
    for test in tests:
        rest = [case_id for case_id in ids if case_id not in test]
        pool = rest[len(rest) - n_train:] if len(rest) >= n_train else rest
        folds.append(splits.PatientSplit(tuple(pool[n_val:]), tuple(pool[:n_val]), tuple(test)))
    return folds


# --------------------------------------------------------------------------- recipe and evaluation


def train_course_unet(train_set: Sequence[LabelledCase], val_set: Sequence[LabelledCase], recipe: Recipe,
                      checkpoint_dir: Path) -> torch.nn.Module:
    """Train notebook 05's 3D U-Net (deep supervision, Dice+focal, warm-up + cosine); return its best epoch."""
    torch.manual_seed(recipe.seed)
    unet = models3d.UNet3D(4, 4, recipe.features, deep_supervision=True)
    model = models3d.wrap_downsampled(unet, recipe.downsample, full_size_in_training=False)
    patches = PatchDataset3D([c.source() for c in train_set], recipe.patch_size, recipe.patches_per_epoch,
                             recipe.tumour_probability, flip_axes=recipe.flip_axes, appearance=recipe.appearance,
                             seed=recipe.seed)
    val_patches = PatchDataset3D([c.source() for c in val_set], recipe.patch_size, recipe.val_patches,
                                 recipe.tumour_probability, augment=False, seed=recipe.seed + 1)
    train_loader = DataLoader(patches, batch_size=recipe.batch_size, shuffle=True)
    val_loader = DataLoader(val_patches, batch_size=recipe.batch_size)
    total_steps = recipe.epochs * len(train_loader)
    warmup_steps = max(1, round(recipe.warmup_fraction * total_steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    scheduler = schedules.warmup_cosine_scheduler(optimizer, warmup_steps, total_steps)
    loss_fn = losses.DeepSupervisionLoss(losses.DiceFocalLoss("classes", recipe.class_weights,
                                                              gamma=recipe.focal_gamma))
    train.fit(model, train_loader, val_loader, loss_fn, optimizer, recipe.epochs, scheduler=scheduler,
              scheduler_interval="step", max_grad_norm=recipe.max_grad_norm, monitor="val_loss",
              checkpoint_dir=checkpoint_dir, checkpoint_name="unet3d", progress=False)
    best = models3d.wrap_downsampled(models3d.UNet3D(4, 4, recipe.features, deep_supervision=True),
                                     recipe.downsample)
    train.load_checkpoint(train.checkpoint_paths(checkpoint_dir, "unet3d")[1], best)
    return best.eval()


def segment(model: torch.nn.Module, image: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Classes 0..3 of a whole cached volume: gaussian sliding window, argmax, zero outside the brain."""
    inputs = torch.from_numpy(np.asarray(image, dtype=np.float32))[None]
    logits = sliding_window_inference(inputs, recipe.roi_size, model, overlap=recipe.overlap,
                                      sw_batch_size=recipe.sw_batch_size)
    predicted = logits[0].argmax(0).numpy().astype(np.uint8)
    predicted[~brain_mask(image)] = 0
    return predicted


def evaluate_cases(model: torch.nn.Module, cases: Sequence[LabelledCase], recipe: Recipe) -> pd.DataFrame:
    """Per-case Dice and HD95 of WT / TC / ET, network alone and with the largest WT component kept."""
    rows = []
    for case in cases:
        predicted = segment(model, case.image, recipe)
        variants = {"network": predicted, "largest": postprocess.keep_largest_component(predicted, "WT")}
        for variant, classes in variants.items():
            scores = metrics.region_metrics(classes, case.classes, spacing=case.affine)
            rows.append({"case_id": case.case_id, "variant": variant,
                         **{key: scores[key] for key in scores if key.split("_")[0] in ("Dice", "HD95", "Sensitivity")},
                         "predicted WT voxels": int(np.count_nonzero(classes)),
                         "true WT voxels": int(np.count_nonzero(case.classes))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the table


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
    """The worktree's commit (short hash, '+dirty' when files differ from it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_synthetic(args, recipe: Recipe, real: Sequence[LabelledCase], work: Path) -> pd.DataFrame:
    """Train on synthetic data only; evaluate on the real cases and the synthetic test cases."""
    profile = get_profile(args.profile)
    began = time.perf_counter()
    cases = synthetic_cases(args.synthetic_cases or profile.n_cases, args.data_seed or profile.seed,
                            profile.grid_shape, args.workers)
    generated = time.perf_counter() - began
    by_id = {case.case_id: case for case in cases}
    split = course_split(cases, profile.seed)
    began = time.perf_counter()
    model = train_course_unet([by_id[i] for i in split.train], [by_id[i] for i in split.val], recipe,
                              work / "synthetic")
    trained = time.perf_counter() - began
    args.save_model.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.save_model)
    began = time.perf_counter()
    scores = pd.concat([evaluate_cases(model, real, recipe).assign(model="synthetic -> real"),
                        evaluate_cases(model, [by_id[i] for i in split.test], recipe)
                        .assign(model="synthetic -> synthetic test")])
    print(f"synthetic: {len(cases)} cases generated in {generated:.0f} s; trained on {len(split.train)} "
          f"(validation {len(split.val)}) in {trained / 60:.1f} min; evaluation {time.perf_counter() - began:.0f} s")
    return scores


def run_reference(args, recipe: Recipe, real: Sequence[LabelledCase], work: Path) -> pd.DataFrame:
    """Train on real cases and test on the held-out ones, fold by fold."""
    by_id = {case.case_id: case for case in real}
    scores = []
    folds = reference_folds(list(by_id), n_folds=args.folds)
    for number, fold in enumerate(folds, 1):
        began = time.perf_counter()
        model = train_course_unet([by_id[i] for i in fold.train], [by_id[i] for i in fold.val], recipe,
                                  work / f"fold{number}")
        scores.append(evaluate_cases(model, [by_id[i] for i in fold.test], recipe).assign(model="real -> real"))
        print(f"reference fold {number}/{len(folds)}: train {len(fold.train)}, validation {len(fold.val)}, "
              f"test {list(fold.test)}: {(time.perf_counter() - began) / 60:.1f} min")
    return pd.concat(scores)


def main() -> None:
    """Parse the arguments, train, evaluate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="course", help="profile whose notebook-05 recipe is trained")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the profile's)")
    parser.add_argument("--patches", type=int, default=None, help="training patches per epoch (default: profile)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the profile's seed)")
    parser.add_argument("--data-seed", type=int, default=None, help="synthetic dataset seed (default: profile)")
    parser.add_argument("--synthetic-cases", type=int, default=None, help="synthetic cases (default: profile)")
    parser.add_argument("--real", type=Path, nargs="+", default=REAL_FOLDERS, help="folders of real cases")
    parser.add_argument("--real-cases", type=int, default=None, help="use only the first N real cases")
    parser.add_argument("--folds", type=int, default=5, help="reference folds (every real case tested once)")
    parser.add_argument("--skip-reference", action="store_true", help="do not train the real-data reference")
    parser.add_argument("--augment", choices=sorted(AUGMENTATIONS), default="course",
                        help="training augmentation: notebook 05's (course), left-right flips only (safe), "
                             "or safe + per-channel gamma and noise (appearance)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: free cores)")
    parser.add_argument("--workers", type=int, default=2, help="processes generating synthetic cases")
    parser.add_argument("--tag", default=None, help="name of the per-case CSV (default: a timestamp)")
    parser.add_argument("--csv", type=Path, default=None, help="per-case scores file")
    parser.add_argument("--save-model", type=Path, default=None,
                        help="where to save the synthetic-trained weights (default: next to the per-case CSV)")
    args = parser.parse_args()
    csv = args.csv or ROOT / "build" / "realism" / f"{args.tag or time.strftime('%Y%m%d-%H%M%S')}.csv"
    args.save_model = args.save_model or csv.with_suffix(".pt")
    threads = args.threads or train.free_cpu_threads()
    torch.set_num_threads(threads)
    recipe = course_recipe(get_profile(args.profile), epochs=args.epochs, patches_per_epoch=args.patches,
                           seed=args.seed, **AUGMENTATIONS[args.augment])
    began = time.perf_counter()
    real = real_cases(args.real, args.real_cases)
    commit = commit_label()
    print(f"commit {commit}, {threads} PyTorch threads, {os.cpu_count()} cpus; {len(real)} real cases; recipe "
          f"{recipe.epochs} epochs x {recipe.patches_per_epoch} patches, seed {recipe.seed}, augmentation "
          f"{args.augment}")
    with tempfile.TemporaryDirectory(prefix="realism-") as work:
        scores = [run_synthetic(args, recipe, real, Path(work))]
        if not args.skip_reference:
            scores.append(run_reference(args, recipe, real, Path(work)))
    per_case = pd.concat(scores, ignore_index=True)
    csv.parent.mkdir(parents=True, exist_ok=True)
    per_case.assign(commit=commit).to_csv(csv, index=False)
    table = results_table(per_case)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.3f}" if not math.isnan(v) else "-",
                              formatters={"n": "{:.0f}".format}))
    print(f"per-case scores: {csv}; synthetic-trained weights: {args.save_model}; "
          f"total {(time.perf_counter() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
