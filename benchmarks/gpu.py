"""Training patches per second and full-volume inference seconds per case, on the device at hand (GPU or CPU).

    python benchmarks/gpu.py --profile kaggle        # on a GPU: the kaggle profile's 3D recipe at full size
    python benchmarks/gpu.py --profile colab
    python benchmarks/gpu.py --profile ci            # on a CPU: small enough for a minute
    python benchmarks/gpu.py --profile kaggle-cpu --case ../shared/data/brats_sample/Brats18_2013_3_1

Training: the profile's 3D recipe (``recipes.UNet3DRecipe.from_profile``: network, patch, batch, deep-supervision
loss, AdamW) trained by ``train.train_one_epoch`` as ``train.fit`` runs it (autocast in ``runtime.autocast_dtype``,
a GradScaler for float16, cuDNN autotuning), on ``PatchDataset3D`` patches of brain-like in-memory volumes (cropped
to their brain box when the profile's cache is), through ``recipes.loader`` with the profile's DataLoader workers
and pinned memory. Printed twice: with that data pipeline, and for the model step alone on batches already on the
device (the ceiling; a gap between the two means data loading is the bottleneck).
Inference: ``inference.segment.segment_case`` with the default ``InferenceSettings`` (the model's patch as window,
overlap 0.5, Gaussian blending, the brain box + 8 voxels, no TTA) on a volume of the profile's grid (brain-like, or a
real NIfTI case with ``--case``), median of ``--cases`` runs after one warm-up. Weights are random: time does not
depend on them.
Also printed: the FLOPs of one training patch and of the inference (counted with ``torch.utils.flop_counter`` on
the same network) and the effective TFLOP/s they imply: the figure the README's time estimates need.
Nothing is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from patches import brain_like_volume
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from braintools import runtime
from braintools.cache import store
from braintools.data import io
from braintools.data.preprocess import brain_box
from braintools.datasets.patches3d import PatchDataset3D
from braintools.datasets.volumes import VolumeSource
from braintools.inference import segment
from braintools.inference.sliding_window import window_slices
from braintools.models.checkpoints import build_model
from braintools.profiles import Profile, get_profile
from braintools.training import recipes, train


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timing a GPU without this measures only the queueing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe_device(device: torch.device) -> str:
    """The device in words: GPU name and memory, or the CPU's thread count."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return f"cuda ({properties.name}, {properties.total_memory / 2**30:.1f} GiB)"
    return f"{device.type} ({torch.get_num_threads()} PyTorch threads)"


def training_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one training step (forward and backward) on inputs of ``input_shape``, counted on the meta device."""
    model = copy.deepcopy(model).to("meta").train()
    with FlopCounterMode(display=False) as counter:
        outputs = model(torch.zeros(input_shape, device="meta"))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        sum(output.float().sum() for output in outputs).backward()
    return counter.get_total_flops()


def inference_flops(model: nn.Module, image: np.ndarray, settings: segment.InferenceSettings) -> int:
    """FLOPs of ``segment_case`` on ``image``: one forward pass per window over the brain box, counted on meta."""
    box = brain_box(image, settings.crop_margin)
    window = segment.inference_window(model.spec, settings)
    windows = window_slices([part.stop - part.start for part in box], window, [settings.overlap] * 3)
    meta = copy.deepcopy(model).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(torch.zeros((1, image.shape[0], *window), device="meta"))
    return counter.get_total_flops() * len(windows)


def training_volumes(profile: Profile, count: int = 4) -> VolumeSource:
    """Brain-like z-scored volumes of the profile's grid, cropped to their brain box when its cache is."""
    items = []
    for seed in range(count):
        image, classes = brain_like_volume(profile.grid_shape, seed)
        if profile.crop_cache:
            box = store.content_box(image, classes)
            image, classes = np.ascontiguousarray(image[(slice(None), *box)]), np.ascontiguousarray(classes[box])
        items.append((f"volume_{seed}", image, classes))
    return VolumeSource.from_arrays(items, normalised=True)


def train_patches_per_second(recipe: recipes.UNet3DRecipe, profile: Profile, device: torch.device, steps: int,
                             warmup: int) -> tuple[float, float]:
    """Patches per second of the recipe's training step: with the data pipeline, and on batches already on device."""
    torch.manual_seed(0)
    model = build_model(recipe.spec()).to(device)
    loss_fn = recipe.loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    dtype = runtime.autocast_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    dataset = PatchDataset3D(training_volumes(profile), recipe.patch_size, recipe.batch_size * (steps + warmup),
                             recipe.tumour_probability, seed=recipe.seed)
    dataset.build_indices()
    model.train()

    def epoch(loader) -> float:
        synchronize(device)
        began = time.perf_counter()
        train.train_one_epoch(model, loader, loss_fn, optimizer, scaler, recipe.accumulation_steps, progress=False,
                              amp_dtype=dtype)
        synchronize(device)
        return time.perf_counter() - began

    with runtime.cudnn_autotune(device):
        warm = recipes.loader(torch.utils.data.Subset(dataset, range(recipe.batch_size * warmup)),
                              recipe.batch_size, False, device, recipe.num_workers)
        timed = recipes.loader(torch.utils.data.Subset(dataset, range(recipe.batch_size * warmup, len(dataset))),
                               recipe.batch_size, False, device, recipe.num_workers)
        epoch(warm)
        with_data = recipe.batch_size * steps / epoch(timed)
        batches = [(images.to(device), classes.to(device)) for images, classes in timed]
        model_only = recipe.batch_size * steps / epoch(batches)
    return with_data, model_only


def inference_seconds(model: nn.Module, image: np.ndarray, repeats: int, device: torch.device) -> list[float]:
    """Seconds of ``segment_case`` with the default settings, each of ``repeats`` runs after one warm-up."""
    times = []
    with runtime.cudnn_autotune(device):
        for run in range(repeats + 1):
            synchronize(device)
            began = time.perf_counter()
            segment.segment_case(model, image)
            synchronize(device)
            if run:
                times.append(time.perf_counter() - began)
    return times


def test_volume(profile: Profile, case: str | None) -> tuple[np.ndarray, str]:
    """The volume to segment: a real NIfTI case (raw intensities) or a brain-like one of the profile's grid."""
    if case:
        loaded = io.load_case(io.find_cases(case, warn_missing=False)[0])
        return loaded.image, f"real case {loaded.case_id}"
    image, _ = brain_like_volume(profile.grid_shape, seed=99)
    return image.astype(np.float32), "brain-like volume"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="the profile whose 3D recipe to time (default: "
                                                         "BRAINTOOLS_PROFILE, else course)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps (batches)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps first (cuDNN autotuning)")
    parser.add_argument("--cases", type=int, default=2, help="timed segment_case runs (after one warm-up)")
    parser.add_argument("--case", default=None, help="a NIfTI case folder to segment instead of a brain-like volume")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: idle cores, at least 1)")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    device = runtime.get_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or runtime.free_cpu_threads())
    recipe = recipes.UNet3DRecipe.from_profile(profile)
    dtype = runtime.autocast_dtype(device)
    amp = "off (float32)" if dtype is None else str(dtype).replace("torch.", "") + (
        " + GradScaler" if dtype == torch.float16 else "")
    print(f"device: {describe_device(device)}; AMP {amp}; profile {profile.name}")

    with_data, model_only = train_patches_per_second(recipe, profile, device, args.steps, args.warmup)
    model = build_model(recipe.spec())
    flops = training_flops(model, (1, 4, *recipe.patch_size))
    print(f"training [{profile.name}] {recipe.spec().describe()}, patch {recipe.patch_size}, batch {recipe.batch_size}"
          f": {with_data:.2f} patches/s with the data pipeline ({recipe.num_workers} workers), {model_only:.2f} "
          f"patches/s model step alone ({args.steps} steps); {flops / 1e9:.1f} GFLOP per training patch -> "
          f"{flops * model_only / 1e9:.1f} GFLOP/s effective")

    image, what = test_volume(profile, args.case)
    model = model.to(device)
    times = inference_seconds(model, image, args.cases, device)
    settings = segment.InferenceSettings()
    total = inference_flops(model, image, settings)
    median = statistics.median(times)
    print(f"inference [{profile.name}] segment_case ({settings.describe(model.spec)}) on a {what} "
          f"{tuple(image.shape[1:])}: {median:.2f} s per case (median of {len(times)}, float32); "
          f"{total / 1e9:.1f} GFLOP -> {total / median / 1e9:.1f} GFLOP/s effective")


if __name__ == "__main__":
    main()
