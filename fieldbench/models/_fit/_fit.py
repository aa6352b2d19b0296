"""The two stages run in order (:func:`fit`): data, basis (or its saved copy), whitening,
hypernetwork, fold, checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._protocol import LinearBasisModel
from .._registry import build_model, provenance, save_checkpoint
from ._basis import _basis_paths, _fit_basis, _load_basis, _save_basis, least_squares_floor
from ._config import FitConfig, FitResult
from ._head import _fold, _resize_head
from ._hypernet import _hypernet_stage
from ._targets import _features, _Targets
from ._validation import _validator
from ._whitening import _relative_targets, _whitened_targets, _whitening


def _single_source(split) -> None:
    if split.mask.shape[1] != 1 or not split.mask.all():
        raise ValueError("the two-stage recipe trains on single-source samples (a train split with sources=1); "
                         "use `fieldbench train --recipe adam` for other training sets")


def fit(config: FitConfig, checkpoint: str | Path | None = None, *, restart: bool = False,
        progress: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``config.model`` with the two-stage recipe and save it to ``checkpoint``.

    An existing checkpoint is never replaced unless ``restart=True``. A run interrupted after its
    basis stage resumes from it (``<checkpoint>.basis.eqx``, removed once the fit is saved).
    ``progress`` receives one dict per reported stage or epoch.
    """
    from ...datasets import load, open_dataset

    started = time.perf_counter()
    report = progress or (lambda record: None)
    checkpoint = Path(checkpoint).with_suffix(".eqx") if checkpoint else None
    if checkpoint and checkpoint.exists() and not restart:
        raise FileExistsError(f"{checkpoint} exists; pass restart=True (--restart) to train again and replace it, "
                              "or choose another checkpoint path")
    handle = open_dataset(config.dataset)
    spec = handle.spec
    train_split, val_split = load(config.dataset, "train"), load(config.dataset, "val")
    _single_source(train_split)
    domain = spec.splits["train"].configuration.domain
    length_scale = float(max(abs(domain[0]), abs(domain[1])))
    model, hyperparameters = build_model(config.model, dim=spec.splits["train"].dim, length_scale=length_scale,
                                         preset=config.preset, seed=config.seed, **config.hyperparameters)
    if not isinstance(model, LinearBasisModel):
        raise ValueError(f"the two-stage recipe needs a model linear in its code; {config.model} is not "
                         "(train it with `--recipe adam`)")
    data = _Targets(train_split, domain, config.field_weight)
    probe_points = data.uniform(np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(4,))), 2048)

    def floor(candidate):
        return least_squares_floor(candidate, data, val_split, probe_points, config.ridge)

    resumed = None if restart else _load_basis(model, checkpoint, config)
    if resumed:
        model, history = resumed
        report({"stage": "basis", "resumed": str(_basis_paths(checkpoint)[0])})
    else:
        model, history = _fit_basis(model, config, data, report, floor)
        _save_basis(model, history, checkpoint, config)

    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3,)))
    points = data.uniform(rng, config.fit_points)
    matrix, whiten = _whitening(model, data, points, config)
    projector = matrix @ whiten  # y -> z* = whiten^T D^T y
    rows = np.arange(len(train_split))
    targets, weights, values = _whitened_targets(data, rows, points, projector)
    if config.target_floor:
        targets = _relative_targets(values, projector, data.dim, config.target_floor, config.target_points)
    features = _features(model, train_split, rows).reshape(len(rows), -1)
    model = _resize_head(model, whiten.shape[0], whiten.shape[1], jax.random.PRNGKey(config.seed + 7))
    ref = {"model": model, "whiten": whiten}
    validate = _validator(ref, data, val_split, points, config)
    history.append({"stage": "whitening", "rank": int(whiten.shape[1]), "code_size": int(whiten.shape[0])}
                   | floor(model))
    report(history[-1])
    near = jnp.asarray(data.near_weights(rows, points, config.near_weight, config.near_scale)) \
        if config.near_weight and (config.relative_epochs or config.joint_epochs) else None
    joint = (data, jnp.asarray(points, jnp.float32), jnp.asarray(whiten, jnp.float32))
    model, stage = _hypernet_stage(model, config, features, jnp.asarray(targets, jnp.float32),
                                   jnp.asarray(weights, jnp.float32), jnp.asarray(values),
                                   jnp.asarray(projector, jnp.float32), near, joint, validate, report)
    history += stage
    model = _fold(model, jnp.asarray(whiten))
    seconds = time.perf_counter() - started
    info = provenance(config.model, model, hyperparameters, handle, config.to_dict()) | {
        "seconds": round(seconds, 1), "history": history, "validation": history[-1]}
    path = save_checkpoint(checkpoint, model, info) if checkpoint else None
    if checkpoint:
        for leftover in _basis_paths(checkpoint):
            leftover.unlink(missing_ok=True)
    return FitResult(model, path, history, seconds)
