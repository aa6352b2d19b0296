"""The runtime-scaling figure (the paper's Fig. 5a): the one drawing of scaling curves, behind
:meth:`ScalingResult.plot <fieldbench.evaluation.ScalingResult.plot>` (``fieldbench scaling``) and
the leaderboard's runtime-scaling plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._results import ScalingResult

__all__ = ["plot_scaling"]


def plot_scaling(result: ScalingResult, path: str | Path, *, title: str | None = None) -> Path:
    """Log-log wall time against M (and against N if an N sweep was run), like the paper's
    Fig. 5a: one colour per method and point placement, evaluation solid, encoding dashed (only
    where encoding does measurable work, > 0.1 ms: the exact sum's and the FMM's is a no-op),
    each curve annotated with its slope over its last three sizes, an x where a method stopped,
    O(n) and O(n^2) guides dotted. Writes a PNG and returns its path."""
    from ... import plotting  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweeps = [s for s in ("M", "N") if any(r.sweep == s and r.measured for r in result.rows)] or ["M"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(9.5 * len(sweeps), 5.6), squeeze=False,
                             constrained_layout=True)
    curves = list(dict.fromkeys((r.method, r.points) for r in result.rows))
    mixed = len({p for _, p in curves}) > 1
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {curve: colours[i % len(colours)] for i, curve in enumerate(curves)}
    slopes = {(s["method"], s["points"], s["sweep"], s["phase"]): s for s in result.slopes}
    for ax, sweep in zip(axes[0], sweeps):
        drawn = []
        for method, points in curves:
            def select(phase, measured=True):
                return [r for r in result.rows if r.method == method and r.points == points and r.sweep == sweep
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
        fixed = result.settings.get("m_fixed") if sweep == "N" else result.settings.get("n_fixed")
        if sweep == "M":
            ax.set_xlabel("number of sources M" + (" (N = M points)" if fixed is None else f" (N = {fixed:,})"))
        else:
            ax.set_xlabel(f"number of points N (M = {fixed:,} sources)")
        ax.set_ylabel("wall time (s): best of repeats, compilation excluded")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, title="solid: evaluate, dashed: encode\nnumbers: slope over the last 3 sizes",
                  title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title or f"Wall time vs size ({result.settings.get('family', 'disc')}s): "
                          f"{result.environment.get('device', '')}, backend {result.environment.get('backend', '')}",
                 fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curve_label(method: str, points: str, mixed: bool) -> str:
    return f"{method} (points {points})" if mixed else method
