"""Exact physics: potential and field of every source family (float64), and independent references.

Layers, from the bottom: the pair kernels (closed forms for one source-point pair, one module per
family in :mod:`fieldbench.families`), ``direct_sum`` /
``direct_sum_batched`` (the jitted, chunked raw core over arrays), and the functional layer
``potential`` / ``field`` / ``potential_and_field`` over :class:`fieldbench.Sources`.
"""

import os as _os

import jax as _jax

# Exact physics is float64 by contract; models may still choose float32 arrays explicitly.
_jax.config.update("jax_enable_x64", True)


def _one_cpu_device_per_core() -> None:
    """XLA runs one computation on one CPU thread; with one CPU device per core the direct sums
    are split across cores (``_direct``). Only possible before JAX starts its backends; override
    with FIELDBENCH_CPU_DEVICES (1 turns it off)."""
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized() or "xla_force_host_platform_device_count" in _os.environ.get(
                "XLA_FLAGS", ""):
            return
        cores = len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else (_os.cpu_count() or 1)
        _jax.config.update("jax_num_cpu_devices", int(_os.environ.get("FIELDBENCH_CPU_DEVICES", cores)))
    except Exception:  # an older or newer JAX without these hooks: stay on one device
        pass


_one_cpu_device_per_core()

from . import _kernels2d as kernels2d  # noqa: E402  (for models/_fmm.py only: see its docstring)
from ._api import field, potential, potential_and_field, potential_and_field_batched  # noqa: E402
from ._direct import CHUNK, KERNELS, direct_sum, direct_sum_batched  # noqa: E402
from ._references import BACKENDS, reference_backends, reference_field  # noqa: E402

__all__ = [
    "BACKENDS", "CHUNK", "KERNELS", "direct_sum", "direct_sum_batched", "field", "kernels2d",
    "potential", "potential_and_field", "potential_and_field_batched", "reference_backends", "reference_field",
]
