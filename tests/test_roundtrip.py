"""Round trips through braintools.data.io: what the synthetic generator made is what the course reads back."""

from __future__ import annotations

import numpy as np
import pytest

from braintools.data import io
from braintools.synthetic import generator
from braintools.synthetic.dataset import generate_dataset
from braintools.synthetic.layout import (
    H5_DATA_SUBDIR,
    H5_DATASET_DIR,
    NIFTI_DATASET_DIR,
    TRAINING_SUBDIR,
    VALIDATION_SUBDIR,
)

GRID = (64, 64, 40)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, n_cases=2, n_validation_cases=1, grid_shape=GRID, seed=7, workers=1,
                               progress=False)
    return root


def test_nifti_case_reads_back_what_the_generator_made(dataset):
    training = dataset / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    cases = io.find_cases(training)
    assert [c.case_id for c in cases] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    for number, case_files in enumerate(cases, start=1):
        made = generator.make_case(7, number, GRID)
        case = io.load_case(case_files)
        for index, modality in enumerate(io.MODALITIES):
            assert np.array_equal(case.image[index], made.channel(modality).astype(np.float32))
        assert np.array_equal(case.seg, made.seg)
        assert np.allclose(case.affine, made.affine)


def test_hdf5_tree_reassembles_to_the_nifti_volumes(dataset):
    training = dataset / NIFTI_DATASET_DIR / TRAINING_SUBDIR
    volumes = io.find_h5_volumes(dataset / H5_DATASET_DIR / H5_DATA_SUBDIR)
    assert sorted(volumes) == [1, 2]
    for case_files in io.find_cases(training):
        number = int(case_files.case_id.rsplit("_", 1)[1])
        from_nifti = io.load_case(case_files)
        from_h5 = io.load_h5_volume(volumes[number])
        assert np.array_equal(from_h5.image, from_nifti.image)
        assert np.array_equal(from_h5.seg, from_nifti.seg)


def test_validation_cases_have_no_segmentation(dataset):
    validation = io.find_cases(dataset / NIFTI_DATASET_DIR / VALIDATION_SUBDIR)
    assert len(validation) == 1 and validation[0].seg is None and validation[0].missing == []
    assert io.load_case(validation[0]).seg is None
