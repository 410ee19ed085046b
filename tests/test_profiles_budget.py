"""Every profile's sizes work together, and the GPU profiles fit their hardware: 16 GB of GPU memory, 20 GB of disk."""

from __future__ import annotations

import pytest
import torch

from braintools.cache import build, store
from braintools.cache.sources import nifti_sources
from braintools.data.splits import part_sizes
from braintools.models.checkpoints import SMP_DIVISOR, ModelSpec, build_model
from braintools.profiles import PROFILES, Profile
from braintools.training import recipes

GPU_PROFILES = ("kaggle", "colab")
GPU_MEMORY = 16 * 2**30  # a P100 or a T4
KAGGLE_WORKING_FOLDER = 20e9  # bytes Kaggle lets a session write under /kaggle/working
REAL_TRAINING_CASES = 369


def inflated_spec(profile: Profile) -> ModelSpec:
    """The network notebook 06 fine-tunes (as ``benchmarks/budget.py`` builds it)."""
    return ModelSpec("inflated3d", architecture=profile.architecture_2d, encoder=profile.encoder_2d,
                     shrink=profile.downsample_2d, window=tuple(profile.roi_size_inflated),
                     inflation=dict(mode="i3d", depth_kernel=profile.depth_kernel_inflated, depth_padding="replicate",
                                    downsample_depth=True))


def saved_activation_bytes(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Bytes autograd keeps for the backward pass of one float32 forward pass, counted on the meta device."""
    model = model.to("meta").train()
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(torch.zeros(shape, device="meta"))
    return total


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_trains_and_predicts_with_sizes_its_networks_accept(name):
    profile = PROFILES[name]
    recipe = recipes.UNet3DRecipe.from_profile(profile)
    divisor = recipe.spec().size_divisor
    assert all(size % step == 0 for size, step in zip(recipe.patch_size, divisor)), (recipe.patch_size, divisor)
    assert all(size % step == 0 for size, step in zip(profile.roi_size, divisor))
    assert recipes.UNet2DRecipe.from_profile(profile).image_size % SMP_DIVISOR == 0
    assert 1 <= profile.unfreeze_top_epoch_2d <= profile.unfreeze_all_epoch_2d <= profile.epochs_2d
    unet = build_model(recipe.spec()).to("meta")
    unet.train()(torch.zeros((recipe.batch_size, 4, *recipe.patch_size), device="meta"))  # a training forward pass
    assert unet.eval()(torch.zeros((1, 4, *recipe.patch_size), device="meta")).shape == (1, 4, *recipe.patch_size)
    inflated = build_model(inflated_spec(profile)).to("meta").eval()  # 06 trains it with BatchNorm statistics frozen
    patch = tuple(profile.patch_size_inflated)
    assert inflated(torch.zeros((profile.batch_size_inflated, 4, *patch), device="meta")).shape[2:] == patch


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_gpu_profiles_fit_16_gb_of_gpu_memory_even_without_amp(name):
    profile = PROFILES[name]
    recipe = recipes.UNet3DRecipe.from_profile(profile)
    trainings = {
        "unet3d": (build_model(recipe.spec()), (recipe.batch_size, 4, *recipe.patch_size)),
        "inflated3d": (build_model(inflated_spec(profile)), (profile.batch_size_inflated, 4,
                                                              *profile.patch_size_inflated)),
        "unet2d": (build_model(recipes.UNet2DRecipe.from_profile(profile, encoder_weights=None).spec()),
                   (profile.batch_size_2d, 4, profile.image_size_2d, profile.image_size_2d)),
    }
    for model_name, (model, shape) in trainings.items():
        weights = sum(parameter.numel() for parameter in model.parameters()) * 4 * 4  # weights, grads, AdamW x2
        activations = saved_activation_bytes(model, shape)
        # float32 activations (AMP roughly halves them) + weights; 25 % left for cuDNN workspaces and the allocator
        assert activations + weights < 0.75 * GPU_MEMORY, f"{name} {model_name}: {activations / 2**30:.1f} GiB"


def test_gpu_profiles_train_a_real_budget():
    kaggle, colab = PROFILES["kaggle"], PROFILES["colab"]
    train_patients = part_sizes(REAL_TRAINING_CASES)[0]
    assert kaggle.max_cases is None and kaggle.patches_per_epoch_3d >= train_patients  # one patch per patient
    assert kaggle.epochs_3d * kaggle.patches_per_epoch_3d >= 50 * train_patients  # published notebooks: 50+ epochs
    assert kaggle.patches_per_epoch_inflated >= train_patients
    assert colab.max_cases and colab.patches_per_epoch_3d >= part_sizes(colab.max_cases)[0]
    for profile in (kaggle, colab):
        assert profile.source == "kaggle" and profile.crop_cache and profile.num_workers >= 1
    for name in ("ci", "course"):  # synthetic profiles keep their uncropped cache and in-process loading
        assert not PROFILES[name].crop_cache and PROFILES[name].num_workers == 0


def test_the_kaggle_profile_fits_the_working_folder(real_sample_dir, tmp_path):
    """Measured bytes of real cropped patients x 369 + the notebook 03 lesson + every checkpoint < 20 GB."""
    profile = PROFILES["kaggle"]
    sources = nifti_sources(real_sample_dir)
    build.precache(sources, tmp_path, workers=1, progress=False, crop=profile.crop_cache)
    entries = store.read_manifest(tmp_path)["cases"].values()
    per_patient = sum(entry["image"]["bytes"] + entry["labels"]["bytes"] for entry in entries) / len(entries)
    specs = [recipes.UNet3DRecipe.from_profile(profile).spec(), inflated_spec(profile),
             recipes.UNet2DRecipe.from_profile(profile, encoder_weights=None).spec()]
    parameters = sum(sum(p.numel() for p in build_model(spec).parameters()) for spec in specs)
    checkpoints = parameters * 4 * (1 + 3)  # _best.pt: weights; _last.pt: weights and AdamW's two moments
    total = (REAL_TRAINING_CASES + profile.n_cases) * per_patient + checkpoints
    assert total < 0.8 * KAGGLE_WORKING_FOLDER, f"{total / 1e9:.1f} GB"
    uncropped = (REAL_TRAINING_CASES + profile.n_cases) * 80.4e6 + checkpoints
    assert uncropped > KAGGLE_WORKING_FOLDER  # what cropping saves: the whole-grid cache would not fit
