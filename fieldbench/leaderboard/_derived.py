"""What a record derives from its model, computed one way for submit, verify and migrate: the
model's properties (flags, parameter count, code, hyperparameters), its metrics, its warm speed,
and the spread of a metric over seeds."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ..models import Predictor, load_checkpoint, load_predictor
from ..models._registry import LEARNED, REFERENCE, code_location
from ..models._speed import evaluation_speed

#: The warm speed measurement: samples of the test split per call and timed calls.
SPEED_SPLIT, SPEED_SAMPLES, SPEED_REPEATS = "test_multi", 64, 5


def load_model(spec: str, checkpoint: str | Path | None) -> tuple[Predictor, dict | None]:
    """The predictor and, for a learned model, its checkpoint's metadata."""
    if spec in REFERENCE:
        return load_predictor(spec), None
    if checkpoint is None:
        raise ValueError(f"{spec} is a learned model: pass its checkpoint (--checkpoint FILE)")
    return load_checkpoint(checkpoint, spec)


def _parameter_count(model) -> int:
    import equinox as eqx

    if not isinstance(model, eqx.Module):
        return 0
    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))


def model_properties(spec: str, predictor: Predictor, meta: dict | None) -> dict:
    """What a record says about its model that the model itself determines: the flags and the
    parameter count from the loaded model, the code's module and class, and for a learned model the
    hyperparameters and training dataset its checkpoint's metadata holds."""
    if meta is None:
        code = {"module": type(predictor).__module__, "class": type(predictor).__qualname__}
    elif spec in LEARNED:
        code = {k: v for k, v in code_location(spec).items() if k != "sha256"}
    else:  # a user's file: its path differs between machines, its class does not
        code = {"class": code_location(spec)["class"]}
    found = {"additive": bool(predictor.additive), "harmonic": bool(predictor.harmonic),
             "parameters": _parameter_count(predictor), "code": code}
    if meta is not None:
        found |= {"hyperparameters": meta.get("hyperparameters", {}), "trained_on": meta.get("dataset")}
    return found


def metrics_of(result) -> dict:
    """An evaluation result's metrics as a record stores them (without the model, dataset and split)."""
    return {k: v for k, v in result.as_dict().items() if k not in ("model", "dataset", "split")}


def warm_speed(predictor: Predictor, dataset: str, limit: int | None, repeats: int = SPEED_REPEATS) -> dict:
    """The record's ``speed``: the warm evaluation time per point on ``SPEED_SAMPLES`` samples of
    ``SPEED_SPLIT`` (of the first ``limit``), with the device it ran on."""
    samples = SPEED_SAMPLES if limit is None else min(SPEED_SAMPLES, limit)
    return evaluation_speed(predictor, dataset, SPEED_SPLIT, samples=samples, repeats=repeats)


def seed_std(values: list[float]) -> float:
    """The standard deviation over seeds (n - 1); 0 for one seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


#: The metrics whose mean, std and values over seeds a record holds.
SEED_METRICS = ("phi_error", "field_error", "phi_relative_l2", "field_relative_l2")


def seed_metrics(per_seed: list[dict]) -> dict:
    """{split: {metric: {mean, std (n - 1), values}}} of per-seed {split: metrics} (the first seed first)."""
    out = {}
    for split in per_seed[0]:
        out[split] = {}
        for metric in SEED_METRICS:
            values = [float(seed[split][metric]) for seed in per_seed]
            out[split][metric] = {"mean": float(np.mean(values)), "std": seed_std(values), "values": values}
    return out
