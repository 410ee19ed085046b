"""The command line's commands: what ``python -m braintools <command>`` runs once ``cli`` has parsed the arguments."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

from braintools import paths
from braintools.cache import build
from braintools.cache.sources import h5_sources, nifti_sources
from braintools.data.releases import get_release
from braintools.errors import DataError, DiskFullError
from braintools.inference import records
from braintools.synthetic.dataset import generate_dataset

MODELS = ("unet3d", "inflated3d", "unet2d")  # checkpoint names, in order of preference for predict


class CaseFailures(DataError):
    """Some cases failed while the others were done (``predict``, ``evaluate``): exit status 1 (notebook 07)."""


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
        raise DataError(f"{h5_dir}: cannot tell the HDF5 channel order from the intensity signatures "
                        f"({vote.reason}); give it with --channel-order, e.g. --channel-order t1,t1ce,t2,flair")
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
    raise CaseFailures(f"{len(failures)} of {len(failures) + done} case(s) failed" + (f" ({what})" if done else ""))


def synthesize(args: argparse.Namespace) -> None:
    """Generate the synthetic dataset of a synthetic profile (``synthesize``)."""
    from braintools import paths

    profile = _profile(args)
    if profile.source != "synthetic":
        raise DataError(f"profile {profile.name!r} uses the real Kaggle data; synthesize makes the dataset of a "
                        "synthetic profile (--profile ci or course)")
    release = getattr(args, "release", None) or profile.release
    if args.out is None and release != profile.release:  # the profile's folder holds the profile's layout
        raise DataError(f"--release {release}: profile {profile.name!r} writes the BraTS {profile.release} layout in "
                        f"its folder; give --out FOLDER, or use the profile {profile.name.split('-')[0]}-{release}")
    root = generate_dataset(
        root=Path(args.out) if args.out else paths.synthetic_dir(profile.name),
        n_cases=profile.n_cases if args.cases is None else args.cases,
        n_validation_cases=profile.n_validation_cases if args.validation_cases is None else args.validation_cases,
        grid_shape=profile.grid_shape,
        seed=profile.seed if args.seed is None else args.seed,
        workers=args.workers,
        progress=_progress(),
        overwrite=args.overwrite,
        release=release,
    )
    print(f"synthetic dataset ready ({get_release(release).describe()}): {root}")


def precache(args: argparse.Namespace) -> None:
    """Convert NIfTI cases or HDF5 slice volumes to the npy cache (``precache``)."""
    from braintools import paths
    from braintools.data import download

    profile = _profile(args)
    if args.source == "h5":
        folder = download.locate_h5_dir(args.input)[0] if args.input else download.get_dataset(profile).h5_dir
        if folder is None:
            raise DataError(f"profile {profile.name!r}: BraTS {profile.release} has no HDF5 slice dataset; cache its "
                            "NIfTI cases (--source nifti), or give a folder of HDF5 slices with --input")
        sources = h5_sources(folder, channel_order=_h5_channel_order(args.channel_order, folder))
    else:
        folder = Path(args.input) if args.input else download.get_dataset(profile).nifti_train
        sources = nifti_sources(folder, require_seg=not args.include_unlabelled)
    if not sources:
        raise DataError(f"{folder}: no case to cache")
    default = paths.h5_cache_dir if args.source == "h5" else paths.cache_dir
    cache_dir = Path(args.cache_dir) if args.cache_dir else default(profile.name)
    workers = profile.cache_workers if args.workers is None else args.workers
    report = build.precache(sources, cache_dir, workers=workers, crop=profile.crop_cache, progress=_progress(),
                            raise_on_failure=False)
    print(report.summary().splitlines()[0])  # the failed cases follow on stderr, one line each
    _report_failures(report.failed, len(report.converted) + len(report.skipped), "the others cached")


def train(args: argparse.Namespace) -> None:
    """Train a model of the profile's recipe, resuming an interrupted run (``train``, torchrun-aware)."""
    from braintools._private import distributed

    device = distributed.setup(args.device)  # under torchrun: join the other processes (NCCL or gloo)
    try:
        _train_here(args, device)
    finally:
        distributed.teardown()


def _train_here(args: argparse.Namespace, device) -> None:
    from braintools import course
    from braintools._private import distributed
    from braintools.training import checkpoint_folder, recipes

    profile = _profile(args)
    main_process = distributed.is_main_process()
    say = print if main_process else (lambda *parts, **options: None)
    checkpoint_dir = _checkpoint_dir(args, profile)
    changes = {} if args.epochs is None else {"epochs": args.epochs}
    if args.model == "unet3d":
        recipe, train = recipes.UNet3DRecipe.from_profile(profile, **changes), recipes.train_unet3d
    else:
        recipe, train = recipes.UNet2DRecipe.from_profile(profile, **changes), recipes.train_unet2d
    # the lock and the resume point first: a second run is refused before any data work
    with checkpoint_folder.locked(checkpoint_dir, args.model) if main_process else contextlib.nullcontext():
        start = None if args.restart else recipes.resume_point(checkpoint_dir, args.model, recipe)
        done = _epoch_of(start) if start else 0
        if done >= recipe.epochs:
            say(f"nothing to train: {start} already reached epoch {done} of {recipe.epochs} (--epochs to go on, "
                "--restart to start over)")
            return
        if not main_process:
            distributed.barrier()  # rank 0 prepares the data first (download or synthesis, cache), the others reuse it
        data = course.prepare_data(profile, cache_dir=args.cache_dir, progress=main_process)
        if main_process:
            distributed.barrier()
        processes = distributed.get_world_size()
        say(f"{data.describe()}\ntraining {args.model} on {device}" +
            (f" x {processes} processes (DistributedDataParallel)" if processes > 1 else "") +
            (f", resuming after epoch {done} ({start.name}; --restart to start over)" if start else ""))
        _, history = train(recipe, data.cache_dir, data.split.train, data.split.val, checkpoint_dir, args.model,
                           device, resume=start is not None, progress=main_process)
        best = [row for row in history if row["best"]][-1]
        best_file = paths.checkpoint_file(checkpoint_dir, args.model, "best")
        say(f"best epoch {best['epoch']} by {recipe.monitor} {best[recipe.monitor]:.4f} (validation Dice mean "
            f"{best['val_dice_mean']:.4f} on patches/slices); checkpoint {best_file}")


def _epoch_of(path: Path) -> int:
    from braintools.models.checkpoints import read_checkpoint

    return int(read_checkpoint(path)["epoch"])


def predict(args: argparse.Namespace) -> None:
    """Segment cases with a checkpoint and write ``<case_id>.nii.gz`` files (``predict``)."""
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
        if args.model and loaded.spec.kind != args.model:
            raise DataError(f"{args.checkpoint}: --model {args.model}, but this checkpoint holds a "
                            f"{loaded.spec.kind} ({loaded.spec.describe()}); leave --model out with --checkpoint, "
                            "or give the checkpoint of that model")
    else:
        names = [args.model] if args.model else list(MODELS)
        loaded = checkpoints.load_best_model(_checkpoint_dir(args, profile), names, device)
        if loaded is None:
            wanted = ", ".join(paths.checkpoint_file("", name).name for name in names)
            raise DataError(f"{_checkpoint_dir(args, profile)}: no checkpoint {wanted}; run 'python -m braintools "
                            "train' first")
    chosen = {"window": args.roi, "overlap": args.overlap}
    settings = InferenceSettings(**{key: value for key, value in chosen.items() if value is not None},
                                 tta_flip_axes=(0,) if args.tta else (), keep_largest=args.keep_largest,
                                 min_et_voxels=args.min_et_voxels)
    _check_window(loaded, settings, cases)
    out_dir = Path(args.out) if args.out else paths.predictions_dir(profile.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    records.read_records(out_dir)  # damaged records: one line now, not one failure per case
    made_by = {**records.describe_checkpoint(loaded.path, loaded.epoch), "model": loaded.spec.describe(),
               "settings": settings.describe(loaded.spec)}
    print(f"model: {loaded.description}\nsettings: {made_by['settings']}\n{len(cases)} case(s) -> {out_dir}")
    failures, done = {}, 0
    for files in tqdm(cases, desc="predict", disable=not _progress()):
        try:
            case = io.load_case(files, with_seg=False)
            classes = segment_case(loaded, case.image, settings, progress=args.verbose)
            with records.recording(out_dir, case.case_id, made_by) as path:  # the file and how it was made
                io.save_prediction_nifti(classes, case.affine, path, contiguous=True,
                                         convention=files.release.labels)  # the input's release: BraTS 2023 ET = 3
            done += 1
        except DiskFullError:
            raise  # every other case would fail the same way: one line, exit 2
        except (DataError, ValueError, OSError) as error:
            failures[files.case_id] = str(error)
    print(f"wrote {done} prediction(s) to {out_dir}")
    _report_failures(failures, done, "the others predicted")


def _check_window(loaded, settings, cases: list) -> None:
    """Refuse (one line, before any case) a window far larger than a case's volume (read from its header)."""
    import nibabel as nib

    from braintools.inference.segment import inference_window

    for files in cases:
        try:
            grid = nib.load(next(iter(files.images.values()))).shape[:3]
        except Exception:  # noqa: BLE001 - an unreadable case fails on its own, with its own message
            continue
        try:
            inference_window(loaded.spec, settings, grid)
        except ValueError as error:
            raise DataError(f"{files.case_id}: {error}") from None


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
        found = {case.case_id: case for case in io.find_cases(data.dataset.nifti_train, warn_missing=False)}
        wanted = list(found) if args.cases == ["all"] else (args.cases or list(data.split.test))
        root = data.dataset.nifti_train
    unknown = [case_id for case_id in wanted if case_id not in found]
    if unknown:
        raise DataError(f"{root}: no case {', '.join(unknown[:5])} (found {len(found)} cases)")
    if not wanted:
        raise DataError(f"{root}: no case to predict")
    return [found[case_id] for case_id in wanted]


def evaluate(args: argparse.Namespace) -> None:
    """Score a folder of predictions against ground truth: per-case CSV and summary (``evaluate``)."""
    import pandas as pd

    from braintools import paths
    from braintools.data import download
    from braintools.evaluation import cases

    profile = _profile(args)
    pred_dir = Path(args.pred_dir) if args.pred_dir else paths.predictions_dir(profile.name)
    gt = args.gt or download.get_dataset(profile).nifti_train  # with --gt the profile's dataset is not needed
    csv_path = Path(args.csv) if args.csv else paths.evaluation_dir(profile.name) / "per_case.csv"
    with warnings.catch_warnings(record=True) as caught:  # orphans, cases without prediction, reoriented files
        warnings.simplefilter("always")
        table = cases.evaluate_folder(pred_dir, gt, args.empty_rule, csv_path=csv_path, skip_failures=True,
                                       progress=_progress())
    for warning in caught:
        print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    unpredicted = table.attrs.get("unpredicted", [])
    if unpredicted:
        print(f"warning: {pred_dir}: {len(unpredicted)} case(s) with ground truth under {gt} have no prediction (not "
              f"scored): {', '.join(unpredicted[:10])}{', ...' if len(unpredicted) > 10 else ''}", file=sys.stderr)
    ways = table.groupby(["checkpoint", "settings"], sort=False) if len(table) else []
    if len(ways) > 1:
        print(f"the predictions were made {len(ways)} different ways: scores for each")
    for (checkpoint, settings), part in ways:
        print(f"{len(part)} case(s) predicted by {checkpoint}; {settings}")
        with pd.option_context("display.width", 120, "display.max_columns", 10):
            print(cases.summarize(part).round(4).to_string(index=False))
    written = f"per-case table: {csv_path}" if len(table) else f"per-case table not written ({csv_path} unchanged)"
    print(f"{len(table)} case(s), empty-region rule {args.empty_rule!r}; {written}")
    _report_failures(table.attrs.get("failures", {}), len(table), "the others scored")
