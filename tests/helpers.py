"""Small BraTS-like files for tests: NIfTI cases and HDF5 slice volumes on an 8 x 8 x 4 grid."""

from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np

from braintools.data import io, labels
from braintools.synthetic.layout import H5_DATASET_DIR, NIFTI_DATASET_DIR

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


def toy_case(shape=(40, 40, 20), seed=0):
    """A hand-made volume with CSF, brain, edema, necrosis and enhancing tumour in BraTS contrasts."""
    rng = np.random.default_rng(seed)
    seg = np.zeros(shape, dtype=np.uint8)
    seg[10:30, 10:30, 5:15] = 2
    seg[15:25, 15:25, 7:13] = 4
    seg[18:22, 18:22, 9:11] = 1
    csf = np.zeros(shape, dtype=bool)
    csf[2:6, 2:38, 2:18] = True
    # relative intensities (normal brain = 1) for t1, t1ce, t2, flair
    table = {"brain": (1, 1, 1, 1), "csf": (0.3, 0.3, 2.0, 0.3), 2: (0.9, 0.9, 1.5, 1.6),
             4: (0.9, 1.8, 1.2, 1.3), 1: (0.5, 0.5, 1.8, 1.0)}
    image = np.empty((4,) + shape, dtype=np.float32)
    for channel in range(4):
        volume = np.full(shape, table["brain"][channel], dtype=np.float32)
        volume[csf] = table["csf"][channel]
        for label in (1, 2, 4):
            volume[seg == label] = table[label][channel]
        image[channel] = volume * 100 * (1 + 0.02 * rng.standard_normal(shape))
    return image, seg


def kaggle_mount(dataset, folder):
    """A folder laid out like Kaggle's ``/kaggle/input`` whose two datasets are those of a synthetic ``DataPaths``.

    The synthetic generator writes exactly the two Kaggle layouts, so linking them under the Kaggle dataset names
    gives a real-data profile something to read (``BRAINTOOLS_KAGGLE_INPUT=folder``) without real data."""
    from braintools.data import download

    root = dataset.nifti_train
    while root.name != NIFTI_DATASET_DIR:
        root = root.parent
    folder.mkdir(parents=True, exist_ok=True)
    for handle, name in ((download.NIFTI_HANDLE, NIFTI_DATASET_DIR),
                         (download.H5_HANDLE, H5_DATASET_DIR)):
        (folder / handle.split("/")[1]).symlink_to(root.parent / name, target_is_directory=True)
    return folder
