"""The building blocks of the synthetic generator: MNI152 templates, per-case warps, tumours, scanner effects."""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import pytest
from scipy import ndimage

from braintools.data import labels
from braintools.synthetic import anatomy, generator, tumour
from braintools.synthetic.layout import slice_rows, write_h5_case

GRID = (64, 64, 40)


@pytest.fixture(scope="module")
def warped():
    """One case's transform, brain box and warped tissues on the small grid."""
    rng = np.random.default_rng(7)
    transform = anatomy.random_transform(rng, GRID)
    box = anatomy.template_brain_box(transform, GRID)
    tissues, _ = anatomy.warp_tissues(transform, box)
    brain = tissues[2] > 0.5
    gm, wm = (np.clip(channel, 0, 1) * brain for channel in tissues[:2])
    csf = np.clip(1 - gm - wm, 0, 1) * brain
    return rng, transform, box, tissues, (gm, wm, csf, brain)


def test_nilearn_ships_the_templates_and_they_load_as_tissue_maps():
    assert all((anatomy._nilearn_data_dir() / name).is_file() for name in anatomy.MNI_FILES.values())
    templates = anatomy.load_templates()
    gm, wm, mask, depth, ventricles = templates.tissues
    assert set(np.unique(mask)) <= {0.0, 1.0} and 1.2e6 < mask.sum() < 2.2e6  # an adult brain: 1.2-2.2 litres
    assert np.all(gm + wm <= 1.0 + 1e-6) and np.all(gm[mask == 0] == 0)
    assert len(templates.sites) > 100 and templates.room.min() >= anatomy.MIN_SITE_DEPTH_MM
    assert depth.max() == 1.0 and np.all(depth[mask == 0] == 0) and depth[mask == 1].min() > 0  # deep inside: 1
    inside = ventricles == 1.0  # the ventricles: 5-60 mL of deep CSF, none at the surface
    assert 5e3 < inside.sum() < 6e4 and depth[inside].min() * anatomy.DEPTH_SCALE_MM >= 15
    assert np.all(np.abs(templates.sites[:, 0]) > 0)  # tumour sites lie in a hemisphere, off the midline


def test_grid_affine_is_the_brats_affine_at_full_size_and_covers_the_same_box_when_coarser():
    np.testing.assert_array_equal(anatomy.grid_affine((240, 240, 155)), anatomy.BRATS_AFFINE)
    coarse = anatomy.grid_affine(GRID)
    np.testing.assert_allclose(np.abs(np.diag(coarse)[:3]) * GRID, anatomy.BRATS_FOV_MM)
    assert np.allclose(coarse @ [0, GRID[1] - 1, 0, 1], [0, 0, 0, 1])  # same world origin rule as BraTS


def test_smooth_noise_is_seeded_and_scaled_per_channel():
    a = anatomy.smooth_noise(np.random.default_rng(1), (2, 5, 5, 4))
    b = anatomy.smooth_noise(np.random.default_rng(1), (2, 5, 5, 4))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.abs(a).max(axis=(1, 2, 3)), 1.0, rtol=1e-6)


def test_random_transform_places_the_mni_anchor_near_the_brats_anchor():
    transform = anatomy.random_transform(np.random.default_rng(3), (240, 240, 155))
    mni_voxel = np.linalg.solve(anatomy.load_templates().affine, np.append(anatomy.MNI_ANCHOR_MM, 1.0))
    output_voxel = (transform.to_output @ mni_voxel)[:3]
    assert np.abs(output_voxel - anatomy.BRATS_ANCHOR_VOXEL).max() < 8  # a few mm of random shift
    np.testing.assert_allclose(transform.to_mni @ transform.to_output, np.eye(4), atol=1e-9)


def test_warped_brain_fits_in_its_box_and_has_tissue_fractions_like_a_brain(warped):
    _, _, box, tissues, (gm, wm, csf, brain) = warped
    assert all(0 <= s.start < s.stop <= n for s, n in zip(box, GRID))
    assert tissues.shape == (7, *(s.stop - s.start for s in box))  # GM, WM, mask, depth, ventricles, 2 textures
    fractions = [channel[brain].mean() for channel in (gm, wm, csf)]
    assert 0.3 < fractions[0] < 0.6 and 0.25 < fractions[1] < 0.55 and 0.03 < fractions[2] < 0.3


def test_normal_images_follow_the_tissue_contrasts():
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    tissue = {"wm": (zeros, ones, zeros), "gm": (ones, zeros, zeros), "csf": (zeros, zeros, ones)}
    mean = {name: {m: float(v.mean()) for m, v in anatomy.normal_images(
        anatomy.TISSUE_CONTRAST, *parts, texture=zeros, vessels=zeros).items()} for name, parts in tissue.items()}
    assert mean["csf"]["t2"] > mean["gm"]["t2"] > mean["wm"]["t2"]  # CSF bright on T2
    assert mean["csf"]["flair"] < mean["wm"]["flair"] and mean["csf"]["t1"] < mean["gm"]["t1"] < mean["wm"]["t1"]


def test_a_tumour_grows_inside_the_brain_with_brats_labels(warped):
    rng, transform, box, _, tissues = warped
    spec = tumour.sample_tumour(rng, transform)
    assert spec.low_grade == (spec.rim == 0.0)
    sub, seg, strength = tumour.grow_tumour(spec, transform.spacing, box, tissues)
    assert set(np.unique(seg)) <= {0, 1, 2, 4} and np.any(seg == 1)
    assert np.any(seg == 4) != spec.low_grade
    brain = tissues[3][sub]
    assert not np.any(seg[~brain])  # no tumour outside the brain
    assert np.all((strength > 0) == (seg == 2))  # edema strength only on edema


def test_painted_tumour_shows_the_brats_intensity_signatures(warped):
    rng, transform, box, _, tissues = warped
    gm, wm, csf, _ = tissues
    images = anatomy.normal_images(anatomy.TISSUE_CONTRAST, gm, wm, csf, np.zeros_like(gm), np.zeros_like(gm))
    spec = tumour.sample_tumour(np.random.default_rng(11), transform)
    sub, seg, strength = tumour.grow_tumour(spec, transform.spacing, box, tissues)
    tumour.paint_tumour(images, sub, seg, strength, tumour.TUMOUR_CONTRAST, transform.spacing, rng)
    wm_level = {m: float(np.median(images[m][wm > 0.9])) for m in images}
    edema = {m: float(np.median(images[m][sub][seg == 2])) / wm_level[m] for m in images}
    assert edema["flair"] > 1.1 and edema["t2"] > 1.1  # edema is hyperintense on FLAIR and T2
    if np.any(seg == 4):
        et = {m: float(np.median(images[m][sub][seg == 4])) / wm_level[m] for m in images}
        ncr = float(np.median(images["t1ce"][sub][seg == 1])) / wm_level["t1ce"]
        assert et["t1ce"] > ncr and et["t1ce"] > et["t1"]  # contrast enhancement


def test_scanner_effects_give_int16_inside_the_brain_only():
    rng = np.random.default_rng(5)
    scanner = generator._random_scanner(rng)
    brain = np.zeros((8, 8, 6), bool)
    brain[2:6, 2:6, 1:5] = True
    images = {m: np.ones(brain.shape, np.float32) for m in anatomy.MODALITIES}
    bias = np.zeros((2, *brain.shape), np.float32)
    out = generator._scanner_effects(images, brain, bias, scanner, rng)
    for modality, volume in out.items():
        assert volume.dtype == np.int16 and not np.any(volume[~brain]) and np.all(volume[brain] >= 1)
        noise = scanner.noise[modality] * scanner.white_matter[modality]  # Rician noise around white matter
        assert abs(volume[brain].mean() - scanner.white_matter[modality]) < 5 * noise + 1


def test_h5_writer_and_metadata_rows_match_the_case(tmp_path):
    case = generator.make_case(seed=1, case_index=1, grid_shape=(16, 16, 6))
    rows = write_h5_case(case, tmp_path, volume=9)
    assert [row["slice"] for row in rows] == list(range(6)) and all(row["volume"] == 9 for row in rows)
    for s in (0, 3):
        with h5py.File(tmp_path / f"volume_9_slice_{s}.h5") as handle:
            assert handle["image"].dtype == np.float64 and handle["mask"].dtype == np.uint8
            np.testing.assert_array_equal(handle["image"][..., 0], case.channel("t1")[:, :, s])
            np.testing.assert_array_equal(labels.h5_mask_to_labels(handle["mask"][()]), case.seg[:, :, s])
        for channel, value in enumerate((1, 2, 4)):  # labelN_pxl_cnt counts mask channel N: NCR, ED, ET
            assert rows[s][f"label{channel}_pxl_cnt"] == int((case.seg[:, :, s] == value).sum())
        assert rows[s]["target"] == int(case.seg[:, :, s].any())
    assert slice_rows({m: case.channel(m) for m in case.modalities}, case.seg, 9) == rows


def test_lookalikes_sit_where_they_belong_and_are_not_labelled(warped):
    rng, transform, box, tissues, (gm, wm, csf, brain) = warped
    look = anatomy.Lookalikes({"rim": 1.0, "choroid": 1.0, "caps": 1.0, "wmh": 1.0},
                              np.full((2, *anatomy.COARSE_FIELD_SHAPE), 0.5, np.float32), 0.5, 1.0, 0.3)
    density = np.full((2, *tissues.shape[1:]), 0.5, np.float32)
    weights = anatomy.lookalike_weights(tissues, density, look, wm)
    depth_mm = tissues[anatomy.DEPTH] * anatomy.DEPTH_SCALE_MM
    edge, deep = brain & (depth_mm < 4), brain & (depth_mm > 15)
    assert weights["rim"][edge].mean() > 0.3 and weights["rim"][deep].max() < 0.01  # the rim hugs the edge
    assert not np.any(weights["choroid"][tissues[anatomy.VENTRICLES] < 0.9])  # choroid plexus: in the ventricles
    assert not np.any(weights["wmh"][depth_mm <= 8]) and weights["wmh"].max() > 0.1
    images = anatomy.normal_images(anatomy.TISSUE_CONTRAST, gm, wm, csf, np.zeros_like(gm), np.zeros_like(gm))
    before = {m: image.copy() for m, image in images.items()}
    anatomy.add_lookalikes(images, weights, look, brain)
    assert images["t1ce"][edge].mean() > before["t1ce"][edge].mean() + 0.3  # bright dura on T1ce
    assert np.array_equal(images["t1ce"][~brain], before["t1ce"][~brain])
    none = anatomy.Lookalikes(dict.fromkeys(look.amount, 0.0), look.density, 0.5, 1.0, 0.3)
    anatomy.add_lookalikes(before, weights, none, brain)
    assert all(np.array_equal(before[m], anatomy.normal_images(
        anatomy.TISSUE_CONTRAST, gm, wm, csf, np.zeros_like(gm), np.zeros_like(gm))[m]) for m in before)


def test_tumours_start_anywhere_from_deep_white_matter_to_the_cortex(warped):
    _, transform, box, tissues, _ = warped
    depth_mm = tissues[anatomy.DEPTH] * anatomy.DEPTH_SCALE_MM
    depths = []
    for seed in range(40):
        centre = np.round(tumour.sample_tumour(np.random.default_rng(seed), transform).centre).astype(int)
        depths.append(depth_mm[tuple(c - s.start for c, s in zip(centre, box))])
    assert min(depths) < 12 and max(depths) > 20


def test_lobes_and_gaps_make_real_looking_cores():
    grid = (120, 120, 78)  # 2 mm voxels: shapes resolved, still fast
    transform = anatomy.random_transform(np.random.default_rng(2), grid)
    box = anatomy.template_brain_box(transform, grid)
    channels, _ = anatomy.warp_tissues(transform, box)
    brain = channels[anatomy.MASK] > 0.5
    gm, wm = (np.clip(c, 0, 1) * brain for c in channels[[anatomy.GM, anatomy.WM]])
    parts = (gm, wm, np.clip(1 - gm - wm, 0, 1) * brain, brain)
    spec = replace(tumour.sample_tumour(np.random.default_rng(4), transform), radius=10.0, rim=4.0, gaps=0.0,
                   lobes=np.array([[0.0, 0, 0, 1]]), roughness=0.1)
    lobed = replace(spec, lobes=np.array([[0.0, 0, 0, 1], [12.0, 0, 0, 0.7], [0, -12.0, 0, 0.7]]))
    gapped = replace(spec, gaps=0.3)
    seg = {name: tumour.grow_tumour(s, transform.spacing, box, parts)[1]
           for name, s in (("plain", spec), ("lobed", lobed), ("gapped", gapped))}
    core = {name: np.count_nonzero((labels == 1) | (labels == 4)) for name, labels in seg.items()}
    assert core["lobed"] > 1.2 * core["plain"]  # extra lobes add tumour
    for name in ("plain", "gapped"):
        labels = seg[name]
        touching = ndimage.binary_dilation(labels == 2) & (labels == 1)  # core voxels next to edema
        assert (touching.sum() > 20) == (name == "gapped")  # only gaps in the shell let NCR reach edema
        assert np.count_nonzero(labels == 4) > 0


def test_tumour_contrasts_always_keep_the_brats_signatures():
    rng = np.random.default_rng(0)
    for _ in range(300):
        c = tumour.random_tumour_contrast(rng)  # (NCR, NET, ET, edema) per modality, white matter = 1
        assert c["t1ce"][2] > max(c["t1ce"][0], c["t1ce"][3], 1.0) and c["t1ce"][2] > c["t1"][2]
        assert min(c["t2"][3], c["flair"][3]) > 1.3 and max(c["t1"][0], c["t1ce"][0]) < 0.85
    spread = [tumour.random_tumour_contrast(rng)["flair"][3] for _ in range(300)]
    assert np.percentile(spread, 90) / np.percentile(spread, 10) > 1.5  # wide: scanners differ


def test_satellites_are_smaller_and_nearby():
    transform = anatomy.random_transform(np.random.default_rng(3), (240, 240, 155))
    main = tumour.sample_tumour(np.random.default_rng(5), transform)
    satellite = tumour.sample_satellite(np.random.default_rng(6), main, transform.spacing)
    distance = np.linalg.norm((satellite.centre - main.centre) * transform.spacing)
    assert 1.3 * main.outer <= distance <= 4.0 * main.outer + 1e-6 and satellite.outer < 0.55 * main.outer
    assert satellite.low_grade == main.low_grade


def test_thick_slice_blur_smooths_along_its_axis_only():
    rng = np.random.default_rng(5)
    scanner = replace(generator._random_scanner(rng), noise=dict.fromkeys(anatomy.MODALITIES, 0.2),
                      blur={m: (2, 1.5 if m == "flair" else 0.0) for m in anatomy.MODALITIES})
    brain = np.zeros((24, 24, 24), bool)
    brain[2:22, 2:22, 2:22] = True
    images = {m: np.ones(brain.shape, np.float32) for m in anatomy.MODALITIES}
    out = generator._scanner_effects(images, brain, np.zeros((2, *brain.shape), np.float32), scanner, rng)
    inner = (slice(4, 20),) * 3

    def steps(volume, axis):
        return np.abs(np.diff(volume[inner].astype(np.float32), axis=axis)).mean()

    assert steps(out["flair"], 2) < 0.5 * steps(out["flair"], 0)  # smooth along z, noisy in-plane
    assert 0.8 < steps(out["t2"], 2) / steps(out["t2"], 0) < 1.25  # no blur: the same in every direction
