"""Evaluation: Eq. 10 scoring of any protocol model on a dataset split (targets never reach the
model), the rank-L ceiling of additive models, and the runtime-scaling harness (encode O(M),
evaluate O(N); the paper's Fig. 5a)."""

from ._ceiling import DEFAULT_RANKS, CeilingResult, ceiling, ceiling_table
from ._evaluate import (DISTANCE_BINS, EvaluationResult, InvalidPrediction, boundary_distance, evaluate,
                        evaluate_splits, evaluation_table)
from ._scaling import (DEFAULT_SIZES, SCALING_METHODS, ScalingResult, ScalingRow, scaling, scaling_configuration,
                       scaling_predictors)
from ._scaling_study import checkpoint_predictors, scaling_study

__all__ = [
    "CeilingResult", "DEFAULT_RANKS", "DEFAULT_SIZES", "DISTANCE_BINS", "ceiling", "EvaluationResult",
    "InvalidPrediction", "SCALING_METHODS", "ScalingResult", "ScalingRow", "boundary_distance", "evaluate",
    "scaling", "scaling_configuration", "scaling_predictors", "ceiling_table", "checkpoint_predictors",
    "evaluate_splits", "evaluation_table", "scaling_study",
]
