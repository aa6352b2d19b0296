"""A training run as ``fieldbench train`` describes it: the options (and a JSON file of recipe
fields) checked against the chosen recipe, the full recipe config, and the checkpoint path.

Messages name the command's options (``--steps``, ``--init-from``): this is where they are
interpreted, once, and the Python API (``recipe_config``, ``run_recipe``) stays free of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from .._io import read_json
from ._fit import FitConfig
from ._recipes import recipe_config, recipe_name, run_recipe
from ._train import TrainConfig

__all__ = ["TrainingPlan", "plan_training", "default_checkpoint", "CHECKPOINTS_DIR"]

#: Where ``fieldbench train`` writes a checkpoint when none is named.
CHECKPOINTS_DIR = Path("fieldbench-out/checkpoints")


def default_checkpoint(model: str, dataset: str, seed: int = 0) -> Path:
    """``fieldbench-out/checkpoints/<model>-<dataset>[-seed<N>].eqx`` (no suffix for seed 0)."""
    suffix = f"-seed{seed}" if seed else ""
    return CHECKPOINTS_DIR / f"{Path(model).stem}-{Path(dataset).name}{suffix}.eqx"


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What a training run will do: ``settings`` (the recipe's full config) into ``checkpoint``."""

    model: str
    dataset: str
    recipe: str
    settings: FitConfig | TrainConfig
    checkpoint: Path
    init_from: str | None = None

    def describe(self) -> str:
        start = f" from {self.init_from}" if self.init_from else ""
        return f"training {self.model} on {self.dataset} with the {self.recipe} recipe{start} -> {self.checkpoint}"

    def run(self, *, restart: bool = False, progress: Callable[[dict], None] | None = None):
        """Train (``run_recipe``); resumes an interrupted run, ``restart`` replaces it."""
        return run_recipe(self.settings, self.checkpoint, restart=restart, progress=progress)


def plan_training(model: str, dataset: str, *, recipe: str | None = None, config: str | Path | None = None,
                  checkpoint: str | Path | None = None, init_from: str | Path | None = None,
                  preset: str | None = None, epochs: int | None = None, basis_steps: int | None = None,
                  steps: int | None = None, batch_size: int | None = None,
                  learning_rates: Sequence[float] = (), seed: int = 0) -> TrainingPlan:
    """The plan of ``fieldbench train``: ``config`` (a JSON object of recipe fields), then the
    options given (None: not given) override it. The recipe: ``recipe``, else the file's, else the
    model's own. Options of the other recipe, and ``init_from`` with two-stage, are refused."""
    fields = read_json(config, "fix it: a JSON object of recipe fields, e.g. {\"steps\": 500}") if config else {}
    if not isinstance(fields, dict):
        raise ValueError(f"--config {config} holds a JSON {type(fields).__name__}, not an object of recipe fields; "
                         "write it as {\"field\": value, ...}")
    chosen = recipe or fields.pop("recipe", None) or recipe_name(model)
    fields.pop("recipe", None)
    if init_from is not None:
        fields["init_from"] = str(init_from)
    if chosen == "two-stage" and fields.get("init_from"):
        raise ValueError(f"--init-from fine-tunes with end-to-end Adam, and the two-stage recipe of {model} always "
                         "starts from a fresh basis; pass --recipe adam (with --steps and --learning-rate) to "
                         "fine-tune")
    options = {"preset": preset, "batch_size": batch_size}
    if chosen == "two-stage":
        options |= {"epochs": epochs, "basis_steps": basis_steps,
                    "learning_rate": learning_rates[0] if learning_rates else None}
        ignored = [name for name, value in (("--steps", steps),) if value is not None]
    else:
        options |= {"steps": steps, "learning_rates": tuple(learning_rates) if learning_rates else None}
        ignored = [name for name, value in (("--epochs", epochs), ("--basis-steps", basis_steps)) if value is not None]
    if ignored:
        raise ValueError(f"{', '.join(ignored)} do not apply to the {chosen} recipe; drop them or pass --recipe")
    settings = recipe_config(model, dataset, recipe=chosen, seed=seed,
                             **(fields | {k: v for k, v in options.items() if v is not None}))
    target = Path(checkpoint) if checkpoint is not None else default_checkpoint(model, dataset, seed)
    return TrainingPlan(model, dataset, chosen, settings, target, fields.get("init_from"))
