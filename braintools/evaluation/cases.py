"""Score whole cases: segment and score a list of cases (notebooks 05-07), or score a folder of saved predictions
(``python -m braintools evaluate``). Every row says which settings made the prediction and which empty-region rule
scored it, so two numbers are only compared when they were made the same way.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from braintools._private.atomic import atomic_path
from braintools.data import io
from braintools.data.labels import REGIONS, LabelConvention, to_contiguous, validate_labels
from braintools.data.preprocess import brain_mask, normalise_image
from braintools.errors import DataError
from braintools.evaluation.metrics import METRICS, region_metrics
from braintools.evaluation.overlap import check_rule
from braintools.inference import records
from braintools.inference.segment import InferenceSettings, model_and_spec, segment_case
from braintools.models.checkpoints import LoadedModel

AFFINE_TOLERANCE = 1e-3  # mm: a prediction's affine within this of its ground truth's is on the same grid


@dataclass
class Evaluation:
    """What ``evaluate_cases`` returns: one row per case and variant, and the predicted class maps if kept."""

    table: pd.DataFrame
    predictions: dict[str, dict[str, np.ndarray]]  # variant -> case id -> contiguous classes
    failures: dict[str, str] = field(default_factory=dict)  # case id -> why it could not be scored

    def summary(self, metric: str = "Dice") -> pd.DataFrame:
        """Mean ``metric`` of WT, TC and ET per variant, with the number of cases and the settings."""
        columns = [f"{metric}_{region}" for region in REGIONS]
        grouped = self.table.groupby("variant", sort=False)
        table = grouped[columns].mean()
        table.insert(0, "cases", grouped.size())
        table["settings"] = grouped["settings"].first()
        return table

    def score_line(self, variant: str | None = None, metric: str = "Dice") -> str:
        """One line for a variant: mean WT / TC / ET, the number of cases and the settings that produced it."""
        summary = self.summary(metric)
        row = summary.iloc[0] if variant is None else summary.loc[variant]
        values = " / ".join(f"{row[f'{metric}_{region}']:.3f}" for region in REGIONS)
        failed = f"; {len(self.failures)} case{'s' if len(self.failures) > 1 else ''} failed" if self.failures else ""
        return f"{metric} WT / TC / ET {values} (mean of {row['cases']} cases{failed}; {row['settings']})"


def evaluate_cases(
    model: nn.Module | LoadedModel,
    cases: Sequence[io.CaseFiles | io.Case],
    settings: InferenceSettings | Mapping[str, InferenceSettings] | None = None,
    empty: str = "brats",
    keep_predictions: bool = False,
    progress: bool = True,
) -> Evaluation:
    """Segment every case with ``segment_case`` and score it; one table row per case and settings variant (notebook 04).

    Args:
        model: a ``LoadedModel`` or a model built by ``checkpoints.build_model``.
        cases: ``io.CaseFiles`` (loaded one at a time) or loaded ``io.Case`` objects with a segmentation.
        settings: one ``InferenceSettings`` (default: the defaults), or several by name (``{"plain": s, "+ TTA":
            s.replace(...)}``): variants that differ only in post-processing share one network pass.
        empty: empty-region rule of the metrics (``overlap.EMPTY_RULES``).
        keep_predictions: also return every predicted class map (``Evaluation.predictions``).

    The table has ``case_id``, ``variant``, the Dice / HD95 / sensitivity / specificity of WT, TC, ET
    (spacing from the case's affine), ``seconds`` (network time of the variant's pass), ``settings`` and
    ``empty_rule`` columns. A ``CaseFiles`` that cannot be loaded (or has no segmentation) is left out with a
    warning and its error kept in ``Evaluation.failures``; the other cases are scored.
    """
    settings = InferenceSettings() if settings is None else settings
    variants = {"default": settings} if isinstance(settings, InferenceSettings) else dict(settings)
    _, spec = model_and_spec(model)
    rows, predictions, failures = [], {name: {} for name in variants}, {}
    for item in tqdm(cases, desc="evaluate", disable=not progress):
        if isinstance(item, io.CaseFiles):
            try:  # a case whose files cannot be read is reported; the cases scored before and after are kept
                case = io.load_case(item)
                if case.seg is None:
                    raise DataError(f"{item.folder}: case {item.case_id} has no segmentation to evaluate against")
            except DataError as error:
                failures[item.case_id] = str(error)
                warnings.warn(f"not scored: {item.case_id}: {error}", stacklevel=2)
                continue
        else:
            case = item
        if case.seg is None:
            raise ValueError(f"{case.case_id}: no segmentation to evaluate against")
        truth, image = to_contiguous(case.seg), normalise_image(case.image)
        brain = brain_mask(image)
        passes: dict[tuple, tuple[np.ndarray, float]] = {}
        for name, variant in variants.items():
            key = variant.network_settings()
            if key not in passes:
                began = time.perf_counter()
                network_only = variant.replace(keep_largest=False, rim_voxels=0, min_component=0, min_et_voxels=0)
                raw = segment_case(model, image, network_only, normalised=True)
                passes[key] = (raw, time.perf_counter() - began)
            raw, seconds = passes[key]
            classes = variant.postprocess(raw, brain)
            scores = region_metrics(classes, truth, spacing=case.affine, empty=empty)
            rows.append({"case_id": case.case_id, "variant": name, **scores, "seconds": seconds,
                         "settings": variant.describe(spec), "empty_rule": empty})
            if keep_predictions:
                predictions[name][case.case_id] = classes
    return Evaluation(pd.DataFrame(rows), predictions, failures)


def evaluate_folder(
    pred_dir: str | os.PathLike,
    gt_root: str | os.PathLike,
    empty: str = "brats",
    labels: LabelConvention | None = None,
    csv_path: str | os.PathLike | None = None,
    progress: bool = True,
    skip_failures: bool = False,
) -> pd.DataFrame:
    """Score every prediction ``<case_id>.nii[.gz]`` in ``pred_dir`` against its case under ``gt_root`` (notebook 07).

    Args:
        pred_dir: folder of predicted segmentations with BraTS labels, named after the case.
        gt_root: folder searched with ``io.find_cases`` for the ground-truth ``*_seg`` files.
        empty: empty-region rule (``overlap.EMPTY_RULES``; written in an ``empty_rule`` column).
        labels: label values of both predictions and ground truth; default: those of each ground-truth case's
            release (``CaseFiles.release``: ET = 4 up to BraTS 2021, 3 in BraTS 2023), as ``predict`` writes them.
        csv_path: also write the table there (atomic write); a table without a single case never replaces an
            earlier file (it is kept, and a warning says so).
        progress: show a tqdm progress bar.
        skip_failures: a case whose files cannot be read or do not match is left out and its error kept in
            ``table.attrs["failures"]`` (``{case_id: message}``), instead of stopping everything.

    Returns:
        One row per case: ``case_id``, ``Dice_WT`` ... ``Specificity_ET``, ``checkpoint`` and ``settings`` (how the
        prediction was made, from the folder's ``prediction_settings.json``: ``records.how_made``), ``empty_rule``.
        Spacing comes from the ground-truth affine. A prediction stored with other axes than its ground truth (RAS
        against LPS) is reoriented to the ground truth's, with a warning; one on another grid fails. Predictions
        without ground truth are named in a warning and in ``table.attrs["orphans"]``, cases with ground truth but
        no prediction in ``table.attrs["unpredicted"]``.
    """
    check_rule(empty)
    predictions = _prediction_files(pred_dir)
    made = records.read_records(pred_dir)  # a damaged record file stops here, before any scoring
    truths = {case.case_id: case for case in io.find_cases(gt_root, require_seg=True, warn_missing=False)}
    orphans = sorted(set(predictions) - set(truths))
    if orphans:
        warnings.warn(f"{pred_dir}: no ground truth under {gt_root} for {len(orphans)} prediction(s): "
                      f"{', '.join(orphans[:10])}", stacklevel=2)
    unpredicted = sorted(set(truths) - set(predictions))  # named by the command line (a notebook may predict a few)
    matched = [case_id for case_id in predictions if case_id in truths]
    if not matched:
        raise DataError(f"{pred_dir}: no prediction matches a case with a segmentation under {gt_root}")
    rows, failures = [], {}
    for case_id in tqdm(matched, desc="evaluate", disable=not progress):
        try:
            truth_files = truths[case_id]
            convention = truth_files.release.labels if labels is None else labels
            predicted, truth, affine = _load_pair(predictions[case_id], truth_files.seg, convention)
        except DataError as error:
            if not skip_failures:
                raise
            failures[case_id] = str(error)
            continue
        rows.append({"case_id": case_id, **region_metrics(predicted, truth, affine, empty),
                     **records.how_made(made, case_id, predictions[case_id]), "empty_rule": empty})
    table = pd.DataFrame(rows, columns=None if rows else ["case_id", "checkpoint", "settings", "empty_rule"])
    table.attrs.update(failures=failures, orphans=orphans, unpredicted=unpredicted)
    if csv_path is not None:
        if rows:
            write_csv(table, csv_path)
        else:
            kept = "; the earlier table is kept" if Path(csv_path).exists() else ""
            warnings.warn(f"{csv_path}: not written, no case could be scored{kept}", stacklevel=2)
    return table


def summarize(per_case: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, median and case count per metric and region of an ``evaluate_folder`` table (NaN skipped).
    Introduced in notebook 07.

    Returns:
        Columns ``metric, region, mean, std, median, n_cases, empty_rule`` (``n_cases``: non-NaN values).
    """
    rules = per_case["empty_rule"].unique() if "empty_rule" in per_case else []
    if len(rules) != 1:
        raise ValueError(f"per_case needs one 'empty_rule' column value, found {list(rules)}")
    rows = []
    for metric in METRICS:
        for region in REGIONS:
            column = f"{metric}_{region}"
            if column not in per_case:
                continue
            values = per_case[column].astype(float)
            rows.append({"metric": metric, "region": region, "mean": values.mean(), "std": values.std(),
                         "median": values.median(), "n_cases": int(values.notna().sum()), "empty_rule": rules[0]})
    if not rows:
        raise ValueError(f"per_case has no metric columns such as 'Dice_WT'; columns: {list(per_case.columns)}")
    return pd.DataFrame(rows)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV without its index, atomically (readers never see half a file) (notebook 07).

    A table without rows never replaces an existing file (``DataError``; the file is kept).
    """
    if not len(table) and Path(path).exists():
        raise DataError(f"{path}: not replaced by a table without rows (the earlier file is kept)")
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)
    return Path(path)


def _prediction_files(pred_dir: str | os.PathLike) -> dict[str, Path]:
    """Map case ids to prediction files ``<case_id>.nii`` or ``<case_id>.nii.gz`` in ``pred_dir``."""
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: prediction folder not found")
    files = {}
    for path in sorted(folder.iterdir()):
        for suffix in (".nii.gz", ".nii"):
            if path.name.endswith(suffix) and not path.name.startswith("."):
                files[path.name[: -len(suffix)]] = path
                break
    if not files:
        raise DataError(f"{folder}: no predictions found (expected files named <case_id>.nii.gz)")
    return files


def _load_pair(pred_path: Path, gt_path: Path, labels: LabelConvention) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load a prediction and its ground truth as contiguous classes, checked, plus the ground truth's voxel sizes."""
    predicted, pred_affine = io.load_nifti(pred_path)
    truth, gt_affine = io.load_nifti(gt_path)
    predicted = _on_truth_grid(predicted, pred_affine, truth.shape, gt_affine, pred_path, gt_path)
    validate_labels(predicted, labels, source=str(pred_path))
    validate_labels(truth, labels, source=str(gt_path))
    return to_contiguous(predicted, labels), to_contiguous(truth, labels), nib.affines.voxel_sizes(gt_affine)


def _on_truth_grid(predicted: np.ndarray, pred_affine: np.ndarray, truth_shape: tuple[int, ...],
                   gt_affine: np.ndarray, pred_path: Path, gt_path: Path) -> np.ndarray:
    """The prediction on the ground truth's voxel grid: as it is, or reoriented (axes flipped or permuted, with a
    warning) when that alone makes its affine the ground truth's; any other difference is a ``DataError``."""
    same = predicted.shape == truth_shape and np.allclose(pred_affine, gt_affine, atol=AFFINE_TOLERANCE)
    if same:
        return predicted
    stored, wanted = nib.aff2axcodes(pred_affine), nib.aff2axcodes(gt_affine)
    if stored != wanted:
        transform = nib.orientations.ornt_transform(nib.io_orientation(pred_affine), nib.io_orientation(gt_affine))
        turned = nib.orientations.apply_orientation(predicted, transform)
        affine = pred_affine @ nib.orientations.inv_ornt_aff(transform, predicted.shape)
        if turned.shape == truth_shape and np.allclose(affine, gt_affine, atol=AFFINE_TOLERANCE):
            warnings.warn(f"{pred_path}: stored with axes {''.join(stored)}, its ground truth with "
                          f"{''.join(wanted)} ({gt_path}): reoriented to the ground truth's axes before scoring",
                          stacklevel=4)
            return np.ascontiguousarray(turned)
    if predicted.shape != truth_shape and stored == wanted:
        raise DataError(f"{pred_path}: prediction shape {predicted.shape} differs from ground truth {truth_shape} "
                        f"({gt_path})")
    raise DataError(f"{pred_path}: prediction is not on the ground truth's voxel grid ({gt_path}): shape "
                    f"{predicted.shape} axes {''.join(stored)} origin {np.round(pred_affine[:3, 3], 2).tolist()}, "
                    f"against {tuple(truth_shape)} {''.join(wanted)} {np.round(gt_affine[:3, 3], 2).tolist()}; "
                    "save predictions with their case's affine (io.save_prediction_nifti(classes, case.affine, ...))")
