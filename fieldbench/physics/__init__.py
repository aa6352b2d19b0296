"""Exact physics: potential and field of every source family (float64), and independent references.

Layers, from the bottom: the pair kernels (closed forms for one source-point pair, one module per
family in :mod:`fieldbench.families`), ``direct_sum`` /
``direct_sum_batched`` (the jitted, chunked raw core over arrays), and the functional layer
``potential`` / ``field`` / ``potential_and_field`` over :class:`fieldbench.Sources`.
"""

# float64 (exact physics is float64 by contract) and one CPU device per core: fieldbench._config.configure_jax
from ._api import field, potential, potential_and_field, potential_and_field_batched
from ._direct import CHUNK, KERNELS, direct_sum, direct_sum_batched
from ._references import BACKENDS, reference_backends, reference_field
from .fmm import fmm_available, fmm_potential_and_field

__all__ = [
    "BACKENDS", "CHUNK", "KERNELS", "direct_sum", "direct_sum_batched", "field",
    "potential", "potential_and_field", "potential_and_field_batched", "reference_backends", "reference_field",
    "fmm_available", "fmm_potential_and_field",
]
