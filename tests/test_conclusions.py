"""What a comparison allows us to conclude (evaluation.conclusions) and the stored real-data results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from braintools.evaluation.conclusions import conclude
from braintools.evaluation.stored_results import REAL_DATA_RESULTS, StoredResults


def _table(baseline, variant, region="WT", metric="Dice"):
    cases = [f"case{i}" for i in range(len(baseline))]
    return pd.DataFrame({"case_id": cases * 2, "variant": ["a"] * len(cases) + ["b"] * len(cases),
                         f"{metric}_{region}": list(baseline) + list(variant)})


def test_a_change_beyond_the_noise_is_named_with_its_direction():
    better = conclude(_table([0.5, 0.6, 0.7, 0.8], [0.6, 0.72, 0.79, 0.9]), "b", "a", regions=("WT",))
    assert better.endswith("b is better on WT, beyond the noise.") and "over 4 cases" in better
    worse = conclude(_table([0.6, 0.72, 0.79, 0.9], [0.5, 0.6, 0.7, 0.8]), "b", "a", regions=("WT",))
    assert worse.endswith("b is worse on WT, beyond the noise.")


def test_hd95_is_better_when_lower():
    lower = conclude(_table([10.0, 12, 14, 16], [5.0, 6, 8, 9], metric="HD95"), "b", "a", "HD95", regions=("WT",))
    assert lower.endswith("b is better on WT, beyond the noise.")


def test_noise_and_too_few_cases_say_so():
    noisy = conclude(_table([0.5, 0.9, 0.6, 0.8], [0.6, 0.7, 0.7, 0.7]), "b", "a", regions=("WT",))
    assert noisy.endswith("every change is within the noise: these 4 cases cannot tell b from a.")
    single = conclude(_table([0.5], [0.9]), "b", "a", regions=("WT",))
    assert "+0.400" in single and single.endswith("nothing can be concluded.")


def test_mixed_regions_list_the_ones_within_the_noise():
    table = _table([0.5, 0.6, 0.7, 0.8], [0.6, 0.72, 0.79, 0.9])
    table["Dice_TC"] = [0.5, 0.9, 0.6, 0.8, 0.6, 0.7, 0.7, 0.7]
    sentence = conclude(table, "b", "a", regions=("WT", "TC"))
    assert sentence.endswith("b is better on WT, beyond the noise; TC within the noise.")


def test_stored_real_results_are_marked_as_stored_with_date_cases_and_command():
    banner = REAL_DATA_RESULTS.banner()
    assert banner.startswith("STORED results, NOT measured in this run")
    for part in (REAL_DATA_RESULTS.measured, "5 LOCKED real BraTS 2018 cases", "benchmarks/realism.py"):
        assert part in banner
    table = REAL_DATA_RESULTS.table()
    assert table.index.names == ["model", "trained on", "variant"]
    assert list(table.columns) == [f"{m}_{r}" for m in ("Dice", "HD95") for r in ("WT", "TC", "ET")]
    assert len(table) == 3 and table["Dice_WT"].between(0, 1).all() and table["HD95_WT"].gt(0).all()
    assert table["HD95_TC"].isna().all()  # not recorded: NaN, never a made-up number


def test_stored_results_keep_what_they_are_given():
    stored = StoredResults("2027-01-01", "2 cases", "cmd", "note",
                           ({"model": "m", "trained on": "t", "variant": "v", "Dice_WT": 0.5, "HD95_WT": 3.0},))
    row = stored.table().loc[("m", "t", "v")]
    assert row["Dice_WT"] == 0.5 and row["HD95_WT"] == 3.0 and np.isnan(row["Dice_ET"])


def test_a_steady_but_tiny_change_is_called_negligible():
    table = _table([0.5, 0.6, 0.7, 0.8], [0.5001, 0.6002, 0.7001, 0.8002])
    table["Dice_TC"] = [0.5, 0.9, 0.6, 0.8, 0.6, 0.7, 0.7, 0.7]
    sentence = conclude(table, "b", "a", regions=("WT", "TC"))
    assert sentence.endswith("TC within the noise; WT changed by less than 0.001 (negligible).")
    assert "beyond the noise" not in sentence
