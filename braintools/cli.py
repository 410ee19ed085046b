"""Command line for the long jobs of the course: ``python -m braintools <command> --help`` (notebook 07).

    python -m braintools synthesize --profile ci          # the synthetic dataset of a profile
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
import json
import sys
from pathlib import Path

from braintools.atomic import atomic_path
from braintools.errors import DataError
from braintools.profiles import PROFILES

EXIT_FAILED_CASES = 1
EXIT_BAD_INPUT = 2
MODELS = ("unet3d", "inflated3d", "unet2d")  # checkpoint names, in order of preference for predict
SETTINGS_FILE = "prediction_settings.json"  # written next to predictions: how they were made


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (plus exit status 2), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class CaseFailures(DataError):
    """Some cases failed while the others were done (``predict``, ``evaluate``): exit status 1 (notebook 07)."""


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


# --------------------------------------------------------------------------- helpers


def _profile(args: argparse.Namespace):
    from braintools.profiles import get_profile

    return get_profile(args.profile)


def _checkpoint_dir(args: argparse.Namespace, profile) -> Path:
    from braintools import paths

    return Path(args.checkpoint_dir) if args.checkpoint_dir else paths.checkpoint_dir(profile.name)


def _h5_channel_order(choice: tuple[str, ...] | str, h5_dir: Path) -> tuple[str, ...]:
    """The channel order to read the HDF5 slices with: ``choice``, or inferred from the data's signatures."""
    from braintools.data import io, signatures

    if choice != "infer":
        return choice
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(h5_dir))
    print(vote.describe())
    if not vote.conclusive:
        raise DataError(f"{h5_dir}: cannot infer the HDF5 channel order from the intensity signatures; "
                        "give it with --channel-order, e.g. --channel-order t1,t1ce,t2,flair")
    return vote.order


def _progress() -> bool:
    """Progress bars only in a terminal: a notebook or a log file gets the summary lines alone."""
    return sys.stderr.isatty()


def _report_failures(failures: dict[str, str], done: int, what: str) -> None:
    """Print every failed case (one line each) and raise ``CaseFailures`` when there is any."""
    if not failures:
        return
    for case_id, message in failures.items():
        print(f"failed: {case_id}: {' '.join(message.split())}", file=sys.stderr)
    raise CaseFailures(f"{len(failures)} of {len(failures) + done} case(s) failed ({what} of the others done)")


# --------------------------------------------------------------------------- commands


def _synthesize(args: argparse.Namespace) -> None:
    from braintools import paths
    from braintools.data import synthetic

    profile = _profile(args)
    if profile.source != "synthetic":
        raise DataError(f"profile {profile.name!r} uses the real Kaggle data; synthesize makes the dataset of a "
                        "synthetic profile (--profile ci or course)")
    root = synthetic.generate_dataset(
        root=Path(args.out) if args.out else paths.synthetic_dir(profile.name),
        n_cases=profile.n_cases if args.cases is None else args.cases,
        n_validation_cases=profile.n_validation_cases if args.validation_cases is None else args.validation_cases,
        grid_shape=profile.grid_shape,
        seed=profile.seed if args.seed is None else args.seed,
        workers=args.workers,
        progress=_progress(),
        overwrite=args.overwrite,
    )
    print(f"synthetic dataset ready: {root}")


def _precache(args: argparse.Namespace) -> None:
    from braintools import cache, paths
    from braintools.data import download

    profile = _profile(args)
    if args.source == "h5":
        folder = download.locate_h5_dir(args.input)[0] if args.input else download.get_dataset(profile).h5_dir
        sources = cache.h5_sources(folder, channel_order=_h5_channel_order(args.channel_order, folder))
    else:
        folder = Path(args.input) if args.input else download.get_dataset(profile).nifti_train
        sources = cache.nifti_sources(folder, require_seg=not args.include_unlabelled)
    if not sources:
        raise DataError(f"{folder}: no case to cache")
    default = paths.h5_cache_dir if args.source == "h5" else paths.cache_dir
    cache_dir = Path(args.cache_dir) if args.cache_dir else default(profile.name)
    workers = profile.cache_workers if args.workers is None else args.workers
    report = cache.precache(sources, cache_dir, workers=workers, crop=profile.crop_cache, progress=_progress())
    print(report.summary())


def _train(args: argparse.Namespace) -> None:
    from braintools.training import distributed

    device = distributed.setup(args.device)  # under torchrun: join the other processes (NCCL or gloo)
    try:
        _train_here(args, device)
    finally:
        distributed.teardown()


def _train_here(args: argparse.Namespace, device) -> None:
    from braintools import course
    from braintools.training import distributed, recipes

    profile = _profile(args)
    main_process = distributed.is_main_process()
    say = print if main_process else (lambda *parts, **options: None)
    if not main_process:
        distributed.barrier()  # rank 0 prepares the data first (download or synthesis, cache), the others reuse it
    data = course.prepare_data(profile, cache_dir=args.cache_dir, progress=main_process)
    if main_process:
        distributed.barrier()
    checkpoint_dir = _checkpoint_dir(args, profile)
    changes = {} if args.epochs is None else {"epochs": args.epochs}
    if args.model == "unet3d":
        recipe, train = recipes.UNet3DRecipe.from_profile(profile, **changes), recipes.train_unet3d
    else:
        recipe, train = recipes.UNet2DRecipe.from_profile(profile, **changes), recipes.train_unet2d
    start = None if args.restart else recipes.resume_point(checkpoint_dir, args.model, recipe)
    done = _epoch_of(start) if start else 0
    if done >= recipe.epochs:
        say(f"nothing to train: {start} already reached epoch {done} of {recipe.epochs} (--epochs to go on, "
            "--restart to start over)")
        return
    processes = distributed.get_world_size()
    say(f"{data.describe()}\ntraining {args.model} on {device}" +
        (f" x {processes} processes (DistributedDataParallel)" if processes > 1 else "") +
        (f", resuming after epoch {done} ({start.name}; --restart to start over)" if start else ""))
    _, history = train(recipe, data.cache_dir, data.split.train, data.split.val, checkpoint_dir, args.model,
                       device, resume=start is not None, progress=main_process)
    best = [row for row in history if row["best"]][-1]
    say(f"best epoch {best['epoch']} by {recipe.monitor} {best[recipe.monitor]:.4f} (validation Dice mean "
        f"{best['val_dice_mean']:.4f} on patches/slices); checkpoint {checkpoint_dir / (args.model + '_best.pt')}")


def _epoch_of(path: Path) -> int:
    from braintools.models.checkpoints import read_checkpoint

    return int(read_checkpoint(path)["epoch"])


def _predict(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from braintools import paths
    from braintools.data import io
    from braintools.inference.segment import InferenceSettings, segment_case
    from braintools.models import checkpoints
    from braintools.runtime import get_device

    profile = _profile(args)
    cases = _cases_to_predict(args, profile)
    device = args.device or get_device()
    if args.checkpoint:
        loaded = checkpoints.load_model(args.checkpoint, device)
    else:
        names = [args.model] if args.model else list(MODELS)
        loaded = checkpoints.load_best_model(_checkpoint_dir(args, profile), names, device)
        if loaded is None:
            raise DataError(f"{_checkpoint_dir(args, profile)}: no checkpoint "
                            f"{', '.join(name + '_best.pt' for name in names)}; run 'python -m braintools train' first")
    chosen = {"window": args.roi, "overlap": args.overlap}
    settings = InferenceSettings(**{key: value for key, value in chosen.items() if value is not None},
                                 tta_flip_axes=(0,) if args.tta else (), keep_largest=args.keep_largest,
                                 min_et_voxels=args.min_et_voxels)
    out_dir = Path(args.out) if args.out else paths.predictions_dir(profile.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    described = {"checkpoint": str(loaded.path), "model": loaded.spec.describe(),
                 "settings": settings.describe(loaded.spec)}
    print(f"model: {loaded.description}\nsettings: {described['settings']}\n{len(cases)} case(s) -> {out_dir}")
    with atomic_path(out_dir / SETTINGS_FILE) as temporary:  # a full disk names the file, leaves no empty one
        temporary.write_text(json.dumps(described, indent=2) + "\n", encoding="utf-8")
    failures, done = {}, 0
    for files in tqdm(cases, desc="predict", disable=not _progress()):
        try:
            case = io.load_case(files, with_seg=False)
            classes = segment_case(loaded, case.image, settings, progress=args.verbose)
            io.save_prediction_nifti(classes, case.affine, out_dir / f"{case.case_id}.nii.gz", contiguous=True,
                                     convention=loaded.spec.label_convention)
            done += 1
        except (DataError, ValueError, OSError) as error:
            failures[files.case_id] = str(error)
    print(f"wrote {done} prediction(s) to {out_dir}")
    _report_failures(failures, done, "predictions")


def _cases_to_predict(args: argparse.Namespace, profile) -> list:
    """The ``CaseFiles`` named by ``--cases`` / ``--input`` (default: the test patients of the course split)."""
    from braintools import course
    from braintools.data import io

    if args.input:  # a folder of the user's cases: the course dataset is not needed (nor generated)
        found = {case.case_id: case for case in io.find_cases(args.input, warn_missing=False)}
        wanted = list(found) if not args.cases or args.cases == ["all"] else args.cases
        root = args.input
    else:
        data = course.prepare_data(profile, cache_cases=False)
        found = {case.case_id: case for case in io.find_cases(data.data.nifti_train, warn_missing=False)}
        wanted = list(found) if args.cases == ["all"] else (args.cases or list(data.split.test))
        root = data.data.nifti_train
    unknown = [case_id for case_id in wanted if case_id not in found]
    if unknown:
        raise DataError(f"{root}: no case {', '.join(unknown[:5])} (found {len(found)} cases)")
    if not wanted:
        raise DataError(f"{root}: no case to predict")
    return [found[case_id] for case_id in wanted]


def _evaluate(args: argparse.Namespace) -> None:
    import pandas as pd

    from braintools import metrics, paths
    from braintools.data import download

    profile = _profile(args)
    pred_dir = Path(args.pred_dir) if args.pred_dir else paths.predictions_dir(profile.name)
    gt = args.gt or download.get_dataset(profile).nifti_train  # with --gt the profile's dataset is not needed
    csv_path = Path(args.csv) if args.csv else paths.evaluation_dir(profile.name) / "per_case.csv"
    table = metrics.evaluate_folder(pred_dir, gt, args.convention, csv_path=csv_path, skip_failures=True,
                                   progress=_progress())
    made = pred_dir / SETTINGS_FILE
    if made.is_file():
        described = json.loads(made.read_text(encoding="utf-8"))
        print(f"predictions by {described['checkpoint']}; {described['settings']}")
    if len(table):
        with pd.option_context("display.width", 120, "display.max_columns", 10):
            print(metrics.summarize(table).round(4).to_string(index=False))
    print(f"{len(table)} case(s), empty-region convention {args.convention!r}; per-case table: {csv_path}")
    _report_failures(table.attrs.get("failures", {}), len(table), "scores")


# --------------------------------------------------------------------------- parser


def _add_profile(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    parser.add_argument("--profile", default=default,
                        help=f"{' | '.join(PROFILES)} (default: BRAINTOOLS_PROFILE or course)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one sub-command per long job (notebook 07)."""
    parser = _Parser(prog="python -m braintools", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_profile(parser, default=None)  # accepted before the sub-command too
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = commands.add_parser("synthesize", help="generate the synthetic BraTS dataset (both Kaggle layouts)")
    _add_profile(synth)
    synth.add_argument("--out", help="output folder (default: BRAINTOOLS_DATA/synthetic/<profile>)")
    synth.add_argument("--cases", type=_positive, help="training cases (default: the profile's)")
    synth.add_argument("--validation-cases", type=_non_negative, help="validation cases without segmentation")
    synth.add_argument("--seed", type=int, help="dataset seed (same seed, same bytes)")
    synth.add_argument("--workers", type=_positive, help="worker processes (default: up to 2)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a dataset made with other parameters in the output folder")
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
    pre.add_argument("--cache-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/npy_cache (npy_cache_h5)")
    pre.add_argument("--workers", type=_positive, help="processes (default: the profile's cache_workers)")
    pre.set_defaults(run=_precache)

    train = commands.add_parser("train", help="train a 3D U-Net or the 2D model; resumes an interrupted run; "
                                              "torchrun --nproc_per_node=N -m braintools train: N processes (DDP)")
    _add_profile(train)
    train.add_argument("--model", choices=("unet3d", "unet2d"), default="unet3d")
    train.add_argument("--epochs", type=_positive, help="default: the profile's epochs_3d / epochs_2d")
    train.add_argument("--cache-dir", help="npy cache (built when missing; default: the profile's)")
    train.add_argument("--checkpoint-dir", help="default: BRAINTOOLS_DATA/outputs/<profile>/checkpoints")
    train.add_argument("--restart", action="store_true",
                       help="start over instead of resuming <model>_last.pt (the old best is kept as "
                            "<model>_best.previous.pt)")
    train.add_argument("--device", type=_device, help="cpu, cuda, mps (default: the best available)")
    train.set_defaults(run=_train)

    pred = commands.add_parser("predict", help="segment cases with the best checkpoint; writes <case_id>.nii.gz")
    _add_profile(pred)
    pred.add_argument("--cases", nargs="+", help="case ids, or 'all' (default: the test patients of the split)")
    pred.add_argument("--input", help="a folder of NIfTI cases (default: the profile's training folder; with --input "
                      "the profile's dataset is not generated)")
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
    """Run the command line; return the exit status (2: bad input, one line; 1: some cases failed) (notebook 06)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, message already printed)
        return int(stop.code or 0)
    try:
        args.run(args)
    except CaseFailures as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED_CASES
    except (DataError, ValueError, OSError) as error:  # a user's mistake or a full disk: one line, no traceback
        message = " ".join(str(error).split())
        if getattr(error, "filename", None) and str(error.filename) not in message:
            message = f"{error.filename}: {message}"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
