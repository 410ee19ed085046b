"""The shared base of the shrinking wrappers: factor check and the inner model's state_dict."""

import pytest
import torch
from torch import nn

from braintools.inflation import InPlaneDownsampled
from braintools.models2d import Downsampled
from braintools.models3d import Downsampled3D
from braintools.shrink import ShrunkInput


@pytest.mark.parametrize("wrapper", [ShrunkInput, Downsampled, Downsampled3D, InPlaneDownsampled])
def test_wrappers_save_and_load_the_inner_state_dict_and_check_the_factor(wrapper):
    inner = nn.Conv3d(4, 4, 1)
    wrapped = wrapper(inner, 2)
    assert list(wrapped.state_dict()) == ["weight", "bias"]
    plain = nn.Conv3d(4, 4, 1)
    wrapper(plain, 2).load_state_dict(wrapped.state_dict())
    assert torch.equal(plain.weight, inner.weight)
    with pytest.raises(ValueError, match="factor"):
        wrapper(inner, 0)
