"""Self-describing checkpoints: the spec round-trips, load_model rebuilds exactly the trained model, bad files fail."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from braintools.errors import DataError
from braintools.models import checkpoints
from braintools.models.checkpoints import ModelSpec, build_model, load_best_model, load_model, save_checkpoint
from braintools.models.unet3d import UNet3D
from braintools.models.wrappers import Downsampled, Downsampled3D, InPlaneDownsampled

UNET3D = ModelSpec("unet3d", features=(4, 8, 16), deep_supervision=True, shrink=2, window=(32, 32, 16))
UNET2D = ModelSpec("unet2d", architecture="Unet", encoder="resnet18", shrink=2, window=(-1, -1, 8))
INFLATED = ModelSpec("inflated3d", architecture="Unet", encoder="resnet18", shrink=2, window=(64, 64, 32),
                     inflation={"mode": "i3d", "depth_kernel": 3, "depth_padding": "replicate",
                                "downsample_depth": True})


@pytest.mark.parametrize("spec", [UNET3D, UNET2D, INFLATED, ModelSpec("unet3d", output="regions", features=(4, 8))])
def test_a_spec_round_trips_through_a_checkpoint_file(spec, tmp_path):
    path = save_checkpoint(tmp_path / "model_best.pt", build_model(spec), epoch=3)
    state = checkpoints.read_checkpoint(path)
    assert checkpoints._checkpoint_spec(state, path) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec and "optimizer" not in state


def test_load_model_rebuilds_the_wrapped_model_with_identical_outputs(tmp_path):
    torch.manual_seed(0)
    for spec, wrapper, shape in ((UNET3D, Downsampled3D, (1, 4, 32, 32, 16)), (UNET2D, Downsampled, (1, 4, 64, 64)),
                                 (INFLATED, InPlaneDownsampled, (1, 4, 64, 64, 32))):
        trained = build_model(spec).eval()
        path = save_checkpoint(tmp_path / f"{spec.kind}_best.pt", trained, epoch=4, history=[{"epoch": 4}])
        loaded = load_model(path)
        assert isinstance(loaded.model, wrapper) and loaded.model.factor == spec.shrink
        assert loaded.spec == spec and loaded.epoch == 4 and not loaded.model.training
        assert loaded.name == spec.kind and spec.kind in loaded.description
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(x), trained(x))


def test_a_region_model_has_three_outputs_and_a_plain_unet_no_wrapper(tmp_path):
    spec = ModelSpec("unet3d", output="regions", features=(4, 8))
    model = build_model(spec)
    assert isinstance(model, UNet3D) and model.head.out_channels == 3 and spec.num_outputs == 3


def test_training_checkpoints_keep_the_optimizer_and_inference_ones_do_not(tmp_path):
    model = build_model(UNET3D)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 4, 32, 32, 16))[0].sum().backward()
    optimizer.step()
    last = save_checkpoint(tmp_path / "unet3d_last.pt", model, optimizer, epoch=1)
    best = save_checkpoint(tmp_path / "unet3d_best.pt", model, None, epoch=1)
    assert "optimizer" in checkpoints.read_checkpoint(last)
    assert "optimizer" not in checkpoints.read_checkpoint(best)
    assert best.stat().st_size < 0.6 * last.stat().st_size  # AdamW keeps two moments per weight


def test_a_wrapped_model_saves_the_inner_weights_and_loads_into_a_fresh_one(tmp_path):
    model = build_model(UNET3D)
    path = save_checkpoint(tmp_path / "x.pt", nn.parallel.DataParallel(model))  # wrappers are unwrapped
    fresh = build_model(UNET3D)
    checkpoints.load_checkpoint(path, fresh)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)


def test_bad_checkpoint_files_give_one_clear_error_naming_the_file(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    cases = {
        "missing.pt": None,
        "empty.pt": b"",
        "truncated.pt": None,
        "pickle.pt": pickle.dumps({"model": Payload()}),
        "foreign.pt": None,
    }
    save_checkpoint(tmp_path / "good.pt", build_model(UNET3D))
    good = (tmp_path / "good.pt").read_bytes()
    cases["truncated.pt"] = good[: len(good) // 2]
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    torch.save({"pickled": Payload()}, tmp_path / "pickle.pt")
    expected = {"missing.pt": "not found", "empty.pt": "empty", "truncated.pt": "truncated or corrupt",
                "pickle.pt": "refused", "foreign.pt": "not a braintools checkpoint"}
    for name, words in expected.items():
        with pytest.raises(DataError, match=words) as caught:
            load_model(tmp_path / name)
        assert name in str(caught.value) and "\n" not in str(caught.value).strip()


def test_an_old_checkpoint_without_a_spec_says_so(tmp_path):
    torch.save({"model": UNet3D(features=(4, 8)).state_dict(), "epoch": 3}, tmp_path / "unet3d_best.pt")
    with pytest.raises(DataError, match="no model spec"):
        load_model(tmp_path / "unet3d_best.pt")


def test_weights_that_do_not_fit_their_spec_are_named(tmp_path):
    save_checkpoint(tmp_path / "unet3d_best.pt", UNet3D(features=(4, 8)), spec=UNET3D)
    with pytest.raises(DataError, match="do not fit"):
        load_model(tmp_path / "unet3d_best.pt")


def test_invalid_specs_are_refused_with_every_reason():
    with pytest.raises(ValueError, match="kind 'vnet'.*output 'logits'"):
        ModelSpec("vnet", output="logits")
    with pytest.raises(ValueError, match="needs features"):
        ModelSpec("unet3d")
    with pytest.raises(ValueError, match="inflation options"):
        ModelSpec("inflated3d", architecture="Unet", encoder="resnet18")
    with pytest.raises(ValueError, match="unknown fields"):
        ModelSpec.from_dict({**UNET3D.to_dict(), "colour": "blue"})


@pytest.mark.parametrize("change, words", [
    ({"shrink": 1000}, "shrink must be a whole number from 1 to 16, got 1000"),
    ({"shrink": 2.5}, "shrink must be a whole number from 1 to 16, got 2.5"),
    ({"shrink": 8}, "shrink 8 is too large for this network: it needs windows of at least 32x32x32 voxels, "
                    "its window is 32x32x16"),
    ({"window": [-32, 32, 16]}, "window sizes must be positive, got (-32, 32, 16)"),
    ({"window": [0, 0, 0]}, "window sizes must be positive"),
    ({"window": [32, 32]}, "window must be three whole sizes"),
    ({"window": [4000, 4000, 4000]}, "larger than any scan"),
    ({"features": [4, "x", 16]}, "features must be channel counts from 1 to 4096"),
    ({"features": [4, -8, 16]}, "features must be channel counts"),
    ({"features": 8}, "'int' object is not iterable"),
    ({"modalities": ["t1", "t1ce", "t2", "dwi"]}, "modalities must be distinct names"),
    ({"modalities": ["t1", "t1", "t2", "flair"]}, "modalities must be distinct names"),
    ({"deep_supervision": "yes"}, "deep_supervision must be true or false"),
])
def test_a_damaged_spec_is_refused_when_the_checkpoint_loads_naming_the_file(change, words, tmp_path):
    path = save_checkpoint(tmp_path / "unet3d_best.pt", build_model(UNET3D))
    state = torch.load(path, weights_only=True)
    state["spec"].update(change)  # what a hand-edited or foreign checkpoint holds
    torch.save(state, path)
    with pytest.raises(DataError) as raised:
        load_model(path)
    assert str(raised.value).startswith(f"{path}: ") and words in str(raised.value), str(raised.value)


def test_every_profile_trains_and_infers_with_a_valid_spec():
    from braintools.profiles import PROFILES, get_profile
    from braintools.training import recipes

    for name in PROFILES:
        profile = get_profile(name)
        for spec in (recipes.UNet3DRecipe.from_profile(profile).spec(),
                     recipes.UNet2DRecipe.from_profile(profile).spec()):
            assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_a_model_whose_spec_names_an_unknown_encoder_is_named(tmp_path):
    path = save_checkpoint(tmp_path / "unet2d_best.pt", build_model(UNET2D))
    state = torch.load(path, weights_only=True)
    state["spec"]["encoder"] = "resnet9000"
    torch.save(state, path)
    with pytest.raises(DataError, match=r"unet2d_best\.pt: cannot build the model its spec describes"):
        load_model(path)


def test_load_best_model_takes_the_first_that_loads_and_names_the_others(tmp_path, capsys):
    assert load_best_model(tmp_path) is None
    save_checkpoint(tmp_path / "unet2d_best.pt", build_model(UNET2D), epoch=2)
    (tmp_path / "unet3d_best.pt").write_bytes(b"")
    loaded = load_best_model(tmp_path, ("unet3d", "inflated3d", "unet2d"))
    assert loaded.spec == UNET2D and "unet3d_best.pt" in capsys.readouterr().out
    (tmp_path / "unet2d_best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="no checkpoint could be loaded.*unet3d_best.pt.*unet2d_best.pt"):
        load_best_model(tmp_path, ("unet3d", "unet2d"))


def test_size_divisor_follows_the_network_and_its_shrink():
    assert UNET3D.size_divisor == (8, 8, 8)  # two halvings x shrink 2
    assert INFLATED.size_divisor == (64, 64, 32)
    assert UNET2D.size_divisor == (1, 1, 1)


def test_wrap_gives_a_network_made_elsewhere_its_spec_and_shrink_wrapper(tmp_path):
    from braintools.models.inflation import inflate_2d_model_to_3d
    from braintools.models.smp2d import create_smp_model

    inflated = inflate_2d_model_to_3d(create_smp_model("Unet", "resnet18"), **INFLATED.inflation)
    model = checkpoints.wrap(inflated, INFLATED)
    assert isinstance(model, InPlaneDownsampled) and model.model is inflated and model.spec == INFLATED
    loaded = load_model(save_checkpoint(tmp_path / "inflated3d_best.pt", model))
    x = torch.randn(1, 4, 64, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model.eval()(x))
    plain = ModelSpec("unet2d", architecture="Unet", encoder="resnet18")
    assert checkpoints.wrap(nn.Identity(), plain).spec == plain  # shrink 1: no wrapper
    assert checkpoints.network_of(model) is inflated
