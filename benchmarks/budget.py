"""The disk and time budget of every profile: measured per-case figures, counted FLOPs, and the estimates they give.

    python benchmarks/budget.py                   # the real cases of ../shared/data when present (a few minutes)
    python benchmarks/budget.py --real-cases 3    # fewer real cases

MEASURED here, and printed as such:
- the npy cache of one real patient, whole grid and cropped to its brain box, in bytes, and the CPU seconds
  ``store.convert_case`` takes for it (from uncompressed ``.nii`` files, as Kaggle ships them); the tumour and
  brain slices of each patient (what notebook 04 trains on);
- checkpoint sizes of every model a profile trains: ``<name>_best.pt`` (inference: spec and weights, no optimizer
  state) and ``<name>_last.pt`` (to resume: with AdamW's two moments), written by ``checkpoints.save_checkpoint``;
- FLOPs of one training patch or slice and of one test-case inference of each network (``torch.utils.flop_counter``).

ESTIMATED, and printed as such (no GPU was available): GPU minutes per notebook = FLOPs / an effective speed.
The speed comes from NVIDIA's published nnU-Net figures (``NNUNET_V100``: the 3D U-Net of nnU-Net on 128^3 BraTS
patches, batch 2, one V100 16 GB) divided by the FLOPs of that network (counted here the same way), scaled to each
GPU by the ratios in ``GPUS``. The disk of a profile = patients x measured bytes per patient + measured checkpoints.
Run ``benchmarks/gpu.py`` on the GPU itself to replace an estimate by a measurement.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from gpu import inference_flops, training_flops

from braintools.cache import store
from braintools.cache.sources import nifti_sources
from braintools.data import io
from braintools.data.splits import part_sizes
from braintools.inference.segment import InferenceSettings
from braintools.models.checkpoints import ModelSpec, build_model, save_checkpoint
from braintools.models.unet3d import UNet3D
from braintools.profiles import PROFILES, Profile
from braintools.training import recipes

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_TRAINING_CASES = 369  # BraTS 2020 training patients (Kaggle NIfTI dataset)
# NVIDIA DeepLearningExamples, PyTorch/Segmentation/nnUNet/README.md, "Training performance: NVIDIA DGX-1 (8x V100
# 16GB)": 3D U-Net, 128^3 patches, batch 2, 1 GPU: 5.49 patches/s with AMP, 2.32 in FP32.
NNUNET_V100 = {"amp": 5.49, "fp32": 2.32}
NNUNET_FEATURES = (32, 64, 128, 256, 320, 320)  # its BraTS network: 6 levels of two 3^3 convolutions, deep supervision
# Speed relative to a V100, per use (assumptions; README "Profiles, time and disk"):
# P100: FP32 peak 9.3 / 15.7 TFLOPS; Pascal has no tensor cores, and a public Wide-ResNet run on Kaggle's P100 took
#   47.0 min in FP32 and 47.6 min with AMP: no gain from float16, so FP32 speed for training and inference.
# T4: training with AMP at memory bandwidth 320 / 900 GB/s (3D convolutions + InstanceNorm are bandwidth-bound; the
#   same public run was 1.5x faster on a T4 with AMP than on the P100, which this ratio reproduces); inference in
#   FP32 (segment_case uses no autocast) at the FP32 peak ratio 8.1 / 15.7.
GPUS = {"P100": {"train": ("fp32", 9.3 / 15.7), "infer": ("fp32", 9.3 / 15.7)},
        "T4": {"train": ("amp", 320 / 900), "infer": ("fp32", 8.1 / 15.7)}}


def decompressed_cases(roots: list[Path], count: int, folder: Path) -> list[io.CaseFiles]:
    """The first ``count`` real cases, copied as uncompressed ``.nii`` into ``folder`` (outside the project)."""
    cases = [case for root in roots if root.is_dir() for case in io.find_cases(root, warn_missing=False)][:count]
    for case in cases:
        target = folder / case.case_id
        target.mkdir(parents=True)
        for path in [*case.images.values(), case.seg]:
            name = path.name[:-3] if path.name.endswith(".gz") else path.name
            with (gzip.open(path) if path.name.endswith(".gz") else open(path, "rb")) as source, \
                    open(target / name, "wb") as copy:
                shutil.copyfileobj(source, copy)
    return io.find_cases(folder, warn_missing=False)


def measure_cases(cases: list[io.CaseFiles], folder: Path) -> pd.DataFrame:
    """Per real case: cache bytes and CPU seconds whole and cropped, brain share of the grid, tumour/brain slices."""
    rows = []
    sources = {source.case_id: source for source in nifti_sources(cases[0].folder.parent)}
    for case in cases:
        row = {"case": case.case_id}
        for crop in (False, True):
            out = folder / ("cropped" if crop else "whole")
            out.mkdir(exist_ok=True)
            began = time.process_time()
            entry = store.convert_case(sources[case.case_id], out, crop=crop)
            key = "cropped" if crop else "whole"
            row[f"{key} s"] = time.process_time() - began
            row[f"{key} MB"] = (entry["image"]["bytes"] + entry["labels"]["bytes"]) / 1e6
            if crop:
                row["box share"] = np.prod(entry["image"]["shape"][1:]) / np.prod(entry["grid"])
                labels = np.load(out / entry["labels"]["file"], mmap_mode="r")  # no manifest: read the files
                image = np.load(out / entry["image"]["file"], mmap_mode="r")
                tumour = np.any(labels > 0, axis=(0, 1))
                brain = np.any(np.asarray(image) != 0, axis=(0, 1, 2))
                row["tumour slices"], row["brain slices"] = int(tumour.sum()), int(brain.sum())
        rows.append(row)
    return pd.DataFrame(rows).set_index("case")


def inflated_spec(profile: Profile) -> ModelSpec:
    """The network notebook 06 fine-tunes: the profile's 2D model inflated to 3D (I3D rule)."""
    return ModelSpec("inflated3d", architecture=profile.architecture_2d, encoder=profile.encoder_2d,
                     shrink=profile.downsample_2d, window=tuple(profile.roi_size_inflated),
                     inflation=dict(mode="i3d", depth_kernel=profile.depth_kernel_inflated, depth_padding="replicate",
                                    downsample_depth=True))


def profile_specs(profile: Profile) -> dict[str, ModelSpec]:
    """The model spec of each checkpoint a profile's notebooks write (04, 05, 06)."""
    return {"unet2d": recipes.UNet2DRecipe.from_profile(profile, encoder_weights=None).spec(),
            "unet3d": recipes.UNet3DRecipe.from_profile(profile).spec(), "inflated3d": inflated_spec(profile)}


def checkpoint_megabytes(spec: ModelSpec, folder: Path) -> tuple[float, float]:
    """MB of a model's ``_best.pt`` (no optimizer) and ``_last.pt`` (with AdamW's state), written for real."""
    model = build_model(spec)
    optimizer = torch.optim.AdamW(model.parameters())
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()  # AdamW keeps two moments per parameter once it has stepped
    best, last = folder / f"{spec.kind}_best.pt", folder / f"{spec.kind}_last.pt"
    save_checkpoint(best, model, None, 1, [])
    save_checkpoint(last, model, optimizer, 1, [])
    sizes = best.stat().st_size / 1e6, last.stat().st_size / 1e6
    best.unlink()
    last.unlink()
    return sizes


def forward_flops(spec: ModelSpec, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass (validation, inference), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(spec).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(input_shape, device="meta"))
    return counter.get_total_flops()


def effective_flops(gpu: str, use: str) -> float:
    """Estimated FLOP/s of a GPU for training ("train") or inference ("infer"): the nnU-Net reference, scaled."""
    reference = training_flops(UNet3D(4, 4, NNUNET_FEATURES, deep_supervision=True), (1, 4, 128, 128, 128))
    mode, ratio = GPUS[gpu][use]
    return reference * NNUNET_V100[mode] * ratio


def notebook_flops(profile: Profile, slices: pd.Series, test_image: np.ndarray) -> dict[str, dict[str, float]]:
    """Training and inference FLOPs of notebooks 04-07 under a profile (training upper bound: no early stop)."""
    n = profile.max_cases or REAL_TRAINING_CASES
    train_n, val_n, test_n = part_sizes(n)
    specs = profile_specs(profile)
    r2, r3 = recipes.UNet2DRecipe.from_profile(profile), recipes.UNet3DRecipe.from_profile(profile)
    size = r2.slice_size
    slice_train, slice_forward = (training_flops(build_model(specs["unet2d"]), (1, 4, size, size)),
                                  forward_flops(specs["unet2d"], (1, 4, size, size)))
    empty = slices["brain slices"].mean() - slices["tumour slices"].mean()
    per_patient = {fraction: slices["tumour slices"].mean() + fraction * empty for fraction in (0.1, 0.25, 1.0)}
    settings = InferenceSettings()
    unet3d_case = inference_flops(build_model(specs["unet3d"]), test_image, settings)
    inflated_case = inference_flops(build_model(specs["inflated3d"]), test_image, settings)
    patch_forward = forward_flops(specs["unet3d"], (1, 4, *r3.patch_size))
    inflated_patch = tuple(profile.patch_size_inflated)
    return {
        "04": {"train": r2.epochs * (r2.slices_per_epoch or train_n * per_patient[0.1]) * slice_train
               + r2.epochs * val_n * per_patient[0.25] * slice_forward,
               "infer": (2 * val_n + 2 * test_n) * per_patient[1.0] * slice_forward},  # thresholds + test volumes
        "05": {"train": r3.epochs * (r3.patches_per_epoch * training_flops(build_model(specs["unet3d"]),
                                                                            (1, 4, *r3.patch_size))
                                     + r3.val_patches * patch_forward),
               "infer": test_n * unet3d_case},
        "06": {"train": profile.epochs_inflated * (
                   profile.patches_per_epoch_inflated * training_flops(build_model(specs["inflated3d"]),
                                                                       (1, 4, *inflated_patch))
                   + profile.val_patches_inflated * forward_flops(specs["inflated3d"], (1, 4, *inflated_patch))),
               "infer": test_n * (inflated_case + unet3d_case)},
        "07": {"train": 0.0, "infer": test_n * 3 * unet3d_case},  # plain + flip TTA (2 passes)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-cases", type=int, default=13, help="real cases to measure (from ../shared/data)")
    parser.add_argument("--profiles", nargs="+", default=["ci", "course", "colab", "kaggle"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    pd.set_option("display.width", 160)
    roots = [SHARED / "brats_sample", SHARED / "brats_dev"]
    with tempfile.TemporaryDirectory() as folder:
        cases = decompressed_cases(roots, args.real_cases, Path(folder) / "nii")
        if not cases:
            raise SystemExit(f"no real cases under {SHARED}: the per-case figures need them")
        measured = measure_cases(cases, Path(folder))
        test_image = io.load_case(cases[0]).image
        print(f"MEASURED: the npy cache of {len(measured)} real BraTS cases (one CPU core, uncompressed .nii):")
        print(measured.round(3).to_string())
        mean = measured.mean()
        print(f"mean per patient: whole grid {mean['whole MB']:.1f} MB in {mean['whole s']:.2f} CPU s; cropped "
              f"{mean['cropped MB']:.1f} MB ({mean['box share']:.0%} of the grid) in {mean['cropped s']:.2f} CPU s; "
              f"{mean['tumour slices']:.0f} tumour slices of {mean['brain slices']:.0f} brain slices\n")

        rows = []
        for name in args.profiles:
            for kind, spec in profile_specs(PROFILES[name]).items():
                best, last = checkpoint_megabytes(spec, Path(folder))
                rows.append({"profile": name, "model": kind, "spec": spec.describe(), "best MB": best, "last MB": last})
        checkpoints = pd.DataFrame(rows)
        print("MEASURED: checkpoint sizes (save_checkpoint; _best.pt has no optimizer state):")
        print(checkpoints.round(1).to_string(index=False), "\n")

    print("ESTIMATED: effective speed (nnU-Net V100 reference, scaled): " + ", ".join(
        f"{gpu} {use} {effective_flops(gpu, use) / 1e12:.2f} TFLOP/s" for gpu in GPUS for use in ("train", "infer")))
    for name in args.profiles:
        profile = PROFILES[name]
        n = profile.max_cases or (REAL_TRAINING_CASES if profile.source == "kaggle" else profile.n_cases)
        per_case = mean["cropped MB"] if profile.crop_cache else mean["whole MB"]
        grid_share = np.prod(profile.grid_shape) / np.prod((240, 240, 155))
        cache_gb = n * per_case * grid_share / 1e3
        model_mb = checkpoints[checkpoints.profile == name][["best MB", "last MB"]].to_numpy().sum()
        print(f"{name}: npy cache {n} patients x {per_case * grid_share:.1f} MB = {cache_gb:.1f} GB "
              f"(+ the HDF5 lesson cache of notebook 03); checkpoints {model_mb / 1e3:.2f} GB; cache conversion "
              f"{n * (mean['cropped s'] if profile.crop_cache else mean['whole s']) / profile.cache_workers / 60:.1f}"
              f" min with {profile.cache_workers} workers at this machine's per-core speed")
        if profile.source != "kaggle":
            continue
        flops = notebook_flops(profile, measured, test_image)
        for gpu in GPUS:
            minutes = {notebook: (work["train"] / effective_flops(gpu, "train")
                                  + work["infer"] / effective_flops(gpu, "infer")) / 60
                       for notebook, work in flops.items()}
            print(f"  {gpu}: " + ", ".join(f"{notebook} {value:.0f} min" for notebook, value in minutes.items())
                  + f" (GPU compute, upper bound without early stopping); total {sum(minutes.values()) / 60:.1f} h")


if __name__ == "__main__":
    main()
