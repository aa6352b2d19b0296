"""A runtime-scaling study as ``fieldbench scaling`` runs it: the methods by name and by checkpoint,
the measurement (``_scaling``), and its table, slopes, JSON and plot written into one folder."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from .._io import atomic_write_text, read_json
from ..models import Predictor, load_predictor
from ._scaling import ScalingResult, scaling, scaling_predictors

__all__ = ["checkpoint_predictors", "scaling_study", "STUDY_FILES"]

#: What ``scaling_study`` writes into its folder.
STUDY_FILES = ("scaling.json", "scaling.md", "scaling.png")


def checkpoint_predictors(entries: Sequence[str]) -> dict[str, Predictor]:
    """Predictors from ``NAME=FILE`` entries (``--checkpoint``): FILE.eqx is a trained or user
    model's checkpoint, and its FILE.json names the model."""
    predictors = {}
    for entry in entries:
        label, _, path = entry.partition("=")
        if not label or not path:
            raise ValueError(f"--checkpoint {entry!r} is not NAME=FILE; write it as e.g. my-model=run.eqx")
        meta_path = Path(path).with_suffix(".json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"--checkpoint {entry}: {meta_path} not found (a checkpoint is FILE.eqx with its "
                                    "FILE.json); pass the .eqx of a trained checkpoint")
        meta = read_json(meta_path, "restore it from the checkpoint's source, or retrain the checkpoint")
        predictors[label] = load_predictor(meta["model"], path)
    return predictors


def scaling_study(out: str | Path, methods: Sequence[str], *, checkpoints: Sequence[str] = (), preset: str = "quick",
                  progress: Callable | None = None, **settings) -> ScalingResult:
    """Time ``methods`` (names, ``scaling_predictors``) and ``checkpoints`` (``NAME=FILE``) with
    :func:`scaling` (``settings``: its keyword arguments), then write ``STUDY_FILES`` into ``out``:
    the result as JSON, the rows and slopes as markdown, and the log-log plot."""
    predictors = scaling_predictors(list(methods), preset=preset) | checkpoint_predictors(checkpoints)
    result = scaling(predictors, progress=progress, **settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "scaling.json", json.dumps(result.as_dict(), indent=1, default=str))
    atomic_write_text(out / "scaling.md", result.to_table("markdown") + "\n\n" + result.slope_table("markdown") + "\n")
    result.plot(out / "scaling.png")
    return result
