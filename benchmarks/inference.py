"""Time braintools' sliding-window inference against MONAI's on the same model, volume and settings.

Prints one line per device (CPU, and CUDA when available) with both times and the ratio ours / MONAI
(best of ``--repeats`` interleaved runs each, after one warm-up; wall-clock and process CPU time), the largest
difference between the two outputs, and one line comparing HD95 on a 240 x 240 x 155 volume.
Nothing is asserted: this is a measurement.

    python benchmarks/inference.py                                # 4 x 64 x 64 x 48 volume, a small 3D U-Net
    python benchmarks/inference.py --shape 4 240 240 155 --roi 128 128 64
    python benchmarks/inference.py --threads 1 --repeats 9       # steadier on a shared machine
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from monai.inferers import sliding_window_inference as monai_sliding_window
from monai.metrics import compute_hausdorff_distance
from torch import nn

from braintools.evaluation.hd95 import hd95
from braintools.inference.sliding_window import sliding_window_inference


def make_model(features: tuple[int, ...]) -> nn.Module:
    """The course's 3D U-Net with random weights (a small conv stack if that module is unavailable)."""
    torch.manual_seed(0)
    try:
        from braintools.models.unet3d import UNet3D
    except ImportError:
        return nn.Sequential(nn.Conv3d(4, features[0], 3, padding=1), nn.ReLU(), nn.Conv3d(features[0], 4, 1))
    return UNet3D(in_channels=4, num_classes=4, features=features)


def timed(function, device: torch.device) -> tuple[float, float, object]:
    """Wall-clock and process CPU seconds taken by ``function()`` (CUDA work included), and its result.

    CPU time is the steadier figure on a machine shared with other jobs (they slow the wall clock, not it).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare_sliding_window(args: argparse.Namespace, device: torch.device) -> None:
    """Run ours and MONAI's alternately on ``device`` and print times, ratio and output difference."""
    model = make_model(tuple(args.features)).eval().to(device)
    volume = torch.randn(1, *args.shape, generator=torch.Generator().manual_seed(0)).to(device)
    settings = dict(overlap=args.overlap, mode=args.mode)

    def ours():
        return sliding_window_inference(volume, args.roi, model, sw_batch_size=args.sw_batch_size, **settings)

    def theirs():
        with torch.no_grad():  # ours runs under no_grad too: compare like with like
            return monai_sliding_window(volume, args.roi, args.sw_batch_size, model, **settings)

    wall = {"ours": [], "monai": []}
    cpu = {"ours": [], "monai": []}
    outputs = {}
    for repeat in range(args.repeats + 1):  # the first round warms up both and is not counted
        order = [("ours", ours), ("monai", theirs)]
        for name, function in order if repeat % 2 else order[::-1]:
            wall_seconds, cpu_seconds, outputs[name] = timed(function, device)
            if repeat:
                wall[name].append(wall_seconds)
                cpu[name].append(cpu_seconds)
    difference = (outputs["ours"] - torch.as_tensor(outputs["monai"])).abs().max().item()
    print(f"sliding window [{device.type}] volume {tuple(args.shape)} roi {tuple(args.roi)} overlap {args.overlap} "
          f"{args.mode} sw_batch_size {args.sw_batch_size} U-Net {tuple(args.features)} "
          f"threads {torch.get_num_threads()}, best of {args.repeats}: {_ratio_text(wall, 'wall')}; "
          f"{_ratio_text(cpu, 'CPU')}; max |difference| {difference:.2e}")


def _ratio_text(seconds: dict[str, list[float]], kind: str) -> str:
    best_ours, best_monai = min(seconds["ours"]), min(seconds["monai"])
    return (f"{kind} ours {best_ours:.3f} s, MONAI {best_monai:.3f} s (medians {statistics.median(seconds['ours']):.3f}"
            f" / {statistics.median(seconds['monai']):.3f} s), ratio ours/MONAI {best_ours / best_monai:.3f}")


def compare_hd95() -> None:
    """Time one HD95 of two tumour-like masks on the full BraTS grid, ours against MONAI's."""
    pred, gt = np.zeros((240, 240, 155), bool), np.zeros((240, 240, 155), bool)
    pred[60:140, 70:150, 40:100] = True
    gt[65:145, 60:140, 45:105] = True
    gt[200:205, 20:25, 130:135] = True  # a distant satellite lesion
    as_batch = lambda mask: torch.from_numpy(mask)[None, None].float()  # noqa: E731
    functions = {
        "ours": lambda: hd95(pred, gt, (1.0, 1.0, 1.0)),
        "monai": lambda: compute_hausdorff_distance(as_batch(pred), as_batch(gt), include_background=True,
                                                    percentile=95, spacing=(1.0, 1.0, 1.0)).item(),
    }
    wall, cpu, values = {"ours": [], "monai": []}, {"ours": [], "monai": []}, {}
    for _ in range(3):
        for name, function in functions.items():
            wall_seconds, cpu_seconds, values[name] = timed(function, torch.device("cpu"))
            wall[name].append(wall_seconds)
            cpu[name].append(cpu_seconds)
    print(f"HD95 [cpu] 240x240x155 ({values['ours']:.4f} mm ours, {values['monai']:.4f} mm MONAI), best of 3: "
          f"{_ratio_text(wall, 'wall')}; {_ratio_text(cpu, 'CPU')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[4, 64, 64, 48], help="C X Y Z of the volume")
    parser.add_argument("--roi", type=int, nargs=3, default=[32, 32, 32], help="window X Y Z")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--mode", choices=["gaussian", "constant"], default="gaussian")
    parser.add_argument("--sw-batch-size", type=int, default=2)
    parser.add_argument("--features", type=int, nargs="+", default=[8, 16, 32], help="U-Net channels per level")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA comparison")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # one thread gives steadier times on a busy machine
    compare_sliding_window(args, torch.device("cpu"))
    if torch.cuda.is_available() and not args.no_cuda:
        compare_sliding_window(args, torch.device("cuda"))
    compare_hd95()


if __name__ == "__main__":
    main()
