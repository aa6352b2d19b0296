"""Runtime scaling (the paper's Fig. 5a): wall time of encode and evaluate against M and N.

One job per module: ``_harness`` (the sweep: :func:`scaling`, :func:`scaling_predictors`),
``_layouts`` (the timing configurations), ``_runners`` (running and timing one call),
``_results`` (rows, slopes, tables), ``_plot`` (the figure, also drawn for the leaderboard) and
``_checks`` (argument checks).
"""

from ._harness import DEFAULT_SIZES, SCALING_METHODS, scaling, scaling_predictors
from ._layouts import scaling_configuration
from ._results import ScalingResult, ScalingRow

__all__ = ["DEFAULT_SIZES", "SCALING_METHODS", "ScalingResult", "ScalingRow", "scaling", "scaling_configuration",
           "scaling_predictors"]
