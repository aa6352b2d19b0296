"""The fast multipole method baseline (paper Fig. 5): pyfmmlib's 2D Laplace FMM on 2D sources.

``fmm_potential_and_field`` (variants ``"pure"`` and ``"corrected"``, see ``_algorithm``) and
``fmm_available``. pyfmmlib is optional (``pip install 'fieldbench[fmm]'``); importing this
package never needs it. Modules: ``_loading`` (pyfmmlib, its OpenMP threads, its one call),
``_algorithm`` (the solver, step by step), ``_neighbours`` (near-pair search), ``_rings`` (prism
multipoles as rings of dipoles), ``_corrections`` (the exact local corrections, jitted).
"""

from ._algorithm import IPREC_TOLERANCE, SNAP_RADIUS, VARIANTS, check_prism_order, fmm_potential_and_field
from ._loading import fmm_available

__all__ = ["IPREC_TOLERANCE", "SNAP_RADIUS", "VARIANTS", "check_prism_order", "fmm_available",
           "fmm_potential_and_field"]
