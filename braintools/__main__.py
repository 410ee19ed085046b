"""Command line for the long jobs of the course: ``python -m braintools <command> --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from braintools.errors import DataError


def _synthesize(args: argparse.Namespace) -> None:
    from braintools import paths, synthetic
    from braintools.profiles import get_profile

    profile = get_profile(args.profile)
    root = synthetic.generate_dataset(
        root=Path(args.out) if args.out else paths.synthetic_dir(profile.name),
        n_cases=profile.n_cases if args.cases is None else args.cases,
        n_validation_cases=profile.n_validation_cases if args.validation_cases is None else args.validation_cases,
        grid_shape=profile.grid_shape,
        seed=profile.seed if args.seed is None else args.seed,
        workers=args.workers,
    )
    print(f"synthetic dataset ready: {root}")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one sub-command per long job."""
    parser = argparse.ArgumentParser(prog="python -m braintools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synthesize", help="generate the synthetic BraTS dataset (both Kaggle layouts)")
    synth.add_argument("--profile", help="ci | course | kaggle (default: BRAINTOOLS_PROFILE or course)")
    synth.add_argument("--out", help="output folder (default: BRAINTOOLS_DATA/synthetic/<profile>)")
    synth.add_argument("--cases", type=int, help="training cases (default: the profile's)")
    synth.add_argument("--validation-cases", type=int, help="validation cases without segmentation")
    synth.add_argument("--seed", type=int, help="dataset seed (same seed, same bytes)")
    synth.add_argument("--workers", type=int, help="worker processes (default: up to 2)")
    synth.set_defaults(run=_synthesize)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, with a one-line message)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DataError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
