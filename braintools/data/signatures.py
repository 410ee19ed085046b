"""Intensity signatures of the BraTS modalities, and a check of the channel order built on them.

Two uses, two sets of signatures:

- ``intensity_signatures`` describes a case with the signatures of FORMATS.md, relative to the median of normal brain
  (ET brighter than NCR on T1ce and brighter on T1ce than on T1; edema hyperintense on FLAIR and T2 and brighter on
  both than on T1; CSF bright on T2, dark on FLAIR and T1): a table to read (notebook 02), not a decision. Relative to
  the whole brain, a bias field or a case whose edema is bright on T1 (synthetic ones are) turns some of them.
- The channel-order check (``SIGNATURES``) compares *two channels* on *two groups of voxels* of the same volume, so
  that neither a scanner's intensity scale nor a smooth bias field can turn it. Each signature is the difference of
  the median log-ratio ``log(brighter / darker)`` (each channel divided by its normal-brain median) between group A
  and group B, divided by the pooled spread of that log-ratio in the two groups: an effect size (1.0: the groups differ
  by one standard deviation of the voxels), antisymmetric (exchanging the two channels negates it):

  - CSF stands out on T2: the brightest 2 % of normal brain on T2 (CSF) favour T2 over X more than the brightest 2 %
    on X favour X over T2, both against normal brain (X = T1, T1ce, FLAIR; spread: over normal brain);
  - contrast enhancement: T1ce/T1 is higher in enhancing tumour than in edema, and than in necrosis;
  - FLAIR against T1 and T1ce: FLAIR/X is higher in the tumour than in the white matter around it, and higher in the
    grey matter around it than in that white matter (around the tumour: 2-10 voxels away; white matter: the darkest
    quarter there on the T2 channel, grey matter: its 40-75 % band).

A signature *decides* when its effect is at least ``CLEAR_EFFECT`` = 0.5 (and three standard errors, for small groups).
All 24 channel orders are judged; an order with a signature at -0.5 or below is clearly refuted. When exactly one order
is left, the signatures indicate it; otherwise they cannot tell: no enhancing tumour (T1 and T1ce look alike), a
runner-up refuted by less than the margin, or no order fitting at all. Measured (2026-12) on the 13 real BraTS 2018
cases and 2 BraTS 2021 cases of ../shared/data and the 40 ``course`` synthetic cases: no signature of a true order
below -0.02, and every other order refuted by an effect of 0.88 or more (T1 against T1ce: in the 31 cases with
enhancing tumour). Never used to choose anything: 40 full-size synthetic cases of another seed (weakest true signature
+0.63, weakest refutation 0.96) and the 15 real cases under two random bias fields each (15-50 % per channel: every
order recovered, weakest true signature -0.05). Generator v3 (issue 22) randomises contrasts, noise and vessels beyond
the real cases' spread: on its 40 ``course`` cases every order of 30 of the 31 cases with enhancing tumour is recovered;
case 3 (many bright T1ce vessels) cannot tell in any order; no wrong order and no false alarm in 960 judgements.

``infer_channel_order`` says what one labelled volume indicates, ``check_channel_order`` judges an order you assumed
(confirmed; contradicted, naming the order indicated and by how much; or cannot tell, and why) and is what
``verify.verify_case`` asks, ``infer_h5_channel_order`` combines a few HDF5 volumes (``precache --source h5
--channel-order infer``, notebooks 01 and 03, ``course.prepare_h5_slices``) and ``signature_effects`` lists the effects
of one order.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.ndimage as ndi

from braintools.data import io
from braintools.data.io import MODALITIES

CONFIRMED = "confirmed"
CONTRADICTED = "contradicted"
CANNOT_TELL = "cannot tell"

CLEAR_EFFECT = 0.5  # a signature decides when its groups differ by half their pooled spread (or more)
STANDARD_ERRORS = 3.0  # ... and by this many standard errors of that difference (small groups: ci volumes)
MIN_VOXELS = 20  # fewer voxels in a group: the signature is not measured
TOP_FRACTION = 0.02  # the brightest 2 % of normal brain on a channel (on T2: CSF)
RING_VOXELS = (2, 10)  # normal brain this far from the tumour (voxels) is "around the tumour"
WM_QUANTILE = 0.25  # around the tumour, the darkest quarter on T2 is white matter ...
GM_QUANTILES = (0.40, 0.75)  # ... and this band on T2 grey matter (above it: CSF)
_MAD_TO_SD = 1.4826
_MEDIAN_SE = 1.2533  # standard error of a median: 1.2533 sigma / sqrt(n) for normal data
_FLOOR = 1e-3  # relative intensities below this (0 inside the brain) count as this dark

_GROUP_NAMES = {"ET": "enhancing tumour", "ED": "edema", "NCR": "necrosis", "tumour": "tumour",
                "WM": "white matter around the tumour", "GM": "grey matter around the tumour"}


class _Signature(NamedTuple):
    name: str
    brighter: str  # modality on top of the log-ratio
    darker: str  # modality below
    groups: tuple[str, str] | None  # (A, B) compared; None: the CSF comparison of the brightest voxels


SIGNATURES: tuple[_Signature, ...] = (
    _Signature("CSF stands out on T2, not on T1", "t2", "t1", None),
    _Signature("CSF stands out on T2, not on T1ce", "t2", "t1ce", None),
    _Signature("CSF stands out on T2, not on FLAIR", "t2", "flair", None),
    _Signature("ET enhances on T1ce (T1ce/T1: ET above edema)", "t1ce", "t1", ("ET", "ED")),
    _Signature("ET enhances on T1ce (T1ce/T1: ET above necrosis)", "t1ce", "t1", ("ET", "NCR")),
    _Signature("tumour brighter on FLAIR than on T1 (vs white matter)", "flair", "t1", ("tumour", "WM")),
    _Signature("tumour brighter on FLAIR than on T1ce (vs white matter)", "flair", "t1ce", ("tumour", "WM")),
    _Signature("grey matter brighter on FLAIR than on T1 (vs white matter)", "flair", "t1", ("GM", "WM")),
    _Signature("grey matter brighter on FLAIR than on T1ce (vs white matter)", "flair", "t1ce", ("GM", "WM")),
)
SIGNATURE_NAMES = tuple(signature.name for signature in SIGNATURES)


class _Effect(NamedTuple):
    value: float  # effect size: difference of medians / pooled spread (> 0: the signature holds)
    threshold: float  # |value| at least this: the signature decides


def _robust_sd(values: np.ndarray) -> float:
    return float(_MAD_TO_SD * np.median(np.abs(values - np.median(values))))


class _Evidence:
    """The voxel groups of one volume and every signature's effect for any pair of channels (cached)."""

    def __init__(self, image: np.ndarray, seg: np.ndarray):
        image, seg = np.asarray(image), np.asarray(seg)
        if image.ndim != 4 or image.shape[0] != len(MODALITIES) or image.shape[1:] != seg.shape:
            raise ValueError(f"need a ({len(MODALITIES)}, X, Y, Z) image and an (X, Y, Z) segmentation, "
                             f"got {image.shape} and {seg.shape}")
        if np.any(np.min(image.reshape(len(image), -1), axis=1) < 0):
            raise ValueError("negative intensities: the signatures need raw MRI intensities (0 outside the brain), "
                             "not z-scored ones")
        brain = np.any(image > 0, axis=0)
        labels = seg[brain]
        normal = labels == 0
        if normal.sum() < 100:
            raise ValueError("too few normal-brain voxels to measure intensity signatures")
        values = image[:, brain].astype(np.float32)
        reference = np.median(values[:, normal], axis=1)
        if np.any(reference <= 0):
            raise ValueError("a channel is 0 in most of the brain: no intensity signature can be measured")
        self.logs = np.log(np.maximum(values / reference[:, None], _FLOOR))
        self.normal = normal
        self.groups = {"ET": labels == 4, "ED": labels == 2, "NCR": labels == 1, "tumour": labels > 0}
        self.top = []
        for channel in values:
            cutoff = np.quantile(channel[normal], 1 - TOP_FRACTION)
            self.top.append(normal & (channel >= cutoff))
        self.ring = _ring(seg > 0, brain)[brain] & normal
        self._tissue: dict[int, dict[str, np.ndarray]] = {}
        self._effects: dict[tuple, _Effect | str] = {}

    def tissue(self, t2: int) -> dict[str, np.ndarray]:
        """White and grey matter around the tumour, told apart on the channel taken as T2."""
        if t2 not in self._tissue:
            groups = dict(self.groups)
            if self.ring.sum() >= MIN_VOXELS:
                around = self.logs[t2][self.ring]
                low, mid, high = np.quantile(around, [WM_QUANTILE, *GM_QUANTILES])
                groups["WM"] = self.ring & (self.logs[t2] <= low)
                groups["GM"] = self.ring & (self.logs[t2] > mid) & (self.logs[t2] <= high)
            else:
                groups["WM"] = groups["GM"] = np.zeros_like(self.ring)
            self._tissue[t2] = groups
        return self._tissue[t2]

    def effect(self, signature: _Signature, brighter: int, darker: int, t2: int) -> _Effect | str:
        """The effect of ``signature`` with these channels as its modalities, or why it cannot be measured."""
        if brighter > darker:  # every effect is antisymmetric: exchanging the channels negates it exactly
            effect = self.effect(signature, darker, brighter, t2)
            return effect if isinstance(effect, str) else _Effect(-effect.value, effect.threshold)
        key = (signature.groups, brighter, darker, t2 if signature.groups and "WM" in signature.groups else None)
        if key not in self._effects:
            ratio = self.logs[brighter] - self.logs[darker]
            if signature.groups is None:
                self._effects[key] = _csf_effect(ratio, self.top[brighter], self.top[darker], self.normal)
            else:
                groups = self.tissue(t2)
                self._effects[key] = _group_effect(ratio, *signature.groups, groups)
        return self._effects[key]


def _ring(tumour: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Brain voxels ``RING_VOXELS`` from the tumour (empty without tumour)."""
    ring = np.zeros_like(tumour)
    if not tumour.any():
        return ring
    where = np.argwhere(tumour)
    low = np.maximum(where.min(axis=0) - RING_VOXELS[1] - 1, 0)
    high = where.max(axis=0) + RING_VOXELS[1] + 2
    box = tuple(slice(a, b) for a, b in zip(low, high))
    distance = ndi.distance_transform_edt(~tumour[box])
    ring[box] = (distance >= RING_VOXELS[0]) & (distance <= RING_VOXELS[1])
    return ring & brain


def _threshold(spread_a: float, count_a: int, spread_b: float, count_b: int, spread: float) -> float:
    standard_error = _MEDIAN_SE * np.sqrt(spread_a**2 / count_a + spread_b**2 / count_b) / spread
    return float(max(CLEAR_EFFECT, STANDARD_ERRORS * standard_error))


def _group_effect(ratio: np.ndarray, a: str, b: str, groups: dict[str, np.ndarray]) -> _Effect | str:
    counts = {name: int(groups[name].sum()) for name in (a, b)}
    for name, count in counts.items():
        if count < MIN_VOXELS:
            return f"{count} voxels of {_GROUP_NAMES[name]}"
    in_a, in_b = ratio[groups[a]], ratio[groups[b]]
    spread_a, spread_b = _robust_sd(in_a), _robust_sd(in_b)
    spread = max(float(np.sqrt((spread_a**2 + spread_b**2) / 2)), _FLOOR)
    value = (float(np.median(in_a)) - float(np.median(in_b))) / spread
    return _Effect(value, _threshold(spread_a, counts[a], spread_b, counts[b], spread))


def _csf_effect(ratio: np.ndarray, top_brighter: np.ndarray, top_darker: np.ndarray, normal: np.ndarray) -> _Effect:
    """How much more the brightest voxels of one channel stand out from the other than the other's brightest do."""
    baseline = float(np.median(ratio[normal]))
    in_a, in_b = ratio[top_brighter], ratio[top_darker]
    spread = max(_robust_sd(ratio[normal]), _FLOOR)
    value = ((float(np.median(in_a)) - baseline) + (float(np.median(in_b)) - baseline)) / spread
    return _Effect(value, _threshold(_robust_sd(in_a), in_a.size, _robust_sd(in_b), in_b.size, spread))


# --------------------------------------------------------------------------- the channel-order decision

ORDERS: tuple[tuple[str, ...], ...] = tuple(itertools.permutations(MODALITIES))
_PRETTY = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}


@dataclass(frozen=True)
class _Judged:
    """Every signature of one channel order on one volume."""

    order: tuple[str, ...]
    effects: dict[str, _Effect | str]  # signature name -> effect, or why it was not measured

    @property
    def refuted_by(self) -> dict[str, float]:
        """Signatures that clearly fail for this order -> their (negative) effect."""
        return {name: effect.value for name, effect in self.effects.items()
                if isinstance(effect, _Effect) and effect.value <= -effect.threshold}

    @property
    def strength(self) -> float:
        """How clearly it is refuted: the largest failing effect (0 when nothing refutes it)."""
        return max((-value for value in self.refuted_by.values()), default=0.0)

    @property
    def measured(self) -> int:
        return sum(isinstance(effect, _Effect) for effect in self.effects.values())

    @property
    def passed(self) -> int:
        return sum(isinstance(effect, _Effect) and effect.value > 0 for effect in self.effects.values())

    def rank(self) -> tuple:
        """Sort key, best first: least refuted, then most signatures holding, then the largest effects."""
        total = sum(np.clip(effect.value, -5, 5) for effect in self.effects.values() if isinstance(effect, _Effect))
        return (self.strength, -self.passed, -float(total))


def _judge(image: np.ndarray, seg: np.ndarray) -> list[_Judged]:
    """Every channel order judged on one volume, best first."""
    evidence = _Evidence(image, seg)
    judged = []
    for order in ORDERS:
        channel = {modality: order.index(modality) for modality in MODALITIES}
        effects = {signature.name: evidence.effect(signature, channel[signature.brighter], channel[signature.darker],
                                                   channel["t2"]) for signature in SIGNATURES}
        judged.append(_Judged(order, effects))
    return sorted(judged, key=_Judged.rank)


def _undecided(best: _Judged, candidates: list[_Judged]) -> str:
    """Why several orders fit: the modalities they disagree on, and what the signatures between them measured."""
    modalities = [m for m in MODALITIES if len({judged.order.index(m) for judged in candidates}) > 1]
    names = [_PRETTY[m] for m in modalities]
    told = " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]
    details = []
    for signature in SIGNATURES:
        if signature.brighter in modalities and signature.darker in modalities:
            effect = best.effects[signature.name]
            details.append(f"'{signature.name}' not measured ({effect})" if isinstance(effect, str) else
                           f"'{signature.name}' {effect.value:+.2f}, needs {effect.threshold:.2f}")
    return f"{told} cannot be told apart ({len(candidates)} orders fit: " + "; ".join(details or ["no signature"]) + ")"


@dataclass
class ChannelOrderGuess:
    """What the signatures of one labelled volume indicate: one order, or cannot tell and why.

    ``order`` is set only when it is the one channel order that no signature clearly refutes; a runner-up that
    ties it or is refuted less than ``CLEAR_EFFECT`` makes the guess ``None`` (cannot tell), never a coin toss.
    """

    order: tuple[str, ...] | None  # modality of each channel; None: the signatures cannot tell
    passed: int  # signatures that hold (effect > 0) for ``order`` (for the best-fitting order when it is None)
    measured: int  # signatures that could be measured (all 9 need NCR, edema, enhancing tumour and brain around them)
    runner_up: tuple[str, ...] | None  # the next best order: refuted least clearly, or another that fits
    runner_up_passed: int  # signatures that hold for the runner-up
    candidates: tuple[tuple[str, ...], ...] = ()  # every order no signature clearly refutes
    effects: dict[str, float | None] = field(default_factory=dict)  # signature -> effect for ``order`` (or the best)
    runner_up_refuted_by: dict[str, float] = field(default_factory=dict)  # signatures refuting the runner-up
    reason: str = ""  # why the signatures cannot tell (empty when ``order`` is set)

    @property
    def clear(self) -> bool:
        """True when the signatures indicate one order: every other one is clearly refuted."""
        return self.order is not None

    def describe(self) -> str:
        """One line: the order and how clearly the runner-up is refuted, or why the signatures cannot tell."""
        if self.order is None:
            return f"cannot tell: {self.reason}"
        return f"{self.order}, {self._holding()}"

    def _holding(self) -> str:
        line = f"{self.passed}/{self.measured} signatures hold"
        if self.runner_up_refuted_by:
            name, value = min(self.runner_up_refuted_by.items(), key=lambda item: item[1])
            line += f"; every other order clearly refuted (closest: {self.runner_up}, '{name}' {value:+.1f})"
        return line


def _effect_values(judged: _Judged) -> dict[str, float | None]:
    return {name: effect.value if isinstance(effect, _Effect) else None for name, effect in judged.effects.items()}


def _guess(judged: list[_Judged]) -> ChannelOrderGuess:
    candidates = [one for one in judged if not one.refuted_by]
    best, runner_up = judged[0], judged[1]
    order = best.order if len(candidates) == 1 else None
    if order is not None:
        reason = ""
    elif candidates:
        reason = _undecided(best, candidates)
    else:
        name, value = min(best.refuted_by.items(), key=lambda item: item[1])
        reason = f"no channel order fits every signature (the closest, {best.order}, fails '{name}' at {value:+.1f})"
    return ChannelOrderGuess(order, best.passed, best.measured, runner_up.order, runner_up.passed,
                             tuple(one.order for one in candidates), _effect_values(best), runner_up.refuted_by,
                             reason)


def infer_channel_order(image: np.ndarray, seg: np.ndarray) -> ChannelOrderGuess:
    """Which channel is T1, T1ce, T2 and FLAIR, from the signatures of one labelled volume, or cannot tell.

    Args:
        image: (4, X, Y, Z) raw intensities, 0 outside the brain (float64 HDF5 volumes included), in any order.
        seg: (X, Y, Z) BraTS labels {0, 1, 2, 4}.

    Raises ``ValueError`` when nothing can be measured (too little normal brain, negative intensities).
    """
    return _guess(_judge(image, seg))


def signature_effects(image: np.ndarray, seg: np.ndarray, order: Sequence[str] = MODALITIES
                      ) -> dict[str, float | None]:
    """Effect size of every channel-order signature when channel i holds ``order[i]``; None: not measured (notebook 01).

    Positive: the signature holds; ``CLEAR_EFFECT`` (0.5) or more: clearly. Negative: it fails.
    """
    order = tuple(order)
    if sorted(order) != sorted(MODALITIES):
        raise ValueError(f"order must name each of {MODALITIES} once, got {order}")
    return _effect_values(next(one for one in _judge(image, seg) if one.order == order))


@dataclass
class ChannelOrderCheck:
    """Verdict of ``check_channel_order`` on an assumed channel order: confirmed, contradicted or cannot tell.

    Attributes:
        claimed: the order checked (modality of each channel).
        verdict: ``CONFIRMED`` (the only order no signature refutes), ``CONTRADICTED`` (signatures clearly refute it
            and indicate exactly one other order, ``indicated``) or ``CANNOT_TELL`` (``reason`` says why).
        indicated: the order the signatures indicate, when they indicate one (``claimed`` when confirmed).
        refuted_by: signatures that clearly fail for ``claimed`` -> their effect (negative).
        effects: every signature's effect for ``claimed`` (None: not measured).
        guess: what the volume indicates on its own (``infer_channel_order``).
        reason: why the signatures cannot tell (empty otherwise).
    """

    claimed: tuple[str, ...]
    verdict: str
    indicated: tuple[str, ...] | None
    refuted_by: dict[str, float]
    effects: dict[str, float | None]
    guess: ChannelOrderGuess
    reason: str = ""

    @property
    def order(self) -> tuple[str, ...] | None:
        """What the volume indicates on its own (``guess.order``; None: cannot tell)."""
        return self.guess.order

    @property
    def passed(self) -> int:
        """Signatures that hold for ``guess`` (see ``ChannelOrderGuess.passed``)."""
        return self.guess.passed

    @property
    def measured(self) -> int:
        """Signatures measured on the volume."""
        return self.guess.measured

    @property
    def confirmed(self) -> bool:
        """The signatures confirm the claimed order."""
        return self.verdict == CONFIRMED

    @property
    def contradicted(self) -> bool:
        """The signatures clearly refute the claimed order and indicate another one (``indicated``)."""
        return self.verdict == CONTRADICTED

    def describe(self) -> str:
        """One line for a person: the verdict, by how much, or why the signatures cannot tell."""
        if self.verdict == CONFIRMED:
            return f"channel order {self.claimed} confirmed: {self.guess._holding()}"
        if self.verdict == CONTRADICTED:
            failing = sorted(self.refuted_by.items(), key=lambda item: item[1])
            fails = ", ".join(f"'{name}' {value:+.1f}" for name, value in failing[:2])
            if len(failing) > 2:
                fails += f" and {len(failing) - 2} more"
            return (f"channel order {self.claimed} contradicted: the intensity signatures indicate {self.indicated} "
                    f"({self.guess.passed}/{self.guess.measured} hold); {self.claimed} fails {fails} "
                    f"(an effect of -{CLEAR_EFFECT} or below refutes)")
        return f"channel order {self.claimed}: cannot tell, {self.reason}"


def _check(judged: list[_Judged], claimed: tuple[str, ...]) -> ChannelOrderCheck:
    guess = _guess(judged)
    mine = next(one for one in judged if one.order == claimed)
    refuted_by, effects = mine.refuted_by, _effect_values(mine)
    if guess.order == claimed:
        return ChannelOrderCheck(claimed, CONFIRMED, claimed, refuted_by, effects, guess)
    if refuted_by and guess.order is not None:
        return ChannelOrderCheck(claimed, CONTRADICTED, guess.order, refuted_by, effects, guess)
    if refuted_by:
        name, value = min(refuted_by.items(), key=lambda item: item[1])
        reason = f"'{name}' fails for it at {value:+.1f}, but the signatures indicate no other order: {guess.reason}"
    else:
        reason = f"it fits, but so do others: {guess.reason}"
    return ChannelOrderCheck(claimed, CANNOT_TELL, None, refuted_by, effects, guess, reason)


def check_channel_order(image: np.ndarray, seg: np.ndarray, assumed: Sequence[str], source: str = "volume",
                        warn: bool = True) -> ChannelOrderCheck:
    """Judge an assumed channel order on one labelled volume; warn, naming ``source``, when it is contradicted.
    Introduced in notebook 01.

    Three verdicts (``ChannelOrderCheck.verdict``): confirmed, contradicted (with the order the signatures
    indicate and by how much the assumed one fails), or cannot tell (e.g. no enhancing tumour: T1 and T1ce look
    alike). Only a contradiction warns: "cannot tell" is not evidence against the assumed order.
    """
    assumed = tuple(assumed)
    if sorted(assumed) != sorted(MODALITIES):
        raise ValueError(f"assumed order must name each of {MODALITIES} once, got {assumed}")
    check = _check(_judge(image, seg), assumed)
    if warn and check.contradicted:
        warnings.warn(f"{source}: channel order {assumed} disagrees with the intensity signatures: "
                      f"{check.describe()}", stacklevel=2)
    return check


def contradicting_order(image: np.ndarray, seg: np.ndarray, order: Sequence[str]) -> ChannelOrderGuess | None:
    """The guess of a volume whose signatures clearly refute ``order`` and indicate another; None otherwise.

    None when they confirm ``order``, cannot tell (no enhancing tumour, a runner-up within the margin, nothing fits)
    or cannot measure anything: a correct order is never reported. ``verify.verify_case`` uses
    ``check_channel_order`` itself, for the effects in its message.
    """
    try:
        check = check_channel_order(image, seg, order, warn=False)
    except ValueError:  # too little normal brain, or not raw intensities: nothing to say
        return None
    return check.guess if check.contradicted else None


@dataclass
class ChannelOrderVote:
    """Result of ``infer_h5_channel_order``: the order every volume read allows, or cannot tell.

    ``order`` is set only when exactly one channel order fits every volume whose signatures fit any order (a volume
    without enhancing tumour fits two, and leaves the choice to the others); ``None`` otherwise (``reason``).
    """

    order: tuple[str, ...] | None  # modality of each channel of the stored HDF5 ``image``; None: cannot tell
    guesses: dict[int, ChannelOrderGuess]  # volume number -> what it indicates on its own
    reason: str = ""  # why the volumes cannot tell (empty when ``order`` is set)

    @property
    def conclusive(self) -> bool:
        """True when the volumes read leave exactly one channel order."""
        return self.order is not None

    @property
    def agreeing(self) -> int:
        """Volumes that fit ``order`` (0 when there is none)."""
        return sum(self.order in guess.candidates for guess in self.guesses.values()) if self.order else 0

    def describe(self) -> str:
        """One line per volume, then the verdict."""
        lines = [f"volume {volume}: {guess.describe()}" for volume, guess in self.guesses.items()]
        if self.order is None:
            return "\n".join(lines + [f"HDF5 channel order: cannot tell ({self.reason}); check the volumes yourself "
                                      f"and give the order explicitly"])
        verdict = f"HDF5 channel order: {self.order} ({self.agreeing} of {len(self.guesses)} volumes agree)"
        alone = [str(volume) for volume, guess in self.guesses.items() if guess.order is None]
        if alone:
            verdict += f"; volume{'s' if len(alone) > 1 else ''} {', '.join(alone)} could not tell alone"
        return "\n".join(lines + [verdict])


def _combine(guesses: dict[int, ChannelOrderGuess]) -> tuple[tuple[str, ...] | None, str, bool]:
    """(order, reason, worth reading more): the orders every informative volume allows."""
    informative = {volume: set(guess.candidates) for volume, guess in guesses.items() if guess.candidates}
    if not informative:
        return None, "no channel order fits any volume read", False
    common = set.intersection(*informative.values())
    if len(common) == 1:
        return next(iter(common)), "", False
    if not common:
        indicated = "; ".join(f"volume {volume}: {guesses[volume].order}" for volume in informative
                              if guesses[volume].order)
        return None, f"the volumes contradict each other ({indicated or 'no order fits them all'})", False
    volumes = ", ".join(str(volume) for volume in informative)
    return None, f"{len(common)} orders fit volumes {volumes}: " + next(
        guesses[volume].reason for volume in informative if guesses[volume].order is None), True


def infer_h5_channel_order(volumes: Mapping[int, Sequence[str | os.PathLike]], n_volumes: int = 3,
                           extra_volumes: int = 3) -> ChannelOrderVote:
    """Infer the channel order of Kaggle HDF5 slices from the first ``n_volumes`` volumes, or cannot tell (notebook 01).
    Introduced in notebook 01 (and used by 03).

    Each volume keeps the orders no signature clearly refutes (``infer_channel_order``); the vote keeps the orders
    every volume allows. Volumes without enhancing tumour allow T1 and T1ce both ways: while the volumes read leave
    several orders (never when they contradict each other), up to ``extra_volumes`` more are read.

    Args:
        volumes: ``io.find_h5_volumes(folder)``: volume number -> its slice files in slice order.
        n_volumes: volumes read first (each ~290 MB of float64 at BraTS size).
        extra_volumes: at most this many more, one at a time, while the order is not settled.

    Example:
        >>> vote = infer_h5_channel_order(io.find_h5_volumes(paths.h5_dir))  # doctest: +SKIP
        >>> if vote.conclusive: cache.h5_sources(paths.h5_dir, channel_order=vote.order)  # doctest: +SKIP
    """
    if n_volumes < 1 or not volumes:
        raise ValueError(f"need at least one volume to infer the channel order (n_volumes={n_volumes})")
    numbers = list(volumes)[:n_volumes + max(extra_volumes, 0)]
    guesses: dict[int, ChannelOrderGuess] = {}
    order, reason = None, ""
    for index, volume in enumerate(numbers):
        stored = io.load_h5_volume(list(volumes[volume]), channel_order=MODALITIES, modalities=MODALITIES)
        try:
            guesses[volume] = infer_channel_order(stored.image, stored.seg)  # channels as stored in the files
        except ValueError as error:  # nothing measurable in this volume
            guesses[volume] = ChannelOrderGuess(None, 0, 0, None, 0, reason=str(error))
        if index + 1 >= n_volumes:
            order, reason, read_more = _combine(guesses)
            if not read_more:
                break
    return ChannelOrderVote(order, guesses, reason)


# --------------------------------------------------------------------------- descriptive signatures (FORMATS.md)

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
    """Check the FORMATS.md intensity signatures on one case: name -> True/False, or None if not measurable.
    Introduced in notebook 01.
    Introduced in notebook 01 (a table in notebook 02).

    A description of the case (notebook 02's table), relative to the median of normal brain: not what the channel
    order is decided on (``signature_effects`` and ``check_channel_order`` compare channels on groups of voxels,
    which a bias field or a bright synthetic edema cannot fool).

    Args:
        image: (4, X, Y, Z) intensities (zero outside the brain, as in BraTS).
        seg: (X, Y, Z) BraTS labels {0, 1, 2, 4}.
        modalities: modality of each image channel.
    """
    margins = _margins_for(_relative_stats(np.asarray(image), np.asarray(seg)), tuple(modalities))
    return {name: None if np.isnan(value) else bool(value > 0) for name, value in margins.items()}
