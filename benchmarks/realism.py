"""Benchmark: does the course's 3D U-Net, trained on synthetic data only, segment real tumours it was never tuned on?

The protocol (issue #22). The 13 real BraTS 2018 cases of ``../shared/data`` (brats_sample + brats_dev) are split
once, by the rule of ``split_real_cases``, into 8 **tuning** cases and 5 **locked** cases (``TUNING_CASES``,
``LOCKED_CASES``). Everything that is chosen (``reference.REAL_STATISTICS``, the generator, the recipe, the
budget, the post-processing) looks at the tuning cases only; the locked cases are scored, never tuned on.

What it runs, for each training seed (default 2020, 2021, 2022; 2020 is the course's own run):

- **synthetic-only**: notebook 05 as the ``course`` profile runs it (the profile's synthetic dataset, its shared
  split, the npy cache, ``recipes.train_unet3d`` with ``UNet3DRecipe.from_profile``), scored on the tuning and the
  locked cases;
- **real-trained** (the reference: the same recipe and budget trained on real cases): trained on the tuning cases
  (``REFERENCE_SPLIT``: 6 train + 2 validation), scored on the locked cases;
- **real-trained folds** (its tuning-set figure): 4 rotating folds within the tuning cases, each trained on 5 + 1
  of them and scored on the 2 it left out, so that every tuning case is scored once by a model that never saw it.

Prints one table per set: WT / TC / ET Dice (mean over cases, then mean +- std and min-max over the seeds) and
HD95 WT (median over cases, then mean +- std over seeds), for the network alone and after each post-processing
of ``VARIANTS``. Nothing is asserted: this is a measurement. Per-case scores go to ``--csv``; every trained model
stays in ``--work`` (``--reuse`` scores it again instead of training again).

    python benchmarks/realism.py                                  # everything: 3 seeds, both sets (~3 h on 2 cores)
    python benchmarks/realism.py --sets tuning --parts synthetic  # what tuning decisions look at
    python benchmarks/realism.py --seeds 2020 --epochs 2 --patches 16 --parts synthetic   # a quick look
    python benchmarks/realism.py --parts reference folds          # the real-trained references only
    python benchmarks/realism.py --checkpoint outputs/course/checkpoints/unet2d_best.pt --parts   # any checkpoint
    python benchmarks/realism.py --work /data/realism --reuse --sets locked   # score kept models on the locked set

``--set field=value`` changes a field of the recipe (``--set epochs=20 learning_rate=0.002``), ``--set
appearance.gamma_probability=0.5`` a field of one of its fields.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REAL_FOLDERS = [ROOT.parent / "shared" / "data" / name for name in ("brats_sample", "brats_dev")]

# --------------------------------------------------------------------------- the split (a pure rule, no data read)

LOCKED_SHARE = 5 / 13


def institution_group(case_id: str) -> str:
    """``"CBICA"`` for ``Brats18_CBICA_*`` cases, ``"other"`` for every other site (``2013``, ``TCIA10``, ...)."""
    return "CBICA" if "_CBICA_" in case_id else "other"


def split_real_cases(case_ids: Sequence[str], locked_share: float = LOCKED_SHARE) -> tuple[tuple[str, ...], ...]:
    """The rule that made ``TUNING_CASES`` and ``LOCKED_CASES``: (tuning, locked), each in the rule's order.

    Within each institution group (``institution_group``: CBICA, and the other sites pooled), the cases are ordered
    by the SHA-256 of their id; the first ``round(locked_share * n)`` of a group are locked, the others tune. On the
    13 development cases (11 CBICA; one 2013 case and one TCIA low-grade case) that locks 4 CBICA cases and 1 other
    one, and leaves 7 CBICA cases and the other non-CBICA case for tuning: both sets mix institutions. The hash
    makes the choice independent of anything measured on the cases (it was fixed before any score was looked at).

    Example:
        >>> split_real_cases(["Brats18_CBICA_AAA_1", "Brats18_CBICA_BBB_1", "Brats18_2013_1_1"], 0.34)
        (('Brats18_CBICA_AAA_1', 'Brats18_2013_1_1'), ('Brats18_CBICA_BBB_1',))
    """
    tuning, locked = [], []
    for group in ("CBICA", "other"):
        members = sorted((c for c in case_ids if institution_group(c) == group),
                         key=lambda c: hashlib.sha256(c.encode()).hexdigest())
        n_locked = round(locked_share * len(members))
        locked += members[:n_locked]
        tuning += members[n_locked:]
    return tuple(tuning), tuple(locked)


# split_real_cases(<the 13 ids>): choices look at these 8 cases only ...
TUNING_CASES = ("Brats18_CBICA_ABM_1", "Brats18_CBICA_APR_1", "Brats18_CBICA_AOZ_1", "Brats18_CBICA_AQQ_1",
                "Brats18_CBICA_ASY_1", "Brats18_CBICA_ASV_1", "Brats18_CBICA_APZ_1", "Brats18_2013_3_1")
# ... and these 5 are scored, never tuned on (4 CBICA high-grade cases and the TCIA low-grade case)
LOCKED_CASES = ("Brats18_CBICA_AQP_1", "Brats18_CBICA_AQO_1", "Brats18_CBICA_ATD_1", "Brats18_CBICA_ASW_1",
                "Brats18_TCIA10_628_1")
REAL_SETS = {"tuning": TUNING_CASES, "locked": LOCKED_CASES}
# The real-trained reference: the first two tuning cases validate, the other six train; scored on the locked set.
REFERENCE_SPLIT = {"train": TUNING_CASES[2:], "val": TUNING_CASES[:2]}


def real_split() -> dict[str, tuple[str, ...]]:
    """``{"tuning": TUNING_CASES, "locked": LOCKED_CASES}``: the fixed split of the 13 real development cases.

    Example:
        >>> sorted(real_split()), len(real_split()["locked"])
        (['locked', 'tuning'], 5)
    """
    return dict(REAL_SETS)


def tuning_folds(n_folds: int = 4) -> list[dict[str, tuple[str, ...]]]:
    """Rotating folds within the tuning cases: fold k tests ``TUNING_CASES[k::n_folds]``; of the other cases the
    first validates and the rest train. Every tuning case is tested once."""
    folds = []
    for fold in range(n_folds):
        test = TUNING_CASES[fold::n_folds]
        rest = tuple(case for case in TUNING_CASES if case not in test)
        folds.append({"train": rest[1:], "val": rest[:1], "test": test})
    return folds


# --------------------------------------------------------------------------- training and scoring

VARIANT_NAMES = ("network", "largest", "rim 3", "rim 3 + largest")


def variants():
    """The inference settings scored (post-processing variants share one network pass)."""
    from braintools.inference.segment import InferenceSettings

    plain = InferenceSettings(tta_flip_axes=())
    return {"network": plain, "largest": plain.replace(keep_largest=True), "rim 3": plain.replace(rim_voxels=3),
            "rim 3 + largest": plain.replace(rim_voxels=3, keep_largest=True)}


@functools.lru_cache(maxsize=1)
def generator_fingerprint() -> str:
    """SHA-256 (12 hex digits) of the generator's source files when first asked (the code this run imported): a
    dataset or a model made with other generator code is not reused."""
    folder = ROOT / "braintools" / "synthetic"
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def synthetic_data(profile, folder: Path, workers: int | None):
    """The profile's synthetic training cases (NIfTI layout only), their shared split and npy cache under ``folder``."""
    from braintools.cache import build
    from braintools.cache.sources import nifti_sources
    from braintools.data import io, splits
    from braintools.synthetic.dataset import generate_dataset
    from braintools.synthetic.layout import NIFTI_DATASET_DIR, TRAINING_SUBDIR

    stamp = folder / "generator_source.txt"
    if stamp.is_file() and stamp.read_text().strip() != generator_fingerprint():
        raise SystemExit(f"{folder}: made by another version of the generator's code ({stamp.read_text().strip()}, "
                         f"now {generator_fingerprint()}); delete it or choose another --data folder")
    began = time.perf_counter()
    generate_dataset(folder / "dataset", profile.n_cases, 0, profile.grid_shape, profile.seed, workers=workers,
                     progress=False, h5=False)
    stamp.write_text(generator_fingerprint() + "\n")
    generated = time.perf_counter() - began
    nifti_train = folder / "dataset" / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    cases = io.find_cases(nifti_train, require_seg=True, warn_missing=False)
    split = splits.course_split([c.case_id for c in cases], folder / "split.json", nifti_train=nifti_train,
                                seed=profile.seed, fractions=profile.split_fractions)
    build.precache(nifti_sources(nifti_train, require_seg=True), folder / "cache", progress=False,
                   crop=profile.crop_cache)
    return {c.case_id: c for c in cases}, split, folder / "cache", generated


def trained_model(recipe, cache_dir: Path, train_ids, val_ids, run_dir: Path, reuse: bool, extra: dict):
    """Train the recipe (or, with ``reuse``, take the model an identical earlier run left) and load its best
    checkpoint as notebooks 05-07 and ``predict`` do; returns (model, minutes spent training)."""
    from braintools import paths
    from braintools.models.checkpoints import load_model
    from braintools.training.recipes import recipe_settings, train_unet3d

    best = paths.checkpoint_file(run_dir, "unet3d", "best")
    record = {"recipe": recipe_settings(recipe), "epochs": recipe.epochs, "train": list(train_ids),
              "val": list(val_ids), **extra}  # recipe_settings leaves the epochs out (a resume may add some)
    record = json.loads(json.dumps(record))  # as it reads back (tuples become lists)
    marker = run_dir / "trained.json"
    if reuse and best.is_file() and marker.is_file() and json.loads(marker.read_text())["record"] == record:
        return load_model(best), json.loads(marker.read_text())["minutes"]
    began = time.perf_counter()
    train_unet3d(recipe, cache_dir, train_ids, val_ids, run_dir, progress=False)
    minutes = (time.perf_counter() - began) / 60
    marker.write_text(json.dumps({"record": record, "minutes": minutes}, indent=1))
    return load_model(best), minutes


def score(model, cases, label: str, seed, real_set: str) -> pd.DataFrame:
    """Per-case scores of every post-processing variant, labelled."""
    from braintools.evaluation.cases import evaluate_cases

    table = evaluate_cases(model, cases, variants(), progress=False).table
    return table.assign(model=label, seed=seed, set=real_set)


def real_cases(folders: Sequence[Path]) -> dict:
    """The 13 real development cases by id (an error naming what is missing)."""
    from braintools.data import io

    found = {files.case_id: files for folder in folders for files in io.find_cases(folder, require_seg=True)}
    missing = sorted(set(TUNING_CASES + LOCKED_CASES) - set(found))
    if missing:
        raise SystemExit(f"real cases missing under {[str(f) for f in folders]}: {missing}")
    return found


def real_cache(args, work: Path) -> Path:
    """The npy cache of the 13 real cases (for the real-trained references)."""
    from braintools.cache import build
    from braintools.cache.sources import nifti_sources

    folder = work / "real-cache"
    sources = [s for f in args.real for s in nifti_sources(f, require_seg=True)
               if s.case_id in TUNING_CASES + LOCKED_CASES]
    build.precache(sources, folder, progress=False)
    return folder


# --------------------------------------------------------------------------- tables


def per_seed(per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, model, variant, seed): mean Dice per region over the cases, median HD95 WT, cases."""
    keys = ["set", "model", "variant", "seed"]
    grouped = per_case.groupby(keys, sort=False)
    table = grouped[["Dice_WT", "Dice_TC", "Dice_ET"]].mean()
    table["HD95_WT_median"] = grouped["HD95_WT"].median()
    table["cases"] = grouped.size()
    return table.reset_index()


def results_table(per_case: pd.DataFrame, real_set: str) -> pd.DataFrame:
    """Mean +- std (min-max) over the seeds of each (model, variant) on one set."""
    seeds = per_seed(per_case[per_case["set"] == real_set])
    rows = {}
    for (model, variant), group in seeds.groupby(["model", "variant"], sort=False):
        row = {"seeds": len(group), "cases": int(group["cases"].max())}
        for column, name, digits in (("Dice_WT", "WT", 3), ("Dice_TC", "TC", 3), ("Dice_ET", "ET", 3),
                                     ("HD95_WT_median", "HD95 WT med", 1)):
            values = group[column]
            spread = f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else ""
            span = f" ({values.min():.{digits}f}-{values.max():.{digits}f})" if len(values) > 1 else ""
            row[name] = f"{values.mean():.{digits}f}{spread}{span}"
        rows[f"{model} | {variant}"] = row
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


def print_tables(per_case: pd.DataFrame, sets: Sequence[str]) -> None:
    """One table per real set."""
    for real_set in sets:
        if not (per_case["set"] == real_set).any():
            continue
        cases = REAL_SETS.get(real_set, ())
        print(f"\n== {real_set} set ({len(cases)} cases: {', '.join(cases)})" if cases else f"\n== {real_set}")
        with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
            print(results_table(per_case, real_set).to_string())
    print("\nDice: mean over the set's cases, then mean ± std (min-max) over the seeds; HD95 WT med: median over the "
          "cases (mm), then over the seeds likewise. BraTS empty-region convention (both empty: Dice 1, HD95 0).")
    print("real-trained on the tuning set: 4 rotating folds within the tuning cases (5 train + 1 validation each), "
          "every tuning case scored by the fold that left it out; on the locked set: trained on the 8 tuning cases "
          "(6 train + 2 validation).")


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="course", help="profile whose notebook-05 recipe is trained")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022], help="training seeds")
    parser.add_argument("--parts", nargs="*", default=["synthetic", "reference", "folds"],
                        choices=["synthetic", "reference", "folds"],
                        help="synthetic-only; real-trained on the tuning cases (scored on the locked set); "
                             "real-trained tuning folds (scored on the tuning set)")
    parser.add_argument("--sets", nargs="+", default=["tuning", "locked"], choices=["tuning", "locked"],
                        help="real sets scored (the reference part scores the locked set, the folds the tuning set)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the profile's)")
    parser.add_argument("--patches", type=int, default=None, help="training patches per epoch (default: profile)")
    parser.add_argument("--set", dest="changes", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="change recipe fields (Python literals), e.g. learning_rate=0.002")
    parser.add_argument("--synthetic-cases", type=int, default=None, help="synthetic cases (default: profile)")
    parser.add_argument("--synthetic-test", action="store_true", help="also score the synthetic test patients")
    parser.add_argument("--checkpoint", type=Path, nargs="+", default=[],
                        help="also score these checkpoints (e.g. notebook 04's or 06's) on --sets")
    parser.add_argument("--real", type=Path, nargs="+", default=REAL_FOLDERS, help="folders of the real cases")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for data, caches and trained models (default: a temporary folder)")
    parser.add_argument("--data", type=Path, default=None,
                        help="synthetic dataset folder (default: WORK/synthetic-<profile>); reused while the "
                             "generator's code is unchanged")
    parser.add_argument("--reuse", action="store_true", help="score models an identical earlier run left in --work")
    parser.add_argument("--workers", type=int, default=None, help="generator processes (default: up to 2)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: free cores)")
    parser.add_argument("--tag", default=None, help="name of the per-case CSV (default: a timestamp)")
    parser.add_argument("--csv", type=Path, default=None, help="per-case scores file")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Parse the arguments, train, score and print the tables."""
    import torch

    from braintools.models.checkpoints import load_model
    from braintools.profiles import get_profile
    from braintools.runtime import free_cpu_threads
    from braintools.training.recipes import UNet3DRecipe

    args = parse_args(argv)
    csv = args.csv or ROOT / "build" / "realism" / f"{args.tag or time.strftime('%Y%m%d-%H%M%S')}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    threads = args.threads or free_cpu_threads()
    torch.set_num_threads(threads)
    changes = {key: value for key, value in (("epochs", args.epochs), ("patches_per_epoch", args.patches))
               if value is not None}
    nested = {}
    for change in args.changes:
        key, _, value = change.partition("=")
        field, _, part = key.partition(".")  # appearance.gamma_probability=0.5 changes a field of a field
        if part:
            nested.setdefault(field, {})[part] = ast.literal_eval(value)
        else:
            changes[key] = ast.literal_eval(value)
    profile = get_profile(args.profile)
    if args.synthetic_cases:
        profile = dataclasses.replace(profile, n_cases=args.synthetic_cases)
    base = UNet3DRecipe.from_profile(profile, **changes)
    base = dataclasses.replace(base, **{field: dataclasses.replace(getattr(base, field), **parts)
                                        for field, parts in nested.items()})
    changes.update({f"{field}.{key}": value for field, parts in nested.items() for key, value in parts.items()})
    began = time.perf_counter()
    real = real_cases(args.real)
    commit = commit_label()
    print(f"commit {commit}, {threads} PyTorch threads, {os.cpu_count()} cpus; seeds {args.seeds}; parts "
          f"{args.parts}; sets {args.sets}; recipe {base.epochs} epochs x {base.patches_per_epoch} patches, "
          f"changes {changes or 'none'}; generator source {generator_fingerprint()}", flush=True)
    temporary = None if args.work else tempfile.TemporaryDirectory(prefix="realism-")
    work = args.work or Path(temporary.name)
    tables = []
    try:
        if "synthetic" in args.parts:
            folder = args.data or work / f"synthetic-{profile.name}"
            cases, split, cache_dir, generated = synthetic_data(profile, folder, args.workers)
            print(f"synthetic data: {len(cases)} cases ({generated:.0f} s), train {len(split.train)} / "
                  f"validation {len(split.val)} / test {len(split.test)}", flush=True)
            for seed in args.seeds:
                recipe = dataclasses.replace(base, seed=seed)
                model, minutes = trained_model(recipe, cache_dir, split.train, split.val,
                                               work / "runs" / f"synthetic-{seed}", args.reuse,
                                               {"generator": generator_fingerprint(), "profile": profile.name,
                                                "n_cases": profile.n_cases})
                clock = time.perf_counter()
                for real_set in args.sets:
                    tables.append(score(model, [real[c] for c in REAL_SETS[real_set]], "synthetic-only", seed,
                                        real_set))
                if args.synthetic_test:
                    test_cases = [cases[c] for c in split.test]
                    tables.append(score(model, test_cases, "synthetic-only", seed, "synthetic test"))
                print(f"synthetic-only seed {seed}: trained {minutes:.1f} min, scored in "
                      f"{(time.perf_counter() - clock) / 60:.1f} min", flush=True)
        if "reference" in args.parts or "folds" in args.parts:
            cache_dir = real_cache(args, work)
            jobs = [("reference", REFERENCE_SPLIT["train"], REFERENCE_SPLIT["val"], LOCKED_CASES, "locked")
                    ] if "reference" in args.parts and "locked" in args.sets else []
            if "folds" in args.parts and "tuning" in args.sets:
                jobs += [(f"fold{k}", f["train"], f["val"], f["test"], "tuning") for k, f in enumerate(tuning_folds())]
            for seed in args.seeds:
                recipe = dataclasses.replace(base, seed=seed)
                for name, train_ids, val_ids, test_ids, real_set in jobs:
                    model, minutes = trained_model(recipe, cache_dir, train_ids, val_ids,
                                                   work / "runs" / f"real-{name}-{seed}", args.reuse, {})
                    tables.append(score(model, [real[c] for c in test_ids], "real-trained", seed, real_set))
                    print(f"real-trained {name} seed {seed}: trained {minutes:.1f} min on {len(train_ids)} + "
                          f"{len(val_ids)}, scored on {len(test_ids)} {real_set} cases", flush=True)
        for path in args.checkpoint:
            model = load_model(path)
            for real_set in args.sets:
                tables.append(score(model, [real[c] for c in REAL_SETS[real_set]], path.stem, 0, real_set))
    finally:
        if temporary is not None:
            temporary.cleanup()
    if not tables:
        raise SystemExit("nothing to do: choose --parts or --checkpoint")
    per_case = pd.concat(tables, ignore_index=True).assign(commit=commit)
    per_case.to_csv(csv, index=False)
    print_tables(per_case, [*args.sets, "synthetic test"])
    print(f"settings: {variants()['network'].describe()}")
    print(f"per-case scores: {csv}; total {(time.perf_counter() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
