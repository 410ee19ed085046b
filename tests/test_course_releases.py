"""The course preamble on the synthetic data in the BraTS 2023 layout: no HDF5 copy, so 03 and 04 use the NIfTI."""

from __future__ import annotations

import numpy as np
import pytest

from braintools import course, paths
from braintools.cli import main
from braintools.data import download, io, releases
from braintools.profiles import PROFILES, get_profile


@pytest.fixture(scope="module")
def ci_2023(tmp_path_factory):
    """The ci-2023 profile's data prepared in a temporary BRAINTOOLS_DATA (synthetic 2023 layout, split, cache)."""
    root = tmp_path_factory.mktemp("course_2023")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.DATA_ENV, str(root))
        yield course.prepare_data(get_profile("ci-2023"))


def test_the_release_profiles_are_the_ci_and_course_sizes_in_another_layout():
    for base in ("ci", "course"):
        for release in ("2021", "2023"):
            profile = PROFILES[f"{base}-{release}"]
            assert profile.release == release and profile.source == "synthetic"
            assert profile.grid_shape == PROFILES[base].grid_shape and profile.n_cases == PROFILES[base].n_cases
    assert PROFILES["ci"].release == PROFILES["kaggle"].release == "2020"


def test_the_2023_layout_gives_2023_cases_and_no_hdf5(ci_2023):
    dataset = ci_2023.dataset
    assert dataset.synthetic and dataset.release is releases.BRATS_2023 and dataset.h5_dir is None
    assert "BraTS 2023 GLI ships its cases" in dataset.banner()
    assert sorted(ci_2023.cases) == [f"BraTS-GLI-{i:05d}-000" for i in range(1, 7)]
    assert {files.release.key for files in ci_2023.cases.values()} == {"2023"}
    assert download.describe_data(dataset)["layout"].tolist() == ["NIfTI training"]


def test_without_hdf5_the_2d_lesson_reads_slices_of_the_nifti_cache(ci_2023):
    h5 = course.prepare_h5_slices(ci_2023)
    assert h5.vote is None and h5.table.empty and h5.cache_dir == ci_2023.cache_dir
    assert h5.ids("train") == list(ci_2023.split.train) and h5.ids("val") == list(ci_2023.split.val)
    assert set(h5.source.case_ids) == set(ci_2023.split.train + ci_2023.split.val)
    assert "no HDF5 slice dataset" in h5.describe() and "NIfTI npy cache" in h5.describe()


def test_the_hdf5_lesson_writes_a_few_cases_as_kaggles_slices_once(ci_2023):
    folder = course.write_h5_lesson(ci_2023.dataset, ci_2023.profile, count=2)
    assert folder == paths.h5_lesson_dir("ci-2023")
    volumes = io.find_h5_volumes(folder)
    assert list(volumes) == [1, 2] and len(volumes[1]) == ci_2023.profile.grid_shape[2]
    first = sorted(ci_2023.cases)[0]
    from_slices = io.load_h5_volume(volumes[1])
    from_nifti = io.load_case(ci_2023.cases[first])
    np.testing.assert_array_equal(from_slices.image, from_nifti.image)
    np.testing.assert_array_equal(from_slices.seg, from_nifti.seg)
    stamp = volumes[1][0].stat().st_mtime_ns
    assert course.write_h5_lesson(ci_2023.dataset, ci_2023.profile, count=2) == folder  # reused, not rewritten
    assert volumes[1][0].stat().st_mtime_ns == stamp


def test_precache_of_hdf5_slices_says_the_release_has_none(ci_2023, capsys):
    assert main(["precache", "--profile", "ci-2023", "--source", "h5"]) == 2
    assert "BraTS 2023 has no HDF5 slice dataset" in capsys.readouterr().err


@pytest.mark.real_data
def test_the_kaggle_2021_profile_fits_the_kaggle_working_folder(tmp_path):
    """Measured on the two real BraTS 2021 cases: extracted files + cropped cache of max_cases patients + the HDF5
    lesson of n_cases + every checkpoint of the kaggle networks < 80 % of Kaggle's 20 GB working folder."""
    from test_profiles_budget import KAGGLE_WORKING_FOLDER, inflated_spec

    from braintools.cache import build, store
    from braintools.cache.sources import nifti_sources
    from braintools.models.checkpoints import build_model
    from braintools.training import recipes

    sample = paths.Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2021_sample"
    if not sample.is_dir():
        pytest.skip("real sample ../shared/data/brats2021_sample is absent")
    profile = PROFILES["kaggle-2021"]
    cases = io.find_cases(sample)
    extracted = sum(path.stat().st_size for files in cases for path in files.files()) / len(cases)
    build.precache(nifti_sources(sample), tmp_path, workers=1, progress=False, crop=profile.crop_cache)
    entries = store.read_manifest(tmp_path)["cases"].values()
    cached = sum(entry["image"]["bytes"] + entry["labels"]["bytes"] for entry in entries) / len(entries)
    lesson = 155 * (240 * 240 * 4 * 8 + 240 * 240 * 3) * 1.01  # float64 image + uint8 mask per slice, +1 % HDF5
    specs = [recipes.UNet3DRecipe.from_profile(profile).spec(), inflated_spec(profile),
             recipes.UNet2DRecipe.from_profile(profile, encoder_weights=None).spec()]
    checkpoints = sum(sum(p.numel() for p in build_model(spec).parameters()) for spec in specs) * 4 * (1 + 3)
    total = profile.max_cases * (extracted + cached) + profile.n_cases * (lesson + cached) + checkpoints
    assert total < 0.8 * KAGGLE_WORKING_FOLDER, f"{total / 1e9:.1f} GB"
    assert (profile.max_cases + 40) * (extracted + cached) + profile.n_cases * (lesson + cached) + checkpoints > \
        0.8 * KAGGLE_WORKING_FOLDER  # and it is not far below: 40 more patients would not fit


def test_one_patient_in_two_releases_counts_once(tmp_path):
    def case(case_id):
        return io.CaseFiles(case_id=case_id, folder=tmp_path / case_id)

    cases = [case("Brats18_2013_3_1"), case("BraTS2021_00000"), case("BraTS2021_00002"),
             case("BraTS-GLI-00000-000"), case("BraTS-GLI-00002-000"), case("BraTS-GLI-00005-000")]
    kept, twice = course.one_form_per_patient(cases)
    assert [files.case_id for files in kept] == ["Brats18_2013_3_1", "BraTS2021_00000", "BraTS2021_00002",
                                                 "BraTS-GLI-00005-000"]
    assert twice == ["BraTS-GLI-00000-000", "BraTS-GLI-00002-000"]
    assert course.one_form_per_patient(kept) == (kept, [])  # nothing to drop when every patient is there once
