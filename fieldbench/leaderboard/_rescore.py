"""Rescoring a record (``verify --rescore``): re-derive every number it holds and compare.

Every metric of every split (and every seed's values) is re-evaluated: counts (samples, points,
inside/outside/bin points, excluded) must agree exactly, errors (%) within ``METRIC_RTOL`` relative
(+ ``METRIC_ATOL``). The warm evaluation speed and every M-sweep scaling row of the record's method
recorded at up to ``RETIME_MAX_SECONDS`` per call are re-timed, within a factor ``TIMING_FACTOR``
either way (a row recorded under ``RETIME_MIN_SECONDS`` only has to re-time under
``TIMING_FACTOR`` times that), when this machine's device is the record's (timings on other devices
are not comparable, so they are not compared). Longer rows, N-sweep rows and the slopes are not
re-timed. The evaluator's total wall time (``metrics.<split>.seconds``, compilation included) is
informative only and never compared.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..bench import device_description
from ..evaluation import evaluate
from ..models import Predictor, load_predictor
from ..models._speed import evaluation_speed, timing_device
from ._derived import metrics_of
from ._record import RecordProblem, checkpoint_entries, finite, locate

#: --rescore tolerances: errors in percent; counts must agree exactly.
METRIC_RTOL, METRIC_ATOL = 1e-3, 1e-9
#: --rescore: a re-timed figure on the same device must lie within this factor of the record's,
#: either way (other work on a shared machine slows a best-of timing; a mismatch is measured once
#: more, longer, before it counts).
TIMING_FACTOR = 3.0
#: --rescore re-times the M-sweep scaling rows recorded at up to RETIME_MAX_SECONDS per call (longer
#: ones would make a rescore cost as much as the original sweep). A row recorded under
#: RETIME_MIN_SECONDS measures mostly dispatch overhead and the machine's load, so it is not held to
#: the factor: it only has to re-time under TIMING_FACTOR x RETIME_MIN_SECONDS. Selecting rows by
#: the recorded figure alone would let a row forged below the minimum escape the re-timing.
RETIME_MIN_SECONDS, RETIME_MAX_SECONDS = 1e-3, 1.0
#: --rescore lists at most this many differences per split (then how many more).
SHOWN_DIFFERENCES = 8


def close(a, b, rtol: float, atol: float = 0.0) -> bool:
    """Equal within tolerance; None (a NaN written as null) equals None or NaN."""
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    if any(missing):
        return all(missing)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + atol


def _differences(recorded, fresh, where: str, tolerance: float) -> list[str]:
    """Every leaf of ``recorded`` that ``fresh`` does not reproduce: integers (counts) exactly,
    floats within ``tolerance`` relative (+ METRIC_ATOL)."""
    if isinstance(recorded, dict) and isinstance(fresh, dict):
        out = []
        for key in sorted(set(recorded) | set(fresh)):
            if key not in recorded or key not in fresh:
                out.append(f"{where}/{key} is {'missing from the record' if key not in recorded else 'not produced'}")
            else:
                out += _differences(recorded[key], fresh[key], f"{where}/{key}", tolerance)
        return out
    if isinstance(recorded, list) and isinstance(fresh, (list, tuple)):
        if len(recorded) != len(fresh):
            return [f"{where} has {len(recorded)} entries, rescoring gives {len(fresh)}"]
        return [d for i, (a, b) in enumerate(zip(recorded, fresh))
                for d in _differences(a, b, f"{where}/{i}", tolerance)]
    exact = isinstance(recorded, int) and isinstance(fresh, int)
    if not close(recorded, fresh, 0.0 if exact else tolerance, 0.0 if exact else METRIC_ATOL):
        return [f"{where}: the record says {recorded!r}, rescoring gives {fresh!r}"]
    return []


def rescore_record(path: str, record: dict, predictor: Predictor, tolerance: float,
                   directory: Path) -> list[RecordProblem]:
    """Re-evaluate every split (and every seed's values), re-time the speed and the short scaling
    rows, and compare with the record."""
    dataset, limit = record["dataset"]["name"], record["dataset"].get("samples_limit")
    out = []

    def problem(text):
        out.append(RecordProblem(path, text))

    for split, values in record["metrics"].items():
        fresh = finite(metrics_of(evaluate(predictor, dataset, split, limit=limit)))
        recorded = {k: v for k, v in values.items() if k != "seconds"}  # wall time: informative only
        fresh.pop("seconds", None)
        differences = _differences(recorded, fresh, split, tolerance)
        for difference in differences[:SHOWN_DIFFERENCES]:
            problem(f"rescoring {difference}")
        if len(differences) > SHOWN_DIFFERENCES:
            problem(f"rescoring {split}: {len(differences) - SHOWN_DIFFERENCES} more differences; the record was "
                    "scored by another evaluator or edited: resubmit it with `fieldbench submit ... --replace`")
    seeds = record.get("seeds") or {}
    for index, seed in enumerate(checkpoint_entries(record)[1:], 1):
        other = load_predictor(record["model"]["spec"], locate(seed, directory))
        for split, summaries in seeds["metrics"].items():
            fresh = evaluate(other, dataset, split, limit=limit)
            for metric, summary in summaries.items():
                if not close(summary["values"][index], getattr(fresh, metric), tolerance, METRIC_ATOL):
                    problem(f"rescoring seed {index} ({seed['path']}) on {split} gives {metric} "
                            f"{getattr(fresh, metric):.6g}, the record says {summary['values'][index]:.6g}")
    out += [RecordProblem(path, text) for text in _retime(record, predictor)]
    return out


def _same_timing(recorded: float, measure, floor: float = 0.0) -> tuple[bool, float]:
    """Whether a re-timing agrees within TIMING_FACTOR (a figure recorded under ``floor`` only has to
    re-time under TIMING_FACTOR x ``floor``); a mismatch is measured once more, longer, before it
    counts (one run on a shared machine can be slowed by other work)."""
    def agrees(fresh: float) -> bool:
        if recorded < floor:
            return fresh <= TIMING_FACTOR * floor
        return recorded > 0 and 1 / TIMING_FACTOR <= fresh / recorded <= TIMING_FACTOR

    fresh = measure(1)
    if agrees(fresh):
        return True, fresh
    fresh = min(fresh, measure(3))
    return agrees(fresh), fresh


def _retime(record: dict, predictor: Predictor) -> list[str]:
    out = []
    speed = record.get("speed")
    if speed and speed["device"]["label"] == timing_device()["label"]:
        dataset = record["dataset"]["name"]

        def measure(longer):
            return evaluation_speed(predictor, dataset, speed["split"], samples=speed["samples"],
                                    repeats=speed["repeats"] * longer)["eval_us_per_point"]

        ok, fresh = _same_timing(speed["eval_us_per_point"], measure)
        if not ok:
            out.append(f"re-timing gives {fresh:.3g} us/point, the record says {speed['eval_us_per_point']:.3g} "
                       f"(more than {TIMING_FACTOR:g}x apart on the same device): rescore on an idle machine, and "
                       "resubmit the record if it persists")
    scaling = record.get("scaling") or {}
    if scaling.get("rows") and (scaling.get("environment") or {}).get("device") == device_description():
        out += _retime_scaling(record, scaling, predictor)
    return out


def _retime_scaling(record: dict, scaling: dict, predictor: Predictor) -> list[str]:
    """Re-run the scaling harness at the sizes of the M-sweep rows recorded at up to RETIME_MAX_SECONDS, with the
    record's settings, for the rows of this record's own method (see RETIME_MIN_SECONDS for short rows)."""
    from ..evaluation import scaling as run_scaling

    settings = scaling.get("settings") or {}
    method = record["name"] if any(r.get("method") == record["name"] for r in scaling["rows"]) \
        else record["model"]["spec"]
    rows = [r for r in scaling["rows"] if r.get("method") == method and r.get("status") == "ok"
            and isinstance(r.get("seconds"), (int, float)) and r["seconds"] <= RETIME_MAX_SECONDS
            and r.get("sweep") == "M"]
    sizes = sorted({r["M"] for r in rows})
    if not sizes:
        return []

    def rerun(longer):
        result = run_scaling({method: predictor}, sizes_m=sizes, n_equals_m=settings.get("n_fixed") is None,
                             n_fixed=settings.get("n_fixed"), family=settings.get("family", "disc"),
                             points_inside=settings.get("points_inside", False),
                             fmm_both=settings.get("fmm_both", True),
                             time_budget=settings.get("time_budget", 60.0),
                             repeats=settings.get("repeats", 3) * longer, seed=settings.get("seed", 0))
        return {(r.phase, r.points, r.M, r.N): r.seconds for r in result.rows if r.status == "ok"}

    out = []
    first = rerun(1)
    for row in rows:
        key = (row["phase"], row["points"], row["M"], row["N"])
        ok, fresh = _same_timing(row["seconds"], lambda longer, key=key: first.get(key, math.inf) if longer == 1
                                 else rerun(longer).get(key, math.inf), floor=RETIME_MIN_SECONDS)
        if not ok:
            out.append(f"re-timing scaling {method} {row['phase']} ({row['points']}, M={row['M']:,}, N={row['N']:,}) "
                       f"gives {fresh:.3g} s, the record says {row['seconds']:.3g} s (more than {TIMING_FACTOR:g}x "
                       "apart on the same device): rescore on an idle machine, and resubmit the record if it persists")
    return out
