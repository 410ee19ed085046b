"""Datasets for training: volumes loaded on demand (``volumes``), 2D axial slices (``slices2d``, notebook 04), 3D
patches (``patches3d``, notebook 05) and their medical-safe augmentation (``augment``).
"""
