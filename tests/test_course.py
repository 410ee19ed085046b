"""course.prepare_data (the dataset -> split -> cache preamble) and the real cases a model is tested on."""

from __future__ import annotations

import pytest

from braintools import course, paths
from braintools.cache import build, store
from braintools.cache.store import cached_case_ids
from braintools.data import download, io, splits
from braintools.errors import DataError
from braintools.profiles import get_profile
from tests import helpers


@pytest.fixture(scope="module")
def ci_course(tmp_path_factory):
    """The ci profile's data prepared in a temporary BRAINTOOLS_DATA (synthetic dataset, split, cache)."""
    root = tmp_path_factory.mktemp("course_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINTOOLS_DATA", str(root))
        yield course.prepare_data(get_profile("ci"))


def test_prepare_data_gives_the_cases_the_shared_split_and_a_full_cache(ci_course):
    data = ci_course
    assert data.synthetic and data.dataset.source == "synthetic" and len(data.cases) == get_profile("ci").n_cases
    parts = data.split.train + data.split.val + data.split.test
    assert sorted(parts) == sorted(data.cases) and data.split == splits._load_split(paths.split_path("ci"))
    assert data.cache_dir == paths.cache_dir("ci") and cached_case_ids(data.cache_dir) == sorted(data.cases)
    assert [files.case_id for files in data.case_files(data.split.test)] == list(data.split.test)
    assert "SYNTHETIC" in data.describe() and f"{len(data.split.test)} test" in data.describe()


def test_prepare_data_without_the_cache_and_again_gives_the_same_split(ci_course):
    again = course.prepare_data(get_profile("ci"), cache_cases=False)
    assert again.cache_report is None and again.cache_dir == ci_course.cache_dir and again.split == ci_course.split
    assert [source.case_id for source in again.nifti_sources()] == sorted(ci_course.cases)


def test_real_cases_come_from_the_configured_folder_or_the_kaggle_mount(ci_course, tmp_path, monkeypatch):
    monkeypatch.delenv(course.REAL_CASES_ENV, raising=False)
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "no_mount"))
    cases, where = course.real_test_cases(ci_course)
    assert cases == [] and "none found" in where
    for number in (1, 2, 3):
        helpers.write_case(tmp_path / "real" / f"case_{number}", f"case_{number}")
    helpers.write_case(tmp_path / "real" / "unlabelled", "unlabelled", seg_name=None)
    monkeypatch.setenv(course.REAL_CASES_ENV, str(tmp_path / "real"))
    cases, where = course.real_test_cases(ci_course, limit=2)
    assert [files.case_id for files in cases] == ["case_1", "case_2"] and str(tmp_path / "real") in where
    assert course.real_reference_cases(limit=2) == (cases, where)  # the same cases for notebook 02's comparison
    monkeypatch.setenv(course.REAL_CASES_ENV, str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing: folder not found"):
        course.real_test_cases(ci_course)
    monkeypatch.delenv(course.REAL_CASES_ENV)
    training = tmp_path / "mount" / "brats20-dataset-training-validation" / "BraTS2020_TrainingData" / \
        "MICCAI_BraTS2020_TrainingData"
    helpers.write_case(training / "BraTS20_Training_001", "BraTS20_Training_001")
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "mount"))
    cases, _ = course.real_test_cases(ci_course)
    assert [files.case_id for files in cases] == ["BraTS20_Training_001"]


def test_on_real_data_the_real_test_cases_are_the_test_split(ci_course):
    real = course.CourseData(ci_course.profile, download.DataPaths("kaggle", ci_course.dataset.nifti_train, None,
                                                                   ci_course.dataset.h5_dir, None),
                             ci_course.cases, ci_course.split, ci_course.cache_dir)
    cases, where = course.real_test_cases(real)
    assert [files.case_id for files in cases] == list(ci_course.split.test) and "test patients" in where
    assert isinstance(cases[0], io.CaseFiles)


def test_real_data_profiles_write_the_nifti_cache_once_cropped(ci_course, tmp_path, monkeypatch):
    """Notebook 03 caches the cases (as its cell does), then 04's prepare_data converts nothing: one cache, cropped.

    The ci synthetic dataset, laid out as the Kaggle mount, stands in for the real data; BRAINTOOLS_PROFILE names
    another profile, which must play no part."""
    mount = helpers.kaggle_mount(ci_course.dataset, tmp_path / "input")
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(mount))
    monkeypatch.setenv("BRAINTOOLS_PROFILE", "course")
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    profile = get_profile("kaggle-cpu")
    data = course.prepare_data(profile, cache_cases=False)  # notebook 03
    assert not data.synthetic and data.cache_dir == paths.cache_dir("kaggle-cpu")
    report = build.precache(data.nifti_sources(), data.cache_dir, workers=profile.cache_workers, progress=False,
                            crop=profile.crop_cache)
    assert sorted(report.converted) == sorted(data.cases)
    entries = store.read_manifest(data.cache_dir)["cases"]
    assert sorted(entries) == sorted(data.cases) and all(entry["cropped"] for entry in entries.values())
    again = course.prepare_data(profile)  # notebook 04
    assert again.cache_report.converted == [] and sorted(again.cache_report.skipped) == sorted(data.cases)
    assert not (tmp_path / "data" / "synthetic").exists() and not (tmp_path / "data" / "outputs" / "course").exists()


def test_a_real_data_profile_without_the_kaggle_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv(download.KAGGLE_INPUT_ENV, str(tmp_path / "empty"))
    with pytest.raises(DataError, match="empty: no folder brats20-dataset-training-validation"):
        course.prepare_data(get_profile("kaggle"))
    monkeypatch.delenv(download.KAGGLE_INPUT_ENV)
    monkeypatch.setattr(download, "KAGGLE_INPUT", tmp_path / "kaggle" / "input")
    import kagglehub

    def offline(handle, *args, **kwargs):
        raise ConnectionError(f"Failed to resolve 'api.kaggle.com' for {handle}")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(DataError) as raised:
        download.get_dataset(get_profile("colab"))
    message = str(raised.value)
    assert "\n" not in message and "not attached under" in message and "kaggle/input" in message
    assert "ConnectionError" in message and "synthetic profile" in message
    assert not (tmp_path / "data" / "synthetic").exists()  # nothing falls back to generating a dataset
