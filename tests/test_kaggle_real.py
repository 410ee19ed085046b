"""The kaggle code paths on the 13 real cases laid out exactly as the Kaggle mount (skipped without ../shared)."""

from __future__ import annotations

import kagglehub
import numpy as np
import pandas as pd
import pytest

from braintools.cache import build, store, verify
from braintools.cache.sources import h5_sources
from braintools.cli import main
from braintools.data import download, io, signatures
from braintools.profiles import get_profile

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


@pytest.fixture
def mounted(kaggle_layout, monkeypatch, tmp_path):
    """The layout as ``BRAINTOOLS_KAGGLE_INPUT``, kagglehub forbidden, data and caches in a temporary folder."""
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(kaggle_layout.mount))
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(kagglehub, "dataset_download", lambda *a, **k: pytest.fail("must not download"))
    return kaggle_layout


def test_the_kaggle_profile_finds_both_datasets_on_the_mount(mounted, tmp_path):
    paths = download.get_dataset(get_profile("kaggle"))
    assert paths.source == "kaggle"
    assert paths.nifti_train == mounted.nifti_train and paths.h5_dir == mounted.h5_dir
    assert paths.nifti_validation.name == "MICCAI_BraTS2020_ValidationData"
    assert paths.h5_metadata.name == "BraTS20 Training Metadata.csv"
    table = download.describe_data(paths)
    assert table["cases"].tolist() == [13, 1, len(mounted.h5_volumes)]
    assert table["files"].tolist() == [13 * 5, 4, 155 * len(mounted.h5_volumes)]
    metadata = pd.read_csv(paths.h5_metadata)
    assert sorted(metadata["volume"].unique()) == list(mounted.h5_volumes) and len(metadata) == 155 * 3
    survival = pd.read_csv(paths.nifti_train / "survival_info.csv")
    assert list(survival.columns) == ["Brats20ID", "Age", "Survival_days", "Extent_of_Resection"]
    assert not (tmp_path / "data" / "synthetic").exists()  # no fallback to the synthetic dataset


def test_find_cases_finds_the_13_real_cases_with_the_misnamed_seg(mounted):
    cases = io.find_cases(mounted.nifti_train, require_seg=True)
    assert [case.case_id for case in cases] == sorted(mounted.case_ids)
    assert all(case.missing == [] for case in cases)
    misnamed = next(case for case in cases if case.case_id == mounted.misnamed_case)
    assert misnamed.seg.name == "W39_1998.09.19_Segm.nii"
    loaded = io.load_case(misnamed)
    assert loaded.seg.shape == (240, 240, 155) and set(np.unique(loaded.seg)) <= {0, 1, 2, 4}
    mapping = pd.read_csv(mounted.nifti_train / "name_mapping.csv")
    assert dict(zip(mapping["BraTS_2020_subject_ID"], mapping["BraTS_2018_subject_ID"])) == mounted.case_ids


def test_the_channel_order_of_the_real_hdf5_slices_is_inferred(mounted):
    vote = signatures.infer_h5_channel_order(io.find_h5_volumes(mounted.h5_dir), n_volumes=3)
    assert vote.order == mounted.h5_channel_order != io.H5_CHANNEL_ORDER
    assert vote.conclusive and vote.agreeing == 3 and list(vote.guesses) == list(mounted.h5_volumes)
    assert all(guess.passed == guess.measured == 9 and guess.clear for guess in vote.guesses.values())


def test_the_hdf5_volume_is_paired_with_its_own_case(mounted):
    volume = mounted.h5_volumes[0]
    cases = io.find_cases(mounted.nifti_train)
    h5_case = io.load_h5_volume(io.find_h5_volumes(mounted.h5_dir)[volume], channel_order=mounted.h5_channel_order)
    pairing = download.pair_h5_volume(h5_case, cases)
    assert pairing.case_id == f"BraTS20_Training_{volume:03d}" != cases[volume - 1].case_id
    assert pairing.in_plane == "as stored" and pairing.images_identical


def test_precache_h5_infers_the_order_and_caches_what_the_nifti_cache_holds(mounted, tmp_path, capsys):
    h5_cache, nifti_cache = tmp_path / "h5_cache", tmp_path / "nifti_cache"
    assert main(["precache", "--profile", "kaggle", "--source", "h5", "--channel-order", "infer",
                 "--cache-dir", str(h5_cache), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "HDF5 channel order: ('flair', 't1', 't1ce', 't2') (3 of 3 volumes agree)" in out and "3 converted" in out
    volume = mounted.h5_volumes[0]
    case_id = f"BraTS20_Training_{volume:03d}"
    assert main(["precache", "--profile", "kaggle", "--input", str(mounted.nifti_train / case_id), "--cache-dir",
                 str(nifti_cache), "--workers", "1"]) == 0
    from_h5 = store.load_cached_case(h5_cache, f"volume_{volume}", mmap=False)
    from_nifti = store.load_cached_case(nifti_cache, case_id, mmap=False)
    assert np.array_equal(from_h5[0], from_nifti[0]) and np.array_equal(from_h5[1], from_nifti[1])
    assert store.cached_box(h5_cache, f"volume_{volume}") == store.cached_box(nifti_cache, case_id)  # kaggle: cropped
    assert from_h5[0].shape[1:] != (240, 240, 155)
    entry = store.read_manifest(h5_cache)["cases"][f"volume_{volume}"]
    assert entry["channel_order"] == list(mounted.h5_channel_order)


def test_verify_catches_a_cache_made_with_the_wrong_channel_order(mounted, tmp_path):
    wrong = h5_sources(mounted.h5_dir)[:1]  # the package default order: wrong for these files
    build.precache(wrong, tmp_path / "cache", workers=1, progress=False)
    problems = verify.verify_cache(wrong, tmp_path / "cache", workers=1, progress=False, raise_on_failure=False)
    assert list(problems) == [wrong[0].case_id]
    assert "intensity signatures say ('flair', 't1', 't1ce', 't2') (9/9 hold)" in problems[wrong[0].case_id]
    right = h5_sources(mounted.h5_dir, channel_order=mounted.h5_channel_order)[:1]
    build.precache(right, tmp_path / "cache", workers=1, progress=False)
    assert verify.verify_cache(right, tmp_path / "cache", workers=1, progress=False) == {}
