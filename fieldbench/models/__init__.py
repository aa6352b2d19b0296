"""Models: the protocol, the paper's baselines, the exact and FMM references, and training.

A model encodes each source, sums the codes and evaluates the potential at any points; the field
is -grad(phi). See ``_protocol`` for the interface and ``examples/my_model.py`` for a user model.
"""

from ._baselines import FCILR, FCINR, PRESETS, FourierHypernetwork, LinearModel
from ._protocol import LinearBasisModel, Predictor, SourceFieldModel, feature_count, source_features
from ._reference import ExactPredictor, FMMPredictor
from ._registry import (build_model, build_reference, load_checkpoint, load_predictor, model_class, model_names,
                        save_checkpoint)
from ._train import TrainConfig, TrainResult, train

__all__ = [
    "ExactPredictor", "FCILR", "FCINR", "FMMPredictor", "FourierHypernetwork", "LinearBasisModel", "LinearModel",
    "PRESETS", "Predictor", "SourceFieldModel", "TrainConfig", "TrainResult", "build_model", "build_reference",
    "feature_count", "load_checkpoint", "load_predictor", "model_class", "model_names", "save_checkpoint",
    "source_features", "train",
]
