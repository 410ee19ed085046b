"""BraTS metrics: Dice and HD95 against MONAI, empty-region conventions, folder evaluation and summaries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from braintools.data import io
from braintools.errors import DataError
from braintools.evaluation.cases import evaluate_folder, summarize, write_csv
from braintools.evaluation.comparison import paired_difference
from braintools.evaluation.dice import dice
from braintools.evaluation.hd95 import HD95_PENALTY_MM, _resolve_spacing, hd95
from braintools.evaluation.metrics import region_metrics, sensitivity, specificity


def random_masks(seed: int, shape=(18, 15, 11)) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping blobby masks (random voxels grown by a dilation), some touching the array border."""
    rng = np.random.default_rng(seed)
    pred = ndimage.binary_dilation(rng.random(shape) < 0.02, iterations=int(rng.integers(1, 3)))
    gt = ndimage.binary_dilation(rng.random(shape) < 0.02, iterations=int(rng.integers(1, 3)))
    return pred, gt


def monai_hd95(pred, gt, spacing):
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    as_batch = lambda mask: torch.from_numpy(mask)[None, None].float()  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return monai_metrics.compute_hausdorff_distance(as_batch(pred), as_batch(gt), include_background=True,
                                                        percentile=95, spacing=spacing).item()


def monai_dice(pred, gt, ignore_empty):
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    as_batch = lambda mask: torch.from_numpy(mask)[None, None].float()  # noqa: E731
    return monai_metrics.compute_dice(as_batch(pred), as_batch(gt), include_background=True,
                                      ignore_empty=ignore_empty).item()


# ---------------------------------------------------------------- MONAI oracle
@pytest.mark.parametrize("seed", range(8))
def test_dice_matches_monai(seed):
    pred, gt = random_masks(seed)
    assert dice(pred, gt) == pytest.approx(monai_dice(pred, gt, ignore_empty=False), abs=1e-6)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 1.3, 2.5)])
def test_hd95_matches_monai(seed, spacing):
    pred, gt = random_masks(seed)
    # MONAI returns float32: agreement to 1e-5 relative.
    assert hd95(pred, gt, spacing) == pytest.approx(monai_hd95(pred, gt, spacing), rel=1e-5, abs=1e-5)


def test_hd95_matches_monai_in_2d_and_on_large_sparse_volumes():
    pred, gt = random_masks(3, shape=(40, 33))
    assert hd95(pred, gt, (1.0, 2.0)) == pytest.approx(monai_hd95(pred, gt, (1.0, 2.0)), rel=1e-5)
    big_pred, big_gt = np.zeros((120, 120, 80), bool), np.zeros((120, 120, 80), bool)
    big_pred[30:60, 40:70, 20:50] = True
    big_gt[35:62, 38:66, 22:55] = True
    big_gt[100:103, 5:8, 70:73] = True  # a distant satellite lesion: a big bounding box
    assert hd95(big_pred, big_gt) == pytest.approx(monai_hd95(big_pred, big_gt, None), rel=1e-5)


@pytest.mark.parametrize(
    ("pred_empty", "gt_empty", "brats_dice", "ignore_dice", "brats_hd", "ignore_hd"),
    [
        (True, True, 1.0, math.nan, 0.0, math.nan),
        (False, True, 0.0, math.nan, HD95_PENALTY_MM, math.nan),
        (True, False, 0.0, 0.0, HD95_PENALTY_MM, HD95_PENALTY_MM),
    ],
)
def test_empty_region_conventions(pred_empty, gt_empty, brats_dice, ignore_dice, brats_hd, ignore_hd):
    blob = np.zeros((8, 8, 8), bool)
    blob[2:5, 2:5, 2:5] = True
    pred = np.zeros_like(blob) if pred_empty else blob
    gt = np.zeros_like(blob) if gt_empty else blob
    assert dice(pred, gt, "brats") == brats_dice
    assert dice(pred, gt, "ignore") == pytest.approx(ignore_dice, nan_ok=True)
    assert hd95(pred, gt, empty="brats") == brats_hd
    assert hd95(pred, gt, empty="ignore") == pytest.approx(ignore_hd, nan_ok=True)
    # MONAI's Dice agrees: ignore_empty=False is "brats", ignore_empty=True is "ignore".
    assert monai_dice(pred, gt, ignore_empty=False) == brats_dice
    assert monai_dice(pred, gt, ignore_empty=True) == pytest.approx(ignore_dice, nan_ok=True)
    # MONAI's HD95 has no empty rule: it returns NaN (or inf) in all three cases, where we apply the convention.
    assert not math.isfinite(monai_hd95(pred, gt, None))


# ---------------------------------------------------------------- definitions
def test_hd95_known_distances_and_spacing():
    pred, gt = np.zeros((10, 3, 3), bool), np.zeros((10, 3, 3), bool)
    pred[1, 1, 1], gt[4, 1, 1] = True, True
    assert hd95(pred, gt) == 3.0
    assert hd95(pred, gt, (2.0, 1.0, 1.0)) == 6.0
    assert hd95(pred, gt, np.diag([-2.0, -1.0, 1.0, 1.0])) == 6.0  # spacing read from an affine
    assert hd95(pred, pred) == 0.0


def test_hd95_on_the_bounding_box_equals_the_whole_volume():
    for seed in range(4):
        pred, gt = random_masks(seed, shape=(30, 25, 12))
        pred_surface = pred & ~ndimage.binary_erosion(pred)
        gt_surface = gt & ~ndimage.binary_erosion(gt)
        forward = ndimage.distance_transform_edt(~gt_surface, sampling=(1, 2, 3))[pred_surface]
        backward = ndimage.distance_transform_edt(~pred_surface, sampling=(1, 2, 3))[gt_surface]
        whole = max(np.percentile(forward, 95), np.percentile(backward, 95))
        assert hd95(pred, gt, (1, 2, 3)) == pytest.approx(whole)


def test_sensitivity_and_specificity():
    pred = np.array([1, 1, 0, 0, 1, 0], bool)
    gt = np.array([1, 0, 0, 1, 1, 0], bool)
    assert sensitivity(pred, gt) == pytest.approx(2 / 3)
    assert specificity(pred, gt) == pytest.approx(2 / 3)
    empty, full = np.zeros(3, bool), np.ones(3, bool)
    assert sensitivity(empty, empty) == 1.0 and sensitivity(full, empty) == 0.0
    assert math.isnan(sensitivity(full, empty, "ignore"))
    assert specificity(full, full) == 1.0 and math.isnan(specificity(full, full, "ignore"))


def test_spacing_helpers():
    assert _resolve_spacing(io.brats_affine((4, 4, 4), (1.0, 2.0, 3.0)), 3) == (1.0, 2.0, 3.0)
    assert _resolve_spacing(None, 2) == (1.0, 1.0)
    with pytest.raises(ValueError, match="spacing"):
        _resolve_spacing((1.0, 1.0), 3)
    with pytest.raises(ValueError, match="spacing"):
        _resolve_spacing((1.0, 0.0, 1.0), 3)
    with pytest.raises(ValueError, match="affine"):
        _resolve_spacing(np.eye(3), 3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="empty-region rule"):
        dice(np.ones(2), np.ones(2), empty="skip")
    with pytest.raises(ValueError, match="differ in shape"):
        hd95(np.ones(2), np.ones(3))


def test_region_metrics_regions_and_conventions():
    gt = np.zeros((10, 10, 6), np.uint8)
    gt[2:7, 2:7, 1:5] = 2
    gt[3:5, 3:5, 2:4] = 1  # a tumour with no enhancing part
    scores = region_metrics(gt, gt, spacing=(1, 1, 1))
    assert list(scores)[:4] == ["Dice_WT", "HD95_WT", "Sensitivity_WT", "Specificity_WT"]
    assert len(scores) == 12
    assert scores["Dice_WT"] == scores["Dice_TC"] == scores["Dice_ET"] == 1.0
    assert scores["HD95_TC"] == 0.0
    ignored = region_metrics(gt, gt, empty="ignore")
    assert math.isnan(ignored["Dice_ET"]) and ignored["Dice_TC"] == 1.0
    pred = gt.copy()
    pred[3, 3, 2] = 3  # one false ET voxel: Dice 0 under the BraTS rule
    assert region_metrics(pred, gt)["Dice_ET"] == 0.0
    assert region_metrics(pred, gt)["HD95_ET"] == HD95_PENALTY_MM
    with pytest.raises(ValueError, match="shape"):
        region_metrics(gt, gt[:5])
    with pytest.raises(ValueError, match="to_contiguous"):
        region_metrics(np.where(pred == 3, 4, pred), gt)  # BraTS labels by mistake: ET would vanish


# ---------------------------------------------------------------- folders, tables, CSV
def write_seg(path, labels):
    return io.save_prediction_nifti(labels, io.brats_affine(labels.shape, (1.0, 1.0, 2.0)), path)


@pytest.fixture
def scored_folders(tmp_path):
    """Ground truth for cases A and B (layout of io.find_cases), predictions for A, B and an orphan C."""
    truth = np.zeros((12, 12, 6), np.uint8)
    truth[3:9, 3:9, 1:5] = 2
    truth[4:7, 4:7, 2:4] = 1
    truth[5, 5, 2] = 4
    write_seg(tmp_path / "gt" / "A" / "A_seg.nii.gz", truth)
    write_seg(tmp_path / "gt" / "B" / "B_seg.nii", np.where(truth == 4, 1, truth).astype(np.uint8))
    write_seg(tmp_path / "pred" / "A.nii.gz", truth)
    write_seg(tmp_path / "pred" / "B.nii.gz", truth)
    write_seg(tmp_path / "pred" / "C.nii.gz", truth)
    return tmp_path


def test_evaluate_folder_scores_each_case_and_writes_csv(scored_folders):
    csv_path = scored_folders / "out" / "scores.csv"
    with pytest.warns(UserWarning, match="no ground truth .* C"):
        table = evaluate_folder(scored_folders / "pred", scored_folders / "gt", csv_path=csv_path, progress=False)
    assert table["case_id"].tolist() == ["A", "B"]
    assert table.loc[0, "Dice_WT"] == 1.0 and table.loc[0, "HD95_ET"] == 0.0
    assert table.loc[1, "Dice_ET"] == 0.0 and table.loc[1, "HD95_ET"] == HD95_PENALTY_MM  # B has no ET
    assert (table["empty_rule"] == "brats").all()
    pd.testing.assert_frame_equal(pd.read_csv(csv_path), table)


def test_evaluate_folder_ignore_convention_and_summary(scored_folders):
    with pytest.warns(UserWarning):
        table = evaluate_folder(scored_folders / "pred", scored_folders / "gt", empty="ignore", progress=False)
    assert math.isnan(table.loc[1, "Dice_ET"])
    summary = summarize(table)
    assert list(summary.columns) == ["metric", "region", "mean", "std", "median", "n_cases", "empty_rule"]
    assert len(summary) == 12 and (summary["empty_rule"] == "ignore").all()
    dice_et = summary[(summary.metric == "Dice") & (summary.region == "ET")].iloc[0]
    assert dice_et["mean"] == 1.0 and dice_et["n_cases"] == 1


def test_summarize_statistics():
    table = pd.DataFrame({"case_id": ["a", "b", "c"], "Dice_WT": [0.5, 0.7, np.nan], "empty_rule": "ignore"})
    row = summarize(table).iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["median"] == pytest.approx(0.6)
    assert row["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1)) and row["n_cases"] == 2
    with pytest.raises(ValueError, match="empty_rule"):
        summarize(table.assign(empty_rule=["brats", "ignore", "brats"]))
    with pytest.raises(ValueError, match="metric columns"):
        summarize(table.drop(columns="Dice_WT"))


def test_evaluate_folder_errors_name_the_file(scored_folders, tmp_path):
    with pytest.raises(DataError, match="prediction folder not found"):
        evaluate_folder(tmp_path / "nowhere", scored_folders / "gt")
    write_seg(tmp_path / "pred_bad" / "A.nii.gz", np.zeros((5, 5, 5), np.uint8))
    with pytest.raises(DataError, match=r"A\.nii\.gz: prediction shape"):
        evaluate_folder(tmp_path / "pred_bad", scored_folders / "gt", progress=False)
    (tmp_path / "pred_none").mkdir()
    with pytest.raises(DataError, match="no predictions found"):
        evaluate_folder(tmp_path / "pred_none", scored_folders / "gt")
    only_orphan = _only(scored_folders, "C")
    with pytest.raises(DataError, match="no prediction matches"), pytest.warns(UserWarning):
        evaluate_folder(only_orphan, scored_folders / "gt", progress=False)


def _only(root, case_id):
    folder = root / f"pred_only_{case_id}"
    folder.mkdir()
    (folder / f"{case_id}.nii.gz").write_bytes((root / "pred" / f"{case_id}.nii.gz").read_bytes())
    return folder


def test_evaluate_folder_rejects_bad_labels(scored_folders, tmp_path):
    import nibabel as nib

    folder = tmp_path / "pred_labels"
    folder.mkdir()
    bad = np.full((12, 12, 6), 3, np.uint8)
    nib.save(nib.Nifti1Image(bad, io.brats_affine(bad.shape, (1.0, 1.0, 2.0))), folder / "A.nii.gz")
    with pytest.raises(DataError, match=r"A\.nii\.gz: unexpected label values \[3\]"):
        evaluate_folder(folder, scored_folders / "gt", progress=False)


def test_write_csv_is_atomic_and_round_trips(tmp_path):
    table = pd.DataFrame({"case_id": ["a"], "Dice_WT": [0.9]})
    path = write_csv(table, tmp_path / "sub" / "t.csv")
    assert path.read_text().splitlines() == ["case_id,Dice_WT", "a,0.9"]
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]


@pytest.mark.real_data
def test_region_metrics_on_a_real_case(real_sample_dir):
    from braintools.data.labels import to_contiguous

    case = io.find_cases(real_sample_dir)[0]
    seg, affine = io.load_nifti(case.seg)
    gt = to_contiguous(seg)
    scores = region_metrics(gt, gt, spacing=affine)
    assert all(scores[f"Dice_{region}"] == 1.0 for region in ("WT", "TC", "ET"))
    shifted = np.roll(gt, 2, axis=0)  # 2 mm shift along X
    hd = region_metrics(shifted, gt, spacing=affine)["HD95_WT"]
    assert hd == pytest.approx(monai_hd95(shifted > 0, gt > 0, _resolve_spacing(affine, 3)), rel=1e-5)
    assert 1.0 <= hd <= 2.0


def test_compare_variants_means_and_changes():
    from braintools.evaluation.comparison import compare_variants

    per_case = pd.DataFrame({
        "variant": ["plain", "plain", "tta", "tta"], "case_id": ["a", "b", "a", "b"],
        "Dice_WT": [0.8, 0.6, 0.9, 0.7], "Dice_TC": [0.5, np.nan, 0.6, 0.4], "Dice_ET": [0.0, 1.0, 0.5, 1.0],
    })
    table = compare_variants(per_case)
    assert list(table.index) == ["plain", "tta"]
    np.testing.assert_allclose(table.loc["tta", ["Dice_WT", "Dice_TC", "Dice_ET"]], [0.8, 0.5, 0.75])
    np.testing.assert_allclose(table.loc["tta", ["change_WT", "change_TC", "change_ET"]], [0.1, 0.0, 0.25])
    np.testing.assert_allclose(table.loc["plain", "mean"], (0.7 + 0.5 + 0.5) / 3)
    with pytest.raises(ValueError, match="baseline"):
        compare_variants(per_case, baseline="nope")
    with pytest.raises(ValueError, match="HD95_WT"):
        compare_variants(per_case, metric="HD95")


def test_paired_difference_measures_the_change_case_by_case():
    from scipy import stats

    rows = [{"case_id": f"c{i}", "variant": name, "Dice_WT": base + (delta if name == "new" else 0.0)}
            for i, (base, delta) in enumerate([(0.5, 0.10), (0.7, 0.12), (0.9, 0.08), (0.6, 0.10)])
            for name in ("old", "new")]
    table = pd.DataFrame(rows)
    result = paired_difference(table, "Dice_WT", "new", "old")
    assert result["n"] == 4 and result["mean"] == pytest.approx(0.10)
    half = stats.t.ppf(0.975, 3) * np.std([0.10, 0.12, 0.08, 0.10], ddof=1) / 2
    assert result["high"] - result["mean"] == pytest.approx(half) == pytest.approx(result["mean"] - result["low"])
    assert result["low"] < 0.10 < result["high"] and result["low"] > 0  # a consistent change is more than noise
    one = paired_difference(table[table["case_id"] == "c0"], "Dice_WT", "new", "old")
    assert one["n"] == 1 and np.isnan(one["low"]) and np.isnan(one["high"])
    with pytest.raises(ValueError, match="no variant"):
        paired_difference(table, "Dice_WT", "newest", "old")


def test_mean_uncertainty_is_the_t_interval_of_a_mean():
    from scipy import stats

    from braintools.evaluation.comparison import mean_uncertainty

    values = [0.8, 0.6, 0.7, 0.9, np.nan]
    expected = stats.t.ppf(0.975, 3) * np.std([0.8, 0.6, 0.7, 0.9], ddof=1) / 2
    assert mean_uncertainty(values) == pytest.approx(expected)
    assert mean_uncertainty([0.8, 0.6, 0.7, 0.9], confidence=0.5) < expected
    assert np.isnan(mean_uncertainty([0.7])) and np.isnan(mean_uncertainty([]))
    assert mean_uncertainty([0.5, 0.5, 0.5]) == 0.0


def test_compare_variants_noise_comes_from_the_paired_changes():
    from braintools.evaluation.comparison import compare_variants, mean_uncertainty

    per_case = pd.DataFrame({
        "variant": ["a"] * 3 + ["b"] * 3, "case_id": ["x", "y", "z"] * 2,
        "Dice_WT": [0.2, 0.5, 0.9, 0.3, 0.6, 1.0],  # b = a + 0.1 on every case: a sure change despite the spread
        "Dice_TC": [0.5, 0.5, 0.5, 0.2, 0.9, 0.4], "Dice_ET": [0.1, 0.2, 0.3, 0.1, 0.2, np.nan],
    })
    table = compare_variants(per_case, noise=True)
    assert np.isnan(table.loc["a", ["noise_WT", "noise_TC", "noise_ET"]].astype(float)).all()
    assert table.loc["b", "noise_WT"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["b", "noise_TC"] == pytest.approx(mean_uncertainty([-0.3, 0.4, -0.1]))
    assert table.loc["b", "noise_ET"] == pytest.approx(mean_uncertainty([0.0, 0.0]))  # case z: b has no ET score
    assert "noise_WT" not in compare_variants(per_case)


# ---------------------------------------------------------------- orientation, records, missing cases, kept tables
def _asymmetric_truth():
    truth = np.zeros((12, 10, 6), np.uint8)
    truth[1:5, 2:7, 1:4] = 2  # off-centre along every axis: a flip moves it
    truth[2:4, 3:5, 2] = 4
    return truth


def test_a_prediction_stored_in_other_axes_is_reoriented_to_the_truth_and_scored(tmp_path):
    import nibabel as nib

    truth = _asymmetric_truth()
    affine = io.brats_affine(truth.shape, (1.0, 1.0, 2.0))  # LPS, as BraTS stores it
    write_seg(tmp_path / "gt" / "A" / "A_seg.nii.gz", truth)
    ras = nib.as_closest_canonical(nib.Nifti1Image(truth, affine))  # the same voxels, stored in RAS order
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S") and nib.aff2axcodes(affine) != ("R", "A", "S")
    (tmp_path / "pred").mkdir()
    nib.save(ras, tmp_path / "pred" / "A.nii.gz")
    with pytest.warns(UserWarning, match=r"A\.nii\.gz: stored with axes RAS, its ground truth with LPS .*reoriented"):
        table = evaluate_folder(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert table.loc[0, "Dice_WT"] == 1.0 and table.loc[0, "Dice_ET"] == 1.0  # voxel-wise: 0.0


def test_a_prediction_on_another_grid_fails_naming_the_file(tmp_path):
    import nibabel as nib

    truth = _asymmetric_truth()
    affine = io.brats_affine(truth.shape, (1.0, 1.0, 2.0))
    write_seg(tmp_path / "gt" / "A" / "A_seg.nii.gz", truth)
    shifted = affine.copy()
    shifted[:3, 3] += 5.0  # 5 mm away: no reorientation puts it on the truth's grid
    (tmp_path / "pred").mkdir()
    nib.save(nib.Nifti1Image(truth, shifted), tmp_path / "pred" / "A.nii.gz")
    table = evaluate_folder(tmp_path / "pred", tmp_path / "gt", progress=False, skip_failures=True)
    assert table.empty
    assert "A.nii.gz: prediction is not on the ground truth's voxel grid" in table.attrs["failures"]["A"]


def _recorded(folder, case_id, labels, settings):
    from braintools.inference import records

    with records.recording(folder, case_id, {"checkpoint": "model_best.pt", "epoch": 3, "settings": settings}) as path:
        write_seg(path, labels)


def test_each_case_is_reported_with_the_settings_that_made_its_file(scored_folders, tmp_path):
    from braintools.inference import records

    truth = io.load_nifti(scored_folders / "pred" / "A.nii.gz")[0]
    folder = tmp_path / "made"
    _recorded(folder, "A", truth, "plain")
    _recorded(folder, "B", truth, "plain")
    _recorded(folder, "B", truth, "keep largest WT")  # B predicted again with other settings
    table = evaluate_folder(folder, scored_folders / "gt", progress=False)
    assert dict(zip(table["case_id"], table["settings"])) == {"A": "plain", "B": "keep largest WT"}
    assert set(table["checkpoint"]) == {"model_best.pt (epoch 3)"}
    write_seg(folder / "A.nii.gz", np.zeros_like(truth))  # replaced by something that kept no record
    (folder / "C.nii.gz").unlink(missing_ok=True)
    table = evaluate_folder(folder, scored_folders / "gt", progress=False)
    assert table.loc[0, "settings"] == "unknown (A.nii.gz changed after its record was written)"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".tmp")] == []
    assert set(records.read_records(folder)) == {"A", "B"}


def test_concurrent_writers_leave_every_file_with_its_own_record(scored_folders, tmp_path):
    import threading
    import time

    from braintools.inference import records

    truth = io.load_nifti(scored_folders / "pred" / "A.nii.gz")[0]
    folder, order = tmp_path / "made", []

    def slow_writer(settings, labels, pause):
        with records.recording(folder, "A", {"checkpoint": "m.pt", "settings": settings}) as path:
            order.append(f"{settings} writes")
            time.sleep(pause)  # the other run tries to write the same case meanwhile
            write_seg(path, labels)
        order.append(f"{settings} done")

    first = threading.Thread(target=slow_writer, args=("first", truth, 0.5))
    first.start()
    time.sleep(0.1)
    slow_writer("second", np.where(truth == 4, 1, truth).astype(np.uint8), 0.0)
    first.join()
    assert order == ["first writes", "first done", "second writes", "second done"]  # took turns
    table = evaluate_folder(folder, scored_folders / "gt", progress=False)
    assert table.loc[0, "settings"] == "second" and table.loc[0, "Dice_ET"] == 0.0  # second's file, second's record


def test_a_damaged_record_file_is_one_error_before_any_scoring(scored_folders, monkeypatch):
    from braintools.evaluation import cases

    folder = scored_folders / "pred"
    monkeypatch.setattr(cases, "region_metrics", lambda *args, **kwargs: pytest.fail("scored before the check"))
    for text in ("{not json", '{"format": 2, "cases": {"A": {"file": "A.nii.gz"}}}', '{"checkpoint": "x"}', "[]"):
        (folder / "prediction_settings.json").write_text(text)
        with pytest.raises(DataError, match=r"prediction_settings\.json: prediction records are damaged .*delete this "
                                            r"file to score the predictions without their settings"):
            evaluate_folder(folder, scored_folders / "gt", progress=False)


def test_an_older_record_file_is_given_to_every_case_with_a_warning_in_its_text(scored_folders):
    folder = scored_folders / "pred"
    (folder / "prediction_settings.json").write_text('{"checkpoint": "u_best.pt", "model": "m", "settings": "plain"}')
    with pytest.warns(UserWarning):
        table = evaluate_folder(folder, scored_folders / "gt", progress=False)
    assert all(value.startswith("plain (older record of the folder's last predict run") for value in table["settings"])


def test_cases_with_ground_truth_but_no_prediction_are_named(scored_folders):
    (scored_folders / "pred" / "B.nii.gz").unlink()
    with pytest.warns(UserWarning, match="no ground truth"):
        table = evaluate_folder(scored_folders / "pred", scored_folders / "gt", progress=False)
    assert table.attrs["unpredicted"] == ["B"] and table.attrs["orphans"] == ["C"]


def test_a_table_without_a_case_never_replaces_an_earlier_one(scored_folders, tmp_path):
    csv_path = tmp_path / "scores.csv"
    with pytest.warns(UserWarning):
        evaluate_folder(scored_folders / "pred", scored_folders / "gt", csv_path=csv_path, progress=False)
    before = csv_path.read_bytes()
    for name in ("A.nii.gz", "B.nii.gz"):
        (scored_folders / "pred" / name).write_bytes(b"garbage")  # every case now fails
    with pytest.warns(UserWarning, match=r"scores\.csv: not written, no case could be scored; the earlier table is "):
        table = evaluate_folder(scored_folders / "pred", scored_folders / "gt", csv_path=csv_path, progress=False,
                                skip_failures=True)
    assert table.empty and sorted(table.attrs["failures"]) == ["A", "B"] and csv_path.read_bytes() == before
    with pytest.raises(DataError, match="not replaced by a table without rows"):
        write_csv(table, csv_path)
    assert csv_path.read_bytes() == before


def test_a_checkpoint_is_recorded_by_path_epoch_and_checksum(tmp_path):
    from braintools.cache.store import file_sha256
    from braintools.inference import records

    checkpoint = tmp_path / "unet3d_best.pt"
    checkpoint.write_bytes(b"weights")
    assert records.describe_checkpoint(checkpoint, 7) == {
        "checkpoint": str(checkpoint), "epoch": 7, "checkpoint_sha256": file_sha256(checkpoint)}
    assert records.records_path(tmp_path) == tmp_path / "prediction_settings.json"
    assert records.read_records(tmp_path) == {}
    with pytest.raises(DataError, match="no prediction records"):
        records.read_records(tmp_path, missing_ok=False)
    assert records.how_made({}, "A", tmp_path / "A.nii.gz")["settings"] == "unknown (no prediction_settings.json)"
