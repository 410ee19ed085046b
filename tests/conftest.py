"""Shared test fixtures: the real BraTS sample folder (tests skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats_sample"


@pytest.fixture(scope="session")
def real_sample_dir() -> Path:
    """The three real BraTS 2018 cases, or skip when this checkout has no ../shared/data/brats_sample."""
    if not REAL_SAMPLE.is_dir():
        pytest.skip("real sample data ../shared/data/brats_sample is absent")
    return REAL_SAMPLE


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared CPU, competing threads make small steps many times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
