"""Training throughput with 1 and with N processes (DistributedDataParallel launched by torchrun).

    .venv/bin/python benchmarks/ddp.py                  # 1 vs 2 processes on the CPU (or every GPU when CUDA is here)
    .venv/bin/python benchmarks/ddp.py --processes 4 --steps 20

Each process trains the course's 3D U-Net recipe (the profile's patch, shrink and features) on random patches for
``--steps`` optimizer steps after ``--warmup`` steps; rank 0 prints patches per second for all processes together.
On a CPU the processes share the cores (each gets cores / N threads), so the ratio shows what DDP costs or gains
for the same hardware; on GPUs each process owns one device.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import torch


def worker(args: argparse.Namespace) -> None:
    """One process of a run: time ``args.steps`` training steps on random patches; rank 0 prints JSON."""
    from braintools._private import distributed
    from braintools.models.checkpoints import build_model
    from braintools.profiles import get_profile
    from braintools.training import recipes
    from braintools.training.train import train_one_epoch

    device = distributed.setup(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // distributed.get_world_size()))
    recipe = recipes.UNet3DRecipe.from_profile(get_profile(args.profile))
    model = distributed.wrap_model(build_model(recipe.spec()).to(device), device)
    items = [(torch.randn(4, *recipe.patch_size), torch.randint(0, 4, recipe.patch_size, dtype=torch.uint8))
             for _ in range(recipe.batch_size * distributed.get_world_size() * (args.steps + args.warmup))]
    loss_fn, optimizer = recipe.loss(), torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    from braintools.runtime import autocast_dtype

    dtype = autocast_dtype(device)  # as train.fit: bfloat16 where native, else float16 with a scaler (CUDA only)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    warm = recipes.loader(items[: len(items) * args.warmup // (args.steps + args.warmup)], recipe.batch_size, True,
                          device)
    timed = recipes.loader(items[len(items) * args.warmup // (args.steps + args.warmup):], recipe.batch_size, True,
                           device)
    model.train()
    train_one_epoch(model, warm, loss_fn, optimizer, scaler, progress=False, amp_dtype=dtype)
    distributed.barrier()
    began = time.perf_counter()
    train_one_epoch(model, timed, loss_fn, optimizer, scaler, progress=False, amp_dtype=dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    distributed.barrier()
    seconds = time.perf_counter() - began
    if distributed.is_main_process():
        patches = len(timed) * recipe.batch_size * distributed.get_world_size()
        print(json.dumps({"processes": distributed.get_world_size(), "device": str(device.type),
                          "patches": patches, "seconds": seconds, "patches_per_s": patches / seconds}))
    distributed.teardown()


def run(processes: int, args: argparse.Namespace) -> dict:
    """Run the worker in ``processes`` processes (torchrun when more than one); return rank 0's figures."""
    common = ["--worker", "--profile", args.profile, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    common += ["--device", args.device] if args.device else []
    if processes == 1:
        command = [sys.executable, __file__, *common]
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                   f"--master_port={port}", __file__, *common]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{result.stderr[-2000:]}")
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=None, help="default: 2 on a CPU, every GPU with CUDA")
    parser.add_argument("--profile", default="course", help="whose 3D recipe to time (default: course)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", help="cpu or cuda (default: the best available)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    processes = args.processes or (torch.cuda.device_count() if torch.cuda.is_available() else 2)
    one = run(1, args)
    many = run(processes, args)
    print(f"{one['device']}, profile {args.profile}, {args.steps} steps per process after {args.warmup} warm-up:")
    for figures in (one, many):
        print(f"  {figures['processes']} process(es): {figures['patches_per_s']:.2f} patches/s "
              f"({figures['patches']} patches in {figures['seconds']:.1f} s)")
    print(f"  ratio {processes} processes / 1 process: {many['patches_per_s'] / one['patches_per_s']:.2f}")


if __name__ == "__main__":
    main()
