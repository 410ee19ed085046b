"""Inference (notebook 07): sliding windows with Gaussian blending and flip TTA (``sliding_window``), one way to
segment a case (``segment``), and post-processing (``postprocess``).
"""
