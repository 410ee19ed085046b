"""Throughput of 2D training (slices per second): the model's training step and the slice data pipeline.

Model: forward + Dice/CE loss + backward + AdamW step on random (batch, 4, size, size) inputs, on the CPU
and, when available, on CUDA (with AMP). Data: ``SliceDataset`` reading in-memory z-scored 240 x 240 x 155
volumes, padding to ``size`` and augmenting, in one process (DataLoader workers multiply it).

    python benchmarks/train2d.py                       # course configuration: Unet resnet34, 256, batch 16
    python benchmarks/train2d.py --encoder resnet18 --batch 8 --steps 5 --devices cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from braintools.augment import SliceAugmenter
from braintools.datasets2d import SliceDataset, VolumeSource
from braintools.losses import DiceCELoss
from braintools.models2d import create_smp_model


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_step_seconds(architecture: str, encoder: str, size: int, batch: int, steps: int, warmup: int,
                       device: torch.device) -> list[float]:
    """Seconds of each measured training step (after ``warmup`` unmeasured ones)."""
    torch.manual_seed(0)
    model = create_smp_model(architecture, encoder).to(device).train()
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="Unet")
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="measured training steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    parser.add_argument("--data-slices", type=int, default=100, help="slices for the data benchmark (0: skip)")
    args = parser.parse_args()
    for name in args.devices.split(","):
        if name == "cuda" and not torch.cuda.is_available():
            print("train2d model step: cuda not available, skipped")
            continue
        device = torch.device(name)
        times = model_step_seconds(args.architecture, args.encoder, args.size, args.batch, args.steps,
                                   args.warmup, device)
        median = statistics.median(times)
        detail = f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
        print(f"train2d model step: {args.architecture}/{args.encoder} {args.size}x{args.size} batch {args.batch} "
              f"on {name} ({detail}, AMP {'on' if device.type == 'cuda' else 'off'}): "
              f"{args.batch / median:.1f} slices/s ({median:.2f} s/step, median of {len(times)})")
    if args.data_slices:
        rate = data_slices_per_second(args.size, args.data_slices)
        print(f"train2d data: SliceDataset 240->{args.size} + augmentation, 1 process: {rate:.0f} slices/s")


if __name__ == "__main__":
    main()
