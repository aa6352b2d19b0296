"""Wall time against the number of sources M and of points N (the paper's Fig. 5a): the sweep.

Every method is timed through the :class:`~fieldbench.models.Predictor` protocol, separately for
its two phases: ``encode`` (O(M) for learned models; bookkeeping for the exact sum and the FMM,
whose "code" is the source batch itself) and ``evaluate`` (O(N) for learned models, O(M N) for the
exact direct sum, O(M + N) for the FMM). Configurations: ``_layouts``; how one call is run and
timed: ``_runners``; the rows, slopes and tables: ``_results``; the figure: ``_plot``.

Bounded time: a method stops growing once one call of it took longer than ``time_budget`` seconds,
or once the next size would (extrapolating its last log-log slope, at least 1): so the O(M N)
direct sum stops early while the O(M + N) methods reach 1e6. A call that runs out of memory or
raises is recorded (``"out of memory"``, ``"error: ..."``) and stops that method too.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence

import jax

from ..._config import thread_settings
from ...bench import device_description
from ...models import Predictor
from ...models._reference import FMMPredictor
from ...sources import SourceBatch
from ._checks import check_scaling_arguments
from ._layouts import Layout, jittered_grid, timing_points
from ._results import ScalingResult, ScalingRow, fit_slopes
from ._runners import measure, runner_for

__all__ = ["DEFAULT_SIZES", "SCALING_METHODS", "scaling", "scaling_predictors"]

#: The paper's Fig. 5a sizes.
DEFAULT_SIZES = (1e2, 1e3, 1e4, 1e5, 1e6)
#: The methods of the paper's Fig. 5a (learned ones at a preset, untrained: timing only).
SCALING_METHODS = ("exact", "fmm", "fmm-pure", "fc-ilr", "fourier")
PHASES = ("encode", "evaluate")
#: Sizes from which memory is collected between methods (gc.collect costs ~0.1 s with JAX loaded).
_COLLECT_ABOVE = 100_000


def _environment() -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    return {
        "device": device_description(),
        "backend": jax.default_backend(),
        "jax_devices": len(jax.devices()),
        "cpu_count": os.cpu_count(),
        "threads": affinity,
        **thread_settings(),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def _predict(history: list[tuple[int, float]], size: int) -> float:
    """Next call's seconds from the last two sizes' log-log slope (at least 1; 1 with one size)."""
    if not history:
        return 0.0
    (x1, t1) = history[-1]
    slope = 1.0
    if len(history) >= 2:
        x0, t0 = history[-2]
        if t0 > 0 and t1 > 0 and x1 > x0:
            slope = math.log(t1 / t0) / math.log(x1 / x0)
    slope = min(max(slope, 1.0), 3.0)
    return t1 * (size / x1) ** slope


def scaling(predictors: Mapping[str, Predictor], *, sizes_m=DEFAULT_SIZES, n_equals_m: bool = True,
            n_fixed=None, m_fixed=None, family: str = "disc", points_inside: bool = False,
            fmm_both: bool = True, time_budget: float = 60.0, repeats: int = 3, seed: int = 0,
            progress=None) -> ScalingResult:
    """Time encoding and evaluation of each predictor against the number of sources (paper Fig. 5a).

    Args:
      predictors: name -> :class:`~fieldbench.models.Predictor` (e.g. :func:`scaling_predictors`).
      sizes_m: the swept sizes, strictly increasing (floats like 1e3 are fine).
      n_equals_m: M sweep with N = M points (default). False: N = ``n_fixed`` points at every M.
      n_fixed: the fixed N of the M sweep (only with ``n_equals_m=False``).
      m_fixed: if given, also sweep N over ``sizes_m`` with M = ``m_fixed`` sources.
      family: ``"disc"`` (default) or ``"prism"`` (squares).
      points_inside: points at the source centres (inside) instead of outside every source.
      fmm_both: FMM predictors are also timed with the other point placement (the M sweep), the
        extra curve of Fig. 5a: inside a source costs the corrected FMM its interior correction.
      time_budget: seconds; a method stops growing once one call took longer or the next would
        (extrapolated from its last slope). Also caps the time spent on repeats of one measurement.
      repeats: timed calls per measurement after the warm-up call (the best is kept).
      seed: configurations are a function of (seed, M, N).
      progress: optional callable receiving each :class:`ScalingRow` as it is recorded.

    Returns:
      a :class:`ScalingResult`: rows (method, phase, M, N, seconds, compile_seconds, status, ...),
      log-log slopes per method and phase, the device and thread counts; ``.to_table()``, ``.plot()``.
    """
    sizes, n_fixed, m_fixed, parsed_family = check_scaling_arguments(
        predictors, sizes_m, n_equals_m, n_fixed, m_fixed, family, points_inside, time_budget, repeats, progress)

    placement = "inside" if points_inside else "outside"
    other = "outside" if points_inside else "inside"
    fmm_names = [n for n, p in predictors.items() if isinstance(p, FMMPredictor)]
    configs = [("M", placement, list(predictors))]
    if fmm_both and fmm_names:
        configs.append(("M", other, fmm_names))
    if m_fixed is not None:
        configs.append(("N", placement, list(predictors)))

    runners = {name: runner_for(p) for name, p in predictors.items()}
    rows: list[ScalingRow] = []

    def record(row):
        rows.append(row)
        if progress is not None:
            progress(row)

    started = time.perf_counter()
    layout_cache: dict[int, Layout] = {}
    for sweep, where, names in configs:
        stopped: set[str] = set()
        history: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
        for size in sizes:
            if len(stopped) == len(names):
                break
            m = size if sweep == "M" else m_fixed
            n = (size if n_equals_m else n_fixed) if sweep == "M" else size
            active = []
            for name in names:
                if name in stopped:
                    continue
                predicted = _predict(history[name], size)
                if predicted > time_budget:
                    note = f"skipped (predicted {predicted:.3g} s > budget {time_budget:g} s)"
                    for phase in PHASES:
                        record(ScalingRow(name, phase, sweep, where, m, n, math.nan, math.nan, 0, note))
                    stopped.add(name)
                else:
                    active.append(name)
            if not active:
                continue
            large = max(m, n) >= _COLLECT_ABOVE
            if m not in layout_cache:
                layout_cache.clear()
                if large:
                    gc.collect()
                layout_cache[m] = jittered_grid(m, parsed_family, seed)
            layout = layout_cache[m]
            points = timing_points(layout, n, where == "inside", seed)
            batch = SourceBatch.pad([layout.sources])
            for name in active:
                new_rows, cost, stop = measure(name, runners[name], batch, points, sweep, where, m, n,
                                                time_budget, repeats)
                for row in new_rows:
                    record(row)
                if stop:
                    stopped.add(name)
                else:
                    history[name].append((size, cost))
                if large:  # free the last method's arrays before the next one allocates its own
                    gc.collect()
            del points, batch
    layout_cache.clear()
    settings = {"sizes_m": sizes, "n_equals_m": n_equals_m, "n_fixed": n_fixed, "m_fixed": m_fixed,
                "family": parsed_family.name.lower(), "points_inside": points_inside, "fmm_both": fmm_both,
                "time_budget": time_budget, "repeats": int(repeats), "seed": seed,
                "methods": {name: type(p).__name__ for name, p in predictors.items()}}
    return ScalingResult(rows, fit_slopes(rows), _environment(), settings, time.perf_counter() - started)


# -- the paper's methods ------------------------------------------------------------------------

def scaling_predictors(names: Sequence[str] = SCALING_METHODS, *, preset: str = "quick", seed: int = 0,
                       length_scale: float = 1.0, skip_unavailable: bool = True) -> dict[str, Predictor]:
    """The methods of Fig. 5a by name: references (``exact``, ``fmm``, ``fmm-dipole``, ``fmm-pure``) and learned
    models built fresh at ``preset`` (untrained weights time the same as trained ones). FMM methods
    are left out when pyfmmlib is missing and ``skip_unavailable``."""
    from ...models import build_model, build_reference
    from ...models._registry import REFERENCE

    out: dict[str, Predictor] = {}
    for name in names:
        if name in REFERENCE:
            try:
                out[name] = build_reference(name)
            except ImportError:
                if not skip_unavailable:
                    raise
        else:
            out[name] = build_model(name, preset=preset, seed=seed, length_scale=length_scale)[0]
    return out
