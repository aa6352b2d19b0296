"""Models: the protocol, the paper's baselines, the exact and FMM references, and training.

A model encodes each source, sums the codes and evaluates the potential at any points; the field
is -grad(phi). Training: ``_recipes`` names each baseline's default recipe, ``_fit`` the two-stage
recipe of models linear in their code, ``_train`` end-to-end Adam. See ``_protocol`` for the
interface and ``examples/my_model.py`` for a user model. The shipped baseline checkpoints are package
data (``_shipped``: ``fieldbench/models/checkpoints/``); ``fetch_checkpoint`` downloads registered
checkpoints too large for the repository from the dataset mirrors, ``download_checkpoint`` one that a
leaderboard record names by URL and sha256 (``_checkpoints``).
"""

from ._baselines import FCILR, FCINR, PRESETS, FourierHypernetwork, LinearModel, MagnetisationLinearHypernet
from ._checkpoints import (CheckpointUnavailableError, UnknownCheckpointError, checkpoint_registry, download_checkpoint,
                           fetch_checkpoint)
from ._fit import FitConfig, FitResult, fit
from ._plan import TrainingPlan, plan_training
from ._protocol import LinearBasisModel, Predictor, SourceFieldModel, feature_count, source_features
from ._reference import ExactPredictor, FMMPredictor
from ._registry import (build_model, build_reference, load_checkpoint, load_predictor, model_class, model_names,
                        save_checkpoint)
from ._shipped import shipped_checkpoint, shipped_checkpoint_dir
from ._recipes import DATASET_OVERRIDES, RECIPES, recipe_config, recipe_name, run_recipe
from ._train import TrainConfig, TrainResult, train

__all__ = [
    "CheckpointUnavailableError", "UnknownCheckpointError", "checkpoint_registry", "download_checkpoint",
    "fetch_checkpoint",
    "ExactPredictor", "FCILR", "FCINR", "FMMPredictor", "FitConfig", "FitResult", "MagnetisationLinearHypernet",
    "DATASET_OVERRIDES", "RECIPES", "TrainingPlan", "fit", "plan_training", "recipe_config", "recipe_name",
    "run_recipe",
    "FourierHypernetwork", "LinearBasisModel", "LinearModel", "PRESETS", "Predictor", "SourceFieldModel",
    "TrainConfig", "TrainResult", "build_model", "build_reference", "feature_count", "load_checkpoint",
    "load_predictor", "model_class", "model_names", "save_checkpoint", "shipped_checkpoint", "shipped_checkpoint_dir",
    "source_features", "train",
]
