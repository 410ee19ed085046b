"""Statistics that compare real and synthetic cases: a phantom with known answers, and the real reference table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from braintools.data import io
from braintools.synthetic import reference
from braintools.synthetic import statistics as cs
from braintools.synthetic.generator import make_case
from braintools.viz.charts import plot_comparison

SHAPE = (64, 64, 48)
CENTRE = np.array([32, 32, 24])
# t1, t1ce, t2, flair intensities of each tissue of the phantom
VALUES = {"WM": (100, 100, 100, 100), "GM": (75, 80, 140, 107), "CSF": (45, 55, 230, 70),
          "NCR": (60, 65, 240, 210), "ET": (85, 150, 190, 212), "ED": (88, 88, 200, 200)}
TUMOUR_CENTRE = CENTRE + np.array([8, 0, 0])


def _distance(point) -> np.ndarray:
    grid = np.indices(SHAPE).astype(np.float32)
    return np.sqrt(sum((axis - c) ** 2 for axis, c in zip(grid, point)))


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, np.ndarray]:
    """A ball brain (WM inside, then GM, then CSF) with a spherical tumour: NCR r<4, ET 4-6, ED 6-9 mm."""
    r, t = _distance(CENTRE), _distance(TUMOUR_CENTRE)
    zones = {"CSF": r < 28, "GM": r < 24, "WM": r < 18, "ED": t < 9, "ET": t < 6, "NCR": t < 4}
    image = np.zeros((4, *SHAPE), np.float32)
    for name, mask in zones.items():  # later zones overwrite earlier ones
        image[:, mask] = np.array(VALUES[name], np.float32)[:, None]
    image += np.random.default_rng(0).normal(0, 1.0, image.shape).astype(np.float32) * (image > 0)
    seg = np.zeros(SHAPE, np.uint8)
    for name, value in (("ED", 2), ("ET", 4), ("NCR", 1)):
        seg[zones[name]] = value
    return image, seg


def test_tissue_map_finds_the_phantom_tissues(phantom):
    image, seg = phantom
    tissues = cs._tissue_map(image, seg)
    r, t = _distance(CENTRE), _distance(TUMOUR_CENTRE)
    normal = t > 9 + cs.TUMOUR_MARGIN_MM + 1
    for name, zone in (("WM", r < 17), ("GM", (r > 19) & (r < 23)), ("CSF", (r > 25) & (r < 27.5))):
        assert np.mean(tissues[zone & normal] == cs.TISSUE_CODES[name]) > 0.95, name
    assert np.all(tissues[seg == 4] == cs.TISSUE_CODES["ET"]) and not np.any(tissues[image[0] == 0])


def test_phantom_statistics_match_its_construction(phantom):
    stats = cs.measure_case(*phantom)
    for tissue in ("GM", "CSF", "NCR", "ET", "ED"):
        for channel, modality in enumerate(io.MODALITIES):
            expected = VALUES[tissue][channel] / VALUES["WM"][channel]
            assert stats[f"{modality} {tissue}/WM"] == pytest.approx(expected, rel=0.03), (modality, tissue)
    assert stats["t1ce ET~NCR"] == 0 and stats["flair ET~NCR"] > 0.5  # 1.5 vs 0.65 apart; 2.12 vs 2.10 close
    sphere_ml = lambda radius: 4 / 3 * np.pi * radius**3 / 1000  # noqa: E731
    assert stats["WT mL"] == pytest.approx(sphere_ml(9), rel=0.05)
    assert stats["TC mL"] == pytest.approx(sphere_ml(6), rel=0.08)
    assert stats["ET share of TC"] == pytest.approx(1 - (4 / 6) ** 3, abs=0.05)
    assert stats["WT components"] == 1 and stats["largest WT share"] == 1 and stats["no enhancement"] == 0
    assert 0.55 < stats["TC sphericity"] < 0.8 and stats["TC solidity"] > 0.85
    assert 1.0 < stats["ET thickness mm"] < 2.5  # a 2 mm shell (voxel faces count more area than the sphere has)
    assert stats["core to edge mm"] == pytest.approx(28 - 14, abs=1.5)
    assert stats["edema reach p95 mm"] == pytest.approx(3, abs=1)
    assert stats["ED/TC volume"] == pytest.approx((9**3 - 6**3) / 6**3, rel=0.1)
    assert stats["t1 noise x"] == pytest.approx(0.01, rel=0.2)  # noise std 1 on white matter 100
    assert stats["t1 bias"] < 0.01  # no bias field in the phantom


def test_a_second_blob_is_a_second_component(phantom):
    image, seg = phantom
    seg = seg.copy()
    seg[10:16, 30:36, 20:26] = 2  # 216 voxels of edema far from the tumour
    stats = cs._shape_statistics(seg)
    assert stats["WT components"] == 2 and stats["largest WT share"] < 1


def test_bad_inputs_are_clear_errors(phantom):
    image, seg = phantom
    with pytest.raises(ValueError, match="no tumour"):
        cs.measure_case(image, np.zeros_like(seg))
    with pytest.raises(ValueError, match="shape of seg"):
        cs.measure_case(image[:, :-1], seg)


def test_compare_cases_puts_real_and_synthetic_side_by_side(phantom):
    cases = [make_case(2020, index, (64, 64, 40)) for index in (1, 2)]
    synthetic = cs.measure_cases(cases)
    assert list(synthetic.index) == [case.case_id for case in cases]
    assert synthetic.shape[1] == len(reference.REAL_STATISTICS)
    table = cs.compare_cases(synthetic)
    assert set(table.columns.get_level_values(0)) >= {"real", "synthetic"}
    assert table.loc["WT mL", ("real", "median")] == reference.REAL_STATISTICS["WT mL"][0]
    assert table.loc["WT mL", ("synthetic", "cases")] == 2
    real = cs.measure_cases([io.Case("phantom", *phantom, np.eye(4))])
    inside = cs.compare_cases(real, real)["synthetic", "median in real range"]
    assert inside.dropna().all()  # the same cases are inside their own range
    fig = plot_comparison(table)
    assert len([ax for ax in fig.axes if ax.get_title()]) == len(reference.KEY_STATISTICS)
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == ["real", "synthetic"]
    named = cs.compare_cases(real, label="this dataset")  # real cases against the stored reference
    assert set(named.columns.get_level_values(0)) == {"real", "this dataset"}
    assert [t.get_text() for t in plot_comparison(named).axes[0].get_yticklabels()] == ["real", "this dataset"]
    with pytest.raises(ValueError, match="not in the table"):
        plot_comparison(table, ["no such statistic"])


def test_reference_table_holds_numbers_in_order():
    table = reference.reference_table()
    assert len(table) == len(reference.REAL_STATISTICS) and (table["cases"] == reference.REAL_CASES).all()
    finite = table[["median", "p10", "p90"]].dropna()
    assert (finite["p10"] <= finite["median"]).all() and (finite["median"] <= finite["p90"]).all()
    assert set(reference.KEY_STATISTICS) <= set(table.index)


REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.real_data
@pytest.mark.slow
def test_the_reference_table_is_what_the_real_cases_measure():
    folders = [REAL_DATA / "brats_sample", REAL_DATA / "brats_dev"]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip("the 13 real development cases (../shared/data/brats_sample, brats_dev) are absent")
    found = {files.case_id: files for folder in folders for files in io.find_cases(folder, require_seg=True)}
    files = [found[case_id] for case_id in reference.REAL_CASE_IDS]  # the tuning cases only, never the locked ones
    assert len(files) == reference.REAL_CASES
    measured = cs.summarise(cs.measure_cases(io.load_case(f) for f in files))
    stored = reference.reference_table()
    pd.testing.assert_frame_equal(measured[["median", "p10", "p90"]], stored[["median", "p10", "p90"]],
                                  rtol=2e-3, atol=1e-4)
