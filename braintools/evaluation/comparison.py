"""Is a difference real? Means over cases carry an uncertainty; compare settings case by case (notebooks 04-07).

Two settings scored on the same cases differ case by case; the spread of those paired differences says how large a
change of the mean must be before it is more than chance at this number of cases (a t-interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from braintools.data.labels import REGIONS


def mean_uncertainty(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the confidence interval of a mean over cases: t * sd / sqrt(n) (NaN skipped; notebook 04).
    Introduced in notebook 04.

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
