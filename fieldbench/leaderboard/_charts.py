"""The board's interactive charts (plotly): error by distance (the paper's Fig. 5b), accuracy against
speed with the rank-L ceiling, runtime scaling (Fig. 5a) and the accuracy-cost frontier at
M = N = 1e6. Each returns an HTML fragment (a
``<div>`` and the call that draws it) with a fixed element id, so the page renders byte-identically
from the same records; plotly.js itself is inlined once per page (:func:`plotly_script`)."""

from __future__ import annotations

import math
from collections import Counter

import plotly.graph_objects as go
import plotly.io as pio

from ..evaluation import ScalingResult
from ..pipeline import canonical_split

__all__ = ["distance_chart", "speed_chart", "scaling_chart", "frontier_chart", "frontier_points", "plotly_script",
           "reference_device"]

#: One colour per method, assigned in order of first appearance; the same method keeps its colour
#: across the charts of one page.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939")
_LAYOUT = {"template": "plotly_white", "height": 520, "margin": {"l": 70, "r": 20, "t": 60, "b": 60},
           "legend": {"font": {"size": 11}, "orientation": "h", "y": -0.22}}


class Colours:
    """method -> colour, stable within one page."""

    def __init__(self) -> None:
        self._assigned: dict[str, str] = {}

    def __call__(self, method: str) -> str:
        if method not in self._assigned:
            self._assigned[method] = PALETTE[len(self._assigned) % len(PALETTE)]
        return self._assigned[method]


def plotly_script() -> str:
    """plotly.js, to inline once in the page (no network, no separate file)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _fragment(figure: go.Figure, element_id: str) -> str:
    return pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=element_id,
                       config={"displaylogo": False, "responsive": True})


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def distance_chart(dataset: str, records: list[dict], colours: Colours) -> str | None:
    """Median phi error on test_single by distance to the nearest source boundary, one line per record
    (FMM pure and with its near-field correction among them, as in the paper's Fig. 5b)."""
    figure = go.Figure()
    for record in records:
        xs, ys = [], []
        for b in record["metrics"].get("test_single", {}).get("by_distance", []):
            if not b.get("points") or not _positive(b.get("phi_error")):
                continue
            hi = b["to"] if b["to"] is not None and math.isfinite(b["to"]) else b["from"] * 2 + 1
            xs.append((b["from"] + hi) / 2)
            ys.append(b["phi_error"])
        if xs:
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=record["name"],
                                        line={"color": colours(record["name"])}))
    if not figure.data:
        return None
    figure.add_vline(x=0, line_dash="dot", line_color="grey")
    figure.update_layout(title=f"{dataset}, test_single: error by distance to the nearest boundary", **_LAYOUT)
    figure.update_xaxes(title="distance to the nearest boundary / source size (negative: inside)")
    figure.update_yaxes(type="log", title="median relative error of phi (%)")
    return _fragment(figure, f"chart-{dataset}-distance")


#: The ceiling lines drawn on the speed chart (the page's ceiling table has every rank).
CEILING_RANKS = (64, 256, 1024)


def reference_device(rows: list[tuple[str, dict]]) -> str | None:
    """The device most records were timed on: speeds compare only within one device."""
    devices = Counter(row["timed_on"] for _, row in rows if row.get("timed_on"))
    return min(devices, key=lambda d: (-devices[d], d)) if devices else None


def _ceiling_lines(figure: go.Figure, ceiling: list[dict] | None) -> None:
    """The rank-L ceiling's test_multi medians (CEILING_RANKS) as labelled horizontal lines."""
    multi = next((r for r in ceiling or [] if canonical_split(r["split"]) == "test_multi"), None)
    for rank, error in zip(multi["ranks"], multi["phi_error"]) if multi else ():
        if _positive(error) and rank in CEILING_RANKS:
            figure.add_hline(y=error, line_dash="dot", line_color="#888")
            # Placed by hand: on a log axis an annotation's y is log10 of the value (add_hline's own
            # annotation would take the value itself and land elsewhere).
            figure.add_annotation(x=0, xref="paper", y=math.log10(error), yref="y", text=f"rank-{rank} ceiling",
                                  showarrow=False, xanchor="left", yanchor="bottom", font={"size": 10})


def speed_chart(dataset: str, rows: list[tuple[str, dict]], ceiling: list[dict] | None,
                colours: Colours) -> tuple[str | None, list[str]]:
    """test_multi phi error against the warm time per point, on the reference device only, with the
    rank-L ceiling (test_multi median) as horizontal lines; the fragment and the records left out
    because they were timed elsewhere."""
    device = reference_device(rows)
    chosen = [(name, row) for name, row in rows if row.get("timed_on") == device
              and _positive(row.get("eval_us_per_point")) and _positive(row.get("test_multi:phi_error"))]
    left_out = [name for name, row in rows if row.get("timed_on") != device]
    if not chosen:
        return None, left_out
    figure = go.Figure()
    for name, row in chosen:
        std = row.get("test_multi:phi_error:std")
        figure.add_trace(go.Scatter(
            x=[row["eval_us_per_point"]], y=[row["test_multi:phi_error"]], mode="markers+text", name=name,
            text=[name], textposition="top center", marker={"size": 11, "color": colours(name)},
            error_y={"type": "data", "array": [std]} if std else None))
    _ceiling_lines(figure, ceiling)
    figure.update_layout(title=f"{dataset}: accuracy against speed, timed on {device}", showlegend=False, **_LAYOUT)
    figure.update_xaxes(type="log", title="warm evaluation time per point (us; compilation excluded)")
    ys = [row["test_multi:phi_error"] for _, row in chosen]
    figure.update_yaxes(type="log", title="test_multi median relative error of phi (%)",
                        range=[math.log10(min(ys)) - 0.5, math.log10(max(ys)) + 0.7])
    return _fragment(figure, f"chart-{dataset}-speed"), left_out


def scaling_chart(stored: list[ScalingResult], colours: Colours, element_id: str = "chart-scaling",
                  title: str = "Runtime scaling", *, separate_runs: bool = False) -> str | None:
    """Wall time against the number of sources and points (M = N), one colour per method: solid the
    evaluation, dotted the encoding. By default the runs of ``stored`` are merged and each row drawn
    once (the records' own short runs, several records sharing one run); with ``separate_runs``
    each run is drawn on its own, named by its device, thicker the more threads it had (one
    dataset's long runs on one and on all cores: the paper's Fig. 5a, sequential and parallel)."""
    if not stored:
        return None
    runs = [(result, run_label(result)) for result in stored] if separate_runs else \
        [(ScalingResult.combined(stored), "")]
    threads = sorted({result.environment.get("threads") or 0 for result, _ in runs})
    figure = go.Figure()
    for result, label in runs:
        curves: dict[tuple, list] = {}
        for row in result.rows:
            if row.sweep == "M" and _positive(row.seconds):
                curves.setdefault((row.method, row.phase, row.points), []).append((row.M, row.seconds))
        width = 1.5 + 1.5 * threads.index(result.environment.get("threads") or 0)
        for (method, phase, points), values in sorted(curves.items()):
            values.sort()
            figure.add_trace(go.Scatter(
                x=[m for m, _ in values], y=[s for _, s in values], mode="lines+markers",
                name=f"{method} {phase} ({points})" + (f", {label}" if label else ""), legendgroup=method,
                line={"color": colours(method), "dash": "solid" if phase == "evaluate" else "dot", "width": width},
                marker={"symbol": "circle" if points == "outside" else "diamond"}))
    devices = sorted({str(result.environment.get("device", "")) for result in stored})
    if separate_runs:
        where = "; ".join(f"{run_label(result)}: {result.environment.get('device', '')}" for result in stored)
    else:
        where = devices[0] if len(devices) == 1 else f"{len(devices)} devices (not comparable): {'; '.join(devices)}"
    figure.update_layout(title=f"{title}, timed on {where}", **_LAYOUT | {"height": 520})
    figure.update_xaxes(type="log", title="sources M (= points N)")
    figure.update_yaxes(type="log", title="wall time (s), best of the repeats")
    return _fragment(figure, element_id)


def run_label(result: ScalingResult) -> str:
    """'1 thread' / 'N threads': what tells a dataset's scaling runs apart (sequential, parallel)."""
    threads = result.environment.get("threads")
    return "threads unknown" if not threads else f"{threads} thread" + ("s" if threads != 1 else "")


def frontier_points(result: ScalingResult, errors: dict[str, float]) -> tuple[int | None, list[dict], list[str]]:
    """The accuracy-cost frontier of one scaling run: at its largest M (= N), each method that was
    timed there (encode and evaluate, points outside, and for a method timed with points inside too,
    inside) with its seconds, time per (source + point), ``errors[method]`` (test_multi phi, %) and
    whether its first call alone timed it (``one_call``: that call ran past the time budget, so
    its time, compilation included if any, is an upper bound);
    (M, points, the methods that did not reach M within the run's time budget)."""
    timed: dict[tuple, dict] = {}
    once: set[tuple] = set()  # timed by its first call alone (past the time budget): an upper bound
    for row in result.rows:
        if row.sweep == "M" and row.M == row.N and _positive(row.seconds):
            timed.setdefault((row.method, row.points, row.M), {})[row.phase] = row.seconds
            if row.status == "over budget" and row.repeats <= 1 and row.seconds == row.compile_seconds:
                once.add((row.method, row.points, row.M))
    sizes = [m for (_, _, m), phases in timed.items() if {"encode", "evaluate"} <= set(phases)]
    if not sizes:
        return None, [], []
    largest = max(sizes)
    points = []
    for (method, where, size), phases in sorted(timed.items()):
        if size == largest and {"encode", "evaluate"} <= set(phases):
            total = phases["encode"] + phases["evaluate"]
            points.append({"method": method, "points": where, "M": size, "encode_s": phases["encode"],
                           "evaluate_s": phases["evaluate"], "total_s": total,
                           "us_per_source_and_point": 1e6 * total / (2 * size), "phi_error": errors.get(method),
                           "one_call": (method, where, size) in once})
    reached = {p["method"] for p in points}
    missing = sorted({method for method, _, _ in timed} - reached)
    return largest, points, missing


def frontier_chart(dataset: str, result: ScalingResult, errors: dict[str, float], ceiling: list[dict] | None,
                   colours: Colours) -> str | None:
    """test_multi phi error against the time per (source + point) at the run's largest M = N, one
    device (the run's), with the rank-L ceilings as horizontal lines."""
    size, points, _ = frontier_points(result, errors)
    drawn = [p for p in points if _positive(p["phi_error"])]
    if not drawn:
        return None
    figure = go.Figure()
    for p in drawn:
        figure.add_trace(go.Scatter(
            x=[p["us_per_source_and_point"]], y=[p["phi_error"]], mode="markers+text",
            name=f"{p['method']} ({p['points']})", text=[p["method"]], textposition="top center",
            marker={"size": 11, "color": colours(p["method"]),
                    "symbol": "circle" if p["points"] == "outside" else "diamond"}))
    _ceiling_lines(figure, ceiling)
    figure.update_layout(title=f"{dataset}: accuracy against cost at M = N = {size:,.0f}, timed on "
                               f"{result.environment.get('device', '')}", showlegend=False, **_LAYOUT)
    figure.update_xaxes(type="log", title="encode + evaluate time per (source + point) (us)")
    ys = [p["phi_error"] for p in drawn]
    figure.update_yaxes(type="log", title="test_multi median relative error of phi (%)",
                        range=[math.log10(min(ys)) - 0.5, math.log10(max(ys)) + 0.7])
    return _fragment(figure, f"chart-{dataset}-frontier")
