"""Normal brain anatomy for the synthetic BraTS generator: MNI152 tissue maps warped onto a BraTS grid.

The MNI152 (ICBM 2009a, 1 mm, skull-stripped) T1 template and its grey/white-matter maps ship inside the
nilearn wheel (the files behind ``nilearn.datasets.load_mni152_template(resolution=1)`` and friends), so
nothing is downloaded. CSF is what the brain mask (template > 0.2, as ``load_mni152_brain_mask``) leaves
after grey and white matter: sulci, the outer CSF rim and the ventricles.

Geometry. Both MNI and BraTS voxel-to-world affines map to RAS world millimetres, so the brain is placed by
a pure world-space similarity: BraTS world = anchor + R S (MNI world - MNI anchor). The anchor and the
base scale were measured on real BraTS cases (an MNI152 brain is larger than a typical patient brain
registered rigidly to SRI24). A grid other than 240 x 240 x 155 samples the same 240 x 240 x 155 mm field
of view with coarser voxels (``grid_affine``). Per case, a small random affine (scale 0.92-1.08 per axis,
a few degrees of rotation, a few mm of shift) and a low-frequency elastic displacement (a few mm) are
composed into ONE pull-back map from output voxels to MNI voxels, sampled once with trilinear
interpolation (``torch.nn.functional.grid_sample``, faster than ``scipy.ndimage.map_coordinates`` here),
only inside the bounding box of the warped brain.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from braintools.errors import DataError

MODALITIES = ("t1", "t1ce", "t2", "flair")
BRATS_AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
BRATS_FOV_MM = (240.0, 240.0, 155.0)
MNI_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
# Measured on real BraTS cases: the MNI point (0, -20, 10) mm sits at BraTS voxel (118.5, 133, 74), and
# patient brains are about 7-10 % smaller than the MNI152 average brain (x, y, z).
MNI_ANCHOR_MM = np.array([0.0, -20.0, 10.0])
BRATS_ANCHOR_VOXEL = np.array([118.5, 133.0, 74.0])
MNI_TO_BRATS_SCALE = np.array([0.95, 0.91, 0.90])
COARSE_FIELD_SHAPE = (5, 5, 4)  # control points of the smooth per-case fields (elastic, bias)
TEXTURE_SEED = 152  # the fine tissue texture: two fixed random fields in MNI space, mixed per case
COARSE_GRID_MM = 2.5  # grids with voxels this large or larger sample a smoothed 2 mm copy of the templates

# Relative intensities of white matter, grey matter and CSF per modality (white matter = 1).
TISSUE_CONTRAST = {
    "t1": (1.0, 0.72, 0.30),
    "t1ce": (1.0, 0.76, 0.33),
    "t2": (1.0, 1.46, 3.6),
    "flair": (1.0, 1.22, 0.35),
}

# Vessels and choroid plexus (sparse spots in CSF spaces): enhance on T1ce, flow voids on T2.
VESSEL_CONTRAST = {"t1": 0.0, "t1ce": 1.5, "t2": -1.5, "flair": -0.1}

# Healthy structures that look like tumour on some modality (what models trained on clean synthetic brains take
# for tumour on real scans): added to the white-matter = 1 images with a per-case amount (``Lookalikes``).
# In the 13 real cases, 2-8 % of the normal brain is brighter than 1.3 x white matter on T1ce and 1-5 % brighter
# than 1.5 x on FLAIR, about half of it within 5 mm of the brain's edge (case_statistics; none in the old
# synthetic brains).
LOOKALIKE_CONTRAST = {
    "rim": {"t1": 0.15, "t1ce": 0.7, "t2": -0.3, "flair": 1.0},  # dura, surface veins, sinus left by skull stripping
    "choroid": {"t1": 0.2, "t1ce": 1.4, "t2": -0.6, "flair": 0.3},  # choroid plexus in the ventricles
    "caps": {"t1": -0.1, "t1ce": -0.05, "t2": 0.4, "flair": 1.0},  # periventricular caps and rims
    "wmh": {"t1": -0.15, "t1ce": -0.1, "t2": 0.6, "flair": 1.1},  # white-matter hyperintensities (older brains)
    # veins, sinuses and dura on the brain's surface and vessels in its CSF spaces: bright on T1ce only. In the 8 real
    # tuning cases 0.5-1.9 % of the normal brain is brighter than 2 x white matter on T1ce (up to 3.5-6 x), 50-85 %
    # of it within 5 mm of the brain's edge, dark on FLAIR (about 0.55 x); models that never saw such voxels call
    # them enhancing tumour, the far false alarms of real scans.
    "vessels": {"t1": 0.0, "t1ce": 1.6, "t2": -1.0, "flair": -0.3},
}
VESSEL_WIDTH = 0.35  # vessels are where both texture fields of a case are within this (std units) of zero
# Template channels warped for every case (``warp_tissues``): the three MNI maps, depth under the brain's
# surface (mm / DEPTH_SCALE_MM, at most 1), closeness to the ventricles (1 inside, 0 from VENTRICLE_REACH_MM on),
# then the two texture fields.
GM, WM, MASK, DEPTH, VENTRICLES, TEXTURE_A, TEXTURE_B = range(7)
DEPTH_SCALE_MM = 30.0
MIN_SITE_DEPTH_MM = 4.0  # tumour centres lie at least this deep under the brain's surface
VENTRICLE_REACH_MM = 10.0


@dataclass(frozen=True)
class Templates:
    """MNI152 maps on their own 1 mm grid, plus white-matter sites where a tumour may grow."""

    tissues: np.ndarray  # (5, X, Y, Z) float32: grey matter, white matter, brain mask, depth, ventricles (cropped)
    texture: np.ndarray  # (2, X//2+1, ...) float32: fixed random texture fields on every other voxel
    affine: np.ndarray  # voxel of the cropped box -> MNI world (mm, RAS)
    brain_bbox: np.ndarray  # (2, 3) first and last MNI voxel of the brain mask
    sites: np.ndarray  # (N, 3) MNI world mm of white- or grey-matter points in the cerebral hemispheres
    room: np.ndarray  # (N,) distance from each site to the brain surface, mm


@dataclass(frozen=True)
class CaseTransform:
    """Per-case pull-back map: output voxel -> MNI voxel (affine part) plus a smooth displacement."""

    to_mni: np.ndarray  # 4x4 output voxel -> MNI voxel
    to_output: np.ndarray  # 4x4 MNI voxel -> output voxel (inverse of the affine part)
    elastic: np.ndarray  # (3, *COARSE_FIELD_SHAPE) displacement in MNI voxels over the brain box
    spacing: np.ndarray  # output voxel size in mm


def grid_affine(grid_shape: tuple[int, int, int]) -> np.ndarray:
    """Return the LPS voxel-to-world affine of a grid covering the BraTS field of view.

    Voxel size is ``240/nx, 240/ny, 155/nz`` mm; as in real BraTS, voxel (0, ny-1, 0) sits at the world
    origin (only the y offset, ``sy * (ny - 1)``, is non-zero; same rule as ``braintools.data.io.brats_affine``),
    so a 240 x 240 x 155 grid gets exactly ``BRATS_AFFINE`` and a coarser grid covers the same box to
    within one coarse voxel.
    """
    sx, sy, sz = (fov / n for fov, n in zip(BRATS_FOV_MM, grid_shape))
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[1, 3] = sy * (grid_shape[1] - 1)
    return affine


def _nilearn_data_dir() -> Path:
    """Return nilearn's bundled ``datasets/data`` folder (found without importing nilearn) (notebook 01)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise DataError("nilearn is not installed: the synthetic generator needs its MNI152 templates")
    folder = Path(spec.origin).parent / "datasets" / "data"
    missing = [name for name in MNI_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: nilearn's MNI152 template files are missing: {missing} (nilearn>=0.10.3)")
    return folder


def _allowed_sites(mm: np.ndarray) -> np.ndarray:
    """True for MNI points in the cerebral hemispheres (not cerebellum, brainstem, deep nuclei or the midline)."""
    x, y, z = mm.T
    deep = (np.abs(x) < 30) & (y > -35) & (y < 15) & (z > -10) & (z < 20)
    return (z > -30) & ~((y < -38) & (z < 0)) & (np.abs(x) > 10) & ~((np.abs(x) < 20) & (z < 0)) & ~deep


def _sharpen(probability: np.ndarray, amount: float = 0.8, sigma: float = 1.5) -> np.ndarray:
    """Unsharp-mask a tissue map: the average template is blurrier than one patient's brain."""
    blurred = ndi.gaussian_filter(probability, sigma)
    return np.clip(probability + amount * (probability - blurred), 0.0, 1.0)


def _odd_crop(lo: np.ndarray, hi: np.ndarray, shape: tuple, margin: int = 4) -> tuple:
    """Slices around [lo, hi] with an odd length each, so that a stride-2 copy keeps both end voxels."""
    crop = []
    for a, b, n in zip(lo, hi, shape):
        start, stop = max(int(a) - margin, 0), min(int(b) + margin + 1, n)
        if (stop - start) % 2 == 0:
            stop, start = (stop + 1, start) if stop < n else (stop, start - 1)
        crop.append(slice(start, stop))
    return tuple(crop)


@lru_cache(maxsize=1)
def load_templates() -> Templates:
    """Load the MNI152 maps once per process (cropped to the brain), add depth and ventricle maps, list tumour sites."""
    folder = _nilearn_data_dir()
    images = {key: nib.load(folder / name) for key, name in MNI_FILES.items()}
    t1 = np.asarray(images["t1"].dataobj, dtype=np.float32)
    full_mask = t1 > 0.2 * t1.max()  # same rule as nilearn.datasets.load_mni152_brain_mask
    nonzero = np.argwhere(full_mask)
    crop = _odd_crop(nonzero.min(0), nonzero.max(0), full_mask.shape)
    mask = full_mask[crop]
    gm, wm = (np.asarray(images[key].dataobj)[crop].astype(np.float32) for key in ("gm", "wm"))
    gm, wm = (_sharpen(channel / channel.max()) * mask for channel in (gm, wm))
    total = np.maximum(gm + wm, 1.0)
    tissues = np.empty((5, *mask.shape), np.float32)
    np.divide(gm, total, out=tissues[GM])
    np.divide(wm, total, out=tissues[WM])
    tissues[MASK] = mask
    depth = ndi.distance_transform_edt(mask)
    ventricles = (mask - tissues[GM] - tissues[WM] > 0.5) & (depth >= 15.0)  # deep CSF
    tissues[DEPTH] = np.minimum(depth / DEPTH_SCALE_MM, 1.0)
    tissues[VENTRICLES] = np.clip(1.0 - ndi.distance_transform_edt(~ventricles) / VENTRICLE_REACH_MM, 0.0, 1.0)
    noise = np.random.default_rng(TEXTURE_SEED).standard_normal((2, *mask[::2, ::2, ::2].shape), np.float32)
    texture = ndi.gaussian_filter(noise, (0, 0.5, 0.5, 0.5))  # 1 mm correlation on a 2 mm grid
    texture /= texture.std(axis=(1, 2, 3), keepdims=True)
    affine = images["t1"].affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([c.start for c in crop])
    coarse_room = ndi.distance_transform_edt(mask[::2, ::2, ::2], sampling=2.0)
    cerebrum = (tissues[WM, ::2, ::2, ::2] > 0.5) | (tissues[GM, ::2, ::2, ::2] > 0.5)
    voxels = np.argwhere(cerebrum & (coarse_room >= MIN_SITE_DEPTH_MM))
    mm = voxels * 2.0 @ affine[:3, :3].T + affine[:3, 3]
    keep = _allowed_sites(mm)
    room = coarse_room[tuple(voxels[keep].T)].astype(np.float32)
    bbox = np.stack([nonzero.min(0), nonzero.max(0)]) - np.array([c.start for c in crop])
    return Templates(tissues, texture, affine, bbox, mm[keep], room)


def _smooth_and_halve(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth each axis (but the first) and keep every other voxel (both ends kept: odd sizes)."""
    for axis in (1, 2, 3):
        volume = ndi.gaussian_filter1d(volume, sigma, axis=axis)[(slice(None),) * axis + (slice(None, None, 2),)]
    return np.ascontiguousarray(volume)


@lru_cache(maxsize=2)
def _source_tensors(coarse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (1, 5, ...) tissue and (1, 2, ...) texture tensors; smoothed and halved for coarse grids (notebook 01).

    Both tensors span the same (cropped) MNI box, so the same normalised sampling grid serves both.
    """
    templates = load_templates()
    tissues, texture = templates.tissues, templates.texture
    if coarse:  # grids with voxels of 2.5 mm or more: anti-alias, then sample a 2 mm copy (faster)
        tissues = _smooth_and_halve(tissues, 1.2)
        texture = np.ascontiguousarray(ndi.gaussian_filter(texture, (0, 0.7, 0.7, 0.7)))
    return torch.from_numpy(tissues)[None], torch.from_numpy(texture)[None]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float = 0.8) -> np.ndarray:
    """Return a smooth random field on a coarse grid (leading axis: channels), scaled to max |value| 1."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), [0, *([sigma] * (len(shape) - 1))], mode="wrap")
    return (field / np.abs(field).max(axis=tuple(range(1, len(shape))), keepdims=True)).astype(np.float32)


def random_transform(rng: np.random.Generator, grid_shape: tuple[int, int, int]) -> CaseTransform:
    """Draw a per-case similarity (scale, rotation, shift) and elastic displacement onto ``grid_shape``."""
    scale = MNI_TO_BRATS_SCALE * rng.uniform(0.92, 1.08, 3)
    ax, ay, az = np.deg2rad(np.clip(rng.normal(0.0, 3.0, 3), -7.0, 7.0))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    shift = np.clip(rng.normal(0.0, 2.5, 3), -6.0, 6.0)
    world = np.eye(4)  # MNI world -> BraTS world
    world[:3, :3] = rz @ ry @ rx @ np.diag(scale)
    anchor = (BRATS_AFFINE @ np.append(BRATS_ANCHOR_VOXEL, 1.0))[:3]
    world[:3, 3] = anchor + shift - world[:3, :3] @ MNI_ANCHOR_MM
    to_output = np.linalg.inv(grid_affine(grid_shape)) @ world @ load_templates().affine
    elastic = rng.uniform(1.5, 3.5) * smooth_noise(rng, (3, *COARSE_FIELD_SHAPE))
    spacing = np.abs(np.diag(grid_affine(grid_shape))[:3])
    return CaseTransform(np.linalg.inv(to_output), to_output, elastic, spacing)


def template_brain_box(transform: CaseTransform, grid_shape: tuple[int, int, int], pad_mm: float = 10.0) -> tuple:
    """Return the slices of the output grid that hold the warped brain (with a margin)."""
    lo, hi = load_templates().brain_bbox
    corners = np.array([[*corner, 1.0] for corner in itertools.product(*zip(lo, hi))])
    out = (corners @ transform.to_output.T)[:, :3]
    pad = pad_mm / transform.spacing
    start = np.clip(np.floor(out.min(0) - pad), 0, grid_shape).astype(int)
    stop = np.clip(np.ceil(out.max(0) + pad) + 1, 0, grid_shape).astype(int)
    return tuple(slice(a, b) for a, b in zip(start, stop))


def _mass_effect(grid: list, box: tuple, transform: CaseTransform, mass: tuple) -> None:
    """Push tissue away from a tumour centre (in place on the pull-back grid, normalised units)."""
    centre, sigma_mm, amplitude, norm = mass
    reach = np.ceil(3 * sigma_mm / transform.spacing).astype(int)
    sub, rel = [], []
    for axis, (c, r, b) in enumerate(zip(centre, reach, box)):
        lo = int(np.clip(int(c) - r - b.start, 0, b.stop - b.start))
        hi = int(np.clip(int(c) + r + 1 - b.start, lo, b.stop - b.start))
        sub.append(slice(lo, hi))
        shape = [1, 1, 1]
        shape[axis] = -1
        rel.append((torch.arange(b.start + lo, b.start + hi, dtype=torch.float32) - float(c)).reshape(shape))
    r2 = sum((r * float(s)) ** 2 for r, s in zip(rel, transform.spacing))
    factor = -amplitude * torch.exp(-r2 / (2 * sigma_mm**2))
    for row, coordinate in enumerate(grid):
        pull = sum(float(transform.to_mni[row, k]) * rel[k] for k in range(3)) * factor
        coordinate[tuple(sub)] += pull * norm[row]


def warp_tissues(
    transform: CaseTransform, box: tuple, extra: np.ndarray | None = None, mass: tuple | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample the template channels (``GM`` ... ``TEXTURE_B``) on the output ``box`` with one trilinear pass.

    ``extra`` (C, *COARSE_FIELD_SHAPE) coarse fields are upsampled over the box in the same call as the
    elastic field; ``mass`` = (centre voxel, sigma mm, amplitude) adds a tumour mass effect.
    """
    tissue_source, texture_source = _source_tensors(bool(transform.spacing.max() >= COARSE_GRID_MM))
    size = torch.tensor(load_templates().tissues.shape[1:], dtype=torch.float32)
    norm = (2.0 / (size - 1)).tolist()
    shape = tuple(s.stop - s.start for s in box)
    coarse = transform.elastic if extra is None else np.concatenate([transform.elastic, extra])
    coarse = torch.from_numpy(coarse)[None]
    fields = F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0]
    axes = [torch.arange(s.start, s.stop, dtype=torch.float32) for s in box]
    axes = [a.reshape(shape) for a, shape in zip(axes, ((-1, 1, 1), (1, -1, 1), (1, 1, -1)))]
    grid = []
    for row in range(3):  # MNI voxel coordinate along MNI axis `row`, normalised to [-1, 1]
        m = transform.to_mni[row]
        coordinate = (m[0] * axes[0] + m[1] * axes[1] + m[2] * axes[2] + m[3]) + fields[row]
        grid.append(coordinate * norm[row] - 1.0)
    if mass is not None:
        _mass_effect(grid, box, transform, (*mass, norm))
    grid = torch.stack(grid[::-1], dim=-1)[None]  # grid_sample wants (z, y, x) = (W, H, D) order
    sampled = [F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
               for source in (tissue_source, texture_source)]  # fmt: skip
    return torch.cat(sampled).numpy(), (None if extra is None else fields[3:].numpy())


def normal_images(
    contrast: dict[str, tuple], gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, texture: np.ndarray,
    vessels: np.ndarray,
) -> dict[str, np.ndarray]:
    """Partial-volume mixture of the tissue contrasts (white matter = 1) with texture and vessels, per modality."""
    images = {}
    for modality in MODALITIES:
        c_wm, c_gm, c_csf = (np.float32(c) for c in contrast[modality])
        image = (wm * c_wm + gm * c_gm + csf * c_csf) * (1 + texture)
        images[modality] = np.maximum(image + np.float32(VESSEL_CONTRAST[modality]) * vessels, 0)
    return images


@dataclass(frozen=True)
class Lookalikes:
    """Per-case amount (0: absent) of each healthy structure of ``LOOKALIKE_CONTRAST``, and where it spreads."""

    amount: dict[str, float]
    density: np.ndarray  # (2, *COARSE_FIELD_SHAPE) smooth fields: where the rim and the caps are strong
    rim_cover: float  # offset of the rim's density: higher covers more of the brain's edge
    wmh_threshold: float  # white-matter hyperintensities where a texture field exceeds this (in std)
    angle: float  # mixing angle of the two texture fields for this case's spots


def random_lookalikes(rng: np.random.Generator) -> Lookalikes:
    """Draw how much dura, choroid plexus, periventricular caps and white-matter lesions one brain shows."""
    amount = {"rim": rng.uniform(0.4, 1.4), "choroid": rng.uniform(0.5, 2.5), "caps": rng.uniform(0.4, 1.5),
              "wmh": rng.uniform(0.5, 1.4) if rng.random() < 0.85 else 0.0, "vessels": rng.uniform(0.7, 2.8)}
    return Lookalikes(amount, smooth_noise(rng, (2, *COARSE_FIELD_SHAPE)), float(rng.uniform(-0.2, 0.6)),
                      float(rng.uniform(0.6, 1.8)), float(rng.uniform(0, 2 * np.pi)))


def case_spots(channels: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Two independent unit-std texture fields of this case (the fixed MNI fields mixed by ``angle``)."""
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return c * channels[TEXTURE_A] + s * channels[TEXTURE_B], c * channels[TEXTURE_B] - s * channels[TEXTURE_A]


def lookalike_weights(channels: np.ndarray, density: np.ndarray, look: Lookalikes, wm: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Where each lookalike lies on the brain box: weights 0..1 (``channels`` from ``warp_tissues``).

    The rim hugs the brain's edge in patches (``density[0]``); choroid plexus is spots inside the ventricles;
    caps are a band of white matter around them; hyperintensities are spots in deep white matter; vessels are thin
    tubes (where both texture fields cross zero) under the surface in the rim's patches and in CSF spaces.
    """
    first, second = case_spots(channels, look.angle)
    depth_mm = channels[DEPTH] * np.float32(DEPTH_SCALE_MM)
    near = channels[VENTRICLES]
    patches = np.clip(2.0 * density[0] + np.float32(look.rim_cover), 0, 1)
    rim = np.exp(-np.maximum(depth_mm - 1.0, 0) / np.float32(2.5)) * patches * np.clip(0.7 + 0.3 * first, 0, 1.5)
    choroid = np.clip((near - 0.9) / 0.1, 0, 1) * np.clip((second - 0.8) / 0.8, 0, 1)
    caps = np.clip((near - 0.5) / 0.3, 0, 1) * np.clip((0.97 - near) / 0.05, 0, 1) * wm
    caps *= np.clip(0.6 + density[1], 0, 1)
    wmh = np.clip((second - np.float32(look.wmh_threshold)) / 0.3, 0, 1) * wm * (depth_mm > 8.0)
    spread = max(float(first.std()), float(second.std()), 1e-3)  # coarse grids sample smoother (weaker) fields
    tubes = np.exp((first * first + second * second) * np.float32(-0.5 / (VESSEL_WIDTH * spread) ** 2))
    csf = np.clip(channels[MASK] - channels[GM] - channels[WM], 0, 1)
    surface = np.exp(-np.maximum(depth_mm - 1.0, 0) / np.float32(3.0)) * patches
    vessels = tubes * np.clip(surface + np.clip((csf - 0.3) / 0.4, 0, 0.6), 0, 1)
    return {"rim": rim, "choroid": choroid, "caps": caps, "wmh": wmh, "vessels": vessels}


def add_lookalikes(images: dict[str, np.ndarray], weights: dict[str, np.ndarray], look: Lookalikes,
                   brain: np.ndarray) -> None:
    """Add each lookalike's contrast (``LOOKALIKE_CONTRAST`` x its amount x its weight) in the brain, in place."""
    for modality, image in images.items():
        change = sum(np.float32(LOOKALIKE_CONTRAST[name][modality] * look.amount[name]) * weight
                     for name, weight in weights.items() if look.amount.get(name, 0.0) > 0)
        if isinstance(change, np.ndarray):
            np.maximum(image + change * brain, 0, out=image)
