"""Evaluation: Eq. 10 scoring of any protocol model on a dataset split (targets never reach the model)."""

from ._evaluate import DISTANCE_BINS, EvaluationResult, InvalidPrediction, boundary_distance, evaluate

__all__ = ["DISTANCE_BINS", "EvaluationResult", "InvalidPrediction", "boundary_distance", "evaluate"]
