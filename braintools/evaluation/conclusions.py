"""What a comparison of two models or settings allows us to conclude, in words (notebooks 04-07).

A table of means invites a ranking; with a handful of test patients most differences are noise. ``conclude`` reads
the per-case changes between two variants scored on the same cases (``comparison.paired_difference``) and says, region
by region, whether a change is larger than its 95 % interval allows chance to explain: the sentence a notebook prints
under its table, so that the prose always says what the numbers of this run support.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from braintools.data.labels import REGIONS
from braintools.evaluation.comparison import paired_difference

HIGHER_IS_BETTER = {"Dice": True, "Sensitivity": True, "Specificity": True, "HD95": False}


def conclude(per_case: pd.DataFrame, variant: str, baseline: str, metric: str = "Dice",
             regions: Sequence[str] = REGIONS, negligible: float = 0.001) -> str:
    """One sentence: per region, is ``variant`` better or worse than ``baseline`` by more than the noise? (notebook 04)

    ``per_case`` holds ``case_id``, ``variant`` and ``<metric>_<region>`` columns, both variants scored on the same
    cases. A region whose 95 % interval of the mean per-case change contains 0 is "within the noise"; a mean change
    smaller than ``negligible`` is called negligible, however steady; with fewer than two cases nothing can be
    concluded, and the sentence says so.

    Example:
        >>> table = pd.DataFrame({"case_id": ["a", "a", "b", "b", "c", "c"], "variant": ["x", "y"] * 3,
        ...                       "Dice_WT": [0.50, 0.70, 0.60, 0.80, 0.70, 0.91]})
        >>> conclude(table, "y", "x", regions=("WT",))
        'y vs x, Dice over 3 cases: WT +0.203 (95 % interval +0.189 to +0.218): y is better on WT, beyond the noise.'
    """
    better, worse, unclear, tiny, parts, cases = [], [], [], [], [], 0
    for region in regions:
        change = paired_difference(per_case, f"{metric}_{region}", variant, baseline)
        cases = max(cases, change["n"])
        if math.isnan(change["low"]):
            parts.append(f"{region} {change['mean']:+.3f}")
            unclear.append(region)
            continue
        parts.append(f"{region} {change['mean']:+.3f} (95 % interval {change['low']:+.3f} to {change['high']:+.3f})")
        sign = 1 if HIGHER_IS_BETTER.get(metric, True) else -1
        if abs(change["mean"]) < negligible:
            tiny.append(region)
        elif sign * change["low"] > 0 or sign * change["high"] < 0:
            (better if sign * change["mean"] > 0 else worse).append(region)
        else:
            unclear.append(region)
    head = f"{variant} vs {baseline}, {metric} over {cases} case{'s' if cases != 1 else ''}: {', '.join(parts)}: "
    if cases < 2:
        return head + "with fewer than two cases there is no spread to measure, so nothing can be concluded."
    verdicts = []
    if better:
        verdicts.append(f"{variant} is better on {', '.join(better)}, beyond the noise")
    if worse:
        verdicts.append(f"{variant} is worse on {', '.join(worse)}, beyond the noise")
    if unclear and (better or worse or tiny):
        verdicts.append(f"{', '.join(unclear)} within the noise")
    elif unclear:
        verdicts.append(f"every change is within the noise: these {cases} cases cannot tell {variant} from "
                        f"{baseline}")
    if tiny:
        verdicts.append(f"{', '.join(tiny)} changed by less than {negligible:g} (negligible)")
    return head + "; ".join(verdicts) + "."
