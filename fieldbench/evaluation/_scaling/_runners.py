"""Running and timing one method: learned models jitted in chunks over the local devices, any
other predictor as it is, the best of repeated calls, and failures recorded as rows.

Timing: for every (method, size) the first call of each phase is timed apart and reported as
``compile_seconds`` (JIT compilation of the new shapes plus one run: a warm-up); then the phase is
called ``repeats`` times (more while the timed calls add up to under 0.05 s: tiny timings are noisy)
and the best time is kept (``seconds``). Where the harness knows the shapes are compiled already
(learned models whose chunk shapes ran before), the first call also counts as a timed one. JAX
outputs are blocked with ``jax.block_until_ready``. Learned models
(:class:`~fieldbench.models.SourceFieldModel`) are jitted here (``eqx.filter_jit``) and run in
chunks, spread over the local devices: sources in chunks whose codes are summed (the code IS a sum
over sources, so this is the same code), points in chunks sized to bound memory (~256 MB of basis
per chunk). Other predictors are called as they are.

Out-of-memory errors (MemoryError, XLA RESOURCE_EXHAUSTED, pyfmmlib's allocation failure) are
recorded as ``"out of memory"``; any other error as ``"error: ..."``.
"""

from __future__ import annotations

import math
import time

import equinox as eqx
import jax
import numpy as np

from ...models import Predictor, SourceFieldModel
from ...sources import SourceBatch
from ._results import ScalingRow

__all__ = ["measure", "runner_for"]

#: Learned models: sources per encoding chunk, and bytes of basis (psi and its gradient) per
#: evaluation chunk of points.
_SOURCE_CHUNK = 1 << 16
_CHUNK_BYTES = 256 << 20
_MIN_POINT_CHUNK, _MAX_POINT_CHUNK = 1024, 1 << 16
_ALIGN = 256
#: Timed calls continue beyond ``repeats`` (up to _MAX_REPEATS) until they add up to _MIN_TIMED s.
_MIN_TIMED, _MAX_REPEATS = 0.05, 20


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _pad_rows(array: np.ndarray, rows: int, fill) -> np.ndarray:
    missing = rows - array.shape[0]
    if missing <= 0:
        return array
    block = np.full((missing,) + array.shape[1:], fill, dtype=array.dtype)
    return np.concatenate([array, block])


@eqx.filter_jit
def _encode_chunk(model, batch):
    return model.encode(batch)


@eqx.filter_jit
def _evaluate_chunk(model, code, points):
    return model.evaluate(code, points)


class _LearnedRunner:
    """A learned model jitted, in chunks of sources and points, spread over the local devices."""

    def __init__(self, model: SourceFieldModel):
        self.devices = jax.local_devices()
        params, static = eqx.partition(model, eqx.is_array)
        self.replicas = [eqx.combine(jax.device_put(params, device), static) for device in self.devices]
        self.compiled: set = set()  # chunk shapes already run (so compiled)

    def _encode_width(self, batch) -> int:
        count = int(np.shape(batch.centers)[1])
        return min(_SOURCE_CHUNK, _round_up(max(1, -(-count // len(self.devices))), _ALIGN))

    def _evaluate_width(self, code, points) -> int:
        count, dim = np.shape(points)
        per_point = int(np.prod(np.shape(code)[1:])) * (dim + 1) * 4 * 4  # psi, gradient, temporaries
        cap = 1 << int(math.log2(max(1, _CHUNK_BYTES // max(per_point, 1))))
        cap = min(max(cap, _MIN_POINT_CHUNK), _MAX_POINT_CHUNK)
        return min(cap, _round_up(max(1, -(-count // len(self.devices))), _ALIGN))

    def warm_encode(self, batch) -> bool:
        return ("encode", self._encode_width(batch)) in self.compiled

    def warm_evaluate(self, code, points) -> bool:
        return ("evaluate", np.shape(code), self._evaluate_width(code, points)) in self.compiled

    def encode(self, batch: SourceBatch):
        count = int(np.shape(batch.centers)[1])
        width = self._encode_width(batch)
        partial = []
        for number, start in enumerate(range(0, max(count, 1), width)):
            stop = min(start + width, count)
            device = number % len(self.devices)
            chunk = SourceBatch(
                family=_pad_rows(np.asarray(batch.family)[0, start:stop], width, np.asarray(batch.family)[0, 0])[None],
                centers=_pad_rows(np.asarray(batch.centers)[0, start:stop], width, 0.0)[None],
                magnetisations=_pad_rows(np.asarray(batch.magnetisations)[0, start:stop], width, 0.0)[None],
                sizes=_pad_rows(np.asarray(batch.sizes)[0, start:stop], width, 1.0)[None],
                mask=_pad_rows(np.asarray(batch.mask)[0, start:stop], width, False)[None],
            )
            chunk = jax.device_put(chunk, self.devices[device])
            partial.append(_encode_chunk(self.replicas[device], chunk))
        home = self.devices[0]
        code = sum(jax.device_put(code, home) for code in partial)
        self.compiled.add(("encode", width))
        return code

    def evaluate(self, code, points: np.ndarray):
        count = points.shape[0]
        width = self._evaluate_width(code, points)
        codes = [jax.device_put(code, device) for device in self.devices]
        pending = []
        for number, start in enumerate(range(0, max(count, 1), width)):
            stop = min(start + width, count)
            device = number % len(self.devices)
            chunk = jax.device_put(_pad_rows(points[start:stop], width, 0.0), self.devices[device])
            pending.append((stop - start, _evaluate_chunk(self.replicas[device], codes[device], chunk)))
        phi = np.concatenate([np.asarray(p)[:, :valid] for valid, (p, _) in pending], axis=1)
        field = np.concatenate([np.asarray(h)[:, :valid] for valid, (_, h) in pending], axis=1)
        self.compiled.add(("evaluate", np.shape(code), width))
        return phi, field


class _PlainRunner:
    """Any other predictor, called as it is (whether a call compiles is unknown: always warmed up)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def warm_encode(self, batch) -> bool:
        return False

    def warm_evaluate(self, code, points) -> bool:
        return False

    def encode(self, batch):
        return self.predictor.encode(batch)

    def evaluate(self, code, points):
        return self.predictor.evaluate(code, points)


def runner_for(predictor: Predictor):
    """How to call ``predictor``: a learned model jitted in chunks over the local devices, any other
    predictor as it is."""
    return _LearnedRunner(predictor) if isinstance(predictor, SourceFieldModel) else _PlainRunner(predictor)


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower() or "Out of memory" in text \
        or "failed to allocate" in text.lower()


def _failure_status(error: BaseException) -> str:
    """The status of a row whose call raised ``error``."""
    return "out of memory" if _is_out_of_memory(error) else f"error: {type(error).__name__}: {error}"[:300]


def _timed(call, repeats: int, budget: float, warm: bool = False):
    """(output, first-call seconds, best seconds, timed calls).

    The first call is the warm-up (JIT compilation of new shapes + one run), timed apart; then
    ``repeats`` timed calls (more, up to ``_MAX_REPEATS``, while they add up to less than
    ``_MIN_TIMED`` seconds: tiny timings are noisy on a shared machine), stopping early once this
    measurement has spent ``budget``. ``warm``: the shapes are known to be compiled already, so
    the first call counts as a timed one too. If the first call alone exceeds the budget it is the
    only one, and its time (compilation included: an upper bound) stands for the method.
    """
    start = time.perf_counter()
    out = jax.block_until_ready(call())
    first = time.perf_counter() - start
    if first > budget:
        return out, first, first, int(warm)
    best, spent, timed, done = (first, first, first, 1) if warm else (math.inf, first, 0.0, 0)
    while done < repeats or (timed < _MIN_TIMED and done < _MAX_REPEATS):
        if done and spent > budget:
            break
        del out
        start = time.perf_counter()
        out = jax.block_until_ready(call())
        elapsed = time.perf_counter() - start
        best, spent, timed, done = min(best, elapsed), spent + elapsed, timed + elapsed, done + 1
    return out, first, best, done


def measure(name, runner, batch, points, sweep, where, m, n, budget, repeats):
    """Rows of both phases of one method at one size, its cost (seconds of its slower phase) and
    whether it must stop."""
    rows = []

    def row(phase, seconds, first, done, status):
        rows.append(ScalingRow(name, phase, sweep, where, m, n, seconds, first, done, status))

    try:
        code, first, best, done = _timed(lambda: runner.encode(batch), repeats, budget, runner.warm_encode(batch))
    except Exception as error:  # noqa: BLE001 - recorded, and the method stops
        status = _failure_status(error)
        row("encode", math.nan, math.nan, 0, status)
        row("evaluate", math.nan, math.nan, 0, "not run")
        return rows, math.nan, True
    encode = (best, first, done)
    try:
        out, first, best, done = _timed(lambda: runner.evaluate(code, points), repeats, budget,
                                        runner.warm_evaluate(code, points))
        del out
    except Exception as error:  # noqa: BLE001
        status = _failure_status(error)
        row("encode", *encode, "ok")
        row("evaluate", math.nan, math.nan, 0, status)
        return rows, math.nan, True
    finally:
        code = None  # free the code before the next size (not `del`: the lambda above reads it)
    over = max(encode[1], first) > budget
    row("encode", *encode, "over budget" if over else "ok")
    row("evaluate", best, first, done, "over budget" if over else "ok")
    return rows, max(encode[0], best), over
