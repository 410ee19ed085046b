"""Results measured earlier on real BraTS scans, shown when a run has no real case at hand (notebook 07).

A learner working offline trains and tests on synthetic cases only, and would never see how the same recipe does on a
real scan. Notebook 07 then prints these stored figures, marked STORED (not measured in this run), with the date,
the cases and the command that produced them.

To replace them (e.g. by the locked-set figures of ``benchmarks/realism.py``, issue 22) edit ``REAL_DATA_RESULTS``
below: it is the only place that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from braintools.data.labels import REGIONS


@dataclass(frozen=True)
class StoredResults:
    """Scores measured once on real cases, with where, when and how they were measured."""

    measured: str  # date of the measurement, ISO format
    cases: str  # which real cases, how many, and that no model was trained or tuned on them
    command: str  # the command that produced the figures
    note: str  # what is provisional about them
    rows: tuple[dict, ...]  # one row per model and post-processing: model, trained on, variant, Dice_*, HD95_*

    def table(self) -> pd.DataFrame:
        """The stored scores, one row per model and variant; a figure that was not recorded is NaN."""
        columns = ["model", "trained on", "variant"] + [f"{metric}_{region}" for metric in ("Dice", "HD95")
                                                      for region in REGIONS]
        return pd.DataFrame(list(self.rows)).reindex(columns=columns).set_index(["model", "trained on", "variant"])

    def banner(self) -> str:
        """The lines printed above the table: STORED, not measured in this run, when, on what, by which command."""
        return (f"STORED results, NOT measured in this run: measured on {self.measured} on {self.cases}.\n"
                f"Command: {self.command}\n{self.note}")


REAL_DATA_RESULTS = StoredResults(
    measured="2026-11-30",
    cases="13 real BraTS 2018 cases (the development set brats_sample + brats_dev of ../shared/data), "
          "never trained or tuned on",
    command="python benchmarks/realism.py (notebook 05's 3D U-Net recipe, profile course)",
    note="Provisional: the figures of the README; the lead replaces them with the locked-set figures of "
         "benchmarks/realism.py (issue 22). HD95 was not recorded (NaN).",
    rows=(
        {"model": "3D U-Net (notebook 05)", "trained on": "synthetic course data", "variant": "network alone",
         "Dice_WT": 0.770, "Dice_TC": 0.552, "Dice_ET": 0.606},
        {"model": "3D U-Net (notebook 05)", "trained on": "synthetic course data",
         "variant": "+ keep largest component", "Dice_WT": 0.798, "Dice_TC": 0.609, "Dice_ET": 0.664},
        {"model": "3D U-Net (notebook 05)", "trained on": "real cases (5 rotating folds of 8 training cases)",
         "variant": "network alone", "Dice_WT": 0.781, "Dice_TC": 0.723, "Dice_ET": 0.714},
    ),
)
