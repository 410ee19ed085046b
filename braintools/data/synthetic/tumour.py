"""Synthetic brain tumours for the synthetic BraTS generator: labels and image appearance.

A tumour is an irregular ellipsoid (random axes and orientation, low-frequency noise on its boundary)
grown around a deep white-matter point of a cerebral hemisphere: a necrotic / non-enhancing core
(label 1), an enhancing rim (label 4, 1.5-5 mm thick; absent in low-grade-like cases) and an edema halo
(label 2) that reaches 5-25 mm further, farther in white matter than in grey matter, never into CSF or
outside the brain. Everything is computed on the tumour's bounding box only. The images get smooth
partial-volume boundaries and some texture; the labels stay crisp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from braintools.data.synthetic.anatomy import MNI_TO_BRATS_SCALE, CaseTransform, load_templates, smooth_noise

LOW_GRADE_FRACTION = 0.15
# Relative intensities (white matter = 1): high-grade NCR, low-grade NCR/NET, ET, edema.
TUMOUR_CONTRAST = {
    "t1": (0.45, 0.55, 0.82, 0.78),
    "t1ce": (0.48, 0.57, 1.50, 0.80),
    "t2": (2.80, 2.30, 1.75, 2.20),
    "flair": (1.35, 1.90, 1.60, 1.90),
}


@dataclass(frozen=True)
class TumourSpec:
    """Shape and position of one synthetic tumour (sizes in mm, centre in output voxels)."""

    centre: np.ndarray
    radius: float  # core (NCR) radius
    rim: float  # enhancing rim thickness, 0 for a low-grade-like tumour
    edema: float  # how far the edema reaches beyond the lesion
    axes: np.ndarray  # ellipsoid axis ratios (geometric mean 1)
    rotation: np.ndarray  # 3x3 orientation of the ellipsoid
    roughness: float  # amplitude of the boundary noise
    boundary_noise: np.ndarray  # (2, 12, 12, 12) unit-std fields over the lesion: boundary, rim thickness
    edema_noise: np.ndarray  # (2, 9, 9, 9) coarse fields over the edema box: reach (coarse and finer)
    midline: np.ndarray  # (4,) MNI x (mm) of an output voxel (i, j, k, 1): its sign is the hemisphere

    @property
    def low_grade(self) -> bool:
        """True when the tumour has no enhancing rim."""
        return self.rim == 0.0

    @property
    def mass_effect(self) -> tuple[np.ndarray, float, float]:
        """(centre voxel, sigma mm, amplitude) of the displacement that pushes tissue aside."""
        return self.centre, 0.8 * (self.radius + self.rim), 0.2 * min(1.0, (self.radius + self.rim) / 20)


def _multiscale_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Coarse random fields mixing a low and a middle spatial frequency, unit std, clipped to +-2.5."""
    sigmas = [(0, 1.8, 1.8, 1.8), (0, 0.8, 0.8, 0.8)]
    low, mid = (ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap") for sigma in sigmas)
    field = 0.8 * low / low.std(axis=(1, 2, 3), keepdims=True) + 0.6 * mid / mid.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(field, -2.5, 2.5).astype(np.float32)


def sample_tumour(rng: np.random.Generator, transform: CaseTransform) -> TumourSpec:
    """Draw a tumour whose centre is a deep white-matter site of the warped brain."""
    templates = load_templates()
    low_grade = rng.random() < LOW_GRADE_FRACTION
    radius = rng.uniform(6.0, 25.0)
    rim = 0.0 if low_grade else rng.uniform(1.5, 5.0)
    edema, roughness = rng.uniform(5.0, 25.0), rng.uniform(0.12, 0.25)
    axes = np.exp(rng.uniform(-0.25, 0.25, 3))
    rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    boundary_noise, edema_noise = _multiscale_noise(rng, (2, 12, 12, 12)), smooth_noise(rng, (2, 9, 9, 9), 0.9)
    room = templates.room * MNI_TO_BRATS_SCALE.mean()
    radius = min(radius, (room.max() - 2.0) / 1.1 - rim)
    candidates = np.flatnonzero(room >= (radius + rim) * 1.1 + 2.0)
    site = templates.sites[rng.choice(candidates)] + rng.uniform(-1.0, 1.0, 3)
    voxel = np.linalg.solve(templates.affine, np.append(site, 1.0))
    centre = (transform.to_output @ voxel)[:3]
    axes = axes / np.prod(axes) ** (1 / 3)
    midline = templates.affine[0, :3] @ transform.to_mni[:3] + np.array([0, 0, 0, templates.affine[0, 3]])
    return TumourSpec(centre, radius, rim, edema, axes, rotation, roughness, boundary_noise, edema_noise, midline)


def _sub_box(spec: TumourSpec, spacing: np.ndarray, box: tuple) -> tuple:
    """Slices (relative to the brain ``box``) of the tumour's bounding box."""
    half_mm = (spec.radius + spec.rim) * spec.axes.max() * (1 + spec.roughness) + 1.4 * spec.edema + 4.0
    half = np.ceil(half_mm / spacing).astype(int)
    sub = []
    for c, h, b in zip(spec.centre, half, box):
        size = b.stop - b.start
        lo = int(np.clip(round(c) - h - b.start, 0, size))
        sub.append(slice(lo, int(np.clip(round(c) + h + 1 - b.start, lo, size))))
    return tuple(sub)


def _same_hemisphere(spec: TumourSpec, box: tuple, sub: tuple) -> np.ndarray:
    """True on ``sub`` for voxels on the tumour centre's side of the MNI midline (x = 0)."""
    axes = [np.arange(b.start + s.start, b.start + s.stop, dtype=np.float32) for s, b in zip(sub, box)]
    x = sum(
        np.float32(spec.midline[k]) * a.reshape([-1 if k == n else 1 for n in range(3)]) for k, a in enumerate(axes)
    )
    side = np.sign(spec.midline[:3] @ spec.centre + spec.midline[3])
    return (x + np.float32(spec.midline[3])) * side > 0


def _radial_coordinate(spec: TumourSpec, spacing: np.ndarray, box: tuple, sub: tuple) -> np.ndarray:
    """Distance-like coordinate (mm) from the centre through the irregular ellipsoid, on ``sub``."""
    rel = []
    for axis, (s, b) in enumerate(zip(sub, box)):
        shape = [1, 1, 1]
        shape[axis] = -1
        coords = np.arange(b.start + s.start, b.start + s.stop, dtype=np.float32) - np.float32(spec.centre[axis])
        rel.append((coords * np.float32(spacing[axis])).reshape(shape))
    q = spec.rotation.astype(np.float32) / spec.axes.astype(np.float32)[None, :]
    r2 = sum((rel[0] * q[0, k] + rel[1] * q[1, k] + rel[2] * q[2, k]) ** 2 for k in range(3))
    return np.sqrt(r2)


def _upsample(fields: np.ndarray, shape: tuple) -> np.ndarray:
    """Trilinear upsampling of coarse fields (C, a, b, c) onto ``shape``."""
    coarse = torch.from_numpy(np.ascontiguousarray(fields))[None]
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0].numpy()


def _lesion_box(spec: TumourSpec, spacing: np.ndarray, box: tuple, sub: tuple) -> tuple:
    """Slices (relative to ``sub``) of the box that can hold the core and the rim."""
    half = np.ceil(((spec.radius + spec.rim) * spec.axes.max() * (1 + spec.roughness) + 2.0) / spacing)
    inner = []
    for c, h, s, b in zip(spec.centre, half.astype(int), sub, box):
        lo = int(np.clip(round(c) - h - b.start - s.start, 0, s.stop - s.start))
        inner.append(slice(lo, int(np.clip(round(c) + h + 1 - b.start - s.start, lo, s.stop - s.start))))
    return tuple(inner)


def grow_tumour(spec: TumourSpec, spacing: np.ndarray, box: tuple, tissues: tuple) -> tuple:
    """Return (sub-box slices, labels uint8 {0,1,2,4}, edema strength) on the tumour's bounding box.

    ``tissues`` holds grey matter, white matter, CSF and the brain mask on the brain ``box``.
    """
    sub = _sub_box(spec, spacing, box)
    gm, wm, csf, brain = (channel[sub] for channel in tissues)
    radial = _radial_coordinate(spec, spacing, box, sub)
    inner = _lesion_box(spec, spacing, box, sub)
    boundary_noise, rim_noise = _upsample(spec.boundary_noise, radial[inner].shape)
    rho = radial[inner] / (1 + spec.roughness * boundary_noise)
    outer = spec.radius + spec.rim
    lesion = np.zeros(gm.shape, bool)
    brain = brain & _same_hemisphere(spec, box, sub)  # the falx stops tumour and edema
    lesion[inner] = brain[inner] & (rho < outer)
    ncr = np.zeros(gm.shape, bool)
    if spec.low_grade:
        ncr = lesion
    else:  # the rim thickness varies around its nominal value, and is at least one voxel
        rim = np.maximum(spec.rim * (1 + 0.45 * rim_noise), max(1.0, 1.05 * float(spacing.max())))
        ncr[inner] = lesion[inner] & (rho < outer - rim)
    coarse, fine = _upsample(spec.edema_noise, gm.shape)
    beyond = radial - outer
    wm_share = wm / np.maximum(gm + wm + csf, 1e-3)
    reach = spec.edema * (0.2 + 0.8 * wm_share) * (1 + 0.4 * coarse + 0.25 * fine)
    edema = brain & ~lesion & (beyond < reach) & (csf < 0.5)
    components, _ = ndi.label(edema | lesion)
    connected = np.isin(components, np.unique(components[lesion]))
    labels = np.zeros(gm.shape, np.uint8)
    labels[edema & connected] = 2
    labels[lesion & ~ncr] = 4
    labels[ncr] = 1
    strength = np.where(labels == 2, 0.6 + 0.4 * np.sqrt(np.clip(1 - beyond / reach, 0, 1)), 0)
    return sub, labels, strength.astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple, spacing: np.ndarray, scale_mm: float) -> np.ndarray:
    """Smooth random texture (zero mean, unit std) with correlation length ``scale_mm``."""
    field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), scale_mm / spacing)
    return field / max(float(field.std()), 1e-6)


def paint_tumour(
    images: dict[str, np.ndarray],
    sub: tuple,
    labels: np.ndarray,
    strength: np.ndarray,
    contrast: dict[str, tuple],
    spacing: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Blend tumour intensities into the (white-matter = 1) ``images`` on ``sub``, in place."""
    sigma = 0.7 / spacing
    low_grade = not np.any(labels == 4)
    w_ncr = ndi.gaussian_filter((labels == 1).astype(np.float32), sigma)
    w_et = ndi.gaussian_filter((labels == 4).astype(np.float32), sigma)
    w_ed = ndi.gaussian_filter(strength, sigma)
    tex_core = _texture(rng, labels.shape, spacing, 2.5)
    tex_rim = _texture(rng, labels.shape, spacing, 1.5)
    for modality, image in images.items():
        ncr, net, et, ed = contrast[modality]
        core = (net if low_grade else ncr) * (1 + 0.08 * tex_core)
        normal = image[sub]
        blended = normal * (1 - w_ed) + w_ed * ed * (1 + 0.05 * tex_core)
        image[sub] = (1 - w_ncr - w_et) * blended + w_ncr * core + w_et * et * (1 + 0.1 * tex_rim)
