"""The two-stage recipe for models linear in their code (Fourier, FC+ILR, Linear and their variants).

phi(r) = psi(r) . code, with code = sum over sources of g(features). Two facts make these models
cheap to train well, where end-to-end Adam on the joint loss barely moves them:

1. **The basis first, by variable projection.** For a fixed basis, the best code of every
   training sample is a (ridge) least-squares solve against its exact potential and field. So the
   basis parameters are trained against the least-squares residual itself (Golub and Pereyra's
   variable projection): each step draws sources and points, solves for the optimal codes in
   float64 and backpropagates through the solve. This is the model's *floor*: no hypernetwork can
   beat the basis it is given. Models without basis parameters (Linear) skip it.
2. **The hypernetwork in whitened coordinates.** On a fixed set of points P, let D be the basis's
   weighted potential-and-field design matrix and G = D^T D = V L V^T. With code = V L^(-1/2) z,
   the joint loss is ||z - z*||^2 + const, where z* = L^(-1/2) V^T D^T y is the whitened optimal
   code: training the hypernetwork is a well-conditioned regression on precomputed targets, with
   no basis evaluation per step. Its last layer is then solved in closed form (ridge least squares
   on the penultimate activations) and the map V L^(-1/2) is folded into it, so the trained model
   has exactly the architecture it was built with.

Losses are the paper's joint potential + field loss, normalised per sample (the metric, Eq. 10, is
relative, so a weak source counts as much as a strong one). Every stage is deterministic from the
seed; the result is saved with :func:`save_checkpoint` like any trained model.

One job per module (README.md in this folder maps the stages to them): ``_config`` (FitConfig,
FitResult), ``_targets`` (the least-squares problem), ``_basis`` (stage 1 and its saved copy),
``_whitening``, ``_head`` (the code head), ``_hypernet`` (stage 2), ``_validation`` and ``_fit``
(:func:`fit`, the stages in order).
"""

from ._config import FitConfig, FitResult
from ._fit import fit
from ._head import code_head

# The pieces tests/test_recipes.py checks directly (``x as x``: an explicit re-export).
from ._basis import _load_basis as _load_basis
from ._head import _fold as _fold, _solve_head as _solve_head
from ._targets import _Targets as _Targets
from ._validation import _scenes as _scenes
from ._whitening import _relative_targets as _relative_targets, _whitened_targets as _whitened_targets
from ._whitening import _whitening as _whitening

__all__ = ["FitConfig", "FitResult", "fit", "code_head"]
