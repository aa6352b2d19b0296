"""Evaluation: Eq. 10 scoring of any protocol model on a dataset split (targets never reach the
model) or of predictions made in any framework (``evaluate_predictions``), the rank-L ceiling of
additive models, and the runtime-scaling harness (encode O(M), evaluate O(N); the paper's Fig. 5a)."""

from ._ceiling import DEFAULT_RANKS, CeilingResult, ceiling, ceiling_table
from ._evaluate import (DISTANCE_BINS, PREDICTION_KEYS, EvaluationResult, InvalidPrediction, boundary_distance,
                        evaluate, evaluate_prediction_file, evaluate_predictions, evaluate_splits, evaluation_table,
                        read_prediction_file)
from ._scaling import (DEFAULT_SIZES, SCALING_METHODS, ScalingResult, ScalingRow, scaling, scaling_configuration,
                       scaling_predictors)
from ._scaling_study import checkpoint_predictors, scaling_study

__all__ = [
    "CeilingResult", "DEFAULT_RANKS", "DEFAULT_SIZES", "DISTANCE_BINS", "ceiling", "EvaluationResult",
    "InvalidPrediction", "SCALING_METHODS", "ScalingResult", "ScalingRow", "boundary_distance", "evaluate",
    "scaling", "scaling_configuration", "scaling_predictors", "ceiling_table", "checkpoint_predictors",
    "evaluate_splits", "evaluation_table", "scaling_study", "evaluate_predictions", "evaluate_prediction_file",
    "read_prediction_file", "PREDICTION_KEYS",
]
