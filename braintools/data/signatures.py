"""Intensity signatures of the BraTS modalities, and a check that infers the channel order from them.

Relative to the median of normal brain (brain voxels outside the tumour), checked on 32 real cases:

- ET is brighter than NCR on T1ce, and brighter on T1ce than on T1 (contrast enhancement);
- edema is hyperintense on FLAIR and on T2, and brighter on both than on T1;
- CSF is bright on T2 and dark on FLAIR and T1 (CSF here: the brightest 2% of normal brain on T2).

The Kaggle HDF5 files do not say which image channel is which modality. ``infer_channel_order`` scores
all 24 assignments against these signatures and keeps the best one; ``check_channel_order`` warns when
it disagrees with the order you assumed; ``infer_h5_channel_order`` takes a majority vote over a few HDF5
volumes (what ``precache --source h5 --channel-order infer`` and notebooks 01 and 03 use), and
``contradicting_order`` tells whether a volume's signatures clearly refute an order (``verify.verify_case``).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from braintools.data import io
from braintools.data.io import MODALITIES

CSF_TOP_FRACTION = 0.02
# A signature holds clearly when its log-ratio margin is at least this (4 % brighter). On the 13 real cases of
# ../shared every signature of the true order held by 0.052 or more; on pure noise with a BraTS-like segmentation
# the best order's weakest margin stayed below 0.027 (200 draws).
CLEAR_MARGIN = 0.04


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
    """Check the BraTS intensity signatures on one case: name -> True/False, or None if not measurable (notebook 01).

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
    clear: bool = False  # every signature measured, and each holds for ``order`` by at least CLEAR_MARGIN


class _Score(NamedTuple):
    passed: int  # signatures that hold
    margin: float  # summed log-ratio margins, each clipped to [-1, 1] (how clearly they hold)
    measured: int  # signatures that could be measured
    total: int  # signatures there are
    weakest: float  # smallest margin measured
    order: tuple[str, ...]


def _scored_orders(stats: _Stats) -> list[_Score]:
    """Score all 24 channel assignments, best first (most signatures holding, then the largest summed margin)."""
    scored = []
    for order in itertools.permutations(MODALITIES):
        margins = np.array(list(_margins_for(stats, order).values()))
        measured = margins[~np.isnan(margins)]
        scored.append(_Score(int((measured > 0).sum()), float(np.clip(measured, -1, 1).sum()), len(measured),
                             len(margins), float(measured.min(initial=np.inf)), order))
    return sorted(scored, key=lambda score: (score.passed, score.margin), reverse=True)


def _guess(scored: list[_Score]) -> ChannelOrderGuess:
    best, runner_up = scored[0], scored[1]
    clear = best.measured == best.total and best.weakest >= CLEAR_MARGIN
    return ChannelOrderGuess(best.order, best.passed, best.measured, runner_up.order, runner_up.passed, clear)


def infer_channel_order(image: np.ndarray, seg: np.ndarray) -> ChannelOrderGuess:
    """Infer which channel is T1, T1ce, T2 and FLAIR from the intensity signatures of a labelled volume.

    Every one of the 24 assignments is scored by the signatures that hold, ties broken by the summed
    log-ratio margins (how clearly they hold).
    """
    return _guess(_scored_orders(_relative_stats(np.asarray(image), np.asarray(seg))))


def contradicting_order(image: np.ndarray, seg: np.ndarray, order: Sequence[str]) -> ChannelOrderGuess | None:
    """Return the channel order the signatures clearly prefer to ``order``, or None if they agree or cannot tell.

    Clearly: every signature can be measured (the volume has NCR, edema and enhancing tumour), each holds for
    the preferred order by at least ``CLEAR_MARGIN``, and ``order`` (modality of each channel of ``image``) fails
    one by at least as much. A volume without enhancing tumour cannot tell T1 from T1ce, and one without brain
    contrasts cannot tell anything: None.
    """
    try:
        scored = _scored_orders(_relative_stats(np.asarray(image), np.asarray(seg)))
    except ValueError:  # too little normal brain to measure anything
        return None
    guess = _guess(scored)
    claimed = next(score for score in scored if score.order == tuple(order))
    return guess if guess.clear and claimed.weakest <= -CLEAR_MARGIN else None


def check_channel_order(
    image: np.ndarray, seg: np.ndarray, assumed: tuple[str, ...], source: str = "volume"
) -> ChannelOrderGuess:
    """Infer the channel order and warn, naming ``source``, when it disagrees with the ``assumed`` order.
    Introduced in notebook 01."""
    guess = infer_channel_order(image, seg)
    if tuple(assumed) != guess.order:
        warnings.warn(f"{source}: channel order {tuple(assumed)} disagrees with the intensity signatures, "
                      f"which suggest {guess.order} ({guess.passed}/{guess.measured} signatures hold)", stacklevel=2)
    return guess


@dataclass
class ChannelOrderVote:
    """Result of ``infer_h5_channel_order``: the order most volumes point to, and each volume's guess."""

    order: tuple[str, ...]  # modality of each channel of the stored HDF5 ``image``
    guesses: dict[int, ChannelOrderGuess]  # volume number -> its own guess

    @property
    def agreeing(self) -> int:
        """Volumes whose own best order is ``order``."""
        return sum(guess.order == self.order for guess in self.guesses.values())

    @property
    def conclusive(self) -> bool:
        """True when most volumes point to ``order`` and the signatures of at least one of them are clear."""
        return 2 * self.agreeing > len(self.guesses) and any(
            guess.order == self.order and guess.clear for guess in self.guesses.values())

    def describe(self) -> str:
        """One line per volume, then the verdict."""
        lines = [f"volume {volume}: {guess.order}, {guess.passed}/{guess.measured} signatures hold"
                 f"{' clearly' if guess.clear else ''} (runner-up {guess.runner_up}: {guess.runner_up_passed})"
                 for volume, guess in self.guesses.items()]
        verdict = f"HDF5 channel order: {self.order} ({self.agreeing} of {len(self.guesses)} volumes agree)"
        if not self.conclusive:
            verdict += "; not conclusive: check the volumes yourself and give the order explicitly"
        return "\n".join(lines + [verdict])


def infer_h5_channel_order(volumes: Mapping[int, Sequence[str | os.PathLike]], n_volumes: int = 3
                           ) -> ChannelOrderVote:
    """Infer the channel order of Kaggle HDF5 slices: a majority vote of the first ``n_volumes`` volumes (notebook 01).

    Args:
        volumes: ``io.find_h5_volumes(folder)``: volume number -> its slice files in slice order.
        n_volumes: volumes read (each ~290 MB of float64 at BraTS size); ties go to the order that passes
            more signatures in total.

    Example:
        >>> vote = infer_h5_channel_order(io.find_h5_volumes(paths.h5_dir))  # doctest: +SKIP
        >>> cache.h5_sources(paths.h5_dir, channel_order=vote.order)  # doctest: +SKIP
    """
    if n_volumes < 1 or not volumes:
        raise ValueError(f"need at least one volume to infer the channel order (n_volumes={n_volumes})")
    guesses = {}
    for volume in list(volumes)[:n_volumes]:
        stored = io.load_h5_volume(list(volumes[volume]), channel_order=MODALITIES, modalities=MODALITIES)
        guesses[volume] = infer_channel_order(stored.image, stored.seg)  # channels as stored in the files
    votes = Counter(guess.order for guess in guesses.values())
    passed = Counter()
    for guess in guesses.values():
        passed[guess.order] += guess.passed
    order = max(votes, key=lambda candidate: (votes[candidate], passed[candidate]))
    return ChannelOrderVote(order, guesses)
