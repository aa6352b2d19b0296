"""Training: optax Adam with the paper's step-wise schedule, joint potential + field loss, Eq. 10
validation, checkpoints with provenance, exact resume, determinism from a seed.

Data. Source configurations come from the dataset's train split. By default (``points="shared"``)
each step draws ONE set of N evaluation points, uniform in the split's domain and shared by the
whole batch, and computes exact targets for it on the fly (float64, rounded to float32): the
distribution of (sources, points) is the dataset's, and a linear-in-code model then computes its
basis once per batch (the fast path: phi = codes @ psi^T, field from two forward-mode passes).
``points="dataset"`` trains on the split's stored points and targets instead (per-sample points).

Determinism and resume. Step s draws its batch and its points from SeedSequence(seed, spawn_key=
(s,)), so the data of a step depends only on (seed, s); a checkpoint holds model, optimiser state
and step, and resuming replays exactly what an uninterrupted run would have done.

Fine-tuning. ``init_from`` starts the run from the weights of an existing checkpoint (same model,
same hyperparameters) instead of the seed's initialisation, with a fresh optimiser; the run writes
a new checkpoint, never the source, and records the source's path and sha256 as
``training.init_from``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax

from .._io import atomic_write_text, file_sha256, read_json
from ..exceptions import TrainingDivergedError
from ..metrics import median_relative_error
from ..physics import potential_and_field_batched
from ..sources import SourceBatch
from ._protocol import SourceFieldModel, source_features
from ._registry import build_model, load_checkpoint, provenance, save_checkpoint

__all__ = ["TrainConfig", "TrainResult", "train", "loss_fn", "make_step"]


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (stored in every checkpoint).

    learning_rates: the step-wise schedule, one rate per equal share of ``steps`` (the paper:
      5,000 epochs at each of 1e-3, 1e-4, 1e-5, 1e-6).
    schedule_shape: ``"steps"`` (the paper's step-wise schedule) or ``"cosine"`` (a cosine decay
      from the first rate to the last, after a warm-up of 2% of the steps).
    init_from: fine-tune: the checkpoint (.eqx) whose weights start the run, of the same model and
      hyperparameters; None starts from the seed's initialisation.
    """

    model: str = "fc-ilr"
    dataset: str = "circles2d-mini"
    preset: str = "quick"
    steps: int = 2000
    batch_size: int = 100
    points: str = "shared"
    points_per_batch: int = 1024
    learning_rates: tuple = (1e-3, 1e-4, 1e-5, 1e-6)
    field_weight: float = 1.0
    validate_every: int = 250
    validation_samples: int = 256
    seed: int = 0
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    schedule_shape: str = "steps"
    init_from: str | None = None

    def __post_init__(self):
        if self.schedule_shape not in ("steps", "cosine"):
            raise ValueError(f"schedule_shape must be 'steps' or 'cosine'; got {self.schedule_shape!r}")
        if self.points not in ("shared", "dataset"):
            raise ValueError(f"points must be 'shared' or 'dataset'; got {self.points!r}")
        for name in ("steps", "batch_size", "points_per_batch", "validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if not self.learning_rates or any(not (math.isfinite(rate) and rate > 0) for rate in self.learning_rates):
            raise ValueError(f"learning_rates must be positive numbers; got {self.learning_rates}")
        self.learning_rates = tuple(float(r) for r in self.learning_rates)
        if self.init_from is not None:
            self.init_from = str(Path(self.init_from).with_suffix(".eqx"))

    def schedule(self) -> optax.Schedule:
        if self.schedule_shape == "cosine":
            first, last = self.learning_rates[0], self.learning_rates[-1]
            return optax.warmup_cosine_decay_schedule(0.0, first, max(1, self.steps // 50), self.steps, end_value=last)
        stages = len(self.learning_rates)
        boundaries = {int(self.steps * (i + 1) / stages): self.learning_rates[i + 1] / self.learning_rates[i]
                      for i in range(stages - 1)}
        return optax.piecewise_constant_schedule(self.learning_rates[0], boundaries)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self) | {"learning_rates": list(self.learning_rates), "recipe": "adam"}
        if data["init_from"] is None:  # as before fine-tuning existed: older training states still resume
            del data["init_from"]
        return data


@dataclasses.dataclass
class TrainResult:
    model: SourceFieldModel
    checkpoint: Path | None
    history: list[dict]
    seconds: float


def loss_fn(model: SourceFieldModel, features, mask, points, phi, field, field_weight: float = 1.0):
    """Joint loss (paper section 3.2): normalised MSE of the potential plus that of the field,
    the field being -grad(phi) of the model. points: (N, d) shared, or (B, N, d)."""
    codes = model.code_from_features(features, mask)
    phi_hat, field_hat = model.evaluate(codes, points)
    potential_term = jnp.mean((phi_hat - phi) ** 2) / jnp.mean(phi ** 2)
    field_term = jnp.mean(jnp.sum((field_hat - field) ** 2, -1)) / jnp.mean(jnp.sum(field ** 2, -1))
    return potential_term + field_weight * field_term


def make_step(optimizer, field_weight: float):
    @eqx.filter_jit
    def step(model, opt_state, features, mask, points, phi, field):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, features, mask, points, phi, field, field_weight)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


class _Data:
    """Training batches as a pure function of the step."""

    def __init__(self, config: TrainConfig, split, domain, length_scale: float):
        self.config = config
        self.split = split
        self.domain = domain
        self.length_scale = length_scale

    def features(self, rows):
        s = self.split
        return (source_features(jnp.asarray(s.family[rows]), jnp.asarray(s.centers[rows], jnp.float32),
                                jnp.asarray(s.magnetisations[rows], jnp.float32),
                                jnp.asarray(s.sizes[rows], jnp.float32), self.length_scale),
                jnp.asarray(s.mask[rows]))

    def batch(self, step: int):
        rng = np.random.default_rng(np.random.SeedSequence(self.config.seed, spawn_key=(step,)))
        rows = rng.choice(len(self.split), size=min(self.config.batch_size, len(self.split)), replace=False)
        features, mask = self.features(rows)
        if self.config.points == "dataset":
            s = self.split
            return features, mask, jnp.asarray(s.points[rows]), jnp.asarray(s.phi[rows]), jnp.asarray(s.field[rows])
        lo, hi = self.domain
        points = rng.uniform(lo, hi, size=(self.config.points_per_batch, self.split.centers.shape[-1]))
        points = points.astype(np.float32).astype(np.float64)
        batch = SourceBatch(self.split.family[rows], self.split.centers[rows], self.split.magnetisations[rows],
                            self.split.sizes[rows], self.split.mask[rows])
        phi, field = potential_and_field_batched(batch, points)
        # Through NumPy: the exact solver returns arrays sharded over the CPU devices, and sharded
        # targets would make the whole training step SPMD over them (the basis computed on each).
        return (features, mask, jnp.asarray(points, jnp.float32), jnp.asarray(np.asarray(phi), jnp.float32),
                jnp.asarray(np.asarray(field), jnp.float32))


# Module level, so that validations of the same model reuse one compilation.
_evaluate_features = eqx.filter_jit(lambda m, f, k, p: m.evaluate(m.code_from_features(f, k), p))


def validate(model: SourceFieldModel, split, length_scale: float, limit: int) -> dict:
    """Eq. 10 errors (%) on the first ``limit`` samples of a split, with the split's own points."""
    rows = np.arange(min(limit, len(split)))
    features = source_features(jnp.asarray(split.family[rows]), jnp.asarray(split.centers[rows], jnp.float32),
                               jnp.asarray(split.magnetisations[rows], jnp.float32),
                               jnp.asarray(split.sizes[rows], jnp.float32), length_scale)
    evaluate = _evaluate_features
    phi, field = [], []
    for start in range(0, len(rows), 64):
        part = slice(start, start + 64)
        p, h = evaluate(model, features[part], jnp.asarray(split.mask[rows][part]),
                        jnp.asarray(split.points[rows][part]))
        phi.append(np.asarray(p))
        field.append(np.asarray(h))
    phi_error, _ = median_relative_error(np.concatenate(phi), split.phi[rows], vector=False)
    field_error, _ = median_relative_error(np.concatenate(field), split.field[rows], vector=True)
    return {"phi_error": phi_error, "field_error": field_error}


def _state_paths(checkpoint: Path) -> tuple[Path, Path]:
    return checkpoint.with_suffix(".opt.eqx"), checkpoint.with_suffix(".state.json")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)  # hard links and other spellings of one file too
    return a.resolve() == b.resolve()


def _fine_tune_start(config: TrainConfig, hyperparameters: dict) -> tuple[SourceFieldModel, dict]:
    """The model stored in ``config.init_from`` and the record of it (path, sha256), after checking
    that it is ``config.model`` with exactly the hyperparameters this run builds."""
    source = Path(config.init_from)
    model, meta = load_checkpoint(source, config.model)  # checks its sha256 and the model it belongs to
    built = json.loads(json.dumps(hyperparameters, default=str))  # as the checkpoint's JSON holds them
    stored = meta.get("hyperparameters", {})
    differ = sorted(key for key in set(built) | set(stored) if built.get(key) != stored.get(key))
    if differ:
        preset = (meta.get("training") or {}).get("preset")
        advice = [f"the preset it was trained with (--preset {preset})" if preset and preset != config.preset else
                  "its hyperparameters"]
        if {"dim", "length_scale"} & set(differ):
            advice.append("a dataset of the same dimension and domain")
        raise ValueError(f"init_from {source} holds {config.model} with other hyperparameters than this run builds ("
                         + ", ".join(f"{key} {stored.get(key)!r} there, {built.get(key)!r} here" for key in differ)
                         + f"); fine-tune with {' and '.join(advice)}, or train from scratch without init_from "
                         "(--init-from)")
    return model, {"path": str(source), "sha256": meta["checkpoint_sha256"]}


def train(config: TrainConfig, checkpoint: str | Path | None = None, *, restart: bool = False,
          progress: Callable[[int, int, dict], None] | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.dataset``; checkpoint (and resume from) ``checkpoint``.

    An existing checkpoint is resumed when its training state (``.state.json``, ``.opt.eqx``) is
    there and was written with the same configuration. A checkpoint WITHOUT that state (a finished
    or shipped model) is never overwritten silently: pass ``restart=True`` to train from scratch
    and replace it, fine-tune from it into another path (``config.init_from``), or choose another
    path. With ``config.init_from`` the run starts from that checkpoint's weights (module
    docstring); ``checkpoint`` must then be another file.
    """
    from ..datasets import load, open_dataset

    checkpoint = Path(checkpoint).with_suffix(".eqx") if checkpoint else None
    if config.init_from and checkpoint and _same_file(checkpoint, Path(config.init_from)):
        raise ValueError(f"checkpoint {checkpoint} is the init_from (--init-from) checkpoint itself: a fine-tune "
                         "writes a new checkpoint and keeps its source; choose another checkpoint path (--checkpoint)")
    handle = open_dataset(config.dataset)
    spec = handle.spec
    if "train" not in spec.splits or "val" not in spec.splits:
        raise ValueError(f"{config.dataset} needs 'train' and 'val' splits to train on; it has {list(spec.splits)}")
    train_split, val_split = load(config.dataset, "train"), load(config.dataset, "val")
    domain = spec.splits["train"].configuration.domain
    length_scale = float(max(abs(domain[0]), abs(domain[1])))
    model, hyperparameters = build_model(config.model, dim=spec.splits["train"].dim, length_scale=length_scale,
                                         preset=config.preset, seed=config.seed, **config.hyperparameters)
    # What the checkpoint records as its training: the configuration, and the source of a fine-tune
    # by content (its path alone could later hold other weights).
    training = config.to_dict()
    if config.init_from:
        model, training["init_from"] = _fine_tune_start(config, hyperparameters)
    optimizer = optax.adam(config.schedule())
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    start_step, history, previous_seconds = 0, [], 0.0
    if checkpoint and not restart and checkpoint.is_file():
        opt_path, state_path = _state_paths(checkpoint)
        if not state_path.is_file():
            raise FileExistsError(f"{checkpoint} exists and holds no training state to resume from (no "
                                  f"{state_path.name}); pass restart=True (--restart) to train from scratch and "
                                  "replace it, fine-tune from it into another path (--init-from "
                                  f"{checkpoint} --checkpoint NEW.eqx), or choose another checkpoint path")
        state = read_json(state_path, "delete it and pass restart=True (--restart) to train from scratch")
        if state["config"] != training:
            differ = sorted(key for key in set(state["config"]) | set(training)
                            if state["config"].get(key) != training.get(key))
            raise ValueError(f"{checkpoint} was trained with a different configuration ({', '.join(differ)} "
                             "differ); pass the same options to resume, another checkpoint path, or restart=True "
                             "(--restart) to start over")
        model, meta = load_checkpoint(checkpoint, config.model)
        # A crash between the three writes would leave files of different steps: refuse to mix them.
        torn = [name for name, ok in (
            ("the model",
             meta.get("step") == state["step"] and meta.get("checkpoint_sha256") == state.get("model_sha256")),
            ("the optimiser state", opt_path.is_file() and file_sha256(opt_path) == state.get("opt_sha256")))
            if not ok]
        if torn:
            raise ValueError(f"{checkpoint}: {' and '.join(torn)} do(es) not match the training state of step "
                             f"{state['step']} (an interrupted save); pass restart=True (--restart) to start over")
        opt_state = eqx.tree_deserialise_leaves(opt_path, opt_state)
        start_step, history = state["step"], state["history"]
        previous_seconds = state.get("seconds", 0.0)

    data = _Data(config, train_split, domain, length_scale)
    step_fn = make_step(optimizer, config.field_weight)
    info = provenance(config.model, model, hyperparameters, handle, training)
    started = time.perf_counter()
    loss = float("nan")
    for step in range(start_step, config.steps):
        model, opt_state, loss_value = step_fn(model, opt_state, *data.batch(step))
        done = step + 1
        if done % config.validate_every == 0 or done == config.steps:
            loss = float(loss_value)
            if not np.isfinite(loss):
                raise TrainingDivergedError(f"training diverged at step {done} (loss {loss}); lower the learning rate")
            record = {"step": done, "loss": loss} | validate(model, val_split, length_scale, config.validation_samples)
            history.append(record)
            if checkpoint:
                seconds = round(previous_seconds + time.perf_counter() - started, 1)  # across resumes
                save_checkpoint(checkpoint, model, info | {"step": done, "validation": record, "seconds": seconds})
                opt_path, state_path = _state_paths(checkpoint)
                eqx.tree_serialise_leaves(opt_path.with_name(f".{opt_path.name}.tmp"), opt_state)
                opt_path.with_name(f".{opt_path.name}.tmp").replace(opt_path)
                # Written last, naming the step and the digests of the two files it belongs with.
                atomic_write_text(state_path, json.dumps({
                    "config": training, "step": done, "history": history, "seconds": seconds,
                    "model_sha256": file_sha256(checkpoint), "opt_sha256": file_sha256(opt_path)}))
            if progress:
                progress(done, config.steps, record)
        elif progress and done % 10 == 0:
            progress(done, config.steps, {})
    return TrainResult(model, checkpoint, history, time.perf_counter() - started)
