"""A complete user model for fieldbench: an additive radial-basis-function (RBF) hypernetwork.

Use it anywhere a model name is accepted, as ``"path/to/my_model.py:MyModel"``::

    fieldbench train examples/my_model.py:MyModel --dataset circles2d-mini
    # or, from Python
    from fieldbench.models import TrainConfig, build_model, train
    model, hyperparameters = build_model("examples/my_model.py:MyModel", length_scale=3.0, n_centers=64)
    config = TrainConfig(model="examples/my_model.py:MyModel", dataset="circles2d-mini",
                         hyperparameters={"n_centers": 64})
    result = train(config, "ckpt.eqx")

The protocol (``fieldbench.models._protocol``) in four points
-------------------------------------------------------------
1. **Encode each source.** ``encode_sources(features)`` maps the per-source features ``(K, F)``
   (centre and size in units of ``length_scale``, magnetisation, one-hot family; see
   ``fieldbench.models.source_features``) to per-source codes ``(K, C)``. The library sums the codes
   over the real sources of a collection (padding masked out): the collection code ``(C,)``.
2. **Evaluate at any points.** A :class:`~fieldbench.models.SourceFieldModel` implements
   ``potential(code, points) -> (N,)``; the field is ``H = -grad(phi)`` by autodiff. A model that is
   *linear in its code* subclasses :class:`~fieldbench.models.LinearBasisModel` instead and gives a
   basis ``basis(points) -> (N, C)``: then ``phi = basis(points) @ code``, superposition holds
   exactly (``additive = True``), and with shared points the basis and its gradient are computed
   once per batch (the fast training path). This example does that.
3. **Declare properties.** ``additive`` (output linear in the code) and ``harmonic`` (the potential
   solves Laplace's equation). Gaussians are not harmonic, so ``harmonic = False`` (the default).
4. **Be rebuildable.** A classmethod ``create(cls, *, dim, length_scale, key, **hyperparameters)``
   must build the model from keyword arguments alone (``key`` is an int seed or a PRNG key): a
   checkpoint stores only the class location and these hyperparameters, and ``load_checkpoint``
   calls ``create(..., key=0, **hyperparameters)`` for a skeleton before reading the weights.
   Hyperparameters must therefore be JSON-serialisable (numbers, strings, lists). Declare
   non-array settings with ``eqx.field(static=True)``.

Models are equinox modules: every array attribute is a trainable parameter. Keep arrays float32
(fieldbench enables JAX's float64 for the exact solvers, so give dtypes explicitly).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from fieldbench.models import LinearBasisModel, feature_count


class MyModel(LinearBasisModel):
    """phi(r) = sum_j c_j exp(-|r/L - mu_j|^2 / (2 s_j^2)) + c_0 + c_x x/L + c_y y/L.

    The coefficients ``c`` are the summed outputs of an MLP hypernetwork of each source's features;
    the centres ``mu_j`` (initialised on a regular grid over the unit box, i.e. over the domain
    in units of ``L = length_scale``) and log-widths ``log s_j`` are learned and shared by all
    sources. Linear in the code, hence additive; not harmonic.
    """

    name: ClassVar[str] = "my-rbf"
    hypernet: eqx.nn.MLP
    centers: jax.Array  # (J, dim), in units of length_scale
    log_widths: jax.Array  # (J,)

    @classmethod
    def create(cls, *, dim: int = 2, length_scale: float = 1.0, key=0, n_centers: int = 64, width: float = 0.2,
               hypernet_width: int = 64, hypernet_depth: int = 2):
        """Build a fresh model. ``n_centers`` is rounded down to a square grid (2D: n^2 centres)."""
        if dim != 2:
            raise ValueError("MyModel is a 2D example (dim=2)")
        side = max(2, int(round(n_centers ** 0.5)))
        grid = jnp.linspace(-1.0, 1.0, side, dtype=jnp.float32)
        centers = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, dim)
        key = jax.random.PRNGKey(key) if isinstance(key, int) else key
        code_size = len(centers) + dim + 1
        hypernet = eqx.nn.MLP(feature_count(dim), code_size, width_size=hypernet_width, depth=hypernet_depth,
                              activation=jax.nn.silu, key=key, dtype=jnp.float32)
        return cls(hypernet=hypernet, centers=centers,
                   log_widths=jnp.full(len(centers), jnp.log(width), jnp.float32), length_scale=length_scale)

    def encode_sources(self, features):
        """(K, F) per-source features -> (K, C) per-source codes (summed by the library)."""
        return jax.vmap(self.hypernet)(features)

    def basis(self, points):
        """(N, dim) points -> (N, C) basis: the J Gaussians, then 1, x/L, y/L."""
        r = points / self.length_scale
        squared = jnp.sum((r[:, None, :] - self.centers[None]) ** 2, axis=-1)
        gaussians = jnp.exp(-0.5 * squared / jnp.exp(2.0 * self.log_widths))
        return jnp.concatenate([gaussians, jnp.ones_like(r[:, :1]), r], axis=1)
