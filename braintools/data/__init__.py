"""Real BraTS files (notebooks 01-02): the Kaggle download, cases in NIfTI and HDF5 (``io``), labels and regions,
channel-order signatures, the patient split and the normalisation every model sees (``preprocess``).
"""
