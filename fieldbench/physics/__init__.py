"""Exact physics: potential and field of every source family (float64), and independent references.

Layers, from the bottom: ``kernels`` (closed forms for one source-point pair), ``direct_sum`` /
``direct_sum_batched`` (the jitted, chunked raw core over arrays), and the functional layer
``potential`` / ``field`` / ``potential_and_field`` over :class:`fieldbench.Sources`.
"""

import jax as _jax

# Exact physics is float64 by contract; models may still choose float32 arrays explicitly.
_jax.config.update("jax_enable_x64", True)

from . import _kernels2d as kernels2d  # noqa: E402
from . import _kernels3d as kernels3d  # noqa: E402
from ._api import field, potential, potential_and_field, potential_and_field_batched  # noqa: E402
from ._direct import CHUNK, KERNELS, direct_sum, direct_sum_batched  # noqa: E402

__all__ = [
    "CHUNK", "KERNELS", "direct_sum", "direct_sum_batched", "field", "kernels2d", "kernels3d",
    "potential", "potential_and_field", "potential_and_field_batched",
]
