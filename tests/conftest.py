"""Shared test fixtures: the real BraTS sample folder and the Kaggle layout of the real cases (skipped without them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats_sample"


@pytest.fixture(scope="session")
def real_sample_dir() -> Path:
    """The three real BraTS 2018 cases, or skip when this checkout has no ../shared/data/brats_sample."""
    if not REAL_SAMPLE.is_dir():
        pytest.skip("real sample data ../shared/data/brats_sample is absent")
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def kaggle_layout(tmp_path_factory):
    """The 13 real cases laid out as the two Kaggle datasets (``tests/kaggle_layout.py``), once per session.

    About 15-30 s and 1.9 GB in a temporary folder; set ``BRAINTOOLS_TEST_KAGGLE_LAYOUT`` to a folder to keep the
    layout between sessions. Skipped when ../shared/data is absent.
    """
    import kaggle_layout

    if not kaggle_layout.real_data_present():
        pytest.skip("real cases ../shared/data/brats_sample and brats_dev are absent")
    folder = os.environ.get("BRAINTOOLS_TEST_KAGGLE_LAYOUT") or tmp_path_factory.mktemp("kaggle_input")
    return kaggle_layout.lay_out(folder)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared CPU, competing threads make small steps many times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
