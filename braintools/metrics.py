"""BraTS evaluation: Dice, HD95 (mm), sensitivity and specificity of the regions WT, TC and ET.

Empty regions need a rule, and tables must say which one they use (``convention``):

- ``"brats"`` (the challenge rule): ground truth and prediction both empty -> Dice 1, HD95 0; only one
  of them empty -> Dice 0, HD95 373.13 mm (the diagonal of the 240 x 240 x 155 mm BraTS grid).
- ``"ignore"``: empty ground truth -> NaN, so the case drops out of the region's mean; an empty
  prediction of a non-empty ground truth still scores Dice 0 and HD95 373.13 mm.

HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)`` (tested against it): surface voxels are
the mask minus its binary erosion (face neighbours, outside the array counts as background); from each
surface to the other one takes the 95th percentile (linear interpolation) of the Euclidean distances
between voxel centres in mm; HD95 is the larger of the two. Other tools differ: some pool both directions
before the percentile (MedPy), some measure surfaces in sub-voxel units; numbers differ by about a voxel.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm.auto import tqdm

from braintools.atomic import atomic_path
from braintools.data.io import find_cases, load_nifti
from braintools.data.labels import (
    BRATS2020,
    REGIONS,
    LabelConvention,
    regions_from_classes,
    to_contiguous,
    validate_labels,
)
from braintools.data.preprocess import bounding_box
from braintools.errors import DataError

CONVENTIONS = ("brats", "ignore")
METRICS = ("Dice", "HD95", "Sensitivity", "Specificity")
HD95_PENALTY_MM = 373.13  # sqrt(240**2 + 240**2 + 155**2): the largest distance inside a BraTS volume


def spacing_from_affine(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size in mm along each array axis: the lengths of the affine's first three columns (notebook 07).

    Example:
        >>> spacing_from_affine(np.diag([-1.0, -1.0, 2.0, 1.0]))
        (1.0, 1.0, 2.0)
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a 4 x 4 matrix, got shape {affine.shape}")
    return tuple(float(length) for length in np.linalg.norm(affine[:3, :3], axis=0))


def dice(pred_mask: np.ndarray, gt_mask: np.ndarray, empty: str = "brats") -> float:
    """Dice overlap 2|P and G| / (|P| + |G|) of two boolean masks; empty masks follow ``empty`` (notebook 04).

    Example:
        >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
        0.6666666666666666
    """
    pred, gt = _masks(pred_mask, gt_mask)
    fixed = _empty_region_score(pred.any(), gt.any(), empty, perfect=1.0, worst=0.0)
    if fixed is not None:
        return fixed
    overlap = np.count_nonzero(pred & gt)
    return float(2.0 * overlap / (np.count_nonzero(pred) + np.count_nonzero(gt)))


def hd95(
    pred_mask: np.ndarray, gt_mask: np.ndarray, spacing: Sequence[float] | np.ndarray | None = None,
    empty: str = "brats",
) -> float:
    """95th-percentile symmetric Hausdorff distance between the surfaces of two masks, in mm (notebook 04).

    Args:
        pred_mask, gt_mask: boolean masks of the same shape.
        spacing: voxel size per axis in mm, or the 4 x 4 affine (default: 1 mm).
        empty: ``"brats"`` or ``"ignore"`` (module docstring).

    Distance transforms run on the bounding box of the two masks (plus one voxel), not the whole volume.
    """
    pred, gt = _masks(pred_mask, gt_mask)
    fixed = _empty_region_score(pred.any(), gt.any(), empty, perfect=0.0, worst=HD95_PENALTY_MM)
    if fixed is not None:
        return fixed
    spacing = resolve_spacing(spacing, pred.ndim)
    box = bounding_box(pred | gt, margin=1)
    pred_surface, gt_surface = _surface(pred[box]), _surface(gt[box])
    pred_to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=spacing)[pred_surface]
    gt_to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)[gt_surface]
    return float(max(np.percentile(pred_to_gt, 95), np.percentile(gt_to_pred, 95)))


def sensitivity(pred_mask: np.ndarray, gt_mask: np.ndarray, empty: str = "brats") -> float:
    """True-positive rate |P and G| / |G|; an empty ground truth scores like Dice under ``empty`` (notebook 07)."""
    pred, gt = _masks(pred_mask, gt_mask)
    fixed = _empty_region_score(pred.any(), gt.any(), empty, perfect=1.0, worst=0.0)
    if fixed is not None:
        return fixed
    return float(np.count_nonzero(pred & gt) / np.count_nonzero(gt))


def specificity(pred_mask: np.ndarray, gt_mask: np.ndarray, empty: str = "brats") -> float:
    """True-negative rate |not P and not G| / |not G|; no negatives at all: 1 (``"brats"``) or NaN (notebook 07)."""
    pred, gt = _masks(pred_mask, gt_mask)
    _check_convention(empty)
    negatives = np.count_nonzero(~gt)
    if negatives == 0:
        return 1.0 if empty == "brats" else math.nan
    return float(np.count_nonzero(~pred & ~gt) / negatives)


def region_metrics(
    pred_classes: np.ndarray, gt_classes: np.ndarray, spacing: Sequence[float] | np.ndarray | None = None,
    convention: str = "brats",
) -> dict[str, float]:
    """All metrics of the regions WT, TC, ET for two contiguous class maps (0..3): ``{"Dice_WT": ..., ...}``.
    Introduced in notebook 08.

    Args:
        pred_classes, gt_classes: contiguous class maps of the same shape.
        spacing: voxel size per axis in mm, or the 4 x 4 affine (default: 1 mm).
        convention: ``"brats"`` or ``"ignore"`` empty-region rule.
    """
    _check_convention(convention)
    pred_classes, gt_classes = np.asarray(pred_classes), np.asarray(gt_classes)
    if pred_classes.shape != gt_classes.shape:
        raise ValueError(f"pred_classes {pred_classes.shape} and gt_classes {gt_classes.shape} differ in shape")
    for name, classes in (("pred_classes", pred_classes), ("gt_classes", gt_classes)):
        if classes.size and (classes.min() < 0 or classes.max() > 3):
            raise ValueError(f"{name} must hold contiguous classes 0..3, found {classes.min()}..{classes.max()} "
                             "(BraTS labels 0/1/2/4? convert them with labels.to_contiguous)")
    pred_regions, gt_regions = regions_from_classes(pred_classes), regions_from_classes(gt_classes)
    scores = {}
    for index, region in enumerate(REGIONS):
        pred, gt = pred_regions[index], gt_regions[index]
        scores[f"Dice_{region}"] = dice(pred, gt, convention)
        scores[f"HD95_{region}"] = hd95(pred, gt, spacing, convention)
        scores[f"Sensitivity_{region}"] = sensitivity(pred, gt, convention)
        scores[f"Specificity_{region}"] = specificity(pred, gt, convention)
    return scores


def evaluate_folder(
    pred_dir: str | os.PathLike,
    gt_root: str | os.PathLike,
    convention: str = "brats",
    labels: LabelConvention = BRATS2020,
    csv_path: str | os.PathLike | None = None,
    progress: bool = True,
    skip_failures: bool = False,
) -> pd.DataFrame:
    """Score every prediction ``<case_id>.nii[.gz]`` in ``pred_dir`` against its case under ``gt_root`` (notebook 07).

    Args:
        pred_dir: folder of predicted segmentations with BraTS labels, named after the case.
        gt_root: folder searched with ``io.find_cases`` for the ground-truth ``*_seg`` files.
        convention: empty-region rule, ``"brats"`` or ``"ignore"`` (written in a ``convention`` column).
        labels: label values of both predictions and ground truth (BraTS 2018-2021: ET = 4).
        csv_path: also write the table there (atomic write).
        progress: show a tqdm progress bar.
        skip_failures: a case whose files cannot be read or do not match is left out and its error kept in
            ``table.attrs["failures"]`` (``{case_id: message}``), instead of stopping everything.

    Returns:
        One row per case: ``case_id``, ``Dice_WT`` ... ``Specificity_ET``, ``convention``. Spacing comes
        from the ground-truth affine. Predictions without ground truth are skipped with a warning.
    """
    _check_convention(convention)
    predictions = _prediction_files(pred_dir)
    truths = {case.case_id: case.seg for case in find_cases(gt_root, require_seg=True, warn_missing=False)}
    orphans = sorted(set(predictions) - set(truths))
    if orphans:
        warnings.warn(f"{pred_dir}: no ground truth under {gt_root} for {len(orphans)} prediction(s): "
                      f"{', '.join(orphans[:10])}", stacklevel=2)
    matched = [case_id for case_id in predictions if case_id in truths]
    if not matched:
        raise DataError(f"{pred_dir}: no prediction matches a case with a segmentation under {gt_root}")
    rows, failures = [], {}
    for case_id in tqdm(matched, desc="evaluate", disable=not progress):
        try:
            pred_classes, gt_classes, spacing = _load_pair(predictions[case_id], truths[case_id], labels)
        except DataError as error:
            if not skip_failures:
                raise
            failures[case_id] = str(error)
            continue
        rows.append({"case_id": case_id, **region_metrics(pred_classes, gt_classes, spacing, convention),
                     "convention": convention})
    table = pd.DataFrame(rows, columns=None if rows else ["case_id", "convention"])
    table.attrs["failures"] = failures
    if csv_path is not None:
        write_csv(table, csv_path)
    return table


def summarize(per_case: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, median and case count per metric and region of an ``evaluate_folder`` table (NaN skipped).
    Introduced in notebook 07.

    Returns:
        Columns ``metric, region, mean, std, median, n_cases, convention`` (``n_cases``: non-NaN values).
    """
    conventions = per_case["convention"].unique() if "convention" in per_case else []
    if len(conventions) != 1:
        raise ValueError(f"per_case needs one 'convention' column value, found {list(conventions)}")
    rows = []
    for metric in METRICS:
        for region in REGIONS:
            column = f"{metric}_{region}"
            if column not in per_case:
                continue
            values = per_case[column].astype(float)
            rows.append({"metric": metric, "region": region, "mean": values.mean(), "std": values.std(),
                         "median": values.median(), "n_cases": int(values.notna().sum()),
                         "convention": conventions[0]})
    if not rows:
        raise ValueError(f"per_case has no metric columns such as 'Dice_WT'; columns: {list(per_case.columns)}")
    return pd.DataFrame(rows)


def mean_uncertainty(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the confidence interval of a mean over cases: t * sd / sqrt(n) (NaN skipped; notebook 04).

    A mean of n per-case scores is known only to within this many points; a change of a mean smaller than the
    uncertainty of the per-case *changes* cannot be told from chance at this number of cases. NaN for fewer
    than two values.

    Example:
        >>> round(mean_uncertainty([0.8, 0.6, 0.7, 0.9]), 3)  # 4 cases, sd 0.129: t(3) = 3.18
        0.205
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan
    t = stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
    return float(t * values.std(ddof=1) / math.sqrt(len(values)))


def compare_variants(per_case: pd.DataFrame, metric: str = "Dice", baseline: str | None = None,
                     noise: bool = False) -> pd.DataFrame:
    """Mean ``metric`` per region for each ``variant`` of a per-case table, and its change from ``baseline``.
    Introduced in notebook 04.

    Args:
        per_case: rows with ``variant``, ``case_id`` and ``<metric>_<region>`` columns (NaN skipped).
        metric: ``"Dice"``, ``"HD95"``, ``"Sensitivity"`` or ``"Specificity"``.
        baseline: the variant the changes are measured from (default: the first variant in the table).
        noise: add ``noise_<region>``: the ``mean_uncertainty`` of the per-case changes from the baseline (the
            same cases scored by both): a change smaller than that cannot be told from chance.

    Returns:
        One row per variant (in table order): ``<metric>_WT`` ... means, ``mean`` over the regions, and
        ``change_<region>`` = mean minus the baseline's (and ``noise_<region>``).
    """
    columns = [f"{metric}_{region}" for region in REGIONS]
    missing = [column for column in ["variant", *columns] if column not in per_case]
    if missing:
        raise ValueError(f"per_case lacks the columns {missing}")
    variants = list(dict.fromkeys(per_case["variant"]))
    baseline = variants[0] if baseline is None else baseline
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not a variant of the table: {variants}")
    means = per_case.groupby("variant", sort=False)[columns].mean().loc[variants]
    table = means.copy()
    table["mean"] = means.mean(axis=1)
    for region, column in zip(REGIONS, columns):
        table[f"change_{region}"] = means[column] - means.loc[baseline, column]
    if noise:
        by_case = per_case.pivot_table(index="case_id", columns="variant", values=columns, dropna=False)
        for region, column in zip(REGIONS, columns):
            changes = {variant: by_case[column][variant] - by_case[column][baseline] for variant in variants}
            table[f"noise_{region}"] = [math.nan if variant == baseline else mean_uncertainty(changes[variant])
                                        for variant in variants]
    return table


def paired_difference(per_case: pd.DataFrame, column: str, variant: str, baseline: str) -> dict[str, float]:
    """Mean per-case change of ``column`` from ``baseline`` to ``variant``, with its 95 % interval (notebook 05).

    Both variants are scored on the same cases, so the change is measured case by case; its spread over the cases
    says how large a difference must be before it is more than noise at this number of cases. Returns ``n``,
    ``mean`` and the 95 % t-interval ``low``, ``high`` (``mean_uncertainty`` of the changes; NaN below 2 cases).

    Example:
        >>> table = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "variant": ["x", "y", "x", "y"],
        ...                       "Dice_WT": [0.5, 0.6, 0.7, 0.9]})
        >>> round(paired_difference(table, "Dice_WT", "y", "x")["mean"], 3)
        0.15
    """
    values = per_case.pivot(index="case_id", columns="variant", values=column)
    missing = [name for name in (variant, baseline) if name not in values]
    if missing:
        raise ValueError(f"per_case has no variant {missing}; variants: {list(values.columns)}")
    changes = (values[variant] - values[baseline]).dropna().astype(float).to_numpy()
    mean = float(changes.mean()) if len(changes) else math.nan
    half = mean_uncertainty(changes)
    return {"n": len(changes), "mean": mean, "low": mean - half, "high": mean + half}


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV without its index, atomically (readers never see half a file) (notebook 07)."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)
    return Path(path)


def resolve_spacing(spacing: Sequence[float] | np.ndarray | None, ndim: int) -> tuple[float, ...]:
    """Voxel size per axis from ``None`` (1 mm), a sequence of ``ndim`` sizes, or a 4 x 4 affine (notebook 07)."""
    if spacing is None:
        return (1.0,) * ndim
    array = np.asarray(spacing, dtype=np.float64)
    if array.shape == (4, 4):
        array = np.asarray(spacing_from_affine(array))
    if array.shape != (ndim,) or np.any(array <= 0):
        raise ValueError(f"spacing must be {ndim} positive voxel sizes or a 4 x 4 affine, got {spacing}")
    return tuple(float(value) for value in array)


def _empty_region_score(pred_any: bool, gt_any: bool, empty: str, perfect: float, worst: float) -> float | None:
    """Score fixed by the empty-region rule, or ``None`` when both masks are non-empty (compute it)."""
    _check_convention(empty)
    if pred_any and gt_any:
        return None
    if not gt_any and empty == "ignore":
        return math.nan
    return perfect if not (pred_any or gt_any) else worst


def _masks(pred_mask: np.ndarray, gt_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred_mask).astype(bool, copy=False), np.asarray(gt_mask).astype(bool, copy=False)
    if pred.shape != gt.shape:
        raise ValueError(f"pred_mask {pred.shape} and gt_mask {gt.shape} differ in shape")
    return pred, gt


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"empty-region convention must be one of {list(CONVENTIONS)}, got {convention!r}")


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a face neighbour outside it (the mask minus its erosion)."""
    return mask & ~ndimage.binary_erosion(mask)


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


def _load_pair(pred_path: Path, gt_path: Path, labels: LabelConvention) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Load a prediction and its ground truth as contiguous classes, checked, plus the voxel spacing."""
    pred, pred_affine = load_nifti(pred_path)
    gt, gt_affine = load_nifti(gt_path)
    if pred.shape != gt.shape:
        raise DataError(f"{pred_path}: prediction shape {pred.shape} differs from ground truth {gt.shape} ({gt_path})")
    if not np.allclose(pred_affine, gt_affine, atol=1e-3):
        warnings.warn(f"{pred_path}: affine differs from the ground truth's ({gt_path}); is it aligned?",
                      stacklevel=3)
    validate_labels(pred, labels, source=str(pred_path))
    validate_labels(gt, labels, source=str(gt_path))
    return to_contiguous(pred, labels), to_contiguous(gt, labels), spacing_from_affine(gt_affine)
