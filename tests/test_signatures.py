"""The BraTS intensity signatures hold on real and synthetic cases, and reveal the channel order."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import toy_case

from braintools.data import io, signatures
from braintools.synthetic import generator


def test_signatures_hold_on_a_toy_case():
    image, seg = toy_case()
    results = signatures.intensity_signatures(image, seg)
    assert all(results.values()), results


def test_signatures_fail_when_channels_are_swapped():
    image, seg = toy_case()
    results = signatures.intensity_signatures(image[[1, 0, 3, 2]], seg)
    assert not results["ET brighter on T1ce than on T1"]
    assert not all(results.values())


def test_unmeasurable_signatures_are_none():
    image, seg = toy_case()
    seg[seg == 4] = 1  # a low-grade-like case without enhancing tumour
    results = signatures.intensity_signatures(image, seg)
    assert results["ET brighter on T1ce than on T1"] is None
    assert results["edema hyperintense on FLAIR"] is True


@pytest.mark.parametrize("permutation", [(0, 1, 2, 3), (3, 0, 1, 2), (2, 3, 0, 1), (1, 0, 3, 2)])
def test_infer_channel_order_on_a_toy_case(permutation):
    image, seg = toy_case()
    guess = signatures.infer_channel_order(image[list(permutation)], seg)
    assert guess.order == tuple(io.MODALITIES[p] for p in permutation)
    assert guess.passed == guess.measured


def test_check_channel_order_warns_on_disagreement():
    image, seg = toy_case()
    with pytest.warns(UserWarning, match=r"volume_9: channel order .* disagrees"):
        signatures.check_channel_order(image, seg, ("t1ce", "t1", "t2", "flair"), source="volume_9")
    signatures.check_channel_order(image, seg, io.MODALITIES)  # agrees: no warning (pytest -W error)


def test_signatures_hold_on_real_cases_and_reveal_their_order(real_sample_dir):
    for case_files in io.find_cases(real_sample_dir):
        case = io.load_case(case_files)
        results = signatures.intensity_signatures(case.image, case.seg)
        assert all(results.values()), (case.case_id, results)
        permutation = [3, 0, 1, 2]  # flair, t1, t1ce, t2: the minority HDF5 order
        guess = signatures.infer_channel_order(case.image[permutation], case.seg)
        assert guess.order == ("flair", "t1", "t1ce", "t2"), case.case_id


def test_signatures_hold_on_synthetic_cases():

    ordered = 0
    for index in range(3):
        case = generator.make_case(seed=11, case_index=index, grid_shape=(96, 96, 64))
        image = case.image.astype(np.float32)
        results = signatures.intensity_signatures(image, case.seg)
        measured = {name: value for name, value in results.items() if value is not None}
        assert all(measured.values()), (index, results)
        if np.any(case.seg == 4):  # without enhancing tumour (a low-grade case) T1 and T1ce cannot be told apart
            guess = signatures.infer_channel_order(image[[3, 0, 1, 2]], case.seg)
            assert guess.order == ("flair", "t1", "t1ce", "t2"), index
            ordered += 1
    assert ordered >= 2  # the test must not pass on low-grade cases alone
