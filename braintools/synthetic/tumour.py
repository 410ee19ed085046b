"""Synthetic brain tumours for the synthetic BraTS generator: labels and image appearance.

Shapes and intensities follow what ``synthetic.statistics`` measures on real BraTS cases (tumour-core
volume, lobulation, enhancing share of the core, edema reach, intensities relative to white matter and their
overlap), with per-case randomisation wider than the real spread.

A tumour is a union of one to four irregular ellipsoidal lobes (random axes and orientation, multi-scale noise on
the boundary) around a white- or grey-matter point of a cerebral hemisphere, from deep white matter to the cortex
(it may reach the brain's edge, as most real ones do): a thin enhancing shell (label 4, 2-5 mm, real ET is about 2
mm) with enhancing walls between necrotic pockets inside it, sometimes broken by non-enhancing gaps, around a
necrotic / non-enhancing core (label 1), or a core without enhancement in low-grade-like cases; an edema halo (label
2) reaching 8-55 mm further, farther along white matter than into grey matter, never into CSF, across the midline or
outside the brain. One case in five has a second, smaller focus (multifocal tumours). Everything is computed on the
tumour's bounding box only. The images get soft partial-volume boundaries, heterogeneous texture inside each label
and edema that fades into normal tissue; the labels stay crisp.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from braintools.synthetic.anatomy import MNI_TO_BRATS_SCALE, CaseTransform, load_templates, smooth_noise

LOW_GRADE_FRACTION = 0.15
SHELL_MM = (2.0, 5.0)  # log-uniform thickness of the enhancing shell (before its +-50 % boundary noise)
SEPTA_SHARE = (0.3, 0.85)  # uniform share of the core inside the shell that enhances (walls between pockets)
SEPTA_SCALE_MM = (1.5, 2.5)
FINE_ROUGHNESS_MM = (1.0, 2.0)  # amplitude (std) and correlation length of the fine wrinkles of the lesion's surface
CORE_BLUR_MM = 0.5  # partial-volume blur (Gaussian sigma) of NCR and ET in the images (edema: 1 mm)
SATELLITE_FRACTION = 0.2  # cases with a second focus (multifocal tumours)
# Relative intensities (white matter = 1): high-grade NCR, low-grade NCR/NET, ET, edema (its core; edema fades
# towards normal tissue at its edge). Set so that the medians measured on generated cases (partial volume, texture,
# fading edema and noise included) match the medians of the 8 real tuning cases (statistics.REAL_STATISTICS);
# low-grade NET from the literature (T2 and FLAIR bright).
TUMOUR_CONTRAST = {
    "t1": (0.64, 0.6, 0.86, 0.76),
    "t1ce": (0.67, 0.6, 1.6, 0.73),
    "t2": (2.73, 2.49, 2.25, 2.9),
    "flair": (2.24, 2.06, 2.62, 2.65),
}
# Per-case spread (std of the log) of each modality's tumour brightness and of each label around it: about twice
# the spread between real cases (domain randomisation: unseen scanners and tumours vary more than 8 cases show).
TUMOUR_CONTRAST_SPREAD = {"t1": 0.18, "t1ce": 0.18, "t2": 0.3, "flair": 0.3}
LABEL_CONTRAST_SPREAD = 0.15


@dataclass(frozen=True)
class TumourSpec:
    """Shape and position of one synthetic tumour (sizes in mm, centre in output voxels)."""

    centre: np.ndarray
    radius: float  # radius of the necrotic core inside the enhancing shell
    rim: float  # enhancing shell thickness, 0 for a low-grade-like tumour
    edema: float  # how far the edema reaches beyond the lesion
    axes: np.ndarray  # ellipsoid axis ratios (geometric mean 1)
    rotation: np.ndarray  # 3x3 orientation of the ellipsoid
    roughness: float  # amplitude of the boundary noise
    boundary_noise: np.ndarray  # (3, 12, 12, 12) unit-std fields over the lesion: boundary, rim thickness, gaps
    edema_noise: np.ndarray  # (2, 9, 9, 9) coarse fields over the edema box: reach (coarse and finer)
    midline: np.ndarray  # (4,) MNI x (mm) of an output voxel (i, j, k, 1): its sign is the hemisphere
    lobes: np.ndarray = field(default_factory=lambda: np.array([[0.0, 0.0, 0.0, 1.0]]))  # (K, 4): offset mm, size
    gaps: float = 0.0  # share of the enhancing shell that does not enhance (labelled NCR/NET)
    fade: float = 0.6  # edema strength at its outer edge (1 at the lesion)
    heterogeneity: tuple[float, float, float] = (0.08, 0.05, 0.1)  # texture amplitude of NCR, edema, ET
    septa: float = 0.0  # share of the core inside the shell that enhances: thin walls between necrotic pockets
    septa_scale: float = 3.0  # correlation length (mm) of the random field whose zero level the walls follow
    septa_seed: int = 0  # seed of that field (drawn on the lesion box, so its scale is in mm whatever the tumour size)

    @property
    def low_grade(self) -> bool:
        """True when the tumour has no enhancing rim."""
        return self.rim == 0.0

    @property
    def outer(self) -> float:
        """Radius of the lesion (core and shell), mm."""
        return self.radius + self.rim

    @property
    def mass_effect(self) -> tuple[np.ndarray, float, float]:
        """(centre voxel, sigma mm, amplitude) of the displacement that pushes tissue aside."""
        return self.centre, 0.8 * self.outer, 0.2 * min(1.0, self.outer / 20)


def _multiscale_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Coarse random fields mixing a low and a middle spatial frequency, unit std, clipped to +-2.5."""
    sigmas = [(0, 1.8, 1.8, 1.8), (0, 0.8, 0.8, 0.8)]
    low, mid = (ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap") for sigma in sigmas)
    mixed = 0.7 * low / low.std(axis=(1, 2, 3), keepdims=True) + 0.7 * mid / mid.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(mixed, -2.5, 2.5).astype(np.float32)


def _lobes(rng: np.random.Generator, outer: float) -> np.ndarray:
    """The main lobe (at the centre, size 1) and up to three smaller ones around it: (K, 4) offsets mm, size."""
    count = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.3, 0.3, 0.2]))
    lobes = [np.array([0.0, 0.0, 0.0, 1.0])]
    for _ in range(count - 1):
        direction = rng.standard_normal(3)
        offset = direction / np.linalg.norm(direction) * rng.uniform(0.3, 0.8) * outer
        lobes.append(np.append(offset, rng.uniform(0.45, 0.8)))
    return np.array(lobes)


def sample_tumour(rng: np.random.Generator, transform: CaseTransform) -> TumourSpec:
    """Draw a tumour around a white- or grey-matter site of the warped brain (deep or close to the cortex)."""
    templates = load_templates()
    low_grade = rng.random() < LOW_GRADE_FRACTION
    outer = float(np.exp(rng.uniform(np.log(10.0), np.log(28.0))))
    # A thin enhancing shell (real ET is about 2 mm thick, 2 volume / area) and enhancing walls between necrotic
    # pockets inside it, so that enhancing tumour is most of the core (a median 0.6 of it in the real tuning cases)
    rim = 0.0 if low_grade else float(np.clip(np.exp(rng.uniform(np.log(SHELL_MM[0]), np.log(SHELL_MM[1]))),
                                              1.0, outer - 1.5))
    edema = float(np.exp(rng.uniform(np.log(8.0), np.log(55.0))))
    roughness = rng.uniform(0.25, 0.5)
    axes = np.exp(rng.uniform(-0.3, 0.3, 3))
    rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    boundary_noise, edema_noise = _multiscale_noise(rng, (3, 12, 12, 12)), smooth_noise(rng, (2, 9, 9, 9), 0.9)
    room = templates.room * MNI_TO_BRATS_SCALE.mean()
    candidates = np.flatnonzero(room >= min(0.4 * outer, np.quantile(room, 0.9)))
    site = templates.sites[rng.choice(candidates)] + rng.uniform(-1.0, 1.0, 3)
    voxel = np.linalg.solve(templates.affine, np.append(site, 1.0))
    centre = (transform.to_output @ voxel)[:3]
    axes = axes / np.prod(axes) ** (1 / 3)
    midline = templates.affine[0, :3] @ transform.to_mni[:3] + np.array([0, 0, 0, templates.affine[0, 3]])
    lobes = _lobes(rng, outer)
    gaps = 0.0 if low_grade or rng.random() < 0.6 else float(rng.uniform(0.05, 0.3))
    heterogeneity = (float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.04, 0.12)), float(rng.uniform(0.15, 0.35)))
    septa = 0.0 if low_grade else float(rng.uniform(*SEPTA_SHARE))
    return TumourSpec(centre, outer - rim, rim, edema, axes, rotation, roughness, boundary_noise, edema_noise,
                      midline, lobes, gaps, float(rng.uniform(0.3, 0.6)), heterogeneity, septa,
                      float(rng.uniform(*SEPTA_SCALE_MM)), int(rng.integers(2**31)))


def sample_satellite(rng: np.random.Generator, main: TumourSpec, spacing: np.ndarray) -> TumourSpec:
    """A second, smaller focus 1.3-4 lesion radii from ``main`` (same grade), with its own shape and edema."""
    direction = rng.standard_normal(3)
    offset_mm = direction / np.linalg.norm(direction) * rng.uniform(1.3, 4.0) * main.outer
    outer = main.outer * rng.uniform(0.25, 0.5)
    rim = 0.0 if main.low_grade else float(np.clip(main.rim * rng.uniform(0.8, 1.5), 1.0, max(1.0, outer - 1.0)))
    return replace(main, centre=main.centre + offset_mm / spacing, radius=max(outer - rim, 1.0), rim=rim,
                   edema=main.edema * rng.uniform(0.4, 0.9), rotation=np.linalg.qr(rng.standard_normal((3, 3)))[0],
                   boundary_noise=_multiscale_noise(rng, (3, 12, 12, 12)), lobes=np.array([[0.0, 0.0, 0.0, 1.0]]))


def _sub_box(spec: TumourSpec, spacing: np.ndarray, box: tuple) -> tuple:
    """Slices (relative to the brain ``box``) of the tumour's bounding box."""
    half_mm = spec.outer * _lobe_extent(spec) * spec.axes.max() * (1 + spec.roughness) + 1.4 * spec.edema + 4.0
    half = np.ceil(half_mm / spacing).astype(int)
    sub = []
    for c, h, b in zip(spec.centre, half, box):
        size = b.stop - b.start
        lo = int(np.clip(round(c) - h - b.start, 0, size))
        sub.append(slice(lo, int(np.clip(round(c) + h + 1 - b.start, lo, size))))
    return tuple(sub)


def _lobe_extent(spec: TumourSpec) -> float:
    """How far the lobes reach, in lesion radii (1 for a single lobe)."""
    return float(max(np.linalg.norm(lobe[:3]) / spec.outer + lobe[3] for lobe in spec.lobes))


def _same_hemisphere(spec: TumourSpec, box: tuple, sub: tuple) -> np.ndarray:
    """True on ``sub`` for voxels on the tumour centre's side of the MNI midline (x = 0)."""
    axes = [np.arange(b.start + s.start, b.start + s.stop, dtype=np.float32) for s, b in zip(sub, box)]
    x = sum(
        np.float32(spec.midline[k]) * a.reshape([-1 if k == n else 1 for n in range(3)]) for k, a in enumerate(axes)
    )
    side = np.sign(spec.midline[:3] @ spec.centre + spec.midline[3])
    return (x + np.float32(spec.midline[3])) * side > 0


def _radial_coordinate(spec: TumourSpec, spacing: np.ndarray, box: tuple, sub: tuple) -> np.ndarray:
    """Distance-like coordinate (mm, lesion radius = ``spec.outer``) through the irregular lobes, on ``sub``.

    Each lobe is the same ellipsoid shifted and scaled; the coordinate is the smallest lobe-scaled distance.
    """
    q = spec.rotation.astype(np.float32) / spec.axes.astype(np.float32)[None, :]
    radial = None
    for lobe in spec.lobes:
        rel = []
        for axis, (s, b) in enumerate(zip(sub, box)):
            shape = [1, 1, 1]
            shape[axis] = -1
            coords = np.arange(b.start + s.start, b.start + s.stop, dtype=np.float32) - np.float32(spec.centre[axis])
            rel.append((coords * np.float32(spacing[axis]) - np.float32(lobe[axis])).reshape(shape))
        r2 = sum((rel[0] * q[0, k] + rel[1] * q[1, k] + rel[2] * q[2, k]) ** 2 for k in range(3))
        distance = np.sqrt(r2) / np.float32(lobe[3])
        radial = distance if radial is None else np.minimum(radial, distance)
    return radial


def _upsample(fields: np.ndarray, shape: tuple) -> np.ndarray:
    """Trilinear upsampling of coarse fields (C, a, b, c) onto ``shape``."""
    coarse = torch.from_numpy(np.ascontiguousarray(fields))[None]
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0].numpy()


def _lesion_box(spec: TumourSpec, spacing: np.ndarray, box: tuple, sub: tuple) -> tuple:
    """Slices (relative to ``sub``) of the box that can hold the core and the rim."""
    half = np.ceil((spec.outer * _lobe_extent(spec) * spec.axes.max() * (1 + spec.roughness) + 2.0) / spacing)
    inner = []
    for c, h, s, b in zip(spec.centre, half.astype(int), sub, box):
        lo = int(np.clip(round(c) - h - b.start - s.start, 0, s.stop - s.start))
        inner.append(slice(lo, int(np.clip(round(c) + h + 1 - b.start - s.start, lo, s.stop - s.start))))
    return tuple(inner)


def _core_and_shell(spec: TumourSpec, rho: np.ndarray, rim_noise: np.ndarray, gap_noise: np.ndarray,
                    spacing: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lesion and necrotic/non-enhancing core masks on the lesion box (enhancing tumour is lesion minus core)."""
    lesion = inside & (rho < spec.outer)
    if spec.low_grade:
        return lesion, lesion
    rim = np.maximum(spec.rim * (1 + 0.5 * rim_noise), max(1.0, 1.05 * float(spacing.max())))
    core = lesion & (rho < spec.outer - rim)
    if spec.septa > 0 and core.any():  # enhancing walls between necrotic pockets
        noise = np.random.default_rng(spec.septa_seed).standard_normal(core.shape, dtype=np.float32)
        walls = np.abs(ndi.gaussian_filter(noise, spec.septa_scale / spacing))
        core &= walls > np.quantile(walls[core], spec.septa)
    if spec.gaps > 0:  # stretches of the shell that do not enhance: non-enhancing tumour, labelled NCR/NET
        core |= lesion & (gap_noise > np.quantile(gap_noise, 1 - spec.gaps))
    return lesion, core


def grow_tumour(spec: TumourSpec, spacing: np.ndarray, box: tuple, tissues: tuple) -> tuple:
    """Return (sub-box slices, labels uint8 {0,1,2,4}, edema strength) on the tumour's bounding box.

    ``tissues`` holds grey matter, white matter, CSF and the brain mask on the brain ``box``.
    """
    sub = _sub_box(spec, spacing, box)
    gm, wm, csf, brain = (channel[sub] for channel in tissues)
    radial = _radial_coordinate(spec, spacing, box, sub)
    inner = _lesion_box(spec, spacing, box, sub)
    if 0 in radial[inner].shape:  # a focus placed beyond the brain box (a far satellite): nothing to grow
        return sub, np.zeros(gm.shape, np.uint8), np.zeros(gm.shape, np.float32)
    boundary_noise, rim_noise, gap_noise = _upsample(spec.boundary_noise, radial[inner].shape)
    rho = radial[inner] / (1 + spec.roughness * boundary_noise)
    fine = np.random.default_rng(spec.septa_seed + 1).standard_normal(rho.shape, dtype=np.float32)
    fine = ndi.gaussian_filter(fine, FINE_ROUGHNESS_MM[1] / spacing)
    rho += np.float32(FINE_ROUGHNESS_MM[0]) * fine / max(float(fine.std()), 1e-6)  # a crinkled surface, as real cores
    brain = brain & _same_hemisphere(spec, box, sub)  # the falx stops tumour and edema
    lesion, ncr = np.zeros(gm.shape, bool), np.zeros(gm.shape, bool)
    lesion[inner], ncr[inner] = _core_and_shell(spec, rho, rim_noise, gap_noise, spacing, brain[inner])
    coarse, fine = _upsample(spec.edema_noise, gm.shape)
    beyond = radial - spec.outer
    wm_share = wm / np.maximum(gm + wm + csf, 1e-3)
    reach = spec.edema * (0.15 + 0.85 * wm_share) * (1 + 0.4 * coarse + 0.4 * fine)
    edema = brain & ~lesion & (beyond < reach) & (csf < 0.5)
    components, _ = ndi.label(edema | lesion)
    connected = np.isin(components, np.unique(components[lesion]))
    labels = np.zeros(gm.shape, np.uint8)
    labels[edema & connected] = 2
    labels[lesion & ~ncr] = 4
    labels[ncr] = 1
    fading = np.sqrt(np.clip(1 - beyond / np.maximum(reach, 1e-3), 0, 1))
    strength = np.where(labels == 2, spec.fade + (1 - spec.fade) * fading, 0)
    return sub, labels, strength.astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple, spacing: np.ndarray, scale_mm: float) -> np.ndarray:
    """Smooth random texture (zero mean, unit std) with correlation length ``scale_mm``."""
    smooth = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), scale_mm / spacing)
    return smooth / max(float(smooth.std()), 1e-6)


def paint_tumour(
    images: dict[str, np.ndarray],
    sub: tuple,
    labels: np.ndarray,
    strength: np.ndarray,
    contrast: dict[str, tuple],
    spacing: np.ndarray,
    rng: np.random.Generator,
    heterogeneity: tuple[float, float, float] = (0.08, 0.05, 0.1),
) -> None:
    """Blend tumour intensities into the (white-matter = 1) ``images`` on ``sub``, in place.

    ``heterogeneity`` is the relative texture amplitude inside NCR, edema and ET (real tumours are far from
    uniform: their labels overlap in intensity).
    """
    sigma = 1.0 / spacing
    core_sigma = CORE_BLUR_MM / spacing  # the core's labels were drawn on its bright walls: a sharper boundary
    low_grade = not np.any(labels == 4)
    w_ncr = ndi.gaussian_filter((labels == 1).astype(np.float32), core_sigma)
    w_et = ndi.gaussian_filter((labels == 4).astype(np.float32), core_sigma)
    w_ed = ndi.gaussian_filter(strength, sigma)
    tex_core = _texture(rng, labels.shape, spacing, 3.0)
    tex_rim = _texture(rng, labels.shape, spacing, 1.5)
    h_ncr, h_ed, h_et = (np.float32(h) for h in heterogeneity)
    for modality, image in images.items():
        ncr, net, et, ed = contrast[modality]
        core = (net if low_grade else ncr) * (1 + h_ncr * tex_core)
        normal = image[sub]
        blended = normal * (1 - w_ed) + w_ed * ed * (1 + h_ed * tex_core)
        image[sub] = (1 - w_ncr - w_et) * blended + w_ncr * core + w_et * et * (1 + h_et * tex_rim)


def random_tumour_contrast(rng: np.random.Generator, tissue: dict[str, tuple] | None = None) -> dict[str, tuple]:
    """Per-case tumour intensities around ``TUMOUR_CONTRAST``, keeping the BraTS signatures of FORMATS.md.

    Each modality's tumour gets a common factor (one scanner shows all tumour brighter on FLAIR than another)
    and each label its own; enhancement stays above core, edema and white matter on T1ce and above itself on T1.
    With the case's ``tissue`` contrasts (white matter, grey matter, CSF per modality), edema and the core also stay
    above grey matter on T2 and FLAIR, and enhancement above grey matter on T1ce, however the tissues were drawn.
    """
    drawn = {}
    for modality, values in TUMOUR_CONTRAST.items():
        common = rng.normal(0, TUMOUR_CONTRAST_SPREAD[modality])
        drawn[modality] = np.array(values) * np.exp(common + rng.normal(0, LABEL_CONTRAST_SPREAD, 4))
    for modality in ("t1", "t1ce"):  # a necrotic or non-enhancing core is darker than white matter on T1
        drawn[modality][:2] = np.minimum(drawn[modality][:2], 0.78)
    drawn["t1"][2:] = np.minimum(drawn["t1"][2:], (1.1, 1.0))  # before contrast, ET and edema are not bright on T1
    for modality in ("t2", "flair"):  # edema (and the core, on T2) are hyperintense on T2 and FLAIR
        drawn[modality][3] = max(drawn[modality][3], 1.35)
    drawn["t2"][:2] = np.maximum(drawn["t2"][:2], 1.5)
    grey = {m: 1.0 if tissue is None else float(tissue[m][1]) for m in TUMOUR_CONTRAST}
    for modality in ("t2", "flair"):  # hyperintense against the normal brain, grey matter included
        drawn[modality][[0, 1, 3]] = np.maximum(drawn[modality][[0, 1, 3]], 1.25 * grey[modality])
    drawn["t2"][3] = max(drawn["t2"][3], 2.0)  # above the normal brain's median (CSF raises it on T2)
    t1ce, t1 = drawn["t1ce"], drawn["t1"]
    t1ce[2] = max(t1ce[2], 1.15 * max(t1ce[0], t1ce[1], t1ce[3], 1.0), 1.5 * t1[2] + 0.1, 1.25,
                  1.3 * grey["t1ce"])  # enhancement
    return {modality: tuple(float(v) for v in values) for modality, values in drawn.items()}
