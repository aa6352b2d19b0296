"""Everything fieldbench reads from the environment, and the one place JAX is configured.

Environment variables (README.md, "Configuration", lists them for users):

=========================  ===========================================================================
``FIELDBENCH_REGISTRY``    folder of the standard dataset specs and ``registry.json`` (default: the
                           package data folder ``fieldbench/datasets/standard/``)
``FIELDBENCH_CACHE``       cache root for downloaded or rebuilt datasets (default: the OS cache folder)
``FIELDBENCH_MIRROR``      mirrors for ``get`` and ``fetch_checkpoint``, tried in order (separated by
                           spaces or commas); set but empty: no mirror, never the network
``HF_ENDPOINT``            huggingface_hub's own: the Hub that ``hf://`` mirrors are read from
                           (default https://huggingface.co)
``FIELDBENCH_CONFIG``      the config file (default: ``<OS config folder>/fieldbench/config.toml``)
``FIELDBENCH_CPU_DEVICES`` CPU devices JAX is given (default: one per core; 1 turns the split off)
``XLA_FLAGS``              JAX's own; a ``xla_force_host_platform_device_count`` there wins
``CI``                     ``true`` turns skips of missing test tools into failures (tests only)
=========================  ===========================================================================

Every read happens when asked (never cached at import), so a variable set by a test or a caller
before the call takes effect. The one exception is :func:`configure_jax`: JAX fixes its device count
when its backends start, so it runs once, from ``fieldbench/__init__.py``, before anything of
fieldbench imports JAX.
"""

from __future__ import annotations

import os

__all__ = [
    "REGISTRY_ENV", "CACHE_ENV", "MIRROR_ENV", "CONFIG_ENV", "CPU_DEVICES_ENV", "registry_folder", "cache_folder",
    "mirror_setting", "hf_endpoint", "config_file", "cpu_devices", "in_ci", "thread_settings", "configure_jax",
]

REGISTRY_ENV = "FIELDBENCH_REGISTRY"
CACHE_ENV = "FIELDBENCH_CACHE"
MIRROR_ENV = "FIELDBENCH_MIRROR"
CONFIG_ENV = "FIELDBENCH_CONFIG"
CPU_DEVICES_ENV = "FIELDBENCH_CPU_DEVICES"


def registry_folder() -> str | None:
    """``$FIELDBENCH_REGISTRY``, or None when unset or empty."""
    return os.environ.get(REGISTRY_ENV) or None


def cache_folder() -> str | None:
    """``$FIELDBENCH_CACHE``, or None when unset or empty."""
    return os.environ.get(CACHE_ENV) or None


def mirror_setting() -> str | None:
    """``$FIELDBENCH_MIRROR`` as set (``""``, set but empty, means: no mirror), or None when unset."""
    return os.environ.get(MIRROR_ENV)


def hf_endpoint() -> str | None:
    """``$HF_ENDPOINT`` (no trailing slash), or None when unset or empty. Read here at each call:
    huggingface_hub reads it once, when it is imported."""
    return (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None


def config_file() -> str | None:
    """``$FIELDBENCH_CONFIG``, or None when unset or empty."""
    return os.environ.get(CONFIG_ENV) or None


def cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it, else all)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return os.cpu_count() or 1


def cpu_devices() -> int | None:
    """CPU devices to ask JAX for: ``$FIELDBENCH_CPU_DEVICES``, else one per core; None when the
    variable is not a whole number (JAX's default, one device, then stays)."""
    configured = os.environ.get(CPU_DEVICES_ENV)
    if configured is None:
        return cores()
    try:
        return int(configured)
    except ValueError:
        return None


def in_ci() -> bool:
    """True on CI (``CI=true``), where what would skip on a developer's machine must fail instead."""
    return os.environ.get("CI") == "true"


def thread_settings() -> dict:
    """The variables that set thread counts (OpenMP, XLA), as this process sees them: a scaling
    result records them beside its timings."""
    return {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "XLA_FLAGS")}


def configure_jax() -> None:
    """Configure JAX for fieldbench; called once, by ``fieldbench/__init__.py``, before JAX starts.

    * ``jax_enable_x64``: exact physics is float64 by contract (models may still choose float32
      arrays explicitly).
    * One CPU device per core (:func:`cpu_devices`): XLA runs one computation on one CPU thread,
      so the direct sums are split across devices (``physics._direct``). Only possible before JAX
      starts its backends, and left alone when ``XLA_FLAGS`` already sets a device count.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized() or "xla_force_host_platform_device_count" in os.environ.get(
                "XLA_FLAGS", ""):
            return
        count = cpu_devices()
        if count is not None:
            jax.config.update("jax_num_cpu_devices", count)
    except Exception:  # an older or newer JAX without these hooks: stay on one device (never fail an import)
        pass
