"""The results of a scaling run: rows per (method, phase, size), fitted log-log slopes, tables."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ._plot import plot_scaling

__all__ = ["ScalingResult", "ScalingRow", "fit_slopes"]


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

    @classmethod
    def from_dict(cls, data: Mapping) -> ScalingResult:
        """The inverse of :meth:`as_dict`, also of its JSON form in a leaderboard record (where a
        NaN is stored as null). Raises ValueError, naming what is missing, for anything that is not
        a whole result: no rows (a run always times something), or a row without one of its fields."""
        if not isinstance(data, Mapping) or not isinstance(data.get("rows"), list) or not data["rows"]:
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"not a scaling result: it needs a non-empty list 'rows' of timed rows (got {keys})")
        rows = []
        names = [field.name for field in dataclasses.fields(ScalingRow)]
        for index, stored in enumerate(data["rows"]):
            missing = [name for name in names if not isinstance(stored, Mapping) or name not in stored]
            if missing:
                raise ValueError(f"not a scaling result: row {index} lacks {', '.join(missing)}")
            values = {name: stored[name] for name in names}
            for key in ("seconds", "compile_seconds"):
                values[key] = _number(values[key])
            rows.append(ScalingRow(**values))
        slopes = [dict(s) | {key: _number(s.get(key)) for key in ("slope", "tail_slope")}
                  for s in data.get("slopes", [])]
        return cls(rows, slopes, dict(data.get("environment") or {}), dict(data.get("settings") or {}),
                   _number(data.get("seconds")))

    @classmethod
    def combined(cls, results: Iterable[ScalingResult]) -> ScalingResult:
        """One result of several runs' rows (the leaderboard's records): a row repeated in several
        runs (records sharing one run) is kept once, the first run's where two disagree; slopes are
        refitted; environment and settings are the first run's."""
        results = list(results)
        kept: dict[tuple, ScalingRow] = {}
        for result in results:
            for row in result.rows:
                kept.setdefault((row.method, row.points, row.sweep, row.phase, row.M, row.N), row)
        rows = list(kept.values())
        first = results[0] if results else cls([], [], {}, {}, 0.0)
        return cls(rows, fit_slopes(rows), dict(first.environment), dict(first.settings),
                   sum(result.seconds for result in results if math.isfinite(result.seconds)))

    # -- figure ------------------------------------------------------------------------------
    def plot(self, path: str | Path, *, title: str | None = None) -> Path:
        """The Fig. 5a-style PNG (see :func:`~fieldbench.evaluation._scaling._plot.plot_scaling`);
        returns its path."""
        return plot_scaling(self, path, title=title)


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3g}"


def fit_slopes(rows: Sequence[ScalingRow]) -> list[dict]:
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

