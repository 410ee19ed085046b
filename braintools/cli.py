"""Command line for the long jobs of the course: ``python -m braintools <command> --help`` (notebook 07).

    python -m braintools synthesize --profile ci          # the synthetic dataset of a profile
    python -m braintools synthesize --release 2023 --out F # ... written as BraTS 2023 ships its cases
    python -m braintools precache --profile course        # NIfTI cases -> memory-mappable .npy cache
    python -m braintools train --model unet3d             # writes outputs/<profile>/checkpoints/unet3d_best.pt
    python -m braintools predict                          # best checkpoint -> predictions/<case_id>.nii.gz
    python -m braintools evaluate                         # predictions vs ground truth -> per-case CSV + summary

Every command reads its sizes from the profile (``--profile`` or ``BRAINTOOLS_PROFILE``) and its folders from
``BRAINTOOLS_DATA``. A user's mistake (bad argument, missing or unreadable file, full disk) ends with a one-line
``error: ...`` and exit status 2; ``predict`` and ``evaluate`` go on past a case that fails, report every failure
at the end and exit with status 1.
"""

from __future__ import annotations

import argparse
import errno
import sys

from braintools._private import commands
from braintools._private.commands import MODELS
from braintools.data.releases import RELEASES
from braintools.errors import DataError
from braintools.profiles import PROFILES

EXIT_FAILED_CASES = 1
EXIT_BAD_INPUT = 2
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (plus exit status 2), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


# --------------------------------------------------------------------------- argument types


def _positive(text: str) -> int:
    """argparse type: a positive integer."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _overlap(text: str) -> float:
    """argparse type: a window overlap in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def _channel_order(text: str) -> tuple[str, ...] | str:
    """argparse type: ``infer``, or the four modalities in the order of the HDF5 channels, e.g. flair,t1,t1ce,t2."""
    from braintools.data.io import MODALITIES

    if text.strip().lower() == "infer":
        return "infer"
    order = tuple(part.strip().lower() for part in text.split(","))
    if sorted(order) != sorted(MODALITIES):
        raise argparse.ArgumentTypeError(f"must be 'infer' or the four modalities {','.join(MODALITIES)} in the "
                                         f"order of the HDF5 channels, comma-separated; got {text!r}")
    return order


def _device(text: str):
    """argparse type: a torch device that exists here (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda, cuda:<n> or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: Apple MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: use cpu, cuda or mps")
    return device


# --------------------------------------------------------------------------- parser


def _add_profile(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    parser.add_argument("--profile", default=default,
                        help=f"{' | '.join(PROFILES)} (default: BRAINTOOLS_PROFILE or course)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one sub-command per long job."""
    parser = _Parser(prog="python -m braintools", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_profile(parser, default=None)  # accepted before the sub-command too
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = subcommands.add_parser("synthesize", help="generate the synthetic BraTS dataset (both Kaggle layouts, "
                                   "or --release 2021 / 2023)")
    _add_profile(synth)
    synth.add_argument("--out", help="output folder (default: BRAINTOOLS_DATA/synthetic/<profile>)")
    synth.add_argument("--cases", type=_positive, help="training cases (default: the profile's)")
    synth.add_argument("--validation-cases", type=_non_negative, help="validation cases without segmentation")
    synth.add_argument("--seed", type=int, help="dataset seed (same seed, same bytes)")
    synth.add_argument("--workers", type=_positive, help="worker processes (default: up to 2)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a dataset made with other parameters in the output folder")
    synth.add_argument("--release", choices=tuple(RELEASES),
                       help="BraTS release of the layout: 2020 (the two Kaggle datasets, NIfTI and HDF5), 2021 "
                            "(<case>_<t1|t1ce|t2|flair|seg>.nii.gz) or 2023 (<case>-<t1n|t1c|t2w|t2f|seg>.nii.gz, ET = "
                            "3); default: the profile's (ci-2021, ci-2023 ... write the newer layouts)")
    synth.set_defaults(run=commands.synthesize)

    pre = subcommands.add_parser("precache", help="convert cases to the memory-mappable .npy cache (resumable)")
    _add_profile(pre)
    pre.add_argument("--source", choices=("nifti", "h5"), default="nifti",
                     help="NIfTI cases (ids = case ids, used by the split) or HDF5 slice volumes")
    pre.add_argument("--input", help="NIfTI folder, or with --source h5 a folder holding the HDF5 slices "
                     "(default: the profile's data; with --input the profile's dataset is not generated)")
    pre.add_argument("--channel-order", type=_channel_order, default="infer",
                     help="with --source h5: modality of each HDF5 image channel, e.g. flair,t1,t1ce,t2, or 'infer' "
                          "(default) to infer it from the intensity signatures of the first volumes")
    pre.add_argument("--include-unlabelled", action="store_true", help="also cache cases without a segmentation")
    pre.add_argument("--cache-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/npy_cache (npy_cache_h5)")
    pre.add_argument("--workers", type=_positive, help="processes (default: the profile's cache_workers)")
    pre.set_defaults(run=commands.precache)

    train = subcommands.add_parser("train", help="train a 3D U-Net or the 2D model; resumes an interrupted run; "
                                              "torchrun --nproc_per_node=N -m braintools train: N processes (DDP)")
    _add_profile(train)
    train.add_argument("--model", choices=("unet3d", "unet2d"), default="unet3d")
    train.add_argument("--epochs", type=_positive, help="default: the profile's epochs_3d / epochs_2d")
    train.add_argument("--cache-dir", help="npy cache (built when missing; default: the profile's)")
    train.add_argument("--checkpoint-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/checkpoints")
    train.add_argument("--restart", action="store_true",
                       help="start over instead of resuming <model>_last.pt (the folder's best stays until the new "
                            "run has one, then is kept as <model>_best.previous.pt)")
    train.add_argument("--device", type=_device, help="cpu, cuda, mps (default: the best available)")
    train.set_defaults(run=commands.train)

    pred = subcommands.add_parser("predict", help="segment cases with the best checkpoint; writes <case_id>.nii.gz")
    _add_profile(pred)
    pred.add_argument("--cases", nargs="+", help="case ids, or 'all' (default: the test patients of the split)")
    pred.add_argument("--input", help="a folder of NIfTI cases in any BraTS release's naming (2018-2021, or 2023: "
                      "t1n/t1c/t2w/t2f); each prediction is written in its case's release's labels (2023: ET = 3) "
                      "(default: the profile's training folder; with --input the profile's dataset is not generated)")
    pred.add_argument("--out", help="default: BRAINTOOLS_DATA/outputs/<profile>/predictions")
    pred.add_argument("--checkpoint", help="a checkpoint file (default: the best of --checkpoint-dir)")
    pred.add_argument("--model", choices=MODELS,
                      help="checkpoint to use (default: the first that loads of unet3d, inflated3d, unet2d)")
    pred.add_argument("--checkpoint-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/checkpoints")
    pred.add_argument("--roi", type=_positive, nargs=3,
                      help="window X Y Z, rounded up to what the network accepts (default: the model's own)")
    pred.add_argument("--overlap", type=_overlap, help="window overlap in [0, 1) (default: 0.5)")
    pred.add_argument("--tta", action="store_true", help="left-right flip test-time augmentation (2 passes)")
    pred.add_argument("--keep-largest", action="store_true", help="keep only the largest whole-tumour component")
    pred.add_argument("--min-et-voxels", type=_non_negative, default=0,
                      help="relabel predicted ET smaller than this as necrosis (0: off)")
    pred.add_argument("--device", type=_device, help="cpu, cuda, mps (default: the best available)")
    pred.add_argument("--verbose", action="store_true", help="a progress bar per case as well")
    pred.set_defaults(run=commands.predict)

    ev = subcommands.add_parser("evaluate", help="Dice, HD95, sensitivity, specificity per case -> CSV + summary")
    _add_profile(ev)
    ev.add_argument("--pred-dir", help="predictions <case_id>.nii.gz (default: outputs/<profile>/predictions)")
    ev.add_argument("--gt", help="folder with the ground-truth cases, any BraTS release; predictions are read in the "
                    "labels of their case's release (default: the profile's training folder)")
    ev.add_argument("--empty-rule", choices=("brats", "ignore"), default="brats",
                    help="empty regions: 'brats' (both empty: Dice 1) or 'ignore' (empty truth: left out)")
    ev.add_argument("--csv", help="per-case table (default: outputs/<profile>/evaluation/per_case.csv)")
    ev.set_defaults(run=commands.evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2: bad input, one line; 1: some cases failed) (notebook 07)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, message already printed)
        return int(stop.code or 0)
    try:
        args.run(args)
    except commands.CaseFailures as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED_CASES
    except (DataError, ValueError, OSError) as error:  # a user's mistake or a full disk: one line, no traceback
        message = " ".join(str(error).split())
        if getattr(error, "filename", None) and str(error.filename) not in message:
            message = f"{error.filename}: {message}"
        if isinstance(error, OSError) and error.errno in _NOT_WRITABLE:
            message += " (this location cannot be written: choose another output location, see --help)"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
