"""The evaluator: score any protocol model on a dataset split with the paper's Eq. 10 metrics.

The model receives sources and points only, never targets. Metrics, in percent:
- ``phi_error`` / ``field_error``: median relative error pooled over all points of the split;
- ``per_sample``: median and 90th percentile over samples of each sample's median error;
- ``inside`` / ``outside``: the pooled medians over points inside any source / outside all;
- ``by_distance``: pooled medians binned by the signed, size-normalised distance of
  :func:`boundary_distance` (paper Fig. 5b): outside, to the nearest boundary; inside (at least
  one source, overlaps included), minus the depth in the source that holds the point deepest;
- ``phi_relative_l2`` / ``field_relative_l2``: the global relative L2 error over all points (the
  reading of the paper's public code; see ``metrics.relative_l2_error``);
- ``excluded``: points left out of a median because their true |phi| or ||H|| is below
  ``metrics.TINY`` times the median magnitude (Eq. 10 is undefined there); they are counted here.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import numpy as np

from .._tables import Table
from ..datasets import load
from ..exceptions import InvalidPrediction
from ..metrics import relative_errors, relative_l2_error
from ..models import Predictor, load_predictor
from ..sources import SourceBatch, boundary_distance

__all__ = ["EvaluationResult", "evaluate", "evaluate_splits", "evaluation_table", "InvalidPrediction", "DISTANCE_BINS",
           "boundary_distance"]

#: Edges of the distance bins, [from, to), on the axis of :func:`boundary_distance`: outside every
#: source, the distance to the nearest boundary over that source's size; inside at least one, minus
#: the depth (over its size) in the source that holds the point deepest. Negative means inside.
DISTANCE_BINS = (-0.5, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, np.inf)


@dataclasses.dataclass
class EvaluationResult:
    model: str
    dataset: str
    split: str
    samples: int
    points: int
    phi_error: float
    field_error: float
    per_sample: dict
    inside: dict
    outside: dict
    by_distance: list
    excluded: dict
    seconds: float
    phi_relative_l2: float = float("nan")
    field_relative_l2: float = float("nan")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(name: str, array, expected_shape, first_sample: int) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != expected_shape:
        raise InvalidPrediction(f"the model returned {name} of shape {array.shape} for samples {first_sample}..; "
                                f"expected {expected_shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidPrediction(f"the model returned {name} of dtype {array.dtype}; expected floating point")
    bad = ~np.isfinite(array)
    if bad.any():
        sample = first_sample + int(np.argwhere(bad)[0][0])
        raise InvalidPrediction(f"the model returned NaN or inf in {name} for sample {sample} "
                                f"({int(bad.sum())} values in this batch)")
    return array


def _pooled(errors: np.ndarray, usable: np.ndarray, select: np.ndarray) -> float:
    chosen = usable & select
    return 100.0 * float(np.median(errors[chosen])) if chosen.any() else float("nan")


@eqx.filter_jit
def _predict_jitted(model, family, centers, magnetisations, sizes, mask, points):
    batch = SourceBatch(family, centers, magnetisations, sizes, mask)
    return model.evaluate(model.encode(batch), points)


def predict(model: Predictor, batch: SourceBatch, points):
    """phi, H of a padded batch at per-sample points; learned (equinox) models run jitted."""
    if isinstance(model, eqx.Module):
        return _predict_jitted(model, batch.family, batch.centers, batch.magnetisations, batch.sizes, batch.mask,
                               points)
    return model.evaluate(model.encode(batch), points)


def evaluate(model: Predictor, dataset: str, split: str, *, batch_size: int = 64, name: str | None = None,
             limit: int | None = None) -> EvaluationResult:
    """Score ``model`` on ``split`` of ``dataset`` (a standard name or a dataset path)."""
    if not isinstance(model, Predictor):
        raise TypeError(f"model must implement fieldbench.models.Predictor; got {type(model).__name__}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of samples; got {limit}")
    data = load(dataset, split)
    count = len(data) if limit is None else min(limit, len(data))
    started = time.perf_counter()
    phis, fields = [], []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        block = data.batch[start:stop]
        points = data.points[start:stop]
        phi, field = predict(model, block, points)
        phis.append(_check("phi", phi, points.shape[:2], start))
        fields.append(_check("the field", field, points.shape, start))
    seconds = time.perf_counter() - started
    phi, field = np.concatenate(phis), np.concatenate(fields)
    target_phi, target_field = data.phi[:count], data.field[:count]
    phi_err, phi_ok = relative_errors(phi, target_phi, vector=False)
    field_err, field_ok = relative_errors(field, target_field, vector=True)
    distance = boundary_distance(data.family[:count], data.centers[:count], data.sizes[:count], data.mask[:count],
                                 data.points[:count].astype(np.float64)).ravel()
    inside = distance < 0
    everything = np.ones_like(inside)

    def per_sample(errors, usable):
        shaped = np.where(usable, errors, np.nan).reshape(count, -1)
        medians = 100.0 * np.nanmedian(shaped, axis=1)
        return {"median": float(np.nanmedian(medians)), "p90": float(np.nanpercentile(medians, 90))}

    bins = []
    for lo, hi in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
        select = (distance >= lo) & (distance < hi)
        bins.append({"from": lo, "to": hi, "points": int(select.sum()), "phi_error": _pooled(phi_err, phi_ok, select),
                     "field_error": _pooled(field_err, field_ok, select)})
    return EvaluationResult(
        model=name or getattr(model, "name", type(model).__name__), dataset=str(dataset), split=data.split,
        samples=count, points=int(phi.size),
        phi_error=_pooled(phi_err, phi_ok, everything), field_error=_pooled(field_err, field_ok, everything),
        per_sample={"phi": per_sample(phi_err, phi_ok), "field": per_sample(field_err, field_ok)},
        inside={"points": int(inside.sum()), "phi_error": _pooled(phi_err, phi_ok, inside),
                "field_error": _pooled(field_err, field_ok, inside)},
        outside={"points": int((~inside).sum()), "phi_error": _pooled(phi_err, phi_ok, ~inside),
                 "field_error": _pooled(field_err, field_ok, ~inside)},
        by_distance=bins, excluded={"phi": int((~phi_ok).sum()), "field": int((~field_ok).sum())},
        seconds=seconds,
        phi_relative_l2=relative_l2_error(phi, target_phi), field_relative_l2=relative_l2_error(field, target_field),
    )


def evaluate_splits(model: str, dataset: str, splits, *, checkpoint=None, limit: int | None = None
                    ) -> list[EvaluationResult]:
    """Score the model named ``model`` (a reference, a baseline, or 'file.py:Class'; learned ones
    with their ``checkpoint``) on each of ``splits`` (what ``fieldbench evaluate`` runs)."""
    predictor = load_predictor(model, checkpoint)
    return [evaluate(predictor, dataset, split, limit=limit, name=model) for split in splits]


#: The columns of ``evaluation_table`` (every value in %, except the counts).
EVALUATION_COLUMNS = ("split", "samples", "phi", "H", "phi rel. L2", "H rel. L2", "phi inside", "phi outside",
                      "per-sample p90 (phi)", "excluded")


def evaluation_table(results: list[EvaluationResult], title: str) -> Table:
    """One row per scored split: median and pooled errors, inside/outside, the per-sample p90."""
    rows = tuple((r.split, str(r.samples), f"{r.phi_error:.3g}", f"{r.field_error:.3g}", f"{r.phi_relative_l2:.3g}",
                  f"{r.field_relative_l2:.3g}", f"{r.inside['phi_error']:.3g}", f"{r.outside['phi_error']:.3g}",
                  f"{r.per_sample['phi']['p90']:.3g}", str(sum(r.excluded.values()))) for r in results)
    return Table(title, tuple((c, "left" if c == "split" else "right") for c in EVALUATION_COLUMNS), rows)
