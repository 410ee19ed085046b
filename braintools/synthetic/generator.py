"""The synthetic case generator: MNI152 anatomy (``anatomy``), a tumour (``tumour``) and a scanner's effects.

Anatomy comes from the MNI152 template and tissue maps shipped with nilearn, warped per case; each training case gets
a tumour and per-case scanner effects (bias field, Rician noise, contrast and intensity scale, thick-slice blur).
Version 3 (issue 22) randomises them beyond what the 8 real tuning cases show (domain randomisation in the spirit of
SynthSeg, within the BraTS signatures): tissue contrasts vary per case, noise, bias fields and slices up to 8 mm thick
span wider ranges, and the normal brain has T1ce-bright vessels, the lookalikes that cause far false alarms.
Same (seed, case index), same bytes. ``make_case`` returns an ``io.Case`` like a loaded real case, whose image holds
the int16 values written to disk; ``layout`` writes cases in the Kaggle layouts and ``dataset`` makes a whole dataset.

Orientation: every volume is a (nx, ny, nz) array with voxel axes L, P, S (nibabel axcodes) like real BraTS. The
course grid is 240 x 240 x 155 at 1 mm with the exact BraTS affine; smaller grids (the ``ci`` profile) sample the same
240 x 240 x 155 mm field of view with coarser voxels (``anatomy.grid_affine``, same rule as ``io.brats_affine``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from braintools.data.io import Case
from braintools.profiles import BRATS_SHAPE
from braintools.synthetic.anatomy import (
    GM,
    MASK,
    MODALITIES,
    TISSUE_CONTRAST,
    WM,
    add_lookalikes,
    case_spots,
    grid_affine,
    lookalike_weights,
    normal_images,
    random_lookalikes,
    random_transform,
    smooth_noise,
    template_brain_box,
    warp_tissues,
)
from braintools.synthetic.tumour import (
    SATELLITE_FRACTION,
    grow_tumour,
    paint_tumour,
    random_tumour_contrast,
    sample_satellite,
    sample_tumour,
)

GENERATOR_VERSION = 3  # bumped whenever the bytes of a case change


@dataclass(frozen=True)
class Scanner:
    """Per-case appearance: contrasts (white matter = 1), texture, bias fields, intensity scale, noise, resolution."""

    tissue_contrast: dict[str, tuple]
    tumour_contrast: dict[str, tuple]
    texture: tuple[float, float]  # (mixing angle of the two texture fields, amplitude)
    bias_basis: np.ndarray  # (2, *COARSE_FIELD_SHAPE) smooth fields, max |value| 1
    bias_weights: np.ndarray  # (4, 2) log-bias of each modality (MODALITIES order) = weights @ basis
    white_matter: dict[str, float]  # int16 value of white matter per modality
    noise: dict[str, float]  # noise sigma as a fraction of white matter, per modality
    blur: dict[str, tuple[int, float]]  # (axis, Gaussian sigma in mm) of each modality's thick-slice blur


# Real FLAIR and T2 are often acquired in thick axial slices and resampled to 1 mm: smoother along z (in the real
# tuning cases, neighbour differences are half as large along z as in-plane); T1 and T1ce less often. Older scans
# have slices up to 5-8 mm thick: the blur's sigma is 0.3 x a slice thickness drawn in THICK_SLICE_MM.
THICK_SLICE_PROBABILITY = {"t1": 0.4, "t1ce": 0.15, "t2": 0.8, "flair": 0.8}  # T1ce: mostly the 3D reference scan
THICK_SLICE_MM = (2.0, 8.0)
# Domain randomisation (SynthSeg's idea, kept within the BraTS signatures): per case, the tissue contrasts vary by
# this std of their log (about twice the spread between real cases), noise and bias fields over wide ranges.
TISSUE_CONTRAST_SPREAD = 0.15
NOISE_RANGE = {"t1": (0.025, 0.08), "t1ce": (0.025, 0.08), "t2": (0.04, 0.13), "flair": (0.04, 0.13)}
BIAS_RANGE = (0.2, 0.6)  # largest |log bias| of a modality over the brain


def _random_scanner(rng: np.random.Generator) -> Scanner:
    """Draw per-case contrasts, texture, bias fields (about +-20-60 %), intensity scale, noise and slice blur."""
    factors = {m: np.exp(rng.normal(0, TISSUE_CONTRAST_SPREAD, 2)) for m in ("t1", "t2", "flair")}
    factors["t1ce"] = factors["t1"] * np.exp(rng.normal(0, 0.3 * TISSUE_CONTRAST_SPREAD, 2))  # T1 after contrast
    tissue = {m: (1.0, *(np.array(c[1:]) * factors[m])) for m, c in TISSUE_CONTRAST.items()}
    tumour = random_tumour_contrast(rng, tissue)
    texture = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.03, 0.06)))
    basis = smooth_noise(rng, (2, 5, 5, 4))
    weights = rng.normal(0, 1, (4, 2)) + np.array([1.0, 0.0])  # modalities share part of the coil profile
    peak = np.abs(np.tensordot(weights, basis, axes=1)).max(axis=(1, 2, 3))
    weights *= (rng.uniform(*BIAS_RANGE, 4) / peak)[:, None]
    scale = np.exp(rng.uniform(np.log(120), np.log(1200)))
    white = {m: float(scale * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))) for m in MODALITIES}
    noise = {m: float(rng.uniform(*NOISE_RANGE[m])) for m in MODALITIES}
    blur = {}
    for modality in MODALITIES:
        axis = 2 if rng.random() < 0.8 else int(rng.integers(2))
        thick = rng.random() < THICK_SLICE_PROBABILITY[modality]
        blur[modality] = (axis, float(0.3 * rng.uniform(*THICK_SLICE_MM)) if thick else 0.0)  # slice boxcar ~ 0.3 T
    return Scanner(tissue, tumour, texture, basis, weights.astype(np.float32), white, noise, blur)


def _blur_inside(volume: np.ndarray, brain: np.ndarray, axis: int, sigma_voxels: float) -> np.ndarray:
    """Gaussian blur along one axis, averaging over brain voxels only (no dark rim from the background)."""
    weight = ndi.gaussian_filter1d(brain.astype(np.float32), sigma_voxels, axis=axis)
    blurred = ndi.gaussian_filter1d(volume * brain, sigma_voxels, axis=axis)
    return np.where(brain, blurred / np.maximum(weight, 1e-3), 0).astype(np.float32)


def _scanner_effects(
    images: dict[str, np.ndarray], brain: np.ndarray, bias_basis: np.ndarray, scanner: Scanner,
    rng: np.random.Generator,
    spacing: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Apply bias field, intensity scale, Rician noise and thick-slice blur inside ``brain``; int16, 0 outside.
    Introduced in notebook 01."""
    spacing = np.ones(3) if spacing is None else np.asarray(spacing)
    out = {}
    basis = [field[brain] for field in bias_basis]
    for channel, modality in enumerate(MODALITIES):
        white = np.float32(scanner.white_matter[modality])
        log_bias = scanner.bias_weights[channel, 0] * basis[0] + scanner.bias_weights[channel, 1] * basis[1]
        value = images[modality][brain] * np.exp(log_bias) * white
        sigma = np.float32(scanner.noise[modality]) * white
        real = value + sigma * rng.standard_normal(value.size, dtype=np.float32)
        imaginary = sigma * rng.standard_normal(value.size, dtype=np.float32)
        magnitude = np.zeros(brain.shape, np.float32)
        magnitude[brain] = np.sqrt(real * real + imaginary * imaginary)
        axis, blur_mm = scanner.blur[modality]
        if blur_mm / spacing[axis] > 0.3:
            magnitude = _blur_inside(magnitude, brain, axis, blur_mm / spacing[axis])
        volume = np.zeros(brain.shape, np.int16)
        volume[brain] = np.clip(np.rint(magnitude[brain]), 1, 32767)
        out[modality] = volume
    return out


def make_case(
    seed: int, case_index: int, grid_shape: tuple[int, int, int] = BRATS_SHAPE, tumour: bool = True,
    case_id: str | None = None,
) -> Case:
    """Generate one case deterministically from (seed, case_index): an ``io.Case`` of int16 images.

    ``case.grade`` is ``"HGG"`` (it has enhancing tumour), ``"LGG"``, or ``""`` without a tumour; ``case_id``
    defaults to ``synthetic_<case_index>``.
    """
    grid_shape = tuple(int(n) for n in grid_shape)
    params, noise = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, case_index]).spawn(2))
    transform = random_transform(params, grid_shape)
    specs = [sample_tumour(params, transform)] if tumour else []
    if specs and params.random() < SATELLITE_FRACTION:
        specs.append(sample_satellite(params, specs[0], transform.spacing))
    scanner = _random_scanner(params)
    look = random_lookalikes(params)
    box = template_brain_box(transform, grid_shape)
    mass = specs[0].mass_effect if specs else None
    channels, coarse = warp_tissues(transform, box, extra=np.concatenate([scanner.bias_basis, look.density]),
                                    mass=mass)
    brain = channels[MASK] > 0.5
    gm, wm = (np.clip(channel, 0, 1) * brain for channel in channels[[GM, WM]])
    csf = np.clip(1 - gm - wm, 0, 1) * brain
    angle, amount = scanner.texture
    first, second = case_spots(channels, angle)
    vessels = np.clip((first - 1.8) / 0.6, 0, 1) * np.clip((csf - 0.3) / 0.4, 0, 1)
    images = normal_images(scanner.tissue_contrast, gm, wm, csf, np.float32(amount) * second, vessels)
    add_lookalikes(images, lookalike_weights(channels, coarse[2:], look, wm), look, brain)
    seg = np.zeros(grid_shape, np.uint8) if specs else None
    for spec in specs:
        sub, labels, strength = grow_tumour(spec, transform.spacing, box, (gm, wm, csf, brain))
        if not np.any((labels == 1) | (labels == 4)):
            continue  # a satellite that fell outside the brain
        paint_tumour(images, sub, labels, strength, scanner.tumour_contrast, transform.spacing, noise,
                     spec.heterogeneity)
        target = seg[box][sub]
        np.copyto(target, labels, where=(labels != 0) & ((labels != 2) | (target == 0)))
    finished = _scanner_effects(images, brain, coarse[:2], scanner, noise, transform.spacing)
    image = np.zeros((len(MODALITIES), *grid_shape), np.int16)
    for channel, modality in enumerate(MODALITIES):
        image[channel][box] = finished[modality]
    grade = "" if seg is None else ("HGG" if np.any(seg == 4) else "LGG")
    return Case(case_id or f"synthetic_{case_index:03d}", image, seg, grid_affine(grid_shape), MODALITIES, grade)
