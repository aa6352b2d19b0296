"""What a two-stage fit is asked (:class:`FitConfig`) and what it returns (:class:`FitResult`)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .._protocol import LinearBasisModel


@dataclasses.dataclass
class FitConfig:
    """Everything a two-stage fit depends on (stored in the checkpoint's ``training``).

    basis_steps: variable-projection steps on the basis (0 skips the stage).
    basis_sources, basis_points: training sources and points drawn per basis step.
    fit_points: the fixed point set P of the whitened stage (uniform in the training domain).
    epochs: passes of the hypernetwork over the training split, minibatches of ``batch_size``.
    ridge: relative ridge of the least-squares solves (times the mean eigenvalue).
    head_ridge: the same for the closed-form code head; larger, so that the head stays well
      conditioned and the relative fine-tune after it can move the layers below it.
    relative_floor: the basis stage's relative loss: weights 1 / (|y|^2 + floor^2 mean |y|^2).
    relative_epochs: epochs of the relative fine-tune (the same kind of loss at random subsets of
      ``relative_points`` of P, with ``fine_tune_floor``: a larger floor is closer to plain least
      squares, which is what sums of sources need).
    rank_tolerance: whitened directions with eigenvalue below this times the largest are dropped
      (they are invisible on P; keeping them would only amplify float32 rounding).
    near_weight, near_scale: the relative losses (basis stage and fine-tune) weight a point by
      1 + near_weight * exp(-max(s, 0) / near_scale), s its size-normalised signed distance to the
      source's boundary (``sources.boundary_distance``): points inside and near a source count
      more. Uniform points put 9 % of a disc's points inside it, but a scene of several sources
      puts a third of its points inside one and another third within a quarter size of a boundary,
      where an additive model is least accurate; without this weight the multi-source median is
      set by the points the single-source loss cared least about. 0 turns it off.
    joint_epochs: epochs of a last joint fine-tune of the basis and the hypernetwork on the same
      relative loss, the code still V L^-1/2 z with V, L those of the basis the stage started from
      (a joint stage without that parametrisation undoes the whitened fit), so that the basis
      adapts to the codes the hypernetwork can produce.
    target_floor, target_points: 0 regresses the whitened stage on each source's plain least-squares
      code z*; > 0 on the code that minimises the source's RELATIVE error (the relative fine-tune's
      weights with this floor) on the first ``target_points`` of P, one small solve per source:
      a better start for that fine-tune than z*, which spends the code on large values.
    robust_scale: 0 fine-tunes (relative and joint) on the mean squared relative error; tau > 0 on
      a Cauchy loss, the mean of log(1 + e^2 / tau^2) over sources, points and quantities
      (``_Targets.relative_loss``), closer to the median that Eq. 10 scores: points whose error is
      far above tau (the band where the field jumps at a boundary) stop dominating the gradient.
    """

    model: str = "fc-ilr"
    dataset: str = "circles2d-mini"
    preset: str = "cpu"
    seed: int = 0
    basis_steps: int = 600
    basis_sources: int = 64
    basis_points: int = 768
    basis_learning_rate: float = 2e-3
    fit_points: int = 4096
    epochs: int = 150
    batch_size: int = 200
    learning_rate: float = 2e-3
    field_weight: float = 1.0
    relative_floor: float = 0.1
    relative_epochs: int = 40
    relative_points: int = 512
    fine_tune_floor: float = 0.1
    ridge: float = 1e-7
    head_ridge: float = 1e-3
    rank_tolerance: float = 1e-8
    validation_samples: int = 256
    near_weight: float = 0.0
    near_scale: float = 0.3
    joint_epochs: int = 0
    target_floor: float = 0.0
    target_points: int = 2048
    robust_scale: float = 0.0
    hyperparameters: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("basis_sources", "basis_points", "fit_points", "epochs", "batch_size", "validation_samples",
                     "target_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        for name in ("basis_steps", "relative_epochs", "joint_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        for name in ("basis_learning_rate", "learning_rate", "ridge", "head_ridge", "rank_tolerance", "relative_floor",
                     "fine_tune_floor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value}")
        for name in ("field_weight", "near_weight", "target_floor", "robust_scale"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if not (math.isfinite(self.near_scale) and self.near_scale > 0):
            raise ValueError(f"near_scale must be a positive number; got {self.near_scale}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"recipe": "two-stage"}


@dataclasses.dataclass
class FitResult:
    model: LinearBasisModel
    checkpoint: Path | None
    history: list[dict]
    seconds: float
