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

Two ways in, one scorer (``_score``): :func:`evaluate` runs a protocol model and scores what it
returns; :func:`evaluate_predictions` scores arrays computed anywhere (PyTorch, NumPy, ...), like
OGB's ``Evaluator``. The same predictions give the same metrics, bit for bit, either way. The
expected arrays: docs/evaluation_input.md.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import equinox as eqx
import numpy as np

from .._tables import Table
from ..datasets import load
from ..exceptions import InvalidPrediction
from ..metrics import relative_errors, relative_l2_error
from ..models import Predictor, load_predictor
from ..pipeline import canonical_split
from ..sources import SourceBatch, boundary_distance

__all__ = ["EvaluationResult", "evaluate", "evaluate_predictions", "evaluate_prediction_file", "read_prediction_file",
           "PREDICTION_KEYS", "evaluate_splits",
           "evaluation_table", "InvalidPrediction", "DISTANCE_BINS", "boundary_distance"]

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


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of samples; got {limit}")


def evaluate(model: Predictor, dataset: str, split: str, *, batch_size: int = 64, name: str | None = None,
             limit: int | None = None) -> EvaluationResult:
    """Score ``model`` on ``split`` of ``dataset`` (a standard name or a dataset path).

    ``seconds`` is the time the model took to predict (encode and evaluate, every batch)."""
    if not isinstance(model, Predictor):
        raise TypeError(f"model must implement fieldbench.models.Predictor; got {type(model).__name__}")
    _check_limit(limit)
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
    return _score(data, count, np.concatenate(phis), np.concatenate(fields), dataset=dataset, split=split,
                  name=name or getattr(model, "name", type(model).__name__), seconds=seconds)


def evaluate_predictions(dataset: str, split: str, phi, H, *, limit: int | None = None,
                         name: str = "predictions") -> EvaluationResult:
    """Score predictions made anywhere (PyTorch, NumPy, ...) on ``split`` of ``dataset``: the same
    metrics, computed by the same code, as :func:`evaluate` gives a model that predicts these values.

    ``phi`` and ``H`` are in the split's point order, the order of ``fieldbench.datasets.load(dataset,
    split).points`` (S samples x N points x d dims; ``iter_batches`` without ``shuffle`` gives the
    same order, and every batch's ``sample`` says which rows it holds): ``phi[s, n]`` and ``H[s, n]``
    are the potential and the field at ``points[s, n]``. Shapes: phi (S, N) or flat (S * N,), H
    (S, N, d) or flat (S * N, d), flat meaning sample-major (sample 0's N points first); any floating
    dtype (compared in float64); every value finite. With ``limit``, predictions of the first
    ``min(limit, S)`` samples only. Anything else raises :class:`InvalidPrediction` naming the
    problem and the fix. ``seconds`` is NaN (nothing was timed); ``model`` is ``name``.
    See docs/evaluation_input.md."""
    _check_limit(limit)
    data = load(dataset, split)
    count = len(data) if limit is None else min(limit, len(data))
    where = f"split {split!r} of {data.name}"
    phi = _check_given("phi", phi, data.points.shape[1:2], len(data), count, limit, where)
    field = _check_given("H", H, data.points.shape[1:], len(data), count, limit, where)
    return _score(data, count, phi, field, dataset=dataset, split=split, name=name, seconds=float("nan"))


def _check_given(label: str, array, per_sample: tuple, total: int, count: int, limit: int | None,
                 where: str) -> np.ndarray:
    """``array`` as (count, *per_sample), from that shape or flat (count * N, *per_sample[1:])."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as error:  # ragged lists, or an object NumPy cannot read
        raise InvalidPrediction(f"{label} is not a rectangular array ({error}); pass a NumPy array") from None
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidPrediction(f"{label} has dtype {array.dtype}; expected floating point: convert it, e.g. "
                                f"{label}.astype(numpy.float32)")
    points = per_sample[0]
    shaped, flat = (count, *per_sample), (count * points, *per_sample[1:])
    samples = None  # the number of samples the array holds, when only that is wrong
    if array.ndim == len(shaped) and array.shape[1:] == shaped[1:]:
        samples = array.shape[0]
    elif array.ndim == len(flat) and array.shape[1:] == flat[1:] and array.shape[0] % points == 0:
        samples = array.shape[0] // points
    if array.shape not in (shaped, flat):
        if samples:  # not 0: no limit fixes an empty array
            if limit is None:
                fix = (f"predict all {total} samples, or score the first {samples} only (limit={samples}; "
                       f"--limit {samples})" if samples < total else f"predict exactly its {total} samples")
            else:
                fix = (f"limit={limit} asks for the first {count}: predict those, or pass limit={samples} "
                       f"(--limit {samples})")
            raise InvalidPrediction(f"{label} holds {samples} samples; {where} has {total}: {fix}")
        raise InvalidPrediction(f"{label} has shape {array.shape}; {where} needs {shaped} (samples, points"
                                f"{', dims' if len(per_sample) > 1 else ''}) or flat {flat}, in the point order "
                                f"of fieldbench.datasets.load")
    array = array.reshape(shaped)
    bad = ~np.isfinite(array)
    if bad.any():
        sample = int(np.argwhere(bad)[0][0])
        raise InvalidPrediction(f"{label} holds NaN or inf for sample {sample} ({int(bad.sum())} values in all); "
                                f"every prediction must be finite")
    return array


def _score(data, count: int, phi: np.ndarray, field: np.ndarray, *, dataset: str, split: str, name: str,
           seconds: float) -> EvaluationResult:
    """Every metric of the first ``count`` samples of ``data`` from checked predictions phi (count, N)
    and field (count, N, d): the one scorer of both ways in."""
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
        model=name, dataset=str(dataset), split=data.split,
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


#: The two arrays of one split in a predictions file (``<split>/phi``, ``<split>/H``; or bare for one split).
PREDICTION_KEYS = ("phi", "H")


def read_prediction_file(path, splits=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split name -> (phi, H) from an .npz written by ``numpy.savez``: keys ``<split>/phi`` and
    ``<split>/H`` for each split (``splits``, default every split in the file, in its order), or
    bare ``phi`` and ``H`` for the one split named in ``splits``. Any other key is refused (a
    misspelt key would otherwise be ignored). Arrays are checked when scored, not here."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            magic = stream.read(6)
    except FileNotFoundError:
        raise FileNotFoundError(f"no predictions file {path}: write one with numpy.savez (docs/evaluation_input.md)"
                                ) from None
    # Told apart by their first bytes: np.load's own fallback would call any other file pickled data.
    if magic == b"\x93NUMPY":
        raise InvalidPrediction(f"{path} holds one array (.npy); expected an .npz with <split>/phi and <split>/H, "
                                f"written with numpy.savez (docs/evaluation_input.md)")
    if not magic.startswith(b"PK"):
        raise InvalidPrediction(f"{path} is not an .npz archive (not a zip file); write it with numpy.savez "
                                f"(docs/evaluation_input.md)")
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickle what a file brings
    except (ValueError, OSError, EOFError) as error:
        raise InvalidPrediction(f"{path} is not a readable .npz archive ({error}); write it with numpy.savez "
                                f"(docs/evaluation_input.md)") from None
    with archive:
        keys = list(archive.files)
        expected = "keys <split>/phi and <split>/H for each split, or phi and H for one split"
        for key in keys:
            if key.rpartition("/")[2] not in PREDICTION_KEYS:
                raise InvalidPrediction(f"{path} has an unexpected key {key!r}: expected {expected}")
        bare = [k for k in keys if k in PREDICTION_KEYS]
        if bare and len(bare) < len(keys):
            raise InvalidPrediction(f"{path} mixes bare keys ({', '.join(bare)}) with <split>/ keys: use <split>/phi "
                                    f"and <split>/H for every split")
        if bare:
            if splits is None or len(splits) != 1:
                raise InvalidPrediction(f"{path} holds bare phi and H, the predictions of one split: name that one "
                                        f"split (--split)")
            wanted, prefixes = [canonical_split(splits[0])], {}
        else:
            present = list(dict.fromkeys(k.rpartition("/")[0] for k in keys))
            if not present:
                raise InvalidPrediction(f"{path} is empty: expected {expected}")
            # Keys may name a split by its old hyphenated name too (test-multi/phi is test_multi's).
            prefixes = {canonical_split(name): name for name in present}
            wanted = list(prefixes) if splits is None else [canonical_split(split) for split in splits]
            for split in wanted:
                if split not in prefixes:
                    raise InvalidPrediction(f"{path} has no predictions for split {split!r} (keys {split}/phi and "
                                            f"{split}/H); it holds: {', '.join(present)}")
        out = {}
        for split in wanted:
            prefix = "" if bare else f"{prefixes[split]}/"
            for kind in PREDICTION_KEYS:
                if prefix + kind not in keys:
                    raise InvalidPrediction(f"{path} has no {prefix + kind!r} (it has {', '.join(keys)}): write both "
                                            f"{prefix}phi and {prefix}H")
            try:
                out[split] = (archive[prefix + "phi"], archive[prefix + "H"])
            except ValueError as error:  # object arrays (pickles), or a damaged member
                raise InvalidPrediction(f"{path}: {prefix}phi or {prefix}H is not a plain numeric array ({error}); "
                                        f"save NumPy float arrays") from None
        return out


def evaluate_prediction_file(path, dataset: str, splits=None, *, limit: int | None = None,
                             name: str | None = None) -> list[EvaluationResult]:
    """Score the predictions in the .npz file ``path`` (see :func:`read_prediction_file`) on
    ``dataset``, one :func:`evaluate_predictions` per split (what ``fieldbench evaluate
    --predictions`` runs); ``name`` defaults to the file's name."""
    _check_limit(limit)
    predictions = read_prediction_file(path, splits)
    label = name or Path(path).name
    return [evaluate_predictions(dataset, split, phi, field, limit=limit, name=label)
            for split, (phi, field) in predictions.items()]


#: The columns of ``evaluation_table`` (every value in %, except the counts).
EVALUATION_COLUMNS = ("split", "samples", "phi", "H", "phi rel. L2", "H rel. L2", "phi inside", "phi outside",
                      "per-sample p90 (phi)", "excluded")


def evaluation_table(results: list[EvaluationResult], title: str) -> Table:
    """One row per scored split: median and pooled errors, inside/outside, the per-sample p90."""
    rows = tuple((r.split, str(r.samples), f"{r.phi_error:.3g}", f"{r.field_error:.3g}", f"{r.phi_relative_l2:.3g}",
                  f"{r.field_relative_l2:.3g}", f"{r.inside['phi_error']:.3g}", f"{r.outside['phi_error']:.3g}",
                  f"{r.per_sample['phi']['p90']:.3g}", str(sum(r.excluded.values()))) for r in results)
    return Table(title, tuple((c, "left" if c == "split" else "right") for c in EVALUATION_COLUMNS), rows)
