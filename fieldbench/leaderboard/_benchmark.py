"""The main job: the suite end to end on embedded defaults, in minutes on a laptop CPU.

Mini datasets (fetched or rebuilt and verified), the shipped baseline checkpoints and the
reference methods, evaluation on every test split, a quick runtime-scaling run, and the rendered
leaderboard page; its tables (``benchmark_tables``). Also the submission ``fieldbench submit`` runs
(``submit_measured``: the runtime scaling measured first, then the records written).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from .._io import read_json
from .._tables import Table
from ..datasets import get
from ..models import shipped_checkpoint_dir
from ..models._shipped import SHIPPED_PATH
from ._record import check_record_name, load_records
from ._submit import check_submission, check_urls, submit
from ._render import COLUMNS, _format, _row, render

__all__ = ["BenchmarkResult", "run_benchmark", "benchmark_tables", "submit_measured", "shipped_checkpoints"]

MINI = {"circles2d": "circles2d-mini", "prisms2d": "prisms2d-mini"}


@dataclasses.dataclass
class BenchmarkResult:
    out_dir: Path
    records: list[dict]
    page: Path
    scaling: dict | None
    seconds: float


def shipped_checkpoints(directory: Path | None = None) -> list[tuple[str, str, Path]]:
    """(model, dataset it was trained on, path) of the first seed of every shipped baseline, in
    ``directory`` (default: the package's, ``models.shipped_checkpoint_dir()``; the main job scores
    one checkpoint per model, the records hold all seeds)."""
    found = []
    for path in sorted(Path(directory or shipped_checkpoint_dir()).glob("*-seed0.eqx")):
        meta = read_json(path.with_suffix(".json"), f"restore it with `git checkout -- {SHIPPED_PATH}` in a "
                                                    "checkout, or reinstall fieldbench")
        found.append((meta["model"], meta["dataset"]["name"], path))
    return found


def run_benchmark(out_dir: str | Path = "fieldbench-out/benchmark", *, scaling_sizes=(1e2, 1e3, 1e4),
                  references=("exact", "fmm", "fmm-pure"), say: Callable[[str], None] = print) -> BenchmarkResult:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    records_dir = out_dir / "records"
    for dataset in MINI.values():
        say(f"dataset {dataset}: {get(dataset, progress=False)}")
    jobs = [(model, MINI.get(trained, trained), path) for model, trained, path in shipped_checkpoints()]
    for reference in references:
        if reference == "exact" or _fmm_available():
            jobs += [(reference, dataset, None) for dataset in MINI.values()]
    scaling = _quick_scaling(scaling_sizes, say, {model: path for model, _, path in jobs if path is not None})
    for model, dataset, checkpoint in jobs:
        say(f"scoring {model} on {dataset}")
        submit(model, model, checkpoint=checkpoint, datasets=[dataset], directory=records_dir, replace=True,
               scaling=scaling.get(model) if scaling else None)
    paths = render(records_dir, out_dir, local_run=True)  # mini datasets: a local run, not the official board
    return BenchmarkResult(out_dir, load_records(records_dir), paths["html"], scaling,
                           time.perf_counter() - started)


def _fmm_available() -> bool:
    try:
        from ..physics import fmm_available

        return fmm_available()
    except ImportError:
        return False


def scaling_figures(result) -> dict:
    """The JSON-safe part of a ScalingResult that a record stores (rows, slopes, environment)."""
    return json.loads(json.dumps(result.as_dict(), default=str).replace("NaN", "null"))


def _quick_scaling(sizes, say, checkpoints: dict) -> dict:
    """Scaling rows of the exact sum, the FMM (when installed) and FC+ILR, per method. FC+ILR is the
    shipped checkpoint its record scores: the rows go into that record, so they must time that model
    (``verify --rescore`` re-times them with it)."""
    from ..evaluation import scaling, scaling_predictors
    from ..models import load_predictor

    names = ["exact"] + (["fmm", "fmm-pure"] if _fmm_available() else [])
    predictors = scaling_predictors(names)
    if "fc-ilr" in checkpoints:
        predictors["fc-ilr"] = load_predictor("fc-ilr", checkpoints["fc-ilr"])
    say(f"runtime scaling for {', '.join(predictors)} up to M = N = {int(max(sizes)):,}")
    figures = scaling_figures(scaling(predictors, sizes_m=sizes, time_budget=20.0, repeats=1))
    return {name: figures | {"rows": [r for r in figures["rows"] if r["method"] == name],
                             "slopes": [s for s in figures["slopes"] if s.get("method") == name]}
            for name in predictors}


#: The board's columns that the main job prints (the page has them all).
BENCHMARK_KEYS = ("name", "test_single:phi_error", "test_multi:phi_error", "test_overlap:phi_error",
                  "test_multi:field_error", "eval_us_per_point")


def benchmark_tables(result: BenchmarkResult) -> list[Table]:
    """One table per dataset of the main job: its records in the board's columns and formatting."""
    labels = dict(COLUMNS)
    columns = tuple((labels[key], "left" if key == "name" else "right") for key in BENCHMARK_KEYS)
    tables = []
    for dataset in sorted({r["dataset"]["name"] for r in result.records}):
        rows = tuple(tuple(_format(row[key]) for key in BENCHMARK_KEYS)
                     for row in (_row(r) for r in result.records if r["dataset"]["name"] == dataset))
        tables.append(Table(f"{dataset}: median relative error (%)", columns, rows))
    return tables


#: The runtime-scaling run of a submission (``submit_measured``): sizes, seconds per method, repeats.
SUBMIT_SCALING = {"sizes_m": (1e2, 1e3, 1e4, 1e5), "time_budget": 30.0, "repeats": 2}


def submit_measured(spec: str, name: str, *, checkpoints=(), datasets=None,
                    directory: str | Path = "leaderboard/records", scaling: bool = True, replace: bool = False,
                    say: Callable[[str], None] | None = None, submission: dict | None = None,
                    checkpoint_urls=None) -> list[Path]:
    """``submit`` with the runtime scaling measured first (``SUBMIT_SCALING``, on the first of
    ``checkpoints``): what ``fieldbench submit`` runs. ``checkpoints``: none, one, or one per seed.
    The name is checked before the scaling run, not after it (also a case-only clash)."""
    from ..evaluation import scaling as run_scaling
    from ..models import load_predictor

    say = say or (lambda text: None)
    checkpoints = list(checkpoints or ())
    check_record_name(name, directory)
    submission = check_submission(submission)  # before the scaling run, too
    check_urls(checkpoint_urls, checkpoints)
    figures = None
    if scaling:
        say("measuring runtime scaling...")
        predictor = load_predictor(spec, checkpoints[0] if checkpoints else None)
        figures = scaling_figures(run_scaling({name: predictor}, **SUBMIT_SCALING))
    say(f"scoring {name} on the test splits...")
    chosen = None if not checkpoints else checkpoints[0] if len(checkpoints) == 1 else checkpoints
    return submit(spec, name, checkpoint=chosen, datasets=datasets or None, directory=directory, scaling=figures,
                  replace=replace, submission=submission, checkpoint_urls=checkpoint_urls)
