"""Throughput of 2D training (slices per second): the model's training step and the slice data pipeline.

Model: forward + Dice/CE loss + backward + AdamW step on random (batch, 4, size, size) inputs, on the CPU
(with ``--threads`` PyTorch threads; default: the cores other programs leave idle) and, when available, on
CUDA (with AMP). Defaults are the ``course`` profile's 2D settings (``braintools.profiles``).
Data: ``SliceDataset`` reading in-memory z-scored 240 x 240 x 155 volumes, padding to ``size`` and
augmenting, in one process (DataLoader workers multiply it).

    python benchmarks/train2d.py          # course profile: Unet resnet18, 256 inputs shrunk 4x to 64, batch 8
    python benchmarks/train2d.py --encoder resnet34 --size 256 --downsample 1 --batch 8 --devices cpu --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from braintools.datasets.augment import SliceAugmenter
from braintools.datasets.slices2d import SliceDataset
from braintools.datasets.volumes import VolumeSource
from braintools.models.smp2d import create_smp_model
from braintools.models.wrappers import Downsampled
from braintools.profiles import get_profile
from braintools.runtime import free_cpu_threads
from braintools.training.losses import DiceCELoss


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_step_seconds(architecture: str, encoder: str, size: int, batch: int, steps: int, warmup: int,
                       device: torch.device, downsample: int = 1) -> list[float]:
    """Seconds of each measured training step (after ``warmup`` unmeasured ones) on inputs ``size * downsample``."""
    torch.manual_seed(0)
    model = Downsampled(create_smp_model(architecture, encoder), downsample).to(device).train()
    size = size * downsample
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    loss_fn = DiceCELoss()
    images = torch.randn(batch, 4, size, size, device=device)
    classes = torch.randint(0, 4, (batch, size, size), device=device)
    times = []
    for step in range(warmup + steps):
        _synchronize(device)
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            loss = loss_fn(model(images), classes)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        _synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - began)
    return times


def data_slices_per_second(size: int, n_slices: int) -> float:
    """Slices per second of ``SliceDataset`` with augmentation over two in-memory BraTS-size volumes."""
    rng = np.random.default_rng(0)
    volumes = [(f"case_{i}", rng.normal(size=(4, 240, 240, 155)).astype(np.float16),
                rng.integers(0, 4, (240, 240, 155), dtype=np.uint8)) for i in range(2)]
    source = VolumeSource.from_arrays(volumes, normalised=True)
    slices = [(v, z) for v in range(2) for z in range(155)]
    dataset = SliceDataset(source, slices, size, SliceAugmenter(), seed=0)
    order = rng.permutation(len(slices))[:n_slices]
    dataset[0]  # fill the volume cache
    began = time.perf_counter()
    for index in order:
        dataset[int(index)]
    return n_slices / (time.perf_counter() - began)


def main() -> None:
    course = get_profile("course")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default=course.architecture_2d)
    parser.add_argument("--encoder", default=course.encoder_2d)
    parser.add_argument("--size", type=int, default=course.image_size_2d)
    parser.add_argument("--batch", type=int, default=course.batch_size_2d)
    parser.add_argument("--downsample", type=int, default=course.downsample_2d,
                        help="the network sees inputs shrunk this many times (wrappers.Downsampled)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: idle cores, at least 1)")
    parser.add_argument("--steps", type=int, default=3, help="measured training steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    parser.add_argument("--data-slices", type=int, default=100, help="slices for the data benchmark (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or free_cpu_threads())
    for name in args.devices.split(","):
        if name == "cuda" and not torch.cuda.is_available():
            print("train2d model step: cuda not available, skipped")
            continue
        device = torch.device(name)
        times = model_step_seconds(args.architecture, args.encoder, args.size, args.batch, args.steps,
                                   args.warmup, device, args.downsample)
        median = statistics.median(times)
        detail = f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
        print(f"train2d model step: {args.architecture}/{args.encoder} {args.size}x{args.size} "
              f"(inputs {args.size * args.downsample}, shrunk {args.downsample}x) batch {args.batch} "
              f"on {name} ({detail}, AMP {'on' if device.type == 'cuda' else 'off'}): "
              f"{args.batch / median:.1f} slices/s ({median:.2f} s/step, median of {len(times)})")
    if args.data_slices:
        full_size = args.size * args.downsample
        rate = data_slices_per_second(full_size, args.data_slices)
        print(f"train2d data: SliceDataset 240->{full_size} + augmentation, 1 process: {rate:.0f} slices/s")


if __name__ == "__main__":
    main()
