"""Non-learned methods behind the same protocol: the exact direct sum and the FMM (pyfmmlib).

Their "code" is the padded source batch itself (encoding is O(M) bookkeeping); evaluation calls
the solver. They are scored, timed and submitted exactly like learned models.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..physics import fmm_available, fmm_potential_and_field, potential_and_field_batched
from ..physics.fmm import check_prism_order
from ..sources import SourceBatch
from ._protocol import Predictor

__all__ = ["ExactPredictor", "FMMPredictor"]


class ExactPredictor(Predictor):
    """The direct sum of the exact solvers: O(M N), float64, zero error by construction."""

    name: ClassVar[str] = "exact"
    additive: ClassVar[bool] = True
    harmonic: ClassVar[bool] = True

    def encode(self, batch: SourceBatch) -> SourceBatch:
        return batch

    def evaluate(self, code: SourceBatch, points):
        phi, field = potential_and_field_batched(code, np.asarray(points, dtype=np.float64))
        return np.asarray(phi), np.asarray(field)


class FMMPredictor(Predictor):
    """pyfmmlib's 2D Laplace FMM on the sources' dipole moments (paper Fig. 5).

    variant "corrected" adds the exact near field and interior correction; "pure" uses point
    dipoles only. ``iprec`` sets the FMM accuracy (1: ~1e-5, 2: ~1e-8, 4: ~1e-15). ``prism_order``
    (corrected only): the prism multipoles handed to the FMM beyond each prism's near zone (None:
    enough for the FMM's own accuracy, a ring of dipoles per prism; 1: the point dipole, the
    paper's corrected FMM, 7-10x cheaper on prisms at ~1e-4 median error). Discs ignore it (their
    dipole is exact outside them).
    """

    additive: ClassVar[bool] = True
    harmonic: ClassVar[bool] = True

    def __init__(self, variant: str = "corrected", iprec: int = 1, prism_order: int | None = None):
        if not fmm_available():
            raise ImportError("the FMM baseline needs pyfmmlib: pip install 'fieldbench[fmm]'")
        if variant not in ("corrected", "pure"):
            raise ValueError(f"variant must be 'corrected' or 'pure'; got {variant!r}")
        if prism_order is not None and variant == "pure":
            raise ValueError("prism_order applies to the corrected variant only; drop it for variant 'pure'")
        check_prism_order(prism_order)
        self.variant = variant
        self.iprec = iprec
        self.prism_order = prism_order

    @property
    def name(self) -> str:  # type: ignore[override]
        if self.variant == "pure":
            return "fmm-pure"
        return {None: "fmm", 1: "fmm-dipole"}.get(self.prism_order, f"fmm-order{self.prism_order}")

    def encode(self, batch: SourceBatch) -> SourceBatch:
        return batch

    def evaluate(self, code: SourceBatch, points):
        points = np.asarray(points, dtype=np.float64)
        phis, fields = [], []
        for index in range(len(code)):
            sample_points = points[index] if points.ndim == 3 else points
            phi, field = fmm_potential_and_field(code.sample(index), sample_points, iprec=self.iprec,
                                                 variant=self.variant, prism_order=self.prism_order)
            phis.append(phi)
            fields.append(field)
        return np.stack(phis), np.stack(fields)
