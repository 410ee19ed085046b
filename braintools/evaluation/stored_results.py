"""Results measured earlier on real BraTS scans, shown when a run has no real case at hand (notebook 07).

A learner working offline trains and tests on synthetic cases only, and would never see how the same recipe does on a
real scan. Notebook 07 then prints these stored figures, marked STORED (not measured in this run), with the date,
the cases and the command that produced them.

They are the locked-set figures of ``benchmarks/realism.py`` (issue 22's protocol: cases never tuned on). To replace
them after a new measurement, edit ``REAL_DATA_RESULTS`` below: it is the only place that holds them.
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
    measured="2026-12-08",  # the synthetic-only runs finished on 2026-12-07, the real-trained ones on 2026-12-08
    cases="the 5 LOCKED real BraTS 2018 cases of benchmarks/realism.py (Brats18_CBICA_AQP_1, _AQO_1, _ATD_1, _ASW_1, "
          "Brats18_TCIA10_628_1), never trained on and never used to choose the generator, the recipe or the "
          "post-processing; mean over the cases, then mean over 3 training seeds",
    command="python benchmarks/realism.py (notebook 05's 3D U-Net recipe and budget, profile course: 20 epochs, "
            "tumour probability 0.67, synthetic generator v3; seeds 2020-2022)",
    note="Seed spread (std over the 3 seeds) of the synthetic-only network alone: WT 0.048, TC 0.037, ET 0.080, HD95 "
         "WT 3.5 mm. The real-trained reference is the same recipe trained on the 8 tuning cases (6 train + 2 "
         "validation), the same 3 seeds. HD95_WT: median over the cases (mm), then mean over the seeds; the other HD95 "
         "were not recorded. On 38 other real BraTS cases (measured outside this repository for issue 22, with an "
         "earlier generator and 10 epochs) the synthetic-only model scored lower: Dice 0.662 / 0.422 / 0.420, HD95 WT "
         "median 55 mm.",
    rows=(
        {"model": "3D U-Net (notebook 05)", "trained on": "synthetic course data", "variant": "network alone",
         "Dice_WT": 0.752, "Dice_TC": 0.648, "Dice_ET": 0.635, "HD95_WT": 15.3},
        {"model": "3D U-Net (notebook 05)", "trained on": "synthetic course data",
         "variant": "+ keep largest component", "Dice_WT": 0.760, "Dice_TC": 0.656, "Dice_ET": 0.645, "HD95_WT": 5.4},
        {"model": "3D U-Net (notebook 05)", "trained on": "8 real tuning cases (6 train + 2 validation)",
         "variant": "network alone", "Dice_WT": 0.749, "Dice_TC": 0.691, "Dice_ET": 0.686, "HD95_WT": 7.8},
    ),
)
