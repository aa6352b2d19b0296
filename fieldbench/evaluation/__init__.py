"""Evaluation: Eq. 10 scoring of any protocol model on a dataset split (targets never reach the
model), and the runtime-scaling harness (encode O(M), evaluate O(N); the paper's Fig. 5a)."""

from ._evaluate import DISTANCE_BINS, EvaluationResult, InvalidPrediction, boundary_distance, evaluate
from ._scaling import (DEFAULT_SIZES, SCALING_METHODS, ScalingResult, ScalingRow, scaling, scaling_configuration,
                       scaling_predictors)

__all__ = [
    "DEFAULT_SIZES", "DISTANCE_BINS", "EvaluationResult", "InvalidPrediction", "SCALING_METHODS", "ScalingResult",
    "ScalingRow", "boundary_distance", "evaluate", "scaling", "scaling_configuration", "scaling_predictors",
]
