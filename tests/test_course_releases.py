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
