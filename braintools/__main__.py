"""Command line for the long jobs of the course: ``python -m braintools <command> --help``.

    python -m braintools synthesize --profile ci          # the synthetic dataset of a profile
    python -m braintools precache --profile course        # NIfTI cases -> memory-mappable .npy cache
    python -m braintools train --model unet3d             # writes outputs/<profile>/checkpoints/unet3d_best.pt
    python -m braintools predict                          # best checkpoint -> predictions/<case_id>.nii.gz
    python -m braintools evaluate                         # predictions vs ground truth -> per-case CSV + summary

Every command reads its sizes from the profile (``--profile`` or ``BRAINTOOLS_PROFILE``) and its folders from
``BRAINTOOLS_DATA``; bad arguments or input end with a one-line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from braintools.errors import DataError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (plus exit status 2), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


# --------------------------------------------------------------------------- helpers


def _profile_and_paths(args: argparse.Namespace, given: str | None = None):
    """The profile of ``--profile`` and its dataset paths (generated for synthetic profiles).

    ``given``: a folder the user named (``--input``, ``--gt``); then the paths are ``None``, so that no synthetic
    dataset is generated (or downloaded) for nothing.
    """
    from braintools import download
    from braintools.profiles import get_profile

    profile = get_profile(args.profile)
    return profile, None if given else download.get_dataset(profile)


def _split(profile, paths):
    """The course's shared patient split (``outputs/<profile>/split.json``)."""
    from braintools import io, splits
    from braintools.paths import outputs_dir

    case_ids = [case.case_id for case in io.find_cases(paths.nifti_train, require_seg=True, warn_missing=False)]
    if not case_ids:
        raise DataError(f"{paths.nifti_train}: no case with a segmentation")
    return splits.course_split(case_ids, outputs_dir(profile.name) / "split.json", nifti_train=paths.nifti_train,
                               seed=profile.seed)


def _checkpoint_dir(args: argparse.Namespace, profile) -> Path:
    from braintools.paths import outputs_dir

    return Path(args.checkpoint_dir) if args.checkpoint_dir else outputs_dir(profile.name) / "checkpoints"


def _positive(text: str) -> int:
    """argparse type: a positive integer."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _channel_order(text: str) -> tuple[str, ...] | str:
    """argparse type: ``infer``, or the four modalities in the order of the HDF5 channels, e.g. flair,t1,t1ce,t2."""
    from braintools.io import MODALITIES

    if text.strip().lower() == "infer":
        return "infer"
    order = tuple(part.strip().lower() for part in text.split(","))
    if sorted(order) != sorted(MODALITIES):
        raise argparse.ArgumentTypeError(f"must be 'infer' or the four modalities {','.join(MODALITIES)} in the "
                                         f"order of the HDF5 channels, comma-separated; got {text!r}")
    return order


def _h5_channel_order(choice: tuple[str, ...] | str, h5_dir: Path) -> tuple[str, ...]:
    """The channel order to read the HDF5 slices with: ``choice``, or inferred from the data's signatures."""
    from braintools import io, signatures

    if choice != "infer":
        return choice
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(h5_dir))
    print(vote.describe())
    if not vote.conclusive:
        raise DataError(f"{h5_dir}: cannot infer the HDF5 channel order from the intensity signatures; "
                        "give it with --channel-order, e.g. --channel-order t1,t1ce,t2,flair")
    return vote.order


def _overlap(text: str) -> float:
    """argparse type: a window overlap in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


# --------------------------------------------------------------------------- commands


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


def _precache(args: argparse.Namespace) -> None:
    from braintools import cache, download

    profile, paths = _profile_and_paths(args, given=args.input)
    if args.source == "h5":
        folder = download.locate_h5_dir(args.input)[0] if args.input else paths.h5_dir
        sources = cache.h5_sources(folder, channel_order=_h5_channel_order(args.channel_order, folder))
    else:
        folder = Path(args.input) if args.input else paths.nifti_train
        sources = cache.nifti_sources(folder, require_seg=not args.include_unlabelled)
    if not sources:
        raise DataError(f"{folder}: no case to cache")
    cache_dir = Path(args.cache_dir) if args.cache_dir else cache.default_cache_dir(profile.name)
    report = cache.precache(sources, cache_dir, workers=args.workers)
    print(report.summary())


def _train(args: argparse.Namespace) -> None:
    from braintools import cache, recipes
    from braintools.device import get_device

    profile, paths = _profile_and_paths(args)
    split = _split(profile, paths)
    cache_dir = Path(args.cache_dir) if args.cache_dir else cache.default_cache_dir(profile.name)
    recipes.ensure_cached(paths.nifti_train, cache_dir, split.train + split.val)
    checkpoint_dir = _checkpoint_dir(args, profile)
    device = get_device(args.device)
    print(f"training {args.model} on {len(split.train)} patients (validation {len(split.val)}) on {device}, "
          f"profile {profile.name}")
    if args.model == "unet3d":
        _, history = recipes.train_unet3d(profile, cache_dir, split.train, split.val, checkpoint_dir,
                                          epochs=args.epochs, device=device)
    else:
        _, history = recipes.train_unet2d(profile, cache_dir, split.train, split.val, checkpoint_dir,
                                          epochs=args.epochs, device=device)
    best = max(history, key=lambda row: row.get("val_dice_mean", float("-inf")))
    print(f"best epoch {best['epoch']}: validation Dice mean {best['val_dice_mean']:.4f} (on patches/slices); "
          f"checkpoint {checkpoint_dir / (args.model + '_best.pt')}")


def _predict(args: argparse.Namespace) -> None:
    import functools

    from tqdm.auto import tqdm

    from braintools import io, postprocess, predict
    from braintools.device import get_device
    from braintools.paths import outputs_dir

    profile, paths = _profile_and_paths(args, given=args.input)
    cases = _cases_to_predict(args, profile, paths)
    device = get_device(args.device)
    order = [args.model] if args.model else predict.CHECKPOINT_ORDER
    loaded = predict.load_best_model(_checkpoint_dir(args, profile), profile, device, order, args.roi, args.overlap)
    if loaded is None:
        names = ", ".join(f"{name}_best.pt" for name in order)
        raise FileNotFoundError(f"{_checkpoint_dir(args, profile)}: no checkpoint {names}; "
                                "run 'python -m braintools train' first")
    out_dir = Path(args.out) if args.out else outputs_dir(profile.name) / "predictions"
    cleanup = (functools.partial(postprocess.postprocess_classes, min_et_voxels=args.min_et_voxels)
               if args.min_et_voxels else None)
    print(f"model: {loaded.description}; {len(cases)} case(s) -> {out_dir}")
    for files in tqdm(cases, desc="predict"):
        case = io.load_case(files, with_seg=False)
        predict.predict_case(loaded.model, case, loaded.roi_size, loaded.overlap, sw_batch_size=profile.sw_batch_size,
                             tta=args.tta, flip_axes=profile.tta_flip_axes, postprocess=cleanup,
                             out_path=out_dir / f"{case.case_id}.nii.gz", crop_margin=8, progress=args.verbose)
    print(f"wrote {len(cases)} prediction(s) to {out_dir}")


def _cases_to_predict(args: argparse.Namespace, profile, paths) -> list:
    """The ``CaseFiles`` named by ``--cases`` / ``--input`` (default: the test patients of the course split)."""
    from braintools import io

    root = Path(args.input) if args.input else paths.nifti_train
    if not root.is_dir():
        raise DataError(f"{root}: input folder not found")
    found = {case.case_id: case for case in io.find_cases(root, warn_missing=False)}
    if args.cases == ["all"] or (args.input and not args.cases):
        wanted = list(found)
    else:
        wanted = args.cases or list(_split(profile, paths).test)
    unknown = [case_id for case_id in wanted if case_id not in found]
    if unknown:
        raise DataError(f"{root}: no case {', '.join(unknown[:5])} (found {len(found)} cases)")
    if not wanted:
        raise DataError(f"{root}: no case to predict")
    return [found[case_id] for case_id in wanted]


def _evaluate(args: argparse.Namespace) -> None:
    import pandas as pd

    from braintools import metrics
    from braintools.paths import outputs_dir

    profile, paths = _profile_and_paths(args, given=args.gt)
    pred_dir = Path(args.pred_dir) if args.pred_dir else outputs_dir(profile.name) / "predictions"
    csv_path = Path(args.csv) if args.csv else outputs_dir(profile.name) / "evaluation" / "per_case.csv"
    table = metrics.evaluate_folder(pred_dir, args.gt or paths.nifti_train, args.convention, csv_path=csv_path)
    summary = metrics.summarize(table)
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(summary.round(4).to_string(index=False))
    print(f"{len(table)} case(s), empty-region convention {args.convention!r}; per-case table: {csv_path}")


# --------------------------------------------------------------------------- parser


def _add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="ci | course | kaggle (default: BRAINTOOLS_PROFILE or course)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one sub-command per long job."""
    parser = _Parser(prog="python -m braintools", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = commands.add_parser("synthesize", help="generate the synthetic BraTS dataset (both Kaggle layouts)")
    _add_profile(synth)
    synth.add_argument("--out", help="output folder (default: BRAINTOOLS_DATA/synthetic/<profile>)")
    synth.add_argument("--cases", type=int, help="training cases (default: the profile's)")
    synth.add_argument("--validation-cases", type=int, help="validation cases without segmentation")
    synth.add_argument("--seed", type=int, help="dataset seed (same seed, same bytes)")
    synth.add_argument("--workers", type=int, help="worker processes (default: up to 2)")
    synth.set_defaults(run=_synthesize)

    pre = commands.add_parser("precache", help="convert cases to the memory-mappable .npy cache (resumable)")
    _add_profile(pre)
    pre.add_argument("--source", choices=("nifti", "h5"), default="nifti",
                     help="NIfTI cases (ids = case ids, used by the split) or HDF5 slice volumes")
    pre.add_argument("--input", help="NIfTI folder, or with --source h5 a folder holding the HDF5 slices "
                     "(default: the profile's data; with --input the profile's dataset is not generated)")
    pre.add_argument("--channel-order", type=_channel_order, default="infer",
                     help="with --source h5: modality of each HDF5 image channel, e.g. flair,t1,t1ce,t2, or 'infer' "
                          "(default) to infer it from the intensity signatures of the first volumes")
    pre.add_argument("--include-unlabelled", action="store_true", help="also cache cases without a segmentation")
    pre.add_argument("--cache-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/npy_cache")
    pre.add_argument("--workers", type=_positive, help="processes (default: the profile's cache_workers)")
    pre.set_defaults(run=_precache)

    train = commands.add_parser("train", help="train a 3D U-Net or the 2D model; writes <model>_best.pt")
    _add_profile(train)
    train.add_argument("--model", choices=("unet3d", "unet2d"), default="unet3d")
    train.add_argument("--epochs", type=_positive, help="default: the profile's epochs_3d / epochs_2d")
    train.add_argument("--cache-dir", help="npy cache (built when missing)")
    train.add_argument("--checkpoint-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/checkpoints")
    train.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    train.set_defaults(run=_train)

    pred = commands.add_parser("predict", help="segment cases with the best checkpoint; writes <case_id>.nii.gz")
    _add_profile(pred)
    pred.add_argument("--cases", nargs="+", help="case ids, or 'all' (default: the test patients of the split)")
    pred.add_argument("--input", help="folder of NIfTI cases (default: the profile's training folder; with --input "
                      "the profile's dataset is not generated)")
    pred.add_argument("--out", help="default: BRAINTOOLS_DATA/outputs/<profile>/predictions")
    pred.add_argument("--model", choices=("unet3d", "inflated3d", "unet2d"),
                      help="checkpoint to use (default: the first found of unet3d, inflated3d, unet2d)")
    pred.add_argument("--checkpoint-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/checkpoints")
    pred.add_argument("--roi", type=_positive, nargs=3,
                      help="window X Y Z, rounded up to what the network accepts (default: the profile's roi_size)")
    pred.add_argument("--overlap", type=_overlap, help="window overlap in [0, 1) (default: the profile's)")
    pred.add_argument("--tta", action="store_true", help="flip test-time augmentation (profile's tta_flip_axes)")
    pred.add_argument("--min-et-voxels", type=int, default=0,
                      help="relabel predicted ET smaller than this as necrosis (0: no post-processing)")
    pred.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    pred.add_argument("--verbose", action="store_true", help="a progress bar per case as well")
    pred.set_defaults(run=_predict)

    ev = commands.add_parser("evaluate", help="Dice, HD95, sensitivity, specificity per case -> CSV + summary")
    _add_profile(ev)
    ev.add_argument("--pred-dir", help="predictions <case_id>.nii.gz (default: outputs/<profile>/predictions)")
    ev.add_argument("--gt", help="folder with the ground-truth cases (default: the profile's training folder)")
    ev.add_argument("--convention", choices=("brats", "ignore"), default="brats",
                    help="empty regions: 'brats' (both empty: Dice 1) or 'ignore' (empty truth: left out)")
    ev.add_argument("--csv", help="per-case table (default: outputs/<profile>/evaluation/per_case.csv)")
    ev.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, with a one-line message)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, message already printed)
        return int(stop.code or 0)
    try:
        args.run(args)
    except (DataError, ValueError, FileNotFoundError) as error:
        message = " ".join(str(error).split())  # one line, even for multi-line messages
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
