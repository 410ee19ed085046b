"""Small BraTS-like files for tests: NIfTI cases and HDF5 slice volumes on an 8 x 8 x 4 grid."""

from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np

from braintools import io, labels

SHAPE = (8, 8, 4)
AFFINE = io.brats_affine(SHAPE)


def write_nifti(path, array, affine=AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def make_arrays(seed=0):
    rng = np.random.default_rng(seed)
    images = {m: rng.integers(1, 500, SHAPE).astype(np.int16) for m in io.MODALITIES}
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[2:5, 2:5, 1:3] = 2
    seg[3, 3, 1:3] = 1
    seg[4, 4, 2] = 4
    return images, seg


def write_case(folder, case_id, ext=".nii", modalities=io.MODALITIES, seg_name="{case}_seg", seed=0):
    images, seg = make_arrays(seed)
    for modality in modalities:
        write_nifti(folder / f"{case_id}_{modality}{ext}", images[modality])
    if seg_name:
        write_nifti(folder / (seg_name.format(case=case_id) + ext), seg)
    return images, seg


def write_h5_volume(folder, volume, images, seg, channel_order=io.H5_CHANNEL_ORDER):
    folder.mkdir(parents=True, exist_ok=True)
    stacked = np.stack([images[m] for m in channel_order], axis=-1).astype(np.float64)
    mask = labels.labels_to_h5_mask(seg)
    for s in range(seg.shape[2]):
        with h5py.File(folder / f"volume_{volume}_slice_{s}.h5", "w") as handle:
            handle["image"] = stacked[:, :, s]
            handle["mask"] = mask[:, :, s]
