"""The real reference of the synthetic data: statistics measured once on real BraTS cases, numbers only (notebook 02).

``REAL_STATISTICS`` holds, for every statistic of ``statistics.measure_case``, the median and 10-90 % range over
the 8 real tuning cases of the development data (``REAL_CASE_IDS``; the 5 locked cases of ``benchmarks/realism.py``
score models and are never measured here; numbers only, no voxels or masks); the generator draws its tumours and
contrasts from these ranges and notebook 02 sets synthetic cases beside them.
``KEY_STATISTICS`` are the ones notebook 02 draws.
"""

from __future__ import annotations

import pandas as pd

KEY_STATISTICS = (
    "WT mL", "ET share of TC", "ED/TC volume", "WT components",
    "TC solidity", "ET thickness mm", "core to edge mm", "edema reach p95 mm",
    "t1ce ET/WM", "t1ce NCR/WM", "flair ED/WM", "t2 ED/WM",
    "t1ce ET~NCR", "flair ED~GM", "t1ce noise x", "flair bias",
)

# Measured with ``summarise(measure_cases(...))`` on the 8 TUNING cases of the 13 real BraTS 2018 training cases of the
# course's development data (brats_sample + brats_dev; the fixed tuning / locked split of ``benchmarks/realism.py``):
# median, 10th and 90th percentile over the cases. The 5 locked cases are never measured here: the generator is fitted
# to these numbers, and the locked cases score the models trained on it.
REAL_CASE_IDS = ("Brats18_CBICA_ABM_1", "Brats18_CBICA_APR_1", "Brats18_CBICA_AOZ_1", "Brats18_CBICA_AQQ_1",
                 "Brats18_CBICA_ASY_1", "Brats18_CBICA_ASV_1", "Brats18_CBICA_APZ_1", "Brats18_2013_3_1")
REAL_CASES = len(REAL_CASE_IDS)
REAL_STATISTICS: dict[str, tuple[float, float, float]] = {
    "WT mL": (87.22, 58.59, 127.8),
    "TC mL": (26.94, 13.48, 40.3),
    "ET mL": (17.1, 7.852, 23.57),
    "NCR share of WT": (0.09441, 0.05528, 0.2768),
    "ED share of WT": (0.6845, 0.4647, 0.8613),
    "ET share of WT": (0.2336, 0.06887, 0.2684),
    "ET share of TC": (0.605, 0.4574, 0.728),
    "no enhancement": (0, 0, 0),
    "WT components": (1, 1, 1.3),
    "largest WT share": (0.9998, 0.9962, 1),
    "TC sphericity": (0.4329, 0.3616, 0.5028),
    "TC solidity": (0.553, 0.3897, 0.7931),
    "WT solidity": (0.517, 0.4362, 0.6678),
    "ET thickness mm": (1.93, 1.605, 2.602),
    "core to edge mm": (1.207, 1, 2.439),
    "core depth mm": (16.7, 14.19, 20.81),
    "core to ventricles mm": (5.242, 5.099, 11.92),
    "WT share near edge": (0.0592, 0.03416, 0.09194),
    "height in brain": (0.4808, 0.4222, 0.6531),
    "edema reach median mm": (6.745, 4.365, 10.74),
    "edema reach p95 mm": (17.49, 11.41, 24.61),
    "ED/TC volume": (2.18, 0.8832, 6.229),
    "t1 WM z": (0.6111, 0.4038, 0.7136),
    "t1 GM/WM": (0.7554, 0.5272, 0.7816),
    "t1 GM z": (-0.4655, -1.196, -0.3366),
    "t1 CSF/WM": (0.4685, 0.4416, 0.6707),
    "t1 CSF z": (-1.68, -2.001, -0.8092),
    "t1 NCR/WM": (0.707, 0.5976, 0.932),
    "t1 NCR z": (-0.6471, -1.087, 0.08732),
    "t1 ED/WM": (0.8465, 0.7632, 1.017),
    "t1 ED z": (0.009076, -0.4965, 0.4374),
    "t1 ET/WM": (0.816, 0.7496, 1.005),
    "t1 ET z": (-0.2011, -0.4827, 0.4698),
    "t1ce WM z": (0.2023, 0.1198, 0.3438),
    "t1ce GM/WM": (0.8265, 0.5595, 0.8837),
    "t1ce GM z": (-0.37, -1.052, -0.2219),
    "t1ce CSF/WM": (0.5794, 0.5321, 0.8128),
    "t1ce CSF z": (-1.239, -1.366, -0.4088),
    "t1ce NCR/WM": (0.7459, 0.6406, 0.9109),
    "t1ce NCR z": (-0.6448, -1.045, -0.03196),
    "t1ce ED/WM": (0.8468, 0.7706, 0.9327),
    "t1ce ED z": (-0.2479, -0.5978, -0.03295),
    "t1ce ET/WM": (1.531, 1.393, 2.004),
    "t1ce ET z": (1.922, 1.514, 3.351),
    "t2 WM z": (-0.6234, -0.6997, -0.4446),
    "t2 GM/WM": (1.418, 0.9469, 1.801),
    "t2 GM z": (0.1471, -0.6844, 0.2845),
    "t2 CSF/WM": (2.583, 1.957, 3.207),
    "t2 CSF z": (1.994, 1.446, 2.904),
    "t2 NCR/WM": (2.475, 1.797, 3.044),
    "t2 NCR z": (1.915, 0.9134, 2.945),
    "t2 ED/WM": (1.99, 1.594, 2.334),
    "t2 ED z": (1.106, 0.5309, 1.504),
    "t2 ET/WM": (1.964, 1.722, 2.244),
    "t2 ET z": (1.154, 0.6849, 1.443),
    "flair WM z": (-0.182, -0.327, 0.07611),
    "flair GM/WM": (1.075, 0.7663, 1.193),
    "flair GM z": (0.02278, -0.7305, 0.1572),
    "flair CSF/WM": (0.7139, 0.5334, 1.02),
    "flair CSF z": (-0.9356, -1.261, 0.04935),
    "flair NCR/WM": (2.109, 1.622, 2.225),
    "flair NCR z": (2.468, 1.36, 3.018),
    "flair ED/WM": (2.046, 1.651, 2.352),
    "flair ED z": (2.249, 1.707, 2.874),
    "flair ET/WM": (2.267, 1.765, 2.487),
    "flair ET z": (2.913, 1.693, 3.588),
    "t1 ET~NCR": (0.6029, 0.3478, 0.7103),
    "t1 ET~ED": (0.6644, 0.4651, 0.8635),
    "t1 NCR~ED": (0.4422, 0.1811, 0.7487),
    "t1 ED~WM": (0.5211, 0.377, 0.8301),
    "t1 ED~GM": (0.6788, 0.2192, 0.8765),
    "t1 ET~GM": (0.5363, 0.2615, 0.8614),
    "t1ce ET~NCR": (0.1759, 0.1142, 0.2456),
    "t1ce ET~ED": (0.1375, 0.05375, 0.2407),
    "t1ce NCR~ED": (0.5712, 0.4033, 0.7611),
    "t1ce ED~WM": (0.5221, 0.3759, 0.7803),
    "t1ce ED~GM": (0.7433, 0.3612, 0.879),
    "t1ce ET~GM": (0.1712, 0.1181, 0.3066),
    "t2 ET~NCR": (0.609, 0.3559, 0.8931),
    "t2 ET~ED": (0.7785, 0.5538, 0.842),
    "t2 NCR~ED": (0.5795, 0.3285, 0.7084),
    "t2 ED~WM": (0.05443, 0.02566, 0.2913),
    "t2 ED~GM": (0.3923, 0.2283, 0.6484),
    "t2 ET~GM": (0.3331, 0.1307, 0.6346),
    "flair ET~NCR": (0.7688, 0.6743, 0.8446),
    "flair ET~ED": (0.6287, 0.4887, 0.7903),
    "flair NCR~ED": (0.7537, 0.547, 0.8853),
    "flair ED~WM": (0.06113, 0.02828, 0.2158),
    "flair ED~GM": (0.1196, 0.05178, 0.1979),
    "flair ET~GM": (0.08822, 0.05862, 0.166),
    "t1 bias": (0.09945, 0.07614, 0.1396),
    "t1 noise x": (0.03579, 0.02632, 0.04278),
    "t1 noise y": (0.03048, 0.02181, 0.03636),
    "t1 noise z": (0.03375, 0.02757, 0.04031),
    "t1ce bias": (0.09203, 0.05715, 0.1148),
    "t1ce noise x": (0.03974, 0.03661, 0.05329),
    "t1ce noise y": (0.03286, 0.03065, 0.04459),
    "t1ce noise z": (0.03731, 0.03484, 0.04732),
    "t2 bias": (0.06218, 0.05788, 0.08381),
    "t2 noise x": (0.05255, 0.03864, 0.07283),
    "t2 noise y": (0.04729, 0.03345, 0.0649),
    "t2 noise z": (0.0327, 0.02615, 0.07283),
    "flair bias": (0.08624, 0.06297, 0.09971),
    "flair noise x": (0.06967, 0.04072, 0.07814),
    "flair noise y": (0.0561, 0.03307, 0.0687),
    "flair noise z": (0.03379, 0.02593, 0.04956),
}


def reference_table() -> pd.DataFrame:
    """``REAL_STATISTICS`` as a table like ``summarise`` returns (measured on the 8 tuning cases, ``REAL_CASE_IDS``)."""
    table = pd.DataFrame.from_dict(REAL_STATISTICS, orient="index", columns=["median", "p10", "p90"])
    table["cases"] = REAL_CASES
    return table
