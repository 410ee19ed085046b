"""Benchmark: generate the full-size synthetic ``course`` dataset (both Kaggle layouts) into a temporary folder.

Prints one line: cases per minute, total seconds and bytes written. Usage::

    python benchmarks/synthetic.py                 # 20 training + 2 validation cases, 240 x 240 x 155
    python benchmarks/synthetic.py --cases 4       # a subset (validation cases scale down with it)
    python benchmarks/synthetic.py --grid 64 64 40 --workers 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from braintools.profiles import get_profile
from braintools.synthetic.dataset import generate_dataset


def folder_bytes(root: Path) -> tuple[int, int]:
    """Return (bytes, files) under ``root``."""
    total = files = 0
    for folder, _, names in os.walk(root):
        for name in names:
            total += os.path.getsize(os.path.join(folder, name))
            files += 1
    return total, files


def main() -> None:
    """Parse the arguments, generate, measure and print one line."""
    course = get_profile("course")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=course.n_cases, help="training cases")
    parser.add_argument("--validation", type=int, default=None, help="validation cases (default: scaled)")
    parser.add_argument("--grid", type=int, nargs=3, default=course.grid_shape, help="grid shape")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, cpus))")
    parser.add_argument("--keep", type=Path, default=None, help="generate here and keep the files")
    args = parser.parse_args()
    validation = args.validation
    if validation is None:
        validation = max(1, round(course.n_validation_cases * args.cases / course.n_cases))
    root = args.keep or Path(tempfile.mkdtemp(prefix="braintools-synthetic-"))
    try:
        start = time.perf_counter()
        generate_dataset(root, args.cases, validation, tuple(args.grid), course.seed, args.workers, progress=False)
        seconds = time.perf_counter() - start
        size, files = folder_bytes(root)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    cases = args.cases + validation
    print(
        f"synthetic {args.cases}+{validation} cases {'x'.join(map(str, args.grid))}: {seconds:.1f} s, "
        f"{60 * cases / seconds:.1f} cases/min, {size / 1e9:.2f} GB in {files} files "
        f"(workers={args.workers or 'auto'}, cpus={os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
