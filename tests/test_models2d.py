"""smp model factory: architectures, encoders, offline fallback, local weights files."""

import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import get_encoder
from segmentation_models_pytorch.encoders._utils import patch_first_conv

from braintools.models import checkpoints, smp2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture, encoder", [
    ("Unet", "resnet18"),
    ("UnetPlusPlus", "efficientnet-b0"),
    ("FPN", "tu-resnet18"),
    ("DeepLabV3Plus", "tu-efficientnet_b0"),
])
def test_models_take_four_channels_and_return_four_class_logits(architecture, encoder):
    torch.manual_seed(0)
    model = smp2d.create_smp_model(architecture, encoder).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 4, 32, 32))
    assert logits.shape == (1, 4, 32, 32)
    assert model.initialisation == "random"


def test_region_output_channels():
    model = smp2d.create_smp_model("Unet", "resnet18", num_classes=3).eval()
    assert model(torch.zeros(1, 4, 32, 32)).shape == (1, 3, 32, 32)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown smp architecture 'UNet3000'.*Unet"):
        smp2d.create_smp_model("UNet3000", "resnet18")


def _offline(*args, **kwargs):
    raise LocalEntryNotFoundError("no internet in this test")


def test_imagenet_falls_back_to_random_offline(monkeypatch, capsys):
    monkeypatch.setattr(smp2d, "hub_reachable", lambda: True)  # the download itself fails, no network used
    monkeypatch.setattr("segmentation_models_pytorch.encoders.hf_hub_download", _offline)
    model = smp2d.create_smp_model("Unet", "resnet18", encoder_weights="imagenet")
    message = capsys.readouterr().out
    assert "could not get the imagenet weights of encoder 'resnet18'" in message and "RANDOM" in message
    assert model.initialisation.startswith("random")
    assert model.encoder.conv1.in_channels == 4


def test_timm_encoder_falls_back_to_random_offline(monkeypatch, capsys):
    monkeypatch.setattr(smp2d, "hub_reachable", lambda: True)
    monkeypatch.setattr("timm.models._hub.hf_hub_download", _offline)
    model = smp2d.create_smp_model("Unet", "tu-resnet18", encoder_weights="imagenet")
    assert "RANDOM" in capsys.readouterr().out and model.initialisation.startswith("random")


def _smp_adapted(weight3, in_channels):
    """smp's own rule for a pretrained first conv with more channels (the oracle)."""
    conv = torch.nn.Conv2d(3, weight3.shape[0], weight3.shape[2:], bias=False)
    conv.weight = torch.nn.Parameter(weight3.clone())
    patch_first_conv(torch.nn.Sequential(conv), in_channels, pretrained=True)
    return conv.weight.detach()


def test_encoder_file_with_three_channels_is_adapted_like_smp(tmp_path):
    torch.manual_seed(1)
    imagenet_like = get_encoder("resnet18", in_channels=3).state_dict()
    imagenet_like["fc.weight"], imagenet_like["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet_like, path)
    model = smp2d.create_smp_model("Unet", "resnet18", weights_path=path)
    assert model.initialisation == "encoder from resnet18.pth"
    conv1 = model.encoder.conv1.weight.detach()
    assert conv1.shape[1] == 4
    assert torch.allclose(conv1, _smp_adapted(imagenet_like["conv1.weight"], 4))
    assert torch.equal(conv1[:, 3], imagenet_like["conv1.weight"][:, 0] * 0.75)  # FLAIR <- R * 3/4
    assert torch.equal(model.encoder.layer4[1].bn2.running_var, imagenet_like["layer4.1.bn2.running_var"])


def test_timm_file_loads_into_a_tu_encoder(tmp_path):
    import timm

    timm_model = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.safetensors"
    save_file(timm_model.state_dict(), str(path))
    model = smp2d.create_smp_model("Unet", "tu-resnet18", weights_path=path)
    weight = timm_model.state_dict()["conv1.weight"]
    assert torch.allclose(model.encoder.model.conv1.weight, _smp_adapted(weight, 4))
    assert torch.equal(model.encoder.model.layer1[0].conv1.weight, timm_model.layer1[0].conv1.weight)


def test_full_model_files_and_checkpoints_round_trip(tmp_path):
    torch.manual_seed(2)
    source = smp2d.create_smp_model("Unet", "resnet18").eval()
    torch.save(source.state_dict(), tmp_path / "model.pt")
    checkpoints.save_checkpoint(tmp_path / "checkpoint.pt", source, epoch=3)
    probe = torch.randn(1, 4, 32, 32)
    for name in ("model.pt", "checkpoint.pt"):
        loaded = smp2d.create_smp_model("Unet", "resnet18", weights_path=tmp_path / name).eval()
        assert loaded.initialisation == f"full model from {name}"
        with torch.no_grad():
            assert torch.equal(loaded(probe), source(probe))


def test_mismatching_files_are_clear_errors(tmp_path):
    torch.save(smp2d.create_smp_model("Unet", "resnet18").state_dict(), tmp_path / "unet18.pt")
    with pytest.raises(ValueError, match="unet18.pt: weights do not fit.*another architecture"):
        smp2d.create_smp_model("Unet", "resnet34", weights_path=tmp_path / "unet18.pt")
    torch.save(get_encoder("resnet34").state_dict(), tmp_path / "resnet34.pt")
    with pytest.raises(ValueError, match="resnet34.pt: weights do not fit.*unexpected"):
        smp2d.create_smp_model("Unet", "resnet18", weights_path=tmp_path / "resnet34.pt")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        smp2d.create_smp_model("Unet", "resnet18", weights_path=tmp_path / "missing.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a state_dict"):
        smp2d._read_state_dict(tmp_path / "list.pt")


def test_unreachable_hub_means_offline_mode_and_no_waiting(monkeypatch, capsys):
    from huggingface_hub import constants

    real_build, seen = smp2d._build, []

    def build(architecture, encoder_name, encoder_weights, *args, **kwargs):
        if encoder_weights is not None:
            seen.append(constants.HF_HUB_OFFLINE)  # what the download would see
            raise LocalEntryNotFoundError("not in the cache")
        return real_build(architecture, encoder_name, encoder_weights, *args, **kwargs)

    monkeypatch.setattr(smp2d, "hub_reachable", lambda: False)
    monkeypatch.setattr(smp2d, "_build", build)
    before = constants.HF_HUB_OFFLINE
    model = smp2d.create_smp_model("Unet", "resnet18", encoder_weights="imagenet")
    assert seen == [True] and constants.HF_HUB_OFFLINE == before
    assert "huggingface.co is not reachable" in capsys.readouterr().out
    assert model.initialisation.startswith("random")


def test_hub_reachable_is_false_for_a_closed_port():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]  # bound but not listening: the connection is refused
        assert not smp2d.hub_reachable("127.0.0.1", port, timeout=1.0)
