"""After training: tune one probability threshold per region on validation data, then post-process.

Argmax (or sigmoid > 0.5) is not always the best cut: a model trained on few tumour pixels is often too
timid on the small ET region. ``search_thresholds`` scores every candidate threshold of every region on
the validation set (Dice pooled over all slices), ``best_thresholds`` picks the best per region. Tune on
validation patients only and report the test set with the chosen thresholds, or the tuning leaks.

Region probabilities of a 4-class softmax model: WT = p(NCR) + p(ED) + p(ET), TC = p(NCR) + p(ET), ET = p(ET);
of a region model: the three sigmoids. Thresholded regions become classes again with ``classes_from_regions``
(ET -> 3, else TC -> 1, else WT -> 2), which nests ET inside TC inside WT. ``_pipeline_dice`` scores the
whole chain (thresholds, classes, optional post-processing such as ``postprocess.postprocess_classes`` on each
slice), so you can see what each step adds. ``collect_predictions`` runs the model once and keeps the
probabilities, so ``threshold_table`` and ``_predictions_dice`` can compare many settings without running the
model again (what a CPU needs). Note that 2D post-processing sees one slice at a time; the 3D
clean-up of whole predicted volumes belongs to notebook 07.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from braintools.data.labels import REGIONS, classes_from_regions, regions_from_classes
from braintools.evaluation.dice import dice_from_counts
from braintools.evaluation.overlap import overlap_counts
from braintools.training.train import finest, predict_batches

DEFAULT_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(2, 19))  # 0.10, 0.15, ..., 0.90


def _region_probabilities(logits: torch.Tensor, output: str = "classes") -> torch.Tensor:
    """Probabilities (N, 3, ...) of [WT, TC, ET] from class logits (softmax sums) or region logits (sigmoid).
    Introduced in notebook 04."""
    if output == "regions":
        return torch.sigmoid(logits.float())
    if output != "classes":
        raise ValueError(f"output must be 'classes' or 'regions', got {output!r}")
    p = torch.softmax(logits.float(), dim=1)
    return torch.stack([p[:, 1] + p[:, 2] + p[:, 3], p[:, 1] + p[:, 3], p[:, 3]], dim=1)


def _threshold_counts(probabilities: torch.Tensor, truth: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """(overlap, predicted, true) pixel counts per region and threshold, shape (3, len(thresholds), 3) (notebook 04)."""
    truth = truth.bool()
    counts = [overlap_counts(probabilities > threshold, truth, region_axis=1) for threshold in thresholds]
    return torch.stack(counts, dim=1).double().cpu()


def _predict(model: nn.Module, loader: Iterable, progress: bool, description: str):
    """Yield (logits, class targets) per batch: the finest output of ``train.predict_batches``."""
    for outputs, targets in predict_batches(model, loader, progress=progress, description=description):
        yield finest(outputs), targets


def search_thresholds(model: nn.Module, loader: Iterable, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                      output: str = "classes", progress: bool = True) -> pd.DataFrame:
    """Pooled validation Dice of each region at each threshold: a table with index threshold, columns WT/TC/ET.

    Example:
        >>> table = search_thresholds(model, val_loader)  # doctest: +SKIP
        >>> best_thresholds(table)  # doctest: +SKIP
        {'WT': 0.45, 'TC': 0.5, 'ET': 0.35}
    """
    counts = torch.zeros(len(REGIONS), len(thresholds), 3, dtype=torch.float64)
    for logits, targets in _predict(model, loader, progress, "thresholds"):
        truth = regions_from_classes(targets, axis=1).float()
        counts += _threshold_counts(_region_probabilities(logits, output), truth, thresholds)
    table = {region: dice_from_counts(counts[r]).tolist() for r, region in enumerate(REGIONS)}
    return pd.DataFrame(table, index=pd.Index(list(thresholds), name="threshold"))


def best_thresholds(table: pd.DataFrame) -> dict[str, float]:
    """The threshold with the highest Dice per region (the lowest one on ties) (notebook 04)."""
    return {region: float(table[region].idxmax()) for region in table.columns}


def apply_thresholds(probabilities: torch.Tensor, thresholds: Mapping[str, float] | None = None) -> np.ndarray:
    """Threshold region probabilities (N, 3, ...) and return classes (N, ...) uint8 (default 0.5 per region).
    Introduced in notebook 04."""
    cuts = torch.tensor([(thresholds or {}).get(region, 0.5) for region in REGIONS], device=probabilities.device)
    regions = (probabilities > cuts.view(1, -1, *[1] * (probabilities.ndim - 2))).cpu().numpy()
    return np.stack([classes_from_regions(sample) for sample in regions])


def _pipeline_dice(model: nn.Module, loader: Iterable, thresholds: Mapping[str, float] | None = None,
                  postprocess: Callable[[np.ndarray], np.ndarray] | None = None, output: str = "classes",
                  progress: bool = True) -> dict[str, float]:
    """Pooled Dice of WT, TC, ET after thresholds -> classes -> ``postprocess`` (applied to each sample) (notebook 04).

    Args:
        thresholds: per-region thresholds (``best_thresholds``); ``None``: argmax of class logits (what ``fit``
            reports), or 0.5 for region logits.
        postprocess: ``classes -> classes`` for one sample, e.g.
            ``functools.partial(postprocess.postprocess_classes, min_component_size=20)``.
    """
    counts = np.zeros((len(REGIONS), 3))
    for logits, targets in _predict(model, loader, progress, "pipeline"):
        if thresholds is None and output == "classes":
            classes = logits.argmax(1).cpu().numpy().astype(np.uint8)
        else:
            classes = apply_thresholds(_region_probabilities(logits, output), thresholds)
        counts += _class_counts(classes, targets.cpu().numpy(), postprocess)
    return dict(zip(REGIONS, dice_from_counts(counts).tolist()))


def _class_counts(classes: np.ndarray, targets: np.ndarray,
                  postprocess: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    """(overlap, predicted, true) per region, shape (3, 3), of predicted and true classes (N, ...)."""
    counts = np.zeros((len(REGIONS), 3))
    for predicted, target in zip(classes, targets):
        predicted = postprocess(predicted) if postprocess is not None else predicted
        counts += overlap_counts(regions_from_classes(predicted), regions_from_classes(target))
    return counts


@dataclass
class Predictions:
    """A model's outputs on every sample of a loader, kept in memory to try thresholds and post-processing."""

    probabilities: np.ndarray  # (N, 3, ...) float16 region probabilities [WT, TC, ET]
    argmax: np.ndarray  # (N, ...) uint8 classes: argmax of class logits (or regions > 0.5)
    targets: np.ndarray  # (N, ...) uint8 true classes 0..3

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Predictions:
        """The predictions of some samples only (e.g. the slices of one patient)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Predictions(self.probabilities[indices], self.argmax[indices], self.targets[indices])


def collect_predictions(model: nn.Module, loader: Iterable, output: str = "classes",
                        progress: bool = True) -> Predictions:
    """Run ``model`` once over ``loader`` and keep region probabilities, argmax classes and targets (notebook 04).

    Example:
        >>> val = collect_predictions(model, val_loader)  # doctest: +SKIP
        >>> best_thresholds(threshold_table(val))  # doctest: +SKIP
    """
    probabilities, argmax, targets = [], [], []
    for logits, batch_targets in _predict(model, loader, progress, "predict"):
        regions = _region_probabilities(logits, output)
        probabilities.append(regions.cpu().numpy().astype(np.float16))
        classes = logits.argmax(1).cpu().numpy() if output == "classes" else apply_thresholds(regions)
        argmax.append(classes.astype(np.uint8))
        targets.append(batch_targets.cpu().numpy().astype(np.uint8))
    if not targets:
        raise ValueError("the loader yielded no batch")
    return Predictions(np.concatenate(probabilities), np.concatenate(argmax), np.concatenate(targets))


def threshold_table(predictions: Predictions, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                    chunk: int = 32) -> pd.DataFrame:
    """Like ``search_thresholds``, from collected predictions: pooled Dice per threshold (rows) and region.
    Introduced in notebook 04."""
    counts = torch.zeros(len(REGIONS), len(thresholds), 3, dtype=torch.float64)
    for start in range(0, len(predictions), chunk):
        probabilities = torch.from_numpy(predictions.probabilities[start:start + chunk].astype(np.float32))
        truth = regions_from_classes(torch.from_numpy(predictions.targets[start:start + chunk]).long(), axis=1).float()
        counts += _threshold_counts(probabilities, truth, thresholds)
    table = {region: dice_from_counts(counts[r]).tolist() for r, region in enumerate(REGIONS)}
    return pd.DataFrame(table, index=pd.Index(list(thresholds), name="threshold"))


def _predictions_dice(predictions: Predictions, thresholds: Mapping[str, float] | None = None,
                     postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                     chunk: int = 32) -> dict[str, float]:
    """Like ``_pipeline_dice``, from collected predictions: pooled Dice of WT, TC, ET (``None``: argmax).
    Introduced in notebook 04."""
    counts = np.zeros((len(REGIONS), 3))
    for start in range(0, len(predictions), chunk):
        if thresholds is None:
            classes = predictions.argmax[start:start + chunk]
        else:
            probabilities = torch.from_numpy(predictions.probabilities[start:start + chunk].astype(np.float32))
            classes = apply_thresholds(probabilities, thresholds)
        counts += _class_counts(classes, predictions.targets[start:start + chunk], postprocess)
    return dict(zip(REGIONS, dice_from_counts(counts).tolist()))


def per_case_dice(predictions: Predictions, case_ids: Sequence[str], thresholds: Mapping[str, float] | None = None,
                  postprocess: Callable[[np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
    """Dice of WT, TC, ET per patient, pooled over that patient's slices (``case_ids``: one per sample; notebook 04).
    Introduced in notebook 04.

    With every brain slice of a patient, this is the Dice of the patient's stacked slices: one number per patient, so
    the spread between patients can be shown next to the mean. Columns ``case_id``, ``Dice_WT``, ``Dice_TC``,
    ``Dice_ET``, in the order patients first appear.
    """
    case_ids = np.asarray(case_ids)
    if len(case_ids) != len(predictions):
        raise ValueError(f"{len(case_ids)} case ids for {len(predictions)} predictions")
    rows = []
    for case_id in dict.fromkeys(case_ids.tolist()):
        scores = _predictions_dice(predictions.subset(np.flatnonzero(case_ids == case_id)), thresholds, postprocess)
        rows.append({"case_id": case_id, **{f"Dice_{region}": value for region, value in scores.items()}})
    return pd.DataFrame(rows)


def sample_dice(classes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Dice of WT, TC, ET of every sample (N, 3); NaN where a region is absent from prediction and truth alike.
    Introduced in notebook 04.

    The ``"undefined"`` empty-region rule (``overlap.EMPTY_RULES``): a healthy slice predicted healthy has no Dice.

    Example:
        >>> sample_dice(np.array([[[2, 0]]]), np.array([[[2, 2]]])).round(3).tolist()
        [[0.667, nan, nan]]
    """
    counts = np.stack([_class_counts(predicted[None], target[None], None) for predicted, target in
                       zip(classes, targets)])  # (N, 3 regions, (overlap, predicted, true))
    return dice_from_counts(counts, empty="undefined")
