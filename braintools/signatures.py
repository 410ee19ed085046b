"""Intensity signatures of the BraTS modalities, and a check that infers the channel order from them.

Relative to the median of normal brain (brain voxels outside the tumour), checked on 32 real cases:

- ET is brighter than NCR on T1ce, and brighter on T1ce than on T1 (contrast enhancement);
- edema is hyperintense on FLAIR and on T2, and brighter on both than on T1;
- CSF is bright on T2 and dark on FLAIR and T1 (CSF here: the brightest 2% of normal brain on T2).

The Kaggle HDF5 files do not say which image channel is which modality. ``infer_channel_order`` scores
all 24 assignments against these signatures and keeps the best one; ``check_channel_order`` warns when
it disagrees with the order you assumed.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np

from braintools.io import MODALITIES

CSF_TOP_FRACTION = 0.02


@dataclass
class _Stats:
    """Median intensity of each channel in each tissue, relative to that channel's normal-brain median."""

    tissue: dict[str, np.ndarray]  # tissue name -> (C,) relative medians, NaN when the tissue is absent
    csf_by_t2_channel: np.ndarray  # [t2 channel, channel] relative median of the CSF picked on that channel


def _relative_stats(image: np.ndarray, seg: np.ndarray) -> _Stats:
    brain = np.any(image > 0, axis=0)
    normal = brain & (seg == 0)
    if normal.sum() < 100:
        raise ValueError("too few normal-brain voxels to measure intensity signatures")
    reference = np.array([np.median(channel[normal]) for channel in image])
    reference[reference == 0] = np.finfo(np.float32).eps
    relative = {"NCR": 1, "ED": 2, "ET": 4}
    tissue = {}
    for name, value in relative.items():
        mask = seg == value
        tissue[name] = (np.array([np.median(channel[mask]) for channel in image]) / reference
                        if mask.sum() >= 10 else np.full(len(image), np.nan))
    csf = np.empty((len(image), len(image)))
    for t2_channel, channel in enumerate(image):
        values = channel[normal]
        cutoff = np.quantile(values, 1 - CSF_TOP_FRACTION)
        mask = normal & (channel >= cutoff)
        csf[t2_channel] = np.array([np.median(other[mask]) for other in image]) / reference
    return _Stats(tissue, csf)


def _margins_for(stats: _Stats, order: tuple[str, ...]) -> dict[str, float]:
    """Log-ratio margin of every signature when channel i holds ``order[i]``: > 0 holds, NaN unmeasurable."""
    c = {modality: order.index(modality) for modality in MODALITIES}
    ncr, ed, et = stats.tissue["NCR"], stats.tissue["ED"], stats.tissue["ET"]
    csf = stats.csf_by_t2_channel[c["t2"]]

    def margin(brighter: float, darker: float) -> float:
        return float(np.log(max(brighter, 1e-6) / max(darker, 1e-6)))

    return {
        "ET brighter than NCR on T1ce": margin(et[c["t1ce"]], ncr[c["t1ce"]]),
        "ET brighter on T1ce than on T1": margin(et[c["t1ce"]], et[c["t1"]]),
        "edema hyperintense on FLAIR": margin(ed[c["flair"]], 1.0),
        "edema hyperintense on T2": margin(ed[c["t2"]], 1.0),
        "edema brighter on FLAIR than on T1": margin(ed[c["flair"]], ed[c["t1"]]),
        "edema brighter on T2 than on T1": margin(ed[c["t2"]], ed[c["t1"]]),
        "CSF bright on T2": margin(csf[c["t2"]], 1.0),
        "CSF dark on FLAIR": margin(1.0, csf[c["flair"]]),
        "CSF dark on T1": margin(1.0, csf[c["t1"]]),
    }


def intensity_signatures(
    image: np.ndarray, seg: np.ndarray, modalities: tuple[str, ...] = MODALITIES
) -> dict[str, bool | None]:
    """Check the BraTS intensity signatures on one case: name -> True/False, or None if not measurable.

    Args:
        image: (4, X, Y, Z) intensities (zero outside the brain, as in BraTS).
        seg: (X, Y, Z) BraTS labels {0, 1, 2, 4}.
        modalities: modality of each image channel.
    """
    margins = _margins_for(_relative_stats(np.asarray(image), np.asarray(seg)), tuple(modalities))
    return {name: None if np.isnan(value) else bool(value > 0) for name, value in margins.items()}


@dataclass
class ChannelOrderGuess:
    """Result of ``infer_channel_order``: the best assignment and how clearly it wins."""

    order: tuple[str, ...]  # best modality assignment, one name per channel
    passed: int  # signatures that hold for it
    measured: int  # signatures that could be measured
    runner_up: tuple[str, ...]  # the second-best assignment
    runner_up_passed: int  # signatures that hold for the runner-up


def infer_channel_order(image: np.ndarray, seg: np.ndarray) -> ChannelOrderGuess:
    """Infer which channel is T1, T1ce, T2 and FLAIR from the intensity signatures of a labelled volume.

    Every one of the 24 assignments is scored by the signatures that hold, ties broken by the summed
    log-ratio margins (how clearly they hold).
    """
    stats = _relative_stats(np.asarray(image), np.asarray(seg))
    scored = []
    for order in itertools.permutations(MODALITIES):
        margins = np.array(list(_margins_for(stats, order).values()))
        measured = margins[~np.isnan(margins)]
        scored.append((int((measured > 0).sum()), float(np.clip(measured, -1, 1).sum()), len(measured), order))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    (passed, _, measured, order), (runner_passed, _, _, runner_up) = scored[0], scored[1]
    return ChannelOrderGuess(order, passed, measured, runner_up, runner_passed)


def check_channel_order(
    image: np.ndarray, seg: np.ndarray, assumed: tuple[str, ...], source: str = "volume"
) -> ChannelOrderGuess:
    """Infer the channel order and warn, naming ``source``, when it disagrees with the ``assumed`` order."""
    guess = infer_channel_order(image, seg)
    if tuple(assumed) != guess.order:
        warnings.warn(f"{source}: channel order {tuple(assumed)} disagrees with the intensity signatures, "
                      f"which suggest {guess.order} ({guess.passed}/{guess.measured} signatures hold)", stacklevel=2)
    return guess
