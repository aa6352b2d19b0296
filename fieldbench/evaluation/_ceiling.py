"""The rank-L ceiling: the best any additive model with an L-dimensional code can do on a split.

An additive model linear in its code writes every source's potential as psi(r) . c_k, so on a
fixed set of points P its single-source potentials span at most L dimensions. The best such
L-dimensional space for the training distribution is given by the SVD of exact potentials: rows
are training sources, columns the points of P (Eckart-Young). The ceiling projects the exact
potential of each held-out sample (its sources summed) onto the top L right singular vectors and
scores that projection with Eq. 10 at P. Sums of sources project like single ones (projection is
linear), so the ceiling holds for test_multi and test_overlap alike.

With ``field=True`` it also gives the field's ceiling: a model whose field is the gradient of its
potential spans, at P, at most L dimensions of stacked (phi, H) vectors too, so the SVD of the
stacked vectors of training sources (each block scaled by its RMS over them, so potential and field
weigh alike) gives the best L-dimensional space for both at once; ``field_error`` is the median
relative error of H (Eq. 10) of that projection and ``joint_phi_error`` the potential's.

It is optimal in the least-squares sense (Eckart-Young minimises the summed squared error), for
the potential alone (``phi_error``) or the RMS-weighted pair, and on the points of P. A model
trained on a relative loss can therefore score a lower *median* relative error (Eq. 10) than the
ceiling of its code size, since the median weighs small potentials (far from sources) more than
least squares does; read a learned model against it as the best additive model of its size in the
L2 sense, and against the relative L2 column as a bound.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._tables import Table
from ..metrics import median_relative_error, relative_l2_error
from ..physics import potential_and_field_batched
from ..sources import SourceBatch

__all__ = ["CeilingResult", "ceiling", "ceiling_table", "DEFAULT_RANKS"]

DEFAULT_RANKS = (32, 64, 128, 256, 400, 1024)


@dataclasses.dataclass
class CeilingResult:
    dataset: str
    split: str
    points: int
    train_sources: int
    samples: int
    ranks: list[int]
    phi_error: list[float]
    phi_relative_l2: list[float]
    seconds: float
    field_error: list[float] | None = None
    field_relative_l2: list[float] | None = None
    joint_phi_error: list[float] | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _exact(split, rows, points, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Exact phi (samples, P) and H (samples, P, d) of ``split``'s samples ``rows`` at ``points``."""
    phi, field = [], []
    for start in range(0, len(rows), chunk):
        r = rows[start:start + chunk]
        batch = SourceBatch(split.family[r], split.centers[r], split.magnetisations[r], split.sizes[r], split.mask[r])
        values = potential_and_field_batched(batch, points)
        phi.append(np.asarray(values[0], np.float64))
        field.append(np.asarray(values[1], np.float64))
    return np.concatenate(phi), np.concatenate(field)


def _top_right_vectors(rows: np.ndarray, count: int) -> np.ndarray:
    """The top ``count`` right singular vectors of ``rows`` (columns of the result), from the
    smaller of its two Gram matrices: cheaper than an SVD of the whole matrix and exact to float64
    rounding for the ranks asked for."""
    if rows.shape[1] <= rows.shape[0]:
        _, vectors = np.linalg.eigh(rows.T @ rows)
        return vectors[:, ::-1][:, :count]
    eigenvalues, left = np.linalg.eigh(rows @ rows.T)
    eigenvalues, left = eigenvalues[::-1][:count], left[:, ::-1][:, :count]
    return rows.T @ left / np.sqrt(np.maximum(eigenvalues, np.finfo(float).tiny))


def ceiling(dataset: str, split: str = "test_multi", ranks=DEFAULT_RANKS, *, points: int = 4096,
            train_sources: int = 8000, samples: int | None = None, seed: int = 0, field: bool = False) -> CeilingResult:
    """Eq. 10 (%) of the optimal rank-L additive approximation of ``split``, for each L in ``ranks``.

    The basis comes from the SVD of exact potentials of the first ``train_sources`` samples of the
    dataset's train split at ``points`` points drawn uniformly in the train domain (from ``seed``);
    the first ``samples`` samples of ``split`` (all by default) are scored at the same points;
    ``field`` adds the field's ceiling (the joint SVD of potential and field, see the module).
    """
    from ..datasets import load, open_dataset

    ranks = sorted({int(r) for r in ranks})
    if not ranks or ranks[0] < 1:
        raise ValueError(f"ranks must be positive integers; got {ranks}")
    if points < 1 or train_sources < 1:
        raise ValueError("points and train_sources must be positive")
    started = time.perf_counter()
    spec = open_dataset(dataset).spec
    train, held_out = load(dataset, "train"), load(dataset, split)
    lo, hi = spec.splits["train"].configuration.domain
    rng = np.random.default_rng(seed)
    where = rng.uniform(lo, hi, size=(points, train.centers.shape[-1]))
    basis_rows = np.arange(min(train_sources, len(train)))
    if ranks[-1] > min(len(basis_rows), points):
        raise ValueError(f"rank {ranks[-1]} needs at least that many training sources and points "
                         f"(have {len(basis_rows)} and {points}); lower the ranks or raise --points/--train-sources")
    train_phi, train_field = _exact(train, basis_rows, where)
    count = len(held_out) if samples is None else min(samples, len(held_out))
    target_phi, target_field = _exact(held_out, np.arange(count), where)
    vectors = _top_right_vectors(train_phi, ranks[-1])
    coordinates = target_phi @ vectors
    medians, l2 = [], []
    for rank in ranks:
        projection = coordinates[:, :rank] @ vectors[:, :rank].T
        medians.append(median_relative_error(projection, target_phi, vector=False)[0])
        l2.append(relative_l2_error(projection, target_phi))
    result = CeilingResult(dataset=str(dataset), split=held_out.split, points=points, train_sources=len(basis_rows),
                           samples=count, ranks=ranks, phi_error=medians, phi_relative_l2=l2, seconds=0.0)
    if field:
        scales = np.sqrt(np.mean(train_phi ** 2)), np.sqrt(np.mean(train_field ** 2))
        stack = lambda phi, h: np.concatenate([phi / scales[0], h.reshape(len(h), -1) / scales[1]], 1)  # noqa: E731
        vectors = _top_right_vectors(stack(train_phi, train_field), ranks[-1])
        coordinates = stack(target_phi, target_field) @ vectors
        result.field_error, result.field_relative_l2, result.joint_phi_error = [], [], []
        for rank in ranks:
            projection = coordinates[:, :rank] @ vectors[:, :rank].T
            phi = projection[:, :points] * scales[0]
            h = projection[:, points:].reshape(target_field.shape) * scales[1]
            result.field_error.append(median_relative_error(h, target_field, vector=True)[0])
            result.field_relative_l2.append(relative_l2_error(h, target_field))
            result.joint_phi_error.append(median_relative_error(phi, target_phi, vector=False)[0])
    result.seconds = time.perf_counter() - started
    return result


def ceiling_table(results: list[CeilingResult]) -> Table:
    """One row per rank L; per split the median and pooled relative L2 of phi (in %), and where the
    field's ceiling was computed the median and pooled relative L2 of H in the joint space."""
    columns = [("L", "right")]
    for result in results:
        columns += [(f"{result.split} phi", "right"), (f"{result.split} rel. L2", "right")]
        if result.field_error is not None:
            columns += [(f"{result.split} H (joint)", "right"), (f"{result.split} H rel. L2 (joint)", "right")]
    rows = []
    for index, rank in enumerate(results[0].ranks if results else []):
        row = [str(rank)]
        for result in results:
            row += [f"{result.phi_error[index]:.3g}", f"{result.phi_relative_l2[index]:.3g}"]
            if result.field_error is not None:
                row += [f"{result.field_error[index]:.3g}", f"{result.field_relative_l2[index]:.3g}"]
        rows.append(tuple(row))
    dataset = results[0].dataset if results else ""
    return Table(f"rank-L ceiling of additive models on {dataset} (median relative error, %; joint: the best "
                 "space for potential and field together)", tuple(columns), tuple(rows))
