"""Wall time against the number of sources M and of points N (the paper's Fig. 5a).

Every method is timed through the :class:`~fieldbench.models.Predictor` protocol, separately for
its two phases: ``encode`` (O(M) for learned models; bookkeeping for the exact sum and the FMM,
whose "code" is the source batch itself) and ``evaluate`` (O(N) for learned models, O(M N) for the
exact direct sum, O(M + N) for the FMM).

Configurations (:func:`scaling_configuration`): M non-overlapping sources on a jittered grid in the
unit square [-0.5, 0.5]^2 (cell h = 1/ceil(sqrt(M)); discs of radius 0.25-0.3 h, or squares of that
half side, whose centres move by at most 0.1 h: neighbours are >= 0.8 h apart, so no two overlap and
nothing is ever rejected, even at M = 1e6); magnetisations N(0, 1). Points either at the source
centres (``inside``: point i in source i mod M, the first M exactly at the centres: the case that
costs the corrected FMM its interior correction) or uniform in the square and outside every source
(``outside``).

Timing: for every (method, size) the first call of each phase is timed apart and reported as
``compile_seconds`` (JIT compilation of the new shapes plus one run: a warm-up); then the phase is
called ``repeats`` times (more while the timed calls add up to under 0.05 s: tiny timings are noisy)
and the best time is kept (``seconds``). Where the harness knows the shapes are compiled already
(learned models whose chunk shapes ran before), the first call also counts as a timed one. JAX
outputs are blocked with ``jax.block_until_ready``. Learned models (:class:`~fieldbench.models.SourceFieldModel`) are
jitted here (``eqx.filter_jit``) and run in chunks, spread over the local devices: sources in chunks
whose codes are summed (the code IS a sum over sources, so this is the same code), points in chunks
sized to bound memory (~256 MB of basis per chunk). Other predictors are called as they are.

Bounded time: a method stops growing once one call of it took longer than ``time_budget`` seconds,
or once the next size would (extrapolating its last log-log slope, at least 1): so the O(M N)
direct sum stops early while the O(M + N) methods reach 1e6. Out-of-memory errors (MemoryError,
XLA RESOURCE_EXHAUSTED, pyfmmlib's allocation failure) are recorded as ``"out of memory"`` and stop
that method; any other error is recorded as ``"error: ..."`` and stops it too.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .._config import thread_settings
from ..bench import device_description
from ..models import Predictor, SourceFieldModel
from ..models._reference import FMMPredictor
from ..sources import Family, SourceBatch, Sources

__all__ = ["ScalingRow", "ScalingResult", "scaling", "scaling_configuration", "scaling_predictors",
           "DEFAULT_SIZES", "SCALING_METHODS"]

#: The paper's Fig. 5a sizes.
DEFAULT_SIZES = (1e2, 1e3, 1e4, 1e5, 1e6)
#: The methods of the paper's Fig. 5a (learned ones at a preset, untrained: timing only).
SCALING_METHODS = ("exact", "fmm", "fmm-pure", "fc-ilr", "fourier")
PHASES = ("encode", "evaluate")

#: Jittered-grid layout, in units of the cell size h.
_RADIUS = (0.25, 0.3)
_JITTER = 0.1
#: Learned models: sources per encoding chunk, and bytes of basis (psi and its gradient) per
#: evaluation chunk of points.
_SOURCE_CHUNK = 1 << 16
_CHUNK_BYTES = 256 << 20
_MIN_POINT_CHUNK, _MAX_POINT_CHUNK = 1024, 1 << 16
_ALIGN = 256
#: Timed calls continue beyond ``repeats`` (up to _MAX_REPEATS) until they add up to _MIN_TIMED s.
_MIN_TIMED, _MAX_REPEATS = 0.05, 20
#: Sizes from which memory is collected between methods (gc.collect costs ~0.1 s with JAX loaded).
_COLLECT_ABOVE = 100_000


# -- configurations -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Layout:
    sources: Sources
    cell: float  # h
    side: int  # cells per side
    owner: np.ndarray  # (side * side,) source index per cell, -1 where empty
    half: np.ndarray  # (M,) radius (disc) or half side (square)
    family: Family


def _layout(count: int, family: Family, seed: int) -> _Layout:
    rng = np.random.default_rng([seed, count, int(family)])
    side = math.ceil(math.sqrt(count))
    cell = 1.0 / side
    cells = np.sort(rng.permutation(side * side)[:count]) if count < side * side else np.arange(count)
    ix, iy = cells % side, cells // side
    jitter = rng.uniform(-_JITTER, _JITTER, (count, 2)) * cell
    centers = np.stack([-0.5 + (ix + 0.5) * cell, -0.5 + (iy + 0.5) * cell], axis=1) + jitter
    magnetisations = rng.normal(size=(count, 2))
    half = rng.uniform(*_RADIUS, count) * cell
    if family == Family.DISC:
        sources = Sources.discs(centers, magnetisations, half)
    else:
        sources = Sources.prisms(centers, magnetisations, np.repeat(2 * half[:, None], 2, axis=1))
    owner = np.full(side * side, -1, dtype=np.int64)
    owner[cells] = np.arange(count)
    return _Layout(sources, cell, side, owner, half, family)


def _inside_own_cell(layout: _Layout, points: np.ndarray) -> np.ndarray:
    """Whether each point lies in (or on) the source of its grid cell: sources never leave their
    cell (half size + jitter <= 0.4 h), so that is the only one that can contain it."""
    index = np.clip(np.floor((points + 0.5) / layout.cell).astype(np.int64), 0, layout.side - 1)
    owner = layout.owner[index[:, 1] * layout.side + index[:, 0]]
    hit = owner >= 0
    source = np.where(hit, owner, 0)
    offset = points - np.asarray(layout.sources.centers)[source]
    half = layout.half[source]
    if layout.family == Family.DISC:
        inside = np.sum(offset * offset, axis=1) <= half * half
    else:
        inside = np.max(np.abs(offset), axis=1) <= half
    return hit & inside


def _points(layout: _Layout, count: int, inside: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, count, len(layout.sources), int(inside), 7])
    sources = len(layout.sources)
    centers = np.asarray(layout.sources.centers)
    if inside:
        owner = np.arange(count) % sources
        points = centers[owner].copy()
        extra = np.arange(count) >= sources  # beyond the centres: uniform inside the sources
        if np.any(extra):
            k = int(extra.sum())
            half = layout.half[owner[extra]] * 0.8
            if layout.family == Family.DISC:
                radius = half * np.sqrt(rng.uniform(size=k))
                angle = rng.uniform(0, 2 * np.pi, k)
                points[extra] += np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
            else:
                points[extra] += rng.uniform(-1, 1, (k, 2)) * half[:, None]
        return points
    points = rng.uniform(-0.5, 0.5, (count, 2))
    redo = _inside_own_cell(layout, points)
    while np.any(redo):  # ~30% per round: a handful of vectorised rounds
        points[redo] = rng.uniform(-0.5, 0.5, (int(redo.sum()), 2))
        redo[redo] = _inside_own_cell(layout, points[redo])
    return points


def scaling_configuration(sources: int, points: int, *, family: str | Family = "disc", points_inside: bool = False,
                          seed: int = 0) -> tuple[Sources, np.ndarray]:
    """The timing configuration: ``sources`` non-overlapping discs (or squares) on a jittered grid in
    [-0.5, 0.5]^2 (radius ~0.3 / sqrt(M)), magnetisations N(0, 1), and ``points`` (N, 2) points at
    the source centres (``points_inside``; beyond M, inside the sources) or outside every source."""
    family = _check_family(family)
    sources, points = _check_count("sources", sources), _check_count("points", points)
    layout = _layout(sources, family, seed)
    return layout.sources, _points(layout, points, points_inside, seed)


# -- running one method -------------------------------------------------------------------------

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


def _runner(predictor: Predictor):
    return _LearnedRunner(predictor) if isinstance(predictor, SourceFieldModel) else _PlainRunner(predictor)


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower() or "Out of memory" in text \
        or "failed to allocate" in text.lower()


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


# -- results ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ScalingRow:
    """One timed phase of one method at one size.

    ``seconds``: best of the timed repeats (NaN when not measured); ``compile_seconds``: the first
    call (JIT compilation of new shapes + one run). ``status``: ``"ok"``; ``"over budget"`` (measured,
    and the method stopped after it); ``"skipped (...)"`` (not run: predicted over budget);
    ``"out of memory"``; ``"not run"`` (encoding failed); ``"error: ..."``.
    """

    method: str
    phase: str
    sweep: str  # "M" (N = M or fixed) or "N" (M fixed)
    points: str  # "inside" or "outside"
    M: int
    N: int
    seconds: float
    compile_seconds: float
    repeats: int
    status: str

    @property
    def measured(self) -> bool:
        return math.isfinite(self.seconds) and self.status in ("ok", "over budget")

    @property
    def size(self) -> int:
        """The swept count (M or N)."""
        return self.M if self.sweep == "M" else self.N


def _curve_label(method: str, points: str, mixed: bool) -> str:
    return f"{method} (points {points})" if mixed else method


@dataclasses.dataclass
class ScalingResult:
    """Rows of :class:`ScalingRow`, fitted log-log slopes and the machine they were measured on."""

    rows: list[ScalingRow]
    slopes: list[dict]
    environment: dict
    settings: dict
    seconds: float

    # -- tables ------------------------------------------------------------------------------
    def to_table(self, fmt: str = "records") -> list[dict] | str:
        """The rows as a list of dicts (``fmt="records"``) or a markdown table (``"markdown"``)."""
        records = [dataclasses.asdict(row) for row in self.rows]
        if fmt == "records":
            return records
        if fmt != "markdown":
            raise ValueError(f"fmt must be 'records' or 'markdown'; got {fmt!r}")
        header = "| method | points | sweep | phase | M | N | seconds | first call (s) | repeats | status |"
        lines = [header, "|" + "---|" * 10]
        for r in self.rows:
            lines.append(f"| {r.method} | {r.points} | {r.sweep} | {r.phase} | {r.M:,} | {r.N:,} | "
                         f"{_seconds(r.seconds)} | {_seconds(r.compile_seconds)} | {r.repeats} | {r.status} |")
        return "\n".join(lines)

    def slope_table(self, fmt: str = "records") -> list[dict] | str:
        """Fitted slopes d log(seconds) / d log(size): over all measured sizes (``slope``) and over
        the last three (``tail_slope``, the asymptotic regime; small sizes are overhead-bound)."""
        if fmt == "records":
            return [dict(s) for s in self.slopes]
        if fmt != "markdown":
            raise ValueError(f"fmt must be 'records' or 'markdown'; got {fmt!r}")
        lines = ["| method | points | sweep | phase | sizes | slope (all) | slope (last 3) |", "|" + "---|" * 7]
        for s in self.slopes:
            lines.append(f"| {s['method']} | {s['points']} | {s['sweep']} | {s['phase']} | "
                         f"{s['smallest']:,}-{s['largest']:,} ({s['count']}) | {s['slope']:.2f} | "
                         f"{s['tail_slope']:.2f} |")
        return "\n".join(lines)

    def slope(self, method: str, phase: str = "evaluate", *, sweep: str = "M", points: str | None = None,
              tail: bool = False) -> float:
        """One fitted slope (NaN if that curve has fewer than two measured sizes)."""
        for s in self.slopes:
            if s["method"] == method and s["phase"] == phase and s["sweep"] == sweep \
                    and (points is None or s["points"] == points):
                return s["tail_slope" if tail else "slope"]
        return math.nan

    def as_dict(self) -> dict:
        return {"rows": self.to_table(), "slopes": self.slope_table(), "environment": self.environment,
                "settings": self.settings, "seconds": self.seconds}

    # -- figure ------------------------------------------------------------------------------
    def plot(self, path: str | Path, *, title: str | None = None) -> Path:
        """Log-log wall time against M (and against N if an N sweep was run), like the paper's
        Fig. 5a: one colour per method and point placement, evaluation solid, encoding dashed (only
        where encoding does measurable work, > 0.1 ms: the exact sum's and the FMM's is a no-op),
        each curve annotated with its slope over its last three sizes, an x where a method stopped,
        O(n) and O(n^2) guides dotted. Writes a PNG and returns its path."""
        from .. import plotting  # noqa: F401  (selects the Agg backend)
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sweeps = [s for s in ("M", "N") if any(r.sweep == s and r.measured for r in self.rows)] or ["M"]
        fig, axes = plt.subplots(1, len(sweeps), figsize=(9.5 * len(sweeps), 5.6), squeeze=False,
                                 constrained_layout=True)
        curves = list(dict.fromkeys((r.method, r.points) for r in self.rows))
        mixed = len({p for _, p in curves}) > 1
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        colour = {curve: colours[i % len(colours)] for i, curve in enumerate(curves)}
        slopes = {(s["method"], s["points"], s["sweep"], s["phase"]): s for s in self.slopes}
        for ax, sweep in zip(axes[0], sweeps):
            drawn = []
            for method, points in curves:
                def select(phase, measured=True):
                    return [r for r in self.rows if r.method == method and r.points == points and r.sweep == sweep
                            and r.phase == phase and r.measured == measured]

                for phase, style in (("evaluate", "-"), ("encode", "--")):
                    rows = select(phase)
                    if not rows or (phase == "encode" and max(r.seconds for r in rows) < 1e-4):
                        continue
                    x = np.array([r.size for r in rows], float)
                    y = np.array([r.seconds for r in rows])
                    drawn.append((x, y))
                    ax.loglog(x, y, style, marker="o" if phase == "evaluate" else "s", ms=4,
                              mfc=colour[(method, points)] if phase == "evaluate" else "none",
                              color=colour[(method, points)], label=f"{_curve_label(method, points, mixed)} {phase}")
                    fit = slopes.get((method, points, sweep, phase))
                    if fit is not None and math.isfinite(fit["tail_slope"]):
                        ax.annotate(f"{fit['tail_slope']:.2f}", (x[-1], y[-1]), textcoords="offset points",
                                    xytext=(5, -9 if phase == "encode" else 2), fontsize=8,
                                    color=colour[(method, points)])
                measured, stopped = select("evaluate"), select("evaluate", measured=False)
                if measured and stopped:
                    ax.plot([stopped[0].size], [measured[-1].seconds], marker="x", color=colour[(method, points)],
                            ms=8, mew=2, ls="none")
            if drawn:
                xs = np.concatenate([x for x, _ in drawn])
                ys = np.concatenate([y for _, y in drawn])
                lo, hi = xs.min(), xs.max()
                start = [y[0] for x, y in drawn if x[0] == lo]
                anchor = float(np.exp(np.mean(np.log(start)))) if start else float(ys.min())
                grid = np.geomspace(lo, hi, 2)
                for power, text in ((1, "O(n)"), (2, "O(n$^2$)")):
                    guide = anchor * (grid / lo) ** power
                    ax.loglog(grid, guide, ":", color="0.55", lw=1.0)
                    ax.annotate(text, (grid[-1], min(guide[-1], ys.max() * 3)), fontsize=8, color="0.4",
                                xytext=(3, 0), textcoords="offset points")
                ax.set_ylim(max(ys.min() / 3, 1e-7), ys.max() * 5)
                ax.set_xlim(lo / 1.5, hi * 2.5)
            fixed = self.settings.get("m_fixed") if sweep == "N" else self.settings.get("n_fixed")
            if sweep == "M":
                ax.set_xlabel("number of sources M" + (" (N = M points)" if fixed is None else f" (N = {fixed:,})"))
            else:
                ax.set_xlabel(f"number of points N (M = {fixed:,} sources)")
            ax.set_ylabel("wall time (s): best of repeats, compilation excluded")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=7, title="solid: evaluate, dashed: encode\nnumbers: slope over the last 3 sizes",
                      title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(title or f"Wall time vs size ({self.settings.get('family', 'disc')}s): "
                              f"{self.environment.get('device', '')}, backend {self.environment.get('backend', '')}",
                     fontsize=10)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3g}"


def _fit_slopes(rows: Sequence[ScalingRow]) -> list[dict]:
    out = []
    keys = list(dict.fromkeys((r.method, r.points, r.sweep, r.phase) for r in rows))
    for method, points, sweep, phase in keys:
        measured = [r for r in rows if (r.method, r.points, r.sweep, r.phase) == (method, points, sweep, phase)
                    and r.measured and r.seconds > 0]
        sizes = np.array([r.size for r in measured], float)
        seconds = np.array([r.seconds for r in measured])

        def fit(x, y):
            if len(x) < 2 or np.unique(x).size < 2:
                return math.nan
            return float(np.polyfit(np.log(x), np.log(y), 1)[0])

        out.append({"method": method, "points": points, "sweep": sweep, "phase": phase,
                    "count": int(sizes.size), "smallest": int(sizes.min()) if sizes.size else 0,
                    "largest": int(sizes.max()) if sizes.size else 0,
                    "slope": fit(sizes, seconds), "tail_slope": fit(sizes[-3:], seconds[-3:])})
    return out


# -- the harness --------------------------------------------------------------------------------

def _check_family(family) -> Family:
    try:
        parsed = Family.parse(family)
    except ValueError as error:
        raise ValueError(f"family must be 'disc' or 'prism'; {error}") from None
    if parsed not in (Family.DISC, Family.PRISM):
        raise ValueError(f"family must be 'disc' or 'prism' (the 2D families the FMM handles); got {family!r}")
    return parsed


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 1 or round(value) != value:
        raise ValueError(f"{name} must be a positive whole number (e.g. 1000 or 1e3); got {value!r}")
    return int(round(value))


def _check_sizes(sizes) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"sizes_m must be a sequence of counts, e.g. (1e2, 1e3, 1e4); got {sizes!r}")
    counts = [_check_count("every entry of sizes_m", s) for s in sizes]
    if not counts:
        raise ValueError("sizes_m is empty: give at least one size")
    if any(b <= a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"sizes_m must be strictly increasing; got {counts}")
    return counts


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
    if not isinstance(predictors, Mapping) or not predictors:
        raise ValueError("predictors must be a non-empty dict of name -> Predictor (e.g. scaling_predictors())")
    for name, predictor in predictors.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"predictor names must be non-empty strings; got {name!r}")
        if not isinstance(predictor, Predictor):
            raise TypeError(f"predictors[{name!r}] must be a fieldbench.models.Predictor (with encode/evaluate); "
                            f"got {type(predictor).__name__}")
    sizes = _check_sizes(sizes_m)
    if not isinstance(n_equals_m, bool):
        raise TypeError(f"n_equals_m must be True or False; got {n_equals_m!r}")
    if n_equals_m and n_fixed is not None:
        raise ValueError("n_fixed conflicts with n_equals_m=True: pass n_equals_m=False to fix N")
    if not n_equals_m and n_fixed is None:
        raise ValueError("n_equals_m=False needs n_fixed (the number of points at every M)")
    n_fixed = None if n_fixed is None else _check_count("n_fixed", n_fixed)
    m_fixed = None if m_fixed is None else _check_count("m_fixed", m_fixed)
    parsed_family = _check_family(family)
    if not isinstance(points_inside, bool):
        raise TypeError(f"points_inside must be True or False; got {points_inside!r}")
    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float, np.integer, np.floating)) \
            or not time_budget > 0 or not math.isfinite(time_budget):
        raise ValueError(f"time_budget must be a positive number of seconds; got {time_budget!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable (or None)")

    placement = "inside" if points_inside else "outside"
    other = "outside" if points_inside else "inside"
    fmm_names = [n for n, p in predictors.items() if isinstance(p, FMMPredictor)]
    configs = [("M", placement, list(predictors))]
    if fmm_both and fmm_names:
        configs.append(("M", other, fmm_names))
    if m_fixed is not None:
        configs.append(("N", placement, list(predictors)))

    runners = {name: _runner(p) for name, p in predictors.items()}
    rows: list[ScalingRow] = []

    def record(row):
        rows.append(row)
        if progress is not None:
            progress(row)

    started = time.perf_counter()
    layout_cache: dict[int, _Layout] = {}
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
                layout_cache[m] = _layout(m, parsed_family, seed)
            layout = layout_cache[m]
            points = _points(layout, n, where == "inside", seed)
            batch = SourceBatch.pad([layout.sources])
            for name in active:
                new_rows, cost, stop = _measure(name, runners[name], batch, points, sweep, where, m, n,
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
    return ScalingResult(rows, _fit_slopes(rows), _environment(), settings, time.perf_counter() - started)


def _measure(name, runner, batch, points, sweep, where, m, n, budget, repeats):
    """Rows of both phases of one method at one size, its cost (seconds of its slower phase) and
    whether it must stop."""
    rows = []

    def row(phase, seconds, first, done, status):
        rows.append(ScalingRow(name, phase, sweep, where, m, n, seconds, first, done, status))

    try:
        code, first, best, done = _timed(lambda: runner.encode(batch), repeats, budget, runner.warm_encode(batch))
    except Exception as error:  # noqa: BLE001 - recorded, and the method stops
        status = "out of memory" if _is_out_of_memory(error) else f"error: {type(error).__name__}: {error}"[:300]
        row("encode", math.nan, math.nan, 0, status)
        row("evaluate", math.nan, math.nan, 0, "not run")
        return rows, math.nan, True
    encode = (best, first, done)
    try:
        out, first, best, done = _timed(lambda: runner.evaluate(code, points), repeats, budget,
                                        runner.warm_evaluate(code, points))
        del out
    except Exception as error:  # noqa: BLE001
        status = "out of memory" if _is_out_of_memory(error) else f"error: {type(error).__name__}: {error}"[:300]
        row("encode", *encode, "ok")
        row("evaluate", math.nan, math.nan, 0, status)
        return rows, math.nan, True
    finally:
        del code
    over = max(encode[1], first) > budget
    row("encode", *encode, "over budget" if over else "ok")
    row("evaluate", best, first, done, "over budget" if over else "ok")
    return rows, max(encode[0], best), over


# -- the paper's methods ------------------------------------------------------------------------

def scaling_predictors(names: Sequence[str] = SCALING_METHODS, *, preset: str = "quick", seed: int = 0,
                       length_scale: float = 1.0, skip_unavailable: bool = True) -> dict[str, Predictor]:
    """The methods of Fig. 5a by name: references (``exact``, ``fmm``, ``fmm-pure``) and learned
    models built fresh at ``preset`` (untrained weights time the same as trained ones). FMM methods
    are left out when pyfmmlib is missing and ``skip_unavailable``."""
    from ..models import build_model, build_reference
    from ..models._registry import REFERENCE

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
