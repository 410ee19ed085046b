"""The offline dataset (notebook 01): synthetic BraTS cases in exactly the Kaggle layouts, and how they compare with
real scans.

- ``anatomy``: MNI152 tissue maps (shipped with nilearn) warped per case, normal tissue contrasts, healthy lookalikes;
- ``tumour``: tumour shapes (necrotic core, enhancing rim, edema, satellites) and their appearance;
- ``generator``: one case, with a scanner's bias field, noise and slice thickness (``make_case``);
- ``layout``: the Kaggle BraTS 2020 NIfTI and HDF5 layouts, CSVs included;
- ``dataset``: a profile's whole dataset, generated once by a process pool, resumable;
- ``statistics``: the same measurements on real and synthetic cases, and the stored real reference.
"""
