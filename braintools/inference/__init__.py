"""Inference: sliding windows and flip TTA, segmenting and evaluating cases, post-processing (notebook 07)."""

from braintools.inference.postprocess import (
    fill_holes,
    keep_largest_component,
    postprocess_classes,
    region_mask,
    relabel_tiny_enhancing,
    remove_small_components,
)
from braintools.inference.segment import (
    Evaluation,
    InferenceSettings,
    evaluate_cases,
    inference_window,
    round_up,
    segment_case,
    volume_predictor,
)
from braintools.inference.sliding_window import (
    flip_combinations,
    importance_map,
    predict_with_flips,
    sliding_window_inference,
    window_slices,
    window_starts,
)

__all__ = [
    "evaluate_cases",
    "Evaluation",
    "fill_holes",
    "flip_combinations",
    "importance_map",
    "inference_window",
    "InferenceSettings",
    "keep_largest_component",
    "postprocess_classes",
    "predict_with_flips",
    "region_mask",
    "relabel_tiny_enhancing",
    "remove_small_components",
    "round_up",
    "segment_case",
    "sliding_window_inference",
    "volume_predictor",
    "window_slices",
    "window_starts",
]
